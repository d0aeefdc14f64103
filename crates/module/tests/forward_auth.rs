//! Forward-auth as `easyauth forward-auth` serves it: the module's routes and check endpoints on
//! a loopback port, the real identity provider in-process over TLS, and a browser that signs in
//! through the routes. Each check style's answers for anonymous, signed-in and forbidden
//! requests; forwarding headers believed only from a trusted peer; the original URI validated as
//! a redirect target; nginx never answered with a redirect or a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use easyauth_module::{
    AppSettings, AuthSettings, Environment, ForwardAuth, OidcHttp, TrustedProxies,
};
use easyauth_store::MemoryStore;
use easyauth_testkit::tenant::{ALICE_PASSWORD, ALICE_UPN, API, TID, WEB, WEB_SECRET};
use easyauth_testkit::{Browser, Served, TestIdp, loopback_listener, serve_http, tenant};
use reqwest::StatusCode;
use serde_json::{Value, json};

const SECRET_SETTING: &str = "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET";
const BROWSER_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) forward-auth-test";
const API_UA: &str = "forward-auth-test-client/1.0";

/// The auth settings; `tweak` changes the `properties` before they load.
fn settings(idp: &TestIdp, tweak: impl FnOnce(&mut Value)) -> AuthSettings {
    let mut props = json!({
        "platform": {"enabled": true},
        "globalValidation": {"requireAuthentication": true,
                             "unauthenticatedClientAction": "RedirectToLoginPage"},
        "identityProviders": {"azureActiveDirectory": {"enabled": true,
            "registration": {"openIdIssuer": idp.issuer(TID), "clientId": WEB,
                             "clientSecretSettingName": SECRET_SETTING},
            "login": {"loginParameters": [format!(
                "scope=openid profile email offline_access api://{API}/user_impersonation"
            )]}}},
        "login": {"tokenStore": {"enabled": true}}
    });
    tweak(&mut props);
    let text = json!({ "properties": props }).to_string();
    AuthSettings::parse("auth.json", &text)
        .expect("settings")
        .settings
}

/// `easyauth forward-auth` on a loopback port.
struct Service {
    url: String,
    _served: Served,
}

impl Service {
    async fn start(
        idp: &TestIdp,
        listener: std::net::TcpListener,
        trusted: &[&str],
        tweak: impl FnOnce(&mut Value),
    ) -> Service {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let env = Environment {
            public_url: None,
            scheme: "http",
            app_settings: AppSettings(HashMap::from([(
                SECRET_SETTING.to_owned(),
                WEB_SECRET.to_owned(),
            )])),
            store: Arc::new(MemoryStore::new()),
            http: OidcHttp::with_extra_root_pem(idp.ca_pem().as_bytes()).unwrap(),
            development: true,
            session_store: Default::default(),
        };
        let trusted = TrustedProxies::new(trusted.iter().map(|t| t.parse().unwrap()).collect());
        let service = ForwardAuth::build(&settings(idp, tweak), env, trusted)
            .await
            .expect("module");
        let router = Router::new().fallback_service(service.into_service());
        let served = serve_http(listener, router).await;
        Service {
            url,
            _served: served,
        }
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    fn host(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Signs alice in through the service's own routes (as the front proxy would relay them).
    async fn sign_in(&self, browser: &Browser) {
        let page = browser
            .get(&self.at("/.auth/login/aad?post_login_redirect_uri=/"))
            .await;
        assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
        let page = browser.get(&page.location().unwrap()).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let answer = browser.sign_in(page, ALICE_UPN, ALICE_PASSWORD).await;
        assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.body);
        let done = browser.follow(&answer).await;
        assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
        assert_eq!(header(&done, "location"), Some("/"));
    }
}

async fn check(browser: &Browser, url: &str, headers: &[(&str, &str)]) -> easyauth_testkit::Page {
    browser.get_with(url, headers).await
}

fn header<'a>(page: &'a easyauth_testkit::Page, name: &str) -> Option<&'a str> {
    page.headers.get(name).and_then(|v| v.to_str().ok())
}

