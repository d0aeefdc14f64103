//! The HTTP surface, one module per protocol area.

pub mod authorize;
pub mod devicecode;
pub mod discovery;
pub mod form;
pub mod graph;
pub mod logout;
pub mod token;

use crate::util::clip;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use crate::Idp;
use crate::directory::Directory;
use crate::error::{EntraError, JsonError};

pub(crate) fn router(idp: Arc<Idp>) -> Router {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration_v2),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(discovery::openid_configuration_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(discovery::keys_v2))
        .route("/{tenant}/discovery/keys", get(discovery::keys_v1))
        .route("/common/discovery/instance", get(discovery::instance))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::get).post(authorize::post),
        )
        .route("/{tenant}/login", post(authorize::submit_sign_in))
        .route("/{tenant}/consent", post(authorize::submit_consent))
        .route("/{tenant}/oauth2/v2.0/token", any(token::token))
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            any(devicecode::device_authorization),
        )
        // The page the device authorization endpoint's `verification_uri` names, and the v1
        // spelling of it.
        .route(
            "/devicelogin",
            get(devicecode::page::show).post(devicecode::page::submit),
        )
        .route(
            "/{tenant}/oauth2/deviceauth",
            get(devicecode::page::show_for_tenant),
        )
        .route(
            "/{tenant}/oauth2/v2.0/logout",
            get(logout::logout).post(logout::logout_post),
        )
        .route("/v1.0", any(graph::serve))
        .route("/v1.0/", any(graph::serve))
        .route("/v1.0/{*rest}", any(graph::serve))
        .route(
            "/oidc/userinfo",
            get(graph::me::userinfo).post(graph::me::userinfo),
        )
        // The v1 document advertises these, as Entra's does: logout and the device authorization
        // endpoint mean the same (scopes, not `resource=`), the token endpoint serves the
        // device-code grant; the v1 authorize and token protocols (`resource=`) are refused
        // with an explanation.
        .route(
            "/{tenant}/oauth2/logout",
            get(logout::logout).post(logout::logout_post),
        )
        .route(
            "/{tenant}/oauth2/devicecode",
            any(devicecode::device_authorization),
        )
        .route("/{tenant}/oauth2/token", any(token::token_v1))
        .route("/{tenant}/oauth2/authorize", any(v1_unsupported))
        // Liveness and readiness: tenant routes have two segments or more, so neither shadows one.
        .route("/healthz", get(crate::health::healthz_route))
        .route("/readyz", get(crate::health::readyz_route))
        .fallback(not_found)
        .with_state(idp)
}

async fn v1_unsupported() -> Response {
    JsonError::from(v1_refusal()).into_response()
}

pub(crate) fn v1_refusal() -> EntraError {
    EntraError::InvalidRequest {
        code: 901002,
        message: "The v1.0 authorize and token endpoints (with 'resource=') are not served by easyauth's identity provider; use /oauth2/v2.0/ with scopes such as '<resource>/.default'.".into(),
    }
}

async fn not_found() -> Response {
    let err = EntraError::InvalidRequest {
        code: 900561,
        message: "The requested endpoint does not exist.".into(),
    };
    let mut response = JsonError::from(err).into_response();
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// How a request named its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TenantAlias {
    /// The tenant id or one of its domains.
    Specific,
    /// `common` or `organizations`: multi-tenant metadata with a `{tenantid}` issuer template.
    Multi,
}

/// Resolves the `{tenant}` path segment against the directory (AADSTS90002 when unknown).
pub(crate) fn tenant(idp: &Idp, name: &str) -> Result<(Arc<Directory>, TenantAlias), EntraError> {
    let dir = idp.directory();
    if dir.is_tenant(name) {
        return Ok((dir, TenantAlias::Specific));
    }
    if name.eq_ignore_ascii_case("common") || name.eq_ignore_ascii_case("organizations") {
        return Ok((dir, TenantAlias::Multi));
    }
    Err(EntraError::TenantNotFound(clip(name, 100)))
}
