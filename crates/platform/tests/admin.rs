//! The admin API over a real loopback listener, driven by `AdminClient` and by raw HTTP for what
//! the client never sends. The `Control` here is an in-memory fake of the platform side.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use easyauth_platform::admin::{self, AdminToken, MAX_BODY};
use easyauth_platform::client::{AdminClient, ClientError};
use easyauth_platform::control::{AuthSetOutcome, Control, ControlError};
use easyauth_platform::state::{PlatformState, TOKEN_FILE};
use serde_json::{Value, json};

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[derive(Debug, Default)]
struct FakeApp {
    auth: Value,
    settings: BTreeMap<String, String>,
    restarts: u32,
}

/// Apps `frontend` and `backend`, kept in memory.
#[derive(Debug)]
struct FakeControl {
    apps: Mutex<BTreeMap<String, FakeApp>>,
    order: Vec<String>,
}

impl FakeControl {
    fn new() -> FakeControl {
        let mut apps = BTreeMap::new();
        for name in ["frontend", "backend"] {
            apps.insert(
                name.to_owned(),
                FakeApp {
                    auth: json!({"platform": {"enabled": false}}),
                    settings: BTreeMap::from([("WEBSITE_SITE_NAME".into(), name.into())]),
                    restarts: 0,
                },
            );
        }
        FakeControl {
            apps: Mutex::new(apps),
            order: vec!["frontend".into(), "backend".into()],
        }
    }

    fn with_app<T>(
        &self,
        app: &str,
        f: impl FnOnce(&mut FakeApp) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let mut apps = self.apps.lock().unwrap();
        match apps.get_mut(app) {
            Some(a) => f(a),
            None => Err(ControlError::NoSuchApp {
                name: app.to_owned(),
                known: self.order.clone(),
            }),
        }
    }

    fn resource(app: &str, properties: &Value) -> Value {
        json!({
            "id": format!("/subscriptions/local/resourceGroups/local/providers/Microsoft.Web/sites/{app}/config/authsettingsV2"),
            "name": "authsettingsV2",
            "type": "Microsoft.Web/sites/config",
            "properties": properties,
        })
    }
}

#[async_trait::async_trait]
impl Control for FakeControl {
    fn app_names(&self) -> Vec<String> {
        self.order.clone()
    }

    async fn show(&self, app: &str) -> Result<Value, ControlError> {
        self.with_app(app, |a| {
            Ok(json!({"name": app, "state": "Running", "process": {"restarts": a.restarts}}))
        })
    }

    async fn restart(&self, app: &str) -> Result<(), ControlError> {
        if app == "backend" {
            return Err(ControlError::Invalid(
                "backend is an upstream URL; easyauth does not run it".to_owned(),
            ));
        }
        self.with_app(app, |a| {
            a.restarts += 1;
            Ok(())
        })
    }

    async fn auth_show(&self, app: &str) -> Result<Value, ControlError> {
        self.with_app(app, |a| Ok(FakeControl::resource(app, &a.auth)))
    }

    async fn auth_set(&self, app: &str, body: Value) -> Result<AuthSetOutcome, ControlError> {
        self.with_app(app, |a| {
            let properties = body.get("properties").cloned().unwrap_or(body);
            if properties.get("platform").is_none() {
                return Err(ControlError::Invalid(
                    "properties.platform: missing".to_owned(),
                ));
            }
            if properties.pointer("/platform/fail") == Some(&Value::Bool(true)) {
                return Err(ControlError::Failed(
                    "the module could not be built; the previous settings stay".to_owned(),
                ));
            }
            let mut warnings = Vec::new();
            if properties.get("identityProviders").is_none() {
                warnings.push("no identity provider is configured".to_owned());
            }
            a.auth = properties;
            Ok(AuthSetOutcome {
                resource: FakeControl::resource(app, &a.auth),
                warnings,
            })
        })
    }

    async fn appsettings_list(&self, app: &str) -> Result<BTreeMap<String, String>, ControlError> {
        self.with_app(app, |a| Ok(a.settings.clone()))
    }

    async fn appsettings_set(
        &self,
        app: &str,
        changes: BTreeMap<String, Option<String>>,
    ) -> Result<BTreeMap<String, String>, ControlError> {
        self.with_app(app, |a| {
            for (k, v) in changes {
                match v {
                    Some(v) => a.settings.insert(k, v),
                    None => a.settings.remove(&k),
                };
            }
            Ok(a.settings.clone())
        })
    }
}

