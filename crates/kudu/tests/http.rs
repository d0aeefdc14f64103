//! The Kudu HTTP surface and the deployment life cycle with real processes; no network
//! (the Node apps here have no dependencies).

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, Site, TOKEN, USER, finished, get_text, node_server, node_settings, zip};
use easyauth_kudu::{DeploymentState, Limits, current_deployment};
use serde_json::Value;

struct Server {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(site: &Site) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = easyauth_kudu::router(site.kudu.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server {
        base: format!("http://{addr}"),
        task,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An app whose build (`npm run build`, no dependencies so no network) takes `seconds`.
fn slow_build_app(tag: &str, seconds: u32) -> Vec<u8> {
    let package = format!(
        r#"{{"name":"slow","version":"1.0.0","scripts":{{"build":"sleep {seconds}","start":"node server.js"}}}}"#
    );
    zip(&[("package.json", &package), ("server.js", &node_server(tag))])
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = client()
        .get(url)
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("get");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn credentials_are_required() {
    let site = Site::new(node_settings(false), Limits::default()).await;
    let server = serve(&site).await;
    let url = format!("{}/api/deployments?warmup=true", server.base);
    let c = client();

    let none = c.get(&url).send().await.expect("send");
    assert_eq!(none.status(), 401);
    assert!(
        none.headers()
            .get_all("www-authenticate")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.starts_with("Basic realm="))),
        "{:?}",
        none.headers()
    );
    let wrong = c
        .get(&url)
        .basic_auth(USER, Some("wrong"))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers().contains_key("www-authenticate"));
    let wrong_user = c
        .get(&url)
        .basic_auth("$other", Some(PASSWORD))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong_user.status(), 401);

    let (status, body) = get_json(&url).await;
    assert_eq!((status, body), (200, Value::Array(vec![])));
    let bearer = c.get(&url).bearer_auth(TOKEN).send().await.expect("send");
    assert_eq!(bearer.status(), 200);
    let bad_bearer = c.get(&url).bearer_auth("nope").send().await.expect("send");
    assert_eq!(bad_bearer.status(), 401);

    // Basic auth disabled for the site: only bearer tokens.
    *site.host.credentials.lock().expect("lock") = None;
    let basic = c
        .get(&url)
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("send");
    assert_eq!(basic.status(), 401);
    assert!(basic.text().await.expect("text").contains("disabled"));
    let bearer = c.get(&url).bearer_auth(TOKEN).send().await.expect("send");
    assert_eq!(bearer.status(), 200);

    // A deploy without credentials writes nothing.
    let r = c
        .post(format!("{}/api/zipdeploy?isAsync=true", server.base))
        .body(zip(&[("server.js", "x")]))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert!(site.kudu.deployments().is_empty());
}

/// az's flow: POST isAsync -> 202; poll latest (temp id while building, then the real id);
/// a second deploy meanwhile is 409; the log endpoints.
#[tokio::test]
async fn zipdeploy_flow_with_conflict_temp_id_and_logs() {
    let site = Site::new(node_settings(true), Limits::default()).await;
    let server = serve(&site).await;
    let body = slow_build_app("slow v1", 3);
    let started = Instant::now();
    let r = client()
        .post(format!("{}/api/zipdeploy?isAsync=true", server.base))
        .basic_auth(USER, Some(PASSWORD))
        .header("content-type", "application/octet-stream")
        .header("x-ms-artifact-checksum", sha256_hex(&body))
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["location"], "/api/deployments/latest");

    let again = client()
        .post(format!("{}/api/zipdeploy?isAsync=true", server.base))
        .basic_auth(USER, Some(PASSWORD))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(again.status(), 409);
    assert!(again.text().await.expect("text").contains("in progress"));

    let latest = format!("{}/api/deployments/latest", server.base);
    let (status, first) = get_json(&latest).await;
    assert_eq!(status, 200);
    let temp = first["id"].as_str().expect("id").to_owned();
    assert!(temp.starts_with("temp-") && temp.len() == 13, "{first}");
    assert_eq!(first["is_temp"], true);
    assert_eq!(first["complete"], false);
    assert!(matches!(first["status"].as_u64(), Some(0..=2)), "{first}");
    assert_eq!(first["site_name"], "web");
    // The temp id names the deployment too.
    let (status, by_temp) = get_json(&format!("{}/api/deployments/{temp}", server.base)).await;
    assert_eq!((status, by_temp["id"].as_str()), (200, Some(temp.as_str())));

    // Poll like az (every 2 s would do; faster here) until the id is not a temp one.
    let done = loop {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "deployment too slow"
        );
        let (_, d) = get_json(&latest).await;
        let id = d["id"].as_str().unwrap_or_default().to_owned();
        if !id.contains("temp") {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(done["status"], 4, "{done}");
    assert_eq!(done["complete"], true);
    assert_eq!(done["active"], true);
    assert_eq!(done["is_temp"], false);
    let id = done["id"].as_str().expect("id").to_owned();
    let record = site.kudu.deployment(&id).expect("record");
    assert_eq!(record.temp_id, temp);
    assert_eq!(record.state, DeploymentState::RuntimeSuccessful);
    assert!(record.build);
    let (_, port) = site.host.running().expect("running");
    assert_eq!(get_text(port, "/").await.expect("app"), "slow v1");

    let (status, list) = get_json(&format!("{}/api/deployments", server.base)).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], id.as_str());

    let (status, entries) = get_json(&format!("{}/api/deployments/{id}/log", server.base)).await;
    assert_eq!(status, 200);
    let entries = entries.as_array().expect("entries").clone();
    let messages: Vec<&str> = entries
        .iter()
        .map(|e| e["message"].as_str().unwrap_or(""))
        .collect();
    for expected in [
        "Received a zip",
        "Runtime: NODE 20-lts",
        "Running npm install",
        "Running npm run build",
        "Start command: npm start",
        "Deployment successful",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected} in {messages:#?}"
        );
    }
    for e in &entries {
        assert!(
            e["log_time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{e}"
        );
        assert!(e["type"].is_u64());
    }
    let with_details = entries
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("npm run build"))
        })
        .expect("build entry");
    let details_url = with_details["details_url"].as_str().expect("details_url");
    let entry_id = with_details["id"].as_str().expect("id");
    assert!(details_url.ends_with(&format!("/api/deployments/{id}/log/{entry_id}")));
    let (status, details) = get_json(&format!(
        "{}/api/deployments/{id}/log/{entry_id}",
        server.base
    ))
    .await;
    assert_eq!(status, 200);
    assert!(
        details
            .as_array()
            .expect("details")
            .iter()
            .any(|d| d["message"].as_str().is_some_and(|m| m.contains("sleep 3"))),
        "{details}"
    );
    let text = client()
        .get(format!("{}/api/deployments/{id}/log.txt", server.base))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("log.txt")
        .text()
        .await
        .expect("text");
    assert!(text.contains("INFO  Running npm run build"), "{text}");
    assert_eq!(
        site.kudu.log_text(&id).await.as_deref(),
        Some(text.as_str())
    );
    let (status, _) = get_json(&format!("{}/api/deployments/nope", server.base)).await;
    assert_eq!(status, 404);
}

