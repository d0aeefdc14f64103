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

/// Headers App Service's front end sets about the request. A client's copy could re-route the
/// request inside the app after authorization (`X-Original-URL` / `X-Rewrite-URL` are honoured
/// by IIS rewrite and some frameworks) or lie about the connection, so they never pass.
/// `X-ARR-ClientCert` matters most: App Service sets it only from a verified TLS client
/// certificate, and apps (ASP.NET Core certificate forwarding) take it as the caller's.
const FRONT_END: &[&str] = &[
    "x-arr-clientcert",
    "x-arr-ssl",
    "x-arr-log-id",
    "x-client-ip",
    "x-client-port",
    "client-ip",
    "x-forwarded-tlsversion",
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-waws-unencoded-url",
    "x-site-deployment-id",
    "disguised-host",
    "was-default-hostname",
    "x-appservice-proto",
];

/// Removes client-supplied front-end headers; `Forwarded` too unless a forward proxy is trusted.
pub(crate) fn strip_front_end(headers: &mut HeaderMap, keep_forwarded: bool) {
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| {
            let name = k.as_str();
            FRONT_END.iter().any(|f| canonical_eq(name, f))
                || (!keep_forwarded && canonical_eq(name, "forwarded"))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
}

/// Applies the client's `Connection` header now, before the module adds its own headers: the
/// headers it names are dropped and only `upgrade` survives in it. Otherwise a client could name
/// the identity headers in `Connection` and have the proxy's final hop-by-hop cleanup remove them.
pub(crate) fn apply_connection(headers: &mut HeaderMap) {
    let tokens: Vec<String> = headers
        .get_all(axum::http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        return;
    }
    let upgrade = tokens.iter().any(|t| t == "upgrade");
    for t in &tokens {
        if t != "upgrade"
            && let Ok(name) = HeaderName::from_bytes(t.as_bytes())
        {
            headers.remove(&name);
        }
    }
    headers.remove(axum::http::header::CONNECTION);
    if upgrade {
        headers.insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("upgrade"),
        );
    }
}

/// Whether the request asks to switch to WebSocket, the one protocol the module lets through
/// (after it has decided on the request).
pub(crate) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"));
    upgrade
        && headers
            .get_all(axum::http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Removes any protocol switch other than WebSocket (`Upgrade: h2c` with `HTTP2-Settings`,
/// TLS, ...). An app that accepted one would turn the connection into a tunnel whose later
/// requests never pass the module. Returns whether something was removed.
pub(crate) fn strip_other_upgrades(headers: &mut HeaderMap) -> bool {
    let asked =
        headers.contains_key(axum::http::header::UPGRADE) || headers.contains_key("http2-settings");
    if !asked || is_websocket_upgrade(headers) {
        return false;
    }
    headers.remove(axum::http::header::UPGRADE);
    headers.remove("http2-settings");
    headers.remove(axum::http::header::CONNECTION);
    true
}

/// One byte of the canonical form: lower-case, `_` → `-`.
fn canonical_byte(b: u8) -> u8 {
    if b == b'_' {
        b'-'
    } else {
        b.to_ascii_lowercase()
    }
}

/// Whether `name`'s canonical form starts with `prefix` (itself canonical). Compared byte by
/// byte rather than by building the canonical form: this runs for every header of every
/// request.
fn canonical_starts_with(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name
            .bytes()
            .zip(prefix.bytes())
            .all(|(n, p)| canonical_byte(n) == p)
}

/// Whether `name`'s canonical form is `exact` (itself canonical).
fn canonical_eq(name: &str, exact: &str) -> bool {
    name.len() == exact.len() && canonical_starts_with(name, exact)
}

/// Whether a client-supplied header with this name must be removed before proxying.
pub(crate) fn is_reserved(name: &str) -> bool {
    RESERVED_PREFIXES
        .iter()
        .any(|p| canonical_starts_with(name, p))
        || RESERVED_EXACT.iter().any(|e| canonical_eq(name, e))
}

/// Removes every reserved header, in any spelling, from a request's headers. Returns how many
/// were removed (for the log: a non-zero count on a request is worth a line).
pub(crate) fn strip_reserved(headers: &mut HeaderMap) -> usize {
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
    fn connection_nominated_headers_go_before_the_module_adds_its_own() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, X-MS-CLIENT-PRINCIPAL, x-keep-me-not, Upgrade"),
        );
        h.insert("x-keep-me-not", HeaderValue::from_static("1"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("x-other", HeaderValue::from_static("1"));
        apply_connection(&mut h);
        assert!(h.get("x-keep-me-not").is_none());
        assert_eq!(
            h["connection"], "upgrade",
            "only upgrade survives, so the module's headers cannot be named"
        );
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["x-other"], "1");
    }

    #[test]
    fn front_end_headers_from_clients_are_dropped() {
        let mut h = HeaderMap::new();
        for name in [
            "X-Original-URL",
            "x_rewrite_url",
            "Client-IP",
            "X-ARR-SSL",
            "Forwarded",
            "X-WAWS-Unencoded-URL",
            "X-ARR-ClientCert",
            "x-arr-clientcert",
            "X_ARR_CLIENTCERT",
            "X-Client-Port",
            "X-Forwarded-TlsVersion",
            "X-Site-Deployment-Id",
            "DISGUISED-HOST",
            "WAS-DEFAULT-HOSTNAME",
        ] {
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_static("forged"),
            );
        }
        h.insert("x-app", HeaderValue::from_static("keep"));
        h.insert(
            "x-arr-clientcertificate",
            HeaderValue::from_static("keep: another name"),
        );
        strip_front_end(&mut h, true);
        assert_eq!(
            h.len(),
            3,
            "only Forwarded (trusted proxy) and the app's headers stay: {h:?}"
        );
        strip_front_end(&mut h, false);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn only_websocket_upgrades_survive() {
        let mut h2c = HeaderMap::new();
        h2c.insert(
            "connection",
            HeaderValue::from_static("Upgrade, HTTP2-Settings"),
        );
        h2c.insert("upgrade", HeaderValue::from_static("h2c"));
        h2c.insert(
            "http2-settings",
            HeaderValue::from_static("AAMAAABkAARAAAAAAAIAAAAA"),
        );
        assert!(!is_websocket_upgrade(&h2c));
        assert!(strip_other_upgrades(&mut h2c));
        assert!(h2c.is_empty(), "{h2c:?}");
        // Settings alone (no Upgrade) go too.
        let mut settings = HeaderMap::new();
        settings.insert("http2-settings", HeaderValue::from_static("x"));
        assert!(strip_other_upgrades(&mut settings));
        assert!(settings.is_empty());
        for other in ["websocket, h2c", "TLS/1.2", "h2c"] {
            let mut h = HeaderMap::new();
            h.insert("connection", HeaderValue::from_static("upgrade"));
            h.insert("upgrade", HeaderValue::from_static(other));
            assert!(strip_other_upgrades(&mut h), "{other}");
        }
        let mut ws = HeaderMap::new();
        ws.insert(
            "connection",
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        ws.insert("upgrade", HeaderValue::from_static("WebSocket"));
        assert!(is_websocket_upgrade(&ws));
        assert!(!strip_other_upgrades(&mut ws));
        assert_eq!(ws.len(), 2);
    }

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