struct Server {
    url: String,
    port: u16,
}

async fn serve() -> Server {
    serve_with(AdminToken::from(TOKEN)).await
}

async fn serve_with(token: AdminToken) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = admin::router(Arc::new(FakeControl::new()), token);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Server {
        url: format!("http://127.0.0.1:{port}"),
        port,
    }
}

fn client(server: &Server) -> AdminClient {
    AdminClient::new(&server.url, AdminToken::from(TOKEN)).unwrap()
}

fn raw() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Status, headers and JSON body.
async fn answer(response: reqwest::Response) -> (u16, reqwest::header::HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("content-type").map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "status {status}"
    );
    let body = response.json().await.unwrap();
    (status, headers, body)
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap()
}

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap()
}

fn api_error(e: ClientError) -> (u16, String, String) {
    match e {
        ClientError::Api {
            status,
            code,
            message,
        } => (status, code, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "easyauth-admin-test-{name}-{}",
        uuid::Uuid::new_v4()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn lists_apps_in_site_order() {
    let server = serve().await;
    assert_eq!(
        client(&server).apps().await.unwrap(),
        ["frontend", "backend"]
    );
    let response = raw()
        .get(format!("{}/apps", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"value": ["frontend", "backend"]}));
}

#[tokio::test]
async fn auth_show_and_set_round_trip() {
    let server = serve().await;
    let client = client(&server);
    let shown = client.auth_show("frontend").await.unwrap();
    assert_eq!(shown["name"], "authsettingsV2");
    assert_eq!(shown["properties"]["platform"]["enabled"], false);

    let outcome = client
        .auth_set(
            "frontend",
            json!({"properties": {"platform": {"enabled": true}}}),
        )
        .await
        .unwrap();
    assert_eq!(outcome.resource["properties"]["platform"]["enabled"], true);
    assert_eq!(outcome.warnings, ["no identity provider is configured"]);
    let shown = client.auth_show("frontend").await.unwrap();
    assert_eq!(shown["properties"]["platform"]["enabled"], true);
    // The other app is untouched.
    let other = client.auth_show("backend").await.unwrap();
    assert_eq!(other["properties"]["platform"]["enabled"], false);
}

#[tokio::test]
async fn auth_set_invalid_is_400_and_failed_is_500() {
    let server = serve().await;
    let client = client(&server);
    let (status, code, message) = api_error(
        client
            .auth_set("frontend", json!({"properties": {"globalValidation": {}}}))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (400, "BadRequest"));
    assert_eq!(message, "properties.platform: missing");

    let (status, code, message) = api_error(
        client
            .auth_set("frontend", json!({"platform": {"fail": true}}))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (500, "OperationFailed"));
    assert!(message.contains("previous settings stay"), "{message}");

    // A body that is JSON but not an object never reaches the control.
    let (status, code, message) = api_error(
        client
            .auth_set("frontend", json!([1, 2]))
            .await
            .unwrap_err(),
    );
    assert_eq!((status, code.as_str()), (400, "BadRequest"));
    assert!(
        message.starts_with("$: expected a JSON object"),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_app_is_404_listing_the_apps() {
    let server = serve().await;
    let client = client(&server);
    let (status, code, message) = api_error(client.auth_show("nope").await.unwrap_err());
    assert_eq!((status, code.as_str()), (404, "ResourceNotFound"));
    assert_eq!(
        message,
        "no app named \"nope\" in this site (apps: frontend, backend)"
    );
    let e = client.appsettings_list("nope").await.unwrap_err();
    assert!(e.to_string().contains("apps: frontend, backend"), "{e}");
}

#[tokio::test]
async fn app_names_are_percent_encoded() {
    let server = serve().await;
    let client = client(&server);
    let (status, _, message) = api_error(client.auth_show("a b/c?d#e%").await.unwrap_err());
    assert_eq!(status, 404);
    assert!(message.contains("\"a b/c?d#e%\""), "{message}");
    assert!(matches!(
        client.auth_show("..").await.unwrap_err(),
        ClientError::InvalidAppName(_)
    ));
}

#[tokio::test]
async fn appsettings_set_list_and_delete_via_null() {
    let server = serve().await;
    let client = client(&server);
    let after = client
        .appsettings_set(
            "backend",
            BTreeMap::from([
                ("A".to_owned(), Some("1".to_owned())),
                ("EMPTY".to_owned(), Some(String::new())),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(after.get("A").map(String::as_str), Some("1"));
    assert_eq!(after.get("EMPTY").map(String::as_str), Some(""));
    assert_eq!(client.appsettings_list("backend").await.unwrap(), after);

    let after = client
        .appsettings_set("backend", BTreeMap::from([("A".to_owned(), None)]))
        .await
        .unwrap();
    assert!(!after.contains_key("A"));
    assert!(after.contains_key("EMPTY"));

    // The same over raw HTTP, in the wire shape.
    let response = raw()
        .patch(format!("{}/apps/backend/config/appsettings", server.url))
        .bearer_auth(TOKEN)
        .json(&json!({"properties": {"EMPTY": null, "B": "2"}}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"properties": {"B": "2", "WEBSITE_SITE_NAME": "backend"}})
    );
    let response = raw()
        .get(format!("{}/apps/backend/config/appsettings", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (status, _, listed) = answer(response).await;
    assert_eq!((status, listed), (200, body));
}

async fn patch_settings(server: &Server, body: &str) -> (u16, Value) {
    let response = raw()
        .patch(format!("{}/apps/backend/config/appsettings", server.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    (status, body)
}

#[tokio::test]
async fn invalid_json_is_400_with_the_path_and_position() {
    let server = serve().await;
    let (status, body) = patch_settings(&server, "{\"properties\": {\"A\": }").await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "BadRequest");
    let message = error_message(&body);
    assert!(
        message.starts_with("$: the request body is not valid JSON"),
        "{message}"
    );
    assert!(message.contains("line 1 column"), "{message}");

    let response = raw()
        .put(format!(
            "{}/apps/frontend/config/authsettingsV2",
            server.url
        ))
        .bearer_auth(TOKEN)
        .body("not json")
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!(status, 400);
    assert!(error_message(&body).starts_with("$: the request body is not valid JSON"));
}

#[tokio::test]
async fn wrong_shapes_are_400_naming_the_json_path() {
    let server = serve().await;
    let cases = [
        (
            r#"{"properties": {"FOO": 1}}"#,
            "$.properties.FOO: expected a string or null, found a number",
        ),
        (
            r#"{"properties": {"FOO": "x", "BAR": ["y"]}}"#,
            "$.properties.BAR: expected a string or null, found an array",
        ),
        (
            r#"{"properties": ["A"]}"#,
            "$.properties: expected an object of setting names to strings or null, found an array",
        ),
        (r#"{"A": "1"}"#, "$.properties: missing"),
        (r#""A=1""#, "$: expected an object"),
    ];
    for (request, expected) in cases {
        let (status, body) = patch_settings(&server, request).await;
        assert_eq!(status, 400, "{request}");
        assert!(
            error_message(&body).starts_with(expected),
            "{request}: {}",
            error_message(&body)
        );
    }
    // Nothing was applied.
    let settings = client(&server).appsettings_list("backend").await.unwrap();
    assert!(!settings.contains_key("FOO"));
}

#[tokio::test]
async fn invalid_setting_names_are_400_naming_the_key() {
    let server = serve().await;
    for (name, why) in [
        ("", "must not be empty"),
        ("A=B", "must not contain '='"),
        ("A\u{0}B", "must not contain NUL"),
    ] {
        let e = client(&server)
            .appsettings_set(
                "backend",
                BTreeMap::from([(name.to_owned(), Some("v".to_owned()))]),
            )
            .await
            .unwrap_err();
        let (status, code, message) = api_error(e);
        assert_eq!((status, code.as_str()), (400, "BadRequest"), "{name:?}");
        let path = format!("$.properties[{}]", Value::String(name.to_owned()));
        assert!(message.starts_with(&path), "{message}");
        assert!(message.contains(&format!("{name:?}")), "{message}");
        assert!(message.contains(why), "{message}");
    }
}

#[tokio::test]
async fn oversize_body_is_413() {
    let server = serve().await;
    let big = format!(
        "{{\"properties\": {{\"A\": \"{}\"}}}}",
        "x".repeat(MAX_BODY + 1)
    );
    let (status, body) = patch_settings(&server, &big).await;
    assert_eq!(status, 413);
    assert_eq!(error_code(&body), "PayloadTooLarge");
    // Just under the limit is fine.
    let fits = format!(
        "{{\"properties\": {{\"A\": \"{}\"}}}}",
        "x".repeat(MAX_BODY - 100)
    );
    let (status, _) = patch_settings(&server, &fits).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let server = serve().await;
    let url = format!("{}/apps", server.url);
    let same_length = "f".repeat(TOKEN.len());
    let requests = [
        raw().get(&url),
        raw().get(&url).bearer_auth(&same_length),
        raw().get(&url).bearer_auth("short"),
        raw().get(&url).bearer_auth(format!("{TOKEN}0")),
        raw().get(&url).basic_auth("user", Some(TOKEN)),
        raw().get(&url).header("authorization", TOKEN),
        // Unknown routes need the token too.
        raw().get(format!("{}/nope", server.url)),
    ];
    for request in requests {
        let (status, headers, body) = answer(request.send().await.unwrap()).await;
        assert_eq!(status, 401);
        assert_eq!(headers.get("www-authenticate").unwrap(), "Bearer");
        assert_eq!(error_code(&body), "AuthenticationFailed");
        assert!(!body.to_string().contains(TOKEN));
    }
    // The scheme is case-insensitive.
    let response = raw()
        .get(&url)
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let wrong = AdminClient::new(&server.url, AdminToken::from(same_length.as_str())).unwrap();
    let (status, code, _) = api_error(wrong.apps().await.unwrap_err());
    assert_eq!((status, code.as_str()), (401, "AuthenticationFailed"));
}

#[tokio::test]
async fn foreign_host_is_403() {
    let server = serve().await;
    let port = server.port;
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("192.168.1.10:{port}"),
    ] {
        let response = raw()
            .get(format!("{}/apps", server.url))
            .bearer_auth(TOKEN)
            .header("host", &host)
            .send()
            .await
            .unwrap();
        let (status, _, body) = answer(response).await;
        assert_eq!(status, 403, "{host}");
        assert_eq!(error_code(&body), "Forbidden");
        assert!(error_message(&body).contains("loopback"), "{body}");
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let response = raw()
            .get(format!("{}/apps", server.url))
            .bearer_auth(TOKEN)
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn origin_header_is_403() {
    let server = serve().await;
    for origin in ["https://evil.example", &server.url, "null"] {
        let response = raw()
            .patch(format!("{}/apps/backend/config/appsettings", server.url))
            .bearer_auth(TOKEN)
            .header("origin", origin)
            .json(&json!({"properties": {"PWNED": "1"}}))
            .send()
            .await
            .unwrap();
        let (status, _, body) = answer(response).await;
        assert_eq!(status, 403, "{origin}");
        assert_eq!(error_code(&body), "Forbidden");
        assert!(error_message(&body).contains("Origin"), "{body}");
    }
    let settings = client(&server).appsettings_list("backend").await.unwrap();
    assert!(!settings.contains_key("PWNED"));
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405_in_json() {
    let server = serve().await;
    let response = raw()
        .get(format!("{}/apps/frontend/config/nope", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!(status, 404);
    assert_eq!(error_code(&body), "NotFound");
    assert!(error_message(&body).contains("/apps/frontend/config/nope"));

    let response = raw()
        .delete(format!(
            "{}/apps/frontend/config/authsettingsV2",
            server.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (status, headers, body) = answer(response).await;
    assert_eq!(status, 405);
    assert_eq!(error_code(&body), "MethodNotAllowed");
    let allow = headers.get("allow").unwrap().to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("PUT"), "{allow}");
}

#[test]
fn admin_token_debug_hides_the_token() {
    let token = AdminToken::from(TOKEN);
    let debug = format!("{token:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(!debug.contains("0123"), "{debug}");
    assert_eq!(token.expose(), TOKEN);
    let client = AdminClient::new("http://127.0.0.1:1", token).unwrap();
    assert!(!format!("{client:?}").contains(TOKEN));
}

#[cfg(unix)]
#[test]
fn token_file_is_created_0600_and_reused() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = temp_dir("token");
    let created = AdminToken::load_or_create(&dir).unwrap();
    let path = dir.join(TOKEN_FILE);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert_eq!(created.expose().len(), 64);
    assert!(created.expose().bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(AdminToken::read(&dir).unwrap().expose(), created.expose());

    // A sound file is reused across starts.
    let again = AdminToken::load_or_create(&dir).unwrap();
    assert_eq!(again.expose(), created.expose());

    // A file others can read is replaced, with mode 0600 again.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let replaced = AdminToken::load_or_create(&dir).unwrap();
    assert_ne!(replaced.expose(), created.expose());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // So is a malformed one.
    std::fs::write(&path, "short").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let fresh = AdminToken::load_or_create(&dir).unwrap();
    assert_eq!(fresh.expose().len(), 64);
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, [TOKEN_FILE]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn from_data_dir_on_an_empty_dir_says_not_running() {
    let dir = temp_dir("empty");
    let e = AdminClient::from_data_dir(&dir).unwrap_err();
    assert!(matches!(e, ClientError::State(_)), "{e:?}");
    let message = e.to_string();
    assert!(
        message.starts_with("no running `easyauth up` found"),
        "{message}"
    );
    assert!(message.contains("platform.json"), "{message}");

    // platform.json without a token file.
    write_state(&dir, "http://127.0.0.1:1");
    let e = AdminClient::from_data_dir(&dir).unwrap_err();
    assert!(matches!(e, ClientError::Token(_)), "{e:?}");
    assert!(e.to_string().contains(TOKEN_FILE), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn write_state(dir: &std::path::Path, admin_url: &str) {
    PlatformState {
        pid: std::process::id(),
        admin_url: admin_url.to_owned(),
        idp_url: "https://127.0.0.1:5443".into(),
        tenant_id: "t".into(),
        issuer: "https://127.0.0.1:5443/t/v2.0".into(),
        ca_file: dir.join("ca.pem"),
        apps: BTreeMap::new(),
        demo_user: None,
    }
    .write(dir)
    .unwrap();
}

#[tokio::test]
async fn from_data_dir_finds_a_running_platform() {
    let dir = temp_dir("running");
    let token = AdminToken::load_or_create(&dir).unwrap();
    let server = serve_with(token).await;
    write_state(&dir, &server.url);
    let client = AdminClient::from_data_dir(&dir).unwrap();
    assert_eq!(client.apps().await.unwrap(), ["frontend", "backend"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn stale_platform_json_says_nothing_is_answering() {
    let dir = temp_dir("stale");
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    write_state(&dir, &url);
    AdminToken::load_or_create(&dir).unwrap();
    let e = AdminClient::from_data_dir(&dir)
        .unwrap()
        .apps()
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::NotAnswering { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "no easyauth up is answering at {url} (is it still running? platform.json in {} may be stale)",
            dir.display()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn client_refuses_non_loopback_admin_urls() {
    for url in [
        "https://127.0.0.1:1",
        "http://example.com:80",
        "http://10.0.0.1:80",
        "not a url",
    ] {
        let e = AdminClient::new(url, AdminToken::from(TOKEN)).unwrap_err();
        assert!(matches!(e, ClientError::InvalidUrl { .. }), "{url}: {e:?}");
    }
    for url in [
        "http://localhost:1",
        "http://[::1]:1/",
        "http://127.0.0.1:1",
    ] {
        AdminClient::new(url, AdminToken::from(TOKEN)).unwrap();
    }
}

#[tokio::test]
async fn show_and_restart_an_app() {
    let server = serve().await;
    let client = client(&server);
    let shown = client.show("frontend").await.expect("show");
    assert_eq!(shown["name"], "frontend");
    assert_eq!(shown["process"]["restarts"], 0);
    client.restart("frontend").await.expect("restart");
    let shown = client.show("frontend").await.expect("show");
    assert_eq!(
        shown["process"]["restarts"], 1,
        "the restart reached the platform"
    );
    let err = client.restart("backend").await.expect_err("no process");
    assert!(err.to_string().contains("upstream URL"), "{err}");
    let err = client.show("nope").await.expect_err("unknown app");
    assert!(err.to_string().contains("apps: frontend, backend"), "{err}");
    // Restart is a POST: a GET is refused, not mistaken for it.
    let response = raw()
        .get(format!("{}/apps/frontend/restart", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 405);
}
