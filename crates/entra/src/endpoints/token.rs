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
use crate::grants::{self, GrantContext};
use crate::log::LogFields;

pub(crate) async fn token(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, JsonError> {
    let correlation_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            Params::from_query(query.as_deref())
                .ok()
                .and_then(|p| p.get("client-request-id").map(str::to_owned))
        });
    let mut fields = LogFields::default();
    let fail = |error: EntraError, fields: &LogFields| JsonError {
        error,
        correlation_id: correlation_id.clone(),
        fields: Some(fields.clone()),
    };
    if method != Method::POST {
        return Err(fail(
            EntraError::MethodNotAllowed(method.to_string()),
            &fields,
        ));
    }
    let (dir, _) = tenant(&idp, &tenant_name).map_err(|e| fail(e, &fields))?;
    fields.tenant = Some(dir.tenant.id.clone());
    let params = read_form(&headers, body)
        .await
        .map_err(|e| fail(e, &fields))?;
    // Only values that identify (never authenticate) reach the log: a known app's id and the grant.
    fields.client = params
        .get("client_id")
        .and_then(|id| dir.app(id))
        .map(|a| a.app_id.clone());
    fields.grant = params.get("grant_type").and_then(grants::grant_name);
    let ctx = GrantContext {
        idp: &idp,
        dir: &dir,
        params: &params,
        headers: &headers,
    };
    grants::dispatch(&ctx).await.map_err(|e| fail(e, &fields))
}
