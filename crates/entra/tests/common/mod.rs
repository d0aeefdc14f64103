//! Shared harness for the identity provider's in-process HTTP tests.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub
)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use easyauth_entra::{Idp, IdpConfig, Seed};
use easyauth_store::MemoryStore;
use serde_json::Value;
use tower::ServiceExt;

pub const BASE: &str = "https://idp.test";
pub use easyauth_testkit::tenant::{ALICE, API, API_SECRET, API2, TID, WEB, WEB_SECRET};
pub const PUBLIC: &str = "6e3f9a2b-5c7d-4e8f-9a0b-1c2d3e4f5a6c";
pub const PREAUTH: &str = "8f4a0b3c-6d8e-4f9a-8b1c-2d3e4f5a6b7d";
pub const PREAUTH_SCOPE: &str = "3c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
pub const SCOPE_ID: &str = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
pub const REDIRECT: &str = "https://app.test/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXkdBjftJeZ4CVP";
/// The Azure CLI's well-known public client id, built into every tenant.
pub const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
/// What `az login --use-device-code` asks for.
pub const CLI_SCOPE: &str =
    "https://management.core.windows.net//.default offline_access openid profile";
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub fn directory() -> String {
    serde_json::json!({
        "tenant": {"id": TID, "domain": "contoso.onmicrosoft.com"},
        "users": [easyauth_testkit::tenant::alice()],
        "applications": [
            {"appId": WEB, "displayName": "web", "web": {"redirectUris": [REDIRECT, "http://localhost"],
              "implicitGrantSettings": {"enableIdTokenIssuance": true}},
             "passwordCredentials": [{"secretText": WEB_SECRET}]},
            {"appId": API, "displayName": "api", "identifierUris": [format!("api://{API}")],
             "api": {"requestedAccessTokenVersion": 2, "oauth2PermissionScopes": [{"id": SCOPE_ID, "value": "user_impersonation", "type": "User"}]},
             "passwordCredentials": [{"secretText": API_SECRET}]},
            {"appId": API2, "displayName": "api2", "identifierUris": [format!("api://{API2}")],
             "api": {"oauth2PermissionScopes": [{"id": "1c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "value": "read", "type": "User"}]},
             "appRoles": [{"id": "2c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "value": "Data.Read", "allowedMemberTypes": ["Application"]}]},
            {"appId": PUBLIC, "displayName": "cli", "publicClient": {"redirectUris": ["http://localhost"]}},
            {"appId": PREAUTH, "displayName": "trusting-api", "identifierUris": [format!("api://{PREAUTH}")],
             "api": {"requestedAccessTokenVersion": 2,
                     "oauth2PermissionScopes": [{"id": PREAUTH_SCOPE, "value": "access_as_user", "type": "User"}],
                     "preAuthorizedApplications": [{"appId": WEB, "delegatedPermissionIds": [PREAUTH_SCOPE]}]}}
        ],
        "oauth2PermissionGrants": [{"clientId": API, "consentType": "AllPrincipals", "resourceId": "00000003-0000-0000-c000-000000000000", "scope": "User.Read"}],
        "appRoleAssignments": [{"principalId": WEB, "resourceId": API2, "appRoleId": "2c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}]
    })
    .to_string()
}

pub struct Harness {
    pub app: axum::Router,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
    pub fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
    /// Query or fragment parameters of the redirect.
    pub fn redirect_params(&self) -> HashMap<String, String> {
        let loc = self.location();
        let part = loc.split_once(['?', '#']).map(|(_, p)| p).unwrap_or("");
        form_urlencoded::parse(part.as_bytes())
            .into_owned()
            .collect()
    }
    pub fn hidden(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&needle)? + needle.len();
        let end = start + self.body[start..].find('"')?;
        Some(html_unescape(&self.body[start..end]))
    }
    pub fn cookies(&self) -> Vec<(String, String)> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| {
                v.to_str()
                    .ok()?
                    .split(';')
                    .next()?
                    .split_once('=')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
            })
            .collect()
    }
    pub fn code(&self) -> u32 {
        self.json()["error_codes"][0].as_u64().unwrap() as u32
    }
}

pub fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub use easyauth_testkit::jwt_claims as claims;

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_directory(&directory()).await
    }

    pub async fn with_directory(json: &str) -> Harness {
        Harness::with_config(json, |_| {}).await
    }

    /// A harness whose configuration `adjust` changes (short device-code lifetimes, ...).
    pub async fn with_config(json: &str, adjust: impl FnOnce(&mut IdpConfig)) -> Harness {
        let seed = Seed::parse("test.json", json).expect("directory");
        let mut config = IdpConfig::new(BASE);
        config.access_token_lifetime = 600;
        adjust(&mut config);
        let idp = Idp::start(Arc::new(MemoryStore::new()), config, &seed)
            .await
            .expect("start");
        Harness { app: idp.router() }
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, cookies: &Browser) -> Reply {
        let req = Request::get(path)
            .header(header::COOKIE, cookies.header())
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)], cookies: &Browser) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let req = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookies.header())
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    /// GET the authorize endpoint with `query` (see `code_query`).
    pub async fn authorize(&self, query: &str, cookies: &Browser) -> Reply {
        self.get(&format!("/{TID}/oauth2/v2.0/authorize?{query}"), cookies)
            .await
    }

    pub async fn json_of(&self, path: &str) -> Value {
        self.get(path, &Browser::default()).await.json()
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> Reply {
        self.post(
            &format!("/{TID}/oauth2/v2.0/token"),
            form,
            &Browser::default(),
        )
        .await
    }

    /// Signs alice in through the real pages and returns the authorization response.
    pub async fn sign_in(&self, browser: &mut Browser, query: &str) -> Reply {
        let page = self
            .get(&format!("/{TID}/oauth2/v2.0/authorize?{query}"), browser)
            .await;
        browser.take(&page);
        if page.status != StatusCode::OK || page.hidden("csrf").is_none() {
            return page;
        }
        let ctx = page.hidden("ctx").unwrap();
        let csrf = page.hidden("csrf").unwrap();
        let mut reply = if page.body.contains("name=\"passwd\"") {
            let r = self
                .post(
                    &format!("/{TID}/login"),
                    &[
                        ("ctx", &ctx),
                        ("csrf", &csrf),
                        ("login", "alice@contoso.onmicrosoft.com"),
                        ("passwd", "alice-pw"),
                    ],
                    browser,
                )
                .await;
            browser.take(&r);
            r
        } else {
            page
        };
        if reply.body.contains("name=\"consent\"") {
            let ctx = reply.hidden("ctx").unwrap();
            let csrf = reply.hidden("csrf").unwrap();
            reply = self
                .post(
                    &format!("/{TID}/consent"),
                    &[("ctx", &ctx), ("csrf", &csrf), ("consent", "accept")],
                    browser,
                )
                .await;
            browser.take(&reply);
        }
        reply
    }
}

#[derive(Default, Clone)]
pub struct Browser {
    pub jar: HashMap<String, String>,
}

impl Browser {
    pub fn take(&mut self, reply: &Reply) {
        for (k, v) in reply.cookies() {
            if v.is_empty() {
                self.jar.remove(&k);
            } else {
                self.jar.insert(k, v);
            }
        }
    }
    pub fn header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub fn challenge() -> String {
    URL_SAFE_NO_PAD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, VERIFIER.as_bytes()).as_ref())
}

