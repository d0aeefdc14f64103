//! The identity provider's HTTP surface, driven in-process through its real router: a table of
//! authorize and token failures (each with its AADSTS code and HTTP status), and the browser
//! flows' edge cases. Real-client interoperability (MSAL, azure-identity) lives in tests/e2e.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

mod common;
use common::*;

/// (name, form, expected HTTP status, expected AADSTS code)
type FailureCase<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, u32);

#[tokio::test]
async fn token_endpoint_failures_have_entras_codes_and_statuses() {
    let h = Harness::new().await;
    let (user, _) = user_tokens(&h).await;
    let user_at = user["access_token"].as_str().unwrap().to_owned();
    let api_default = format!("api://{API2}/.default");
    let api2_read = format!("api://{API2}/read");
    let two_resources = format!("User.Read api://{API2}/read");
    let cases: Vec<FailureCase<'_>> = vec![
        ("missing grant_type", vec![("client_id", WEB)], 400, 900144),
        (
            "unsupported grant",
            vec![("grant_type", "password"), ("client_id", WEB)],
            400,
            70003,
        ),
        (
            "v1 resource parameter",
            vec![("grant_type", "client_credentials"), ("resource", "x")],
            400,
            901002,
        ),
        (
            "repeated parameter",
            vec![
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            400,
            9002313,
        ),
        (
            "missing client_id",
            vec![
                ("grant_type", "client_credentials"),
                ("scope", &api_default),
            ],
            400,
            900144,
        ),
        (
            "unknown client",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "00000000-0000-0000-0000-000000000001"),
                ("client_secret", "x"),
                ("scope", &api_default),
            ],
            400,
            700016,
        ),
        (
            "wrong secret",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", WEB),
                ("client_secret", "nope"),
                ("scope", &api_default),
            ],
            401,
            7000215,
        ),
        (
            "no credential",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", WEB),
                ("scope", &api_default),
            ],
            401,
            7000218,
        ),
        (
            "public client with secret",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", PUBLIC),
                ("client_secret", "x"),
                ("scope", &api_default),
            ],
            401,
            700025,
        ),
        (
            "garbage assertion",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", WEB),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", "a.b.c"),
                ("scope", &api_default),
            ],
            401,
            700027,
        ),
        (
            "cc missing scope",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
            ],
            400,
            900144,
        ),
        (
            "cc named scope",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("scope", "User.Read"),
            ],
            400,
            70011,
        ),
        (
            "cc unknown resource",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("scope", "api://nobody/.default"),
            ],
            400,
            500011,
        ),
        (
            "unknown code",
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("code", "nope"),
                ("redirect_uri", REDIRECT),
            ],
            400,
            70000,
        ),
        (
            "code without redirect_uri",
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", WEB),
                ("code", "nope"),
            ],
            400,
            900144,
        ),
        (
            "unknown refresh token",
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("refresh_token", "nope"),
            ],
            400,
            70000,
        ),
        (
            "obo without requested_token_use",
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("client_id", API),
                ("client_secret", API_SECRET),
                ("assertion", "x"),
                ("scope", "User.Read"),
            ],
            400,
            900144,
        ),
        (
            "obo garbage assertion",
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("requested_token_use", "on_behalf_of"),
                ("client_id", API),
                ("client_secret", API_SECRET),
                ("assertion", "x.y.z"),
                ("scope", "User.Read"),
            ],
            400,
            50013,
        ),
        (
            "obo assertion for another app",
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("requested_token_use", "on_behalf_of"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("assertion", &user_at),
                ("scope", "User.Read"),
            ],
            400,
            50013,
        ),
        (
            "obo without consent",
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("requested_token_use", "on_behalf_of"),
                ("client_id", API),
                ("client_secret", API_SECRET),
                ("assertion", &user_at),
                ("scope", &api2_read),
            ],
            400,
            65001,
        ),
        (
            "obo two resources",
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("requested_token_use", "on_behalf_of"),
                ("client_id", API),
                ("client_secret", API_SECRET),
                ("assertion", &user_at),
                ("scope", &two_resources),
            ],
            400,
            28000,
        ),
    ];
    for (name, form, status, code) in cases {
        let reply = h.token(&form).await;
        assert_eq!(reply.status.as_u16(), status, "{name}: {}", reply.body);
        let body = reply.json();
        assert_eq!(reply.code(), code, "{name}: {}", reply.body);
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{name}: {description}"
        );
        for field in ["error", "timestamp", "trace_id", "correlation_id"] {
            assert!(body[field].is_string(), "{name}: {field} missing");
        }
    }
    let consent = h
        .token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("requested_token_use", "on_behalf_of"),
            ("client_id", API),
            ("client_secret", API_SECRET),
            ("assertion", &user_at),
            ("scope", &format!("api://{API2}/read")),
        ])
        .await;
    assert_eq!(consent.json()["suberror"], "consent_required");

    let get = h
        .send(
            Request::get(format!("/{TID}/oauth2/v2.0/token"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!((get.status.as_u16(), get.code()), (405, 900561));
    let unknown_tenant = h
        .post(
            "/nobody.test/oauth2/v2.0/token",
            &[("grant_type", "client_credentials")],
            &Browser::default(),
        )
        .await;
    assert_eq!(
        (unknown_tenant.status.as_u16(), unknown_tenant.code()),
        (400, 90002)
    );
    let bad_basic = h
        .send(
            Request::post(format!("/{TID}/oauth2/v2.0/token"))
                .header(header::AUTHORIZATION, "Basic !!!")
                .body(Body::from("grant_type=client_credentials"))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (bad_basic.status.as_u16(), bad_basic.code()),
        (400, 9002313)
    );
    let non_utf8 = h
        .send(
            Request::post(format!("/{TID}/oauth2/v2.0/token"))
                .body(Body::from(vec![0xff, 0xfe, b'=', 0x80]))
                .unwrap(),
        )
        .await;
    assert_eq!(
        non_utf8.status.as_u16(),
        400,
        "malformed bodies are client errors: {}",
        non_utf8.body
    );
}

#[tokio::test]
async fn authorize_failures_are_shown_or_redirected_with_their_codes() {
    let h = Harness::new().await;
    let browser = Browser::default();
    let base = |extra: &str| format!("client_id={WEB}&redirect_uri={}{extra}", urlenc(REDIRECT));
    // Shown on the identity provider's page: the redirect URI cannot be trusted yet.
    let page_cases = [
        (
            "missing client_id",
            format!(
                "redirect_uri={}&response_type=code&scope=openid",
                urlenc(REDIRECT)
            ),
            900144,
        ),
        (
            "unknown client",
            format!(
                "client_id=00000000-0000-0000-0000-000000000001&redirect_uri={}&response_type=code&scope=openid",
                urlenc(REDIRECT)
            ),
            700016,
        ),
        (
            "missing redirect_uri",
            format!("client_id={WEB}&response_type=code&scope=openid"),
            900971,
        ),
        (
            "unregistered redirect_uri",
            format!(
                "client_id={WEB}&redirect_uri={}&response_type=code&scope=openid",
                urlenc("https://evil.test/cb")
            ),
            50011,
        ),
    ];
    for (name, query, code) in page_cases {
        let r = h
            .get(&format!("/{TID}/oauth2/v2.0/authorize?{query}"), &browser)
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}");
        assert!(
            r.body.contains(&format!("AADSTS{code}:")),
            "{name}: {}",
            r.body
        );
        assert!(
            r.headers.get(header::LOCATION).is_none(),
            "{name} must not redirect"
        );
    }
    // Returned to the registered redirect URI.
    let redirect_cases = [
        (
            "unsupported response_type",
            base("&response_type=token&scope=openid&state=s"),
            "unsupported_response_type",
            900352,
        ),
        (
            "missing scope",
            base("&response_type=code&state=s"),
            "invalid_request",
            900144,
        ),
        (
            "unknown permission",
            base(&format!(
                "&response_type=code&state=s&scope={}",
                urlenc(&format!("api://{API}/nope"))
            )),
            "invalid_scope",
            70011,
        ),
        (
            "unknown resource",
            base("&response_type=code&state=s&scope=api%3A%2F%2Fnobody%2Fx"),
            "invalid_resource",
            500011,
        ),
        (
            "id_token without nonce",
            base("&response_type=code+id_token&scope=openid&state=s"),
            "invalid_request",
            900144,
        ),
        (
            "query mode with id_token",
            base("&response_type=code+id_token&response_mode=query&nonce=n&scope=openid&state=s"),
            "invalid_request",
            900352,
        ),
        (
            "prompt=none signed out",
            base("&response_type=code&scope=openid&prompt=none&state=s"),
            "login_required",
            50058,
        ),
        (
            "bad prompt",
            base("&response_type=code&scope=openid&prompt=sometimes&state=s"),
            "invalid_request",
            90023,
        ),
        (
            "bad PKCE method",
            base(
                "&response_type=code&scope=openid&state=s&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghij123&code_challenge_method=S512",
            ),
            "invalid_request",
            501491,
        ),
        (
            "v1 resource parameter",
            base("&response_type=code&scope=openid&state=s&resource=x"),
            "invalid_request",
            901002,
        ),
    ];
    for (name, query, error, code) in redirect_cases {
        let r = h
            .get(&format!("/{TID}/oauth2/v2.0/authorize?{query}"), &browser)
            .await;
        assert_eq!(r.status, StatusCode::FOUND, "{name}: {}", r.body);
        assert!(
            r.location().starts_with(REDIRECT),
            "{name}: {}",
            r.location()
        );
        let p = r.redirect_params();
        assert_eq!(p.get("error").map(String::as_str), Some(error), "{name}");
        assert!(
            p["error_description"].starts_with(&format!("AADSTS{code}: ")),
            "{name}: {}",
            p["error_description"]
        );
        assert_eq!(
            p.get("state").map(String::as_str),
            Some("s"),
            "{name}: state is echoed"
        );
    }
}

#[tokio::test]
async fn code_flow_with_pkce_consent_refresh_rotation_and_reuse_detection() {
    let h = Harness::new().await;
    let (tokens, mut browser) = user_tokens(&h).await;
    let at = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(at["aud"], API, "v2 API: aud is the appId");
    assert_eq!(at["iss"], format!("{BASE}/{TID}/v2.0"));
    assert_eq!(at["scp"], "user_impersonation");
    assert_eq!(at["azp"], WEB);
    assert_eq!(at["azpacr"], "1");
    assert_eq!(at["oid"], ALICE);
    assert_eq!(at["ver"], "2.0");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], WEB);
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["preferred_username"], "alice@contoso.onmicrosoft.com");
    assert_ne!(id["sub"], at["sub"], "sub is pairwise per application");
    assert_eq!(
        tokens["scope"],
        format!("api://{API}/user_impersonation profile openid offline_access")
    );
    assert!(tokens["expires_in"].is_i64());

    // Second sign-in: the session cookie skips the sign-in page, the stored consent the consent page.
    let again = h.authorize(&code_query(&api_scope(), ""), &browser).await;
    assert_eq!(again.status, StatusCode::FOUND, "{}", again.body);
    let code = again.redirect_params()["code"].clone();
    assert_eq!(again.redirect_params()["state"], "st-1");

    // PKCE: the wrong verifier fails without burning the code; the right one works once.
    let wrong = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "x".repeat(43).as_str()),
        ])
        .await;
    assert_eq!(wrong.code(), 501481);
    let other_redirect = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("code", &code),
            ("redirect_uri", "http://localhost"),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(other_redirect.code(), 50011);
    assert_eq!(redeem(&h, &code).await.status, StatusCode::OK);
    assert_eq!(redeem(&h, &code).await.code(), 54005, "a code works once");

    // Rotation: each refresh token works once; replaying a used one revokes the family.
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String| {
        let h = &h;
        async move {
            h.token(&[
                ("grant_type", "refresh_token"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("refresh_token", &rt),
                ("scope", &api_scope()),
            ])
            .await
        }
    };
    let r2 = refresh(rt1.clone()).await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.body);
    let rt2 = r2.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    assert_eq!(
        claims(r2.json()["access_token"].as_str().unwrap())["aud"],
        API
    );
    let reuse = refresh(rt1).await;
    assert_eq!(reuse.code(), 50173, "{}", reuse.body);
    assert_eq!(
        refresh(rt2).await.code(),
        50173,
        "the whole family is revoked"
    );
    let stolen = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", API),
            ("client_secret", API_SECRET),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(stolen.code(), 70000, "another client cannot use the token");

    // Logout ends the session: replaying the old cookie counts as signed out.
    let old_cookies = browser.clone();
    let out = h
        .get(
            &format!(
                "/{TID}/oauth2/v2.0/logout?client_id={WEB}&post_logout_redirect_uri={}&state=x",
                urlenc(REDIRECT)
            ),
            &browser,
        )
        .await;
    assert_eq!(out.status, StatusCode::FOUND);
    assert_eq!(out.location(), format!("{REDIRECT}?state=x"));
    browser.take(&out);
    let replay = h
        .authorize(&code_query(&api_scope(), ""), &old_cookies)
        .await;
    assert!(
        replay.body.contains("name=\"passwd\""),
        "a replayed cookie after logout must show the sign-in page"
    );
    let unregistered = h
        .get(
            &format!(
                "/{TID}/oauth2/v2.0/logout?client_id={WEB}&post_logout_redirect_uri={}",
                urlenc("https://evil.test/")
            ),
            &browser,
        )
        .await;
    assert_eq!(
        unregistered.status,
        StatusCode::OK,
        "unregistered targets are not followed"
    );
    assert!(unregistered.location().is_empty());
}

