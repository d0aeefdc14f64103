//! The session cookie's content: a reference to the stored session, or with the token store off
//! the session itself, sealed under [`SESSION_COOKIE`] and chunked.

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::cookies::{CookieKeys, CookieStyle, SESSION_COOKIE, chunked_cookie};
use crate::session_store::SessionRecord;

/// What the session cookie holds.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SessionCookie {
    pub(crate) sid: String,
    /// With the token store off the cookie carries the session itself (no tokens), so instances
    /// sharing `WEBSITE_AUTH_ENCRYPTION_KEY` share sessions without sharing a store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) record: Option<SessionRecord>,
}

impl SessionCookie {
    /// `Set-Cookie` values for this session, clearing continuations a longer cookie left.
    pub(crate) fn seal(
        &self,
        keys: &CookieKeys,
        style: CookieStyle,
        previous_chunks: usize,
    ) -> Result<Vec<String>, serde_json::Error> {
        let sealed = keys.seal(SESSION_COOKIE, &serde_json::to_vec(self)?);
        Ok(style.set_chunked(SESSION_COOKIE, &sealed, previous_chunks))
    }

    /// The session cookie of a request, if it opens with `keys`, and how many chunks it came in.
    pub(crate) fn open(keys: &CookieKeys, headers: &HeaderMap) -> Option<(SessionCookie, usize)> {
        let (sealed, chunks) = chunked_cookie(headers, SESSION_COOKIE)?;
        let plain = keys.open(SESSION_COOKIE, &sealed)?;
        let cookie = serde_json::from_slice(&plain).ok()?;
        Some((cookie, chunks))
    }
}