/// Past the temp-id window, latest reports the real id even while the build runs (az then
/// follows ARM's deploymentStatus).
#[tokio::test]
async fn latest_reports_the_real_id_after_the_window() {
    let limits = Limits {
        temp_id_window: Duration::from_secs(1),
        ..Limits::default()
    };
    let site = Site::new(node_settings(true), limits).await;
    let accepted = site
        .kudu
        .start_deploy(slow_build_app("window", 5).into(), None, None)
        .await
        .expect("accepted");
    let now = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis(),
        )
        .expect("ms")
    };
    let latest = site.kudu.latest().expect("latest");
    assert!(
        latest
            .reported_id(limits.temp_id_window, now())
            .starts_with("temp-")
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let latest = site.kudu.latest().expect("latest");
    assert!(!latest.state.is_final(), "still building: {latest:?}");
    assert_eq!(
        latest.reported_id(limits.temp_id_window, now()),
        accepted.id
    );
    let d = finished(&site.kudu, &accepted.id, Duration::from_secs(90)).await;
    assert_eq!(d.state, DeploymentState::RuntimeSuccessful, "{d:?}");
}

/// A start that crashes is RuntimeFailed with its output; the previous deployment stays current
/// and keeps serving. Records survive a restart of Kudu.
#[tokio::test]
async fn crashing_start_keeps_the_previous_deployment() {
    let site = Site::new(node_settings(false), Limits::default()).await;
    let v1 = site
        .kudu
        .deploy_zip(zip(&[("server.js", &node_server("v1"))]))
        .await
        .expect("v1");
    assert_eq!(v1.state, DeploymentState::RuntimeSuccessful, "{v1:?}");
    assert!(!v1.build);

    let crash = site
        .kudu
        .deploy_zip(zip(&[(
            "server.js",
            "console.log('starting'); throw new Error('boom: cannot start');",
        )]))
        .await
        .expect("accepted");
    assert_eq!(crash.state, DeploymentState::RuntimeFailed, "{crash:?}");
    let error = crash.error.as_deref().unwrap_or_default();
    assert!(error.contains("boom: cannot start"), "{error}");
    let log = site.kudu.log_text(&crash.id).await.expect("log");
    eprintln!("{log}");
    assert!(
        log.contains("boom: cannot start") && log.contains("RuntimeFailed"),
        "{log}"
    );
    assert_eq!(site.kudu.current_id().as_deref(), Some(v1.id.as_str()));
    let (running, port) = site.host.running().expect("running");
    assert_eq!(running, v1.id);
    assert_eq!(get_text(port, "/").await.expect("v1 serves"), "v1");

    // A fresh Kudu on the same folder knows everything; an interrupted one is failed.
    let record = site
        .root
        .join("deployments")
        .join(&crash.id)
        .join("deployment.json");
    let mut json: Value =
        serde_json::from_slice(&std::fs::read(&record).expect("read")).expect("json");
    json["state"] = "BuildInProgress".into();
    std::fs::write(&record, serde_json::to_vec(&json).expect("json")).expect("write");
    std::fs::create_dir_all(site.root.join("deployments/.staging-temp-00000000/site"))
        .expect("staging");
    let reopened =
        easyauth_kudu::Kudu::open(site.host.clone(), site.root.clone(), Limits::default())
            .await
            .expect("reopen");
    assert_eq!(reopened.current_id().as_deref(), Some(v1.id.as_str()));
    let ids: Vec<String> = reopened.deployments().into_iter().map(|d| d.id).collect();
    assert_eq!(ids, [crash.id.clone(), v1.id.clone()]);
    let interrupted = reopened.deployment(&crash.id).expect("crash");
    assert_eq!(interrupted.state, DeploymentState::BuildFailed);
    assert!(
        interrupted
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("interrupted")
    );
    assert!(
        !site
            .root
            .join("deployments/.staging-temp-00000000")
            .exists()
    );
    let current = current_deployment(&site.root)
        .expect("read")
        .expect("current");
    assert_eq!(current.id, v1.id);
    assert_eq!(current.start.display, "node server.js");
    assert_eq!(
        current.site_dir,
        site.root.join("deployments").join(&v1.id).join("site")
    );
    assert_eq!(reopened.current(), Some(current));
}

