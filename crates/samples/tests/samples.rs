//! Both sample apps driven in-process: the front end calling a real back end on a loopback port,
//! stand-in back ends that refuse the call, and the back end's on-behalf-of exchange against the
//! local identity provider served over TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use easyauth_samples::common::{Settings, now};
use easyauth_samples::{backend, frontend};
use easyauth_testkit::TestIdp;
use easyauth_testkit::tenant::{ALICE, API, API_SECRET, TID, WEB};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// An unsigned JWT with `claims`: the apps decode without verifying.
fn fake_jwt(claims: &Value) -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn alice_token() -> String {
    fake_jwt(&json!({
        "aud": "api://backend-client-id", "azp": "frontend-client-id", "name": "Alice Smith",
        "scp": "user_impersonation", "exp": now() + 3600, "oid": "0b1c2d3e",
    }))
}

/// Serves `app` on a loopback port; returns its base URL.
async fn spawn(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

async fn get_page(app: &Router, path: &str, headers: &[(&str, &str)]) -> Page {
    let mut request = Request::get(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

fn front(backend_url: &str, auth_enabled: bool) -> Router {
    frontend::router(Settings::from_pairs([
        ("BACKEND_URL", backend_url),
        (
            "APPSETTING_WEBSITE_AUTH_ENABLED",
            if auth_enabled { "true" } else { "false" },
        ),
        (
            "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET",
            "front-secret-value",
        ),
    ]))
    .unwrap()
}

#[tokio::test]
async fn front_end_calls_the_back_end_with_the_users_token() {
    let back = spawn(backend::router(Settings::default()).unwrap()).await;
    // A trailing slash in BACKEND_URL is tolerated.
    let app = front(&format!("{back}/"), true);
    let token = alice_token();
    let page = get_page(
        &app,
        "/get-profile",
        &[("x-ms-token-aad-access-token", &token)],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<h2>API server - Profile</h2>"));
    assert!(
        page.body
            .contains(&format!("Remote url: {back}/get-profile</h5>")),
        "{}",
        page.body
    );
    assert!(page.body.contains("<h3>Success</h3>"), "{}", page.body);
    assert!(page.body.contains(r#"<b id="withAuthentication">true</b>"#));
    assert!(page.body.contains(r#"<b id="displayName">Alice Smith</b>"#));
    assert!(page.body.contains("API Service HTTP Headers"));
    assert!(
        page.body.contains(&format!("Bearer {}…", &token[..8])),
        "the back end's echo of the token is masked"
    );
    assert!(!page.body.contains(&token), "no full token on the page");
}

#[tokio::test]
async fn anonymous_profile_and_missing_token() {
    let back = spawn(backend::router(Settings::default()).unwrap()).await;
    // Before authentication is enabled: the tutorial's John Doe.
    let page = get_page(&front(&back, false), "/get-profile", &[]).await;
    assert!(page.body.contains(r#"<b id="displayName">John Doe</b>"#));
    assert!(
        page.body
            .contains(r#"<b id="withAuthentication">false</b>"#)
    );
    // With authentication enabled, no token is the front end's own error.
    let page = get_page(&front(&back, true), "/get-profile", &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Client: No access token found"));
    assert!(page.body.contains("/.auth/login"));
    // Platform casing ("True") counts as enabled too.
    let app = frontend::router(Settings::from_pairs([
        ("BACKEND_URL", back.as_str()),
        ("WEBSITE_AUTH_ENABLED", "True"),
    ]))
    .unwrap();
    let page = get_page(&app, "/get-profile", &[]).await;
    assert!(page.body.contains("Client: No access token found"));
}

/// A back end whose authentication refuses every call, as the module does in development mode.
fn refusing(status: StatusCode, reason: &'static str) -> Router {
    Router::new().route(
        "/get-profile",
        get(move || async move {
            (
                status,
                [(easyauth_module::REASON_HEADER, reason)],
                format!("{status}: {reason}"),
            )
                .into_response()
        }),
    )
}

#[tokio::test]
async fn refused_calls_show_status_reason_and_advice() {
    let token = alice_token();
    let reason401 = "the token's audience <api://graph> is not an allowed audience";
    let back = spawn(refusing(StatusCode::UNAUTHORIZED, reason401)).await;
    let page = get_page(
        &front(&back, true),
        "/get-profile",
        &[("x-ms-token-aad-access-token", &token)],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("The back end answered 401 Unauthorized"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(
            "<b id=\"reason\">the token's audience &lt;api://graph&gt; is not an allowed audience</b>"
        ),
        "reason shown, escaped: {}",
        page.body
    );
    assert!(page.body.contains("loginParameters"));
    assert!(
        page.body
            .contains("api://&lt;back-end-client-id&gt;/user_impersonation")
    );
    assert!(
        page.body
            .contains("This token's audience (aud) is api://backend-client-id")
    );
    assert!(!page.body.contains("<api://graph>"), "nothing unescaped");

    let reason403 = "client application frontend-client-id is not allowed";
    let back = spawn(refusing(StatusCode::FORBIDDEN, reason403)).await;
    let page = get_page(
        &front(&back, true),
        "/get-profile",
        &[("x-ms-token-aad-access-token", &token)],
    )
    .await;
    assert!(page.body.contains("The back end answered 403 Forbidden"));
    assert!(
        page.body
            .contains(&format!("<b id=\"reason\">{reason403}</b>"))
    );
    assert!(page.body.contains("allowedApplications"));
    assert!(page.body.contains("frontend-client-id"));

    // Without the development header: the status and the advice still show.
    let plain = Router::new().route("/get-profile", get(|| async { StatusCode::UNAUTHORIZED }));
    let back = spawn(plain).await;
    let page = get_page(
        &front(&back, true),
        "/get-profile",
        &[("x-ms-token-aad-access-token", &token)],
    )
    .await;
    assert!(page.body.contains("401 Unauthorized"));
    assert!(!page.body.contains("id=\"reason\""));
    assert!(page.body.contains("loginParameters"));
    assert!(page.body.contains("(empty body)"));

    // A redirect to sign-in is reported, not followed.
    let redirecting = Router::new().route(
        "/get-profile",
        get(|| async {
            (
                StatusCode::FOUND,
                [(header::LOCATION, "https://login.test/authorize")],
            )
        }),
    );
    let back = spawn(redirecting).await;
    let page = get_page(
        &front(&back, true),
        "/get-profile",
        &[("x-ms-token-aad-access-token", &token)],
    )
    .await;
    assert!(page.body.contains("302 Found"));
    assert!(page.body.contains("https://login.test/authorize"));
}

#[tokio::test]
async fn an_expired_token_is_pointed_out() {
    let back = spawn(refusing(StatusCode::UNAUTHORIZED, "the token has expired")).await;
    let expired = fake_jwt(&json!({"aud": "api://backend-client-id", "exp": now() - 60}));
    let page = get_page(
        &front(&back, true),
        "/get-profile",
        &[("x-ms-token-aad-access-token", &expired)],
    )
    .await;
    assert!(page.body.contains(r#"id="expired""#), "{}", page.body);
    assert!(page.body.contains("/.auth/refresh"));
    assert!(page.body.contains("This token expired at"));
}

#[tokio::test]
async fn unreachable_or_unset_back_end() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let page = get_page(
        &front(&format!("http://{closed}"), false),
        "/get-profile",
        &[],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Cannot call the back end"));
    assert!(page.body.contains("Check BACKEND_URL"));

    let app = frontend::router(Settings::default()).unwrap();
    let page = get_page(&app, "/get-profile", &[]).await;
    assert!(page.body.contains("BACKEND_URL is not set"));
}

#[tokio::test]
async fn a_token_that_is_not_a_jwt_gets_a_helpful_page() {
    let back = spawn(backend::router(Settings::default()).unwrap()).await;
    let app = front(&back, true);
    for bad in ["opaque-access-token-value", "a.%%%.c", "a.b.c.d.e"] {
        let headers = [
            ("x-ms-token-aad-access-token", bad),
            ("x-ms-client-principal-name", "alice@contoso.test"),
        ];
        for path in ["/", "/debug", "/get-profile"] {
            let page = get_page(&app, path, &headers).await;
            assert_eq!(page.status, StatusCode::OK, "{path} with {bad}");
            if path != "/" {
                assert!(
                    page.body.contains("cannot be read as a JWT"),
                    "{path}: {}",
                    page.body
                );
                assert!(page.body.contains("loginParameters"));
                assert!(!page.body.contains(bad), "the value is masked");
            }
        }
    }
    // The back end decides: without the module, it takes the opaque token as authentication and
    // falls back to the principal name for display.
    let page = get_page(
        &app,
        "/get-profile",
        &[
            ("x-ms-token-aad-access-token", "opaque-access-token-value"),
            ("x-ms-client-principal-name", "alice@contoso.test"),
        ],
    )
    .await;
    assert!(page.body.contains(r#"<b id="withAuthentication">true</b>"#));
}

#[tokio::test]
async fn debug_pages_mask_tokens_and_decode_name_and_scopes() {
    let app = front("http://127.0.0.1:9", true);
    let token = alice_token();
    let page = get_page(
        &app,
        "/debug",
        &[
            ("x-ms-token-aad-access-token", &token),
            ("x-ms-token-aad-id-token", "eyJhbGciOiJSUzI1NiJ9.e30.sig-id"),
            ("x-ms-token-aad-expires-on", "2030-01-01T00:00:00Z"),
            ("x-ms-client-principal-name", "alice@contoso.test"),
            ("cookie", "AppServiceAuthSession=sessionsecretvalue"),
        ],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(
        body.contains(r#"<b class="name">Alice Smith</b>"#),
        "{body}"
    );
    assert!(body.contains(r#"<b class="scp">user_impersonation</b>"#));
    assert!(body.contains("api://backend-client-id"));
    assert!(!body.contains(&token));
    assert!(body.contains(&format!("{}…", &token[..8])));
    assert!(!body.contains("sig-id"), "the ID token is masked");
    assert!(
        body.contains("2030-01-01T00:00:00Z"),
        "expiry is not a secret"
    );
    assert!(body.contains("AppServiceAuthSession=sessions…"));
    assert!(!body.contains("sessionsecretvalue"));
    assert!(body.contains("alice@contoso.test"));
    assert!(body.contains("HTTP Headers"));
    assert!(body.contains("App Service environment variables"));
    assert!(body.contains("BACKEND_URL"));
    assert!(body.contains("(hidden, 18 characters)"));
    assert!(!body.contains("front-secret-value"));
    assert!(body.contains("token NOT expired"));

    let page = get_page(&app, "/debug", &[]).await;
    assert!(page.body.contains("No access token"));
}

#[tokio::test]
async fn home_page_and_fallback() {
    let app = front("http://127.0.0.1:9", true);
    let page = get_page(
        &app,
        "/",
        &[("x-ms-client-principal-name", "<alice>@contoso.test")],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("<title>Easy auth - Get Profile from API server</title>")
    );
    assert!(
        page.body
            .contains("<h1>Easy auth - Get Profile from API server - 1</h1>")
    );
    assert!(
        page.body
            .contains(r#"<a href="/get-profile">Get user's profile</a>"#)
    );
    for link in ["/.auth/login", "/.auth/logout", "/.auth/refresh", "/debug"] {
        assert!(page.body.contains(&format!("href=\"{link}\"")), "{link}");
    }
    assert!(page.body.contains("&lt;alice&gt;@contoso.test"));
    let page = get_page(&app, "/somewhere/else", &[]).await;
    assert_eq!(page.status, StatusCode::FOUND);
    assert_eq!(page.headers[header::LOCATION], "/");
}

#[tokio::test]
async fn back_end_routes() {
    let app = backend::router(Settings::from_pairs([("WEBSITE_AUTH_ENABLED", "True")])).unwrap();
    let anonymous = get_page(&app, "/get-profile", &[]).await;
    assert_eq!(anonymous.status, StatusCode::OK);
    let json = anonymous.json();
    assert_eq!(json["route"], "/profile success");
    assert_eq!(
        json["profile"],
        json!({"displayName": "John Doe", "withAuthentication": false})
    );
    assert_eq!(json["error"], Value::Null);
    assert!(json.get("bearerToken").is_none());
    assert_eq!(json["env"]["WEBSITE_AUTH_ENABLED"], "True");

    for value in ["Bearer", "Bearer undefined", "Bearer null"] {
        let page = get_page(&app, "/get-profile", &[("authorization", value)]).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{value}");
        assert_eq!(page.json(), json!({"error": "No access token found"}));
    }

    let token = alice_token();
    let bearer = format!("Bearer {token}");
    let page = get_page(
        &app,
        "/get-profile",
        &[
            ("authorization", &bearer),
            ("x-ms-client-principal-name", "alice@contoso.test"),
        ],
    )
    .await;
    let json = page.json();
    assert_eq!(
        json["profile"],
        json!({"displayName": "Alice Smith", "withAuthentication": true})
    );
    assert_eq!(json["bearerToken"], format!("Bearer {}…", &token[..8]));
    assert_eq!(
        json["headers"]["authorization"],
        format!("Bearer {}…", &token[..8])
    );
    assert!(!page.body.contains(&token));

    // A token without a name: the principal the module injected names the user.
    let nameless = fake_jwt(&json!({"aud": "x", "scp": "y"}));
    let page = get_page(
        &app,
        "/get-profile",
        &[
            ("authorization", &format!("Bearer {nameless}")),
            ("x-ms-client-principal-name", "alice@contoso.test"),
        ],
    )
    .await;
    assert_eq!(page.json()["profile"]["displayName"], "alice@contoso.test");

    let debug = get_page(&app, "/debug", &[("authorization", &bearer)]).await;
    assert_eq!(debug.status, StatusCode::OK);
    assert!(debug.body.contains(r#"<b class="name">Alice Smith</b>"#));
    assert!(
        debug
            .body
            .contains(r#"<b class="scp">user_impersonation</b>"#)
    );
    assert!(
        debug.body.contains("\"route\": \"debug\""),
        "{}",
        debug.body
    );
    assert!(!debug.body.contains(&token));
    let debug = get_page(&app, "/debug", &[("authorization", "Bearer garbage")]).await;
    assert_eq!(debug.status, StatusCode::OK);
    assert!(debug.body.contains("cannot be read as a JWT"));

    let other = get_page(&app, "/anything", &[]).await;
    assert_eq!(other.json(), json!({"status": "unknown url request"}));
}

#[tokio::test]
async fn graph_mode_reports_configuration_and_provider_errors() {
    let token = alice_token();
    let bearer = format!("Bearer {token}");
    let missing = backend::router(Settings::from_pairs([("BACKEND_USE_GRAPH", "true")])).unwrap();
    let page = get_page(&missing, "/get-profile", &[("authorization", &bearer)]).await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    let message = page.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("WEBSITE_AUTH_CLIENT_ID"), "{message}");
    assert!(message.contains("MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"));
    assert_eq!(page.json()["error"]["route"], "/profile error");
    let page = get_page(&missing, "/get-profile", &[]).await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);

    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let unreachable = backend::router(Settings::from_pairs([
        ("BACKEND_USE_GRAPH", "true"),
        ("WEBSITE_AUTH_CLIENT_ID", "api"),
        ("MICROSOFT_PROVIDER_AUTHENTICATION_SECRET", "s"),
        (
            "WEBSITE_AUTH_OPENID_ISSUER",
            &format!("http://{closed}/tenant/v2.0"),
        ),
    ]))
    .unwrap();
    let page = get_page(&unreachable, "/get-profile", &[("authorization", &bearer)]).await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(
        page.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("discovery document"),
        "{}",
        page.body
    );

    // The front end shows the back end's failure and its message.
    let back = spawn(unreachable).await;
    let page = get_page(
        &front(&back, true),
        "/get-profile",
        &[("x-ms-token-aad-access-token", &token)],
    )
    .await;
    assert!(page.body.contains("502 Bad Gateway"), "{}", page.body);
    assert!(page.body.contains("discovery document"));
}

// ---- on-behalf-of against the local identity provider ----

fn directory() -> String {
    json!({
        "tenant": {"id": TID, "domain": "contoso.onmicrosoft.com"},
        "users": [easyauth_testkit::tenant::alice()],
        "applications": [
            {"appId": WEB, "displayName": "frontend", "web": {"redirectUris": ["https://frontend.test/.auth/login/aad/callback"]},
             "passwordCredentials": [{"secretText": "web-secret-value-0123456789"}]},
            {"appId": API, "displayName": "backend", "identifierUris": [format!("api://{API}")],
             "api": {"oauth2PermissionScopes": [{"id": "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "value": "user_impersonation", "type": "User"}]},
             "passwordCredentials": [{"secretText": API_SECRET}]}
        ],
        "oauth2PermissionGrants": [{"clientId": API, "consentType": "AllPrincipals",
                                    "resourceId": "00000003-0000-0000-c000-000000000000", "scope": "User.Read"}]
    })
    .to_string()
}

struct Provider {
    idp: TestIdp,
}

/// The local identity provider (and its Graph `/v1.0/me`) over TLS on a loopback port.
async fn provider() -> Provider {
    Provider {
        idp: TestIdp::start(&directory()).await,
    }
}

impl Provider {
    fn issuer(&self) -> String {
        self.idp.issuer(TID)
    }

    /// A user access token for the back end, signed by the provider, as the front end's
    /// `X-MS-TOKEN-AAD-ACCESS-TOKEN` would carry it.
    fn user_token(&self) -> String {
        let t = now();
        let claims = json!({
            "aud": format!("api://{API}"), "iss": self.issuer(), "iat": t - 10, "nbf": t - 10,
            "exp": t + 3600, "azp": WEB, "oid": ALICE, "tid": TID, "ver": "2.0",
            "scp": "user_impersonation", "name": "Alice Smith", "sub": "s",
        });
        self.idp
            .keys
            .sign(easyauth_entra::HeaderStyle::V2, &claims)
            .unwrap()
    }

    fn backend(&self, secret: &str) -> Router {
        backend::router_with_roots(
            Settings::from_pairs([
                ("BACKEND_USE_GRAPH", "true"),
                ("WEBSITE_AUTH_CLIENT_ID", API),
                ("WEBSITE_AUTH_OPENID_ISSUER", &self.issuer()),
                ("MICROSOFT_PROVIDER_AUTHENTICATION_SECRET", secret),
                ("GRAPH_URL", &self.idp.base),
            ]),
            self.idp.ca_pem().as_bytes(),
        )
        .unwrap()
    }
}

#[tokio::test]
async fn on_behalf_of_returns_the_users_graph_profile() {
    let idp = provider().await;
    let token = idp.user_token();
    let app = idp.backend(API_SECRET);
    let page = get_page(
        &app,
        "/get-profile",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let json = page.json();
    assert_eq!(json["route"], "/profile success");
    assert_eq!(json["profile"]["displayName"], "Alice Smith");
    assert_eq!(json["profile"]["withAuthentication"], true);
    assert_eq!(json["profile"]["id"], ALICE);
    assert_eq!(json["profile"]["mail"], "alice@contoso.onmicrosoft.com");
    assert!(
        json["env"]["MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"]
            .as_str()
            .unwrap()
            .starts_with("(hidden")
    );

    // The whole chain: front end → back end → token endpoint → Graph.
    let back = spawn(app).await;
    let page = get_page(
        &front(&back, true),
        "/get-profile",
        &[("x-ms-token-aad-access-token", &token)],
    )
    .await;
    assert!(
        page.body.contains(r#"<b id="displayName">Alice Smith</b>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains("alice@contoso.onmicrosoft.com"));

    // A wrong client secret: the provider's refusal is passed on.
    let wrong = idp.backend("not-the-secret");
    let page = get_page(
        &wrong,
        "/get-profile",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY, "{}", page.body);
    let error = &page.json()["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("on-behalf-of exchange was refused"),
        "{error}"
    );
    assert_eq!(error["server_response"]["status"], 401, "{error}");
}
