//! The token endpoint: parses the form, authenticates the client as the grant requires, and
//! hands the request to the grant's own module.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;

use super::form::{Params, read_form};
use super::tenant;
use crate::Idp;
use crate::error::{EntraError, JsonError};
use crate::grants::{self, DEVICE_CODE, GrantContext};
use crate::log::LogFields;

/// The client's `client-request-id` (header or query), which Entra echoes as `correlation_id`.
pub(crate) fn correlation_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            Params::from_query(query)
                .ok()
                .and_then(|p| p.get("client-request-id").map(str::to_owned))
        })
}

/// POST /{tenant}/oauth2/v2.0/token
pub(crate) async fn token(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, JsonError> {
    serve(
        &idp,
        &tenant_name,
        &method,
        &headers,
        query.as_deref(),
        body,
        false,
    )
    .await
}

/// /{tenant}/oauth2/token, the v1 document's token endpoint: the device-code grant is served
/// there (a device code from the v1 document's device authorization endpoint is polled there);
/// the v1 protocol's other requests (`resource=`) are refused with a pointer to v2.0.
pub(crate) async fn token_v1(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, JsonError> {
    serve(
        &idp,
        &tenant_name,
        &method,
        &headers,
        query.as_deref(),
        body,
        true,
    )
    .await
}

async fn serve(
    idp: &Idp,
    tenant_name: &str,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Body,
    v1: bool,
) -> Result<Response, JsonError> {
    let correlation_id = correlation_id(headers, query);
    let mut fields = LogFields::default();
    let fail = |error: EntraError, fields: &LogFields| JsonError {
        error,
        correlation_id: correlation_id.clone(),
        fields: Some(fields.clone()),
    };
    if method != Method::POST {
        if v1 {
            return Err(fail(super::v1_refusal(), &fields));
        }
        return Err(fail(
            EntraError::MethodNotAllowed(method.to_string()),
            &fields,
        ));
    }
    let (dir, _) = tenant(idp, tenant_name).map_err(|e| fail(e, &fields))?;
    fields.tenant = Some(dir.tenant.id.clone());
    let params = read_form(headers, body)
        .await
        .map_err(|e| fail(e, &fields))?;
    // Only values that identify (never authenticate) reach the log: a known app's id and the grant.
    fields.client = params
        .get("client_id")
        .and_then(|id| dir.app(id))
        .map(|a| a.app_id.clone());
    fields.grant = params.get("grant_type").and_then(grants::grant_name);
    if v1 && (params.get("grant_type") != Some(DEVICE_CODE) || params.get("resource").is_some()) {
        return Err(fail(super::v1_refusal(), &fields));
    }
    // A sign-in's consent may have been recorded by another replica a moment ago: redeeming its
    // code re-reads the directory first (codes are redeemed once per sign-in, so this is cheap).
    let dir = if idp.config.refresh_interval.is_some()
        && params.get("grant_type") == Some("authorization_code")
    {
        idp.reload_directory()
            .await
            .map_err(|e| fail(crate::reload_error(e), &fields))?;
        idp.directory()
    } else {
        dir
    };
    let ctx = GrantContext {
        idp,
        dir: &dir,
        params: &params,
        headers,
    };
    grants::dispatch(&ctx).await.map_err(|e| fail(e, &fields))
}
