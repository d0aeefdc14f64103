//! The sign-in and consent pages of the authorize flow. Each form carries the authorize request
//! (`ctx`) and a CSRF token; the request is validated again when the form comes back.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::request::AuthorizeRequest;
use super::respond::html_response;
use crate::Idp;
use crate::directory::Directory;
use crate::log::LogFields;
use crate::pages;
use crate::scopes::ResourceScopes;

pub(super) fn sign_in(
    idp: &Idp,
    dir: &Directory,
    req: &AuthorizeRequest,
    headers: &HeaderMap,
    error: Option<&str>,
) -> Response {
    let (csrf, set_cookie) = idp.csrf_token(headers);
    let action = format!("{}/{}/login", idp.config.public_url, dir.tenant.id);
    let ctx = req.params.encode();
    let html = pages::sign_in(&pages::SignIn {
        action: &action,
        ctx: &ctx,
        csrf: &csrf,
        app_name: &req.client.display_name,
        tenant_name: dir
            .tenant
            .display_name
            .as_deref()
            .unwrap_or(&dir.tenant.domain),
        login_hint: req.login_hint.as_deref(),
        error,
    });
    html_response(
        StatusCode::OK,
        html,
        set_cookie,
        LogFields::for_client(dir, &req.client),
    )
}

/// The consent page for what `user` must still consent to, resource by resource.
pub(super) fn consent(
    idp: &Idp,
    dir: &Directory,
    req: &AuthorizeRequest,
    headers: &HeaderMap,
    user_name: &str,
    to_consent: &[(&ResourceScopes, Vec<String>)],
) -> Response {
    let permissions: Vec<pages::Permission> = to_consent
        .iter()
        .flat_map(|(r, values)| values.iter().map(|v| pages::Permission::of(&r.app, v)))
        .collect();
    let (csrf, set_cookie) = idp.csrf_token(headers);
    let action = format!("{}/{}/consent", idp.config.public_url, dir.tenant.id);
    let ctx = req.params.encode();
    let html = pages::consent(&pages::Consent {
        action: &action,
        ctx: &ctx,
        csrf: &csrf,
        app_name: &req.client.display_name,
        user: user_name,
        permissions: &permissions,
    });
    html_response(
        StatusCode::OK,
        html,
        set_cookie,
        LogFields::for_client(dir, &req.client),
    )
}
