//! What operations see of the identity provider: `/healthz` and `/readyz` on its own origin,
//! readiness following its store, and Prometheus counters that move as requests are made
//! (requests by endpoint and status, tokens issued by grant, store failures).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;
use easyauth_entra::{Idp, IdpConfig, IdpMetrics, Seed};
use easyauth_store::SqliteStore;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;

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

#[tokio::test]
async fn counters_move_as_tokens_are_issued_and_refused() {
    let mut registry = Registry::default();
    let metrics = IdpMetrics::register(&mut registry);
    let h = Harness::with_config(&directory(), move |c| c.metrics = Some(metrics)).await;
    let before = exposition(&registry);
    let issued_code = r#"easyauth_idp_tokens_issued_total{grant="authorization_code"}"#;
    let issued_refresh = r#"easyauth_idp_tokens_issued_total{grant="refresh_token"}"#;
    assert_eq!(sample(&before, issued_code), 0.0);

    let (tokens, _) = user_tokens(&h).await;
    let refreshed = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let refused = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", WEB),
            ("client_secret", "wrong-secret-value"),
            ("scope", "User.Read"),
        ])
        .await;
    assert_eq!(refused.code(), 7000215);
    let discovery = h
        .get(
            &format!("/{TID}/v2.0/.well-known/openid-configuration"),
            &Browser::default(),
        )
        .await;
    assert_eq!(discovery.status, StatusCode::OK);
    let missing = h.get("/no/such/endpoint", &Browser::default()).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let after = exposition(&registry);
    assert_eq!(sample(&after, issued_code), 1.0, "{after}");
    assert_eq!(sample(&after, issued_refresh), 1.0, "{after}");
    // The refused client credentials issued nothing.
    assert_eq!(
        sample(
            &after,
            r#"easyauth_idp_tokens_issued_total{grant="client_credentials"}"#
        ),
        0.0
    );
    assert_eq!(
        sample(
            &after,
            r#"easyauth_idp_requests_total{endpoint="token",status="200"}"#
        ),
        2.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            r#"easyauth_idp_requests_total{endpoint="token",status="401"}"#
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            r#"easyauth_idp_requests_total{endpoint="discovery",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            r#"easyauth_idp_requests_total{endpoint="not_found",status="404"}"#
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            r#"easyauth_idp_request_duration_seconds_count{endpoint="token"}"#
        ),
        3.0
    );
    // Route names only: no tenant id, no client id, no raw path.
    assert!(!after.contains(TID), "{after}");
    assert!(!after.contains(WEB), "{after}");
    assert!(!after.contains("/no/such"), "{after}");
}

#[tokio::test]
async fn health_and_readiness_follow_the_store() {
    let dir = easyauth_testkit::temp_dir("idp-ready");
    let sqlite = SqliteStore::open(&dir.join("easyauth.db")).await.unwrap();
    let mut registry = Registry::default();
    let mut config = IdpConfig::new(BASE);
    config.metrics = Some(IdpMetrics::register(&mut registry));
    let seed = Seed::parse("test.json", &directory()).unwrap();
    let idp = Idp::start(Arc::new(sqlite.clone()), config, &seed)
        .await
        .unwrap();
    let h = Harness { app: idp.router() };

    let alive = h.get("/healthz", &Browser::default()).await;
    assert_eq!(
        (alive.status, alive.body.as_str()),
        (StatusCode::OK, "ok\n")
    );
    let ready = h.get("/readyz", &Browser::default()).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body, "ready\nstore: ok\nsigning keys: ok\n");

    sqlite.close().await;
    let errors = "easyauth_idp_store_errors_total";
    let before = sample(&exposition(&registry), errors);
    let ready = h.get("/readyz", &Browser::default()).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.body
    );
    assert!(
        ready.body.starts_with("not ready\nstore: "),
        "{}",
        ready.body
    );
    assert!(ready.body.ends_with("signing keys: ok\n"), "{}", ready.body);
    // Still alive: the process serves, it just cannot answer for its store.
    assert_eq!(
        h.get("/healthz", &Browser::default()).await.status,
        StatusCode::OK
    );
    // A request that needs the store fails, and the failure is counted.
    let (status, _) = {
        let r = h
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("refresh_token", "a-refresh-token-the-store-cannot-look-up"),
            ])
            .await;
        (r.status, r.body)
    };
    assert!(status.is_server_error(), "{status}");
    let text = exposition(&registry);
    assert!(sample(&text, errors) > before, "{text}");
    assert_eq!(
        sample(
            &text,
            r#"easyauth_idp_requests_total{endpoint="readyz",status="503"}"#
        ),
        1.0,
        "{text}"
    );
}
