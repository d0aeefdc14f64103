//! `GET /.auth/me`: the signed-in session as App Service reports it, with the same principal
//! the app receives in `X-MS-CLIENT-PRINCIPAL`.

use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::request::session_of;
use crate::clock::expires_on;
use crate::module::Module;
use crate::refusal::{ReasonCode, Refusal};
use crate::respond::{no_store, store_unavailable, unauthorized};
use crate::site::Site;

/// GET /.auth/me
pub(super) async fn me(m: &Module, site: &Site, request: &Parts) -> Response {
    let session = match session_of(m, site, request, false).await {
        Ok(s) => s,
        Err(e) => return store_unavailable(m, &e),
    };
    let Some((_, record, _)) = session else {
        let refusal = Refusal::new(
            ReasonCode::SessionRequired,
            "/.auth/me needs a signed-in session",
        );
        return unauthorized(m, Some(site), &refusal).await;
    };
    let principal = m.principal_for(&record.provider, &record.claims);
    // Keys in the alphabetical order App Service writes them; absent tokens are omitted.
    let mut entry = serde_json::Map::new();
    if let Some(at) = &record.access_token {
        entry.insert("access_token".into(), json!(at));
    }
    if let Some(exp) = record.expires_on.filter(|_| record.access_token.is_some()) {
        entry.insert("expires_on".into(), json!(expires_on(exp)));
    }
    if let Some(it) = &record.id_token {
        entry.insert("id_token".into(), json!(it));
    }
    entry.insert("provider_name".into(), json!(record.provider));
    if let Some(rt) = &record.refresh_token {
        entry.insert("refresh_token".into(), json!(rt));
    }
    entry.insert("user_claims".into(), json!(principal.claims));
    entry.insert("user_id".into(), json!(principal.name));
    let mut r = axum::Json(Value::Array(vec![Value::Object(entry)])).into_response();
    no_store(&mut r);
    r
}
