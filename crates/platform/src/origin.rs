//! An app's origin: the address a browser uses, served by the app's authentication module in
//! front of the app. The module can be replaced while the origin serves (a settings change
//! takes effect on the next request, with no restart and no dropped connections).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use easyauth_module::{BoxedService, REASON_CODE_HEADER, REASON_HEADER, ReasonCode};
use tower::ServiceExt;
use tracing::Instrument;

use crate::explain::{SharedCallers, advice};

/// The module stack an origin currently serves; swapped as a whole.
#[derive(Debug, Clone)]
pub struct SwappableService {
    current: Arc<ArcSwap<BoxedService>>,
}

impl SwappableService {
    pub fn new(service: BoxedService) -> SwappableService {
        SwappableService {
            current: Arc::new(ArcSwap::from_pointee(service)),
        }
    }

    /// Requests that arrive from now on go to `service`; requests in flight finish on the old one.
    pub fn swap(&self, service: BoxedService) {
        self.current.store(Arc::new(service));
    }
}

/// Binds an origin's listener (loopback addresses other than 127.0.0.1 work on Linux without
/// configuration: the whole 127.0.0.0/8 is local).
/// `what` names the listener in the error ("app \"web\"", "the identity provider").
pub fn bind(addr: SocketAddr, what: &str) -> Result<std::net::TcpListener, std::io::Error> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {addr} for {what}: {e}"))
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `service` on `listener` until `handle` shuts it down. Log lines of the module carry
/// the app's name.
pub async fn serve(
    listener: std::net::TcpListener,
    app: String,
    service: SwappableService,
    callers: SharedCallers,
    upstream: Arc<std::sync::Mutex<url::Url>>,
    log: crate::applog::AppLog,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    let app: Arc<str> = app.into();
    let unreachable = Arc::new(Unreachable {
        upstream,
        last_warning: AtomicU64::new(0),
    });
    let front = tower::service_fn(move |request: Request| {
        let unreachable = unreachable.clone();
        let stack = BoxedService::clone(&service.current.load());
        let span = tracing::info_span!("app", app = %app);
        // Kept (a reference-counted clone) and read only if the call is refused: naming the
        // caller costs a base64 and JSON decode that most requests need not pay.
        let authorization = request.headers().get(header::AUTHORIZATION).cloned();
        // For the log stream's line if the request is refused: reference-counted clones, no
        // copy of the path on requests that pass.
        let (method, target) = (request.method().clone(), request.uri().clone());
        let callers = callers.clone();
        let app = app.clone();
        let log = log.clone();
        async move {
            let response = stack.oneshot(request).await?;
            let callers = callers.load();
            let refused = matches!(
                response.status(),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            );
            if refused {
                let caller = authorization.and_then(|a| callers.caller(&a));
                log_refusal(
                    &log,
                    &response,
                    &method,
                    target.path(),
                    caller.as_ref(),
                    &app,
                );
                if let Some((caller, client)) = caller {
                    explain_refusal(&response, &caller, &client, &app);
                }
            }
            if response.status() == StatusCode::BAD_GATEWAY {
                unreachable.explain(&app);
            }
            Ok(response)
        }
        .instrument(span)
    });
    let router = axum::Router::new().fallback_service(front);
    axum_server::from_tcp(listener)?
        .handle(handle)
        .serve(router.into_make_service_with_connect_info::<SocketAddr>())
        .await
}

/// The app's log stream says why each refused request was refused (and, for a call from another
/// app of the site, what to change), as App Service's log stream shows the module's decisions.
fn log_refusal(
    log: &crate::applog::AppLog,
    response: &axum::response::Response,
    method: &axum::http::Method,
    path: &str,
    caller: Option<&(String, String)>,
    app: &str,
) {
    let status = response.status();
    let reason = refusal_message(response).unwrap_or_else(|| "no reason given".into());
    let code = refusal_code(response);
    let path: String = path.chars().take(200).collect();
    match caller {
        Some((caller, client)) => log.push(&format!(
            "easyauth: {} {method} {path} from app {caller}: {reason}. Fix: {}",
            status.as_u16(),
            advice(status, code, caller, client, app)
        )),
        None => log.push(&format!(
            "easyauth: {} {method} {path}: {reason}",
            status.as_u16()
        )),
    }
}

/// The module's explanation of a refusal (development mode, which the platform runs in).
fn refusal_message(response: &axum::response::Response) -> Option<String> {
    response
        .headers()
        .get(REASON_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// What kind of refusal the module reported.
fn refusal_code(response: &axum::response::Response) -> Option<ReasonCode> {
    response
        .headers()
        .get(REASON_CODE_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// One log line when a call from another app of the site is refused: who called whom, why, and
/// what to change.
fn explain_refusal(response: &axum::response::Response, caller: &str, client: &str, app: &str) {
    let status = response.status();
    if status != axum::http::StatusCode::UNAUTHORIZED && status != axum::http::StatusCode::FORBIDDEN
    {
        return;
    }
    let reason = refusal_message(response).unwrap_or_default();
    let fix = advice(status, refusal_code(response), caller, client, app);
    tracing::warn!(
        target: "easyauth::platform",
        caller,
        status = status.as_u16(),
        %reason,
        %fix,
        "{app} refused a call from {caller}"
    );
}

/// A 502 means the module could not reach the app. Say where it looked and what the app must
/// do, at most every ten seconds (a browser retrying must not flood the log).
#[derive(Debug)]
struct Unreachable {
    upstream: Arc<std::sync::Mutex<url::Url>>,
    last_warning: AtomicU64,
}

impl Unreachable {
    fn explain(&self, app: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_warning.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 10
            || self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let upstream = self
            .upstream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        tracing::warn!(
            target: "easyauth::platform",
            %upstream,
            "{app} answered 502: nothing answers at {upstream}; an app started by a command must listen on 127.0.0.1:$PORT (its output shows where it listens), an upstream app must be running",
        );
    }
}