const LOGIN_TO_PROFILE: &str = "/.auth/login/aad?post_login_redirect_uri=%2Fprofile%3Ftab%3D1";

#[tokio::test]
async fn each_style_answers_an_anonymous_request_as_its_proxy_expects() {
    let listener = loopback_listener();
    let idp = TestIdp::start(&support::web_directory(&[])).await;
    let svc = Service::start(&idp, listener, &["127.0.0.1"], |_| {}).await;
    let browser = idp.browser();
    let host = svc.host().to_owned();

    // nginx: the sign-in redirect travels as a 401 and a header, never as a 302.
    let nginx = check(
        &browser,
        &svc.at("/.auth/forward/nginx"),
        &[
            ("user-agent", BROWSER_UA),
            ("x-original-uri", "/profile?tab=1"),
            ("x-original-method", "GET"),
            ("x-forwarded-host", &host),
        ],
    )
    .await;
    assert_eq!(nginx.status, StatusCode::UNAUTHORIZED, "{}", nginx.body);
    assert_eq!(header(&nginx, "x-easyauth-login"), Some(LOGIN_TO_PROFILE));
    assert!(header(&nginx, "location").is_none());

    // Caddy / Traefik: the module's own answer, the 302 to sign-in.
    for style in ["caddy", "traefik"] {
        let page = check(
            &browser,
            &svc.at(&format!("/.auth/forward/{style}")),
            &[
                ("user-agent", BROWSER_UA),
                ("x-forwarded-uri", "/profile?tab=1"),
                ("x-forwarded-method", "GET"),
                ("x-forwarded-host", &host),
                ("x-forwarded-proto", "http"),
            ],
        )
        .await;
        assert_eq!(page.status, StatusCode::FOUND, "{style}: {}", page.body);
        assert_eq!(header(&page, "location"), Some(LOGIN_TO_PROFILE), "{style}");
    }

    // Envoy: the original path follows the prefix.
    let envoy = check(
        &browser,
        &svc.at("/.auth/forward/envoy/profile?tab=1"),
        &[("user-agent", BROWSER_UA)],
    )
    .await;
    assert_eq!(envoy.status, StatusCode::FOUND, "{}", envoy.body);
    assert_eq!(header(&envoy, "location"), Some(LOGIN_TO_PROFILE));

    // A client that is not a browser gets App Service's 401 challenge in every style.
    for (path, uri_header) in [
        ("/.auth/forward/nginx", "x-original-uri"),
        ("/.auth/forward/caddy", "x-forwarded-uri"),
    ] {
        let page = check(
            &browser,
            &svc.at(path),
            &[("user-agent", API_UA), (uri_header, "/api/orders")],
        )
        .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(
            header(&page, "www-authenticate").is_some_and(|c| c.starts_with("Bearer realm=")),
            "{path}: {:?}",
            page.headers
        );
        assert!(header(&page, "x-easyauth-login").is_none(), "{path}");
    }
}

