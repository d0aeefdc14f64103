//! Kudu's HTTP surface for one site: zip deploy and the deployments API, behind Basic auth
//! (publishing credentials) or a bearer token the platform checks.
//!
//! | route | |
//! |---|---|
//! | `POST /api/zipdeploy[?isAsync=true]` | deploy a zip body; 202 (async) or the outcome |
//! | `GET /api/deployments` | every deployment, newest first (also az's warm-up) |
//! | `GET /api/deployments/latest` | the newest one |
//! | `GET /api/deployments/{id}` | one (real or temp id) |
//! | `GET /api/deployments/{id}/log` | Kudu's log entries |
//! | `GET /api/deployments/{id}/log/{entry}` | the command output under an entry |
//! | `GET /api/deployments/{id}/log.txt` | the whole log as text |
//! | `GET /logstream[/...]`, `/api/logstream[/...]` | the app's log: the recent lines, then new ones as they come (`az webapp log tail`) |

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::deployment::{Deployment, DeploymentState, format_ms, now_ms};
use crate::kudu::Kudu;

/// The router for one site's Kudu. Serve it on the site's SCM origin (https).
pub fn router(kudu: Arc<Kudu>) -> Router {
    Router::new()
        .route("/api/zipdeploy", post(zipdeploy))
        .route("/api/deployments", get(list))
        .route("/api/deployments/", get(list))
        .route("/api/deployments/latest", get(latest))
        .route("/api/deployments/{id}", get(one))
        .route("/api/deployments/{id}/log", get(log_entries))
        .route("/api/deployments/{id}/log/{entry}", get(log_details))
        .route("/api/deployments/{id}/log.txt", get(log_text))
        .route("/api/logstream", get(logstream))
        .route("/api/logstream/{*provider}", get(logstream))
        .route("/logstream", get(logstream))
        .route("/logstream/{*provider}", get(logstream))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&kudu),
            authenticate,
        ))
        .with_state(kudu)
}

async fn authenticate(State(kudu): State<Arc<Kudu>>, request: Request, next: Next) -> Response {
    let site = kudu.site();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (scheme, value) = authorization.split_once(' ').unwrap_or((authorization, ""));
    let value = value.trim();
    let basic_allowed = site.publishing_credentials();
    let outcome = if scheme.eq_ignore_ascii_case("basic") {
        match &basic_allowed {
            None => Err("Basic authentication is disabled for this site; use a bearer token"),
            Some(expected) => match decode_basic(value) {
                Some((user, password))
                    if secret_eq(&user, &expected.user)
                        & secret_eq(&password, &expected.password) =>
                {
                    Ok(())
                }
                _ => Err("The user name or password is incorrect"),
            },
        }
    } else if scheme.eq_ignore_ascii_case("bearer") && !value.is_empty() {
        if site.authorize_bearer(value).await {
            Ok(())
        } else {
            Err("The bearer token is not valid for this site")
        }
    } else {
        Err("Authentication required: Basic (publishing credentials) or Bearer")
    };
    match outcome {
        Ok(()) => next.run(request).await,
        Err(message) => {
            let mut response = (StatusCode::UNAUTHORIZED, format!("{message}\n")).into_response();
            let realm = site.site_name().replace(['"', '\\'], "");
            if let Ok(v) = HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
                response.headers_mut().append(header::WWW_AUTHENTICATE, v);
            }
            if basic_allowed.is_none() {
                response
                    .headers_mut()
                    .append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            response
        }
    }
}

/// How long the log stream stays quiet before it says so (Kudu's wording), which also keeps
/// idle connections alive through proxies.
const LOGSTREAM_IDLE: Duration = Duration::from_secs(60);

/// `GET /api/logstream`: what `az webapp log tail` and the portal's Log stream read. Plain text,
/// never ending while the site exists.
async fn logstream(State(kudu): State<Arc<Kudu>>) -> Response {
    let feed = kudu.site().log();
    let mut first = format!(
        "{}  Welcome, you are now connected to log-streaming service.\n",
        format_ms(now_ms())
    );
    for line in &feed.recent {
        first.push_str(line);
        first.push('\n');
    }
    let state = (Some(first), feed.live);
    let stream = futures_util::stream::unfold(state, |(first, live)| async move {
        if let Some(text) = first {
            return Some((Ok::<_, std::io::Error>(text), (None, live)));
        }
        let mut live = live?;
        let text = match tokio::time::timeout(LOGSTREAM_IDLE, live.recv()).await {
            Ok(Ok(line)) => format!("{line}\n"),
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => {
                format!("({n} lines were written faster than this stream could send them)\n")
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
            Err(_) => format!(
                "{}  No new trace in the past 1 min(s).\n",
                format_ms(now_ms())
            ),
        };
        Some((Ok(text), (None, Some(live))))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn decode_basic(value: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Constant time, including in the length: both sides are hashed first.
fn secret_eq(given: &str, expected: &str) -> bool {
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    a.ct_eq(&b).into()
}

async fn zipdeploy(
    State(kudu): State<Arc<Kudu>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let is_async = query
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("isAsync") && v.eq_ignore_ascii_case("true"));
    let checksum = headers
        .get("x-ms-artifact-checksum")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let accepted = match kudu.start_deploy(body, checksum, length).await {
        Ok(d) => d,
        Err(err) => {
            let status =
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, format!("{err}\n")).into_response();
        }
    };
    if is_async {
        let mut response = StatusCode::ACCEPTED.into_response();
        response.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_static("/api/deployments/latest"),
        );
        return response;
    }
    let limits = kudu.limits();
    let bound = limits
        .build_timeout
        .saturating_mul(4)
        .saturating_add(limits.activate_timeout)
        .saturating_add(Duration::from_secs(60));
    let done = kudu.wait(&accepted.id, bound).await.unwrap_or(accepted);
    let base = base_url(&headers);
    let body = kudu_json(&kudu, &done, &base);
    match done.state {
        DeploymentState::RuntimeSuccessful => (StatusCode::OK, axum::Json(body)).into_response(),
        state if state.is_final() => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "Deployment Failed: {state}: {}\n",
                done.error.as_deref().unwrap_or("")
            ),
        )
            .into_response(),
        _ => (StatusCode::ACCEPTED, axum::Json(body)).into_response(),
    }
}

