//! The platform with real processes, a real identity provider, a real Resource Manager and real
//! HTTP: app settings reach the app as App Service passes them, auth settings swap without a
//! restart, app settings restart only their app, and bad sites fail with a message that names the
//! place. Changes go through the Resource Manager, signed in as the platform's service principal.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use easyauth_platform::client::{ArmClient, ClientError};
use easyauth_platform::platform::{Kind, Platform};
use easyauth_platform::site::Site;
use serde_json::{Value, json};

mod common;
use common::{echo_app, options, temp_dir};

/// Two command apps running the echo app; each writes its environment to `<dir>/<name>.env`.
fn two_app_site(dir: &Path, api_auth: Option<&str>) -> Site {
    let echo = echo_app();
    let mut text = String::new();
    for name in ["web", "api"] {
        text.push_str(&format!(
            "[[apps]]\nname = \"{name}\"\ncommand = 'env > \"$ENV_FILE\"; exec python3 {} --port \"$PORT\"'\n",
            echo.display()
        ));
        if name == "api"
            && let Some(file) = api_auth
        {
            text.push_str(&format!("auth_settings = \"{file}\"\n"));
        }
        text.push_str(&format!(
            "[apps.app_settings]\nENV_FILE = \"{}/{name}.env\"\nOTHER_URL = \"${{apps.web.url}}\"\n",
            dir.display()
        ));
    }
    std::fs::write(dir.join("site.toml"), &text).expect("site file");
    Site::load(&dir.join("site.toml")).expect("valid site")
}

async fn start(site: Site, dir: &Path) -> Platform {
    Platform::start(site, &options(dir), Kind::SiteFile)
        .await
        .expect("platform starts")
}

async fn arm(platform: &Platform) -> ArmClient {
    ArmClient::new(platform.state()).await.expect("signed in")
}

fn api_error(e: ClientError) -> (u16, String, String) {
    match e {
        ClientError::Api {
            status,
            code,
            message,
        } => (status, code, message),
        other => panic!("not an ARM error: {other}"),
    }
}

