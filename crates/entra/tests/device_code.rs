//! The Azure CLI's sign-ins against the identity provider, through its real router: the device
//! authorization grant (endpoint, page, polling), the built-in Azure Resource Manager and Azure
//! CLI applications, multi-resource refresh tokens, and `az login --service-principal`'s client
//! credentials request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use serde_json::Value;

const ARM_APP_ID: &str = "797f4846-ba00-4fd7-ba43-dac1f8f63013";
const ARM: &str = "https://management.core.windows.net/";
const CLAIMS: &str = r#"{"access_token":{"xms_cc":{"values":["CP1"]}}}"#;

fn error_of(r: &Reply) -> (u16, String, u32) {
    let body = r.json();
    let code = r.code();
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}:")),
        "Entra's shape: {description}"
    );
    assert!(body["trace_id"].is_string() && body["correlation_id"].is_string());
    (
        r.status.as_u16(),
        body["error"].as_str().unwrap().to_owned(),
        code,
    )
}

/// A harness polling every second (so `slow_down` can be tested without waiting five).
async fn fast_harness() -> Harness {
    Harness::with_config(&directory(), |c| c.device_code_interval = 1).await
}

#[tokio::test]
async fn the_device_authorization_endpoint_answers_in_entras_shape() {
    let h = Harness::new().await;
    for tenant in [TID, "contoso.onmicrosoft.com", "organizations", "common"] {
        let r = h.device_code(tenant, AZURE_CLI, CLI_SCOPE).await;
        assert_eq!(r.status, StatusCode::OK, "{tenant}: {}", r.body);
        assert_eq!(
            r.headers.get("cache-control").unwrap(),
            "no-store, no-cache"
        );
        let body = r.json();
        let user_code = body["user_code"].as_str().unwrap();
        assert_eq!(user_code.len(), 9, "{user_code}");
        assert!(
            user_code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{user_code}"
        );
        assert!(
            !user_code.contains(['0', 'O', '1', 'I', 'L']),
            "{user_code}"
        );
        assert!(body["device_code"].as_str().unwrap().len() >= 43);
        let uri = format!("{BASE}/devicelogin");
        assert_eq!(body["verification_uri"], uri);
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["interval"], 5);
        assert_eq!(
            body["message"],
            format!(
                "To sign in, use a web browser to open the page {uri} and enter the code {user_code} to authenticate."
            )
        );
    }
    // Both discovery documents name it; the v1 path serves the same endpoint.
    for (doc, path) in [
        (
            format!("/{TID}/v2.0/.well-known/openid-configuration"),
            format!("{BASE}/{TID}/oauth2/v2.0/devicecode"),
        ),
        (
            format!("/{TID}/.well-known/openid-configuration"),
            format!("{BASE}/{TID}/oauth2/devicecode"),
        ),
        (
            "/organizations/v2.0/.well-known/openid-configuration".to_owned(),
            format!("{BASE}/organizations/oauth2/v2.0/devicecode"),
        ),
    ] {
        assert_eq!(h.json_of(&doc).await["device_authorization_endpoint"], path);
    }
    let v1 = h
        .post(
            &format!("/{TID}/oauth2/devicecode"),
            &[("client_id", AZURE_CLI), ("scope", CLI_SCOPE)],
            &Browser::default(),
        )
        .await;
    assert_eq!(v1.status, StatusCode::OK, "{}", v1.body);

    let no_client = h
        .post(
            &format!("/{TID}/oauth2/v2.0/devicecode"),
            &[("scope", CLI_SCOPE)],
            &Browser::default(),
        )
        .await;
    assert_eq!(
        error_of(&no_client),
        (400, "invalid_request".into(), 900144)
    );
    let unknown = h
        .device_code(TID, "00000000-0000-0000-0000-000000000001", CLI_SCOPE)
        .await;
    assert_eq!(error_of(&unknown).2, 700016);
    let no_scope = h
        .post(
            &format!("/{TID}/oauth2/v2.0/devicecode"),
            &[("client_id", AZURE_CLI)],
            &Browser::default(),
        )
        .await;
    assert_eq!(error_of(&no_scope).2, 900144);
    let nowhere = h
        .device_code(TID, AZURE_CLI, "https://nowhere.example//.default")
        .await;
    assert_eq!(error_of(&nowhere), (400, "invalid_resource".into(), 500011));
    let v1_protocol = h
        .post(
            &format!("/{TID}/oauth2/v2.0/devicecode"),
            &[("client_id", AZURE_CLI), ("resource", ARM)],
            &Browser::default(),
        )
        .await;
    assert_eq!(error_of(&v1_protocol).2, 901002);
    let get = h
        .get(
            &format!("/{TID}/oauth2/v2.0/devicecode"),
            &Browser::default(),
        )
        .await;
    assert_eq!(error_of(&get).0, 405);
}

