//! `examples/embed.rs` as a test: its app, in front of the real local identity provider, greets
//! a caller with a valid bearer token by name and refuses one without.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/embed.rs"]
#[allow(dead_code)]
mod embed;
mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use easyauth_module::{AppSettings, AuthSettings, Environment};
use easyauth_store::MemoryStore;
use serde_json::json;
use support::*;
use tower::ServiceExt;

#[tokio::test]
async fn the_embedding_example_serves_signed_in_callers_and_refuses_others() {
    let provider = Provider::start("embed-example").await;
    let settings = json!({"properties": {
        "platform": {"enabled": true},
        "globalValidation": {"requireAuthentication": true, "unauthenticatedClientAction": "Return401"},
        "identityProviders": {"azureActiveDirectory": {"enabled": true,
            "registration": {"openIdIssuer": provider.issuer_v2(), "clientId": API}}}
    }});
    let loaded = AuthSettings::parse("embed.json", &settings.to_string()).expect("settings");
    let env = Environment {
        public_url: None,
        scheme: "http",
        app_settings: AppSettings::default(),
        store: Arc::new(MemoryStore::new()),
        http: provider.http(),
        development: true,
        session_store: Default::default(),
    };
    let app = embed::protected_app(&loaded.settings, env)
        .await
        .expect("module");

    let token = provider.mint(json!({}));
    let request = Request::get("http://app.test/")
        .header("host", "app.test")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.starts_with("Hello, ") && !body.contains("anonymous"),
        "{body}"
    );

    let anonymous = Request::get("http://app.test/")
        .header("host", "app.test")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(anonymous).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
