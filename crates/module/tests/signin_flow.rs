//! The browser sign-in flow through the module, as `easyauth proxy` runs it: the module served on
//! a loopback port in front of a real upstream app, the real identity provider in-process over
//! TLS, and a browser (cookie jar, each redirect followed by hand) signing in on the provider's
//! pages. Covers `/.auth/login/aad` → provider → `/.auth/login/aad/callback` (form_post under
//! https, query under plain http), the session cookie, the headers the app receives, `/.auth/me`,
//! `/.auth/refresh`, `/.auth/logout`, and the CSRF rules around them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Method, Uri};
use base64::Engine;
use easyauth_module::{AppSettings, AuthSettings, Environment, OidcHttp, ProxyStack};
use easyauth_store::MemoryStore;
use easyauth_testkit::tenant::{ALICE, ALICE_PASSWORD, ALICE_UPN, API, TID, WEB, WEB_SECRET};
use easyauth_testkit::{Browser, Page, Served, TestIdp, loopback_listener, serve_http, serve_tls};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SESSION: &str = "AppServiceAuthSession";
const NONCE: &str = "Nonce";
const SECRET_SETTING: &str = "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET";

/// The upstream app: answers every request with its method, path and the `x-ms-*` headers.
async fn echo(method: Method, uri: Uri, headers: HeaderMap) -> axum::Json<Value> {
    let seen: serde_json::Map<String, Value> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-ms-"))
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
        .collect();
    axum::Json(json!({"method": method.as_str(), "path": uri.path(), "headers": seen}))
}

/// A running site: the provider, the module in front of the echo app, and the site's URL.
struct Site {
    idp: TestIdp,
    url: String,
    _module: Served,
    _app: Served,
}

