//! `GET /.auth/refresh`: new provider tokens for a session (cookie, `X-ZUMO-AUTH`, or the access
//! token the module issued), within `tokenRefreshExtensionHours` of its end.
//!
//! One redeem per refresh: the request holds the session's refresh lease (shared by every
//! instance that shares the sessions) while it redeems, and re-reads the session once it has
//! the lease; a session refreshed meanwhile, or within [`COALESCE_SECONDS`], answers with that
//! refresh instead of redeeming the (rotating) refresh token again.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::client_login::zumo_answer;
use super::request::session_of;
use crate::clock::now;
use crate::identity::bearer;
use crate::module::Module;
use crate::oidc::TokenError;
use crate::provider::IdentityProvider;
use crate::refresh_lease::{LeaseError, RefreshLease};
use crate::refusal::{ReasonCode, Refusal};
use crate::respond::{no_store, refuse, store_unavailable, unauthorized};
use crate::session_store::SessionRecord;
use crate::site::Site;

/// Refreshes of one session this close together share one redeem.
const COALESCE_SECONDS: i64 = 5;

/// GET /.auth/refresh
pub(super) async fn refresh(m: &Module, site: &Site, request: &Parts) -> Response {
    let headers = &request.headers;
    let by_cookie_or_zumo = match session_of(m, site, request, true).await {
        Ok(s) => s,
        Err(e) => return store_unavailable(m, &e),
    };
    let found_session = match by_cookie_or_zumo {
        Some((sid, record, via_cookie)) => Some((sid, record, !via_cookie)),
        None => match bearer(headers) {
            Some(token) => match m.session_by_access_token(token).await {
                Ok(found) => found.map(|(sid, r)| (sid, r, false)),
                Err(e) => return store_unavailable(m, &e),
            },
            None => None,
        },
    };
    let Some((sid, seen, via_zumo)) = found_session else {
        let refusal = Refusal::new(
            ReasonCode::SessionRequired,
            "/.auth/refresh needs a session (cookie, X-ZUMO-AUTH, or the access token the module issued)",
        );
        return unauthorized(m, Some(site), &refusal).await;
    };
    if let Err(r) = refreshable(m, site, &seen).await {
        return r;
    }
    let lease = match RefreshLease::acquire(&m.sessions, &sid).await {
        Ok(l) => l,
        Err(LeaseError::Store(e)) => return store_unavailable(m, &e),
        Err(e @ LeaseError::Busy(_)) => {
            return refuse(
                m,
                StatusCode::SERVICE_UNAVAILABLE,
                &Refusal::new(ReasonCode::RefreshInProgress, e.to_string()),
            );
        }
    };
    let answer = refresh_holding_lease(m, site, &sid, &seen).await;
    lease.release().await;
    match answer {
        Ok(record) if via_zumo => {
            zumo_answer(m, site, &sid, &record.provider, record.session_expires)
        }
        Ok(_) => {
            let mut r = StatusCode::OK.into_response();
            no_store(&mut r);
            r
        }
        Err(r) => r,
    }
}

/// What refreshing `record` needs (its provider and refresh token); `Err` is the answer why it
/// may not be refreshed.
async fn refreshable<'a>(
    m: &'a Module,
    site: &Site,
    record: &'a SessionRecord,
) -> Result<(&'a IdentityProvider, &'a str), Response> {
    if record.session_expires + m.settings.refresh_extension.as_secs() as i64 <= now() {
        let refusal = Refusal::new(
            ReasonCode::SessionExpired,
            "the session ended more than tokenRefreshExtensionHours ago; sign in again",
        );
        return Err(unauthorized(m, Some(site), &refusal).await);
    }
    let Some(provider) = m.provider(&record.provider) else {
        let refusal = Refusal::new(
            ReasonCode::UnknownProvider,
            "the session's provider is no longer configured",
        );
        return Err(unauthorized(m, Some(site), &refusal).await);
    };
    let Some(refresh_token) = record.refresh_token.as_deref() else {
        let refusal = Refusal::new(
            ReasonCode::NoRefreshToken,
            "the session has no refresh token: add offline_access to the provider's scope",
        );
        return Err(unauthorized(m, Some(site), &refusal).await);
    };
    Ok((provider, refresh_token))
}

