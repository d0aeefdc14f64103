//! Liveness and readiness of the identity provider: `/healthz` answers while it serves;
//! `/readyz` when its store answers and its signing keys are loaded. Both are on its own origin
//! (dex and Hydra do the same) and on the operations listener; the answer is plain text, one
//! line per check, 503 when one fails.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::Idp;

/// How long a readiness check waits for the store.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// One readiness check: what was checked, and the problem if it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyCheck {
    /// What was checked, e.g. `store`.
    pub name: String,
    /// Why it is not ready; `None` when it is.
    pub problem: Option<String>,
}

impl Idp {
    /// The store answers within `timeout`, and a signing key is loaded.
    pub async fn readiness(&self, timeout: Duration) -> Vec<ReadyCheck> {
        let store = match tokio::time::timeout(timeout, self.store.check()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {} s", timeout.as_secs_f64())),
        };
        let keys = self
            .keys()
            .active_kid()
            .is_empty()
            .then(|| "no active signing key".to_owned());
        vec![
            ReadyCheck {
                name: "store".to_owned(),
                problem: store,
            },
            ReadyCheck {
                name: "signing keys".to_owned(),
                problem: keys,
            },
        ]
    }
}

/// `GET /healthz`: the process serves.
pub fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".to_owned())
}

/// The `/readyz` answer for `checks`: 200 `ready` or 503 `not ready`, then one line per check.
pub fn readyz(checks: &[ReadyCheck]) -> Response {
    let ready = checks.iter().all(|c| c.problem.is_none());
    let mut body = String::from(if ready { "ready\n" } else { "not ready\n" });
    for check in checks {
        body.push_str(&check.name);
        body.push_str(": ");
        // One line per check, whatever the error message holds.
        match &check.problem {
            None => body.push_str("ok"),
            Some(problem) => body.push_str(&problem.replace(['\r', '\n'], " ")),
        }
        body.push('\n');
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(status, body)
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(crate) async fn healthz_route() -> Response {
    healthz()
}

pub(crate) async fn readyz_route(State(idp): State<Arc<Idp>>) -> Response {
    readyz(&idp.readiness(READY_TIMEOUT).await)
}
