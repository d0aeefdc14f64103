//! The caller's identity as App Service hands it to the app: `X-MS-CLIENT-PRINCIPAL` (base64 of
//! `{"auth_typ","claims":[{"typ","val"}],"name_typ","role_typ"}`), `-ID`, `-NAME`, `-IDP`, and
//! the `user_claims` of `/.auth/me`.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Map, Value};

/// The claim type that names the user (`name_typ`).
pub const NAME_TYPE: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
/// The claim type of roles (`role_typ`).
pub const ROLE_TYPE: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";

/// Short claim names App Service rewrites to WS-Federation claim types ("legacy" mapping, the
/// default; `roles` stays `roles` unless `WEBSITE_AUTH_USE_LEGACY_CLAIMS=False`).
const LEGACY_MAP: &[(&str, &str)] = &[
    (
        "oid",
        "http://schemas.microsoft.com/identity/claims/objectidentifier",
    ),
    (
        "tid",
        "http://schemas.microsoft.com/identity/claims/tenantid",
    ),
    (
        "sub",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
    ),
    (
        "email",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    ),
    (
        "upn",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    ),
    (
        "given_name",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    ),
    (
        "family_name",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    ),
];

/// One claim of [`ClientPrincipal`]: arrays become one claim per element.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Claim {
    /// The claim type (legacy claims rewritten to WS-Federation URIs).
    pub typ: String,
    /// The value as text.
    pub val: String,
}

/// The principal of one request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClientPrincipal {
    /// The provider's alias (`aad`, a custom provider's name).
    pub auth_typ: String,
    /// The claims, in the token's order.
    pub claims: Vec<Claim>,
    /// [`NAME_TYPE`].
    pub name_typ: String,
    /// [`ROLE_TYPE`].
    pub role_typ: String,
    /// `X-MS-CLIENT-PRINCIPAL-ID`: `oid` for Entra, else `sub`.
    #[serde(skip)]
    pub id: String,
    /// `X-MS-CLIENT-PRINCIPAL-NAME`: the human name (UPN, email...), as App Service sends it.
    #[serde(skip)]
    pub name: String,
}

impl ClientPrincipal {
    /// Builds the principal for `provider` (`aad`, or a custom provider's name) from validated
    /// token claims, in the claims' order. `name_claim` overrides which claim names the user
    /// (custom providers' `login.nameClaimType`).
    pub fn from_claims(
        provider: &str,
        claims: &Map<String, Value>,
        legacy: bool,
        name_claim: Option<&str>,
    ) -> ClientPrincipal {
        let text = |k: &str| {
            claims
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let name = name_claim
            .and_then(text)
            .or_else(|| text("preferred_username"))
            .or_else(|| text("upn"))
            .or_else(|| text("unique_name"))
            .or_else(|| text("email"))
            .or_else(|| text("name"))
            .or_else(|| text("sub"))
            .unwrap_or_default()
            .to_owned();
        let id = text("oid")
            .or_else(|| text("sub"))
            .unwrap_or_default()
            .to_owned();
        let mut out = Vec::with_capacity(claims.len() + 1);
        for (key, value) in claims {
            let typ = claim_type(key, legacy);
            match value {
                Value::Array(items) => out.extend(items.iter().map(|v| Claim {
                    typ: typ.clone(),
                    val: stringify(v),
                })),
                Value::Null => {}
                other => out.push(Claim {
                    typ,
                    val: stringify(other),
                }),
            }
        }
        // So that frameworks reading `name_typ` (Microsoft.Identity.Web, ClaimsPrincipal.Identity
        // .Name) find the same name the -NAME header carries.
        if !name.is_empty() && !out.iter().any(|c| c.typ == NAME_TYPE) {
            out.push(Claim {
                typ: NAME_TYPE.into(),
                val: name.clone(),
            });
        }
        ClientPrincipal {
            auth_typ: provider.to_owned(),
            claims: out,
            name_typ: NAME_TYPE.into(),
            role_typ: ROLE_TYPE.into(),
            id,
            name,
        }
    }

    /// The base64 JSON of `X-MS-CLIENT-PRINCIPAL`.
    pub fn encode(&self) -> Result<String, serde_json::Error> {
        Ok(STANDARD.encode(serde_json::to_vec(self)?))
    }

    /// Adds the four principal headers. Values that cannot be header values (control
    /// characters in a claim) are percent-encoded rather than dropped.
    pub fn insert_headers(&self, headers: &mut HeaderMap) {
        let put = |headers: &mut HeaderMap, name: &'static str, value: &str| {
            let value = HeaderValue::from_str(value).unwrap_or_else(|_| {
                let escaped: String =
                    percent_encoding::utf8_percent_encode(value, percent_encoding::CONTROLS)
                        .collect();
                HeaderValue::from_str(&escaped).unwrap_or(HeaderValue::from_static(""))
            });
            headers.insert(HeaderName::from_static(name), value);
        };
        match self.encode() {
            Ok(encoded) => put(headers, "x-ms-client-principal", &encoded),
            // Strings and arrays of strings always serialise; should that ever change, the app
            // gets the other headers and the log says why the principal is missing.
            Err(e) => {
                tracing::error!(target: "easyauth::module", error = %e, "X-MS-CLIENT-PRINCIPAL could not be encoded")
            }
        }
        put(headers, "x-ms-client-principal-id", &self.id);
        put(headers, "x-ms-client-principal-name", &self.name);
        put(headers, "x-ms-client-principal-idp", &self.auth_typ);
    }
}

