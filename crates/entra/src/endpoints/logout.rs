//! End session: clears the identity provider's sign-in session, then returns to
//! `post_logout_redirect_uri` only if it is registered for the client (named by `client_id` or
//! by the `id_token_hint`); otherwise it shows the signed-out page.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::form::{Params, read_form};
use super::tenant;
use crate::Idp;
use crate::error::JsonError;
use crate::log::LogFields;
use crate::pages;

pub(crate) async fn logout(
    State(idp): State<Arc<Idp>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, JsonError> {
    let params = Params::from_query(query.as_deref())?;
    end(&idp, &name, &headers, &params).await
}

pub(crate) async fn logout_post(
    State(idp): State<Arc<Idp>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, JsonError> {
    let params = read_form(&headers, body).await?;
    end(&idp, &name, &headers, &params).await
}

async fn end(
    idp: &Idp,
    name: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, JsonError> {
    let (dir, _) = tenant(idp, name)?;
    let clear = idp.end_session(headers).await;
    let hinted_client = params
        .get("id_token_hint")
        .and_then(|t| idp.keys().verify_own(t).ok())
        .and_then(|claims| claims.get("aud").and_then(Value::as_str).map(str::to_owned));
    let client = params
        .get("client_id")
        .map(str::to_owned)
        .or(hinted_client)
        .and_then(|id| dir.app(&id).cloned());
    let target = params.get("post_logout_redirect_uri").filter(|uri| {
        client.as_ref().is_some_and(|app| {
            app.redirect_kind(uri).is_some() || app.web.logout_url.as_deref() == Some(*uri)
        })
    });
    let mut response = match target {
        Some(uri) => {
            let mut location = uri.to_owned();
            if let Some(state) = params.get("state") {
                let sep = if location.contains('?') { '&' } else { '?' };
                location.push(sep);
                location.push_str(
                    &form_urlencoded::Serializer::new(String::new())
                        .append_pair("state", state)
                        .finish(),
                );
            }
            let mut r = StatusCode::FOUND.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        None => Html(pages::signed_out()).into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(LogFields {
        tenant: Some(dir.tenant.id.clone()),
        client: client.map(|c| c.app_id.clone()),
        grant: None,
    });
    Ok(response)
}