#[tokio::test]
async fn a_sign_in_with_only_openid_scopes_refreshes_into_a_graph_userinfo_token() {
    // The App Service module's default login scopes name no resource; Entra answers the sign-in
    // and every refresh of it with a token for Graph, so `/.auth/refresh` works.
    let h = Harness::new().await;
    let mut browser = Browser::default();
    let scope = "openid profile email offline_access";
    let reply = h.sign_in(&mut browser, &code_query(scope, "")).await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let code = reply.redirect_params()["code"].clone();
    let tokens = redeem(&h, &code).await.json();
    let first = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(first["aud"], "https://graph.microsoft.com");
    let refresh = |rt: String, scope: Option<&'static str>| {
        let h = &h;
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("refresh_token", rt.as_str()),
            ];
            form.extend(scope.map(|s| ("scope", s)));
            h.token(&form).await
        }
    };
    // Without `scope` (the sign-in's scopes apply), then naming the same OpenID scopes.
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    for asked in [None, Some(scope)] {
        let r = refresh(rt, asked).await;
        assert_eq!(r.status, StatusCode::OK, "{asked:?}: {}", r.body);
        let body = r.json();
        let at = claims(body["access_token"].as_str().unwrap());
        assert_eq!(at["aud"], first["aud"], "{asked:?}: Graph again");
        assert_eq!(at["scp"], first["scp"], "{asked:?}");
        assert_eq!(claims(body["id_token"].as_str().unwrap())["aud"], WEB);
        rt = body["refresh_token"].as_str().unwrap().to_owned();
    }
}

