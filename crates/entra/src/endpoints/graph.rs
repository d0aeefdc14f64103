//! A Microsoft Graph stand-in for `GET /v1.0/me`: the signed-in user's profile, for delegated
//! Graph tokens this tenant issued (the tutorial's on-behalf-of step ends here).

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::form::Params;
use crate::Idp;
use crate::directory::{GRAPH_APP_ID, GRAPH_RESOURCE};
use crate::util::{new_guid, now};

const DELEGATED_READ: [&str; 3] = ["user.read", "user.readbasic.all", "user.read.all"];

/// A Graph access token this tenant issued, read from `Authorization: Bearer`: its claims, or why
/// it is not acceptable (the text Graph's 401 carries).
fn graph_token(idp: &Idp, headers: &HeaderMap) -> Result<Map<String, Value>, &'static str> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("Access token is empty.")?;
    let claims = idp
        .keys
        .verify_own(token)
        .map_err(|_| "Access token validation failure.")?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let iss = text("iss").unwrap_or_default();
    if iss != idp.issuer_v1 && iss != idp.issuer_v2 {
        return Err("Access token validation failure. Invalid issuer.");
    }
    if !matches!(text("aud"), Some(GRAPH_RESOURCE) | Some(GRAPH_APP_ID)) {
        return Err("Access token validation failure. Invalid audience.");
    }
    if claims.get("exp").and_then(Value::as_i64).unwrap_or(0) <= now() {
        return Err("Lifetime validation failed, the token is expired.");
    }
    Ok(claims)
}

pub(crate) async fn me(
    State(idp): State<Arc<Idp>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let request_id = new_guid();
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let fail = |status: StatusCode, code: &str, message: &str| {
        let body = json!({"error": {"code": code, "message": message, "innerError": {
            "date": time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "request-id": request_id, "client-request-id": client_request_id}}});
        let mut r = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            let challenge = format!(
                "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"{GRAPH_APP_ID}\"",
                idp.config.public_url
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        r
    };
    let claims = match graph_token(&idp, &headers) {
        Ok(c) => c,
        Err(message) => {
            return fail(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                message,
            );
        }
    };
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let Some(scp) = text("scp") else {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        );
    };
    if !scp
        .split(' ')
        .any(|s| DELEGATED_READ.contains(&s.to_ascii_lowercase().as_str()))
    {
        return fail(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let dir = idp.directory();
    let Some(user) = text("oid").and_then(|oid| dir.user(oid)) else {
        return fail(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            "Resource does not exist or one of its queried reference-property objects are not present.",
        );
    };
    let mut profile = Map::new();
    let base = format!("{}/v1.0/$metadata#users", idp.config.public_url);
    profile.insert("@odata.context".into(), Value::Null);
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
    let select = Params::from_query(query.as_deref())
        .ok()
        .and_then(|p| p.get("$select").map(str::to_owned));
    let context = match &select {
        Some(fields) => {
            let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
            profile.retain(|k, _| {
                k == "@odata.context" || wanted.iter().any(|w| w.eq_ignore_ascii_case(k))
            });
            format!("{base}({fields})/$entity")
        }
        None => format!("{base}/$entity"),
    };
    profile.insert("@odata.context".into(), json!(context));
    let mut r = Json(Value::Object(profile)).into_response();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert("request-id", v);
    }
    r
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
