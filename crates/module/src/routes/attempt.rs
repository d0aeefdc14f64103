//! A sign-in in progress, sealed into the `Nonce` cookie between the login route and the
//! callback.

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::cookies::{CookieStyle, NONCE_COOKIE, cookie};
use crate::module::Module;

/// A sign-in in progress.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Attempt {
    pub(super) provider: String,
    /// The callback URL sent to the provider: the code is redeemed with exactly this, and only a
    /// callback to it (the same site) finishes the attempt.
    pub(super) redirect_uri: String,
    pub(super) nonce: String,
    pub(super) state: String,
    pub(super) verifier: String,
    /// Where to land, as validated; `fragment` (already encoded, `#...`) follows it.
    pub(super) target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) fragment: Option<String>,
    pub(super) exp: i64,
}

impl Attempt {
    /// The `Set-Cookie` value that carries this attempt.
    pub(super) fn seal(&self, m: &Module, style: CookieStyle) -> Result<String, serde_json::Error> {
        let sealed = m.keys.seal(NONCE_COOKIE, &serde_json::to_vec(self)?);
        Ok(style.set(NONCE_COOKIE, &sealed))
    }

    /// The attempt this browser's `Nonce` cookie carries, if it opens.
    pub(super) fn open(m: &Module, headers: &HeaderMap) -> Option<Attempt> {
        let sealed = cookie(headers, NONCE_COOKIE)?;
        let plain = m.keys.open(NONCE_COOKIE, &sealed)?;
        serde_json::from_slice(&plain).ok()
    }
}