async fn list(State(kudu): State<Arc<Kudu>>, headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    let all: Vec<Value> = kudu
        .deployments()
        .iter()
        .map(|d| kudu_json(&kudu, d, &base))
        .collect();
    axum::Json(Value::Array(all)).into_response()
}

async fn latest(State(kudu): State<Arc<Kudu>>, headers: HeaderMap) -> Response {
    match kudu.latest() {
        Some(d) => axum::Json(kudu_json(&kudu, &d, &base_url(&headers))).into_response(),
        None => not_found("No deployment yet"),
    }
}

async fn one(
    State(kudu): State<Arc<Kudu>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match kudu.deployment(&id) {
        Some(d) => axum::Json(kudu_json(&kudu, &d, &base_url(&headers))).into_response(),
        None => not_found("Deployment not found"),
    }
}

async fn log_entries(
    State(kudu): State<Arc<Kudu>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((d, steps)) = kudu.log_steps(&id).await else {
        return not_found("Deployment not found");
    };
    let base = base_url(&headers);
    let shown = d
        .reported_id(kudu.limits().temp_id_window, now_ms())
        .to_owned();
    let entries: Vec<_> = steps
        .into_iter()
        .map(|s| {
            let mut e = s.entry;
            if !s.details.is_empty() {
                e.details_url = Some(format!("{base}/api/deployments/{shown}/log/{}", e.id));
            }
            e
        })
        .collect();
    axum::Json(entries).into_response()
}

async fn log_details(
    State(kudu): State<Arc<Kudu>>,
    Path((id, entry)): Path<(String, String)>,
) -> Response {
    let Some((_, steps)) = kudu.log_steps(&id).await else {
        return not_found("Deployment not found");
    };
    match steps.into_iter().find(|s| s.entry.id == entry) {
        Some(step) => axum::Json(step.details).into_response(),
        None => not_found("Log entry not found"),
    }
}

async fn log_text(State(kudu): State<Arc<Kudu>>, Path(id): Path<String>) -> Response {
    match kudu.log_text(&id).await {
        Some(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        None => not_found("Deployment not found"),
    }
}

fn not_found(message: &str) -> Response {
    (StatusCode::NOT_FOUND, format!("{message}\n")).into_response()
}

/// `https://<Host>`: the router is served over https on the site's SCM origin.
fn base_url(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("https://{h}"))
        .unwrap_or_default()
}

/// A deployment in Kudu's DeployResult shape.
fn kudu_json(kudu: &Kudu, d: &Deployment, base: &str) -> Value {
    let now = now_ms();
    let shown = d.reported_id(kudu.limits().temp_id_window, now);
    let status = d.state.kudu_status();
    let status_text = match d.state {
        DeploymentState::BuildFailed | DeploymentState::RuntimeFailed => format!(
            "{}: {}",
            d.state,
            d.error
                .as_deref()
                .and_then(|e| e.lines().next())
                .unwrap_or("")
        ),
        DeploymentState::RuntimeSuccessful => String::new(),
        _ => d.progress.clone(),
    };
    let last_success = kudu
        .deployments()
        .into_iter()
        .find(|x| x.state == DeploymentState::RuntimeSuccessful)
        .and_then(|x| x.end_ms);
    json!({
        "id": shown,
        "status": status as u8,
        "status_text": status_text,
        "author_email": "N/A",
        "author": d.author,
        "deployer": d.deployer,
        "message": d.message,
        "progress": d.progress,
        "received_time": format_ms(d.received_ms),
        "start_time": d.start_ms.map(format_ms),
        "end_time": d.end_ms.map(format_ms),
        "last_success_end_time": last_success.map(format_ms),
        "complete": d.state.is_final(),
        "active": kudu.current_id().as_deref() == Some(d.id.as_str()),
        "is_temp": shown != d.id,
        "is_readonly": true,
        "url": format!("{base}/api/deployments/{shown}"),
        "log_url": format!("{base}/api/deployments/{shown}/log"),
        "site_name": kudu.site().site_name(),
        "build_summary": {"errors": [], "warnings": []},
    })
}
