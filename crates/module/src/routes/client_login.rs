//! `POST /.auth/login/<provider>`: client-directed sign-in with a provider token; the answer's
//! `authenticationToken` is the `X-ZUMO-AUTH` of the new session.

use axum::body::Body;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::request::{MAX_CLIENT_LOGIN, read_limited};
use crate::clock::now;
use crate::module::Module;
use crate::oidc::ValidatedToken;
use crate::provider::IdentityProvider;
use crate::refusal::{ReasonCode, Refusal};
use crate::respond::{refuse, unauthorized};
use crate::session_store::SessionRecord;
use crate::site::Site;
use crate::zumo;

/// POST /.auth/login/<provider>: client-directed sign-in with a provider token.
///
/// Every token kept for the session is validated first: the access token as a bearer token for
/// this app (allowed audiences, then the authorization rules), the ID token as one issued to this
/// app (signature, issuer, audience = the client id, lifetime) and for the same user. A token
/// that fails refuses the sign-in. A refresh token cannot be validated by the module (it is
/// opaque to everyone but the provider), so one posted by a client is never kept: the app is
/// never handed it as platform-issued, and `/.auth/refresh` never sends it to the provider with
/// the app's secret.
pub(super) async fn client_login(
    m: &Module,
    site: &Site,
    provider: &IdentityProvider,
    request: &Parts,
    body: Body,
) -> Response {
    let body = match read_limited(&request.headers, body, MAX_CLIENT_LOGIN).await {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                m,
                StatusCode::PAYLOAD_TOO_LARGE,
                &Refusal::new(ReasonCode::BodyTooLarge, "body too large"),
            );
        }
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return refuse(
            m,
            StatusCode::BAD_REQUEST,
            &Refusal::new(
                ReasonCode::BadRequestBody,
                "expected a JSON object with access_token or id_token",
            ),
        );
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let (access_token, id_token) = (text("access_token"), text("id_token"));
    if access_token.is_none() && id_token.is_none() {
        return refuse(
            m,
            StatusCode::BAD_REQUEST,
            &Refusal::new(
                ReasonCode::BadRequestBody,
                "expected access_token or id_token",
            ),
        );
    }
    let refused = |code: ReasonCode, what: &str, e: &dyn std::fmt::Display| {
        tracing::warn!(target: "easyauth::module", status = 401, token = what, reason = %e, "client-directed sign-in refused");
        Refusal::new(code, format!("the {what} was rejected: {e}"))
    };
    let unavailable = |e: String| Refusal::new(ReasonCode::ProviderUnavailable, e);
    let access = match &access_token {
        Some(token) => {
            let policy = match provider.bearer_policy().await {
                Ok(p) => p,
                Err(e) => return unauthorized(m, Some(site), &unavailable(e)).await,
            };
            match m.validator.validate(token, &policy).await {
                Ok(v) => Some(v),
                Err(e) => {
                    let code = ReasonCode::of_rejection(&e);
                    return unauthorized(m, Some(site), &refused(code, "access token", &e)).await;
                }
            }
        }
        None => None,
    };
    let identity = match &id_token {
        Some(token) => {
            let policy = match provider.id_token_policy().await {
                Ok(p) => p,
                Err(e) => return unauthorized(m, Some(site), &unavailable(e)).await,
            };
            match m.validator.validate(token, &policy).await {
                Ok(v) => Some(v),
                Err(e) => {
                    let code = ReasonCode::of_rejection(&e);
                    return unauthorized(m, Some(site), &refused(code, "ID token", &e)).await;
                }
            }
        }
        None => None,
    };
    if let (Some(a), Some(i)) = (&access, &identity)
        && !same_user(a, i)
    {
        return unauthorized(
            m,
            Some(site),
            &refused(
                ReasonCode::TokenRejected,
                "ID token",
                &"it names another user than the access token",
            ),
        )
        .await;
    }
    if body.contains_key("refresh_token") {
        tracing::info!(target: "easyauth::module", "client-directed sign-in: the posted refresh_token is not kept (the module cannot validate it)");
    }
    let (validated, is_access) = match (&access, &identity) {
        (Some(a), _) => (a, true),
        (None, Some(i)) => (i, false),
        (None, None) => {
            return refuse(
                m,
                StatusCode::BAD_REQUEST,
                &Refusal::new(ReasonCode::BadRequestBody, "no token"),
            );
        }
    };
    if let Err(denial) = provider
        .settings
        .authorization
        .check(validated.claims(), is_access)
    {
        return refuse(m, StatusCode::FORBIDDEN, &Refusal::from(&denial));
    }
    let session_expires = validated
        .exp()
        .min(now() + m.settings.session_lifetime.as_secs() as i64)
        .max(now() + 60);
    let keep = m.settings.token_store;
    let record = SessionRecord {
        provider: provider.alias().to_owned(),
        claims: validated.claims().clone(),
        id_token: id_token.filter(|_| keep),
        access_token: access_token.filter(|_| keep),
        refresh_token: None,
        expires_on: Some(validated.exp()),
        session_expires,
        refreshed_at: None,
        injected: Default::default(),
    };
    let sid = match m.create_session(&record).await {
        Ok(sid) => sid,
        Err(e) => {
            return refuse(
                m,
                StatusCode::SERVICE_UNAVAILABLE,
                &Refusal::new(ReasonCode::TokenStoreFailed, e.to_string()),
            );
        }
    };
    zumo_answer(m, site, &sid, provider.alias(), session_expires)
}

/// The answer that hands a client its `X-ZUMO-AUTH` (`authenticationToken`) for session `sid`.
pub(super) fn zumo_answer(
    m: &Module,
    site: &Site,
    sid: &str,
    provider: &str,
    expires: i64,
) -> Response {
    match zumo::issue(&m.keys, site, sid, provider, expires) {
        Ok(token) => axum::Json(json!({
            "authenticationToken": token,
            "user": {"userId": zumo::user_id(sid)},
        }))
        .into_response(),
        Err(e) => {
            tracing::error!(target: "easyauth::module", error = %e, "X-ZUMO-AUTH could not be issued");
            refuse(
                m,
                StatusCode::INTERNAL_SERVER_ERROR,
                &Refusal::new(
                    ReasonCode::Internal,
                    format!("the authentication token could not be issued: {e}"),
                ),
            )
        }
    }
}

/// Whether an access token and an ID token are about the same user: the same object id (and
/// tenant) where both carry one, else the same subject.
fn same_user(access: &ValidatedToken, id: &ValidatedToken) -> bool {
    match (access.oid(), id.oid()) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b) && access.tid() == id.tid(),
        (None, None) => access.sub().is_some() && access.sub() == id.sub(),
        _ => false,
    }
}
