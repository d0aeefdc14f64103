//! The identity provider's own sign-in session (what lets a second authorize request skip the
//! sign-in page, and `prompt=none` work), and CSRF protection for its forms.
//!
//! The session lives in the store (so sign-out really ends it, and a replayed cookie is worthless
//! afterwards); the cookie holds only its id, encrypted and authenticated with AES-GCM.

use axum::http::HeaderMap;
use cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};

use crate::Idp;
use crate::util::{ct_eq, now, random_token};

/// Entra's name for its session cookie.
pub(crate) const SESSION_COOKIE: &str = "ESTSAUTH";
const CSRF_COOKIE: &str = "easyauth_csrf";
const SESSION_KIND: &str = "idp-session";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SignInSession {
    #[serde(skip)]
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) auth_time: i64,
}

fn cookies(headers: &HeaderMap) -> impl Iterator<Item = Cookie<'static>> + '_ {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()).filter_map(Result::ok))
}

fn secure(idp: &Idp) -> bool {
    idp.config.public_url.starts_with("https://")
}

impl Idp {
    pub(crate) async fn current_session(&self, headers: &HeaderMap) -> Option<SignInSession> {
        let raw = cookies(headers).find(|c| c.name() == SESSION_COOKIE)?;
        let mut jar = CookieJar::new();
        jar.add_original(raw);
        // A tampered cookie fails authentication here and counts as signed out.
        let id = jar
            .private(&self.cookie_key)
            .get(SESSION_COOKIE)?
            .value()
            .to_owned();
        let json = self
            .store
            .get_ephemeral(SESSION_KIND, &id, now())
            .await
            .ok()??;
        let mut session: SignInSession = serde_json::from_str(&json).ok()?;
        session.id = id;
        Some(session)
    }

    /// Creates a session and returns it with the `Set-Cookie` value.
    pub(crate) async fn create_session(
        &self,
        user_id: &str,
    ) -> Result<(SignInSession, String), crate::EntraError> {
        let session = SignInSession {
            id: random_token(32),
            user_id: user_id.to_owned(),
            auth_time: now(),
        };
        let json = serde_json::to_string(&session)
            .map_err(|e| crate::EntraError::Internal(e.to_string()))?;
        self.store
            .put_ephemeral(
                SESSION_KIND,
                &session.id,
                &json,
                now() + self.config.session_lifetime,
            )
            .await?;
        let mut jar = CookieJar::new();
        let cookie = Cookie::build((SESSION_COOKIE, session.id.clone()))
            .path("/")
            .http_only(true)
            .secure(secure(self))
            .same_site(SameSite::Lax)
            .build();
        jar.private_mut(&self.cookie_key).add(cookie);
        let set = jar
            .delta()
            .next()
            .map(|c| c.to_string())
            .unwrap_or_default();
        Ok((session, set))
    }

    /// Ends the session named by the request's cookie; returns the clearing `Set-Cookie`.
    pub(crate) async fn end_session(&self, headers: &HeaderMap) -> String {
        if let Some(session) = self.current_session(headers).await {
            // The cookie is cleared either way; a session left in the store would still be
            // honoured until it expires, so say so.
            if let Err(e) = self.store.delete_ephemeral(SESSION_KIND, &session.id).await {
                tracing::warn!(error = %e, "cannot end the sign-in session in the store");
                crate::metrics::store_error();
            }
        }
        Cookie::build((SESSION_COOKIE, ""))
            .path("/")
            .max_age(cookie::time::Duration::ZERO)
            .build()
            .to_string()
    }

    /// The CSRF token for a form, and the cookie to set when the browser has none yet
    /// (double-submit: the form field must equal the cookie).
    pub(crate) fn csrf_token(&self, headers: &HeaderMap) -> (String, Option<String>) {
        if let Some(c) = cookies(headers).find(|c| c.name() == CSRF_COOKIE && c.value().len() >= 32)
        {
            return (c.value().to_owned(), None);
        }
        let token = random_token(32);
        let cookie = Cookie::build((CSRF_COOKIE, token.clone()))
            .path("/")
            .http_only(true)
            .secure(secure(self))
            .same_site(SameSite::Strict)
            .build();
        (token, Some(cookie.to_string()))
    }

    pub(crate) fn csrf_ok(&self, headers: &HeaderMap, submitted: Option<&str>) -> bool {
        let Some(submitted) = submitted else {
            return false;
        };
        cookies(headers)
            .any(|c| c.name() == CSRF_COOKIE && ct_eq(c.value().as_bytes(), submitted.as_bytes()))
    }
}
