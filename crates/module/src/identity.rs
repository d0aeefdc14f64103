//! Who a request is from: a browser session (cookie), a client-directed session
//! (`X-ZUMO-AUTH`), or a validated bearer token.

use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use crate::clock::now;
use crate::module::Module;
use crate::oidc::{Rejection, ValidatedToken};
use crate::session_cookie::SessionCookie;
use crate::session_store::{SessionRecord, SessionStoreError};
use crate::site::Site;
use crate::zumo;

/// Who the request is from.
#[derive(Debug, Clone)]
pub enum Identity {
    /// No credential, or one that is ignored here.
    Anonymous,
    /// A browser session (cookie) or client-directed session (`X-ZUMO-AUTH`).
    Session {
        /// The session id.
        sid: String,
        /// The session.
        record: Arc<SessionRecord>,
        /// Named by the session cookie (not `X-ZUMO-AUTH`).
        via_cookie: bool,
        /// How many cookies the session cookie came in.
        chunks: usize,
    },
    /// A bearer token validated against a provider.
    Bearer {
        /// The alias of the provider that validated it.
        provider: String,
        /// The validated token.
        token: Arc<ValidatedToken>,
    },
}

impl Identity {
    /// The alias of the provider behind this identity.
    pub fn provider(&self) -> Option<&str> {
        match self {
            Identity::Anonymous => None,
            Identity::Session { record, .. } => Some(&record.provider),
            Identity::Bearer { provider, .. } => Some(provider),
        }
    }

    /// The identity's claims (the ID token's for a session, the access token's for a bearer).
    pub fn claims(&self) -> Option<&Map<String, Value>> {
        match self {
            Identity::Anonymous => None,
            Identity::Session { record, .. } => Some(&record.claims),
            Identity::Bearer { token, .. } => Some(token.claims()),
        }
    }
}

/// Why a presented credential was not accepted (the reason reaches the log).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The bearer token failed validation.
    #[error("bearer token rejected: {0}")]
    Bearer(Rejection),
    /// No provider could be asked to validate it.
    #[error("no provider can validate bearer tokens: {0}")]
    NoProvider(String),
    /// The session store did not answer: the session may exist, so this is neither "signed
    /// out" nor "anonymous" (the caller answers 503 and keeps the cookie).
    #[error(transparent)]
    SessionStore(#[from] SessionStoreError),
}

impl Module {
    /// The session named by the request's cookie or `X-ZUMO-AUTH`. With `grace`, a session past
    /// its end but within `tokenRefreshExtensionHours` counts (only `/.auth/refresh` asks that).
    pub(crate) async fn session(
        &self,
        site: &Site,
        headers: &HeaderMap,
        zumo: Option<&str>,
        grace: bool,
    ) -> Result<Option<Identity>, SessionStoreError> {
        let live = |r: &Arc<SessionRecord>| grace || r.session_expires > now();
        if let Some((cookie, chunks)) = SessionCookie::open(&self.keys, headers)
            && let Some(record) = self.cookie_record(&cookie).await?.filter(live)
        {
            return Ok(Some(Identity::Session {
                sid: cookie.sid,
                record,
                via_cookie: true,
                chunks,
            }));
        }
        let leeway = if grace {
            self.settings.refresh_extension.as_secs()
        } else {
            0
        };
        if let Some(zumo) = zumo
            && let Some(sid) = zumo::session_id(&self.keys, site, zumo.trim(), leeway)
            && let Some(record) = self.sessions.load(&sid).await?.filter(live)
        {
            return Ok(Some(Identity::Session {
                sid,
                record,
                via_cookie: false,
                chunks: 0,
            }));
        }
        Ok(None)
    }

    /// The session a cookie names: carried in it (token store off) unless revoked, or stored.
    async fn cookie_record(
        &self,
        cookie: &SessionCookie,
    ) -> Result<Option<Arc<SessionRecord>>, SessionStoreError> {
        match &cookie.record {
            Some(record) => self.sessions.admit_carried(&cookie.sid, record).await,
            None => self.sessions.load(&cookie.sid).await,
        }
    }

    /// The session whose current access token is exactly `access_token` (the bearer style of
    /// `/.auth/refresh` the tutorial's sample uses).
    pub(crate) async fn session_by_access_token(
        &self,
        access_token: &str,
    ) -> Result<Option<(String, Arc<SessionRecord>)>, SessionStoreError> {
        self.sessions.find_by_access_token(access_token).await
    }

    /// Identifies the caller. `Err` means a bearer token was presented and refused (401).
    pub(crate) async fn identify(
        &self,
        site: &Site,
        headers: &HeaderMap,
        zumo: Option<&str>,
    ) -> Result<Identity, CredentialError> {
        if let Some(session) = self.session(site, headers, zumo, false).await? {
            return Ok(session);
        }
        if let Some(token) = bearer(headers) {
            return self
                .validate_bearer(token)
                .await
                .map(|(provider, token)| Identity::Bearer { provider, token });
        }
        Ok(Identity::Anonymous)
    }

    /// Validates a bearer token against the providers that accept bearer tokens (Entra first).
    pub async fn validate_bearer(
        &self,
        token: &str,
    ) -> Result<(String, Arc<ValidatedToken>), CredentialError> {
        let mut last = None;
        for provider in &self.providers {
            let policy = match provider.prepared_bearer_policy().await {
                Ok(p) => p,
                Err(e) => {
                    last = Some(CredentialError::NoProvider(e));
                    continue;
                }
            };
            match self.validator.validate_prepared(token, &policy).await {
                Ok(t) => return Ok((provider.alias().to_owned(), t)),
                Err(e) => last = Some(CredentialError::Bearer(e)),
            }
        }
        Err(last.unwrap_or_else(|| {
            CredentialError::NoProvider("no identity provider is configured".into())
        }))
    }
}

/// The token of an `Authorization: Bearer` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
