//! Signing keys of providers, fetched from their `jwks_uri` and cached per URI.
//!
//! * Fetched on first use. An unknown `kid` triggers a refetch, at most once per
//!   [`JwksSettings::min_refetch_interval`] per URI, so tokens with made-up kids cannot turn the
//!   module into a request amplifier against the provider.
//! * Single flight: concurrent misses of one URI wait on one fetch (a FIFO async mutex) and then
//!   use its result instead of fetching again.
//! * The last good key set is kept when the provider is unreachable or answers garbage.
//! * Refreshed proactively, in the background, once a key set is older than
//!   [`JwksSettings::max_age`]: the request that notices keeps using the current keys, so no
//!   request waits for the hourly refresh.
//! * Algorithms are pinned per key: an RSA key verifies RS256 and PS256 only (or only the `alg`
//!   its JWK names), an EC P-256 key ES256 only. Symmetric (`oct`) keys are never loaded: a key
//!   published in a public document cannot authenticate anything.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use super::http::OidcHttp;
use super::tally::FetchTally;

/// RSA keys shorter than this are not loaded.
pub const MIN_RSA_BITS: usize = 2048;

/// base64url that tolerates padding, as some providers pad `n` and `e`.
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How often the cache may go back to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksSettings {
    /// Minimum time between two fetches of one URI caused by unknown kids (or by failures).
    pub min_refetch_interval: Duration,
    /// Age after which a key set is refreshed in the background.
    pub max_age: Duration,
}

impl Default for JwksSettings {
    fn default() -> JwksSettings {
        JwksSettings {
            min_refetch_interval: Duration::from_secs(30),
            max_age: Duration::from_secs(3600),
        }
    }
}

/// The kind of a verification key, as named in rejection messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Rsa => "an RSA key",
            KeyKind::EcP256 => "an EC P-256 key",
        })
    }
}

/// One published public key and the algorithms it may verify.
#[derive(Debug)]
pub struct VerifyingKey {
    pub kid: Option<String>,
    pub kind: KeyKind,
    /// The algorithms this key accepts: its JWK's `alg` if present, else the defaults of its kind.
    pub algorithms: Vec<Algorithm>,
    pub(crate) decoding: DecodingKey,
}

impl VerifyingKey {
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }
}

/// A parsed JWKS document: the usable keys only.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
}

