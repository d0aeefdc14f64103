//! Logging rules, in a test binary of its own so a process-wide subscriber sees every line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::*;

/// Captures this thread's log lines.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_log_line_per_request_and_no_secret_in_it() {
    let buffer = LogBuffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber)
        .expect("the only subscriber in this binary");

    let h = Harness::new().await;
    let (tokens, _) = user_tokens(&h).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let refreshed = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("refresh_token", rt),
        ])
        .await;
    assert_eq!(refreshed.status, StatusCode::OK);
    let failed = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", WEB),
            ("client_secret", "wrong-secret-value"),
            ("scope", "User.Read"),
        ])
        .await;
    assert_eq!(failed.code(), 7000215);

    let refreshed_rt = refreshed.json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The device flow: neither code (nor the tokens) reaches the log, even in a link's query.
    let start = h.device_code(TID, AZURE_CLI, CLI_SCOPE).await.json();
    let device_code = start["device_code"].as_str().unwrap().to_owned();
    let user_code = start["user_code"].as_str().unwrap().to_owned();
    let mut browser = Browser::default();
    let prefilled = h
        .get(&format!("/devicelogin?user_code={user_code}"), &browser)
        .await;
    assert!(prefilled.body.contains(&format!("value=\"{user_code}\"")));
    let pending = h.poll(AZURE_CLI, &device_code).await;
    assert_eq!(pending.code(), 70016);
    let done = h
        .device_login(&mut browser, &user_code, "alice-pw", "accept")
        .await;
    assert!(done.body.contains("You have signed in"), "{}", done.body);
    let device_tokens = h.poll(AZURE_CLI, &device_code).await.json();

    // A Graph refusal is logged with Graph's error code.
    let graph = h.get("/v1.0/applications", &Browser::default()).await;
    assert_eq!(graph.status, StatusCode::UNAUTHORIZED);

    // Smart lockout says so in the log (the password itself never appears).
    let mut dir: serde_json::Value = serde_json::from_str(&directory()).unwrap();
    dir["tenant"]["passwordRuleSettings"] = serde_json::json!({"lockoutThreshold": 2});
    let locked = Harness::with_directory(&dir.to_string()).await;
    for _ in 0..2 {
        let mut browser = Browser::default();
        let page = locked
            .authorize(&code_query(&api_scope(), ""), &browser)
            .await;
        browser.take(&page);
        locked
            .post(
                &format!("/{TID}/login"),
                &[
                    ("ctx", &page.hidden("ctx").unwrap()),
                    ("csrf", &page.hidden("csrf").unwrap()),
                    ("login", "alice@contoso.onmicrosoft.com"),
                    ("passwd", "wrong-password-typed"),
                ],
                &browser,
            )
            .await;
    }
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.lines().any(|l| l.contains("smart lockout")
            && l.contains("alice@contoso.onmicrosoft.com")
            && l.contains("failures=2")),
        "{log}"
    );
    assert!(!log.contains("wrong-password-typed"));
    let requests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("easyauth::idp::request"))
        .collect();
    assert!(
        requests
            .iter()
            .any(|l| l.contains("grant=\"authorization_code\"")
                && l.contains(&format!("client=\"{WEB}\""))
                && l.contains("outcome=ok")),
        "{log}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains("grant=\"refresh_token\"")
                && l.contains(&format!("tenant=\"{TID}\""))),
        "{log}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains("outcome=AADSTS7000215")
                && l.contains("grant=\"client_credentials\"")),
        "{log}"
    );
    assert!(
        requests.iter().any(|l| l.contains("grant=\"device_code\"")
            && l.contains(&format!("client=\"{AZURE_CLI}\""))
            && l.contains("outcome=ok")),
        "{log}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains("grant=\"device_code\"") && l.contains("outcome=AADSTS70016")),
        "{log}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains("path=/devicelogin")
                && l.contains(&format!("client=\"{AZURE_CLI}\""))),
        "{log}"
    );
    assert!(
        requests
            .iter()
            .any(|l| l.contains("path=/v1.0/applications")
                && l.contains("status=401")
                && l.contains("outcome=InvalidAuthenticationToken")),
        "{log}"
    );
    let secrets = [
        device_code.as_str(),
        user_code.as_str(),
        device_tokens["access_token"].as_str().unwrap(),
        device_tokens["refresh_token"].as_str().unwrap(),
        WEB_SECRET,
        "wrong-secret-value",
        "alice-pw",
        VERIFIER,
        rt,
        tokens["access_token"].as_str().unwrap(),
        tokens["id_token"].as_str().unwrap(),
        refreshed_rt.as_str(),
    ];
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "a secret or token reached the log: {}",
            &secret[..8.min(secret.len())]
        );
    }
    assert!(
        !log.contains("code="),
        "authorization codes never reach the log"
    );
}
