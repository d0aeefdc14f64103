//! Regression tests for attacks on the identity provider: each reproduces the attack and asserts
//! the safe outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;

const ADMIN_ONLY: &str = "openid https://graph.microsoft.com/User.Read.All";

/// Signs alice in for `query`; returns the browser (session + CSRF cookie) and the CSRF token.
async fn signed_in_browser(h: &Harness, query: &str) -> (Browser, String, Reply) {
    let mut browser = Browser::default();
    let page = h.authorize(query, &browser).await;
    browser.take(&page);
    let csrf = page.hidden("csrf").expect("sign-in page");
    let ctx = page.hidden("ctx").unwrap();
    let reply = h
        .post(
            &format!("/{TID}/login"),
            &[
                ("ctx", &ctx),
                ("csrf", &csrf),
                ("login", "alice@contoso.onmicrosoft.com"),
                ("passwd", "alice-pw"),
            ],
            &browser,
        )
        .await;
    browser.take(&reply);
    (browser, csrf, reply)
}

#[tokio::test]
async fn a_user_cannot_grant_herself_an_admin_only_permission_by_posting_the_consent_form() {
    let h = Harness::new().await;
    let query = code_query(ADMIN_ONLY, "");
    let (browser, csrf, reply) = signed_in_browser(&h, &query).await;
    // The authorize path refuses: only an administrator can grant User.Read.All.
    let p = reply.redirect_params();
    assert_eq!(p["error"], "invalid_request", "{}", reply.body);
    assert!(p["error_description"].starts_with("AADSTS90094:"), "{p:?}");
    assert!(!p.contains_key("code"));

    // The attack: post the consent form directly with the same request and her own CSRF token.
    let forged = h
        .post(
            &format!("/{TID}/consent"),
            &[("ctx", &query), ("csrf", &csrf), ("consent", "accept")],
            &browser,
        )
        .await;
    let p = forged.redirect_params();
    assert!(
        !p.contains_key("code"),
        "no code for an admin-only scope: {p:?}"
    );
    assert!(
        p.get("error_description")
            .is_some_and(|d| d.starts_with("AADSTS90094:")),
        "Entra's error: {p:?} {}",
        forged.body
    );
    // Nothing was recorded: a silent request still lacks consent.
    let silent = h
        .authorize(&code_query(ADMIN_ONLY, "&prompt=none"), &browser)
        .await;
    let p = silent.redirect_params();
    assert!(!p.contains_key("code"), "{p:?}");
    assert_eq!(p["error"], "consent_required");
}

#[tokio::test]
async fn the_consent_form_reapplies_the_sign_in_rules_of_its_request() {
    let h = Harness::new().await;
    let (browser, csrf, reply) = signed_in_browser(&h, &code_query(&api_scope(), "")).await;
    assert!(reply.body.contains("name=\"consent\""), "{}", reply.body);
    // A request naming another account (login_hint) cannot be consented to by alice's session.
    let other = code_query(&api_scope(), "&login_hint=bob%40contoso.onmicrosoft.com");
    let r = h
        .post(
            &format!("/{TID}/consent"),
            &[("ctx", &other), ("csrf", &csrf), ("consent", "accept")],
            &browser,
        )
        .await;
    assert!(
        r.body.contains("name=\"passwd\""),
        "sign-in again: {}",
        r.body
    );
    assert!(!r.redirect_params().contains_key("code"));
    // Without a session the consent form signs nobody in.
    let anonymous = Browser {
        jar: browser
            .jar
            .iter()
            .filter(|(k, _)| k.as_str() != "ESTSAUTH")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>(),
    };
    let r = h
        .post(
            &format!("/{TID}/consent"),
            &[
                ("ctx", &code_query(&api_scope(), "")),
                ("csrf", &csrf),
                ("consent", "accept"),
            ],
            &anonymous,
        )
        .await;
    assert!(r.body.contains("name=\"passwd\""), "{}", r.body);
    // The genuine consent still works.
    let ok = h
        .post(
            &format!("/{TID}/consent"),
            &[
                ("ctx", &reply.hidden("ctx").unwrap()),
                ("csrf", &reply.hidden("csrf").unwrap()),
                ("consent", "accept"),
            ],
            &browser,
        )
        .await;
    assert!(ok.redirect_params().contains_key("code"), "{}", ok.body);
}

