//! Signed-in sessions and sign-ins in progress, in memory (a restart of `up` asks people to sign
//! in again, as an expired portal session does). Both maps are bounded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine as _;
use subtle::ConstantTimeEq;

pub(crate) const SESSION_COOKIE: &str = "portal_session";
pub(crate) const SIGNIN_COOKIE: &str = "portal_signin";
const MAX_SESSIONS: usize = 1000;
const MAX_PENDING: usize = 1000;
const PENDING_LIFETIME: Duration = Duration::from_secs(600);
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// A signed-in person.
#[derive(Clone)]
pub(crate) struct Session {
    pub(crate) user: String,
    pub(crate) access_token: String,
    /// When the access token stops working (renewed a minute before).
    pub(crate) expires: Instant,
    pub(crate) refresh_token: Option<String>,
    /// Microsoft Graph, fetched with the refresh token when a page first needs it.
    pub(crate) graph: Option<(String, Instant)>,
    pub(crate) csrf: String,
    created: Instant,
}

impl Session {
    pub(crate) fn new(
        user: String,
        access_token: String,
        lifetime: Duration,
        refresh_token: Option<String>,
    ) -> Session {
        Session {
            user,
            access_token,
            expires: Instant::now() + lifetime,
            refresh_token,
            graph: None,
            csrf: random_id(),
            created: Instant::now(),
        }
    }
}

/// A sign-in between the redirect to the identity provider and its callback.
#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) verifier: String,
    pub(crate) nonce: String,
    pub(crate) redirect_uri: String,
    pub(crate) return_to: String,
    created: Instant,
}

impl Pending {
    pub(crate) fn new(redirect_uri: String, return_to: String) -> Pending {
        Pending {
            verifier: random_id(),
            nonce: random_id(),
            redirect_uri,
            return_to,
            created: Instant::now(),
        }
    }
}

#[derive(Default)]
pub(crate) struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    pending: Mutex<HashMap<String, Pending>>,
    /// Held while a refresh token is redeemed (see `signin::token`).
    pub(crate) renewal: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions")
    }
}

impl Sessions {
    /// Stores a sign-in in progress; returns its `state`.
    pub(crate) fn begin(&self, pending: Pending) -> String {
        let state = random_id();
        let mut map = lock(&self.pending);
        map.retain(|_, p| p.created.elapsed() < PENDING_LIFETIME);
        if map.len() >= MAX_PENDING
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(state.clone(), pending);
        state
    }

    /// Takes (once) the sign-in whose `state` came back, if it is still current.
    pub(crate) fn finish(&self, state: &str) -> Option<Pending> {
        lock(&self.pending)
            .remove(state)
            .filter(|p| p.created.elapsed() < PENDING_LIFETIME)
    }

    pub(crate) fn create(&self, session: Session) -> String {
        let id = random_id();
        let mut map = lock(&self.sessions);
        map.retain(|_, s| s.created.elapsed() < SESSION_LIFETIME);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(id.clone(), session);
        id
    }

    /// The session named by the request's cookie.
    pub(crate) fn get(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let id = cookie(headers, SESSION_COOKIE)?;
        self.by_id(id).map(|s| (id.to_owned(), s))
    }

    /// The session `id`, as it is now.
    pub(crate) fn by_id(&self, id: &str) -> Option<Session> {
        lock(&self.sessions)
            .get(id)
            .filter(|s| s.created.elapsed() < SESSION_LIFETIME)
            .cloned()
    }

    pub(crate) fn update(&self, id: &str, f: impl FnOnce(&mut Session)) {
        if let Some(s) = lock(&self.sessions).get_mut(id) {
            f(s);
        }
    }

    pub(crate) fn remove(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    /// Every form's CSRF check: the posted token must be the session's (constant time).
    pub(crate) fn check_csrf(session: &Session, posted: Option<&str>) -> bool {
        posted.is_some_and(|p| bool::from(p.as_bytes().ct_eq(session.csrf.as_bytes())))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// 32 random bytes, base64url.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG does not fail on the platforms `up` runs on; a guessable id is never an
    // acceptable fallback.
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random number generator works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// One cookie's value from the request (the first of that name).
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .take(16)
        .flat_map(|v| v.split(';').take(64))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// A `Set-Cookie` value for the portal's cookies (https only, not readable by script).
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> String {
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax{age}")
}