#[tokio::test]
async fn sign_in_page_rules() {
    let h = Harness::new().await;
    let mut browser = Browser::default();
    let page = h.authorize(&code_query(&api_scope(), ""), &browser).await;
    browser.take(&page);
    let ctx = page.hidden("ctx").unwrap();
    let csrf = page.hidden("csrf").unwrap();
    let bad = h
        .post(
            &format!("/{TID}/login"),
            &[
                ("ctx", &ctx),
                ("csrf", &csrf),
                ("login", "alice@contoso.onmicrosoft.com"),
                ("passwd", "wrong"),
            ],
            &browser,
        )
        .await;
    assert!(bad.body.contains("AADSTS50126"), "{}", bad.body);
    assert!(
        !bad.cookies().iter().any(|(k, _)| k == "ESTSAUTH"),
        "no session after a wrong password"
    );
    let forged = h
        .post(
            &format!("/{TID}/login"),
            &[
                ("ctx", &ctx),
                ("csrf", "forged"),
                ("login", "alice@contoso.onmicrosoft.com"),
                ("passwd", "alice-pw"),
            ],
            &browser,
        )
        .await;
    assert!(
        !forged.cookies().iter().any(|(k, _)| k == "ESTSAUTH"),
        "a forged CSRF token must not sign in"
    );
    let tampered = Browser {
        jar: HashMap::from([("ESTSAUTH".to_owned(), "dGFtcGVyZWQ".to_owned())]),
    };
    let r = h.authorize(&code_query(&api_scope(), ""), &tampered).await;
    assert!(
        r.body.contains("name=\"passwd\""),
        "a tampered session cookie counts as signed out"
    );

    // Declining consent returns access_denied.
    let signed = h
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
    browser.take(&signed);
    assert!(
        signed.body.contains("name=\"consent\""),
        "consent is asked the first time"
    );
    let declined = h
        .post(
            &format!("/{TID}/consent"),
            &[
                ("ctx", &signed.hidden("ctx").unwrap()),
                ("csrf", &signed.hidden("csrf").unwrap()),
                ("consent", "deny"),
            ],
            &browser,
        )
        .await;
    let p = declined.redirect_params();
    assert_eq!(p["error"], "access_denied");
    assert!(p["error_description"].starts_with("AADSTS65004:"));
    // prompt=none with a session but no consent: consent_required.
    let silent = h
        .authorize(&code_query(&api_scope(), "&prompt=none"), &browser)
        .await;
    assert_eq!(silent.redirect_params()["error"], "consent_required");
}