#[tokio::test]
async fn oversized_forms_and_parameter_floods_get_entras_error_at_once() {
    let h = Harness::new().await;
    // 180,000 distinct empty parameters (the quadratic-parsing attack).
    let flood: String = (0..180_000).map(|i| format!("p{i}&")).collect();
    for path in [
        format!("/{TID}/oauth2/v2.0/token"),
        format!("/{TID}/oauth2/v2.0/logout"),
    ] {
        let r = h
            .send(
                Request::post(&path)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(flood.clone()))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert_eq!(r.json()["error"], "invalid_request");
        assert_eq!(r.code(), 90015);
    }
    for path in [
        format!("/{TID}/oauth2/v2.0/authorize"),
        format!("/{TID}/login"),
        format!("/{TID}/consent"),
    ] {
        let r = h
            .send(
                Request::post(&path)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(flood.clone()))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(r.body.contains("AADSTS90015"), "{path}: {}", r.body);
    }
    // Under the size limit, but too many parameters.
    let many: String = (0..5_000).map(|i| format!("p{i}&")).collect();
    let r = h
        .send(
            Request::post(format!("/{TID}/oauth2/v2.0/token"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(many.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), 90015);
    let r = h
        .get(
            &format!("/{TID}/oauth2/v2.0/authorize?{many}"),
            &Browser::default(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("AADSTS90015"), "{}", r.body);
}

#[tokio::test]
async fn a_code_verifier_for_a_code_issued_without_a_challenge_is_refused() {
    let h = Harness::new().await;
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("client_id", WEB)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", &api_scope())
        .append_pair("state", "st-1");
    let mut browser = Browser::default();
    let reply = h.sign_in(&mut browser, &s.finish()).await;
    let code = reply.redirect_params()["code"].clone();
    let downgraded = redeem(&h, &code).await;
    assert_eq!(downgraded.status, StatusCode::BAD_REQUEST);
    assert_eq!(downgraded.json()["error"], "invalid_grant");
    assert_eq!(downgraded.code(), 501481);
    // The refused attempt did not burn the code: its own client redeems it without a verifier.
    let ok = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
}

fn lockout_directory() -> String {
    let mut dir: serde_json::Value = serde_json::from_str(&directory()).unwrap();
    dir["tenant"]["passwordRuleSettings"] =
        serde_json::json!({"lockoutThreshold": 3, "lockoutDurationInSeconds": 2});
    dir.to_string()
}

async fn try_password(h: &Harness, login: &str, password: &str) -> Reply {
    let mut browser = Browser::default();
    let page = h.authorize(&code_query(&api_scope(), ""), &browser).await;
    browser.take(&page);
    h.post(
        &format!("/{TID}/login"),
        &[
            ("ctx", &page.hidden("ctx").unwrap()),
            ("csrf", &page.hidden("csrf").unwrap()),
            ("login", login),
            ("passwd", password),
        ],
        &browser,
    )
    .await
}

#[tokio::test]
async fn smart_lockout_locks_an_account_after_repeated_wrong_passwords() {
    let h = Harness::with_directory(&lockout_directory()).await;
    let alice = "alice@contoso.onmicrosoft.com";
    for _ in 0..2 {
        let r = try_password(&h, alice, "wrong").await;
        assert!(r.body.contains("AADSTS50126"), "{}", r.body);
    }
    let third = try_password(&h, "ALICE@contoso.onmicrosoft.com", "wrong").await;
    assert!(
        third.body.contains("AADSTS50053"),
        "counted per account, any case: {}",
        third.body
    );
    // Locked: even the right password is refused, and no session is made.
    let right = try_password(&h, alice, "alice-pw").await;
    assert!(right.body.contains("AADSTS50053"), "{}", right.body);
    assert!(!right.cookies().iter().any(|(k, _)| k == "ESTSAUTH"));
    // An account that does not exist locks the same way (a lockout reveals nothing).
    for _ in 0..3 {
        try_password(&h, "nobody@contoso.onmicrosoft.com", "x").await;
    }
    let r = try_password(&h, "nobody@contoso.onmicrosoft.com", "x").await;
    assert!(r.body.contains("AADSTS50053"), "{}", r.body);
    // After the lockout duration the right password works, and clears the count.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = try_password(&h, alice, "alice-pw").await;
    assert!(
        r.cookies().iter().any(|(k, _)| k == "ESTSAUTH"),
        "{}",
        r.body
    );
    let r = try_password(&h, alice, "wrong").await;
    assert!(
        r.body.contains("AADSTS50126"),
        "the count started again: {}",
        r.body
    );
}

/// Starts a device flow for `client`/`scope`; returns (device_code, user_code).
async fn device_request(h: &Harness, client: &str, scope: &str) -> (String, String) {
    let r = h.device_code(TID, client, scope).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let b = r.json();
    (
        b["device_code"].as_str().unwrap().to_owned(),
        b["user_code"].as_str().unwrap().to_owned(),
    )
}

/// Posts the device page's sign-in form for alice.
async fn device_password(h: &Harness, browser: &Browser, user_code: &str, password: &str) -> Reply {
    let csrf = browser.jar["easyauth_csrf"].clone();
    h.post(
        "/devicelogin",
        &[
            ("ctx", user_code),
            ("csrf", &csrf),
            ("login", "alice@contoso.onmicrosoft.com"),
            ("passwd", password),
        ],
        browser,
    )
    .await
}

async fn still_pending(h: &Harness, client: &str, device_code: &str) {
    let r = h.poll(client, device_code).await;
    assert_eq!(
        r.json()["error"],
        "authorization_pending",
        "nothing was approved: {}",
        r.body
    );
}

#[tokio::test]
async fn the_device_code_page_requires_its_csrf_token_and_a_session_at_every_step() {
    let h = Harness::with_config(&directory(), |c| c.device_code_interval = 0).await;
    let (device_code, user_code) = device_request(&h, AZURE_CLI, CLI_SCOPE).await;
    // A cross-site form post carries no CSRF cookie: nothing beyond the code-entry page.
    let mut victim = Browser::default();
    let page = h.get("/devicelogin", &victim).await;
    victim.take(&page);
    let csrf = page.hidden("csrf").unwrap();
    let forged = Browser {
        jar: victim
            .jar
            .iter()
            .filter(|(k, _)| k.as_str() != "easyauth_csrf")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<HashMap<_, _>>(),
    };
    for form in [
        vec![("csrf", csrf.as_str()), ("user_code", user_code.as_str())],
        vec![
            ("csrf", csrf.as_str()),
            ("ctx", user_code.as_str()),
            ("confirm", "continue"),
        ],
        vec![
            ("csrf", csrf.as_str()),
            ("ctx", user_code.as_str()),
            ("confirm", "cancel"),
        ],
        vec![
            ("csrf", csrf.as_str()),
            ("ctx", user_code.as_str()),
            ("login", "alice@contoso.onmicrosoft.com"),
            ("passwd", "alice-pw"),
        ],
        vec![
            ("csrf", csrf.as_str()),
            ("ctx", user_code.as_str()),
            ("consent", "accept"),
        ],
    ] {
        let r = h.post("/devicelogin", &form, &forged).await;
        assert!(
            r.body.contains("Your session timed out") && r.body.contains("name=\"user_code\""),
            "{form:?}: {}",
            r.body
        );
        assert!(!r.cookies().iter().any(|(k, _)| k == "ESTSAUTH"));
    }
    // A wrong token with the cookie present fails the same way.
    let r = h
        .post(
            "/devicelogin",
            &[("csrf", "x".repeat(43).as_str()), ("user_code", &user_code)],
            &victim,
        )
        .await;
    assert!(r.body.contains("Your session timed out"), "{}", r.body);
    still_pending(&h, AZURE_CLI, &device_code).await;

    // Without a session, posting the consent form straight away signs nobody in.
    let r = h
        .post(
            "/devicelogin",
            &[("csrf", &csrf), ("ctx", &user_code), ("consent", "accept")],
            &victim,
        )
        .await;
    assert!(r.body.contains("name=\"passwd\""), "{}", r.body);
    still_pending(&h, AZURE_CLI, &device_code).await;

    // A browser already signed in to the identity provider confirms without a password.
    let mut browser = Browser::default();
    let signed_in = h.sign_in(&mut browser, &code_query(&api_scope(), "")).await;
    assert_eq!(signed_in.status, StatusCode::FOUND, "{}", signed_in.body);
    let done = h
        .device_login(&mut browser, &user_code, "not-asked", "accept")
        .await;
    assert!(done.body.contains("You have signed in"), "{}", done.body);
    let tokens = h.poll(AZURE_CLI, &device_code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
}

#[tokio::test]
async fn the_device_code_page_uses_the_consent_rule_of_the_authorize_endpoint() {
    let h = Harness::with_config(&directory(), |c| c.device_code_interval = 0).await;
    // An admin-only permission: refused with AADSTS90094 after sign-in, and posting the consent
    // form directly records nothing.
    let (device_code, user_code) = device_request(&h, PUBLIC, ADMIN_ONLY).await;
    let mut browser = Browser::default();
    let r = h
        .device_login(&mut browser, &user_code, "alice-pw", "accept")
        .await;
    assert!(r.body.contains("AADSTS90094"), "{}", r.body);
    let csrf = browser.jar["easyauth_csrf"].clone();
    let forged = h
        .post(
            "/devicelogin",
            &[("csrf", &csrf), ("ctx", &user_code), ("consent", "accept")],
            &browser,
        )
        .await;
    assert!(forged.body.contains("AADSTS90094"), "{}", forged.body);
    still_pending(&h, PUBLIC, &device_code).await;
    let silent = h
        .authorize(
            &code_query(ADMIN_ONLY, "&prompt=none")
                .replace(WEB, PUBLIC)
                .replace(&urlenc(REDIRECT), &urlenc("http://localhost")),
            &browser,
        )
        .await;
    assert!(
        !silent.redirect_params().contains_key("code"),
        "no grant was recorded: {}",
        silent.location()
    );

    // A user-consentable permission: the consent page, then the token carries what was granted,
    // and the authorize endpoint sees the same consent afterwards.
    let scope = format!("api://{API2}/read offline_access");
    let (device_code, user_code) = device_request(&h, PUBLIC, &scope).await;
    let r = h
        .device_login(&mut browser, &user_code, "alice-pw", "accept")
        .await;
    assert!(r.body.contains("You have signed in"), "{}", r.body);
    let tokens = h.poll(PUBLIC, &device_code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    assert_eq!(
        claims(tokens.json()["access_token"].as_str().unwrap())["scp"],
        "read"
    );
    let (_, user_code) = device_request(&h, PUBLIC, &scope).await;
    let mut other = Browser::default();
    let r = h
        .device_login(&mut other, &user_code, "alice-pw", "never-asked")
        .await;
    assert!(
        r.body.contains("You have signed in"),
        "consent is remembered: {}",
        r.body
    );
}

#[tokio::test]
async fn the_device_code_page_goes_through_smart_lockout() {
    let h = Harness::with_directory(&lockout_directory()).await;
    let (device_code, user_code) = device_request(&h, AZURE_CLI, CLI_SCOPE).await;
    let mut browser = Browser::default();
    let first = h
        .device_login(&mut browser, &user_code, "wrong", "accept")
        .await;
    assert!(first.body.contains("AADSTS50126"), "{}", first.body);
    let second = device_password(&h, &browser, &user_code, "wrong").await;
    assert!(second.body.contains("AADSTS50126"), "{}", second.body);
    let third = device_password(&h, &browser, &user_code, "wrong").await;
    assert!(third.body.contains("AADSTS50053"), "{}", third.body);
    // Locked: the right password is refused on the device page and on the authorize page alike
    // (one counter, one function).
    let right = device_password(&h, &browser, &user_code, "alice-pw").await;
    assert!(right.body.contains("AADSTS50053"), "{}", right.body);
    assert!(!right.cookies().iter().any(|(k, _)| k == "ESTSAUTH"));
    let elsewhere = try_password(&h, "alice@contoso.onmicrosoft.com", "alice-pw").await;
    assert!(elsewhere.body.contains("AADSTS50053"), "{}", elsewhere.body);
    still_pending(&h, AZURE_CLI, &device_code).await;
}