#[tokio::test]
async fn a_signed_in_browser_gets_its_identity_headers_and_never_a_spoofed_one() {
    let listener = loopback_listener();
    let site = format!("http://{}", listener.local_addr().unwrap());
    let idp = TestIdp::start(&support::web_directory(&[&site])).await;
    let svc = Service::start(&idp, listener, &["127.0.0.1"], |_| {}).await;
    let browser = idp.browser();
    svc.sign_in(&browser).await;
    let host = svc.host().to_owned();
    let spoofed = [
        ("x-ms-client-principal-name", "mallory@evil.test"),
        (
            "X-MS-CLIENT-PRINCIPAL-ID",
            "00000000-0000-0000-0000-000000000000",
        ),
        ("x-ms-token-google-access-token", "forged"),
        ("x-ms-auth-forged", "1"),
    ];
    for (path, uri_header) in [
        ("/.auth/forward/nginx", "x-original-uri"),
        ("/.auth/forward/caddy", "x-forwarded-uri"),
        ("/.auth/forward/envoy/profile", "x-ignored"),
    ] {
        let mut headers = vec![
            ("user-agent", BROWSER_UA),
            (uri_header, "/profile"),
            ("x-forwarded-host", host.as_str()),
        ];
        if path.contains("nginx") {
            // nginx overwrites the headers its configuration lists; any other identity header
            // would pass it, so such a request is refused.
            for unknown in &spoofed[2..] {
                let mut with = headers.clone();
                with.push(*unknown);
                let page = check(&browser, &svc.at(path), &with).await;
                assert_eq!(page.status, StatusCode::FORBIDDEN, "{unknown:?}");
                assert!(header(&page, "x-ms-client-principal-name").is_none());
            }
            headers.extend(&spoofed[..2]);
        } else {
            headers.extend(spoofed);
        }
        let page = check(&browser, &svc.at(path), &headers).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert_eq!(
            header(&page, "x-ms-client-principal-name"),
            Some(ALICE_UPN),
            "{path}"
        );
        assert_eq!(
            header(&page, "x-ms-client-principal-id"),
            Some(tenant::ALICE),
            "{path}"
        );
        assert_eq!(header(&page, "x-ms-client-principal-idp"), Some("aad"));
        assert!(header(&page, "x-ms-client-principal").is_some());
        assert!(header(&page, "x-ms-token-aad-access-token").is_some());
        assert!(header(&page, "x-ms-token-aad-id-token").is_some());
        for (name, _) in spoofed.iter().skip(2) {
            assert!(header(&page, name).is_none(), "{path}: {name} came back");
        }
        if path.contains("envoy") {
            let remove = header(&page, "x-envoy-auth-headers-to-remove").unwrap();
            let names: Vec<&str> = remove.split(',').collect();
            assert!(
                names.contains(&"x-ms-token-google-access-token"),
                "{remove}"
            );
            assert!(names.contains(&"x-ms-auth-forged"), "{remove}");
            assert!(!names.contains(&"x-ms-client-principal-name"), "{remove}");
        } else {
            assert!(header(&page, "x-envoy-auth-headers-to-remove").is_none());
        }
    }
}

#[tokio::test]
async fn refusals_follow_the_settings_and_nginx_only_ever_sees_2xx_401_403() {
    let idp = TestIdp::start(&support::web_directory(&[])).await;
    let listener = loopback_listener();
    let r401 = Service::start(&idp, listener, &["127.0.0.1"], |p| {
        p["globalValidation"]["unauthenticatedClientAction"] = json!("Return401");
    })
    .await;
    let r403 = Service::start(&idp, loopback_listener(), &["127.0.0.1"], |p| {
        p["globalValidation"]["unauthenticatedClientAction"] = json!("Return403");
    })
    .await;
    let r404 = Service::start(&idp, loopback_listener(), &["127.0.0.1"], |p| {
        p["globalValidation"]["unauthenticatedClientAction"] = json!("Return404");
    })
    .await;
    let browser = idp.browser();
    for (svc, nginx, caddy) in [
        (&r401, StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED),
        (&r403, StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
        (&r404, StatusCode::FORBIDDEN, StatusCode::NOT_FOUND),
    ] {
        let page = check(
            &browser,
            &svc.at("/.auth/forward/nginx"),
            &[("user-agent", BROWSER_UA), ("x-original-uri", "/")],
        )
        .await;
        assert_eq!(page.status, nginx, "{}", page.body);
        assert!(header(&page, "location").is_none());
        let page = check(
            &browser,
            &svc.at("/.auth/forward/caddy"),
            &[("user-agent", BROWSER_UA), ("x-forwarded-uri", "/")],
        )
        .await;
        assert_eq!(page.status, caddy, "{}", page.body);
    }
}

#[tokio::test]
async fn an_authorization_denial_is_403_for_a_signed_in_user() {
    let listener = loopback_listener();
    let site = format!("http://{}", listener.local_addr().unwrap());
    let idp = TestIdp::start(&support::web_directory(&[&site])).await;
    let svc = Service::start(&idp, listener, &["127.0.0.1"], |p| {
        p["identityProviders"]["azureActiveDirectory"]["validation"] = json!({
            "defaultAuthorizationPolicy": {"allowedPrincipals": {
                "identities": ["11111111-2222-3333-4444-555555555555"]}}
        });
    })
    .await;
    let browser = idp.browser();
    svc.sign_in(&browser).await;
    for (path, uri_header) in [
        ("/.auth/forward/nginx", "x-original-uri"),
        ("/.auth/forward/caddy", "x-forwarded-uri"),
        ("/.auth/forward/envoy/", "x-ignored"),
    ] {
        let page = check(
            &browser,
            &svc.at(path),
            &[("user-agent", BROWSER_UA), (uri_header, "/")],
        )
        .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}: {}", page.body);
        assert_eq!(
            header(&page, "x-easyauth-reason-code"),
            Some("authorization-denied")
        );
        assert!(header(&page, "x-ms-client-principal-name").is_none());
    }
}

