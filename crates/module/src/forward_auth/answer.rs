//! The pipeline's answer to a check, shaped for the proxy style that asked.
//!
//! - nginx `auth_request` understands 2xx, 401 and 403 and turns anything else into a 500, so a
//!   sign-in redirect becomes 401 with the sign-in URL in [`LOGIN_HEADER`] (the documented
//!   `error_page 401 = @signin` location redirects to it), and any other refusal becomes 403.
//! - Caddy and Traefik send non-2xx answers to the client as they are: the pipeline's answer is
//!   the answer.
//! - Envoy sends non-200 answers to the client too; an allowing answer also lists, in
//!   `x-envoy-auth-headers-to-remove`, the identity headers it does not set, so a client's
//!   copies of them do not reach the app.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::style::Style;
use crate::headers::is_reserved;
use crate::module::Module;
use crate::refusal::Refusal;
use crate::respond::refuse;

/// Where nginx's `@signin` location sends a browser (a path on the site, already validated).
pub(crate) const LOGIN_HEADER: &str = "x-easyauth-login";

/// Envoy removes the request headers this response header names before forwarding.
const ENVOY_REMOVE: &str = "x-envoy-auth-headers-to-remove";

/// The token headers the module sets per provider, after `x-ms-token-<alias>-`.
const TOKEN_SUFFIXES: &[&str] = &["access-token", "id-token", "refresh-token", "expires-on"];

/// The principal headers the module sets.
const PRINCIPAL: &[&str] = &[
    "x-ms-client-principal",
    "x-ms-client-principal-name",
    "x-ms-client-principal-id",
    "x-ms-client-principal-idp",
];

/// The identity headers the module can set with these settings, lower-case: the ones each
/// documented proxy configuration sets (or clears) on every request to the app.
pub(crate) fn identity_header_names(m: &Module) -> Vec<String> {
    let mut names: Vec<String> = PRINCIPAL.iter().map(|h| (*h).to_owned()).collect();
    for p in m.providers() {
        let alias = p.alias().to_ascii_lowercase();
        names.extend(
            TOKEN_SUFFIXES
                .iter()
                .map(|s| format!("x-ms-token-{alias}-{s}")),
        );
    }
    names
}

/// For nginx: a client-supplied identity header the documented configuration does not
/// overwrite (another provider's token header, `X-MS-AUTH-*`, an `_` spelling with
/// `underscores_in_headers on`). nginx cannot remove headers by pattern, so such a request
/// is refused rather than let through with the header. `X-ZUMO-AUTH` is a credential the
/// configuration clears after the check.
pub(crate) fn unremovable(m: &Module, check: &HeaderMap) -> Option<String> {
    let known = identity_header_names(m);
    check
        .keys()
        .map(|k| k.as_str())
        .filter(|k| is_reserved(k) && *k != "x-zumo-auth")
        .find(|k| !known.iter().any(|n| n == k))
        .map(str::to_owned)
}

/// 400 for a malformed description of the original request.
pub(crate) fn bad_request(m: &Module, refusal: &Refusal) -> Response {
    refuse(m, StatusCode::BAD_REQUEST, refusal)
}

/// `response` as `style` expects it. `check` is the check request's headers.
pub(crate) fn shape(m: &Module, style: Style, response: Response, check: &HeaderMap) -> Response {
    match style {
        Style::Nginx => nginx(response),
        Style::Forwarded => response,
        Style::Envoy => envoy(m, response, check),
    }
}

fn nginx(response: Response) -> Response {
    let status = response.status();
    if status.is_success() || status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
    {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let login = status
        .is_redirection()
        .then(|| parts.headers.remove(header::LOCATION))
        .flatten();
    parts.headers.remove(header::CONTENT_LENGTH);
    match login {
        Some(location) => {
            parts.status = StatusCode::UNAUTHORIZED;
            parts
                .headers
                .insert(HeaderName::from_static(LOGIN_HEADER), location);
        }
        // Return404, a malformed check, an internal failure: deny.
        None => parts.status = StatusCode::FORBIDDEN,
    }
    Response::from_parts(parts, Body::empty())
}

fn envoy(m: &Module, mut response: Response, check: &HeaderMap) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let set = response.headers();
    let mut remove = identity_header_names(m);
    remove.extend(
        check
            .keys()
            .filter(|k| is_reserved(k.as_str()))
            .map(|k| k.as_str().to_owned()),
    );
    remove.retain(|name| !set.contains_key(name.as_str()));
    remove.sort();
    remove.dedup();
    if !remove.is_empty()
        && let Ok(v) = HeaderValue::from_str(&remove.join(","))
    {
        response
            .headers_mut()
            .insert(HeaderName::from_static(ENVOY_REMOVE), v);
    }
    response
}
