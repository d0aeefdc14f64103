//! What the workspace's integration tests share.
//!
//! - [`TestIdp`]: the local identity provider (easyauth-entra) in-process on a loopback port,
//!   over TLS with a certificate from its own local CA, restartable, with clients that trust it.
//! - [`Browser`]: a sign-in driver: an HTTPS client with a cookie jar that follows no redirect
//!   by itself (each hop is the test's to check) and fills in the identity provider's sign-in and
//!   consent forms as a person would.
//! - [`serve_tls`] / [`serve_http`]: a router on a loopback port (an app in front of the
//!   provider, the app behind the module) for as long as the test holds the [`Served`].
//! - [`TempDir`]: a temporary directory removed on drop.
//! - [`tenant`]: the test tenant's ids and its user, and [`jwt_claims`] to read a token.
//!
//! It is a dev-dependency only: nothing here is fit for production (no timeouts tuned, panics
//! on unexpected answers).

mod browser;
mod dirs;
mod idp;
mod serve;
pub mod tenant;

pub use browser::{Browser, Form, Page, form_of, html_hidden};
pub use dirs::{TempDir, temp_dir};
pub use idp::{TestIdp, https_client};
pub use serve::{Served, loopback_listener, serve_http, serve_tls};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The payload of a JWS, unverified (tests read what the provider or the module issued).
///
/// # Panics
/// When `jwt` is not a JWS with a JSON payload.
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWS has three parts");
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .expect("the payload is base64url");
    serde_json::from_slice(&bytes).expect("the payload is JSON")
}
