//! Every Resource Manager call carries a bearer token from the local identity provider for the
//! management resource (`https://management.core.windows.net/`), validated with the
//! authentication module's own validator (signature against the JWKS, issuer = this tenant,
//! audience, lifetime). As on Azure: no token is 401 `AuthenticationFailed`, a token that fails
//! validation is 401 `InvalidAuthenticationToken`. Any valid token of the tenant may act (the
//! local platform has no role assignments; everyone is an owner).

use axum::http::{HeaderMap, StatusCode, header};
use easyauth_module::oidc::{TokenValidator, ValidatedToken, ValidationPolicy};

use crate::error::{ArmError, ArmResult};

/// The audiences ARM accepts (the CLI asks for the first; the SDKs for the second).
pub const AUDIENCES: [&str; 2] = [
    "https://management.core.windows.net/",
    "https://management.azure.com/",
];

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `oid` (user or service principal).
    pub object_id: String,
    /// A user's sign-in name, or the application id of an app-only token.
    pub name: String,
}

pub(crate) async fn authenticate(
    validator: &TokenValidator,
    policy: &ValidationPolicy,
    headers: &HeaderMap,
) -> ArmResult<Caller> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = match value.split_once(' ') {
        Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
            t.trim()
        }
        _ => {
            return Err(ArmError::new(
                StatusCode::UNAUTHORIZED,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            ));
        }
    };
    let validated = validator.validate(token, policy).await.map_err(|e| {
        ArmError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            format!("The access token is invalid: {e}"),
        )
    })?;
    Ok(caller(&validated))
}

fn caller(t: &ValidatedToken) -> Caller {
    let name = t
        .str_claim("upn")
        .or_else(|| t.str_claim("unique_name"))
        .or_else(|| t.preferred_username())
        .or_else(|| t.client_id())
        .unwrap_or("")
        .to_owned();
    Caller {
        object_id: t.oid().unwrap_or("").to_owned(),
        name,
    }
}