#[tokio::test]
async fn forwarding_headers_count_only_from_a_trusted_peer() {
    let idp = TestIdp::start(&support::web_directory(&[])).await;
    let trusted = Service::start(&idp, loopback_listener(), &["127.0.0.0/8"], |_| {}).await;
    let untrusted = Service::start(&idp, loopback_listener(), &["10.0.0.0/8"], |_| {}).await;
    let browser = idp.browser();
    let forwarded = [
        ("x-forwarded-uri", "/secret?a=1"),
        ("x-forwarded-host", "app.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-method", "GET"),
    ];
    // The challenge's realm names the site the module worked out.
    let mut api = vec![("user-agent", API_UA)];
    api.extend(forwarded);
    let page = check(&browser, &trusted.at("/.auth/forward/caddy"), &api).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(
        header(&page, "www-authenticate")
            .unwrap()
            .contains("realm=\"app.example\""),
        "{:?}",
        page.headers
    );
    let page = check(&browser, &untrusted.at("/.auth/forward/caddy"), &api).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(
        header(&page, "www-authenticate")
            .unwrap()
            .contains("realm=\"127.0.0.1\""),
        "{:?}",
        page.headers
    );
    // The URI too: from an untrusted peer the check is about `/`.
    let mut web = vec![("user-agent", BROWSER_UA)];
    web.extend(forwarded);
    let page = check(&browser, &trusted.at("/.auth/forward/caddy"), &web).await;
    assert_eq!(
        header(&page, "location"),
        Some("/.auth/login/aad?post_login_redirect_uri=%2Fsecret%3Fa%3D1")
    );
    let page = check(&browser, &untrusted.at("/.auth/forward/caddy"), &web).await;
    assert_eq!(
        header(&page, "location"),
        Some("/.auth/login/aad?post_login_redirect_uri=%2F")
    );
    // The routes follow the same rule: a sign-in started through a trusted proxy calls back to
    // the site it names, through an untrusted one to the host it came to.
    let login = "/.auth/login/aad?post_login_redirect_uri=/";
    let page = check(&browser, &trusted.at(login), &web).await;
    assert!(
        page.location()
            .unwrap()
            .contains("redirect_uri=https%3A%2F%2Fapp.example%2F.auth%2Flogin%2Faad%2Fcallback"),
        "{:?}",
        page.location()
    );
    let page = check(&browser, &untrusted.at(login), &web).await;
    let own = format!(
        "redirect_uri=http%3A%2F%2F{}%2F.auth%2Flogin%2Faad%2Fcallback",
        untrusted.host().replace(':', "%3A")
    );
    assert!(
        page.location().unwrap().contains(&own),
        "{:?}",
        page.location()
    );
}