impl KeySet {
    /// Parses a JWKS document, skipping keys that cannot be used for verification. A document
    /// without any usable key is an error, so garbage never replaces a good key set.
    pub fn parse(document: &Value) -> Result<KeySet, String> {
        let Some(keys) = document.get("keys").and_then(Value::as_array) else {
            return Err("the document has no \"keys\" array".into());
        };
        let mut usable = Vec::new();
        let mut skipped = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let parsed = key
                .as_object()
                .ok_or_else(|| "not an object".to_owned())
                .and_then(parse_jwk);
            match parsed {
                Ok(k) => usable.push(Arc::new(k)),
                Err(reason) => skipped.push(format!("key {i}: {reason}")),
            }
        }
        if !skipped.is_empty() {
            tracing::debug!(skipped = %skipped.join("; "), "JWKS keys skipped");
        }
        if usable.is_empty() {
            return Err(if skipped.is_empty() {
                "the document lists no key".into()
            } else {
                format!("no usable signing key ({})", skipped.join("; "))
            });
        }
        Ok(KeySet { keys: usable })
    }

    /// The key for `kid`; a token without a kid matches only a set of exactly one key.
    pub fn find(&self, kid: Option<&str>) -> Option<&Arc<VerifyingKey>> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn parse_jwk(jwk: &Map<String, Value>) -> Result<VerifyingKey, String> {
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    if let Some(usage) = text("use")
        && usage != "sig"
    {
        return Err(format!("\"use\" is {usage:?}"));
    }
    if let Some(ops) = jwk.get("key_ops").and_then(Value::as_array)
        && !ops.iter().any(|op| op == "verify")
    {
        return Err("\"key_ops\" does not include \"verify\"".into());
    }
    let kid = text("kid").map(str::to_owned);
    let pinned = text("alg");
    let decode = |name: &str| -> Result<Vec<u8>, String> {
        let value = text(name).ok_or_else(|| format!("no \"{name}\""))?;
        B64URL
            .decode(value)
            .map_err(|e| format!("\"{name}\" is not base64url: {e}"))
    };
    match text("kty") {
        Some("RSA") => {
            let n = decode("n")?;
            let e = decode("e")?;
            let n = strip_leading_zeros(&n);
            let e = strip_leading_zeros(&e);
            let bits = n.len() * 8;
            if bits < MIN_RSA_BITS {
                return Err(format!("RSA modulus of {bits} bits is too short"));
            }
            if e.is_empty() {
                return Err("RSA exponent is zero".into());
            }
            let algorithms = match pinned {
                None => vec![Algorithm::RS256, Algorithm::PS256],
                Some(alg) => match rsa_algorithm(alg) {
                    Some(a) => vec![a],
                    None => return Err(format!("\"alg\" {alg:?} does not fit an RSA key")),
                },
            };
            Ok(VerifyingKey {
                kid,
                kind: KeyKind::Rsa,
                algorithms,
                decoding: DecodingKey::from_rsa_raw_components(n, e),
            })
        }
        Some("EC") => {
            if text("crv") != Some("P-256") {
                return Err(format!("curve {:?} is not supported", text("crv")));
            }
            if pinned.is_some_and(|a| a != "ES256") {
                return Err(format!("\"alg\" {pinned:?} does not fit a P-256 key"));
            }
            let (x, y) = (decode("x")?, decode("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err("P-256 coordinates must be 32 bytes".into());
            }
            let encode = |b: &[u8]| general_purpose::URL_SAFE_NO_PAD.encode(b);
            let decoding = DecodingKey::from_ec_components(&encode(&x), &encode(&y))
                .map_err(|e| format!("unusable P-256 key: {e}"))?;
            Ok(VerifyingKey {
                kid,
                kind: KeyKind::EcP256,
                algorithms: vec![Algorithm::ES256],
                decoding,
            })
        }
        Some(other) => Err(format!("key type {other:?} is not accepted")),
        None => Err("no \"kty\"".into()),
    }
}

pub(crate) fn rsa_algorithm(alg: &str) -> Option<Algorithm> {
    Some(match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        _ => return None,
    })
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// Why no key could be found for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookupError {
    /// The key set (fetched at most `min_refetch_interval` ago) has no key with this kid.
    UnknownKid { kid: Option<String>, keys: usize },
    /// No key set could ever be fetched from the URI.
    Unavailable { reason: String },
}

/// The per-URI caches. Cloning shares them.
#[derive(Debug, Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: OidcHttp,
    settings: JwksSettings,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    /// Fetches of every URI, for the metrics.
    tally: FetchTally,
}

#[derive(Debug)]
struct Entry {
    uri: String,
    snapshot: RwLock<Option<Snapshot>>,
    /// Bumped when a fetch attempt completes, so waiters can tell that one happened meanwhile.
    generation: AtomicU64,
    /// Completed and failed fetch attempts, for tests and diagnostics.
    fetches: AtomicU64,
    refreshing: AtomicBool,
    /// Held while fetching: the single-flight gate.
    fetch: tokio::sync::Mutex<FetchState>,
}

#[derive(Debug, Clone)]
struct Snapshot {
    keys: Arc<KeySet>,
    /// When a background refresh is due.
    refresh_at: Instant,
}

