//! Refresh leases held within one process, for a session store no other process shares (the
//! token store in the data dir).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Leases of one process (for session stores no other process shares).
#[derive(Debug, Default)]
pub(crate) struct LocalLeases {
    held: Mutex<HashMap<String, (String, Instant)>>,
}

impl LocalLeases {
    pub(crate) fn try_take(&self, sid: &str, holder: &str, ttl: Duration) -> bool {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        held.retain(|_, (_, until)| *until > now);
        if held.contains_key(sid) {
            return false;
        }
        held.insert(sid.to_owned(), (holder.to_owned(), now + ttl));
        true
    }

    pub(crate) fn renew(&self, sid: &str, holder: &str, ttl: Duration) -> bool {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        match held.get_mut(sid) {
            Some((h, until)) if h == holder && *until > Instant::now() => {
                *until = Instant::now() + ttl;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn release(&self, sid: &str, holder: &str) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.get(sid).is_some_and(|(h, _)| h == holder) {
            held.remove(sid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_lease_has_one_holder_until_released_or_expired() {
        let leases = LocalLeases::default();
        let ttl = Duration::from_secs(60);
        assert!(leases.try_take("s", "a", ttl));
        assert!(!leases.try_take("s", "b", ttl));
        assert!(leases.try_take("other", "b", ttl));
        assert!(leases.renew("s", "a", ttl));
        assert!(!leases.renew("s", "b", ttl));
        leases.release("s", "b");
        assert!(!leases.try_take("s", "b", ttl), "only the holder releases");
        leases.release("s", "a");
        assert!(leases.try_take("s", "b", ttl));
        assert!(leases.try_take("gone", "a", Duration::ZERO));
        assert!(
            leases.try_take("gone", "b", ttl),
            "an expired lease is free"
        );
    }
}
