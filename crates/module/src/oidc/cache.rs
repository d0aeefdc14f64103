//! The validated-token cache: a token that passed once is not verified again until it expires.
//!
//! Entries are keyed on SHA-256 of the token *and* a fingerprint of the policy it passed
//! (issuers, audiences, JWKS URI, skew): a token valid for one policy must never pass another
//! (ory/oathkeeper GHSA-qvp4-rpmr-xwrr and GHSA-4mq7-pvjg-xp2r). Only successes are cached and
//! expiry is re-checked on every hit. The size is bounded: when full, expired entries are swept
//! (at most once a minute), then the oldest insertions are evicted.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::token::{ValidatedToken, ValidationPolicy, sha256};

/// Default number of cached tokens.
pub(crate) const DEFAULT_CAPACITY: usize = 10_000;

const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

type Digest = [u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    token: Digest,
    policy: Digest,
}

impl CacheKey {
    pub(crate) fn new(token: &str, policy: &ValidationPolicy) -> CacheKey {
        Self::with_fingerprint(token, policy.fingerprint())
    }

    /// The key for a policy whose fingerprint is already known.
    pub(crate) fn with_fingerprint(token: &str, policy: Digest) -> CacheKey {
        CacheKey {
            token: sha256(&[token.as_bytes()]),
            policy,
        }
    }
}

#[derive(Debug)]
pub(crate) struct TokenCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    map: HashMap<CacheKey, (Arc<ValidatedToken>, u64)>,
    /// Insertion order; may hold keys already removed (their sequence number no longer matches).
    order: VecDeque<(CacheKey, u64)>,
    next_seq: u64,
    last_sweep: Option<Instant>,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize) -> TokenCache {
        TokenCache {
            capacity,
            state: Mutex::new(State {
                map: HashMap::new(),
                order: VecDeque::new(),
                next_seq: 0,
                last_sweep: None,
            }),
        }
    }

    /// The cached token if it is still within its lifetime (`exp` + skew) at `now`.
    pub(crate) fn get(
        &self,
        key: &CacheKey,
        now: i64,
        skew: Duration,
    ) -> Option<Arc<ValidatedToken>> {
        let mut state = self.lock();
        let (token, _) = state.map.get(key)?;
        if token.expired(now, skew) {
            state.map.remove(key);
            return None;
        }
        Some(token.clone())
    }

    pub(crate) fn insert(
        &self,
        key: CacheKey,
        token: Arc<ValidatedToken>,
        now: i64,
        skew: Duration,
    ) {
        if self.capacity == 0 {
            return;
        }
        let mut state = self.lock();
        if state.map.len() >= self.capacity && !state.map.contains_key(&key) {
            let due = state
                .last_sweep
                .is_none_or(|t| t.elapsed() >= SWEEP_INTERVAL);
            if due {
                state.map.retain(|_, (t, _)| !t.expired(now, skew));
                state.last_sweep = Some(Instant::now());
            }
            while state.map.len() >= self.capacity {
                let Some((old, seq)) = state.order.pop_front() else {
                    break;
                };
                if state.map.get(&old).is_some_and(|(_, s)| *s == seq) {
                    state.map.remove(&old);
                }
            }
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.map.insert(key, (token, seq));
        state.order.push_back((key, seq));
        // Drop stale order entries so the queue stays proportional to the map.
        if state.order.len() > 2 * self.capacity {
            let State { map, order, .. } = &mut *state;
            order.retain(|(k, s)| map.get(k).is_some_and(|(_, cur)| cur == s));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn token(exp: i64) -> Arc<ValidatedToken> {
        Arc::new(ValidatedToken::for_tests(Map::new(), exp))
    }

    fn policy(aud: &str) -> ValidationPolicy {
        ValidationPolicy::new(vec!["iss".into()], vec![aud.into()], "https://k")
    }

    const SKEW: Duration = Duration::from_secs(300);

    #[test]
    fn keyed_on_token_and_policy() {
        let cache = TokenCache::new(10);
        let key = CacheKey::new("t", &policy("a"));
        cache.insert(key, token(1000), 0, SKEW);
        assert!(cache.get(&key, 0, SKEW).is_some());
        assert!(
            cache
                .get(&CacheKey::new("t", &policy("b")), 0, SKEW)
                .is_none()
        );
        assert!(
            cache
                .get(&CacheKey::new("u", &policy("a")), 0, SKEW)
                .is_none()
        );
    }

    #[test]
    fn expiry_is_rechecked_on_every_hit() {
        let cache = TokenCache::new(10);
        let key = CacheKey::new("t", &policy("a"));
        cache.insert(key, token(1000), 0, SKEW);
        assert!(cache.get(&key, 1300, SKEW).is_some());
        assert!(cache.get(&key, 1301, SKEW).is_none());
        assert_eq!(cache.len(), 0, "an expired hit is dropped");
    }

    #[test]
    fn bounded_with_oldest_evicted_first() {
        let cache = TokenCache::new(3);
        let p = policy("a");
        for name in ["a", "b", "c", "d"] {
            cache.insert(CacheKey::new(name, &p), token(1000), 0, SKEW);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&CacheKey::new("a", &p), 0, SKEW).is_none());
        assert!(cache.get(&CacheKey::new("d", &p), 0, SKEW).is_some());
        // Expired entries go before live ones.
        let cache = TokenCache::new(2);
        cache.insert(CacheKey::new("old", &p), token(10), 0, SKEW);
        cache.insert(CacheKey::new("live", &p), token(5000), 0, SKEW);
        cache.insert(CacheKey::new("new", &p), token(5000), 1000, SKEW);
        assert!(cache.get(&CacheKey::new("live", &p), 1000, SKEW).is_some());
        assert!(cache.get(&CacheKey::new("new", &p), 1000, SKEW).is_some());
        for i in 0..100 {
            cache.insert(CacheKey::new(&i.to_string(), &p), token(5000), 0, SKEW);
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.state.lock().map(|s| s.order.len()).unwrap_or(0) <= 4);
    }
}