/// The refresh itself, under the lease: the session as it is now, coalesced with a refresh
/// that happened meanwhile, or redeemed and stored.
async fn refresh_holding_lease(
    m: &Module,
    site: &Site,
    sid: &str,
    seen: &SessionRecord,
) -> Result<Arc<SessionRecord>, Response> {
    let current = match m.sessions.load(sid).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            let refusal = Refusal::new(
                ReasonCode::SessionRequired,
                "the session ended while waiting for another refresh of it",
            );
            return Err(unauthorized(m, Some(site), &refusal).await);
        }
        Err(e) => return Err(store_unavailable(m, &e)),
    };
    let refreshed_meanwhile = current.access_token != seen.access_token
        || current
            .refreshed_at
            .is_some_and(|t| now() - t < COALESCE_SECONDS);
    if refreshed_meanwhile {
        return Ok(current);
    }
    // The same checks again: the session may have changed while this request waited.
    let (provider, refresh_token) = refreshable(m, site, &current).await?;
    let client = match provider.token_client().await {
        Ok(c) => c,
        Err(e) => {
            return Err(refuse(
                m,
                StatusCode::BAD_GATEWAY,
                &Refusal::new(ReasonCode::ProviderUnavailable, e),
            ));
        }
    };
    let tokens = match client
        .refresh(refresh_token, Some(&provider.settings.scope))
        .await
    {
        Ok(t) => t,
        Err(e) if ends_session(&e) => {
            tracing::warn!(target: "easyauth::module", status = 401, reason = %e, "refresh refused: the session ends");
            if let Err(store) = m.sessions.delete(sid, Some(&current)).await {
                tracing::error!(target: "easyauth::module", error = %store, "refused session not deleted");
            }
            let refusal = Refusal::new(
                ReasonCode::RefreshRefused,
                format!("the identity provider refused the refresh: {e}"),
            );
            return Err(unauthorized(m, Some(site), &refusal).await);
        }
        Err(e) => {
            // The provider may be briefly unreachable: the session stays, the caller may retry.
            tracing::warn!(target: "easyauth::module", status = 502, reason = %e, "refresh failed; the session is kept");
            return Err(refuse(
                m,
                StatusCode::BAD_GATEWAY,
                &Refusal::new(
                    ReasonCode::ProviderUnavailable,
                    format!("the refresh could not be completed: {e}; the session is kept"),
                ),
            ));
        }
    };
    let mut record = (*current).clone();
    record.access_token = Some(tokens.access_token.clone());
    if let Some(rt) = tokens.refresh_token.clone() {
        record.refresh_token = Some(rt);
    }
    if let Some(it) = tokens.id_token.clone() {
        record.id_token = Some(it);
    }
    record.expires_on = tokens.expires_in.map(|s| now() + s as i64);
    record.session_expires = m.settings.session_end(record.expires_on);
    record.refreshed_at = Some(now());
    // Replaced in one write: deleting first would show other requests (other replicas) no
    // session for a moment. The old token's index entry stays until it expires; a lookup by it
    // finds a session whose token differs and answers nothing.
    if let Err(e) = m.sessions.save(sid, &record).await {
        tracing::error!(target: "easyauth::module", error = %e, "refreshed session not stored");
        return Err(refuse(
            m,
            StatusCode::SERVICE_UNAVAILABLE,
            &Refusal::new(ReasonCode::TokenStoreFailed, e.to_string()),
        ));
    }
    Ok(Arc::new(record))
}

/// Only the provider saying the grant or the client is no good ends the session; a network
/// error or a provider outage does not sign anyone out.
fn ends_session(error: &TokenError) -> bool {
    matches!(error, TokenError::OAuth { error, .. } if error == "invalid_grant" || error == "invalid_client")
}
