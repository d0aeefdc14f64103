//! The local identity provider served over TLS in-process, for the module's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::RsaKeyPair;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use easyauth_entra::keys::HeaderStyle;
use easyauth_entra::{Idp, IdpConfig, Seed, SigningKeys};
use easyauth_module::oidc::{OidcHttp, ValidationPolicy, aad_issuers};
use easyauth_store::{MemoryStore, Store};
use serde_json::{Value, json};

pub const TID: &str = "b8f2e4a1-5c3d-4e6f-9a7b-1c2d3e4f5a6b";
pub const WEB: &str = "3f1b7c2a-9d4e-4f6a-8b1c-2d3e4f5a6b7c";
pub const WEB_SECRET: &str = "web-secret-value-0123456789";
/// Accepts v2 access tokens (`aud` = its client id).
pub const API: &str = "7a4c2e1f-3b5d-4c6e-9f8a-0b1c2d3e4f5a";
/// Accepts v1 access tokens (`aud` = `api://<id>`), and grants WEB the app role Data.Read.
pub const API2: &str = "5d2e8f1a-4b6c-4d7e-8f9a-0b1c2d3e4f5b";

pub fn directory() -> String {
    json!({
        "tenant": {"id": TID, "domain": "contoso.onmicrosoft.com"},
        "users": [],
        "applications": [
            {"appId": WEB, "displayName": "web", "web": {"redirectUris": ["https://app.test/cb"]},
             "passwordCredentials": [{"secretText": WEB_SECRET}]},
            {"appId": API, "displayName": "api", "identifierUris": [format!("api://{API}")],
             "api": {"requestedAccessTokenVersion": 2}},
            {"appId": API2, "displayName": "api2", "identifierUris": [format!("api://{API2}")],
             "appRoles": [{"id": "2c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "value": "Data.Read", "allowedMemberTypes": ["Application"]}]}
        ],
        "appRoleAssignments": [{"principalId": WEB, "resourceId": API2, "appRoleId": "2c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}]
    })
    .to_string()
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn temp_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "easyauth-oidc-test-{}-{n}-{name}",
        std::process::id()
    ))
}

/// What the test layer in front of the identity provider sees and does.
#[derive(Clone, Default)]
pub struct Probe {
    pub jwks_hits: Arc<AtomicUsize>,
    /// When set, JWKS requests get an HTML page instead of keys.
    pub garbage: Arc<AtomicBool>,
}

pub async fn probe(State(p): State<Probe>, req: Request, next: Next) -> Response {
    if req.uri().path().ends_with("/keys") {
        p.jwks_hits.fetch_add(1, Ordering::SeqCst);
        if p.garbage.load(Ordering::SeqCst) {
            return (StatusCode::OK, "<html>maintenance</html>").into_response();
        }
    }
    next.run(req).await
}

/// The local identity provider on a fixed 127.0.0.1 port, restartable.
pub struct Provider {
    pub base: String,
    pub port: u16,
    pub store: Arc<MemoryStore>,
    pub keys: SigningKeys,
    pub ca: easyauth_pki::LocalCa,
    pub ca_dir: PathBuf,
    pub probe: Probe,
    pub server: std::sync::Mutex<Option<(Handle<SocketAddr>, tokio::task::JoinHandle<()>)>>,
    pub minted: AtomicUsize,
}

impl Provider {
    pub async fn start(name: &str) -> Provider {
        let store = Arc::new(MemoryStore::new());
        // Keys first, so the test can sign with the very key the provider publishes.
        let keys = SigningKeys::load_or_create(store.as_ref()).await.unwrap();
        let ca_dir = temp_dir(name);
        let ca = easyauth_pki::LocalCa::load_or_create(&ca_dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = Provider {
            base: format!("https://127.0.0.1:{port}"),
            port,
            store,
            keys,
            ca,
            ca_dir,
            probe: Probe::default(),
            server: std::sync::Mutex::new(None),
            minted: AtomicUsize::new(0),
        };
        p.serve().await;
        p
    }

    /// (Re)starts the provider; a restart reloads the signing keys from the store.
    pub async fn serve(&self) {
        let seed = Seed::parse("dir.json", &directory()).unwrap();
        let idp = Idp::start(self.store.clone(), IdpConfig::new(&self.base), &seed)
            .await
            .unwrap();
        let app = idp
            .router()
            .layer(from_fn_with_state(self.probe.clone(), probe));
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let tls = RustlsConfig::from_config(
            self.ca
                .server_config(&["127.0.0.1".into(), "localhost".into()])
                .unwrap(),
        );
        let handle = Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .handle(handle.clone());
        let task = tokio::spawn(async move {
            server.serve(app.into_make_service()).await.unwrap();
        });
        handle.listening().await.unwrap();
        *self.server.lock().unwrap() = Some((handle, task));
    }

    /// Stops the server and waits until its port is closed.
    pub async fn stop(&self) {
        let server = self.server.lock().unwrap().take();
        if let Some((handle, task)) = server {
            handle.shutdown();
            task.await.unwrap();
        }
    }

    pub fn http(&self) -> OidcHttp {
        OidcHttp::with_extra_root_pem(self.ca.cert_pem().as_bytes()).unwrap()
    }

    pub fn issuer_v2(&self) -> String {
        format!("{}/{TID}/v2.0", self.base)
    }

    pub fn issuer_v1(&self) -> String {
        format!("{}/{TID}/", self.base)
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}/{TID}/discovery/v2.0/keys", self.base)
    }

    pub fn jwks_hits(&self) -> usize {
        self.probe.jwks_hits.load(Ordering::SeqCst)
    }

    /// The policy of an API accepting both issuer forms and both APIs' audiences.
    pub fn policy(&self) -> ValidationPolicy {
        ValidationPolicy::new(
            aad_issuers(&self.issuer_v2()),
            vec![API.into(), format!("api://{API2}")],
            self.jwks_uri(),
        )
    }

    /// A valid v2 access token's claims with `overrides` applied (`null` removes a claim); each
    /// call yields a different token.
    pub fn claims(&self, overrides: Value) -> Value {
        let t = now();
        let mut c = json!({
            "aud": API, "iss": self.issuer_v2(), "iat": t - 10, "nbf": t - 10, "exp": t + 3600,
            "azp": WEB, "oid": "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e", "tid": TID, "ver": "2.0",
            "uti": format!("u{}", self.minted.fetch_add(1, Ordering::Relaxed)),
        });
        let Value::Object(overrides) = overrides else {
            panic!("overrides must be an object");
        };
        for (k, v) in overrides {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(&k);
            } else {
                c[k] = v;
            }
        }
        c
    }

    /// Signed with the provider's real key (RS256, v2 header).
    pub fn mint(&self, overrides: Value) -> String {
        self.keys
            .sign(HeaderStyle::V2, &self.claims(overrides))
            .unwrap()
    }

    pub async fn private_key(&self) -> RsaKeyPair {
        let records = self.store.list_signing_keys().await.unwrap();
        let active = records
            .iter()
            .find(|r| r.kid == self.keys.active_kid())
            .unwrap();
        RsaKeyPair::from_pkcs8(&active.pkcs8_der).unwrap()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some((handle, _)) = self.server.lock().unwrap().take() {
            handle.shutdown();
        }
        let _ = std::fs::remove_dir_all(&self.ca_dir);
    }
}
