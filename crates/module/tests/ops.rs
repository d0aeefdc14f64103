//! What operations see of the module: its Prometheus metrics move as requests are made
//! (outcomes with their reason codes, upstream errors, session store operations, JWKS and
//! discovery fetches), readiness follows the token store and the provider, and the W3C trace
//! context headers reach the app unchanged. Against the real identity provider over TLS and a
//! real app over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use easyauth_module::health::{ReadyCheck, readiness};
use easyauth_module::{EasyAuthLayer, ProxyStack, Upstream};
use easyauth_store::SqliteStore;
use easyauth_testkit::{loopback_listener, serve_http, temp_dir};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use support::*;
use tower::ServiceExt;

fn exposition(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_text::encode(&mut text, registry).unwrap();
    text
}

/// The value of the sample `name{labels}` (labels exactly as encoded), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn status_of(app: &Router, request: Request<Body>) -> StatusCode {
    app.clone().oneshot(request).await.unwrap().status()
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn request_counters_move_with_outcome_and_reason() {
    let provider = Provider::start("ops-counters").await;
    let mut registry = Registry::default();
    let m = api_module(
        &provider.issuer_v2(),
        "Return401",
        Arc::new(easyauth_store::MemoryStore::new()),
        &provider,
    )
    .await
    .instrument(&mut registry);
    let app = Router::new()
        .route("/{*path}", get(|| async { "app" }))
        .layer(EasyAuthLayer::new(Arc::new(m)));

    let unauthorized = r#"easyauth_module_requests_total{outcome="unauthorized",reason="authentication-required"}"#;
    let passed = r#"easyauth_module_requests_total{outcome="passed",reason="none"}"#;
    let anonymous = r#"easyauth_module_requests_total{outcome="anonymous",reason="none"}"#;
    let forbidden =
        r#"easyauth_module_requests_total{outcome="forbidden",reason="application-not-allowed"}"#;
    let rejected =
        r#"easyauth_module_requests_total{outcome="unauthorized",reason="token-rejected"}"#;
    let route = r#"easyauth_module_requests_total{outcome="auth_endpoint",reason="none"}"#;
    let before = exposition(&registry);
    assert_eq!(sample(&before, unauthorized), 0.0);
    assert_eq!(sample(&before, passed), 0.0, "{before}");

    // Anonymous API call, Return401.
    assert_eq!(
        status_of(&app, get_with("/data", &[])).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_of(&app, get_with("/data", &[])).await,
        StatusCode::UNAUTHORIZED
    );
    // A valid bearer token of an allowed application, one of another, and a forged one.
    let token = provider.mint(json!({}));
    let bearer = format!("Bearer {token}");
    assert_eq!(
        status_of(&app, get_with("/data", &[("authorization", &bearer)])).await,
        StatusCode::OK
    );
    let other = provider.mint(json!({"azp": "00000000-0000-0000-0000-00000000beef"}));
    assert_eq!(
        status_of(
            &app,
            get_with("/data", &[("authorization", &format!("Bearer {other}"))])
        )
        .await,
        StatusCode::FORBIDDEN
    );
    // One character of the signature changed.
    let at = token.rfind('.').unwrap() + 5;
    let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("Bearer {}{swapped}{}", &token[..at], &token[at + 1..]);
    assert_eq!(
        status_of(&app, get_with("/data", &[("authorization", &forged)])).await,
        StatusCode::UNAUTHORIZED
    );
    // An excluded path goes through anonymously; a module route is its own outcome.
    assert_eq!(
        status_of(&app, get_with("/public/x", &[])).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&app, get_with("/.auth/version", &[])).await,
        StatusCode::OK
    );

    let after = exposition(&registry);
    assert_eq!(sample(&after, unauthorized), 2.0, "{after}");
    assert_eq!(sample(&after, passed), 1.0, "{after}");
    assert_eq!(sample(&after, forbidden), 1.0, "{after}");
    assert_eq!(sample(&after, rejected), 1.0, "{after}");
    assert_eq!(sample(&after, anonymous), 1.0, "{after}");
    assert_eq!(sample(&after, route), 1.0, "{after}");
    assert_eq!(
        sample(&after, "easyauth_module_request_duration_seconds_count"),
        7.0,
        "{after}"
    );
    assert_eq!(sample(&after, "easyauth_module_requests_in_flight"), 0.0);
    // The app's own time, for the two requests that reached it.
    assert_eq!(
        sample(&after, "easyauth_module_upstream_duration_seconds_count"),
        2.0
    );
    // Bearer validation fetched discovery and the signing keys once each.
    assert_eq!(
        sample(&after, r#"easyauth_module_jwks_fetches_total{result="ok"}"#),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            r#"easyauth_module_discovery_fetches_total{result="ok"}"#
        ),
        1.0,
        "{after}"
    );
    // Never a token, a path or a user id in a label.
    assert!(!after.contains(&token[..40]));
    assert!(!after.contains("/data"));
    assert!(!after.contains("0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"));
}