#[derive(Debug, Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl JwksCache {
    pub fn new(http: OidcHttp, settings: JwksSettings) -> JwksCache {
        JwksCache {
            inner: Arc::new(Inner {
                http,
                settings,
                entries: Mutex::new(HashMap::new()),
                tally: FetchTally::default(),
            }),
        }
    }

    pub fn settings(&self) -> JwksSettings {
        self.inner.settings
    }

    /// How many fetches of `jwks_uri` were attempted (successful or not).
    pub fn fetch_count(&self, jwks_uri: &str) -> u64 {
        self.existing(jwks_uri)
            .map_or(0, |e| e.fetches.load(Ordering::Relaxed))
    }

    /// `(succeeded, failed)` fetches of every URI so far.
    pub fn fetch_totals(&self) -> (u64, u64) {
        self.inner.tally.totals()
    }

    /// The current key set of `jwks_uri`, if one was ever fetched.
    pub fn cached(&self, jwks_uri: &str) -> Option<Arc<KeySet>> {
        self.existing(jwks_uri)?.snapshot().map(|s| s.keys)
    }

    /// Fetches `jwks_uri` now (joining a fetch in flight), e.g. at startup; not rate limited.
    pub async fn prefetch(&self, jwks_uri: &str) -> Result<Arc<KeySet>, String> {
        let entry = self.entry(jwks_uri);
        let generation = entry.generation.load(Ordering::Acquire);
        let mut state = entry.fetch.lock().await;
        if entry.generation.load(Ordering::Acquire) == generation {
            self.fetch_locked(&entry, &mut state).await;
        }
        match entry.snapshot() {
            Some(s) if state.last_error.is_none() => Ok(s.keys),
            _ => Err(state
                .last_error
                .clone()
                .unwrap_or_else(|| "no key set".into())),
        }
    }

    /// The key a token names, fetching or refetching the key set as the rules above allow.
    /// With `may_fetch` false only the cached set is consulted (used for algorithms no key
    /// could accept, so such tokens never cause a fetch).
    pub async fn key_for(
        &self,
        jwks_uri: &str,
        kid: Option<&str>,
        may_fetch: bool,
    ) -> Result<Arc<VerifyingKey>, KeyLookupError> {
        let entry = self.entry(jwks_uri);
        // Read the generation before the snapshot: a fetch finishing in between is then seen
        // as "happened while waiting" below.
        let generation = entry.generation.load(Ordering::Acquire);
        let snapshot = entry.snapshot();
        if let Some(snapshot) = &snapshot
            && let Some(key) = snapshot.keys.find(kid)
        {
            if Instant::now() >= snapshot.refresh_at {
                self.spawn_refresh(&entry);
            }
            return Ok(key.clone());
        }
        let unknown = |keys: usize| KeyLookupError::UnknownKid {
            kid: kid.map(str::to_owned),
            keys,
        };
        if !may_fetch {
            return Err(unknown(snapshot.map_or(0, |s| s.keys.len())));
        }
        let mut state = entry.fetch.lock().await;
        let fetched_meanwhile = entry.generation.load(Ordering::Acquire) != generation;
        let rate_limited = state
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.inner.settings.min_refetch_interval);
        if !fetched_meanwhile && !rate_limited {
            self.fetch_locked(&entry, &mut state).await;
        }
        match entry.snapshot() {
            Some(s) => s.keys.find(kid).cloned().ok_or(unknown(s.keys.len())),
            None => Err(KeyLookupError::Unavailable {
                reason: state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "the key set has not been fetched".into()),
            }),
        }
    }

    fn existing(&self, jwks_uri: &str) -> Option<Arc<Entry>> {
        let entries = self
            .inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        entries.get(jwks_uri).cloned()
    }

    fn entry(&self, jwks_uri: &str) -> Arc<Entry> {
        let mut entries = self
            .inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        entries
            .entry(jwks_uri.to_owned())
            .or_insert_with(|| {
                Arc::new(Entry {
                    uri: jwks_uri.to_owned(),
                    snapshot: RwLock::new(None),
                    generation: AtomicU64::new(0),
                    fetches: AtomicU64::new(0),
                    refreshing: AtomicBool::new(false),
                    fetch: tokio::sync::Mutex::new(FetchState::default()),
                })
            })
            .clone()
    }

    /// Runs one fetch; the caller holds the entry's fetch lock. The attempt time is recorded
    /// after the fetch, so a fetch cancelled with its request does not rate-limit the next one.
    async fn fetch_locked(&self, entry: &Entry, state: &mut FetchState) {
        entry.fetches.fetch_add(1, Ordering::Relaxed);
        let result = match self.inner.http.get_json::<Value>(&entry.uri).await {
            Ok(document) => KeySet::parse(&document)
                .map_err(|reason| format!("GET {}: unusable key set: {reason}", entry.uri)),
            Err(e) => Err(e.to_string()),
        };
        self.inner.tally.record(result.is_ok());
        let now = Instant::now();
        match result {
            Ok(keys) => {
                tracing::debug!(uri = %entry.uri, keys = keys.len(), "fetched signing keys");
                entry.set_snapshot(Some(Snapshot {
                    keys: Arc::new(keys),
                    refresh_at: now + self.inner.settings.max_age,
                }));
                state.last_error = None;
            }
            Err(reason) => {
                tracing::warn!(uri = %entry.uri, %reason, "cannot refresh signing keys; keeping the last good set");
                // Keep the last good keys; retry the background refresh only after the
                // rate-limit interval.
                if let Some(mut s) = entry.snapshot() {
                    s.refresh_at = now + self.inner.settings.min_refetch_interval;
                    entry.set_snapshot(Some(s));
                }
                state.last_error = Some(reason);
            }
        }
        state.last_attempt = Some(now);
        entry.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn spawn_refresh(&self, entry: &Arc<Entry>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if entry.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = self.clone();
        let entry = entry.clone();
        runtime.spawn(async move {
            let mut state = entry.fetch.lock().await;
            // Another fetch may have refreshed the set while this task waited for the lock.
            let due = entry
                .snapshot()
                .is_none_or(|s| Instant::now() >= s.refresh_at);
            if due {
                cache.fetch_locked(&entry, &mut state).await;
            }
            drop(state);
            entry.refreshing.store(false, Ordering::Release);
        });
    }
}

