//! How the authorize flow answers: at the redirect URI in the request's response mode, or on the
//! identity provider's own error page when the redirect URI cannot be trusted; and the HTML
//! pages' common headers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::directory::{Application, Directory};
use crate::error::EntraError;
use crate::log::LogFields;
use crate::log::Outcome;
use crate::pages;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// Where a rejected request is answered.
pub(crate) enum Rejection {
    /// On the identity provider's own page: the redirect URI is not trustworthy.
    Page(EntraError),
    /// At the redirect URI.
    Redirect { error: EntraError, target: Target },
}

/// A verified redirect URI with its response mode and state.
pub(crate) struct Target {
    pub(crate) redirect_uri: String,
    pub(crate) mode: ResponseMode,
    pub(crate) state: Option<String>,
}

/// Sends `fields` to the redirect URI in the response mode.
pub(crate) fn respond(target: &Target, fields: &[(&str, String)]) -> Response {
    let encoded = || {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            s.append_pair(k, v);
        }
        s.finish()
    };
    let location = match target.mode {
        ResponseMode::FormPost => {
            let html = pages::form_post(&target.redirect_uri, fields);
            return html_response(StatusCode::OK, html, None, LogFields::default());
        }
        ResponseMode::Query => {
            let separator = if target.redirect_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            format!("{}{separator}{}", target.redirect_uri, encoded())
        }
        ResponseMode::Fragment => format!("{}#{}", target.redirect_uri, encoded()),
    };
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => error_page(&EntraError::Malformed(
            "The redirect URI cannot be used in a Location header.".into(),
        )),
    }
}

pub(crate) fn reject(rejection: Rejection) -> Response {
    match rejection {
        Rejection::Page(error) => error_page(&error),
        Rejection::Redirect { error, target } => {
            let body = error.body(None);
            let mut fields: Vec<(&str, String)> = vec![
                ("error", body.error.to_owned()),
                ("error_description", body.error_description),
            ];
            if let Some(state) = &target.state {
                fields.push(("state", state.clone()));
            }
            let mut response = respond(&target, &fields);
            response
                .extensions_mut()
                .insert(Outcome::Error(error.code()));
            response
        }
    }
}

pub(crate) fn error_page(error: &EntraError) -> Response {
    let body = error.body(None);
    let status = match error.status() {
        StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = html_response(
        status,
        pages::error(&body.error_description),
        None,
        LogFields::default(),
    );
    response
        .extensions_mut()
        .insert(Outcome::Error(error.code()));
    response
}

pub(crate) fn html_response(
    status: StatusCode,
    html: String,
    set_cookie: Option<String>,
    fields: LogFields,
) -> Response {
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action *; frame-ancestors 'none'"),
    );
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.append(header::SET_COOKIE, cookie);
    }
    response.extensions_mut().insert(fields);
    response
}

impl LogFields {
    pub(crate) fn for_client(dir: &Directory, client: &Application) -> LogFields {
        LogFields {
            tenant: Some(dir.tenant.id.clone()),
            client: Some(client.app_id.clone()),
            grant: None,
        }
    }
}
