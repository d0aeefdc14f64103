//! The module embedded in a Rust app as a tower layer (`Router::layer(EasyAuthLayer)`), in front
//! of the real local identity provider: bearer validation and authorization, header stripping,
//! excluded paths, the unauthenticated action, client-directed sign-in with X-ZUMO-AUTH.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::get;
use base64::Engine;
use easyauth_module::{EasyAuthLayer, REASON_CODE_HEADER, ReasonCode};
use easyauth_store::{
    Consumed, MemoryStore, ObjectKind, RefreshTokenRecord, SigningKeyRecord, Store, StoreError,
    StoreResult,
};
use serde_json::{Value, json};
use support::*;
use tower::ServiceExt;

/// The app: echoes the identity headers it received.
async fn whoami(headers: HeaderMap) -> axum::Json<Value> {
    let seen: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-ms-") || k.as_str().contains("zumo"))
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
        .collect();
    axum::Json(Value::Object(seen))
}

async fn app(provider: &Provider, action: &str) -> Router {
    app_with_store(provider, action, Arc::new(MemoryStore::new())).await
}

async fn app_with_store(provider: &Provider, action: &str, store: Arc<dyn Store>) -> Router {
    let module = Arc::new(api_module(&provider.issuer_v2(), action, store, provider).await);
    Router::new()
        .route("/{*path}", get(whoami).post(whoami))
        .layer(EasyAuthLayer::new(module))
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn bearer_tokens_are_validated_authorized_and_turned_into_principal_headers() {
    let provider = Provider::start("layer-bearer").await;
    let app = app(&provider, "Return401").await;
    let token = provider.mint(json!({}));
    let bearer = format!("Bearer {token}");
    let (status, _, seen) = call(&app, get_with("/profile", &[("authorization", &bearer)])).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["x-ms-client-principal-idp"], "aad");
    assert_eq!(
        seen["x-ms-client-principal-id"],
        "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
    );
    let principal: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(seen["x-ms-client-principal"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(principal["auth_typ"], "aad");
    assert!(
        principal["claims"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["typ"] == "azp" && c["val"] == WEB)
    );

    // Another client app: 403, with the reason.
    let other = provider.mint(json!({"azp": "00000000-0000-0000-0000-00000000beef"}));
    let (status, headers, _) = call(
        &app,
        get_with("/profile", &[("authorization", &format!("Bearer {other}"))]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        headers["x-easyauth-reason"]
            .to_str()
            .unwrap()
            .contains("not in allowedApplications")
    );
    assert_eq!(
        headers[REASON_CODE_HEADER],
        ReasonCode::ApplicationNotAllowed.as_str(),
        "programs read the code, not the message"
    );

    // Wrong audience, expired, wrong issuer: 401 with App Service's challenge.
    for (claims, why, code) in [
        (
            json!({"aud": "api://someone-else"}),
            "allowedAudiences",
            ReasonCode::AudienceNotAllowed,
        ),
        (
            json!({"exp": 1_000_000_000, "nbf": 999_999_000, "iat": 999_999_000}),
            "expired",
            ReasonCode::TokenRejected,
        ),
        (
            json!({"iss": "https://evil.test/x/v2.0"}),
            "issuer",
            ReasonCode::TokenRejected,
        ),
    ] {
        let t = provider.mint(claims);
        let (status, headers, _) = call(
            &app,
            get_with("/profile", &[("authorization", &format!("Bearer {t}"))]),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}");
        assert!(
            headers["x-easyauth-reason"].to_str().unwrap().contains(why),
            "{why}: {:?}",
            headers["x-easyauth-reason"]
        );
        assert_eq!(headers[REASON_CODE_HEADER], code.as_str(), "{why}");
        let challenge = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge
                .starts_with("Bearer realm=\"app.test\" authorization_uri=\"https://127.0.0.1:"),
            "{challenge}"
        );
        assert!(challenge.ends_with(&format!("resource_id=\"{API}\"")));
    }
    let (status, headers, _) = call(&app, get_with("/profile", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
}

#[tokio::test]
async fn spoofed_headers_never_reach_the_app_and_excluded_paths_stay_narrow() {
    let provider = Provider::start("layer-spoof").await;
    let app = app(&provider, "RedirectToLoginPage").await;
    let spoofed = [
        ("X-MS-CLIENT-PRINCIPAL", "eyJhdXRoX3R5cCI6ImFhZCJ9"),
        ("x-ms-client-principal-id", "forged"),
        ("X_MS_CLIENT_PRINCIPAL_NAME", "admin@evil.test"),
        ("x-ms-client_principal-idp", "aad"),
        ("X-MS-TOKEN-AAD-ACCESS-TOKEN", "forged"),
        ("x_ms_token_aad_id_token", "forged"),
        ("X-ZUMO-AUTH", "forged"),
    ];
    let (status, _, seen) = call(&app, get_with("/public/page", &spoofed)).await;
    assert_eq!(status, StatusCode::OK, "excluded path passes anonymously");
    assert_eq!(
        seen,
        json!({}),
        "no identity header reaches the app: {seen}"
    );

    let token = provider.mint(json!({}));
    let mut with_token = spoofed.to_vec();
    let bearer = format!("Bearer {token}");
    with_token.push(("authorization", &bearer));
    let (_, _, seen) = call(&app, get_with("/private", &with_token)).await;
    assert_ne!(seen["x-ms-client-principal-id"], "forged");
    assert!(
        seen.get("x-ms-token-aad-access-token").is_none(),
        "bearer callers get no token headers"
    );
    assert!(seen.get("x-zumo-auth").is_none());

    for path in [
        "/private",
        "/public/../private",
        "/public/%2e%2e/private",
        "/PUBLIC/..%2Fprivate",
        "//private",
    ] {
        let (status, headers, _) =
            call(&app, get_with(path, &[("user-agent", "Mozilla/5.0")])).await;
        assert_eq!(
            status,
            StatusCode::FOUND,
            "{path} must not be served anonymously"
        );
        assert!(
            headers[header::LOCATION]
                .to_str()
                .unwrap()
                .starts_with("/.auth/login/aad?post_login_redirect_uri=")
        );
    }
    let (status, _, _) = call(&app, get_with("/private", &[("user-agent", "curl/8")])).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "non-browsers get 401, not a redirect"
    );
}

#[tokio::test]
async fn client_directed_sign_in_and_x_zumo_auth() {
    let provider = Provider::start("layer-zumo").await;
    let app = app(&provider, "Return403").await;
    let token = provider.mint(json!({}));
    let login = Request::post("/.auth/login/aad")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"access_token": token}).to_string()))
        .unwrap();
    let (status, _, body) = call(&app, login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let zumo = body["authenticationToken"].as_str().unwrap().to_owned();
    assert!(body["user"]["userId"].as_str().unwrap().starts_with("sid:"));

    let (status, _, seen) = call(&app, get_with("/profile", &[("x-zumo-auth", &zumo)])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["x-ms-client-principal-idp"], "aad");
    assert!(
        seen.get("x-zumo-auth").is_none(),
        "the module consumes X-ZUMO-AUTH"
    );
    let (status, _, me) = call(&app, get_with("/.auth/me", &[("x-zumo-auth", &zumo)])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me[0]["provider_name"], "aad");
    assert_eq!(me[0]["access_token"], token.as_str());

    let mut forged = zumo.clone();
    forged.push('x');
    let (status, _, _) = call(&app, get_with("/profile", &[("x-zumo-auth", &forged)])).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an invalid X-ZUMO-AUTH is no identity (Return403)"
    );
    let other = provider.mint(json!({"azp": "00000000-0000-0000-0000-00000000beef"}));
    let refused = Request::post("/.auth/login/aad")
        .body(Body::from(json!({"access_token": other}).to_string()))
        .unwrap();
    assert_eq!(
        call(&app, refused).await.0,
        StatusCode::FORBIDDEN,
        "authorization applies to client-directed sign-in"
    );
    let (status, _, _) = call(&app, get_with("/.auth/me", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, version) = call(&app, get_with("/.auth/version", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(version["version"].is_string());
}

/// A token store whose writes of revocations fail while `fail` is set; everything else is a
/// memory store.
#[derive(Debug, Default)]
struct FailingRevocations {
    inner: MemoryStore,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Store for FailingRevocations {
    async fn put_object(
        &self,
        kind: ObjectKind,
        tenant: &str,
        id: &str,
        json: &str,
    ) -> StoreResult<()> {
        self.inner.put_object(kind, tenant, id, json).await
    }
    async fn get_object(
        &self,
        kind: ObjectKind,
        tenant: &str,
        id: &str,
    ) -> StoreResult<Option<String>> {
        self.inner.get_object(kind, tenant, id).await
    }
    async fn list_objects(
        &self,
        kind: ObjectKind,
        tenant: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        self.inner.list_objects(kind, tenant).await
    }
    async fn delete_object(&self, kind: ObjectKind, tenant: &str, id: &str) -> StoreResult<bool> {
        self.inner.delete_object(kind, tenant, id).await
    }
    async fn list_tenant_ids(&self) -> StoreResult<Vec<String>> {
        self.inner.list_tenant_ids().await
    }
    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> StoreResult<()> {
        self.inner.insert_refresh_token(record).await
    }
    async fn get_refresh_token(&self, hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        self.inner.get_refresh_token(hash).await
    }
    async fn rotate_refresh_token(
        &self,
        old: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<bool> {
        self.inner.rotate_refresh_token(old, new, now).await
    }
    async fn revoke_refresh_family(&self, family: &str) -> StoreResult<u64> {
        self.inner.revoke_refresh_family(family).await
    }
    async fn revoke_refresh_tokens_for(&self, tenant: &str, user: &str) -> StoreResult<u64> {
        self.inner.revoke_refresh_tokens_for(tenant, user).await
    }
    async fn put_ephemeral(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        if kind.contains("revoked") && self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Backend("the disk is full".into()));
        }
        self.inner.put_ephemeral(kind, key, value, expires_at).await
    }
    async fn get_ephemeral(&self, kind: &str, key: &str, now: i64) -> StoreResult<Option<String>> {
        self.inner.get_ephemeral(kind, key, now).await
    }
    async fn consume_ephemeral(&self, kind: &str, key: &str) -> StoreResult<Consumed> {
        self.inner.consume_ephemeral(kind, key).await
    }
    async fn delete_ephemeral(&self, kind: &str, key: &str) -> StoreResult<bool> {
        self.inner.delete_ephemeral(kind, key).await
    }
    async fn get_or_create_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        self.inner.get_or_create_setting(name, value).await
    }
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.inner.list_signing_keys().await
    }
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        self.inner.insert_signing_key(key).await
    }
    async fn purge_expired(&self, now: i64) -> StoreResult<u64> {
        self.inner.purge_expired(now).await
    }
}

