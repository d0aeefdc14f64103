//! How many fetches of a provider document (discovery, JWKS) succeeded and failed: two atomics,
//! counted whether or not anyone reads them, which the metrics read at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

/// Successful and failed fetches.
#[derive(Debug, Default)]
pub struct FetchTally {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl FetchTally {
    /// Counts one fetch.
    pub fn record(&self, ok: bool) {
        let counter = if ok { &self.ok } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(succeeded, failed)` so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
