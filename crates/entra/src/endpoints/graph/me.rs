//! `GET /v1.0/me` (the signed-in user's profile, for delegated Graph tokens; the tutorial's
//! on-behalf-of step ends here) and `/oidc/userinfo`, which Entra hosts on Graph.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::error::GraphError;
use super::graph_token;
use crate::Idp;
use crate::endpoints::form::Params;

const DELEGATED_READ: [&str; 3] = ["user.read", "user.readbasic.all", "user.read.all"];

/// The profile `/me` and `/users/{id}` answer with: Graph's default property set, `null` for
/// what the directory does not hold.
pub(crate) fn profile(user: &crate::directory::User) -> Map<String, Value> {
    let mut profile = Map::new();
    profile.insert("businessPhones".into(), json!([]));
    profile.insert("displayName".into(), json!(user.display_name));
    profile.insert("givenName".into(), json!(user.given_name));
    profile.insert("jobTitle".into(), json!(user.job_title));
    profile.insert("mail".into(), json!(user.mail));
    profile.insert("mobilePhone".into(), json!(user.mobile_phone));
    profile.insert("officeLocation".into(), json!(user.office_location));
    profile.insert("preferredLanguage".into(), json!(user.preferred_language));
    profile.insert("surname".into(), json!(user.surname));
    profile.insert("userPrincipalName".into(), json!(user.user_principal_name));
    profile.insert("id".into(), json!(user.id));
    profile
}

/// `GET /v1.0/me`: needs a delegated token with a permission to read the user's profile.
pub(crate) fn me(
    idp: &Idp,
    method: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, GraphError> {
    let claims = graph_token(idp, headers).map_err(|m| GraphError::InvalidToken(m.into()))?;
    if method != "GET" {
        return Err(super::method_not_allowed(method));
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let Some(scp) = text("scp") else {
        return Err(GraphError::DelegatedOnly);
    };
    if !scp
        .split(' ')
        .any(|s| DELEGATED_READ.contains(&s.to_ascii_lowercase().as_str()))
    {
        return Err(GraphError::Denied);
    }
    let dir = idp.directory();
    let Some(user) = text("oid").and_then(|oid| dir.user(oid)) else {
        return Err(GraphError::NotFound("me".into()));
    };
    let mut profile = profile(user);
    let base = format!("{}/v1.0/$metadata#users", idp.config.public_url);
    let select = Params::from_query(query)
        .ok()
        .and_then(|p| p.get("$select").map(str::to_owned));
    let context = match &select {
        Some(fields) => {
            let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
            profile.retain(|k, _| wanted.iter().any(|w| w.eq_ignore_ascii_case(k)));
            format!("{base}({fields})/$entity")
        }
        None => format!("{base}/$entity"),
    };
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(context));
    body.extend(profile);
    Ok(Json(Value::Object(body)).into_response())
}

/// `GET|POST /oidc/userinfo` (Graph-hosted in Entra): the OpenID Connect claims of the user of a
/// token that carries `openid`, with `sub` as the client's ID token has it.
pub(crate) async fn userinfo(State(idp): State<Arc<Idp>>, headers: HeaderMap) -> Response {
    let challenge = |status: StatusCode, description: &str| {
        let mut r = (
            status,
            Json(json!({"error": "invalid_token", "error_description": description})),
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&format!(
            "Bearer error=\"invalid_token\", error_description=\"{description}\""
        )) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    };
    let claims = match graph_token(&idp, &headers) {
        Ok(c) => c,
        Err(message) => return challenge(StatusCode::UNAUTHORIZED, message),
    };
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if !text("scp").is_some_and(|s| s.split(' ').any(|x| x == "openid")) {
        return challenge(
            StatusCode::FORBIDDEN,
            "The token does not carry the openid scope.",
        );
    }
    let dir = idp.directory();
    let (Some(user), Some(client)) = (
        text("oid").and_then(|o| dir.user(o)),
        text("appid").or_else(|| text("azp")),
    ) else {
        return challenge(StatusCode::UNAUTHORIZED, "The token names no user.");
    };
    Json(json!({
        "sub": idp.pairwise_sub(&user.id, client),
        "name": user.display_name,
        "family_name": user.surname,
        "given_name": user.given_name,
        "email": user.mail,
    }))
    .into_response()
}
