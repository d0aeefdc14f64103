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
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::clock::now;
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
    /// The URL is not a `redis://` or `rediss://` URL the client accepts.
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

/// Sessions in Redis (standalone, over TCP or TLS).
pub struct RedisSessions {
    connection: ConnectionManager,
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
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// `url` with any password replaced, for logs and errors.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

impl RedisSessions {
    /// Sessions in the Redis at `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://`
    /// for TLS, trusting the system's roots plus `ca_pem` if given). Connects lazily, so a Redis
    /// that is down at start-up delays readiness instead of failing the start.
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
        let client = match ca_pem {
            Some(root_cert) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            ),
            None => redis::Client::open(url),
        }
        .map_err(|e| bad(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(OPERATION_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| bad(e.to_string()))?;
        Ok(RedisSessions {
            connection,
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
        let d = digest(&SHA256, format!("easyauth {kind} key\0{secret}").as_bytes());
        format!("{}{kind}:{}", self.prefix, hex(d.as_ref()))
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

    async fn run<T>(
        &self,
        what: &str,
        op: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, SessionStoreError> {
        match tokio::time::timeout(OPERATION_TIMEOUT, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(SessionStoreError::Unavailable(format!(
                "Redis {} ({what}): {e}",
                self.shown_url
            ))),
            Err(_) => Err(SessionStoreError::Unavailable(format!(
                "Redis {} ({what}): no answer within {OPERATION_TIMEOUT:?}",
                self.shown_url
            ))),
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
        let mut pipe = redis::pipe();
        pipe.atomic();
        if keep_until <= now() {
            pipe.del(&key);
        } else {
            let value = self.seal(SESSION, sid, &key, &serde_json::to_vec(record)?)?;
            pipe.cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("EXAT")
                .arg(keep_until);
            if let Some(at) = &record.access_token {
                let index = self.key(ACCESS_TOKEN, at);
                let value = self.seal(ACCESS_TOKEN, at, &index, sid.as_bytes())?;
                pipe.cmd("SET")
                    .arg(&index)
                    .arg(value)
                    .arg("EXAT")
                    .arg(keep_until);
            }
        }
        let mut c = self.connection.clone();
        self.run("save", pipe.exec_async(&mut c)).await
    }

    async fn load(&self, sid: &str) -> Result<Option<Arc<SessionRecord>>, SessionStoreError> {
        let key = self.key(SESSION, sid);
        let mut c = self.connection.clone();
        let sealed: Option<Vec<u8>> = self.run("load", c.get(&key)).await?;
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
        let mut c = self.connection.clone();
        // One key per command: the keys may live on different nodes of a cluster.
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.del(k);
        }
        self.run("delete", pipe.exec_async(&mut c)).await
    }

    async fn revoke(&self, sid: &str, record: &SessionRecord) -> Result<(), SessionStoreError> {
        self.forget_decoded(sid);
        let keep_until = self.keep_until(record);
        if keep_until <= now() {
            return Ok(());
        }
        let key = self.key(REVOKED, sid);
        let mut c = self.connection.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key).arg("1").arg("EXAT").arg(keep_until);
        self.run("revoke", cmd.exec_async(&mut c)).await
    }

    async fn admit_carried(
        &self,
        sid: &str,
        record: &SessionRecord,
    ) -> Result<Option<Arc<SessionRecord>>, SessionStoreError> {
        let key = self.key(REVOKED, sid);
        let mut c = self.connection.clone();
        let revoked: bool = self.run("revocation check", c.exists(&key)).await?;
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
        let mut c = self.connection.clone();
        let sealed: Option<Vec<u8>> = self.run("token lookup", c.get(&index)).await?;
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
        let mut c = self.connection.clone();
        let pong: String = self
            .run("ping", redis::cmd("PING").query_async(&mut c))
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
        let mut c = self.connection.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(&key)
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64);
        let set: Option<String> = self.run("lease", cmd.query_async(&mut c)).await?;
        Ok(set.is_some())
    }

    async fn renew_lease(
        &self,
        sid: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, SessionStoreError> {
        let key = self.key(LEASE, sid);
        let mut c = self.connection.clone();
        let mut invocation = self.renew.key(&key);
        invocation.arg(holder).arg(ttl.as_millis() as u64);
        let renewed: i64 = self
            .run("lease renewal", invocation.invoke_async(&mut c))
            .await?;
        Ok(renewed == 1)
    }

    async fn release_lease(&self, sid: &str, holder: &str) -> Result<(), SessionStoreError> {
        let key = self.key(LEASE, sid);
        let mut c = self.connection.clone();
        let mut invocation = self.release.key(&key);
        invocation.arg(holder);
        let _: i64 = self
            .run("lease release", invocation.invoke_async(&mut c))
            .await?;
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