impl Entry {
    fn snapshot(&self) -> Option<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_snapshot(&self, snapshot: Option<Snapshot>) {
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = snapshot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rsa_n(bytes: usize) -> String {
        let mut n = vec![0xc5u8; bytes];
        n[bytes - 1] = 0x01;
        general_purpose::URL_SAFE_NO_PAD.encode(n)
    }

    #[test]
    fn pins_algorithms_per_key() {
        let set = KeySet::parse(&json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": rsa_n(256), "e": "AQAB"},
            {"kty": "RSA", "kid": "b", "n": rsa_n(256), "e": "AQAB", "alg": "PS512"},
        ]}))
        .expect("set");
        let a = set.find(Some("a")).expect("a");
        assert_eq!(a.algorithms, vec![Algorithm::RS256, Algorithm::PS256]);
        assert!(!a.allows(Algorithm::HS256));
        let b = set.find(Some("b")).expect("b");
        assert_eq!(b.algorithms, vec![Algorithm::PS512]);
        assert!(set.find(None).is_none(), "two keys: a kid is required");
    }

    #[test]
    fn skips_unusable_keys() {
        let set = KeySet::parse(&json!({"keys": [
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": rsa_n(256), "e": "AQAB"},
            {"kty": "RSA", "kid": "short", "n": rsa_n(128), "e": "AQAB"},
            {"kty": "RSA", "kid": "hs", "alg": "HS256", "n": rsa_n(256), "e": "AQAB"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
            "garbage",
            {"kty": "RSA", "kid": "good", "use": "sig", "n": rsa_n(256), "e": "AQAB"},
        ]}))
        .expect("set");
        assert_eq!(set.len(), 1);
        assert!(set.find(Some("good")).is_some());
        assert!(
            set.find(None).is_some(),
            "a single key matches a kid-less token"
        );
    }

    #[test]
    fn garbage_documents_are_errors() {
        assert!(KeySet::parse(&json!({"nokeys": []})).is_err());
        assert!(KeySet::parse(&json!({"keys": []})).is_err());
        assert!(KeySet::parse(&json!({"keys": [{"kty": "oct", "k": "AA"}]})).is_err());
        assert!(KeySet::parse(&json!("<html>")).is_err());
    }
}
