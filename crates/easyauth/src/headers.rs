//! Which request headers a client may never set. App Service's front end strips every
//! client-supplied identity and token header before the app sees the request; apps (like the
//! tutorial's samples) trust whatever `X-MS-*` headers reach them, so missing one spelling is an
//! authentication bypass (oauth2-proxy GHSA-vjrc-mh2v-45x6 smuggled `_` and case variants).
//!
//! Matching is on a canonical form: ASCII lower-case with `_` read as `-`, because servers and
//! frameworks (CGI, WSGI, PHP, nginx with `underscores_in_headers`) treat those as the same name.

use axum::http::{HeaderMap, HeaderName};

/// Canonical prefixes (lower-case, `-` separators) of headers only the module may set.
const RESERVED_PREFIXES: &[&str] = &[
    "x-ms-client-principal",
    "x-ms-token-",
    // App Service also sets these about the caller; a client must not choose them.
    "x-ms-auth-",
    "x-ms-easyauth-",
];

/// Headers that must not reach the app whatever their value (the module consumes them).
const RESERVED_EXACT: &[&str] = &["x-zumo-auth"];

/// Canonical form: lower-case, `_` → `-`.
fn canonical(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b == b'_' {
                '-'
            } else {
                b.to_ascii_lowercase() as char
            }
        })
        .collect()
}

/// Whether a client-supplied header with this name must be removed before proxying.
pub fn is_reserved(name: &str) -> bool {
    let c = canonical(name);
    RESERVED_PREFIXES.iter().any(|p| c.starts_with(p)) || RESERVED_EXACT.contains(&c.as_str())
}

/// Removes every reserved header, in any spelling, from a request's headers. Returns how many
/// were removed (for the log: a non-zero count on a request is worth a line).
pub fn strip_reserved(headers: &mut HeaderMap) -> usize {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_reserved(k.as_str()))
        .cloned()
        .collect();
    let mut removed = 0;
    for name in doomed {
        // `remove` drops every value of a repeated header.
        if headers.remove(&name).is_some() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn every_spelling_of_identity_and_token_headers_is_stripped() {
        let spoofed = [
            "X-MS-CLIENT-PRINCIPAL",
            "x-ms-client-principal",
            "X-Ms-Client-Principal-Id",
            "X_MS_CLIENT_PRINCIPAL_NAME",
            "x_ms-client_principal-idp",
            "X-MS-TOKEN-AAD-ACCESS-TOKEN",
            "x-ms-token-aad-id-token",
            "X_MS_TOKEN_AAD_REFRESH_TOKEN",
            "x-ms-token-aad-expires-on",
            "X-MS-TOKEN-GOOGLE-ACCESS-TOKEN",
            "X-MS-TOKEN-MYOIDC-ID-TOKEN",
            "X-ZUMO-AUTH",
            "x_zumo_auth",
        ];
        let mut headers = HeaderMap::new();
        for name in spoofed {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("valid"),
                HeaderValue::from_static("forged"),
            );
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("valid"),
                HeaderValue::from_static("again"),
            );
        }
        headers.insert("x-ms-request-id", HeaderValue::from_static("keep"));
        headers.insert("authorization", HeaderValue::from_static("Bearer keep"));
        headers.insert(
            "x-msclient-principal",
            HeaderValue::from_static("keep: not a reserved name"),
        );
        strip_reserved(&mut headers);
        for name in spoofed {
            assert!(headers.get(name).is_none(), "{name} survived");
        }
        assert!(!headers.keys().any(|k| is_reserved(k.as_str())));
        assert_eq!(headers.len(), 3, "unrelated headers stay: {headers:?}");
    }
}
