//! Where signed-in sessions live: the [`SessionStore`] boundary (load, save, delete, revoke) and
//! its implementation over the token store ([`easyauth_store::Store`]) with a short read cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use easyauth_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::now;
use crate::ids::sha256_hex;
use crate::local_leases::LocalLeases;
use crate::principal::InjectedCell;

/// A signed-in session, kept in the token store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The alias of the provider the user signed in with.
    pub provider: String,
    /// Claims of the ID token (or of the token used for client-directed sign-in).
    pub claims: Map<String, Value>,
    /// The provider's ID token (token store on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The provider's access token (token store on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// The provider's refresh token (token store on, `offline_access` asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix time the access token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<i64>,
    /// Unix time the session itself ends (then `/.auth/refresh` may revive it for the grace).
    pub session_expires: i64,
    /// Unix time of the last `/.auth/refresh` that redeemed the refresh token, so concurrent
    /// refreshes of one session (on any replica) share one redeem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<i64>,
    /// The headers the module injects for this session, built on first use; a refreshed
    /// session is a new record, so they never outlive the tokens they carry.
    #[serde(skip)]
    pub(crate) injected: InjectedCell,
}

/// Why the session store could not answer; the user sees a 503 that says so.
#[derive(Debug, thiserror::Error)]
pub enum SessionStoreError {
    /// The backend failed.
    #[error("the token store failed: {0}")]
    Store(#[from] StoreError),
    /// A stored session could not be written or read back as JSON.
    #[error("a session could not be encoded: {0}")]
    Encoding(#[from] serde_json::Error),
    /// The session store did not answer (Redis down, a timeout); the session may well exist.
    #[error("the session store is unavailable: {0}")]
    Unavailable(String),
    /// A stored session could not be decrypted or is not what this module wrote.
    #[error("a stored session is corrupt: {0}")]
    Corrupt(String),
}

/// The sessions of one module: in the token store ([`TokenStoreSessions`]) or in Redis
/// ([`crate::RedisSessions`]). The pipeline and the routes only ever go through it.
#[async_trait]
pub trait SessionStore: fmt::Debug + Send + Sync {
    /// Stores `record` under `sid` (replacing what was there).
    async fn save(&self, sid: &str, record: &SessionRecord) -> Result<(), SessionStoreError>;
    /// The live session `sid`, if any. Shared, not copied, so what is built from it once (the
    /// injected headers) serves every request of the session while it is cached.
    async fn load(&self, sid: &str) -> Result<Option<Arc<SessionRecord>>, SessionStoreError>;
    /// Forgets session `sid` (and the index of `record`'s access token).
    async fn delete(
        &self,
        sid: &str,
        record: Option<&SessionRecord>,
    ) -> Result<(), SessionStoreError>;
    /// Remembers `sid` as signed out until `record` would have ended, so a replayed
    /// self-contained cookie is refused.
    async fn revoke(&self, sid: &str, record: &SessionRecord) -> Result<(), SessionStoreError>;
    /// A session a cookie carries itself (token store off), unless it was revoked.
    async fn admit_carried(
        &self,
        sid: &str,
        record: &SessionRecord,
    ) -> Result<Option<Arc<SessionRecord>>, SessionStoreError>;
    /// The session whose current access token is exactly `access_token`.
    async fn find_by_access_token(
        &self,
        access_token: &str,
    ) -> Result<Option<(String, Arc<SessionRecord>)>, SessionStoreError>;
    /// Whether the backend answers now (readiness): a round trip that reads and writes no
    /// session, never served from a cache.
    async fn check(&self) -> Result<(), SessionStoreError>;
    /// Takes the refresh lease of session `sid` for `ttl` as `holder`, unless another holder
    /// has it. Shared by every instance that shares the sessions.
    async fn try_lease(
        &self,
        sid: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, SessionStoreError>;
    /// Extends the lease for `ttl` if `holder` still has it; false if it was lost.
    async fn renew_lease(
        &self,
        sid: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, SessionStoreError>;
    /// Gives the lease back if `holder` has it.
    async fn release_lease(&self, sid: &str, holder: &str) -> Result<(), SessionStoreError>;
}

const SESSION_KIND: &str = "easyauth-session";
const ACCESS_TOKEN_INDEX: &str = "easyauth-access-token";
const REVOKED_KIND: &str = "easyauth-revoked-session";

/// Sessions in the token store ([`Store`]'s ephemeral records), kept until the session's end
/// plus `tokenRefreshExtensionHours`.
#[derive(Debug)]
pub struct TokenStoreSessions {
    store: Arc<dyn Store>,
    refresh_extension: Duration,
    cache: SessionCache,
    leases: LocalLeases,
}

impl TokenStoreSessions {
    /// Sessions in `store`, kept `refresh_extension` past their end.
    pub fn new(store: Arc<dyn Store>, refresh_extension: Duration) -> TokenStoreSessions {
        TokenStoreSessions {
            store,
            refresh_extension,
            cache: SessionCache::default(),
            leases: LocalLeases::default(),
        }
    }

    fn keep_until(&self, record: &SessionRecord) -> i64 {
        record.session_expires + self.refresh_extension.as_secs() as i64
    }
}

#[async_trait]
impl SessionStore for TokenStoreSessions {
    async fn save(&self, sid: &str, record: &SessionRecord) -> Result<(), SessionStoreError> {
        self.cache.remove(sid);
        let json = serde_json::to_string(record)?;
        let keep_until = self.keep_until(record);
        self.store
            .put_ephemeral(SESSION_KIND, sid, &json, keep_until)
            .await?;
        if let Some(at) = &record.access_token {
            self.store
                .put_ephemeral(
                    ACCESS_TOKEN_INDEX,
                    &sha256_hex(at.as_bytes()),
                    sid,
                    keep_until,
                )
                .await?;
        }
        Ok(())
    }

    async fn load(&self, sid: &str) -> Result<Option<Arc<SessionRecord>>, SessionStoreError> {
        if let Some(record) = self.cache.get(sid) {
            return Ok(Some(record));
        }
        let Some(json) = self.store.get_ephemeral(SESSION_KIND, sid, now()).await? else {
            return Ok(None);
        };
        let record: Arc<SessionRecord> = Arc::new(serde_json::from_str(&json)?);
        self.cache.put(sid, record.clone());
        Ok(Some(record))
    }

    async fn delete(
        &self,
        sid: &str,
        record: Option<&SessionRecord>,
    ) -> Result<(), SessionStoreError> {
        self.cache.remove(sid);
        self.store.delete_ephemeral(SESSION_KIND, sid).await?;
        if let Some(at) = record.and_then(|r| r.access_token.as_ref()) {
            self.store
                .delete_ephemeral(ACCESS_TOKEN_INDEX, &sha256_hex(at.as_bytes()))
                .await?;
        }
        Ok(())
    }

    async fn revoke(&self, sid: &str, record: &SessionRecord) -> Result<(), SessionStoreError> {
        self.cache.remove(sid);
        self.store
            .put_ephemeral(REVOKED_KIND, sid, "1", self.keep_until(record))
            .await?;
        Ok(())
    }

    async fn admit_carried(
        &self,
        sid: &str,
        record: &SessionRecord,
    ) -> Result<Option<Arc<SessionRecord>>, SessionStoreError> {
        // "Not revoked" is remembered like a stored session (same TTL); this instance's own
        // sign-outs remove the entry at once.
        // The same record as last time is shared, so what was built from it (the injected
        // headers) is reused; a different one (a refreshed cookie) is checked again below.
        if let Some(cached) = self.cache.get(sid)
            && *cached == *record
        {
            return Ok(Some(cached));
        }
        let revoked = self
            .store
            .get_ephemeral(REVOKED_KIND, sid, now())
            .await?
            .is_some();
        if revoked {
            return Ok(None);
        }
        let record = Arc::new(record.clone());
        self.cache.put(sid, record.clone());
        Ok(Some(record))
    }

    async fn find_by_access_token(
        &self,
        access_token: &str,
    ) -> Result<Option<(String, Arc<SessionRecord>)>, SessionStoreError> {
        let Some(sid) = self
            .store
            .get_ephemeral(
                ACCESS_TOKEN_INDEX,
                &sha256_hex(access_token.as_bytes()),
                now(),
            )
            .await?
        else {
            return Ok(None);
        };
        let Some(record) = self.load(&sid).await? else {
            return Ok(None);
        };
        Ok((record.access_token.as_deref() == Some(access_token)).then_some((sid, record)))
    }

    async fn check(&self) -> Result<(), SessionStoreError> {
        Ok(self.store.check().await?)
    }

    // This store belongs to one process (its SQLite file), so the lease is the process's own.
    async fn try_lease(
        &self,
        sid: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, SessionStoreError> {
        Ok(self.leases.try_take(sid, holder, ttl))
    }

    async fn renew_lease(
        &self,
        sid: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, SessionStoreError> {
        Ok(self.leases.renew(sid, holder, ttl))
    }

    async fn release_lease(&self, sid: &str, holder: &str) -> Result<(), SessionStoreError> {
        self.leases.release(sid, holder);
        Ok(())
    }
}

/// Recently read sessions, so a signed-in browser's requests do not each query the token store.
/// Entries live [`SESSION_CACHE_TTL`]; this instance's own writes and sign-outs update them at
/// once, another instance's sign-out is seen within the TTL.
#[derive(Debug, Default)]
struct SessionCache {
    entries: Mutex<HashMap<String, (Arc<SessionRecord>, Instant)>>,
}

const SESSION_CACHE_TTL: Duration = Duration::from_secs(5);
const SESSION_CACHE_MAX: usize = 10_000;

impl SessionCache {
    fn get(&self, sid: &str) -> Option<Arc<SessionRecord>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(sid)
            .filter(|(_, at)| at.elapsed() < SESSION_CACHE_TTL)
            .map(|(r, _)| r.clone())
    }

    fn put(&self, sid: &str, record: Arc<SessionRecord>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= SESSION_CACHE_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < SESSION_CACHE_TTL);
            if entries.len() >= SESSION_CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(sid.to_owned(), (record, Instant::now()));
    }

    fn remove(&self, sid: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(sid);
    }
}
