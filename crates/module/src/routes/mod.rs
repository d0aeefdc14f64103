//! The module's own routes under the API prefix (`/.auth`), one module per flow step.

mod attempt;
mod callback;
mod client_login;
mod fragment;
mod login;
mod logout;
mod me;
mod refresh;
mod request;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::context::site_of;
use crate::module::Module;
use crate::refusal::{ReasonCode, Refusal};
use crate::respond::{page, refuse};

/// Answers a request under the API prefix (or the custom logout path).
pub(crate) async fn handle(m: &Module, request: Request) -> Response {
    // Routes are rare next to proxied requests: one copy of the site is fine here.
    let Some(site) = site_of(request.extensions()).cloned() else {
        return refuse(
            m,
            StatusCode::BAD_REQUEST,
            &Refusal::new(ReasonCode::NoSite, "no site for this request"),
        );
    };
    let site = &site;
    let path = request.uri().path().to_owned();
    let rest = if m.settings.logout_path.as_deref() == Some(path.as_str()) {
        "/logout".to_owned()
    } else {
        path[m.settings.api_prefix.len()..].to_owned()
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let (parts, body) = request.into_parts();
    let request = &parts;
    let no_provider = |alias: &str| {
        refuse(
            m,
            StatusCode::NOT_FOUND,
            &Refusal::new(
                ReasonCode::UnknownProvider,
                format!("no identity provider named {alias}"),
            ),
        )
    };
    match (parts.method.clone(), segments.as_slice()) {
        (Method::GET, ["version"]) => {
            axum::Json(json!({"version": env!("CARGO_PKG_VERSION")})).into_response()
        }
        (Method::GET, ["login"]) => login::default_login(m, request),
        (Method::GET, ["login", "done"]) => page(
            StatusCode::OK,
            "You have successfully signed in",
            "<p><a href=\"/\">Return to the website</a></p>",
        ),
        (Method::GET, ["login", alias]) => match m.provider(alias) {
            Some(p) => login::start_login(m, site, p, request).await,
            None => no_provider(alias),
        },
        (Method::POST, ["login", alias]) => match m.provider(alias) {
            Some(p) => client_login::client_login(m, site, p, request, body).await,
            None => no_provider(alias),
        },
        (Method::GET | Method::POST, ["login", alias, "callback"]) => match m.provider(alias) {
            Some(p) => callback::callback(m, site, p, request, body).await,
            None => no_provider(alias),
        },
        (Method::GET, ["me"]) => me::me(m, site, request).await,
        (Method::GET, ["refresh"]) => {
            let response = refresh::refresh(m, site, request).await;
            if let Some(metrics) = &m.metrics {
                metrics.refresh(crate::metrics::RefreshResult::of(&response));
            }
            response
        }
        (Method::GET, ["logout"]) => logout::logout(m, site, request).await,
        (Method::GET, ["logout", "complete" | "done"]) => logout::logout_complete(m, site, request),
        _ => refuse(
            m,
            StatusCode::NOT_FOUND,
            &Refusal::new(ReasonCode::UnknownRoute, format!("no route {path}")),
        ),
    }
}
