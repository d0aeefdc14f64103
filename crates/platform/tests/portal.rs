//! The local portal over real HTTPS, as a browser without JavaScript uses it: sign in through the
//! identity provider's pages (no consent prompt), the web apps on Home, a web app's Overview
//! (restart), Environment variables (add, delete) and Authentication (add the Microsoft provider
//! with an existing registration, edit allowed client applications and login parameters, a refused
//! write shows ARM's error, remove). Every change is checked through the Resource Manager and on
//! the app itself; forms without the session's CSRF token, or without a session, change nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use easyauth_entra::directory::demo::{BACKEND_APP_ID, FRONTEND_APP_ID};
use easyauth_platform::client::ArmClient;
use easyauth_platform::platform::{Kind, Options, Platform};
use easyauth_platform::site::Site;
use easyauth_platform::state::PlatformState;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "easyauth-portal-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

async fn start(dir: &Path) -> Platform {
    let echo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/apps/echo_app.py");
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[[apps]]\nname = \"web\"\ncommand = 'exec python3 {} --port \"$PORT\"'\n[apps.app_settings]\nKEEP = \"me\"\n",
            echo.display()
        ),
    )
    .expect("site file");
    let site = Site::load(&dir.join("site.toml")).expect("site");
    let options = Options {
        data_dir: dir.join("data"),
        port: 0,
        scm_port: 0,
        idp_port: 0,
        arm_port: 0,
        portal_port: 0,
    };
    Platform::start(site, &options, Kind::SiteFile)
        .await
        .expect("platform starts")
}

