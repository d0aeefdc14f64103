//! `GET /.auth/refresh`: new provider tokens for a session (cookie, `X-ZUMO-AUTH`, or the access
//! token the module issued), within `tokenRefreshExtensionHours` of its end.

use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::client_login::zumo_answer;
use super::request::session_of;
use crate::clock::now;
use crate::identity::bearer;
use crate::module::Module;
use crate::refusal::{ReasonCode, Refusal};
use crate::respond::{no_store, refuse, unauthorized};
use crate::site::Site;

/// GET /.auth/refresh
pub(super) async fn refresh(m: &Module, site: &Site, request: &Parts) -> Response {
    let headers = &request.headers;
    let found_session = match session_of(m, site, request, true).await {
        Some((sid, record, via_cookie)) => Some((sid, (*record).clone(), via_cookie, !via_cookie)),
        None => match bearer(headers) {
            Some(token) => m
                .session_by_access_token(token)
                .await
                .map(|(sid, r)| (sid, (*r).clone(), false, false)),
            None => None,
        },
    };
    let Some((sid, mut record, _via_cookie, via_zumo)) = found_session else {
        let refusal = Refusal::new(
            ReasonCode::SessionRequired,
            "/.auth/refresh needs a session (cookie, X-ZUMO-AUTH, or the access token the module issued)",
        );
        return unauthorized(m, Some(site), &refusal).await;
    };
    if record.session_expires + m.settings.refresh_extension.as_secs() as i64 <= now() {
        let refusal = Refusal::new(
            ReasonCode::SessionExpired,
            "the session ended more than tokenRefreshExtensionHours ago; sign in again",
        );
        return unauthorized(m, Some(site), &refusal).await;
    }
    let Some(provider) = m.provider(&record.provider) else {
        let refusal = Refusal::new(
            ReasonCode::UnknownProvider,
            "the session's provider is no longer configured",
        );
        return unauthorized(m, Some(site), &refusal).await;
    };
    let Some(refresh_token) = record.refresh_token.clone() else {
        let refusal = Refusal::new(
            ReasonCode::NoRefreshToken,
            "the session has no refresh token: add offline_access to the provider's scope",
        );
        return unauthorized(m, Some(site), &refusal).await;
    };
    let client = match provider.token_client().await {
        Ok(c) => c,
        Err(e) => {
            return refuse(
                m,
                StatusCode::BAD_GATEWAY,
                &Refusal::new(ReasonCode::ProviderUnavailable, e),
            );
        }
    };
    let tokens = match client
        .refresh(&refresh_token, Some(&provider.settings.scope))
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(target: "easyauth::module", status = 401, reason = %e, "refresh failed");
            let refusal = Refusal::new(
                ReasonCode::RefreshRefused,
                format!("the identity provider refused the refresh: {e}"),
            );
            return unauthorized(m, Some(site), &refusal).await;
        }
    };
    let old = record.clone();
    record.access_token = Some(tokens.access_token.clone());
    if let Some(rt) = tokens.refresh_token.clone() {
        record.refresh_token = Some(rt);
    }
    if let Some(it) = tokens.id_token.clone() {
        record.id_token = Some(it);
    }
    record.expires_on = tokens.expires_in.map(|s| now() + s as i64);
    record.session_expires = m.settings.session_end(record.expires_on);
    let replaced = match m.sessions.delete(&sid, Some(&old)).await {
        Ok(()) => m.sessions.save(&sid, &record).await,
        Err(e) => Err(e),
    };
    if let Err(e) = replaced {
        tracing::error!(target: "easyauth::module", error = %e, "refreshed session not stored");
        return refuse(
            m,
            StatusCode::SERVICE_UNAVAILABLE,
            &Refusal::new(ReasonCode::TokenStoreFailed, e.to_string()),
        );
    }
    if via_zumo {
        return zumo_answer(m, site, &sid, &record.provider, record.session_expires);
    }
    let mut r = StatusCode::OK.into_response();
    no_store(&mut r);
    r
}
