//! The test tenant the crates' directories share: its id, its user, and the ids of the
//! applications their tests register (each test crate writes its own directory around them).

pub const TID: &str = "b8f2e4a1-5c3d-4e6f-9a7b-1c2d3e4f5a6b";
pub const DOMAIN: &str = "contoso.onmicrosoft.com";
/// The tenant's one user, alice.
pub const ALICE: &str = "f2a9c5e0-7b1d-4c3e-8f6a-2b4c6d8e0a1c";
pub const ALICE_UPN: &str = "alice@contoso.onmicrosoft.com";
pub const ALICE_PASSWORD: &str = "alice-pw";
/// A confidential web app (the relying party).
pub const WEB: &str = "3f1b7c2a-9d4e-4f6a-8b1c-2d3e4f5a6b7c";
pub const WEB_SECRET: &str = "web-secret-value-0123456789";
/// An API that accepts v2 access tokens.
pub const API: &str = "7a4c2e1f-3b5d-4c6e-9f8a-0b1c2d3e4f5a";
pub const API_SECRET: &str = "api-secret-value-0123456789";
/// A second API (v1 tokens) that grants WEB an app role.
pub const API2: &str = "5d2e8f1a-4b6c-4d7e-8f9a-0b1c2d3e4f5b";

/// alice as a directory file's `users` entry.
pub fn alice() -> serde_json::Value {
    serde_json::json!({
        "id": ALICE, "userPrincipalName": ALICE_UPN, "displayName": "Alice Smith",
        "givenName": "Alice", "surname": "Smith", "mail": ALICE_UPN, "password": ALICE_PASSWORD
    })
}