/// A browser: cookies, no automatic redirects (each hop is checked), the local CA.
fn browser(state: &PlatformState) -> reqwest::Client {
    let pem = std::fs::read(&state.ca_file).expect("CA");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA"))
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

fn location(r: &reqwest::Response) -> String {
    let base = r.url().clone();
    let loc = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location from {} ({})", base, r.status()));
    base.join(loc).expect("location").to_string()
}

/// The first form of a page: its absolute action and its hidden fields.
fn form_of(page_url: &str, html: &str) -> (String, Vec<(String, String)>) {
    let start = html
        .find("<form method=\"post\" action=\"")
        .unwrap_or_else(|| panic!("no form in {html}"));
    let rest = &html[start + "<form method=\"post\" action=\"".len()..];
    let action =
        html_escape::decode_html_entities(&rest[..rest.find('"').expect("quote")]).into_owned();
    let form = &rest[..rest.find("</form>").expect("form end")];
    let mut fields = Vec::new();
    for part in form.split("<input type=\"hidden\" name=\"").skip(1) {
        let name = &part[..part.find('"').expect("name")];
        let value = part
            .split("value=\"")
            .nth(1)
            .map(|v| &v[..v.find('"').expect("value")])
            .unwrap_or("");
        fields.push((
            html_escape::decode_html_entities(name).into_owned(),
            html_escape::decode_html_entities(value).into_owned(),
        ));
    }
    let action = url::Url::parse(page_url)
        .expect("url")
        .join(&action)
        .expect("action")
        .to_string();
    (action, fields)
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf in {html}"));
    let rest = &html[at + marker.len()..];
    rest[..rest.find('"').expect("quote")].to_owned()
}

/// Opens `/` and signs in as the demo user, following every hop; returns Home's HTML.
async fn sign_in(b: &reqwest::Client, state: &PlatformState) -> String {
    let demo = state.demo_user.clone().expect("demo user");
    let r = b
        .get(format!("{}/", state.portal_url))
        .send()
        .await
        .expect("portal");
    assert_eq!(r.status(), 303, "not signed in: to the sign-in");
    let r = b.get(location(&r)).send().await.expect("signin");
    assert_eq!(r.status(), 303);
    let authorize = location(&r);
    assert!(
        authorize.starts_with(&format!(
            "{}/{}/oauth2/v2.0/authorize",
            state.idp_url, state.tenant_id
        )),
        "{authorize}"
    );
    let page = b.get(&authorize).send().await.expect("authorize");
    let page_url = page.url().to_string();
    let html = page.text().await.expect("sign-in page");
    let (action, mut fields) = form_of(&page_url, &html);
    fields.push(("login".into(), demo.username.clone()));
    fields.push(("passwd".into(), demo.password.clone()));
    let r = b.post(&action).form(&fields).send().await.expect("sign in");
    assert!(
        r.status().is_redirection(),
        "no consent prompt expected: {}",
        r.status()
    );
    let callback = location(&r);
    assert!(
        callback.starts_with(&format!("{}/signin-oidc?", state.portal_url)),
        "{callback}"
    );
    let r = b.get(&callback).send().await.expect("callback");
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    assert_eq!(location(&r), format!("{}/", state.portal_url));
    let home = b
        .get(format!("{}/", state.portal_url))
        .send()
        .await
        .expect("home");
    assert_eq!(home.status(), 200);
    home.text().await.expect("home html")
}

/// POSTs a portal form and follows the redirect back to its blade; returns the blade's HTML.
async fn submit(b: &reqwest::Client, url: &str, fields: &[(&str, &str)]) -> String {
    let r = b.post(url).form(fields).send().await.expect("post");
    assert_eq!(r.status(), 303, "{url}: {:?}", r.text().await);
    let r = b.get(location(&r)).send().await.expect("blade");
    assert_eq!(r.status(), 200);
    r.text().await.expect("html")
}

#[tokio::test]
async fn the_tutorials_portal_steps_without_javascript() {
    let dir = temp_dir("steps");
    let platform = start(&dir).await;
    let state = platform.state();
    let arm = ArmClient::new(state.clone()).await.expect("signed in");
    let b = browser(&state);
    let home = sign_in(&b, &state).await;
    assert!(home.contains(">web</a>"), "{home}");
    assert!(
        home.contains("alice@"),
        "the signed-in user is shown: {home}"
    );
    assert!(home.contains("name=\"viewport\""), "readable on a phone");
    let path = arm.site_path("web").await.expect("site");
    let group = path
        .split('/')
        .skip_while(|p| !p.eq_ignore_ascii_case("resourceGroups"))
        .nth(1)
        .expect("group")
        .to_owned();
    let blade = format!("{}/resource/{group}/web", state.portal_url);

    // Overview: URL and state; Restart.
    let overview = b
        .get(&blade)
        .send()
        .await
        .expect("overview")
        .text()
        .await
        .expect("html");
    let app_url = state.apps["web"].url.clone();
    assert!(
        overview.contains(&app_url) && overview.contains("Running"),
        "{overview}"
    );
    let csrf = csrf_of(&overview);
    let before = platform.process_id("web");
    let after = submit(
        &b,
        &format!("{blade}/action"),
        &[("csrf", &csrf), ("verb", "restart")],
    )
    .await;
    assert!(after.contains("Successfully restarted web."), "{after}");
    for _ in 0..100 {
        if platform
            .process_id("web")
            .is_some_and(|p| Some(p) != before)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_ne!(platform.process_id("web"), before, "a new process");

    // Log stream: the page frames the raw stream, which is the app's log read over its SCM
    // endpoint with the signed-in person's token.
    let r = b
        .get(format!("{blade}/logstream"))
        .send()
        .await
        .expect("log stream");
    assert_eq!(r.headers()["x-frame-options"], "SAMEORIGIN");
    let html = r.text().await.expect("html");
    assert!(html.contains("<iframe src=\"logstream/raw\""), "{html}");
    let mut raw = b
        .get(format!("{blade}/logstream/raw"))
        .send()
        .await
        .expect("raw stream");
    assert_eq!(raw.status(), 200);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !text.contains("echo app listening") {
        match tokio::time::timeout_at(deadline, raw.chunk()).await {
            Ok(Ok(Some(c))) => text.push_str(&String::from_utf8_lossy(&c)),
            _ => break,
        }
    }
    assert!(
        text.contains("connected to log-streaming service") && text.contains("echo app listening"),
        "{text}"
    );
    drop(raw);
    let r = browser(&state)
        .get(format!("{blade}/logstream/raw"))
        .send()
        .await
        .expect("raw");
    assert_eq!(r.status(), 303, "no session: to the sign-in");

    // Forms without the session's CSRF token, or without a session, change nothing.
    let r = b
        .post(format!("{blade}/environment"))
        .form(&[("csrf", "forged"), ("name", "EVIL"), ("value", "1")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
    let stranger = browser(&state);
    let r = stranger
        .post(format!("{blade}/environment"))
        .form(&[("csrf", csrf.as_str()), ("name", "EVIL"), ("value", "1")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    assert!(
        !arm.appsettings_list("web")
            .await
            .expect("settings")
            .contains_key("EVIL")
    );

    // Environment variables: add, then delete; the other settings stay.
    let env_html = submit(
        &b,
        &format!("{blade}/environment"),
        &[
            ("csrf", &csrf),
            ("name", "BACKEND_URL"),
            ("value", "http://127.0.0.9:8080"),
        ],
    )
    .await;
    assert!(env_html.contains("Saved BACKEND_URL"), "{env_html}");
    let settings = arm.appsettings_list("web").await.expect("settings");
    assert_eq!(
        settings.get("BACKEND_URL").map(String::as_str),
        Some("http://127.0.0.9:8080")
    );
    assert_eq!(settings.get("KEEP").map(String::as_str), Some("me"));
    let env_html = submit(
        &b,
        &format!("{blade}/environment"),
        &[("csrf", &csrf), ("delete", "BACKEND_URL")],
    )
    .await;
    assert!(env_html.contains("Deleted BACKEND_URL"), "{env_html}");
    assert!(
        !arm.appsettings_list("web")
            .await
            .expect("settings")
            .contains_key("BACKEND_URL")
    );

    // Authentication: add the Microsoft provider with an existing registration.
    let auth_html = b
        .get(format!("{blade}/authentication"))
        .send()
        .await
        .expect("auth")
        .text()
        .await
        .expect("html");
    assert!(
        auth_html.contains("Add an identity provider"),
        "{auth_html}"
    );
    let plain = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    assert_eq!(plain.get(&app_url).send().await.expect("app").status(), 200);
    let audience = format!("api://{BACKEND_APP_ID}");
    let auth_html = submit(
        &b,
        &format!("{blade}/authentication"),
        &[
            ("csrf", &csrf),
            ("op", "add"),
            ("provider", "microsoft"),
            ("clientId", BACKEND_APP_ID),
            ("clientSecret", ""),
            ("issuer", &state.issuer),
            ("audiences", &audience),
            ("restrict", "require"),
            ("action", "Return401"),
            ("tokenStore", "on"),
        ],
    )
    .await;
    assert!(
        auth_html.contains("Added the Microsoft identity provider."),
        "{auth_html}"
    );
    let shown = arm.auth_show("web").await.expect("auth");
    let aad = &shown["properties"]["identityProviders"]["azureActiveDirectory"];
    assert_eq!(aad["registration"]["clientId"], BACKEND_APP_ID, "{shown}");
    assert_eq!(aad["validation"]["allowedAudiences"][0], audience.as_str());
    assert_eq!(
        shown["properties"]["globalValidation"]["unauthenticatedClientAction"],
        "Return401"
    );
    assert_eq!(
        plain.get(&app_url).send().await.expect("app").status(),
        401,
        "sign-in is now required"
    );

    // Edit: the front end as the allowed client application, and login parameters.
    let login = format!("scope=openid offline_access api://{BACKEND_APP_ID}/user_impersonation");
    let auth_html = submit(
        &b,
        &format!("{blade}/authentication"),
        &[
            ("csrf", &csrf),
            ("op", "edit"),
            ("audiences", &audience),
            ("clients", FRONTEND_APP_ID),
            ("loginParameters", &login),
            ("restrict", "require"),
            ("action", "Return401"),
        ],
    )
    .await;
    assert!(
        auth_html.contains("Saved the identity provider."),
        "{auth_html}"
    );
    assert!(auth_html.contains(FRONTEND_APP_ID), "{auth_html}");
    let shown = arm.auth_show("web").await.expect("auth");
    let aad = &shown["properties"]["identityProviders"]["azureActiveDirectory"];
    assert_eq!(
        aad["validation"]["defaultAuthorizationPolicy"]["allowedApplications"][0],
        FRONTEND_APP_ID
    );
    assert_eq!(aad["login"]["loginParameters"][0], login.as_str());

    // A write the Resource Manager refuses shows its error, and changes nothing.
    let auth_html = submit(
        &b,
        &format!("{blade}/authentication"),
        &[
            ("csrf", &csrf),
            ("op", "edit"),
            ("audiences", &audience),
            ("clients", FRONTEND_APP_ID),
            ("loginParameters", &login),
            ("restrict", "require"),
            ("action", "Return401"),
            ("unused", "x"),
        ],
    )
    .await;
    assert!(
        !auth_html.contains("class=\"error\""),
        "a valid edit: {auth_html}"
    );
    let settings_before = arm.auth_show("web").await.expect("auth");
    let r = b
        .post(format!("{blade}/authentication"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("op", "add"),
            ("clientId", "x"),
            ("issuer", "not a url"),
        ])
        .send()
        .await
        .expect("post");
    let refused = b
        .get(location(&r))
        .send()
        .await
        .expect("blade")
        .text()
        .await
        .expect("html");
    assert!(refused.contains("class=\"error\""), "{refused}");
    assert_eq!(
        arm.auth_show("web").await.expect("auth"),
        settings_before,
        "nothing changed"
    );

    // Remove: the app serves anonymously again.
    let auth_html = submit(
        &b,
        &format!("{blade}/authentication"),
        &[("csrf", &csrf), ("op", "remove")],
    )
    .await;
    assert!(
        auth_html.contains("Removed the identity provider."),
        "{auth_html}"
    );
    assert_eq!(plain.get(&app_url).send().await.expect("app").status(), 200);

    // Add identity provider -> Create new app registration: made through Microsoft Graph as App
    // Service makes it, and its secret works at the token endpoint.
    let auth_html = submit(
        &b,
        &format!("{blade}/authentication"),
        &[
            ("csrf", &csrf),
            ("op", "add"),
            ("provider", "microsoft"),
            ("type", "new"),
            ("name", "web-registration"),
            ("secretDays", "180"),
            ("restrict", "require"),
            ("action", "Return401"),
            ("tokenStore", "on"),
        ],
    )
    .await;
    assert!(
        auth_html.contains("with the new app registration web-registration"),
        "{auth_html}"
    );
    let shown = arm.auth_show("web").await.expect("auth");
    let aad = &shown["properties"]["identityProviders"]["azureActiveDirectory"];
    let app_id = aad["registration"]["clientId"]
        .as_str()
        .expect("client id")
        .to_owned();
    assert_eq!(
        aad["registration"]["clientSecretSettingName"],
        "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"
    );
    assert_eq!(
        aad["validation"]["allowedAudiences"][0],
        format!("api://{app_id}").as_str()
    );
    let secret = arm.appsettings_list("web").await.expect("settings")["MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"].clone();
    let http = {
        let pem = std::fs::read(&state.ca_file).expect("CA");
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA"))
            .no_proxy()
            .build()
            .expect("client")
    };
    let token_url = format!("{}/{}/oauth2/v2.0/token", state.idp_url, state.tenant_id);
    let token = |client_id: String, secret: String, scope: String| {
        let http = http.clone();
        let token_url = token_url.clone();
        async move {
            let body: serde_json::Value = http
                .post(&token_url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", secret.as_str()),
                    ("scope", scope.as_str()),
                ])
                .send()
                .await
                .expect("token")
                .json()
                .await
                .expect("json");
            body
        }
    };
    let own = token(app_id.clone(), secret, format!("api://{app_id}/.default")).await;
    assert!(
        own["access_token"].is_string(),
        "the stored secret works: {own}"
    );
    let graph = token(
        state.client_id.clone(),
        state.client_secret.clone(),
        "https://graph.microsoft.com/.default".into(),
    )
    .await;
    let graph = graph["access_token"]
        .as_str()
        .expect("graph token")
        .to_owned();
    let registration: serde_json::Value = http
        .get(format!(
            "{}/v1.0/applications(appId='{app_id}')",
            state.idp_url
        ))
        .bearer_auth(&graph)
        .send()
        .await
        .expect("graph")
        .json()
        .await
        .expect("json");
    assert_eq!(
        registration["displayName"], "web-registration",
        "{registration}"
    );
    assert_eq!(
        registration["identifierUris"][0],
        format!("api://{app_id}").as_str()
    );
    assert_eq!(
        registration["web"]["redirectUris"][0],
        format!("{app_url}/.auth/login/aad/callback").as_str()
    );
    assert_eq!(
        registration["api"]["oauth2PermissionScopes"][0]["value"],
        "user_impersonation"
    );
    assert_eq!(plain.get(&app_url).send().await.expect("app").status(), 401);

    // The same portal signs in at localhost too (the registration has both callbacks).
    let localhost = PlatformState {
        portal_url: state.portal_url.replace("127.0.0.1", "localhost"),
        ..state.clone()
    };
    let home = sign_in(&browser(&localhost), &localhost).await;
    assert!(home.contains(">web</a>"), "{home}");
    platform.shutdown().await;
}