#[tokio::test]
async fn a_module_without_metrics_records_nothing_and_still_answers() {
    let provider = Provider::start("ops-off").await;
    let registry = Registry::default();
    let m = api_module(
        &provider.issuer_v2(),
        "Return401",
        Arc::new(easyauth_store::MemoryStore::new()),
        &provider,
    )
    .await;
    let app = Router::new()
        .route("/{*path}", get(|| async { "app" }))
        .layer(EasyAuthLayer::new(Arc::new(m)));
    assert_eq!(
        status_of(&app, get_with("/data", &[])).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(!exposition(&registry).contains("easyauth_module"));
}

/// The app: answers with the trace context headers it received, as JSON.
async fn trace_echo(headers: HeaderMap) -> axum::Json<Value> {
    let get = |name: &str| {
        headers
            .get(name)
            .map(|v| Value::from(v.to_str().unwrap_or("<not text>")))
    };
    axum::Json(json!({"traceparent": get("traceparent"), "tracestate": get("tracestate")}))
}

#[tokio::test]
async fn upstream_errors_are_counted_and_trace_context_reaches_the_app_unchanged() {
    let provider = Provider::start("ops-upstream").await;
    let mut registry = Registry::default();
    let m = Arc::new(
        api_module(
            &provider.issuer_v2(),
            "AllowAnonymous",
            Arc::new(easyauth_store::MemoryStore::new()),
            &provider,
        )
        .await
        .instrument(&mut registry),
    );
    let app = serve_http(
        loopback_listener(),
        Router::new().route("/{*path}", get(trace_echo)),
    )
    .await;
    let upstream = Upstream::new(&url::Url::parse(&app.url).unwrap(), Duration::from_secs(30))
        .expect("upstream");
    let stack = ProxyStack::new(m.clone(), upstream).into_service();

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let tracestate = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE";
    let response = stack
        .clone()
        .oneshot(get_with(
            "/trace",
            &[("traceparent", traceparent), ("tracestate", tracestate)],
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let seen: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["traceparent"], traceparent);
    assert_eq!(seen["tracestate"], tracestate);
    // None sent: none made up.
    let response = stack
        .clone()
        .oneshot(get_with("/trace", &[]))
        .await
        .unwrap();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let seen: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen, json!({"traceparent": null, "tracestate": null}));

    // The app goes away: 502, counted as unreachable.
    app.stop().await;
    let unreachable = r#"easyauth_module_upstream_errors_total{kind="unreachable"}"#;
    assert_eq!(sample(&exposition(&registry), unreachable), 0.0);
    let response = stack.oneshot(get_with("/trace", &[])).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let text = exposition(&registry);
    assert_eq!(sample(&text, unreachable), 1.0, "{text}");
    assert_eq!(
        sample(
            &text,
            r#"easyauth_module_requests_total{outcome="anonymous",reason="none"}"#
        ),
        3.0,
        "{text}"
    );
}

fn problem<'a>(checks: &'a [ReadyCheck], name: &str) -> Option<&'a str> {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:?}"))
        .problem
        .as_deref()
}

#[tokio::test]
async fn readiness_follows_the_token_store_and_the_provider() {
    let provider = Provider::start("ops-ready").await;
    let dir = temp_dir("ops-ready");
    let sqlite = SqliteStore::open(&dir.join("easyauth.db")).await.unwrap();
    let mut registry = Registry::default();
    let m = Arc::new(
        api_module(
            &provider.issuer_v2(),
            "Return401",
            Arc::new(sqlite.clone()),
            &provider,
        )
        .await
        .instrument(&mut registry),
    );
    // Not fetched before: the check fetches the discovery document itself.
    let checks = readiness(&m, Duration::from_secs(5)).await;
    assert!(checks.iter().all(ReadyCheck::is_ok), "{checks:?}");
    assert_eq!(problem(&checks, "provider aad discovery"), None);

    // The token store's connections are gone: not ready, and the failure is counted.
    sqlite.close().await;
    let checks = readiness(&m, Duration::from_secs(5)).await;
    let store = problem(&checks, "session store").expect("the store check fails");
    assert!(store.contains("token store"), "{store}");
    assert_eq!(problem(&checks, "provider aad discovery"), None);
    let text = exposition(&registry);
    assert_eq!(
        sample(
            &text,
            r#"easyauth_module_session_store_errors_total{operation="check"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"easyauth_module_session_store_operation_duration_seconds_count{operation="check",result="ok"}"#
        ),
        1.0,
        "{text}"
    );
}

#[tokio::test]
async fn readiness_names_a_provider_whose_discovery_fails() {
    let provider = Provider::start("ops-ready-provider").await;
    // A port nothing listens on: discovery is refused at once.
    let closed = loopback_listener();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let issuer = format!("https://127.0.0.1:{port}/{TID}/v2.0");
    let mut registry = Registry::default();
    let m = Arc::new(
        api_module(
            &issuer,
            "Return401",
            Arc::new(easyauth_store::MemoryStore::new()),
            &provider,
        )
        .await
        .instrument(&mut registry),
    );
    let checks = readiness(&m, Duration::from_secs(5)).await;
    assert_eq!(problem(&checks, "session store"), None);
    let discovery = problem(&checks, "provider aad discovery").expect("discovery fails");
    assert!(
        discovery.contains(&format!("127.0.0.1:{port}")),
        "{discovery}"
    );
    assert_eq!(
        sample(
            &exposition(&registry),
            r#"easyauth_module_discovery_fetches_total{result="error"}"#
        ),
        1.0
    );
}