#[tokio::test]
async fn the_original_uri_is_validated_as_a_redirect_target() {
    let idp = TestIdp::start(&support::web_directory(&[])).await;
    let svc = Service::start(&idp, loopback_listener(), &["127.0.0.1"], |_| {}).await;
    let browser = idp.browser();
    let long = format!("/{}", "a".repeat(9000));
    for bad in [
        "//evil.test/x",
        "/%2F%2Fevil.test",
        "/%5Cevil.test",
        "https://evil.test/",
        "evil.test",
        long.as_str(),
    ] {
        let page = check(
            &browser,
            &svc.at("/.auth/forward/caddy"),
            &[("user-agent", BROWSER_UA), ("x-forwarded-uri", bad)],
        )
        .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            header(&page, "x-easyauth-reason-code"),
            Some("bad-forwarded-request"),
            "{bad}"
        );
        assert!(header(&page, "location").is_none(), "{bad}");
        let page = check(
            &browser,
            &svc.at("/.auth/forward/nginx"),
            &[("user-agent", BROWSER_UA), ("x-original-uri", bad)],
        )
        .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "nginx {bad}");
        assert_eq!(
            header(&page, "x-easyauth-reason-code"),
            Some("bad-forwarded-request"),
            "{bad}"
        );
    }
    // The proxy must say which URI it asks about; a bad method is refused too.
    let page = check(&browser, &svc.at("/.auth/forward/caddy"), &[]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        header(&page, "x-easyauth-reason")
            .unwrap()
            .contains("X-Forwarded-Uri is missing")
    );
    let page = check(
        &browser,
        &svc.at("/.auth/forward/caddy"),
        &[
            ("x-forwarded-uri", "/"),
            ("x-forwarded-method", "GET /x HTTP/1.1"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // Envoy's path after the prefix is checked the same way.
    let page = check(&browser, &svc.at("/.auth/forward/envoy//evil.test"), &[]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    // Unknown check styles and paths outside the routes are 404, not a check.
    for path in ["/.auth/forward/apache", "/.auth/forward/nginxx", "/profile"] {
        let page = check(&browser, &svc.at(path), &[]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
    }
    // A check about one of the module's own routes lets it through without running it.
    let page = check(
        &browser,
        &svc.at("/.auth/forward/nginx"),
        &[("x-original-uri", "/.auth/logout")],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(header(&page, "set-cookie").is_none());
}

#[tokio::test]
async fn the_csrf_rule_applies_to_the_original_request() {
    let listener = loopback_listener();
    let site = format!("http://{}", listener.local_addr().unwrap());
    let idp = TestIdp::start(&support::web_directory(&[&site])).await;
    let svc = Service::start(&idp, listener, &["127.0.0.1"], |_| {}).await;
    let browser = idp.browser();
    svc.sign_in(&browser).await;
    let host = svc.host().to_owned();
    // A cookie-authenticated POST from another site's page is refused; from the site's own
    // page it passes (the original request's method and Origin are what count).
    for (origin, want) in [
        ("https://evil.test", StatusCode::FORBIDDEN),
        (site.as_str(), StatusCode::OK),
    ] {
        let page = check(
            &browser,
            &svc.at("/.auth/forward/nginx"),
            &[
                ("user-agent", BROWSER_UA),
                ("x-original-uri", "/orders"),
                ("x-original-method", "POST"),
                ("x-forwarded-host", &host),
                ("origin", origin),
            ],
        )
        .await;
        assert_eq!(page.status, want, "{origin}: {}", page.body);
        if want == StatusCode::FORBIDDEN {
            assert_eq!(
                header(&page, "x-easyauth-reason-code"),
                Some("cross-site-request")
            );
        }
    }
}
