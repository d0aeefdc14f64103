//! Readiness: can the module serve sign-ins and signed-in requests now? The session store
//! answers, and every configured provider's discovery document has been fetched (a check tries
//! the fetch when it has not). Checks run concurrently and are bounded by one timeout; a fetch
//! still running at the timeout goes on in the background, so the next probe may find it done.

use std::sync::Arc;
use std::time::Duration;

use crate::module::Module;

/// How long a readiness check waits for all its answers.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// One readiness check: what was checked, and the problem if it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyCheck {
    /// What was checked, e.g. `session store` or `provider aad discovery`.
    pub name: String,
    /// Why it is not ready; `None` when it is.
    pub problem: Option<String>,
}

impl ReadyCheck {
    /// Whether this check passed.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

type Pending = tokio::task::JoinHandle<Result<(), String>>;

/// Runs every readiness check of `module`, waiting at most `timeout` in all.
pub async fn readiness(module: &Arc<Module>, timeout: Duration) -> Vec<ReadyCheck> {
    // `None`: passed without asking anyone (a document fetched before).
    let mut checks: Vec<(String, Option<Pending>)> = Vec::new();
    let m = module.clone();
    checks.push((
        "session store".to_owned(),
        Some(tokio::spawn(async move {
            m.sessions.check().await.map_err(|e| e.to_string())
        })),
    ));
    for (index, provider) in module.providers.iter().enumerate() {
        let name = format!("provider {} discovery", provider.alias());
        if provider.has_metadata() {
            checks.push((name, None));
            continue;
        }
        let m = module.clone();
        checks.push((
            name,
            Some(tokio::spawn(async move {
                m.providers[index].metadata().await.map(|_| ())
            })),
        ));
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut results = Vec::with_capacity(checks.len());
    for (name, handle) in checks {
        let problem = match handle {
            None => None,
            Some(handle) => match tokio::time::timeout_at(deadline, handle).await {
                Ok(Ok(Ok(()))) => None,
                Ok(Ok(Err(problem))) => Some(problem),
                Ok(Err(join)) => Some(format!("the check failed: {join}")),
                Err(_) => Some(format!("no answer within {} s", timeout.as_secs_f64())),
            },
        };
        results.push(ReadyCheck { name, problem });
    }
    results
}