fn read_env(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn wait_until<F: FnMut() -> bool>(mut check: F, what: &str) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn url_of(platform: &Platform, app: &str) -> String {
    platform.state().apps[app].url.clone()
}

async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Value, reqwest::header::HeaderMap) {
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

#[tokio::test]
async fn apps_get_port_and_app_settings_as_app_service_sets_them() {
    let dir = temp_dir("env");
    let platform = start(two_app_site(&dir, None), &dir).await;
    let web_url = url_of(&platform, "web");
    let env_file = dir.join("web.env");
    wait_until(
        || read_env(&env_file).contains_key("PORT"),
        "the app's env file",
    )
    .await;
    let env = read_env(&env_file);
    let upstream = &platform.state().apps["web"].upstream;
    assert_eq!(
        Some(env["PORT"].as_str()),
        upstream.rsplit(':').next(),
        "PORT is where the origin forwards to"
    );
    assert_eq!(env["OTHER_URL"], web_url, "placeholders are expanded");
    assert_eq!(env["APPSETTING_OTHER_URL"], web_url);
    assert_eq!(env["WEBSITE_AUTH_ENABLED"], "False");
    assert_eq!(env["APPSETTING_WEBSITE_AUTH_ENABLED"], "False");
    assert_eq!(env["WEBSITE_SITE_NAME"], "web");
    assert!(
        env.contains_key("PATH"),
        "the parent environment is inherited"
    );
    // Each app has its own loopback address, so cookies never cross apps.
    assert!(web_url.starts_with("http://127.0.0.2:"), "{web_url}");
    assert!(url_of(&platform, "api").starts_with("http://127.0.0.3:"));

    // Through the origin; with authentication off the module still strips spoofed identity.
    let (status, echo, _) = get(
        &format!("{web_url}/hello"),
        &[
            ("X-MS-CLIENT-PRINCIPAL-NAME", "mallory"),
            ("x-ms-token-aad-access-token", "x"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(echo["path"], "/hello");
    let headers = echo["headers"].as_object().expect("headers");
    assert!(
        !headers.keys().any(|k| k.starts_with("x-ms-")),
        "client X-MS-* headers reached the app: {headers:?}"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn auth_settings_swap_without_restart_and_bad_ones_change_nothing() {
    let dir = temp_dir("auth");
    let platform = start(two_app_site(&dir, None), &dir).await;
    let api = url_of(&platform, "api");
    wait_until(|| platform.process_id("api").is_some(), "api running").await;
    let pid = platform.process_id("api");
    assert_eq!(get(&format!("{api}/x"), &[]).await.0, 200);

    let backend_id = easyauth_entra::directory::demo::BACKEND_APP_ID;
    let backend = json!({
        "properties": {
            "platform": {"enabled": true},
            "globalValidation": {"requireAuthentication": true, "unauthenticatedClientAction": "Return401"},
            "identityProviders": {"azureActiveDirectory": {
                "registration": {"clientId": backend_id, "openIdIssuer": platform.state().issuer},
                "validation": {"allowedAudiences": [format!("api://{backend_id}")]}
            }}
        }
    });
    let client = arm(&platform).await;
    let resource = client.auth_set("api", &backend).await.expect("auth set");
    let aad = &resource["properties"]["identityProviders"]["azureActiveDirectory"];
    assert_eq!(aad["registration"]["clientId"], backend_id);
    let (status, _, headers) = get(&format!("{api}/x"), &[]).await;
    assert_eq!(status, 401, "the new module serves the next request");
    assert!(
        headers.contains_key("x-easyauth-reason"),
        "up explains refusals"
    );
    assert_eq!(platform.process_id("api"), pid, "the app was not restarted");
    assert_eq!(
        get(&format!("{}/x", url_of(&platform, "web")), &[]).await.0,
        200
    );

    // Wrong shape: refused with the JSON path (ARM's 400); the previous settings stay.
    let bad = json!({"properties": {"globalValidation": {"requireAuthentication": "often"}}});
    let (status, code, message) =
        api_error(client.auth_set("api", &bad).await.expect_err("invalid"));
    assert_eq!((status, code.as_str()), (400, "BadRequest"), "{message}");
    assert!(
        message.contains("globalValidation.requireAuthentication"),
        "{message}"
    );
    // A module that cannot be built (no issuer) changes nothing either.
    let unbuildable = json!({"properties": {"platform": {"enabled": true},
        "identityProviders": {"azureActiveDirectory": {"enabled": true, "registration": {"clientId": backend_id}}}}});
    let (status, _, message) = api_error(
        client
            .auth_set("api", &unbuildable)
            .await
            .expect_err("no issuer"),
    );
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("openIdIssuer"), "{message}");
    assert_eq!(get(&format!("{api}/x"), &[]).await.0, 401);
    let shown = client
        .auth_show("API")
        .await
        .expect("names are case-insensitive");
    assert_eq!(shown["name"], "authsettingsV2");
    assert_eq!(
        shown["properties"]["globalValidation"]["unauthenticatedClientAction"],
        "Return401"
    );
    let (status, _, message) = api_error(client.auth_show("nope").await.expect_err("no such app"));
    assert_eq!(status, 404);
    assert_eq!(message, "no web app named \"nope\" (web apps: api, web)");
    platform.shutdown().await;
}

#[tokio::test]
async fn app_settings_restart_only_their_app() {
    let dir = temp_dir("settings");
    let platform = start(two_app_site(&dir, None), &dir).await;
    wait_until(
        || platform.process_id("web").is_some() && platform.process_id("api").is_some(),
        "both apps running",
    )
    .await;
    let (web_pid, api_pid) = (platform.process_id("web"), platform.process_id("api"));
    let changes = BTreeMap::from([
        ("GREETING".to_owned(), Some("hello world".to_owned())),
        ("OTHER_URL".to_owned(), None),
    ]);
    let client = arm(&platform).await;
    let after = client.appsettings_set("web", &changes).await.expect("set");
    assert_eq!(
        after.get("GREETING").map(String::as_str),
        Some("hello world")
    );
    assert!(!after.contains_key("OTHER_URL"), "null deletes");
    wait_until(
        || {
            read_env(&dir.join("web.env"))
                .get("GREETING")
                .map(String::as_str)
                == Some("hello world")
        },
        "the restarted app's environment",
    )
    .await;
    let env = read_env(&dir.join("web.env"));
    assert_eq!(env["APPSETTING_GREETING"], "hello world");
    assert!(!env.contains_key("OTHER_URL"));
    assert_ne!(platform.process_id("web"), web_pid, "web was restarted");
    assert_eq!(platform.process_id("api"), api_pid, "api was not");
    assert_eq!(
        get(&format!("{}/", url_of(&platform, "web")), &[]).await.0,
        200
    );
    assert_eq!(
        client.appsettings_list("web").await.expect("list"),
        after,
        "list shows what set returned"
    );
    let (status, _, message) = api_error(
        client
            .appsettings_set(
                "web",
                &BTreeMap::from([("A=B".to_owned(), Some("1".to_owned()))]),
            )
            .await
            .expect_err("bad name"),
    );
    assert_eq!(status, 400);
    assert!(message.contains("must not contain '='"), "{message}");
    platform.shutdown().await;
}

#[tokio::test]
async fn start_up_errors_name_the_app_and_the_problem() {
    let dir = temp_dir("errors");
    std::fs::write(
        dir.join("site.toml"),
        "[[apps]]\nname = \"a\"\nupstream = \"http://127.0.0.1:9\"\n[apps.app_settings]\nX = \"${apps.b.url}\"\n",
    )
    .expect("write");
    let site = Site::load(&dir.join("site.toml")).expect("parses");
    let options = options(&dir);
    let err = Platform::start(site, &options, Kind::SiteFile)
        .await
        .expect_err("unknown placeholder");
    assert!(
        err.to_string()
            .starts_with("app a: app setting X: unknown placeholder ${apps.b.url}"),
        "{err}"
    );

    std::fs::write(
        dir.join("a.auth.json"),
        r#"{"globalValidation": {"unauthenticatedClientAction": "Sometimes"}}"#,
    )
    .expect("write");
    std::fs::write(
        dir.join("site.toml"),
        "[[apps]]\nname = \"a\"\nupstream = \"http://127.0.0.1:9\"\nauth_settings = \"a.auth.json\"\n",
    )
    .expect("write");
    let site = Site::load(&dir.join("site.toml")).expect("parses");
    let err = Platform::start(site, &options, Kind::SiteFile)
        .await
        .expect_err("bad auth settings");
    let text = err.to_string();
    assert!(
        text.contains("a.auth.json") && text.contains("unauthenticatedClientAction"),
        "{text}"
    );

    // The origin's address is taken: say which app and what to do.
    let taken = std::net::TcpListener::bind("127.0.0.2:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    std::fs::write(
        dir.join("site.toml"),
        format!("[[apps]]\nname = \"a\"\nupstream = \"http://127.0.0.1:9\"\nport = {port}\n"),
    )
    .expect("write");
    let site = Site::load(&dir.join("site.toml")).expect("parses");
    let err = Platform::start(site, &options, Kind::SiteFile)
        .await
        .expect_err("port taken");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("app a: cannot listen on 127.0.0.2:{port}"))
            && text.contains("--port 0"),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn platform_json_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("state");
    let state = easyauth_platform::state::PlatformState {
        pid: 1,
        arm_url: "https://127.0.0.1:1".into(),
        portal_url: "https://127.0.0.1:3".into(),
        subscription_id: "s".into(),
        client_id: "c".into(),
        client_secret: "the platform's secret".into(),
        idp_url: "https://127.0.0.1:2".into(),
        tenant_id: "t".into(),
        issuer: "https://127.0.0.1:2/t/v2.0".into(),
        ca_file: dir.join("ca.pem"),
        apps: BTreeMap::new(),
        demo_user: Some(easyauth_platform::state::DemoUser {
            username: "alice".into(),
            password: "secret".into(),
        }),
    };
    state.write(&dir).expect("write");
    let mode = std::fs::metadata(dir.join("platform.json"))
        .expect("written")
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "platform.json holds the demo password and the platform's secret: {mode:o}"
    );
    assert_eq!(
        easyauth_platform::state::PlatformState::read(&dir).expect("read"),
        state
    );
}

/// Log lines captured from the platform (the test runtime is single-threaded, so a thread-local
/// subscriber sees the origin's tasks too).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

#[tokio::test]
async fn an_app_that_does_not_answer_is_explained_once() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = temp_dir("unreachable");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    std::fs::write(
        dir.join("site.toml"),
        format!("[[apps]]\nname = \"gone\"\nupstream = \"http://127.0.0.1:{closed}\"\n"),
    )
    .expect("write");
    let platform = start(Site::load(&dir.join("site.toml")).expect("site"), &dir).await;
    let url = url_of(&platform, "gone");
    for _ in 0..3 {
        assert_eq!(get(&format!("{url}/x"), &[]).await.0, 502);
    }
    let log = captured.text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("answered 502")).collect();
    assert_eq!(
        lines.len(),
        1,
        "one explanation, not one per request:\n{log}"
    );
    assert!(
        lines[0].contains(&format!("nothing answers at http://127.0.0.1:{closed}"))
            && lines[0].contains("$PORT"),
        "{}",
        lines[0]
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn show_and_restart_like_az_webapp() {
    let dir = temp_dir("restart");
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[[apps]]\nname = \"web\"\ncommand = 'exec python3 {} --port \"$PORT\"'\n[[apps]]\nname = \"ext\"\nupstream = \"http://127.0.0.1:9\"\n",
            echo_app().display()
        ),
    )
    .expect("write");
    let platform = start(Site::load(&dir.join("site.toml")).expect("site"), &dir).await;
    wait_until(|| platform.process_id("web").is_some(), "web running").await;
    let before = platform.process_id("web");
    let client = arm(&platform).await;
    let shown = client.show("web").await.expect("show");
    assert_eq!(shown["properties"]["state"], "Running", "{shown}");
    let detail = &shown["properties"]["easyauth"];
    assert_eq!(detail["process"]["pid"], before.expect("pid"));
    assert_eq!(detail["url"], url_of(&platform, "web"));
    assert_eq!(
        shown["properties"]["defaultHostName"]
            .as_str()
            .map(|h| format!("http://{h}")),
        Some(url_of(&platform, "web"))
    );

    client.restart("web").await.expect("restart");
    wait_until(|| platform.process_id("web").is_some(), "web running again").await;
    assert_ne!(platform.process_id("web"), before, "a new process");
    assert_eq!(
        get(&format!("{}/", url_of(&platform, "web")), &[]).await.0,
        200
    );
    // An upstream app has no process here: a restart changes nothing and is not an error.
    client
        .restart("ext")
        .await
        .expect("restart of an upstream app");
    assert_eq!(
        client.show("ext").await.expect("show")["properties"]["easyauth"]["process"],
        Value::Null
    );
    platform.shutdown().await;
}