impl Site {
    /// `https`: the module over TLS (form_post, `Secure` cookies); otherwise plain http (query).
    async fn start(https: bool) -> Site {
        let listener = loopback_listener();
        let scheme = if https { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let idp = TestIdp::start(&support::web_directory(&[&url])).await;
        let app = serve_http(loopback_listener(), Router::new().fallback(echo)).await;
        let settings = json!({"properties": {
            "platform": {"enabled": true},
            "globalValidation": {"requireAuthentication": true,
                                 "unauthenticatedClientAction": "RedirectToLoginPage"},
            "identityProviders": {"azureActiveDirectory": {"enabled": true,
                "registration": {"openIdIssuer": idp.issuer(TID), "clientId": WEB,
                                 "clientSecretSettingName": SECRET_SETTING},
                "login": {"loginParameters": [format!(
                    "scope=openid profile email offline_access api://{API}/user_impersonation"
                )]}}},
            "login": {"tokenStore": {"enabled": true},
                      "allowedExternalRedirectUrls": ["https://trusted.example/"]}
        }});
        let loaded = AuthSettings::parse("auth.json", &settings.to_string()).expect("settings");
        let env = Environment {
            public_url: Some(url::Url::parse(&url).unwrap()),
            scheme,
            app_settings: AppSettings(HashMap::from([(
                SECRET_SETTING.to_owned(),
                WEB_SECRET.to_owned(),
            )])),
            store: Arc::new(MemoryStore::new()),
            http: OidcHttp::with_extra_root_pem(idp.ca_pem().as_bytes()).unwrap(),
            development: true,
            session_store: Default::default(),
        };
        // What `easyauth proxy` serves: the module in front of the app.
        let stack = ProxyStack::build(
            &loaded.settings,
            env,
            &url::Url::parse(&app.url).unwrap(),
            Duration::from_secs(30),
        )
        .await
        .expect("module");
        let router = Router::new().fallback_service(stack.into_service());
        let module = if https {
            serve_tls(listener, &idp.ca, router).await
        } else {
            serve_http(listener, router).await
        };
        Site {
            idp,
            url,
            _module: module,
            _app: app,
        }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Opens `path` signed out and goes through the whole sign-in: the module's redirect to its
    /// login route, the provider's sign-in page, the answer back to the callback. Returns the
    /// callback's answer.
    async fn sign_in(&self, browser: &Browser, path: &str) -> Page {
        let authorize = self.start_sign_in(browser, path).await;
        let answer = self.provider_answer(browser, authorize).await;
        self.deliver(browser, &answer).await
    }

    /// From `path` to the provider's authorize endpoint; returns the authorize request's URL.
    async fn start_sign_in(&self, browser: &Browser, path: &str) -> String {
        let page = browser.get(&self.at(path)).await;
        assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
        let login = page.location().unwrap();
        assert!(
            login.starts_with(&self.at("/.auth/login/aad?post_login_redirect_uri=")),
            "{login}"
        );
        let page = browser.get(&login).await;
        assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
        assert!(
            browser.cookie(&self.url, NONCE).is_some(),
            "the sign-in attempt is bound to this browser"
        );
        let authorize = page.location().unwrap();
        assert!(
            authorize.starts_with(&format!(
                "{}/oauth2/v2.0/authorize?",
                self.idp.issuer(TID).trim_end_matches("/v2.0")
            )),
            "{authorize}"
        );
        authorize
    }

    /// The provider's answer to `authorize` once alice has signed in: a redirect to the callback
    /// (query) or the page that posts to it (form_post).
    async fn provider_answer(&self, browser: &Browser, authorize: String) -> Page {
        let page = browser.get(&authorize).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        browser.sign_in(page, ALICE_UPN, ALICE_PASSWORD).await
    }

    /// Delivers the provider's answer to the callback, as a browser does.
    async fn deliver(&self, browser: &Browser, answer: &Page) -> Page {
        if answer.status == StatusCode::OK {
            assert!(answer.body.contains("hiddenform"), "{}", answer.body);
            browser.auto_submit(answer).await
        } else {
            assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.body);
            browser.follow(answer).await
        }
    }

    /// `/.auth/me`'s one entry for a signed-in browser.
    async fn me(&self, browser: &Browser) -> Value {
        let page = browser.get(&self.at("/.auth/me")).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let me = page.json();
        assert_eq!(me.as_array().map(Vec::len), Some(1), "{me}");
        me[0].clone()
    }
}

/// The `x-ms-*` headers the app received for `path`.
async fn app_headers(site: &Site, browser: &Browser, path: &str) -> Value {
    let page = browser.get(&site.at(path)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let echoed = page.json();
    assert_eq!(echoed["path"], path);
    echoed["headers"].clone()
}

fn principal(headers: &Value) -> Value {
    let encoded = headers["x-ms-client-principal"]
        .as_str()
        .expect("principal");
    serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn form_post_sign_in_reaches_the_app_with_principal_and_token_headers() {
    let site = Site::start(true).await;
    let browser = site.idp.browser();
    let authorize = site.start_sign_in(&browser, "/profile?tab=1").await;
    // Under https: App Service's hybrid flow, answered with a form POST to the callback.
    let query: HashMap<String, String> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(query["response_mode"], "form_post");
    assert_eq!(query["response_type"], "code id_token");
    assert_eq!(query["redirect_uri"], site.at("/.auth/login/aad/callback"));
    assert_eq!(query["code_challenge_method"], "S256");
    let answer = site.provider_answer(&browser, authorize).await;
    let form = answer.form();
    assert_eq!(form.action, site.at("/.auth/login/aad/callback"));
    assert!(form.fields.iter().any(|(k, _)| k == "id_token"));

    let done = browser.auto_submit(&answer).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    assert_eq!(done.location().unwrap(), site.at("/profile?tab=1"));
    let cookies = done.set_cookies();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("{SESSION}="))),
        "{cookies:?}"
    );
    assert!(
        cookies.contains(&format!("{NONCE}=")),
        "the attempt is over: {cookies:?}"
    );
    assert!(browser.cookie(&site.url, SESSION).is_some());