#[tokio::test]
async fn hybrid_form_post_and_fragment_responses() {
    let h = Harness::new().await;
    let mut browser = Browser::default();
    let query = format!(
        "client_id={WEB}&response_type=code+id_token&redirect_uri={}&scope=openid+profile&nonce=n-9&state=s-9&response_mode=form_post",
        urlenc(REDIRECT)
    );
    let r = h.sign_in(&mut browser, &query).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains(&format!("action=\"{REDIRECT}\"")));
    let code = r.hidden("code").expect("code");
    let id = claims(&r.hidden("id_token").expect("id_token"));
    assert_eq!(id["nonce"], "n-9");
    let c_hash = URL_SAFE_NO_PAD.encode(
        &aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, code.as_bytes()).as_ref()[..16],
    );
    assert_eq!(id["c_hash"], c_hash);
    assert_eq!(r.hidden("state").as_deref(), Some("s-9"));

    let fragment = h
        .get(
            &format!(
                "/{TID}/oauth2/v2.0/authorize?{}",
                query.replace("&response_mode=form_post", "")
            ),
            &browser,
        )
        .await;
    assert_eq!(fragment.status, StatusCode::FOUND);
    assert!(
        fragment.location().starts_with(&format!("{REDIRECT}#")),
        "{}",
        fragment.location()
    );
    assert!(fragment.redirect_params().contains_key("id_token"));
}