#[tokio::test]
async fn build_failures_without_network() {
    let site = Site::new(node_settings(false), Limits::default()).await;
    let d = site
        .kudu
        .deploy_zip(zip(&[("package.json", "{}"), ("readme.md", "hi")]))
        .await
        .expect("accepted");
    assert_eq!(d.state, DeploymentState::BuildFailed);
    assert!(
        d.error
            .as_deref()
            .unwrap_or_default()
            .starts_with("no start command:"),
        "{d:?}"
    );

    site.host.config.lock().expect("lock").linux_fx_version = Some("DOTNETCORE|8.0".into());
    let d = site
        .kudu
        .deploy_zip(zip(&[("server.js", "x")]))
        .await
        .expect("accepted");
    assert_eq!(d.state, DeploymentState::BuildFailed);
    assert!(
        d.error
            .as_deref()
            .unwrap_or_default()
            .contains("DOTNETCORE|8.0"),
        "{d:?}"
    );
    assert!(site.kudu.current_id().is_none());
    assert!(site.host.running().is_none());
}

/// `.deployment`'s `[config]` turns the build on; an app setting saying false wins over it.
#[tokio::test]
async fn deployment_file_turns_the_build_on_unless_the_app_setting_says_no() {
    let mut config = node_settings(false);
    config.app_settings.clear();
    let site = Site::new(config, Limits::default()).await;
    let package = r#"{"name":"b","version":"1.0.0","scripts":{"build":"node -e \"require('fs').writeFileSync('built.txt','yes')\""}}"#;
    let app = zip(&[
        (
            ".deployment",
            "[config]\nSCM_DO_BUILD_DURING_DEPLOYMENT=true\n",
        ),
        ("package.json", package),
        ("server.js", &node_server("built")),
    ]);
    let d = site.kudu.deploy_zip(app.clone()).await.expect("accepted");
    assert_eq!(d.state, DeploymentState::RuntimeSuccessful, "{d:?}");
    assert!(d.build);
    let site_dir = |id: &str| site.root.join("deployments").join(id).join("site");
    assert!(site_dir(&d.id).join("built.txt").is_file());

    site.host
        .set_setting("SCM_DO_BUILD_DURING_DEPLOYMENT", "false");
    let d = site.kudu.deploy_zip(app).await.expect("accepted");
    assert_eq!(d.state, DeploymentState::RuntimeSuccessful, "{d:?}");
    assert!(!d.build);
    assert!(!site_dir(&d.id).join("built.txt").exists());
}

#[tokio::test]
async fn old_deployments_are_pruned() {
    let limits = Limits {
        keep_deployments: 2,
        ..Limits::default()
    };
    let site = Site::new(node_settings(false), limits).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let d = site
            .kudu
            .deploy_zip(zip(&[("server.js", &node_server(&format!("v{i}")))]))
            .await
            .expect("accepted");
        assert_eq!(d.state, DeploymentState::RuntimeSuccessful, "{d:?}");
        ids.push(d.id);
    }
    let kept: Vec<String> = site.kudu.deployments().into_iter().map(|d| d.id).collect();
    assert_eq!(kept, [ids[3].clone(), ids[2].clone()]);
    // Folders go right after the outcome is recorded.
    let gone = async {
        while site.root.join("deployments").join(&ids[1]).exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .expect("old folders removed");
    assert!(!site.root.join("deployments").join(&ids[0]).exists());
    assert!(site.root.join("deployments").join(&ids[3]).exists());
    let (_, port) = site.host.running().expect("running");
    assert_eq!(get_text(port, "/").await.expect("app"), "v3");
}