#[tokio::test]
async fn a_sign_out_that_cannot_revoke_the_session_says_so() {
    let provider = Provider::start("layer-logout").await;
    let store = Arc::new(FailingRevocations::default());
    let app = app_with_store(&provider, "Return403", store.clone()).await;
    let login = Request::post("/.auth/login/aad")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"access_token": provider.mint(json!({}))}).to_string(),
        ))
        .unwrap();
    let (status, _, body) = call(&app, login).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let zumo = body["authenticationToken"].as_str().unwrap().to_owned();

    store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, headers, _) =
        call(&app, get_with("/.auth/logout", &[("x-zumo-auth", &zumo)])).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "not a silent success"
    );
    assert!(
        headers
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("AppServiceAuthSession=;")),
        "the browser's cookies are cleared anyway"
    );
    let (status, _, _) = call(&app, get_with("/profile", &[("x-zumo-auth", &zumo)])).await;
    assert_eq!(status, StatusCode::OK, "the session was not ended");

    store.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let (status, _, _) = call(&app, get_with("/.auth/logout", &[("x-zumo-auth", &zumo)])).await;
    assert_eq!(status, StatusCode::FOUND);
    let (status, _, _) = call(&app, get_with("/profile", &[("x-zumo-auth", &zumo)])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "signed out (Return403)");
}
