//! The local portal over real HTTPS, as a browser without JavaScript uses it: sign in through the
//! identity provider's pages (no consent prompt), the web apps on Home, a web app's Overview
//! (restart), Environment variables (add, delete) and Authentication (add the Microsoft provider
//! with an existing registration, edit allowed client applications and login parameters, a refused
//! write shows ARM's error, remove). Every change is checked through the Resource Manager and on
//! the app itself; forms without the session's CSRF token, or without a session, change nothing.

use std::path::Path;
use std::time::Duration;

use easyauth_entra::directory::demo::{BACKEND_APP_ID, FRONTEND_APP_ID};
use easyauth_platform::client::ArmClient;
use easyauth_platform::platform::{Kind, Platform};
use easyauth_platform::site::Site;
use easyauth_platform::state::PlatformState;
use easyauth_testkit::{Form, form_of};

mod common;
use common::{client_credentials, echo_app, https, options, sp_token, temp_dir};

async fn start(dir: &Path) -> Platform {
    let echo = echo_app();
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[[apps]]\nname = \"web\"\ncommand = 'exec python3 {} --port \"$PORT\"'\n[apps.app_settings]\nKEEP = \"me\"\n",
            echo.display()
        ),
    )
    .expect("site file");
    let site = Site::load(&dir.join("site.toml")).expect("site");
    Platform::start(site, &options(dir), Kind::SiteFile)
        .await
        .expect("platform starts")
}

