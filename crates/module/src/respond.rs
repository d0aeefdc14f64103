//! The module's own answers: refusals (with their reason in development mode), App Service's 401
//! challenge, redirects that set cookies, and its small HTML pages.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::metrics::RefusedFor;
use crate::module::Module;
use crate::refusal::{REASON_CODE_HEADER, REASON_HEADER, ReasonCode, Refusal};
use crate::site::Site;

/// A refusal; the body explains it only in development mode (the log always does).
pub(crate) fn refuse(m: &Module, status: StatusCode, refusal: &Refusal) -> Response {
    let reason = &refusal.message;
    let body = if m.settings.development {
        Body::from(format!(
            "{} {}: {reason}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ))
    } else {
        Body::empty()
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if m.metrics.is_some() {
        r.extensions_mut().insert(RefusedFor(refusal.code));
    }
    if m.settings.development {
        let headers = r.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&reason.replace(['\r', '\n'], " ")) {
            headers.insert(HeaderName::from_static(REASON_HEADER), v);
        }
        headers.insert(
            HeaderName::from_static(REASON_CODE_HEADER),
            HeaderValue::from_static(refusal.code.as_str()),
        );
    }
    r
}

/// A 401 with App Service's challenge.
pub(crate) async fn unauthorized(m: &Module, site: Option<&Site>, refusal: &Refusal) -> Response {
    let mut r = refuse(m, StatusCode::UNAUTHORIZED, refusal);
    if let Some(provider) = m
        .default_provider()
        .filter(|p| !p.settings.disable_www_authenticate)
        && let Some(endpoint) = provider.authorization_endpoint().await
    {
        let host = site.map_or_else(|| "localhost".to_owned(), Site::host_name);
        let challenge = format!(
            "Bearer realm=\"{host}\" authorization_uri=\"{endpoint}\" resource_id=\"{}\"",
            provider.settings.client_id
        );
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}

/// 400 for a request the module cannot place (no usable Host).
pub(crate) fn bad_request(m: &Module, refusal: &Refusal) -> Response {
    let mut r = refuse(m, StatusCode::BAD_REQUEST, refusal);
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// A 302 to `location` that sets `cookies`.
pub(crate) fn found(location: &str, cookies: Vec<String>) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    set_cookies(&mut r, cookies);
    r
}

/// Adds `Set-Cookie` headers; an answer that sets cookies is never cached.
pub(crate) fn set_cookies(r: &mut Response, cookies: Vec<String>) {
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    no_store(r);
}

/// `Cache-Control: no-cache, no-store`: answers about a user's session.
pub(crate) fn no_store(r: &mut Response) {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
}

/// One of the module's small pages: a title and some HTML under it.
pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body><h1>{t}</h1>{body}</body></html>",
        t = html_escape::encode_text(title)
    );
    (status, Html(html)).into_response()
}

/// How long a client should wait before retrying while the session store is down.
const STORE_RETRY_AFTER_SECONDS: &str = "5";

/// 503 for a request whose session the store could not answer for: not a sign-in redirect and
/// no cookie cleared, so the session works again as soon as the store does.
pub(crate) fn store_unavailable(m: &Module, error: &dyn std::fmt::Display) -> Response {
    tracing::error!(target: "easyauth::module", status = 503, error = %error, "session store unavailable");
    let mut r = refuse(
        m,
        StatusCode::SERVICE_UNAVAILABLE,
        &Refusal::new(
            ReasonCode::SessionStoreUnavailable,
            format!("{error}; the session is kept, try again shortly"),
        ),
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(STORE_RETRY_AFTER_SECONDS),
    );
    no_store(&mut r);
    r
}
