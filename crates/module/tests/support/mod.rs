//! The local identity provider served over TLS in-process, for the module's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::RsaKeyPair;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use easyauth_entra::keys::HeaderStyle;
use easyauth_module::oidc::{OidcHttp, ValidationPolicy, aad_issuers};
use easyauth_module::{AppSettings, AuthSettings, Environment, Module, build};
use easyauth_store::Store;
use easyauth_testkit::TestIdp;
use serde_json::{Value, json};

pub use easyauth_testkit::tenant::{API, API2, TID, WEB, WEB_SECRET};
// API accepts v2 access tokens (`aud` = its client id); API2 accepts v1 access tokens
// (`aud` = `api://<id>`) and grants WEB the app role Data.Read.

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

/// The local identity provider (the test kit's, behind the probe layer), restartable; its
/// fields (`base`, `store`, `keys`) and `stop`/`serve` are the kit's.
pub struct Provider {
    pub idp: TestIdp,
    pub probe: Probe,
    pub minted: AtomicUsize,
}

impl std::ops::Deref for Provider {
    type Target = TestIdp;

    fn deref(&self) -> &TestIdp {
        &self.idp
    }
}

impl Provider {
    pub async fn start(_name: &str) -> Provider {
        let probe = Probe::default();
        let layer = probe.clone();
        let idp = TestIdp::start_with(
            &directory(),
            |_| {},
            move |router| router.layer(from_fn_with_state(layer.clone(), self::probe)),
        )
        .await;
        Provider {
            idp,
            probe,
            minted: AtomicUsize::new(0),
        }
    }

    pub fn http(&self) -> OidcHttp {
        OidcHttp::with_extra_root_pem(self.idp.ca_pem().as_bytes()).unwrap()
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

/// The module of the API app (client id API, only WEB allowed, excluded `/public/*`, token store
/// on) on site `http://app.test`, trusting `provider` whose issuer is `issuer`.
pub async fn api_module(
    issuer: &str,
    action: &str,
    store: Arc<dyn Store>,
    provider: &Provider,
) -> Module {
    let settings = json!({"properties": {
        "platform": {"enabled": true},
        "globalValidation": {"requireAuthentication": true, "unauthenticatedClientAction": action,
                             "excludedPaths": ["/public/*"]},
        "identityProviders": {"azureActiveDirectory": {"enabled": true,
            "registration": {"openIdIssuer": issuer, "clientId": API},
            "validation": {"defaultAuthorizationPolicy": {"allowedApplications": [WEB]}}}},
        "login": {"tokenStore": {"enabled": true}}
    }});
    let loaded = AuthSettings::parse("test.json", &settings.to_string()).expect("settings");
    let env = Environment {
        public_url: Some(url::Url::parse("http://app.test").unwrap()),
        scheme: "http",
        app_settings: AppSettings::default(),
        store,
        http: provider.http(),
        development: true,
        session_store: Default::default(),
    };
    build(&loaded.settings, env).await.expect("module")
}

/// The tenant of the sign-in tests: alice, the web app whose callbacks and sign-out landings are
/// on `sites`, and the API it signs in for (the local provider refreshes only tokens for a named
/// resource).
pub fn web_directory(sites: &[&str]) -> String {
    let redirects: Vec<String> = sites
        .iter()
        .flat_map(|s| {
            [
                format!("{s}/.auth/login/aad/callback"),
                format!("{s}/.auth/logout/complete"),
            ]
        })
        .collect();
    json!({
        "tenant": {"id": TID, "domain": easyauth_testkit::tenant::DOMAIN},
        "users": [easyauth_testkit::tenant::alice()],
        "applications": [
            {"appId": WEB, "displayName": "web",
             "web": {"redirectUris": redirects,
                     "implicitGrantSettings": {"enableIdTokenIssuance": true}},
             "passwordCredentials": [{"secretText": WEB_SECRET}]},
            {"appId": API, "displayName": "api", "identifierUris": [format!("api://{API}")],
             "api": {"requestedAccessTokenVersion": 2,
                     "oauth2PermissionScopes": [{"id": "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                                                 "value": "user_impersonation", "type": "User"}]}}
        ]
    })
    .to_string()
}