/// A browser: cookies, no automatic redirects (each hop is checked), the local CA.
fn browser(state: &PlatformState) -> reqwest::Client {
    let pem = std::fs::read(&state.ca_file).expect("CA");
    easyauth_testkit::Browser::new(&pem).client().clone()
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

fn csrf_of(html: &str) -> String {
    easyauth_testkit::html_hidden(html, "csrf").unwrap_or_else(|| panic!("no csrf in {html}"))
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
    let Form { action, mut fields } = form_of(&page_url, &html);
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

    // Resource groups -> the group -> the web app.
    assert!(
        home.contains(&format!("href=\"/resource/{group}\"")),
        "{home}"
    );
    let group_html = b
        .get(format!("{}/resource/{group}", state.portal_url))
        .send()
        .await
        .expect("group")
        .text()
        .await
        .expect("html");
    assert!(
        group_html.contains(&format!("href=\"/resource/{group}/web\""))
            && group_html.contains("App Service plan"),
        "{group_html}"
    );

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
    let own = client_credentials(
        &state,
        &app_id,
        &secret,
        &format!("api://{app_id}/.default"),
    )
    .await;
    assert!(
        own["access_token"].is_string(),
        "the stored secret works: {own}"
    );
    let graph = sp_token(&state, "https://graph.microsoft.com/.default").await;
    let registration: serde_json::Value = https(&state)
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
    // The blade links to the registration's own blades.
    let link = format!("/registrations/app/{app_id}");
    assert!(
        auth_html.contains(&format!("href=\"{link}\"")),
        "{auth_html}"
    );
    let r = b
        .get(format!("{}{link}", state.portal_url))
        .send()
        .await
        .expect("link");
    assert_eq!(r.status(), 303);
    let overview = b.get(location(&r)).send().await.expect("overview");
    assert!(overview.url().path().starts_with("/registrations/"));
    let overview = overview.text().await.expect("html");
    assert!(
        overview.contains(&app_id) && overview.contains("web-registration"),
        "{overview}"
    );

    // The same portal signs in at localhost too (the registration has both callbacks).
    let localhost = PlatformState {
        portal_url: state.portal_url.replace("127.0.0.1", "localhost"),
        ..state.clone()
    };
    let home = sign_in(&browser(&localhost), &localhost).await;
    assert!(home.contains(">web</a>"), "{home}");
    platform.shutdown().await;
}

/// Microsoft Graph with the platform's service principal (client credentials).
struct Graph {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Graph {
    async fn new(state: &PlatformState) -> Graph {
        let http = https(state);
        let token = sp_token(state, "https://graph.microsoft.com/.default").await;
        Graph {
            http,
            base: format!("{}/v1.0", state.idp_url),
            token,
        }
    }

    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(format!("{}/{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("graph");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    async fn create_app(&self, name: &str) -> serde_json::Value {
        let r = self
            .http
            .post(format!("{}/applications", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "displayName": name }))
            .send()
            .await
            .expect("graph");
        assert_eq!(r.status(), 201);
        r.json().await.expect("json")
    }
}

#[tokio::test]
async fn app_registrations_blades() {
    let dir = temp_dir("registrations");
    let platform = start(&dir).await;
    let state = platform.state();
    let graph = Graph::new(&state).await;
    let front = graph.create_app("front").await;
    let back_app = graph.create_app("back").await;
    let (front_id, front_app_id) = (
        front["id"].as_str().expect("id").to_owned(),
        front["appId"].as_str().expect("appId").to_owned(),
    );
    let (back_id, back_app_id) = (
        back_app["id"].as_str().expect("id").to_owned(),
        back_app["appId"].as_str().expect("appId").to_owned(),
    );
    let b = browser(&state);
    let home = sign_in(&b, &state).await;
    assert!(
        home.contains("<a href=\"/registrations\">App registrations</a>"),
        "{home}"
    );
    let portal = state.portal_url.clone();
    let get = |path: String| {
        let b = b.clone();
        let url = format!("{portal}{path}");
        async move {
            let r = b.get(&url).send().await.expect("get");
            assert_eq!(r.status(), 200, "{url}");
            r.text().await.expect("html")
        }
    };

    // The list and an Overview.
    let listing = get("/registrations".into()).await;
    assert!(
        listing.contains(&format!("<a href=\"/registrations/{front_id}\">front</a>"))
            && listing.contains(&back_app_id),
        "{listing}"
    );
    let overview = get(format!("/registrations/{back_id}")).await;
    assert!(
        overview.contains(&back_app_id)
            && overview.contains(&back_id)
            && overview.contains(&state.tenant_id)
            && overview.contains("Directory (tenant) ID"),
        "{overview}"
    );
    let csrf = csrf_of(&overview);

    // Forms without the session's CSRF token change nothing.
    let expose = format!("{portal}/registrations/{back_id}/expose");
    for fields in [
        vec![("identifierUri", "api://evil")],
        vec![("csrf", "forged"), ("identifierUri", "api://evil")],
    ] {
        let r = b.post(&expose).form(&fields).send().await.expect("post");
        assert_eq!(r.status(), 403);
    }
    let (_, back_now) = graph.get(&format!("applications/{back_id}")).await;
    assert_eq!(
        back_now["identifierUris"],
        serde_json::json!([]),
        "{back_now}"
    );

    // Expose an API on back: Set the Application ID URI, Add a scope.
    let page = get(format!("/registrations/{back_id}/expose")).await;
    assert!(
        page.contains(&format!("value=\"api://{back_app_id}\"")),
        "the default Application ID URI is proposed: {page}"
    );
    let uri = format!("api://{back_app_id}");
    let html = submit(&b, &expose, &[("csrf", &csrf), ("identifierUri", &uri)]).await;
    assert!(html.contains("Set the Application ID URI"), "{html}");
    let scope = [
        ("csrf", csrf.as_str()),
        ("op", "scope"),
        ("value", "user_impersonation"),
        ("type", "User"),
        ("adminName", "Access back"),
        ("adminDescription", "Access back as the user"),
        ("userName", "Access back"),
        ("userDescription", "Access back for you"),
        ("enabled", "1"),
    ];
    let html = submit(&b, &expose, &scope).await;
    assert!(
        html.contains("Added the scope user_impersonation")
            && html.contains(&format!("{uri}/user_impersonation"))
            && html.contains("Admins and users"),
        "{html}"
    );
    let html = submit(&b, &expose, &scope).await;
    assert!(
        html.contains("class=\"error\">(") && !html.contains("Added the scope"),
        "Graph's refusal of a duplicate scope is shown: {html}"
    );
    let html = submit(
        &b,
        &expose,
        &[("csrf", &csrf), ("identifierUri", "not a uri")],
    )
    .await;
    assert!(
        html.contains("class=\"error\">(") && html.contains("identifierUris"),
        "Graph's refusal of a bad identifier URI is shown: {html}"
    );
    let (_, back_now) = graph.get(&format!("applications/{back_id}")).await;
    let scopes = back_now["api"]["oauth2PermissionScopes"]
        .as_array()
        .expect("scopes")
        .clone();
    assert_eq!(scopes.len(), 1, "{back_now}");
    assert_eq!(back_now["identifierUris"][0], uri.as_str());
    let scope_id = scopes[0]["id"].as_str().expect("scope id").to_owned();
    assert_eq!(scopes[0]["type"], "User");

    // Authorized client applications: front.
    let html = submit(
        &b,
        &expose,
        &[
            ("csrf", &csrf),
            ("op", "authorize"),
            ("clientId", &front_app_id),
            ("scope", &scope_id),
        ],
    )
    .await;
    assert!(html.contains("Authorized the client application"), "{html}");
    let (_, back_now) = graph.get(&format!("applications/{back_id}")).await;
    assert_eq!(
        back_now["api"]["preAuthorizedApplications"],
        serde_json::json!([{"appId": front_app_id, "delegatedPermissionIds": [scope_id]}])
    );

    // Certificates & secrets on front: the new secret is shown once, on the answer to the POST.
    let credentials = format!("{portal}/registrations/{front_id}/credentials");
    let r = b
        .post(&credentials)
        .form(&[
            ("csrf", csrf.as_str()),
            ("description", "portal test"),
            ("expires", "180"),
        ])
        .send()
        .await
        .expect("new secret");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.expect("html");
    let marker = "<code id=\"secret-value\">";
    let at = html.find(marker).unwrap_or_else(|| panic!("{html}")) + marker.len();
    let secret = html[at..at + html[at..].find('<').expect("end")].to_owned();
    assert!(secret.len() > 20, "{secret}");
    let (_, front_now) = graph.get(&format!("applications/{front_id}")).await;
    let key_id = front_now["passwordCredentials"][0]["keyId"]
        .as_str()
        .expect("keyId")
        .to_owned();
    assert_eq!(
        front_now["passwordCredentials"][0]["displayName"],
        "portal test"
    );
    let again = get(format!("/registrations/{front_id}/credentials")).await;
    assert!(
        again.contains(&key_id) && !again.contains(&secret),
        "listed, its value not shown again: {again}"
    );

    // API permissions on front: Add a permission → My APIs → back → user_impersonation.
    let add = get(format!("/registrations/{front_id}/permissions/add")).await;
    assert!(
        add.contains("Microsoft Graph") && add.contains("My APIs"),
        "{add}"
    );
    let mine = get(format!("/registrations/{front_id}/permissions/add?tab=my")).await;
    assert!(
        mine.contains(">back</a>") && !mine.contains(&format!("api={front_app_id}")),
        "the apps that expose scopes: {mine}"
    );
    let pick = get(format!(
        "/registrations/{front_id}/permissions/add?tab=my&api={back_app_id}"
    ))
    .await;
    assert!(
        pick.contains(&format!("name=\"scope\" value=\"{scope_id}\""))
            && pick.contains("Delegated permissions"),
        "{pick}"
    );
    let permissions = format!("{portal}/registrations/{front_id}/permissions");
    let html = submit(
        &b,
        &permissions,
        &[
            ("csrf", &csrf),
            ("op", "add"),
            ("api", &back_app_id),
            ("scope", &scope_id),
        ],
    )
    .await;
    assert!(
        html.contains("Added the permissions") && html.contains("user_impersonation"),
        "{html}"
    );
    let html = submit(&b, &permissions, &[("csrf", &csrf), ("op", "grant")]).await;
    assert!(
        html.contains("Granted admin consent for") && html.contains("Granted for "),
        "{html}"
    );
    let (_, front_now) = graph.get(&format!("applications/{front_id}")).await;
    assert_eq!(
        front_now["requiredResourceAccess"],
        serde_json::json!([{"resourceAppId": back_app_id, "resourceAccess": [{"id": scope_id, "type": "Scope"}]}])
    );
    let (_, sps) = graph
        .get(&format!(
            "servicePrincipals?$filter=appId%20eq%20'{front_app_id}'"
        ))
        .await;
    let front_sp = sps["value"][0]["id"]
        .as_str()
        .expect("front's SP")
        .to_owned();
    let (_, grants) = graph
        .get(&format!(
            "oauth2PermissionGrants?$filter=clientId%20eq%20'{front_sp}'"
        ))
        .await;
    let grants = grants["value"].as_array().expect("grants").clone();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0]["consentType"], "AllPrincipals");
    assert_eq!(grants[0]["scope"], "user_impersonation");
    let shown = get(format!("/registrations/{front_id}/permissions")).await;
    assert!(
        shown.contains("user_impersonation")
            && shown.contains("Delegated")
            && shown.contains("Granted for "),
        "{shown}"
    );
    // The secret shown once works at the token endpoint (front has a service principal now).
    let token = client_credentials(
        &state,
        &front_app_id,
        &secret,
        "https://graph.microsoft.com/.default",
    )
    .await;
    assert!(token["access_token"].is_string(), "{token}");

    // Microsoft APIs → Microsoft Graph → User.Read, then Remove permission.
    let pick = get(format!(
        "/registrations/{front_id}/permissions/add?tab=microsoft&api=00000003-0000-0000-c000-000000000000"
    ))
    .await;
    let marker = "name=\"scope\" value=\"";
    let user_read = pick
        .split(marker)
        .skip(1)
        .find(|part| part.contains("> User.Read "))
        .map(|part| part[..part.find('"').expect("quote")].to_owned())
        .unwrap_or_else(|| panic!("User.Read offered: {pick}"));
    let html = submit(
        &b,
        &permissions,
        &[
            ("csrf", &csrf),
            ("op", "add"),
            ("api", "00000003-0000-0000-c000-000000000000"),
            ("scope", &user_read),
        ],
    )
    .await;
    assert!(
        html.contains("Microsoft Graph") && html.contains("User.Read"),
        "{html}"
    );
    let html = submit(
        &b,
        &permissions,
        &[
            ("csrf", &csrf),
            ("op", "remove"),
            ("api", "00000003-0000-0000-c000-000000000000"),
            ("permission", &user_read),
        ],
    )
    .await;
    assert!(html.contains("Removed the permission"), "{html}");
    let (_, front_now) = graph.get(&format!("applications/{front_id}")).await;
    assert_eq!(
        front_now["requiredResourceAccess"].as_array().map(Vec::len),
        Some(1),
        "{front_now}"
    );

    // Remove the authorized client application from back.
    let html = submit(
        &b,
        &expose,
        &[
            ("csrf", &csrf),
            ("op", "unauthorize"),
            ("appId", &front_app_id),
        ],
    )
    .await;
    assert!(html.contains("Removed the client application"), "{html}");
    let (_, back_now) = graph.get(&format!("applications/{back_id}")).await;
    assert_eq!(
        back_now["api"]["preAuthorizedApplications"],
        serde_json::json!([])
    );

    // Authentication on front: add a redirect URI; a plain-http one is refused with Graph's error.
    let authentication = format!("{portal}/registrations/{front_id}/authentication");
    let html = submit(
        &b,
        &authentication,
        &[("csrf", &csrf), ("add", "https://front.example.com/cb")],
    )
    .await;
    assert!(
        html.contains("Added https://front.example.com/cb"),
        "{html}"
    );
    let html = submit(
        &b,
        &authentication,
        &[("csrf", &csrf), ("add", "http://example.com/cb")],
    )
    .await;
    assert!(html.contains("class=\"error\">("), "{html}");
    let (_, front_now) = graph.get(&format!("applications/{front_id}")).await;
    assert_eq!(
        front_now["web"]["redirectUris"],
        serde_json::json!(["https://front.example.com/cb"])
    );

    let html = submit(
        &b,
        &authentication,
        &[("csrf", &csrf), ("implicit", "1"), ("idTokens", "1")],
    )
    .await;
    assert!(
        html.contains("ID tokens on.") && html.contains(" checked>"),
        "{html}"
    );
    let html = submit(
        &b,
        &authentication,
        &[("csrf", &csrf), ("remove", "https://front.example.com/cb")],
    )
    .await;
    assert!(
        html.contains("Removed https://front.example.com/cb"),
        "{html}"
    );
    let (_, front_now) = graph.get(&format!("applications/{front_id}")).await;
    assert_eq!(front_now["web"]["redirectUris"], serde_json::json!([]));
    assert_eq!(
        front_now["web"]["implicitGrantSettings"]["enableIdTokenIssuance"],
        true
    );

    // A form without a session changes nothing.
    let r = browser(&state)
        .post(&authentication)
        .form(&[
            ("csrf", csrf.as_str()),
            ("add", "https://evil.example.com/cb"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);

    // Delete the secret, then the registration.
    let html = submit(&b, &credentials, &[("csrf", &csrf), ("remove", &key_id)]).await;
    assert!(html.contains("Deleted the client secret"), "{html}");
    let (_, front_now) = graph.get(&format!("applications/{front_id}")).await;
    assert_eq!(front_now["passwordCredentials"], serde_json::json!([]));
    let html = submit(
        &b,
        &format!("{portal}/registrations/{back_id}"),
        &[("csrf", &csrf), ("delete", "yes")],
    )
    .await;
    assert!(
        html.contains("Deleted back.") && !html.contains(">back</a>"),
        "{html}"
    );
    let (status, _) = graph.get(&format!("applications/{back_id}")).await;
    assert_eq!(status, 404);
    platform.shutdown().await;
}