#[tokio::test]
async fn polling_is_pending_then_slow_down_then_the_tokens_once() {
    let h = fast_harness().await;
    let start = h
        .device_code("organizations", AZURE_CLI, CLI_SCOPE)
        .await
        .json();
    assert_eq!(start["interval"], 1);
    let device_code = start["device_code"].as_str().unwrap();
    let user_code = start["user_code"].as_str().unwrap();

    let pending = h.poll(AZURE_CLI, device_code).await;
    assert_eq!(
        error_of(&pending),
        (400, "authorization_pending".into(), 70016)
    );
    let too_soon = h.poll(AZURE_CLI, device_code).await;
    assert_eq!(error_of(&too_soon), (400, "slow_down".into(), 70016));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let pending = h.poll(AZURE_CLI, device_code).await;
    assert_eq!(error_of(&pending).1, "authorization_pending");

    // The person: the code (typed in lower case with a dash), the application, the password.
    let mut browser = Browser::default();
    let page = h.get("/devicelogin", &browser).await;
    browser.take(&page);
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("name=\"user_code\""), "{}", page.body);
    let csrf = page.hidden("csrf").unwrap();
    let typed = format!("{}-{}", &user_code[..4], &user_code[4..]).to_ascii_lowercase();
    let confirm = h
        .post(
            "/devicelogin",
            &[("csrf", &csrf), ("user_code", &typed)],
            &browser,
        )
        .await;
    assert!(
        confirm.body.contains(
            "Are you trying to sign in to <span class=\"app\">Microsoft Azure CLI</span>?"
        ),
        "{}",
        confirm.body
    );
    assert!(
        confirm.body.contains("user_impersonation")
            && confirm
                .body
                .contains("Windows Azure Service Management API"),
        "the permissions requested: {}",
        confirm.body
    );
    assert_eq!(confirm.hidden("ctx").unwrap(), user_code);
    let sign_in = h
        .post(
            "/devicelogin",
            &[("ctx", user_code), ("csrf", &csrf), ("confirm", "continue")],
            &browser,
        )
        .await;
    assert!(sign_in.body.contains("name=\"passwd\""), "{}", sign_in.body);
    // Still pending while the person signs in.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        error_of(&h.poll(AZURE_CLI, device_code).await).1,
        "authorization_pending"
    );
    let done = h
        .post(
            "/devicelogin",
            &[
                ("ctx", user_code),
                ("csrf", &csrf),
                ("login", "alice@contoso.onmicrosoft.com"),
                ("passwd", "alice-pw"),
            ],
            &browser,
        )
        .await;
    assert!(
        done.body.contains(
            "You have signed in to the <span class=\"app\">Microsoft Azure CLI</span> application on your device. You may now close this window."
        ),
        "no consent page for the Azure CLI: {}",
        done.body
    );
    assert!(done.cookies().iter().any(|(k, _)| k == "ESTSAUTH"));

    // Answered at once, even right after the previous poll: slow_down only applies while pending.
    let tokens = h.poll(AZURE_CLI, device_code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    let body = tokens.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["scope"],
        "https://management.core.windows.net//.default profile openid offline_access"
    );
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        at["aud"], ARM,
        "v1 token: aud is the identifier as requested"
    );
    assert_eq!(at["iss"], format!("{BASE}/{TID}/"));
    assert_eq!(at["ver"], "1.0");
    assert_eq!(at["tid"], TID);
    assert_eq!(at["appid"], AZURE_CLI);
    assert_eq!(at["appidacr"], "0", "a public client");
    assert_eq!(at["oid"], ALICE);
    assert_eq!(at["upn"], "alice@contoso.onmicrosoft.com");
    assert_eq!(at["scp"], "user_impersonation");
    assert!(at.get("idtyp").is_none() && at.get("roles").is_none());
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], AZURE_CLI);
    assert_eq!(id["iss"], format!("{BASE}/{TID}/v2.0"));
    assert_eq!(id["oid"], ALICE);
    assert_eq!(id["preferred_username"], "alice@contoso.onmicrosoft.com");
    assert!(id["auth_time"].is_i64());
    let info: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(body["client_info"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(info, serde_json::json!({"uid": ALICE, "utid": TID}));
    assert!(body["refresh_token"].is_string());

    // Single use.
    let again = h.poll(AZURE_CLI, device_code).await;
    assert_eq!(error_of(&again), (400, "invalid_grant".into(), 54005));
    // The page no longer accepts the code either.
    let reused = h
        .post(
            "/devicelogin",
            &[("csrf", &csrf), ("user_code", user_code)],
            &browser,
        )
        .await;
    assert!(
        reused.body.contains("already been used") && !reused.body.contains("name=\"confirm\""),
        "{}",
        reused.body
    );
}

#[tokio::test]
async fn declined_expired_unknown_and_foreign_device_codes() {
    let h = Harness::new().await;
    // Cancel on the confirmation page: the device learns it was declined, and it stays so.
    let start = h.device_code(TID, AZURE_CLI, CLI_SCOPE).await.json();
    let mut browser = Browser::default();
    let page = h.get("/devicelogin", &browser).await;
    browser.take(&page);
    let csrf = page.hidden("csrf").unwrap();
    let user_code = start["user_code"].as_str().unwrap();
    h.post(
        "/devicelogin",
        &[("csrf", &csrf), ("user_code", user_code)],
        &browser,
    )
    .await;
    let cancelled = h
        .post(
            "/devicelogin",
            &[("ctx", user_code), ("csrf", &csrf), ("confirm", "cancel")],
            &browser,
        )
        .await;
    assert!(
        cancelled.body.contains("Sign-in cancelled"),
        "{}",
        cancelled.body
    );
    let device_code = start["device_code"].as_str().unwrap();
    for _ in 0..2 {
        let declined = h.poll(AZURE_CLI, device_code).await;
        assert_eq!(
            error_of(&declined),
            (400, "authorization_declined".into(), 65004)
        );
    }
    // A declined code cannot be approved afterwards.
    let late = h
        .post(
            "/devicelogin",
            &[
                ("ctx", user_code),
                ("csrf", &csrf),
                ("login", "alice@contoso.onmicrosoft.com"),
                ("passwd", "alice-pw"),
            ],
            &browser,
        )
        .await;
    assert!(late.body.contains("already been used"), "{}", late.body);
    assert_eq!(
        error_of(&h.poll(AZURE_CLI, device_code).await).1,
        "authorization_declined"
    );

    // Declining the consent page declines too.
    let start = h
        .device_code(TID, PUBLIC, &format!("api://{API2}/read offline_access"))
        .await
        .json();
    let mut browser = Browser::default();
    let r = h
        .device_login(
            &mut browser,
            start["user_code"].as_str().unwrap(),
            "alice-pw",
            "deny",
        )
        .await;
    assert!(r.body.contains("Sign-in cancelled"), "{}", r.body);
    assert_eq!(
        error_of(&h.poll(PUBLIC, start["device_code"].as_str().unwrap()).await).1,
        "authorization_declined"
    );

    let unknown = h.poll(AZURE_CLI, "not-a-device-code").await;
    assert_eq!(
        error_of(&unknown),
        (400, "bad_verification_code".into(), 70018)
    );
    let missing = h
        .token(&[("grant_type", DEVICE_CODE_GRANT), ("client_id", AZURE_CLI)])
        .await;
    assert_eq!(error_of(&missing).2, 900144);
    let start = h.device_code(TID, AZURE_CLI, CLI_SCOPE).await.json();
    let foreign = h.poll(PUBLIC, start["device_code"].as_str().unwrap()).await;
    assert_eq!(error_of(&foreign), (400, "invalid_grant".into(), 70000));
    // A confidential client polls with its secret.
    let start = h
        .device_code(TID, WEB, "openid offline_access")
        .await
        .json();
    let no_secret = h.poll(WEB, start["device_code"].as_str().unwrap()).await;
    assert_eq!(
        error_of(&no_secret),
        (401, "invalid_client".into(), 7000218)
    );

    // Expiry: a short-lived code is refused on the page and at the token endpoint.
    let h = Harness::with_config(&directory(), |c| c.device_code_lifetime = 1).await;
    let start = h.device_code(TID, AZURE_CLI, CLI_SCOPE).await.json();
    assert_eq!(start["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = h
        .poll(AZURE_CLI, start["device_code"].as_str().unwrap())
        .await;
    assert_eq!(error_of(&expired), (400, "expired_token".into(), 70020));
    let mut browser = Browser::default();
    let page = h
        .device_login(
            &mut browser,
            start["user_code"].as_str().unwrap(),
            "alice-pw",
            "accept",
        )
        .await;
    assert!(
        !page.body.contains("name=\"confirm\"") && !page.body.contains("You have signed in"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn the_v1_token_path_serves_the_device_code_grant_only() {
    let h = Harness::new().await;
    let start = h.device_code(TID, AZURE_CLI, CLI_SCOPE).await.json();
    let poll = h
        .post(
            &format!("/{TID}/oauth2/token"),
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("client_id", AZURE_CLI),
                ("device_code", start["device_code"].as_str().unwrap()),
            ],
            &Browser::default(),
        )
        .await;
    assert_eq!(error_of(&poll).1, "authorization_pending");
    let with_resource = h
        .post(
            &format!("/{TID}/oauth2/token"),
            &[
                ("grant_type", DEVICE_CODE_GRANT),
                ("client_id", AZURE_CLI),
                ("resource", ARM),
                ("device_code", start["device_code"].as_str().unwrap()),
            ],
            &Browser::default(),
        )
        .await;
    assert_eq!(error_of(&with_resource).2, 901002);
    let other = h
        .post(
            &format!("/{TID}/oauth2/token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("scope", "https://management.azure.com/.default"),
            ],
            &Browser::default(),
        )
        .await;
    assert_eq!(error_of(&other).2, 901002);
}

#[tokio::test]
async fn refresh_tokens_are_redeemable_for_another_resource_the_client_may_use() {
    let h = Harness::new().await;
    let first = h.device_tokens(AZURE_CLI, CLI_SCOPE).await;
    let refresh = |rt: String, scope: &'static str| {
        let h = &h;
        async move {
            h.token(&[
                ("grant_type", "refresh_token"),
                ("client_id", AZURE_CLI),
                ("refresh_token", &rt),
                ("scope", scope),
                ("client_info", "1"),
                ("claims", CLAIMS),
            ])
            .await
        }
    };
    // ARM sign-in -> Microsoft Graph, as `az ad signed-in-user show` does.
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let graph = refresh(
        rt1.clone(),
        "https://graph.microsoft.com/.default offline_access openid profile",
    )
    .await;
    assert_eq!(graph.status, StatusCode::OK, "{}", graph.body);
    let g = claims(graph.json()["access_token"].as_str().unwrap());
    assert_eq!(g["aud"], "https://graph.microsoft.com");
    assert_eq!(g["appid"], AZURE_CLI);
    assert_eq!(g["oid"], ALICE);
    let scp: Vec<&str> = g["scp"].as_str().unwrap().split(' ').collect();
    assert!(scp.contains(&"User.Read"), "{scp:?}");
    assert!(
        !scp.contains(&"User.Read.All"),
        "admin-only permissions are not implicit: {scp:?}"
    );
    assert!(graph.json()["id_token"].is_string() && graph.json()["client_info"].is_string());
    // Graph's /me accepts it.
    let me = h
        .send(
            axum::http::Request::get("/v1.0/me")
                .header(
                    "authorization",
                    format!("Bearer {}", graph.json()["access_token"].as_str().unwrap()),
                )
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    // The other ARM spelling, with the rotated token.
    let rt2 = graph.json()["refresh_token"].as_str().unwrap().to_owned();
    let arm = refresh(rt2, "https://management.azure.com/.default offline_access").await;
    assert_eq!(arm.status, StatusCode::OK, "{}", arm.body);
    let a = claims(arm.json()["access_token"].as_str().unwrap());
    assert_eq!(a["aud"], "https://management.azure.com");
    assert_eq!(a["scp"], "user_impersonation");
    // A resource the CLI was never granted anything on: Entra's consent error, and the refresh
    // token is not used up by the refusal.
    let rt3 = arm.json()["refresh_token"].as_str().unwrap().to_owned();
    let api2 = refresh(
        rt3.clone(),
        "api://5d2e8f1a-4b6c-4d7e-8f9a-0b1c2d3e4f5b/.default",
    )
    .await;
    assert_eq!(error_of(&api2), (400, "invalid_grant".into(), 65001));
    assert_eq!(api2.json()["suberror"], "consent_required");
    let still = refresh(rt3, "https://graph.microsoft.com/.default").await;
    assert_eq!(still.status, StatusCode::OK, "{}", still.body);
    // Reuse detection is unchanged: the first token was rotated, so replaying it revokes all.
    let replay = refresh(rt1, "https://graph.microsoft.com/.default").await;
    assert_eq!(error_of(&replay).2, 50173);

    // A web app signed in for its API (consented) cannot turn that into an ARM token it was
    // never granted.
    let (user, _) = user_tokens(&h).await;
    let web_arm = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("refresh_token", user["refresh_token"].as_str().unwrap()),
            ("scope", "https://management.core.windows.net//.default"),
        ])
        .await;
    assert_eq!(error_of(&web_arm).2, 65001);
}

#[tokio::test]
async fn az_login_service_principal_gets_an_app_only_arm_token() {
    let h = Harness::new().await;
    let discovery = h
        .json_of(&format!("/{TID}/v2.0/.well-known/openid-configuration"))
        .await;
    assert_eq!(
        discovery["token_endpoint"],
        format!("{BASE}/{TID}/oauth2/v2.0/token")
    );
    let request = |secret: &'static str, scope: &'static str| {
        let h = &h;
        async move {
            h.token(&[
                ("client_id", WEB),
                ("grant_type", "client_credentials"),
                ("client_info", "1"),
                ("claims", CLAIMS),
                ("scope", scope),
                ("client_secret", secret),
            ])
            .await
        }
    };
    let r = request(WEB_SECRET, "https://management.core.windows.net//.default").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let body = r.json();
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], ARM);
    assert_eq!(at["iss"], format!("{BASE}/{TID}/"));
    assert_eq!(at["ver"], "1.0");
    assert_eq!(at["tid"], TID);
    assert_eq!(at["appid"], WEB);
    assert_eq!(at["appidacr"], "1");
    assert_eq!(at["idtyp"], "app");
    assert_eq!(at["sub"], at["oid"]);
    assert!(
        at.get("roles").is_none() && at.get("scp").is_none(),
        "app-only, no roles unless assigned: {at}"
    );
    let azure = request(WEB_SECRET, "https://management.azure.com/.default").await;
    assert_eq!(
        claims(azure.json()["access_token"].as_str().unwrap())["aud"],
        "https://management.azure.com"
    );
    let wrong = request(
        "not-the-secret",
        "https://management.core.windows.net//.default",
    )
    .await;
    assert_eq!(error_of(&wrong), (401, "invalid_client".into(), 7000215));
    // ARM is a resource, not a client: its appId has no credentials to authenticate with.
    let arm_as_client = h
        .token(&[
            ("client_id", ARM_APP_ID),
            ("grant_type", "client_credentials"),
            ("client_secret", "x"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .await;
    assert_eq!(error_of(&arm_as_client).0, 401);
}
