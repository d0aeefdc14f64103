//! One redeem per refresh: the lease a `/.auth/refresh` holds on its session while it redeems
//! the refresh token, renewed while the provider is slow so that no other instance redeems the
//! same (rotating) refresh token meanwhile, and given back when done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::ids::random_hex;
use crate::session_store::{SessionStore, SessionStoreError};

/// How long a lease lasts unless renewed: short, so a holder that died frees it soon.
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(3);
/// How often the holder renews it (well inside [`LEASE_TTL`]).
const RENEW_EVERY: Duration = Duration::from_millis(1000);
/// How long a request waits for another's refresh of the same session before giving up.
const WAIT_AT_MOST: Duration = Duration::from_secs(15);
/// How often a waiting request tries again.
const RETRY_EVERY: Duration = Duration::from_millis(20);

/// Why the lease was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LeaseError {
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] SessionStoreError),
    /// Another request held it for longer than a request waits.
    #[error("another refresh of this session has not finished within {0:?}")]
    Busy(Duration),
}

/// A held refresh lease. Renewed in the background until [`RefreshLease::release`] or drop.
#[derive(Debug)]
pub(crate) struct RefreshLease {
    sessions: Arc<dyn SessionStore>,
    sid: String,
    holder: String,
    renewer: Option<JoinHandle<()>>,
}

impl RefreshLease {
    /// Waits (bounded) until this request holds the refresh lease of `sid`.
    pub(crate) async fn acquire(
        sessions: &Arc<dyn SessionStore>,
        sid: &str,
    ) -> Result<RefreshLease, LeaseError> {
        let holder = random_hex(16);
        let deadline = Instant::now() + WAIT_AT_MOST;
        while !sessions.try_lease(sid, &holder, LEASE_TTL).await? {
            if Instant::now() >= deadline {
                return Err(LeaseError::Busy(WAIT_AT_MOST));
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
        let renewer = tokio::spawn(renew(sessions.clone(), sid.to_owned(), holder.clone()));
        Ok(RefreshLease {
            sessions: sessions.clone(),
            sid: sid.to_owned(),
            holder,
            renewer: Some(renewer),
        })
    }

    /// Gives the lease back now.
    pub(crate) async fn release(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if let Err(e) = self.sessions.release_lease(&self.sid, &self.holder).await {
            // It expires by itself within LEASE_TTL.
            tracing::warn!(target: "easyauth::module", error = %e, "refresh lease not released");
        }
    }
}

impl Drop for RefreshLease {
    fn drop(&mut self) {
        // Dropped without release (the request was cancelled): stop renewing, give it back.
        if let Some(r) = self.renewer.take() {
            r.abort();
            let sessions = self.sessions.clone();
            let sid = std::mem::take(&mut self.sid);
            let holder = std::mem::take(&mut self.holder);
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = sessions.release_lease(&sid, &holder).await;
                });
            }
        }
    }
}

async fn renew(sessions: Arc<dyn SessionStore>, sid: String, holder: String) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        match sessions.renew_lease(&sid, &holder, LEASE_TTL).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(target: "easyauth::module", "refresh lease lost while redeeming");
                return;
            }
            Err(e) => {
                tracing::warn!(target: "easyauth::module", error = %e, "refresh lease not renewed");
            }
        }
    }
}
