//! Sessions in Redis, shared by every replica that shares the Redis and the `WEBSITE_AUTH_*`
//! keys.
//!
//! The session id is the ticket: 32 random bytes that only the (sealed) session cookie carries.
//! Redis holds each session under a digest of the id, encrypted (AES-256-GCM) with a key derived
//! from the id, so a copy of Redis decrypts nothing and a cookie alone holds no token. Records
//! expire with the session plus `tokenRefreshExtensionHours`.
//!
//! Nothing is cached across requests except the decoding: every request reads Redis, so a
//! sign-out or refresh on one replica is seen by the next request on any other.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use redis::{AsyncCommands, RedisResult};

use crate::clock::now;
use crate::ids::sha256_hex;
use crate::redis_connection::{Conn, RedisBackend, redacted_url, topology_of};
use crate::session_store::{SessionRecord, SessionStore, SessionStoreError};

/// Every operation answers within this, or counts as the store being unavailable.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(2);
const DECODED_CACHE_MAX: usize = 10_000;

/// Compare-and-extend: only the holder renews its lease.
const RENEW_SCRIPT: &str = r"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
/// Compare-and-delete: only the holder releases its lease.
const RELEASE_SCRIPT: &str = r"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Why Redis sessions could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL is not a Redis URL the client accepts.
    #[error("session store {url}: {reason}")]
    Url {
        /// The URL without its password.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A session's stored bytes and what they decode to.
type Decoded = (Vec<u8>, Arc<SessionRecord>);

/// Sessions in Redis (standalone, Cluster or Sentinel; over TCP or TLS).
pub struct RedisSessions {
    backend: RedisBackend,
    shown_url: String,
    prefix: String,
    refresh_extension: Duration,
    rng: SystemRandom,
    /// The last ciphertext read for each session and its decoding, so a signed-in browser's
    /// requests neither decrypt nor rebuild the injected headers while the session is unchanged.
    decoded: Mutex<HashMap<String, Decoded>>,
    renew: redis::Script,
    release: redis::Script,
}

impl fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSessions")
            .field("url", &self.shown_url)
            .field("topology", &self.backend)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisSessions {
    /// Sessions in the Redis at `url`: `redis://[user:password@]host[:port][/db]`,
    /// `redis+cluster://[user:password@]host:port,host:port/`,
    /// `redis+sentinel://[user:password@]host:port,host:port/<master>[/db]`, and `rediss…` for
    /// TLS (trusting the system's roots plus `ca_pem` if given). Connects lazily, so a Redis that
    /// is down at start-up delays readiness instead of failing the start.
    pub fn connect(
        url: &str,
        ca_pem: Option<Vec<u8>>,
        refresh_extension: Duration,
    ) -> Result<RedisSessions, RedisSetupError> {
        let shown_url = redacted_url(url);
        let bad = |reason: String| RedisSetupError::Url {
            url: shown_url.clone(),
            reason,
        };
        if topology_of(url).is_none() {
            return Err(bad(
                "expected redis://, rediss://, redis+cluster:// or redis+sentinel://".into(),
            ));
        }
        let backend = RedisBackend::open(url, ca_pem, OPERATION_TIMEOUT)
            // The client's message may quote the URL: say only what kind of error it was.
            .map_err(|e| bad(format!("{} ({:?})", e.category(), e.kind())))?;
        Ok(RedisSessions {
            backend,
            shown_url,
            prefix: "easyauth:".to_owned(),
            refresh_extension,
            rng: SystemRandom::new(),
            decoded: Mutex::new(HashMap::new()),
            renew: redis::Script::new(RENEW_SCRIPT),
            release: redis::Script::new(RELEASE_SCRIPT),
        })
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    fn key(&self, kind: &str, secret: &str) -> String {
        let d = sha256_hex(format!("easyauth {kind} key\0{secret}").as_bytes());
        format!("{}{kind}:{d}", self.prefix)
    }

    fn cipher(kind: &str, secret: &str) -> Result<LessSafeKey, SessionStoreError> {
        let d = digest(
            &SHA256,
            format!("easyauth {kind} secret\0{secret}").as_bytes(),
        );
        let key = UnboundKey::new(&AES_256_GCM, d.as_ref())
            .map_err(|_| SessionStoreError::Corrupt("cannot derive a session key".into()))?;
        Ok(LessSafeKey::new(key))
    }

    fn seal(
        &self,
        kind: &str,
        secret: &str,
        key: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>, SessionStoreError> {
        let cipher = Self::cipher(kind, secret)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| SessionStoreError::Unavailable("no random source".into()))?;
        let mut data = plain.to_vec();
        cipher
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.as_bytes()),
                &mut data,
            )
            .map_err(|_| SessionStoreError::Corrupt("cannot encrypt a session".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    fn open(
        kind: &str,
        secret: &str,
        key: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, SessionStoreError> {
        let corrupt = || SessionStoreError::Corrupt(format!("{kind} record does not decrypt"));
        if sealed.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut data = data.to_vec();
        let plain = Self::cipher(kind, secret)?
            .open_in_place(nonce, Aad::from(key.as_bytes()), &mut data)
            .map_err(|_| corrupt())?;
        Ok(plain.to_vec())
    }

    fn keep_until(&self, record: &SessionRecord) -> i64 {
        record.session_expires + self.refresh_extension.as_secs() as i64
    }

    /// Runs `op` on a connection, bounded by [`OPERATION_TIMEOUT`]; any failure is the store
    /// being unavailable, and a connection that failed is not used again.
    async fn run<T>(
        &self,
        what: &str,
        op: impl AsyncFnOnce(&mut Conn) -> RedisResult<T>,
    ) -> Result<T, SessionStoreError> {
        let attempt = async {
            let mut c = self.backend.connection().await?;
            op(&mut c).await
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, attempt).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.backend.failed(&e).await;
                Err(SessionStoreError::Unavailable(format!(
                    "Redis {} ({what}): {e}",
                    self.shown_url
                )))
            }
            Err(_) => {
                self.backend.forget().await;
                Err(SessionStoreError::Unavailable(format!(
                    "Redis {} ({what}): no answer within {OPERATION_TIMEOUT:?}",
                    self.shown_url
                )))
            }
        }
    }

    fn forget_decoded(&self, sid: &str) {
        self.decoded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(sid);
    }
}

const SESSION: &str = "session";
const ACCESS_TOKEN: &str = "access-token";
const REVOKED: &str = "revoked";
const LEASE: &str = "refresh-lease";

#[async_trait]
impl SessionStore for RedisSessions {
    async fn save(&self, sid: &str, record: &SessionRecord) -> Result<(), SessionStoreError> {
        self.forget_decoded(sid);
        let keep_until = self.keep_until(record);
        let key = self.key(SESSION, sid);
        // One command per key (a Cluster keeps the two in different slots, where neither MULTI
        // nor a pipeline may span them). The session goes first: an index entry without its
        // session, or naming an older token, finds nothing.
        if keep_until <= now() {
            return self.run("save", async |c| c.del::<_, ()>(&key).await).await;
        }
        let value = self.seal(SESSION, sid, &key, &serde_json::to_vec(record)?)?;
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(value).arg("EXAT").arg(keep_until);
        self.run("save", async |c| set.exec_async(c).await).await?;
        if let Some(at) = &record.access_token {
            let index = self.key(ACCESS_TOKEN, at);
            let value = self.seal(ACCESS_TOKEN, at, &index, sid.as_bytes())?;
            let mut set = redis::cmd("SET");
            set.arg(&index).arg(value).arg("EXAT").arg(keep_until);
            self.run("save index", async |c| set.exec_async(c).await)
                .await?;
        }
        Ok(())
    }

    async fn load(&self, sid: &str) -> Result<Option<Arc<SessionRecord>>, SessionStoreError> {
        let key = self.key(SESSION, sid);
        let sealed: Option<Vec<u8>> = self.run("load", async |c| c.get(&key).await).await?;
        let Some(sealed) = sealed else {
            self.forget_decoded(sid);
            return Ok(None);
        };
        {
            let decoded = self.decoded.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((bytes, record)) = decoded.get(sid)
                && *bytes == sealed
            {
                return Ok(Some(record.clone()));
            }
        }
        let plain = Self::open(SESSION, sid, &key, &sealed)?;
        let record: Arc<SessionRecord> = Arc::new(serde_json::from_slice(&plain)?);
        let mut decoded = self.decoded.lock().unwrap_or_else(PoisonError::into_inner);
        if decoded.len() >= DECODED_CACHE_MAX {
            decoded.clear();
        }
        decoded.insert(sid.to_owned(), (sealed, record.clone()));
        Ok(Some(record))
    }

    async fn delete(
        &self,
        sid: &str,
        record: Option<&SessionRecord>,
    ) -> Result<(), SessionStoreError> {
        self.forget_decoded(sid);
        let mut keys = vec![self.key(SESSION, sid)];
        if let Some(at) = record.and_then(|r| r.access_token.as_ref()) {
            keys.push(self.key(ACCESS_TOKEN, at));
        }
        // One command per key: in a Cluster the keys live in different slots.
        for k in &keys {
            self.run("delete", async |c| c.del::<_, ()>(k).await)
                .await?;
        }
        Ok(())
    }

    async fn revoke(&self, sid: &str, record: &SessionRecord) -> Result<(), SessionStoreError> {
        self.forget_decoded(sid);
        let keep_until = self.keep_until(record);
        if keep_until <= now() {
            return Ok(());
        }
        let key = self.key(REVOKED, sid);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg("1").arg("EXAT").arg(keep_until);
        self.run("revoke", async |c| cmd.exec_async(c).await).await
    }

    async fn admit_carried(
        &self,
        sid: &str,
        record: &SessionRecord,
    ) -> Result<Option<Arc<SessionRecord>>, SessionStoreError> {
        let key = self.key(REVOKED, sid);
        let revoked: bool = self
            .run("revocation check", async |c| c.exists(&key).await)
            .await?;
        if revoked {
            self.forget_decoded(sid);
            return Ok(None);
        }
        let mut decoded = self.decoded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, cached)) = decoded.get(sid)
            && **cached == *record
        {
            return Ok(Some(cached.clone()));
        }
        let record = Arc::new(record.clone());
        if decoded.len() >= DECODED_CACHE_MAX {
            decoded.clear();
        }
        decoded.insert(sid.to_owned(), (Vec::new(), record.clone()));
        Ok(Some(record))
    }

    async fn find_by_access_token(
        &self,
        access_token: &str,
    ) -> Result<Option<(String, Arc<SessionRecord>)>, SessionStoreError> {
        let index = self.key(ACCESS_TOKEN, access_token);
        let sealed: Option<Vec<u8>> = self
            .run("token lookup", async |c| c.get(&index).await)
            .await?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let sid = String::from_utf8(Self::open(ACCESS_TOKEN, access_token, &index, &sealed)?)
            .map_err(|_| SessionStoreError::Corrupt("access-token index is not text".into()))?;
        let Some(record) = self.load(&sid).await? else {
            return Ok(None);
        };
        Ok((record.access_token.as_deref() == Some(access_token)).then_some((sid, record)))
    }

    async fn check(&self) -> Result<(), SessionStoreError> {
        let pong: String = self
            .run("ping", async |c| redis::cmd("PING").query_async(c).await)
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(SessionStoreError::Unavailable(format!(
                "Redis {} answered PING with {pong:?}",
                self.shown_url
            )))
        }
    }

    async fn try_lease(
        &self,
        sid: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, SessionStoreError> {
        let key = self.key(LEASE, sid);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key)
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64);
        let set: Option<String> = self
            .run("lease", async |c| cmd.query_async(c).await)
            .await?;
        Ok(set.is_some())
    }

    async fn renew_lease(
        &self,
        sid: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, SessionStoreError> {
        let key = self.key(LEASE, sid);
        let mut invocation = self.renew.key(&key);
        invocation.arg(holder).arg(ttl.as_millis() as u64);
        let renewed: i64 = self
            .run("lease renewal", async |c| invocation.invoke_async(c).await)
            .await?;
        Ok(renewed == 1)
    }

    async fn release_lease(&self, sid: &str, holder: &str) -> Result<(), SessionStoreError> {
        let key = self.key(LEASE, sid);
        let mut invocation = self.release.key(&key);
        invocation.arg(holder);
        let _: i64 = self
            .run("lease release", async |c| invocation.invoke_async(c).await)
            .await?;
        Ok(())
    }
}
