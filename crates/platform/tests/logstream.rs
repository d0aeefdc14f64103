//! The log stream on an app's SCM endpoint (`/logstream`, `/api/logstream`, what `az webapp log
//! tail` and the portal read): the app's output kept across a restart, the platform's reason for
//! each request the module refused, lines that arrive while a follower is connected, and the
//! same authentication as every Kudu route.

use std::time::Duration;

use easyauth_platform::client::ArmClient;
use easyauth_platform::platform::{Kind, Platform};
use easyauth_platform::site::Site;
use serde_json::json;

mod common;
use common::{echo_app, https, options, temp_dir};

/// Reads the stream until `needle` has appeared (or 20 s pass); returns what was read.
async fn read_until(response: &mut reqwest::Response, seen: &mut String, needle: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return false,
        }
    }
    true
}

#[tokio::test]
async fn the_log_stream_shows_output_and_refusals_as_they_happen() {
    let dir = temp_dir("stream");
    let echo = echo_app();
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[[apps]]\nname = \"api\"\ncommand = 'echo \"api starting, pid $$\"; exec python3 {} --port \"$PORT\"'\n",
            echo.display()
        ),
    )
    .expect("site file");
    let platform = Platform::start(
        Site::load(&dir.join("site.toml")).expect("site"),
        &options(&dir),
        Kind::SiteFile,
    )
    .await
    .expect("platform starts");
    let state = platform.state();
    let arm = ArmClient::new(state.clone()).await.expect("signed in");
    let path = arm.site_path("api").await.expect("site");
    let creds = arm
        .call(
            reqwest::Method::POST,
            &format!("{path}/config/publishingcredentials/list"),
            None,
        )
        .await
        .expect("publishing credentials");
    let user = creds["properties"]["publishingUserName"]
        .as_str()
        .expect("user")
        .to_owned();
    let password = creds["properties"]["publishingPassword"]
        .as_str()
        .expect("password")
        .to_owned();
    let scm = https(&state);
    let scm_url = state.apps["api"].scm_url.clone();
    let api_url = state.apps["api"].url.clone();

    // Wrong credentials: 401, as for every Kudu route.
    let r = scm
        .get(format!("{scm_url}/logstream"))
        .basic_auth(&user, Some("wrong"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 401);

    // A restart: the output of both processes is kept.
    arm.restart("api").await.expect("restart");
    // The recent lines come first, in one piece; the second process may still be starting.
    let mut seen = String::new();
    let mut r;
    let mut tries = 0;
    loop {
        let route = if tries % 2 == 0 {
            "logstream"
        } else {
            "api/logstream/application"
        };
        r = scm
            .get(format!("{scm_url}/{route}"))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .starts_with("text/plain")
        );
        seen.clear();
        assert!(
            read_until(&mut r, &mut seen, "connected to log-streaming service").await,
            "{seen}"
        );
        if seen.matches("api starting, pid").count() >= 2
            && seen.matches("echo app listening").count() >= 2
        {
            break;
        }
        tries += 1;
        assert!(tries < 100, "both processes' output: {seen}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Sign-in required now; a refused request appears on the connected stream with its reason.
    let backend_id = easyauth_entra::directory::demo::BACKEND_APP_ID;
    arm.auth_set(
        "api",
        &json!({"properties": {
            "platform": {"enabled": true},
            "globalValidation": {"requireAuthentication": true, "unauthenticatedClientAction": "Return401"},
            "identityProviders": {"azureActiveDirectory": {
                "registration": {"clientId": backend_id, "openIdIssuer": state.issuer},
                "validation": {"allowedAudiences": [format!("api://{backend_id}")]}
            }}
        }}),
    )
    .await
    .expect("auth set");
    let plain = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let status = plain
        .get(format!("{api_url}/private/report"))
        .send()
        .await
        .expect("app")
        .status();
    assert_eq!(status, 401);
    assert!(
        read_until(&mut r, &mut seen, "easyauth: 401 GET /private/report").await,
        "{seen}"
    );
    let line = seen
        .lines()
        .find(|l| l.contains("easyauth: 401 GET /private/report"))
        .expect("line");
    assert!(
        line.len() > "easyauth: 401 GET /private/report: ".len() + 20,
        "the reason is given: {line}"
    );
    platform.shutdown().await;
}