    let seen = app_headers(&site, &browser, "/profile").await;
    assert_eq!(seen["x-ms-client-principal-idp"], "aad");
    assert_eq!(seen["x-ms-client-principal-name"], ALICE_UPN);
    assert_eq!(seen["x-ms-client-principal-id"], ALICE);
    let p = principal(&seen);
    assert_eq!(p["auth_typ"], "aad");
    assert!(
        p["claims"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["val"] == ALICE_UPN),
        "{p}"
    );
    let access = seen["x-ms-token-aad-access-token"].as_str().unwrap();
    let id = seen["x-ms-token-aad-id-token"].as_str().unwrap();
    assert!(
        seen["x-ms-token-aad-refresh-token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(
        seen["x-ms-token-aad-expires-on"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(easyauth_testkit::jwt_claims(access)["aud"], API);
    let id_claims = easyauth_testkit::jwt_claims(id);
    assert_eq!(id_claims["aud"], WEB);
    assert_eq!(id_claims["oid"], ALICE);

    let me = site.me(&browser).await;
    assert_eq!(me["provider_name"], "aad");
    assert_eq!(me["user_id"], ALICE_UPN);
    assert_eq!(me["access_token"], access);
    assert_eq!(me["id_token"], id);
    assert!(
        me["user_claims"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["val"] == ALICE),
        "{me}"
    );
}

#[tokio::test]
async fn query_sign_in_on_a_plain_http_site() {
    let site = Site::start(false).await;
    let browser = site.idp.browser();
    let authorize = site.start_sign_in(&browser, "/").await;
    let query: HashMap<String, String> = url::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    // Plain http: a top-level redirect back, which carries the SameSite=Lax Nonce cookie.
    assert_eq!(query["response_mode"], "query");
    assert_eq!(query["response_type"], "code");
    let answer = site.provider_answer(&browser, authorize).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.body);
    assert!(
        answer
            .location()
            .unwrap()
            .starts_with(&site.at("/.auth/login/aad/callback?")),
        "{:?}",
        answer.location()
    );
    let done = browser.follow(&answer).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    assert_eq!(done.location().unwrap(), site.at("/"));

    let seen = app_headers(&site, &browser, "/").await;
    assert_eq!(seen["x-ms-client-principal-name"], ALICE_UPN);
    assert!(seen["x-ms-token-aad-access-token"].is_string());
    assert_eq!(site.me(&browser).await["user_id"], ALICE_UPN);
}

#[tokio::test]
async fn refresh_replaces_the_tokens_the_app_receives() {
    let site = Site::start(true).await;
    let browser = site.idp.browser();
    let done = site.sign_in(&browser, "/").await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    let before = site.me(&browser).await;

    let refreshed = browser.get(&site.at("/.auth/refresh")).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let after = site.me(&browser).await;
    assert_ne!(after["access_token"], before["access_token"]);
    assert_ne!(after["refresh_token"], before["refresh_token"], "rotated");
    assert_eq!(after["user_id"], before["user_id"]);
    let seen = app_headers(&site, &browser, "/after").await;
    assert_eq!(seen["x-ms-token-aad-access-token"], after["access_token"]);

    // Signed out, there is nothing to refresh.
    let stranger = site.idp.browser();
    let refused = stranger.get(&site.at("/.auth/refresh")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_provider_outage_keeps_the_session_and_only_a_refused_grant_ends_it() {
    let site = Site::start(true).await;
    let browser = site.idp.browser();
    site.sign_in(&browser, "/").await;
    let first = site.me(&browser).await;

    // The provider cannot be reached: 502, the session and its cookie stay.
    site.idp.stop().await;
    let failed = browser.get(&site.at("/.auth/refresh")).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.body);
    assert_eq!(
        failed.headers["x-easyauth-reason-code"],
        "provider-unavailable"
    );
    assert!(
        failed.set_cookies().is_empty(),
        "{:?}",
        failed.set_cookies()
    );
    assert_eq!(
        site.me(&browser).await["access_token"],
        first["access_token"]
    );

    // Back: the same session refreshes.
    site.idp.serve().await;
    let refreshed = browser.get(&site.at("/.auth/refresh")).await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let second = site.me(&browser).await;
    assert_ne!(second["refresh_token"], first["refresh_token"]);

    // Someone replays the rotated-out refresh token: the provider revokes the whole family, so
    // the module's next redeem gets invalid_grant, and that ends the session.
    let token_endpoint = format!(
        "{}/oauth2/v2.0/token",
        site.idp.issuer(TID).trim_end_matches("/v2.0")
    );
    let replay = site
        .idp
        .client()
        .post(&token_endpoint)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    // Refreshes within 5 s of the last one share its redeem; this one must redeem again.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let refused = browser.get(&site.at("/.auth/refresh")).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert_eq!(refused.headers["x-easyauth-reason-code"], "refresh-refused");
    let gone = browser.get(&site.at("/.auth/me")).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "the session ended");
}

#[tokio::test]
async fn logout_ends_the_session_and_lands_only_on_a_valid_page() {
    let site = Site::start(true).await;
    let browser = site.idp.browser();
    site.sign_in(&browser, "/").await;
    let old_cookie = browser.cookie(&site.url, SESSION).expect("session cookie");

    let out = browser
        .get(&site.at("/.auth/logout?post_logout_redirect_uri=/bye"))
        .await;
    assert_eq!(out.status, StatusCode::FOUND, "{}", out.body);
    assert!(
        out.set_cookies().contains(&format!("{SESSION}=")),
        "cleared"
    );
    assert_eq!(browser.cookie(&site.url, SESSION), None);
    // Through the provider's end-session endpoint, which returns to the registered landing.
    let end_session = out.location().unwrap();
    assert!(end_session.starts_with(&site.idp.base), "{end_session}");
    let back = browser.follow(&out).await;
    assert_eq!(back.status, StatusCode::FOUND, "{}", back.body);
    assert!(
        back.location()
            .unwrap()
            .starts_with(&site.at("/.auth/logout/complete")),
        "{:?}",
        back.location()
    );
    let landing = browser.follow(&back).await;
    assert_eq!(landing.status, StatusCode::FOUND);
    assert_eq!(landing.location().unwrap(), site.at("/bye"));

    // The session is gone from the token store: the old cookie no longer signs anyone in.
    let replay = site.idp.browser();
    replay.jar().add_cookie_str(
        &format!("{SESSION}={old_cookie}; Path=/"),
        &site.url.parse().unwrap(),
    );
    let me = replay.get(&site.at("/.auth/me")).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    let page = replay.get(&site.at("/profile")).await;
    assert_eq!(page.status, StatusCode::FOUND, "back to the sign-in");

    // A landing page on another site is refused: the signed-out page instead.
    let browser = site.idp.browser();
    site.sign_in(&browser, "/").await;
    let out = browser
        .get(&site.at("/.auth/logout?post_logout_redirect_uri=https://evil.example/"))
        .await;
    let back = browser.follow(&out).await;
    let landing = browser.follow(&back).await;
    assert_eq!(landing.status, StatusCode::OK, "{:?}", landing.location());
    assert!(
        landing.body.contains("You have signed out"),
        "{}",
        landing.body
    );
    // An allowed external URL is kept.
    let complete = browser
        .get(&site.at("/.auth/logout/complete?post_logout_redirect_uri=https://trusted.example/x"))
        .await;
    assert_eq!(
        complete.location().as_deref(),
        Some("https://trusted.example/x")
    );
}

#[tokio::test]
async fn a_callback_that_is_not_this_browsers_sign_in_is_refused() {
    let site = Site::start(true).await;
    // An attacker's own sign-in, stopped at the provider's answer (code, ID token, state).
    let attacker = site.idp.browser();
    let authorize = site.start_sign_in(&attacker, "/").await;
    let stolen = site.provider_answer(&attacker, authorize).await;
    let form = stolen.form();

    let refused = |page: &Page| {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
        assert!(page.body.contains("Sign-in failed"), "{}", page.body);
        assert!(
            !page
                .set_cookies()
                .iter()
                .any(|c| c.starts_with(SESSION) && !c.ends_with('=')),
            "no session: {:?}",
            page.set_cookies()
        );
    };

    // Posted cross-site into a victim's browser that started no sign-in: no Nonce cookie.
    let victim = site.idp.browser();
    let page = victim
        .post_form(
            &form.action,
            &form.fields,
            &[("origin", "https://evil.example")],
        )
        .await;
    refused(&page);
    assert!(
        page.body.contains("missing or invalid Nonce cookie"),
        "{}",
        page.body
    );

    // The victim has a sign-in of its own in progress: the state is not its attempt's.
    site.start_sign_in(&victim, "/").await;
    let page = victim.submit(&stolen, &form, &[]).await;
    refused(&page);
    assert!(page.body.contains("state does not match"), "{}", page.body);

    // A Nonce cookie that is not one the module sealed.
    site.start_sign_in(&victim, "/").await;
    victim.jar().add_cookie_str(
        &format!("{NONCE}=forged; Path=/"),
        &site.url.parse().unwrap(),
    );
    let page = victim.submit(&stolen, &form, &[]).await;
    refused(&page);
    assert!(
        page.body.contains("missing or invalid Nonce cookie"),
        "{}",
        page.body
    );

    // The attacker's own browser still finishes its sign-in: the answer itself was good.
    let done = attacker.auto_submit(&stolen).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
}

#[tokio::test]
async fn cross_site_posts_with_the_session_cookie_are_refused() {
    let site = Site::start(true).await;
    let browser = site.idp.browser();
    site.sign_in(&browser, "/").await;
    let fields = vec![("amount".to_owned(), "100".to_owned())];

    let page = browser
        .post_form(
            &site.at("/transfer"),
            &fields,
            &[("origin", "https://evil.example")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert!(page.body.contains("CSRF rule"), "{}", page.body);

    let page = browser.post_form(&site.at("/transfer"), &fields, &[]).await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "no Origin nor Referer: {}",
        page.body
    );

    let page = browser
        .post_form(
            &site.at("/transfer"),
            &fields,
            &[("referer", &site.at("/form"))],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.json()["method"], "POST");

    let own = url::Url::parse(&site.url)
        .unwrap()
        .origin()
        .ascii_serialization();
    let page = browser
        .post_form(&site.at("/transfer"), &fields, &[("origin", &own)])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(
        page.json()["headers"]["x-ms-client-principal-name"],
        ALICE_UPN
    );

    // An allowed external origin may post too; a GET from anywhere is not state-changing.
    let page = browser
        .post_form(
            &site.at("/transfer"),
            &fields,
            &[("origin", "https://trusted.example")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let page = browser
        .get_with(&site.at("/balance"), &[("origin", "https://evil.example")])
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
}
