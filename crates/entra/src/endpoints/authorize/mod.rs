//! The authorization endpoint, with its sign-in and consent steps, one file per step:
//! `request` validates (the one path every entry takes), `flow` applies the sign-in and consent
//! rules, `signin` and `consent` take their forms back, `code` issues the code, `respond` and
//! `page` answer.

mod code;
mod consent;
mod flow;
mod page;
mod request;
mod respond;
mod signin;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;

pub(crate) use code::{CODE_KIND, CodeRecord};
pub(crate) use consent::submit as submit_consent;
pub(crate) use respond::{error_page, html_response};
pub(crate) use signin::submit as submit_sign_in;

use super::form::{Params, read_form};
use super::tenant;
use crate::Idp;
use crate::error::EntraError;
use flow::{Flow, proceed};
use request::AuthorizeRequest;
use respond::{Rejection, reject};

/// GET /{tenant}/oauth2/v2.0/authorize
pub(crate) async fn get(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    start(
        &idp,
        &tenant_name,
        &headers,
        Params::from_query(query.as_deref()),
    )
    .await
}

/// POST /{tenant}/oauth2/v2.0/authorize (the same request, form-encoded).
pub(crate) async fn post(
    State(idp): State<Arc<Idp>>,
    Path(tenant_name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let params = read_form(&headers, body).await;
    start(&idp, &tenant_name, &headers, params).await
}

async fn start(
    idp: &Idp,
    tenant_name: &str,
    headers: &HeaderMap,
    params: Result<Params, EntraError>,
) -> Response {
    let dir = match tenant(idp, tenant_name) {
        Ok((dir, _)) => dir,
        Err(e) => return error_page(&e),
    };
    let req = match params
        .map_err(Rejection::Page)
        .and_then(|p| AuthorizeRequest::validate(&dir, p))
    {
        Ok(r) => r,
        Err(rejection) => return reject(rejection),
    };
    let session = idp.current_session(headers).await;
    proceed(idp, &dir, req, session, headers, Flow::default()).await
}