#[tokio::test]
async fn client_credentials_on_behalf_of_and_graph() {
    let h = Harness::new().await;
    let cc = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("scope", &format!("api://{API2}/.default")),
        ])
        .await;
    assert_eq!(cc.status, StatusCode::OK, "{}", cc.body);
    let body = cc.json();
    assert!(body.get("scope").is_none() && body.get("refresh_token").is_none());
    let app = claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        app["aud"],
        format!("api://{API2}"),
        "v1 API: aud is the identifier as requested"
    );
    assert_eq!(app["iss"], format!("{BASE}/{TID}/"));
    assert_eq!(app["roles"], serde_json::json!(["Data.Read"]));
    assert_eq!(app["appid"], WEB);
    assert!(app.get("scp").is_none());
    assert_eq!(app["sub"], app["oid"]);

    // HTTP Basic client authentication works too.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{WEB}:{WEB_SECRET}"));
    let r = h
        .send(
            Request::post(format!("/{TID}/oauth2/v2.0/token"))
                .header(header::AUTHORIZATION, format!("Basic {basic}"))
                .body(Body::from(format!(
                    "grant_type=client_credentials&scope={}",
                    urlenc(&format!("{API2}/.default"))
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let (user, _) = user_tokens(&h).await;
    let user_at = user["access_token"].as_str().unwrap();
    let obo = h
        .token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("requested_token_use", "on_behalf_of"),
            ("client_id", API),
            ("client_secret", API_SECRET),
            ("assertion", user_at),
            (
                "scope",
                "https://graph.microsoft.com/User.Read offline_access",
            ),
        ])
        .await;
    assert_eq!(obo.status, StatusCode::OK, "{}", obo.body);
    let graph_at = obo.json()["access_token"].as_str().unwrap().to_owned();
    let g = claims(&graph_at);
    assert_eq!(g["aud"], "https://graph.microsoft.com");
    assert_eq!(
        g["appid"], API,
        "the middle tier is the client of the new token"
    );
    assert_eq!(g["scp"], "User.Read");
    assert_eq!(g["oid"], ALICE);
    assert!(obo.json()["refresh_token"].is_string());

    let me = h
        .send(
            Request::get("/v1.0/me")
                .header(header::AUTHORIZATION, format!("Bearer {graph_at}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["id"], ALICE);
    assert_eq!(me.json()["displayName"], "Alice Smith");
    let anonymous = h
        .send(Request::get("/v1.0/me").body(Body::empty()).unwrap())
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.json()["error"]["code"],
        "InvalidAuthenticationToken"
    );
    assert!(anonymous.headers.contains_key(header::WWW_AUTHENTICATE));
    let wrong_aud = h
        .send(
            Request::get("/v1.0/me")
                .header(header::AUTHORIZATION, format!("Bearer {user_at}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(wrong_aud.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn discovery_documents_and_keys() {
    let h = Harness::new().await;
    let b = Browser::default();
    for t in [TID, "contoso.onmicrosoft.com"] {
        let v2 = h
            .get(&format!("/{t}/v2.0/.well-known/openid-configuration"), &b)
            .await
            .json();
        assert_eq!(v2["issuer"], format!("{BASE}/{TID}/v2.0"));
        assert_eq!(
            v2["token_endpoint"],
            format!("{BASE}/{TID}/oauth2/v2.0/token"),
            "GUID endpoints even by domain"
        );
        let v1 = h
            .get(&format!("/{t}/.well-known/openid-configuration"), &b)
            .await
            .json();
        assert_eq!(v1["issuer"], format!("{BASE}/{TID}/"));
    }
    let common = h
        .get("/common/v2.0/.well-known/openid-configuration", &b)
        .await
        .json();
    assert_eq!(common["issuer"], format!("{BASE}/{{tenantid}}/v2.0"));
    let keys = h
        .get(&format!("/{TID}/discovery/v2.0/keys"), &b)
        .await
        .json();
    let key = &keys["keys"][0];
    assert_eq!(key["kid"], key["x5t"]);
    assert_eq!(key["issuer"], format!("{BASE}/{TID}/v2.0"));
    let der = base64::engine::general_purpose::STANDARD
        .decode(key["x5c"][0].as_str().unwrap())
        .unwrap();
    let thumb = URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der).as_ref(),
    );
    assert_eq!(key["kid"], thumb.as_str());
    let v1keys = h.get(&format!("/{TID}/discovery/keys"), &b).await.json();
    assert!(v1keys["keys"][0].get("issuer").is_none());
    let missing = h
        .get("/nobody.test/v2.0/.well-known/openid-configuration", &b)
        .await;
    assert_eq!((missing.status.as_u16(), missing.code()), (400, 90002));
    let instance = h
        .get(
            &format!(
                "/common/discovery/instance?api-version=1.1&authorization_endpoint={}",
                urlenc(&format!("{BASE}/{TID}/oauth2/v2.0/authorize"))
            ),
            &b,
        )
        .await
        .json();
    assert_eq!(instance["metadata"][0]["aliases"][0], "idp.test");
}

#[tokio::test]
async fn malformed_input_never_causes_a_server_error() {
    let h = Harness::new().await;
    let b = Browser::default();
    let long = "a".repeat(100_000);
    let weird = [
        "%",
        "%zz",
        "\u{0}",
        "\u{202e}evil",
        "é",
        "'\"<script>",
        long.as_str(),
        "a=b&a=c",
        "&&&===",
    ];
    for w in weird {
        let e = urlenc(w);
        for path in [
            format!("/{TID}/oauth2/v2.0/authorize?{w}"),
            format!(
                "/{TID}/oauth2/v2.0/authorize?client_id={e}&redirect_uri={e}&scope={e}&response_type={e}"
            ),
            format!(
                "/{TID}/oauth2/v2.0/authorize?client_id={WEB}&redirect_uri={}&scope={e}&response_type=code&prompt={e}&code_challenge={e}",
                urlenc(REDIRECT)
            ),
            format!(
                "/{TID}/oauth2/v2.0/logout?post_logout_redirect_uri={e}&client_id={e}&id_token_hint={e}"
            ),
            format!("/{e}/v2.0/.well-known/openid-configuration"),
            format!("/common/discovery/instance?authorization_endpoint={e}"),
            format!("/v1.0/me?$select={e}"),
        ] {
            if path.parse::<axum::http::Uri>().is_err() {
                continue; // not even a valid request line: hyper refuses it before any handler
            }
            let r = h.get(&path, &b).await;
            assert!(!r.status.is_server_error(), "{path:.120}: {}", r.status);
        }
        for form in [
            vec![("grant_type", w)],
            vec![
                ("grant_type", "authorization_code"),
                ("client_id", w),
                ("code", w),
                ("redirect_uri", w),
            ],
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", WEB),
                ("client_secret", w),
                ("refresh_token", w),
            ],
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("scope", w),
            ],
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", WEB),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", w),
            ],
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("requested_token_use", "on_behalf_of"),
                ("client_id", API),
                ("client_secret", API_SECRET),
                ("assertion", w),
                ("scope", "User.Read"),
            ],
        ] {
            let r = h.token(&form).await;
            assert!(!r.status.is_server_error(), "{form:.120?}: {}", r.status);
            assert!(r.json()["error"].is_string());
        }
        for path in [format!("/{TID}/login"), format!("/{TID}/consent")] {
            let r = h
                .post(
                    &path,
                    &[
                        ("ctx", w),
                        ("csrf", w),
                        ("login", w),
                        ("passwd", w),
                        ("consent", w),
                    ],
                    &b,
                )
                .await;
            assert!(!r.status.is_server_error(), "{path}: {}", r.status);
        }
        let me = h
            .send(
                Request::get("/v1.0/me")
                    .header(header::AUTHORIZATION, format!("Bearer {}", e))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn prompts_hints_pre_authorization_and_client_info() {
    let h = Harness::new().await;
    let mut browser = Browser::default();
    // A pre-authorized client gets no consent page, only the sign-in page.
    let scope = format!("openid profile api://{PREAUTH}/access_as_user");
    let first = h
        .sign_in(&mut browser, &code_query(&scope, "&client_info=1"))
        .await;
    assert_eq!(
        first.status,
        StatusCode::FOUND,
        "pre-authorized: straight back to the app: {}",
        first.body
    );
    let params = first.redirect_params();
    let info: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&params["client_info"]).unwrap()).unwrap();
    assert_eq!(info, serde_json::json!({"uid": ALICE, "utid": TID}));
    let tokens = h
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("code", &params["code"]),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_info", "1"),
        ])
        .await
        .json();
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["scp"],
        "access_as_user"
    );
    assert!(tokens["client_info"].is_string(), "client_info when asked");

    // With a session: prompt=login and select_account show the sign-in page again...
    for prompt in ["login", "select_account"] {
        let r = h
            .authorize(&code_query(&scope, &format!("&prompt={prompt}")), &browser)
            .await;
        assert!(r.body.contains("name=\"passwd\""), "prompt={prompt}");
    }
    // ...as does a login_hint naming someone else; the matching hint and prompt=none do not.
    let other = h
        .authorize(
            &code_query(&scope, "&login_hint=bob%40contoso.onmicrosoft.com"),
            &browser,
        )
        .await;
    assert!(
        other.body.contains("name=\"passwd\"")
            && other.body.contains("bob@contoso.onmicrosoft.com")
    );
    let same = h
        .authorize(
            &code_query(&scope, "&login_hint=alice%40contoso.onmicrosoft.com"),
            &browser,
        )
        .await;
    assert_eq!(same.status, StatusCode::FOUND);
    let silent = h
        .authorize(&code_query(&scope, "&prompt=none"), &browser)
        .await;
    assert!(
        silent.redirect_params().contains_key("code"),
        "prompt=none with a session and consent"
    );
    // prompt=consent asks again even though consent exists.
    let reconsent = h
        .authorize(&code_query(&api_scope(), "&prompt=consent"), &browser)
        .await;
    assert!(
        reconsent.body.contains("name=\"consent\""),
        "{}",
        reconsent.body
    );
}