/// The identity and token headers every request of one session (or one validated bearer token)
/// gets. Built once and shared: cloning a `HeaderValue` only bumps a reference count, so the
/// per-request cost is a few inserts instead of rebuilding and re-encoding the principal.
pub(crate) type InjectedHeaders = Arc<[(HeaderName, HeaderValue)]>;

/// Where a session record or validated token keeps its [`InjectedHeaders`]. A clone starts
/// empty: records are cloned to be edited (refreshed tokens), and the copy must not inject the
/// original's headers. It is a cache, not data, so any two compare equal.
#[derive(Debug, Default)]
pub(crate) struct InjectedCell(std::sync::OnceLock<InjectedHeaders>);

impl InjectedCell {
    pub(crate) fn get_or_init(&self, build: impl FnOnce() -> InjectedHeaders) -> InjectedHeaders {
        self.0.get_or_init(build).clone()
    }
}

impl Clone for InjectedCell {
    fn clone(&self) -> InjectedCell {
        InjectedCell::default()
    }
}

impl PartialEq for InjectedCell {
    fn eq(&self, _: &InjectedCell) -> bool {
        true
    }
}

fn claim_type(key: &str, legacy: bool) -> String {
    if let Some((_, long)) = LEGACY_MAP.iter().find(|(short, _)| *short == key) {
        return (*long).to_owned();
    }
    if key == "roles" && !legacy {
        return ROLE_TYPE.to_owned();
    }
    key.to_owned()
}

fn stringify(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cloned_injected_cell_builds_its_own_headers() {
        let headers = |v: &'static str| -> InjectedHeaders {
            Arc::from(vec![(
                HeaderName::from_static("x-ms-token-aad-access-token"),
                HeaderValue::from_static(v),
            )])
        };
        let cell = InjectedCell::default();
        assert_eq!(cell.get_or_init(|| headers("old"))[0].1, "old");
        assert_eq!(
            cell.get_or_init(|| headers("ignored"))[0].1,
            "old",
            "built once"
        );
        // A refreshed session is an edited clone: it must not inject the old token.
        let copy = cell.clone();
        assert_eq!(copy.get_or_init(|| headers("new"))[0].1, "new");
        assert_eq!(cell.get_or_init(|| headers("ignored"))[0].1, "old");
    }

    #[test]
    fn principal_shape_and_headers() {
        let claims = json!({"aud": "api://x", "iat": 1615483502, "oid": "o-1", "tid": "t-1", "sub": "s-1",
            "preferred_username": "alice@contoso.test", "roles": ["A", "B"], "scp": "user_impersonation", "name": "Alice"});
        let p =
            ClientPrincipal::from_claims("aad", claims.as_object().expect("object"), true, None);
        assert_eq!(p.id, "o-1");
        assert_eq!(p.name, "alice@contoso.test");
        let mut headers = HeaderMap::new();
        p.insert_headers(&mut headers);
        let decoded: Value = serde_json::from_slice(
            &STANDARD
                .decode(headers["x-ms-client-principal"].as_bytes())
                .expect("b64"),
        )
        .expect("json");
        assert_eq!(decoded["auth_typ"], "aad");
        assert_eq!(decoded["name_typ"], NAME_TYPE);
        assert_eq!(decoded["role_typ"], ROLE_TYPE);
        let claims = decoded["claims"].as_array().expect("array");
        assert!(
            claims.contains(&json!({"typ": "iat", "val": "1615483502"})),
            "numbers are strings"
        );
        assert!(claims.contains(&json!({"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": "o-1"})));
        assert!(
            claims.contains(&json!({"typ": "roles", "val": "A"}))
                && claims.contains(&json!({"typ": "roles", "val": "B"}))
        );
        assert!(claims.contains(&json!({"typ": NAME_TYPE, "val": "alice@contoso.test"})));
        assert_eq!(headers["x-ms-client-principal-idp"], "aad");
        assert_eq!(headers["x-ms-client-principal-id"], "o-1");
        let modern = ClientPrincipal::from_claims(
            "aad",
            json!({"roles": ["A"]}).as_object().expect("object"),
            false,
            None,
        );
        assert_eq!(modern.claims[0].typ, ROLE_TYPE);
    }
}