pub fn code_query(scope: &str, extra: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("client_id", WEB)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-1")
        .append_pair("code_challenge", &challenge())
        .append_pair("code_challenge_method", "S256");
    format!("{}{extra}", s.finish())
}

pub fn api_scope() -> String {
    format!("openid profile offline_access api://{API}/user_impersonation")
}

pub async fn redeem(h: &Harness, code: &str) -> Reply {
    h.token(&[
        ("grant_type", "authorization_code"),
        ("client_id", WEB),
        ("client_secret", WEB_SECRET),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ])
    .await
}

/// Signs alice in with consent and redeems the code: (token response, browser).
pub async fn user_tokens(h: &Harness) -> (Value, Browser) {
    let mut browser = Browser::default();
    let reply = h.sign_in(&mut browser, &code_query(&api_scope(), "")).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let code = reply.redirect_params()["code"].clone();
    let tokens = redeem(h, &code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    (tokens.json(), browser)
}

pub fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Harness {
    /// POST the device authorization endpoint as MSAL does (with the `claims` capability).
    pub async fn device_code(&self, tenant: &str, client_id: &str, scope: &str) -> Reply {
        self.post(
            &format!("/{tenant}/oauth2/v2.0/devicecode"),
            &[
                ("client_id", client_id),
                ("scope", scope),
                (
                    "claims",
                    r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#,
                ),
            ],
            &Browser::default(),
        )
        .await
    }

    /// One poll of the token endpoint, as MSAL sends it (`code` too, `client_info`, `claims`).
    pub async fn poll(&self, client_id: &str, device_code: &str) -> Reply {
        self.token(&[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
            ("code", device_code),
            ("client_info", "1"),
            (
                "claims",
                r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#,
            ),
        ])
        .await
    }

    /// Walks the device-code page as a person would: enter `user_code`, Continue, sign in as
    /// alice with `password` if asked, answer a consent page with `consent` if one is shown.
    /// Returns the last page.
    pub async fn device_login(
        &self,
        browser: &mut Browser,
        user_code: &str,
        password: &str,
        consent: &str,
    ) -> Reply {
        let page = self.get("/devicelogin", browser).await;
        browser.take(&page);
        let csrf = page.hidden("csrf").expect("code-entry page");
        let confirm = self
            .post(
                "/devicelogin",
                &[("csrf", &csrf), ("user_code", user_code)],
                browser,
            )
            .await;
        browser.take(&confirm);
        if !confirm.body.contains("name=\"confirm\"") {
            return confirm;
        }
        let ctx = confirm.hidden("ctx").unwrap();
        let mut reply = self
            .post(
                "/devicelogin",
                &[("ctx", &ctx), ("csrf", &csrf), ("confirm", "continue")],
                browser,
            )
            .await;
        browser.take(&reply);
        if reply.body.contains("name=\"passwd\"") {
            reply = self
                .post(
                    "/devicelogin",
                    &[
                        ("ctx", &ctx),
                        ("csrf", &csrf),
                        ("login", "alice@contoso.onmicrosoft.com"),
                        ("passwd", password),
                    ],
                    browser,
                )
                .await;
            browser.take(&reply);
        }
        if reply.body.contains("name=\"consent\"") {
            reply = self
                .post(
                    "/devicelogin",
                    &[("ctx", &ctx), ("csrf", &csrf), ("consent", consent)],
                    browser,
                )
                .await;
            browser.take(&reply);
        }
        reply
    }

    /// A complete device flow for `client_id` and `scope` as alice: the successful token response.
    pub async fn device_tokens(&self, client_id: &str, scope: &str) -> Value {
        let start = self.device_code("organizations", client_id, scope).await;
        assert_eq!(start.status, StatusCode::OK, "{}", start.body);
        let start = start.json();
        let mut browser = Browser::default();
        let done = self
            .device_login(
                &mut browser,
                start["user_code"].as_str().unwrap(),
                "alice-pw",
                "accept",
            )
            .await;
        assert!(done.body.contains("You have signed in"), "{}", done.body);
        let tokens = self
            .poll(client_id, start["device_code"].as_str().unwrap())
            .await;
        assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
        tokens.json()
    }
}