#[tokio::test]
async fn userinfo_and_the_v1_paths_the_v1_document_advertises() {
    let h = Harness::new().await;
    let mut browser = Browser::default();
    // Only OpenID Connect scopes: the access token is for Graph's userinfo.
    let r = h
        .sign_in(&mut browser, &code_query("openid profile email", ""))
        .await;
    let tokens = redeem(&h, &r.redirect_params()["code"]).await.json();
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(claims(at)["aud"], "https://graph.microsoft.com");
    let info = h
        .send(
            Request::get("/oidc/userinfo")
                .header(header::AUTHORIZATION, format!("Bearer {at}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        info.json()["sub"],
        id["sub"],
        "userinfo's sub is the client's ID-token sub"
    );
    assert_eq!(info.json()["email"], "alice@contoso.onmicrosoft.com");
    let anonymous = h
        .send(Request::get("/oidc/userinfo").body(Body::empty()).unwrap())
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers.contains_key(header::WWW_AUTHENTICATE));

    let v1 = h
        .json_of(&format!("/{TID}/.well-known/openid-configuration"))
        .await;
    let token_path = v1["token_endpoint"]
        .as_str()
        .unwrap()
        .trim_start_matches(BASE)
        .to_owned();
    let refused = h
        .post(
            &token_path,
            &[("grant_type", "client_credentials"), ("resource", "x")],
            &Browser::default(),
        )
        .await;
    assert_eq!((refused.status.as_u16(), refused.code()), (400, 901002));
    let logout_path = v1["end_session_endpoint"]
        .as_str()
        .unwrap()
        .trim_start_matches(BASE)
        .to_owned();
    let out = h.get(&logout_path, &browser).await;
    assert_eq!(
        out.status,
        StatusCode::OK,
        "the v1 logout path signs out too"
    );
}
