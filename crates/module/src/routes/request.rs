//! What the route handlers read from a request: query and form parameters, a bounded body, the
//! session it is about, and the checked post-login/logout target.

use std::sync::Arc;

use axum::body::{Body, Bytes, to_bytes};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::identity::Identity;
use crate::module::Module;
use crate::provider::IdentityProvider;
use crate::redirect;
use crate::session_store::{SessionRecord, SessionStoreError};
use crate::site::Site;
use crate::zumo::ZumoToken;

/// Largest form body the callback reads (a code, an ID token and a state).
pub(super) const MAX_FORM: usize = 64 * 1024;
/// Largest JSON body client-directed login reads (an access token and an ID token).
pub(super) const MAX_CLIENT_LOGIN: usize = 192 * 1024;

/// The first query parameter called `name`, decoded.
pub(super) fn query_param(request: &Parts, name: &str) -> Option<String> {
    form_pairs(request.uri.query().unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Form or query pairs; at most [`MAX_PAIRS`] (a callback carries fewer than ten).
pub(super) fn form_pairs(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes())
        .take(MAX_PAIRS)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

const MAX_PAIRS: usize = 64;

/// A post-login or post-logout target, if it is this site or an allowed external URL. Every step
/// that carries a target (login start, callback, logout, its completion) checks it here.
pub(super) fn redirect_target(m: &Module, site: &Site, target: &str) -> Option<String> {
    redirect::validate(
        target,
        &site.origin(),
        &m.settings.allowed_external_redirects,
    )
}

/// The callback URL registered for `provider` at `site`.
pub(super) fn callback_url(m: &Module, site: &Site, provider: &IdentityProvider) -> String {
    format!(
        "{}{}/login/{}/callback",
        site.base(),
        m.settings.api_prefix,
        provider.alias()
    )
}

/// A body longer than the route reads.
#[derive(Debug)]
pub(super) struct BodyTooLarge;

/// Reads at most `limit` bytes of body: a declared larger `Content-Length` is refused before
/// reading, a longer stream as soon as it passes the limit.
pub(super) async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, BodyTooLarge> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyTooLarge);
    }
    to_bytes(body, limit).await.map_err(|_| BodyTooLarge)
}

/// The session a `/.auth` request is about: cookie or X-ZUMO-AUTH (never a bad bearer's 401).
/// `grace` admits a session that ended less than `tokenRefreshExtensionHours` ago.
/// `Err` is the session store's failure: the session may exist, so the route must not act as
/// if the caller were signed out.
pub(super) async fn session_of(
    m: &Module,
    site: &Site,
    request: &Parts,
    grace: bool,
) -> Result<Option<(String, Arc<SessionRecord>, bool)>, SessionStoreError> {
    let zumo = request.extensions.get::<ZumoToken>().map(|z| z.0.as_str());
    Ok(
        match m.session(site, &request.headers, zumo, grace).await? {
            Some(Identity::Session {
                sid,
                record,
                via_cookie,
                ..
            }) => Some((sid, record, via_cookie)),
            _ => None,
        },
    )
}
