//! Microsoft Graph v1.0 for the directory, driven in-process through the real router: every
//! route's happy path, each error code, refused writes leaving objects unchanged, and the
//! effects of Graph writes on sign-in and tokens (new scopes, admin grants, new secrets).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use easyauth_entra::{Idp, IdpConfig, Seed};
use easyauth_store::{MemoryStore, Store};
use serde_json::{Value, json};

mod common;
use common::*;

const GRAPH: &str = "00000003-0000-0000-c000-000000000000";
const APPLICATION_READ_ALL: &str = "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30";
const DIRECTORY_READWRITE_ALL: &str = "19dbc75e-c2e2-444c-a770-ec69d8559fc7";
/// A confidential client with no Graph permission at all.
const NOROLE: &str = "4b5c6d7e-8f9a-4b0c-9d1e-2f3a4b5c6d7e";
const NOROLE_SECRET: &str = "norole-secret-value-0123456789";

/// The shared test tenant, plus Graph app roles: WEB may manage the directory, API may read
/// applications, NOROLE may do nothing.
fn graph_directory() -> String {
    let mut dir: Value = serde_json::from_str(&directory()).unwrap();
    dir["applications"].as_array_mut().unwrap().push(json!({
        "appId": NOROLE, "displayName": "norole",
        "passwordCredentials": [{"secretText": NOROLE_SECRET}]
    }));
    let assignments = dir["appRoleAssignments"].as_array_mut().unwrap();
    assignments.push(
        json!({"principalId": WEB, "resourceId": GRAPH, "appRoleId": DIRECTORY_READWRITE_ALL}),
    );
    assignments
        .push(json!({"principalId": API, "resourceId": GRAPH, "appRoleId": APPLICATION_READ_ALL}));
    dir.to_string()
}

async fn start(store: Arc<dyn Store>) -> Harness {
    start_with(store, &graph_directory()).await
}

async fn start_with(store: Arc<dyn Store>, directory: &str) -> Harness {
    let seed = Seed::parse("test.json", directory).expect("directory");
    let idp = Idp::start(store, IdpConfig::new(BASE), &seed)
        .await
        .expect("start");
    Harness { app: idp.router() }
}

async fn harness() -> Harness {
    start(Arc::new(MemoryStore::new())).await
}

async fn app_token(h: &Harness, client: &str, secret: &str) -> String {
    let r = h
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["access_token"].as_str().unwrap().to_owned()
}

async fn writer(h: &Harness) -> String {
    app_token(h, WEB, WEB_SECRET).await
}

/// Alice's delegated Graph token (WEB asks for User.Read; she consents).
async fn alice_graph_token(h: &Harness) -> String {
    let mut browser = Browser::default();
    let reply = h
        .sign_in(
            &mut browser,
            &code_query("openid https://graph.microsoft.com/User.Read", ""),
        )
        .await;
    let code = reply.redirect_params()["code"].clone();
    let tokens = redeem(h, &code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    tokens.json()["access_token"].as_str().unwrap().to_owned()
}

async fn call(h: &Harness, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("client-request-id", "crid-1");
    if !token.is_empty() {
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    h.send(req.body(body).unwrap()).await
}

fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let e = r.json();
    assert_eq!(e["error"]["code"], code, "{}", r.body);
    assert!(e["error"]["message"].is_string());
    assert!(e["error"]["innerError"]["request-id"].is_string());
    assert_eq!(e["error"]["innerError"]["client-request-id"], "crid-1");
    assert!(e["error"]["innerError"]["date"].is_string());
}

async fn create_app(h: &Harness, token: &str, body: Value) -> Value {
    let r = call(h, "POST", "/v1.0/applications", token, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()
}

/// The object id of a directory-file app, found as az finds it.
async fn object_id(h: &Harness, token: &str, app_id: &str) -> String {
    let r = call(
        h,
        "GET",
        &format!("/v1.0/applications?$filter=appId%20eq%20'{app_id}'"),
        token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["value"][0]["id"].as_str().unwrap().to_owned()
}

async fn sp_id(h: &Harness, token: &str, app_id: &str) -> String {
    let r = call(
        h,
        "GET",
        &format!(
            "/v1.0/servicePrincipals?$filter=servicePrincipalNames/any(c:c%20eq%20'{app_id}')"
        ),
        token,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()["value"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn applications_create_read_update_delete() {
    let h = harness().await;
    let t = writer(&h).await;
    let app = create_app(&h, &t, json!({"displayName": "My Graph App"})).await;
    // Every key the Azure CLI reads is present.
    for key in [
        "id",
        "appId",
        "displayName",
        "identifierUris",
        "api",
        "web",
        "spa",
        "publicClient",
        "requiredResourceAccess",
        "passwordCredentials",
        "keyCredentials",
        "appRoles",
        "signInAudience",
        "createdDateTime",
        "optionalClaims",
        "tags",
    ] {
        assert!(app.get(key).is_some(), "{key} missing: {app}");
    }
    for key in [
        "oauth2PermissionScopes",
        "preAuthorizedApplications",
        "requestedAccessTokenVersion",
    ] {
        assert!(app["api"].get(key).is_some(), "api.{key} missing");
    }
    assert!(app["web"]["implicitGrantSettings"].is_object());
    assert!(
        app["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#applications/$entity")
    );
    let id = app["id"].as_str().unwrap();
    let app_id = app["appId"].as_str().unwrap();

    let by_id = call(&h, "GET", &format!("/v1.0/applications/{id}"), &t, None).await;
    assert_eq!(by_id.status, StatusCode::OK, "{}", by_id.body);
    assert_eq!(by_id.json()["appId"], app_id);
    let by_app_id = call(
        &h,
        "GET",
        &format!("/v1.0/applications(appId='{app_id}')"),
        &t,
        None,
    )
    .await;
    assert_eq!(by_app_id.json()["id"], id);
    // az sends the quotes percent-encoded.
    let encoded = call(
        &h,
        "GET",
        &format!("/v1.0/applications(appId=%27{app_id}%27)"),
        &t,
        None,
    )
    .await;
    assert_eq!(encoded.status, StatusCode::OK, "{}", encoded.body);

    for (filter, expected) in [
        ("startswith(displayName,'my graph')", 1),
        ("startswith(displayName,'nope')", 0),
        ("displayName eq 'My Graph App'", 1),
        (&format!("appId eq '{app_id}'") as &str, 1),
    ] {
        let r = call(
            &h,
            "GET",
            &format!("/v1.0/applications?$filter={}", urlenc(filter)),
            &t,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{filter}: {}", r.body);
        assert_eq!(
            r.json()["value"].as_array().unwrap().len(),
            expected,
            "{filter}"
        );
    }
    // The built-in applications are not registrations of the tenant.
    let all = call(&h, "GET", "/v1.0/applications", &t, None).await.json();
    assert!(
        all["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["appId"] != GRAPH)
    );
    let top = call(
        &h,
        "GET",
        "/v1.0/applications?$top=2&$select=appId,displayName",
        &t,
        None,
    )
    .await
    .json();
    let page = top["value"].as_array().unwrap();
    assert_eq!(page.len(), 2);
    assert!(page[0].get("web").is_none() && page[0].get("appId").is_some());

    let patch = call(
        &h,
        "PATCH",
        &format!("/v1.0/applications/{id}"),
        &t,
        Some(json!({"identifierUris": [format!("api://{app_id}")],
                    "web": {"redirectUris": ["https://app.example/cb", "http://localhost:5000/cb"]}})),
    )
    .await;
    assert_eq!(patch.status, StatusCode::NO_CONTENT, "{}", patch.body);
    let after = call(&h, "GET", &format!("/v1.0/applications/{id}"), &t, None)
        .await
        .json();
    assert_eq!(after["identifierUris"], json!([format!("api://{app_id}")]));
    assert_eq!(
        after["displayName"], "My Graph App",
        "untouched properties stay"
    );
    // A complex property merges: implicit-grant settings survive a redirect URI change.
    call(
        &h,
        "PATCH",
        &format!("/v1.0/applications/{id}"),
        &t,
        Some(json!({"web": {"implicitGrantSettings": {"enableIdTokenIssuance": true}}})),
    )
    .await;
    let merged = call(&h, "GET", &format!("/v1.0/applications/{id}"), &t, None)
        .await
        .json();
    assert_eq!(merged["web"]["redirectUris"].as_array().unwrap().len(), 2);
    assert_eq!(
        merged["web"]["implicitGrantSettings"]["enableIdTokenIssuance"],
        true
    );

    let delete = call(&h, "DELETE", &format!("/v1.0/applications/{id}"), &t, None).await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT, "{}", delete.body);
    let gone = call(&h, "GET", &format!("/v1.0/applications/{id}"), &t, None).await;
    assert_error(&gone, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
}

#[tokio::test]
async fn each_error_code() {
    let h = harness().await;
    let t = writer(&h).await;
    let anonymous = call(&h, "GET", "/v1.0/applications", "", None).await;
    assert_error(
        &anonymous,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
    );
    assert!(anonymous.headers.contains_key(header::WWW_AUTHENTICATE));
    let garbage = call(&h, "GET", "/v1.0/applications", "not.a.jwt", None).await;
    assert_error(
        &garbage,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
    );
    // A token for another audience (the API) is not a Graph token.
    let (user, _) = user_tokens(&h).await;
    let wrong_aud = call(
        &h,
        "GET",
        "/v1.0/applications",
        user["access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_error(
        &wrong_aud,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
    );

    let reader = app_token(&h, API, API_SECRET).await;
    let read = call(&h, "GET", "/v1.0/applications", &reader, None).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let write = call(
        &h,
        "POST",
        "/v1.0/applications",
        &reader,
        Some(json!({"displayName": "x"})),
    )
    .await;
    assert_error(&write, StatusCode::FORBIDDEN, "Authorization_RequestDenied");
    assert_eq!(
        write.json()["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    let nobody = app_token(&h, NOROLE, NOROLE_SECRET).await;
    for path in [
        "/v1.0/applications",
        "/v1.0/servicePrincipals",
        "/v1.0/oauth2PermissionGrants",
        "/v1.0/users",
    ] {
        let r = call(&h, "GET", path, &nobody, None).await;
        assert_error(&r, StatusCode::FORBIDDEN, "Authorization_RequestDenied");
    }
    let grants = call(&h, "GET", "/v1.0/oauth2PermissionGrants", &reader, None).await;
    assert_eq!(
        grants.status,
        StatusCode::OK,
        "Application.Read.All reads grants"
    );

    let missing = call(
        &h,
        "GET",
        "/v1.0/applications/5e0c7d1a-0000-4000-8000-000000000000",
        &t,
        None,
    )
    .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    for filter in [
        "displayName ne 'x'",
        "appId eq 'a' or appId eq 'b'",
        "endswith(displayName,'x')",
        "tags/any(c:c eq 'x')",
    ] {
        let r = call(
            &h,
            "GET",
            &format!("/v1.0/applications?$filter={}", urlenc(filter)),
            &t,
            None,
        )
        .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "Request_UnsupportedQuery");
    }
    let orderby = call(
        &h,
        "GET",
        "/v1.0/applications?$orderby=displayName",
        &t,
        None,
    )
    .await;
    assert_error(
        &orderby,
        StatusCode::BAD_REQUEST,
        "Request_UnsupportedQuery",
    );
    let top = call(&h, "GET", "/v1.0/applications?$top=0", &t, None).await;
    assert_error(&top, StatusCode::BAD_REQUEST, "Request_BadRequest");

    let no_name = call(
        &h,
        "POST",
        "/v1.0/applications",
        &t,
        Some(json!({"identifierUris": []})),
    )
    .await;
    assert_error(&no_name, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let bad_json = h
        .send(
            Request::post("/v1.0/applications")
                .header(header::AUTHORIZATION, format!("Bearer {t}"))
                .header("client-request-id", "crid-1")
                .body(Body::from("{\"displayName\": "))
                .unwrap(),
        )
        .await;
    assert_error(&bad_json, StatusCode::BAD_REQUEST, "Request_BadRequest");
    // A wrong type is reported with its place in the body.
    let typed = call(
        &h,
        "POST",
        "/v1.0/applications",
        &t,
        Some(json!({"displayName": "x", "web": {"redirectUris": [5]}})),
    )
    .await;
    assert_error(&typed, StatusCode::BAD_REQUEST, "Request_BadRequest");
    assert!(
        typed.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("web.redirectUris[0]"),
        "{}",
        typed.body
    );
    let unknown = call(
        &h,
        "POST",
        "/v1.0/applications",
        &t,
        Some(json!({"displayName": "x", "shoeSize": 9})),
    )
    .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let huge = call(
        &h,
        "POST",
        "/v1.0/applications",
        &t,
        Some(json!({"displayName": "x".repeat(300 * 1024)})),
    )
    .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", huge.body);
    assert_eq!(huge.json()["error"]["code"], "Request_BadRequest");
    let segment = call(&h, "GET", "/v1.0/groups", &t, None).await;
    assert_eq!(segment.status, StatusCode::BAD_REQUEST);
    let not_json_array = call(&h, "POST", "/v1.0/applications", &t, Some(json!([1, 2]))).await;
    assert_error(
        &not_json_array,
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
    );
    let method = call(&h, "PUT", "/v1.0/applications", &t, Some(json!({}))).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn refused_writes_leave_the_object_unchanged() {
    let h = harness().await;
    let t = writer(&h).await;
    let scope_id = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let app = create_app(
        &h,
        &t,
        json!({"displayName": "guarded",
               "api": {"oauth2PermissionScopes": [{"id": scope_id, "value": "read", "type": "User", "isEnabled": true}]},
               "web": {"redirectUris": ["https://guarded.example/cb"]}}),
    )
    .await;
    let id = app["id"].as_str().unwrap().to_owned();
    let path = format!("/v1.0/applications/{id}");
    let before = call(&h, "GET", &path, &t, None).await.json();
    let scope = |value: &str, id: &str| json!({"id": id, "value": value, "type": "User", "isEnabled": true});
    let other = "1a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
    let refused = [
        (
            json!({"identifierUris": ["not a uri"]}),
            "Request_BadRequest",
        ),
        (
            json!({"identifierUris": [format!("api://{API}")]}),
            "Request_BadRequest",
        ),
        (
            json!({"identifierUris": ["https://graph.microsoft.com"]}),
            "Request_BadRequest",
        ),
        (
            json!({"identifierUris": ["api://x?y=1"]}),
            "Request_BadRequest",
        ),
        (
            json!({"identifierUris": ["api://x#frag"]}),
            "Request_BadRequest",
        ),
        (json!({"displayName": "  "}), "Request_BadRequest"),
        (
            json!({"api": {"oauth2PermissionScopes": []}}),
            "CannotDeleteOrUpdateEnabledEntitlement",
        ),
        (
            json!({"api": {"oauth2PermissionScopes": [scope("renamed", scope_id)]}}),
            "CannotDeleteOrUpdateEnabledEntitlement",
        ),
        (
            json!({"api": {"oauth2PermissionScopes": [scope("read", scope_id), scope("two words", other)]}}),
            "Request_BadRequest",
        ),
        (
            json!({"api": {"oauth2PermissionScopes": [scope("read", scope_id), scope(".hidden", other)]}}),
            "Request_BadRequest",
        ),
        (
            json!({"api": {"oauth2PermissionScopes": [scope("read", scope_id), scope("READ", other)]}}),
            "Request_BadRequest",
        ),
        (
            json!({"api": {"oauth2PermissionScopes": [scope("read", scope_id), scope("other", scope_id)]}}),
            "Request_BadRequest",
        ),
        (
            json!({"api": {"oauth2PermissionScopes": [scope("read", scope_id), scope("other", "not-a-guid")]}}),
            "Request_BadRequest",
        ),
        (
            json!({"web": {"redirectUris": ["http://example.com/cb"]}}),
            "Request_BadRequest",
        ),
        (
            json!({"web": {"redirectUris": ["https://example.com/cb#x"]}}),
            "Request_BadRequest",
        ),
        (
            json!({"spa": {"redirectUris": ["relative/cb"]}}),
            "Request_BadRequest",
        ),
        (json!({"passwordCredentials": []}), "Request_BadRequest"),
        (
            json!({"appId": "11111111-1111-4111-8111-111111111111"}),
            "Request_BadRequest",
        ),
    ];
    for (body, code) in refused {
        let r = call(&h, "PATCH", &path, &t, Some(body.clone())).await;
        assert_error(&r, StatusCode::BAD_REQUEST, code);
        let now = call(&h, "GET", &path, &t, None).await.json();
        assert_eq!(now, before, "{body} changed the app");
    }
    // Disabled first, then removed: Entra's order.
    let disabled = json!({"api": {"oauth2PermissionScopes": [{"id": scope_id, "value": "read", "type": "User", "isEnabled": false}]}});
    let r = call(&h, "PATCH", &path, &t, Some(disabled)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let r = call(
        &h,
        "PATCH",
        &path,
        &t,
        Some(json!({"api": {"oauth2PermissionScopes": []}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // A create that breaks a rule creates nothing.
    let count = call(&h, "GET", "/v1.0/applications", &t, None).await.json()["value"]
        .as_array()
        .unwrap()
        .len();
    let r = call(
        &h,
        "POST",
        "/v1.0/applications",
        &t,
        Some(json!({"displayName": "dup", "identifierUris": [format!("api://{API}")]})),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let after = call(&h, "GET", "/v1.0/applications", &t, None).await.json()["value"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(count, after);
}

#[tokio::test]
async fn a_scope_added_through_patch_is_usable_at_once() {
    let h = harness().await;
    let t = writer(&h).await;
    let id = object_id(&h, &t, API).await;
    let current = call(&h, "GET", &format!("/v1.0/applications/{id}"), &t, None)
        .await
        .json();
    let mut scopes = current["api"]["oauth2PermissionScopes"]
        .as_array()
        .unwrap()
        .clone();
    scopes.push(
        json!({"id": "2b1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d", "value": "Files.Write", "type": "User",
                       "isEnabled": true, "adminConsentDisplayName": "Write files"}),
    );
    let r = call(
        &h,
        "PATCH",
        &format!("/v1.0/applications/{id}"),
        &t,
        Some(json!({"api": {"oauth2PermissionScopes": scopes}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);

    let mut browser = Browser::default();
    let reply = h
        .sign_in(
            &mut browser,
            &code_query(&format!("openid api://{API}/Files.Write"), ""),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FOUND, "{}", reply.body);
    let tokens = redeem(&h, &reply.redirect_params()["code"]).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    assert_eq!(
        claims(tokens.json()["access_token"].as_str().unwrap())["scp"],
        "Files.Write"
    );
}

#[tokio::test]
async fn an_admin_grant_through_graph_removes_the_consent_prompt() {
    let h = harness().await;
    let t = writer(&h).await;
    let mut browser = Browser::default();
    let first = h
        .sign_in(&mut browser, &code_query("openid profile", ""))
        .await;
    assert_eq!(first.status, StatusCode::FOUND, "{}", first.body);
    let scope = format!("openid api://{API2}/read");
    let silent = h
        .authorize(&code_query(&scope, "&prompt=none"), &browser)
        .await;
    assert_eq!(silent.redirect_params()["error"], "consent_required");

    let client = sp_id(&h, &t, WEB).await;
    let resource = sp_id(&h, &t, API2).await;
    let created = call(&h, "POST", "/v1.0/oauth2PermissionGrants", &t,
        Some(json!({"clientId": client, "consentType": "AllPrincipals", "principalId": null, "resourceId": resource, "scope": "read"}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let grant = created.json();
    assert_eq!(grant["clientId"], client.as_str());
    assert_eq!(grant["resourceId"], resource.as_str());

    let granted = h
        .authorize(&code_query(&scope, "&prompt=none"), &browser)
        .await;
    assert!(
        granted.redirect_params().contains_key("code"),
        "{}",
        granted.location()
    );
}

#[tokio::test]
async fn grants_list_update_delete() {
    let h = harness().await;
    let t = writer(&h).await;
    let api = sp_id(&h, &t, API).await;
    let graph = sp_id(&h, &t, "https://graph.microsoft.com").await;
    // The directory file's grant (API -> Graph User.Read), in Graph's terms.
    let list = call(
        &h,
        "GET",
        &format!("/v1.0/oauth2PermissionGrants?$filter=clientId%20eq%20'{api}'"),
        &t,
        None,
    )
    .await
    .json();
    let grants = list["value"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "{list}");
    assert_eq!(grants[0]["resourceId"], graph.as_str());
    assert_eq!(grants[0]["scope"], "User.Read");
    let id = grants[0]["id"].as_str().unwrap().to_owned();
    let by_resource = call(
        &h,
        "GET",
        &format!("/v1.0/oauth2PermissionGrants?$filter=resourceId%20eq%20'{graph}'"),
        &t,
        None,
    )
    .await
    .json();
    assert!(!by_resource["value"].as_array().unwrap().is_empty());

    let dup = call(&h, "POST", "/v1.0/oauth2PermissionGrants", &t,
        Some(json!({"clientId": api, "consentType": "AllPrincipals", "resourceId": graph, "scope": "User.Read"}))).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    for bad in [
        json!({"clientId": api, "consentType": "Sometimes", "resourceId": graph, "scope": "User.Read"}),
        json!({"clientId": "5e0c7d1a-0000-4000-8000-000000000000", "consentType": "AllPrincipals", "resourceId": graph, "scope": "User.Read"}),
        json!({"clientId": api, "consentType": "Principal", "resourceId": graph, "scope": "User.Read"}),
        json!({"clientId": api, "consentType": "AllPrincipals", "resourceId": graph, "scope": "Mail.Send"}),
        json!({"consentType": "AllPrincipals"}),
    ] {
        let r = call(
            &h,
            "POST",
            "/v1.0/oauth2PermissionGrants",
            &t,
            Some(bad.clone()),
        )
        .await;
        assert_error(&r, StatusCode::BAD_REQUEST, "Request_BadRequest");
    }
    let patched = call(
        &h,
        "PATCH",
        &format!("/v1.0/oauth2PermissionGrants/{id}"),
        &t,
        Some(json!({"scope": "User.Read profile"})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT, "{}", patched.body);
    let one = call(
        &h,
        "GET",
        &format!("/v1.0/oauth2PermissionGrants/{id}"),
        &t,
        None,
    )
    .await
    .json();
    assert_eq!(one["scope"], "User.Read profile");
    let refused = call(
        &h,
        "PATCH",
        &format!("/v1.0/oauth2PermissionGrants/{id}"),
        &t,
        Some(json!({"scope": "Nope"})),
    )
    .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let deleted = call(
        &h,
        "DELETE",
        &format!("/v1.0/oauth2PermissionGrants/{id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = call(
        &h,
        "GET",
        &format!("/v1.0/oauth2PermissionGrants/{id}"),
        &t,
        None,
    )
    .await;
    assert_error(&gone, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
}

#[tokio::test]
async fn service_principals_create_list_get_delete() {
    let h = harness().await;
    let t = writer(&h).await;
    let app = create_app(&h, &t, json!({"displayName": "needs an sp"})).await;
    let app_id = app["appId"].as_str().unwrap();
    let path = format!("/v1.0/servicePrincipals?$filter=appId%20eq%20'{app_id}'");
    let none = call(&h, "GET", &path, &t, None).await.json();
    assert!(
        none["value"].as_array().unwrap().is_empty(),
        "no service principal before it is created"
    );
    let id = app["id"].as_str().unwrap();
    call(
        &h,
        "PATCH",
        &format!("/v1.0/applications/{id}"),
        &t,
        Some(json!({"identifierUris": [format!("api://{app_id}")]})),
    )
    .await;

    let created = call(
        &h,
        "POST",
        "/v1.0/servicePrincipals",
        &t,
        Some(json!({"appId": app_id, "accountEnabled": true})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let sp = created.json();
    assert_eq!(sp["appId"], app_id);
    assert_eq!(
        sp["servicePrincipalNames"],
        json!([app_id, format!("api://{app_id}")])
    );
    for key in [
        "id",
        "displayName",
        "accountEnabled",
        "appRoles",
        "oauth2PermissionScopes",
        "appOwnerOrganizationId",
    ] {
        assert!(sp.get(key).is_some(), "{key}");
    }
    let again = call(
        &h,
        "POST",
        "/v1.0/servicePrincipals",
        &t,
        Some(json!({"appId": app_id})),
    )
    .await;
    assert_error(
        &again,
        StatusCode::CONFLICT,
        "Request_MultipleObjectsWithSameKeyValue",
    );
    let unknown = call(
        &h,
        "POST",
        "/v1.0/servicePrincipals",
        &t,
        Some(json!({"appId": "5e0c7d1a-0000-4000-8000-000000000000"})),
    )
    .await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "Request_BadRequest");

    let sp_id = sp["id"].as_str().unwrap();
    assert_eq!(self::sp_id(&h, &t, &format!("api://{app_id}")).await, sp_id);
    let one = call(
        &h,
        "GET",
        &format!("/v1.0/servicePrincipals/{sp_id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(one.json()["appId"], app_id);
    // The built-in applications have service principals.
    let graph = call(
        &h,
        "GET",
        "/v1.0/servicePrincipals?$filter=appId%20eq%20'00000003-0000-0000-c000-000000000000'",
        &t,
        None,
    )
    .await
    .json();
    let graph_sp = &graph["value"][0];
    assert_eq!(graph_sp["displayName"], "Microsoft Graph");
    assert!(
        graph_sp["appRoles"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["value"] == "Application.ReadWrite.All")
    );
    let builtin = call(
        &h,
        "DELETE",
        &format!(
            "/v1.0/servicePrincipals/{}",
            graph_sp["id"].as_str().unwrap()
        ),
        &t,
        None,
    )
    .await;
    assert_error(&builtin, StatusCode::BAD_REQUEST, "Request_BadRequest");

    let deleted = call(
        &h,
        "DELETE",
        &format!("/v1.0/servicePrincipals/{sp_id}"),
        &t,
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let gone = call(
        &h,
        "GET",
        &format!("/v1.0/servicePrincipals/{sp_id}"),
        &t,
        None,
    )
    .await;
    assert_error(&gone, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
}

#[tokio::test]
async fn add_password_secret_works_until_removed() {
    let h = harness().await;
    let t = writer(&h).await;
    let app = create_app(&h, &t, json!({"displayName": "secretive"})).await;
    let id = app["id"].as_str().unwrap();
    let app_id = app["appId"].as_str().unwrap();
    let added = call(&h, "POST", &format!("/v1.0/applications/{id}/addPassword"), &t,
        Some(json!({"passwordCredential": {"displayName": "ci", "endDateTime": "2299-12-31T00:00:00Z"}}))).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let cred = added.json();
    let secret = cred["secretText"].as_str().unwrap().to_owned();
    assert_eq!(cred["hint"].as_str().unwrap(), &secret[..3]);
    assert_eq!(cred["displayName"], "ci");
    let key_id = cred["keyId"].as_str().unwrap().to_owned();
    // The secret is shown once: the application lists the credential without it.
    let shown = call(&h, "GET", &format!("/v1.0/applications/{id}"), &t, None)
        .await
        .json();
    assert_eq!(shown["passwordCredentials"][0]["keyId"], key_id.as_str());
    assert!(shown["passwordCredentials"][0]["secretText"].is_null());
    assert!(!shown.to_string().contains(&secret));

    let cc = |secret: String| {
        let h = &h;
        let app_id = app_id.to_owned();
        async move {
            h.token(&[
                ("grant_type", "client_credentials"),
                ("client_id", &app_id),
                ("client_secret", &secret),
                ("scope", &format!("api://{API2}/.default")),
            ])
            .await
        }
    };
    // Without a service principal there is no app-only token (AADSTS7000229), as in Entra.
    let no_sp = cc(secret.clone()).await;
    assert_eq!(no_sp.status, StatusCode::BAD_REQUEST, "{}", no_sp.body);
    assert_eq!(no_sp.code(), 7000229);
    let sp = call(
        &h,
        "POST",
        "/v1.0/servicePrincipals",
        &t,
        Some(json!({"appId": app_id})),
    )
    .await;
    assert_eq!(sp.status, StatusCode::CREATED, "{}", sp.body);
    let ok = cc(secret.clone()).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let bad_date = call(
        &h,
        "POST",
        &format!("/v1.0/applications/{id}/addPassword"),
        &t,
        Some(json!({"passwordCredential": {"endDateTime": "tomorrow"}})),
    )
    .await;
    assert_error(&bad_date, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let missing = call(
        &h,
        "POST",
        &format!("/v1.0/applications/{id}/removePassword"),
        &t,
        Some(json!({"keyId": "5e0c7d1a-0000-4000-8000-000000000000"})),
    )
    .await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let removed = call(
        &h,
        "POST",
        &format!("/v1.0/applications/{id}/removePassword"),
        &t,
        Some(json!({"keyId": key_id})),
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    let refused = cc(secret).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
}

#[tokio::test]
async fn concurrent_writes_are_all_kept() {
    let h = Arc::new(harness().await);
    let t = writer(&h).await;
    let app = create_app(&h, &t, json!({"displayName": "busy"})).await;
    let id = app["id"].as_str().unwrap().to_owned();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (h, t, id) = (h.clone(), t.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            call(
                &h,
                "POST",
                &format!("/v1.0/applications/{id}/addPassword"),
                &t,
                Some(json!({"passwordCredential": {"displayName": format!("s{i}")}})),
            )
            .await
            .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    let shown = call(&h, "GET", &format!("/v1.0/applications/{id}"), &t, None)
        .await
        .json();
    assert_eq!(shown["passwordCredentials"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn users_list_get_create_and_me() {
    let h = harness().await;
    let t = writer(&h).await;
    let list = call(&h, "GET", "/v1.0/users", &t, None).await.json();
    assert_eq!(list["value"][0]["id"], ALICE);
    let by_upn = call(
        &h,
        "GET",
        "/v1.0/users/alice@contoso.onmicrosoft.com",
        &t,
        None,
    )
    .await;
    assert_eq!(by_upn.json()["id"], ALICE);
    let by_id = call(&h, "GET", &format!("/v1.0/users/{ALICE}"), &t, None).await;
    assert_eq!(
        by_id.json()["userPrincipalName"],
        "alice@contoso.onmicrosoft.com"
    );
    let filtered = call(
        &h,
        "GET",
        "/v1.0/users?$filter=startswith(displayName,'ali')",
        &t,
        None,
    )
    .await
    .json();
    assert_eq!(filtered["value"].as_array().unwrap().len(), 1);

    let new = |password: &str, upn: &str| {
        json!({"accountEnabled": true, "displayName": "Bob", "mailNickname": "bob",
        "userPrincipalName": upn, "passwordProfile": {"forceChangePasswordNextSignIn": false, "password": password}})
    };
    for (password, upn) in [
        ("short1A", "bob@contoso.onmicrosoft.com"),
        ("alllowercaseletters", "bob@contoso.onmicrosoft.com"),
        ("Str0ng-Passw0rd", "bob@elsewhere.example"),
        ("Str0ng-Passw0rd", "alice@contoso.onmicrosoft.com"),
    ] {
        let r = call(&h, "POST", "/v1.0/users", &t, Some(new(password, upn))).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "Request_BadRequest");
    }
    let created = call(
        &h,
        "POST",
        "/v1.0/users",
        &t,
        Some(new("Str0ng-Passw0rd", "bob@contoso.onmicrosoft.com")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let bob = created.json();
    assert!(bob.get("passwordProfile").is_none() && !created.body.contains("Str0ng"));
    let fetched = call(
        &h,
        "GET",
        &format!("/v1.0/users/{}", bob["id"].as_str().unwrap()),
        &t,
        None,
    )
    .await;
    assert_eq!(fetched.json()["displayName"], "Bob");
    let missing = call(
        &h,
        "GET",
        "/v1.0/users/nobody@contoso.onmicrosoft.com",
        &t,
        None,
    )
    .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "Request_ResourceNotFound");

    // A delegated token of a tenant user manages the directory, and /me answers as before.
    let alice = alice_graph_token(&h).await;
    let me = call(&h, "GET", "/v1.0/me", &alice, None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.json()["id"], ALICE);
    let mine = call(
        &h,
        "POST",
        "/v1.0/applications",
        &alice,
        Some(json!({"displayName": "alice's app"})),
    )
    .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.body);
    // An app-only token is not /me's.
    let app_me = call(&h, "GET", "/v1.0/me", &t, None).await;
    assert_error(&app_me, StatusCode::BAD_REQUEST, "BadRequest");
}

#[tokio::test]
async fn graph_changes_persist_in_the_store() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let h = start(store.clone()).await;
    let t = writer(&h).await;
    let app = create_app(&h, &t, json!({"displayName": "durable"})).await;
    let app_id = app["appId"].as_str().unwrap();
    let sp = call(
        &h,
        "POST",
        "/v1.0/servicePrincipals",
        &t,
        Some(json!({"appId": app_id})),
    )
    .await;
    assert_eq!(sp.status, StatusCode::CREATED);
    let restarted = start(store).await;
    let t = writer(&restarted).await;
    let again = call(
        &restarted,
        "GET",
        &format!("/v1.0/applications(appId='{app_id}')"),
        &t,
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.json()["displayName"], "durable");
    assert_eq!(
        self::sp_id(&restarted, &t, app_id).await,
        sp.json()["id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn the_identity_providers_own_url_names_graph() {
    // The local cloud names the identity provider as Graph, so az asks for `<idp>//.default`.
    let h = harness().await;
    for scope in [format!("{BASE}//.default"), format!("{BASE}/.default")] {
        let r = h
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", WEB),
                ("client_secret", WEB_SECRET),
                ("scope", &scope),
            ])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{scope}: {}", r.body);
        let at = r.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(claims(&at)["aud"], "https://graph.microsoft.com");
        let list = call(&h, "GET", "/v1.0/servicePrincipals", &at, None).await;
        assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    }
}

#[tokio::test]
async fn graph_changes_to_file_objects_survive_a_restart_until_the_file_changes_them() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let h = start(store.clone()).await;
    let t = writer(&h).await;
    let id = object_id(&h, &t, API).await;
    let r = call(
        &h,
        "PATCH",
        &format!("/v1.0/applications/{id}"),
        &t,
        Some(json!({"web": {"redirectUris": ["https://api.example/cb"]}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let api2 = sp_id(&h, &t, API2).await;
    let web = sp_id(&h, &t, WEB).await;
    let grant = call(&h, "POST", "/v1.0/oauth2PermissionGrants", &t,
        Some(json!({"clientId": web, "consentType": "AllPrincipals", "resourceId": api2, "scope": "read"}))).await;
    assert_eq!(grant.status, StatusCode::CREATED, "{}", grant.body);

    // The same file: the run-time changes stay.
    let same = start(store.clone()).await;
    let t = writer(&same).await;
    let kept = call(&same, "GET", &format!("/v1.0/applications/{id}"), &t, None)
        .await
        .json();
    assert_eq!(
        kept["web"]["redirectUris"],
        json!(["https://api.example/cb"])
    );
    let grants = call(
        &same,
        "GET",
        &format!("/v1.0/oauth2PermissionGrants?$filter=clientId%20eq%20'{web}'"),
        &t,
        None,
    )
    .await
    .json();
    assert_eq!(grants["value"].as_array().unwrap().len(), 1);

    // The file changes the app: its version wins.
    let mut changed: Value = serde_json::from_str(&graph_directory()).unwrap();
    changed["applications"][1]["displayName"] = json!("api (renamed in the file)");
    let renamed = start_with(store, &changed.to_string()).await;
    let t = writer(&renamed).await;
    let now = call(
        &renamed,
        "GET",
        &format!("/v1.0/applications/{id}"),
        &t,
        None,
    )
    .await
    .json();
    assert_eq!(now["displayName"], "api (renamed in the file)");
    assert_eq!(now["web"]["redirectUris"], json!([]));
}

#[tokio::test]
async fn app_role_assignments_grant_application_permissions() {
    let h = harness().await;
    let t = writer(&h).await;
    let graph = sp_id(&h, &t, GRAPH).await;
    let norole = sp_id(&h, &t, NOROLE).await;
    let before = app_token(&h, NOROLE, NOROLE_SECRET).await;
    let denied = call(&h, "GET", "/v1.0/applications", &before, None).await;
    assert_error(
        &denied,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );

    let path = format!("/v1.0/servicePrincipals/{graph}/appRoleAssignedTo");
    let body =
        json!({"principalId": norole, "resourceId": graph, "appRoleId": APPLICATION_READ_ALL});
    let created = call(&h, "POST", &path, &t, Some(body.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let assignment = created.json();
    assert_eq!(assignment["principalId"], norole.as_str());
    assert_eq!(assignment["principalType"], "ServicePrincipal");
    assert_eq!(assignment["resourceDisplayName"], "Microsoft Graph");
    let again = call(&h, "POST", &path, &t, Some(body)).await;
    assert_error(
        &again,
        StatusCode::CONFLICT,
        "Request_MultipleObjectsWithSameKeyValue",
    );
    for bad in [
        json!({"principalId": norole, "resourceId": norole, "appRoleId": APPLICATION_READ_ALL}),
        json!({"principalId": norole, "resourceId": graph, "appRoleId": "5e0c7d1a-0000-4000-8000-000000000000"}),
        json!({"principalId": ALICE, "resourceId": graph, "appRoleId": APPLICATION_READ_ALL}),
        json!({"principalId": "5e0c7d1a-0000-4000-8000-000000000000", "resourceId": graph, "appRoleId": APPLICATION_READ_ALL}),
    ] {
        let r = call(&h, "POST", &path, &t, Some(bad.clone())).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "Request_BadRequest");
    }

    let after = app_token(&h, NOROLE, NOROLE_SECRET).await;
    assert_eq!(claims(&after)["roles"], json!(["Application.Read.All"]));
    let allowed = call(&h, "GET", "/v1.0/applications", &after, None).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);
    let mine = call(
        &h,
        "GET",
        &format!("/v1.0/servicePrincipals/{norole}/appRoleAssignments"),
        &t,
        None,
    )
    .await
    .json();
    assert_eq!(mine["value"].as_array().unwrap().len(), 1);

    let id = assignment["id"].as_str().unwrap();
    let deleted = call(&h, "DELETE", &format!("{path}/{id}"), &t, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let revoked = app_token(&h, NOROLE, NOROLE_SECRET).await;
    assert!(claims(&revoked).get("roles").is_none());
    let gone = call(&h, "DELETE", &format!("{path}/{id}"), &t, None).await;
    assert_error(&gone, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
}

#[tokio::test]
async fn bad_input_never_answers_a_server_error() {
    let h = harness().await;
    let t = writer(&h).await;
    let long = "x".repeat(70 * 1024);
    let paths = [
        "/v1.0/".to_owned(),
        "/v1.0//".to_owned(),
        "/v1.0/applications/%FF%FE".to_owned(),
        "/v1.0/applications(appId='')".to_owned(),
        "/v1.0/applications(appId='x'/addPassword".to_owned(),
        "/v1.0/applications/a/b/c/d".to_owned(),
        "/v1.0/servicePrincipals/x/appRoleAssignedTo/y/z".to_owned(),
        "/v1.0/servicePrincipals/x/owners".to_owned(),
        "/v1.0/users/%00".to_owned(),
        format!(
            "/v1.0/applications?$filter={}",
            urlenc("startswith(displayName,")
        ),
        format!("/v1.0/applications?$filter={}", urlenc("'''")),
        format!("/v1.0/applications?$filter={}", urlenc("x/any(:)")),
        format!("/v1.0/applications?$filter={}", urlenc("/any( eq ")),
        format!("/v1.0/applications?$filter={}", urlenc("startswith(,'')")),
        format!(
            "/v1.0/applications?$top={}",
            urlenc("99999999999999999999999")
        ),
        format!("/v1.0/applications?$select={}", urlenc(",,,")),
        format!("/v1.0/applications?$filter={long}"),
        "/v1.0/applications?$filter=a&$filter=b".to_owned(),
    ];
    for path in &paths {
        if path.parse::<axum::http::Uri>().is_err() {
            continue;
        }
        for method in ["GET", "POST", "PATCH", "DELETE", "PUT"] {
            let r = call(&h, method, path, &t, Some(json!({}))).await;
            assert!(
                !r.status.is_server_error(),
                "{method} {path:.80}: {}",
                r.status
            );
            assert!(
                r.json()["error"]["code"].is_string(),
                "{method} {path:.80}: {}",
                r.body
            );
        }
    }
    let app = create_app(&h, &t, json!({"displayName": "target"})).await;
    let id = app["id"].as_str().unwrap();
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let bodies = [
        "null".to_owned(),
        "[]".to_owned(),
        "\"text\"".to_owned(),
        "{\"displayName\": null}".to_owned(),
        "{\"web\": null, \"api\": 5}".to_owned(),
        "{\"api\": {\"oauth2PermissionScopes\": [{}]}}".to_owned(),
        "{\"api\": {\"requestedAccessTokenVersion\": 300}}".to_owned(),
        "{\"keyCredentials\": [{\"key\": \"not a certificate\"}]}".to_owned(),
        "{\"appRoles\": [{\"id\": \"x\", \"value\": \"\"}]}".to_owned(),
        "{\"passwordCredential\": {\"endDateTime\": 5}}".to_owned(),
        "{\"keyId\": []}".to_owned(),
        deep,
        "\u{0}".to_owned(),
    ];
    let targets = [
        ("POST", "/v1.0/applications".to_owned()),
        ("PATCH", format!("/v1.0/applications/{id}")),
        ("POST", format!("/v1.0/applications/{id}/addPassword")),
        ("POST", format!("/v1.0/applications/{id}/removePassword")),
        ("POST", "/v1.0/servicePrincipals".to_owned()),
        ("POST", "/v1.0/oauth2PermissionGrants".to_owned()),
        ("POST", "/v1.0/users".to_owned()),
    ];
    for (method, path) in &targets {
        for body in &bodies {
            let r = h
                .send(
                    Request::builder()
                        .method(*method)
                        .uri(path.as_str())
                        .header(header::AUTHORIZATION, format!("Bearer {t}"))
                        .body(Body::from(body.clone()))
                        .unwrap(),
                )
                .await;
            assert!(
                !r.status.is_server_error(),
                "{method} {path} {body:.40}: {}",
                r.status
            );
            assert!(
                r.json()["error"]["code"].is_string(),
                "{method} {path} {body:.40}: {}",
                r.body
            );
        }
    }
    // None of that changed the app.
    let after = call(&h, "GET", &format!("/v1.0/applications/{id}"), &t, None)
        .await
        .json();
    assert_eq!(after["displayName"], "target");
    assert_eq!(after["passwordCredentials"], json!([]));
}

#[tokio::test]
async fn users_update_and_delete() {
    let h = harness().await;
    let t = writer(&h).await;
    let (tokens, _) = user_tokens(&h).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let path = format!("/v1.0/users/{ALICE}");
    let r = call(
        &h,
        "PATCH",
        &path,
        &t,
        Some(json!({"jobTitle": "Engineer", "displayName": "Alice S."})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let alice = call(&h, "GET", &path, &t, None).await.json();
    assert_eq!(alice["jobTitle"], "Engineer");
    assert_eq!(alice["displayName"], "Alice S.");
    for bad in [
        json!({"shoeSize": 9}),
        json!({"displayName": ""}),
        json!({"accountEnabled": "yes"}),
        json!({"passwordProfile": {"password": "weak"}}),
        json!({"userPrincipalName": "alice@elsewhere.example"}),
    ] {
        let r = call(&h, "PATCH", &path, &t, Some(bad.clone())).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "Request_BadRequest");
    }
    assert_eq!(
        call(&h, "GET", &path, &t, None).await.json(),
        alice,
        "refused PATCHes change nothing"
    );

    // A new password: the old one no longer signs in, and refresh tokens end.
    let r = call(
        &h,
        "PATCH",
        &path,
        &t,
        Some(json!({"passwordProfile": {"password": "N3w-Passw0rd!"}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let refreshed = h
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", WEB),
            ("client_secret", WEB_SECRET),
            ("refresh_token", &refresh_token),
        ])
        .await;
    assert_eq!(
        refreshed.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refreshed.body
    );
    let login = |password: &'static str| {
        let h = &h;
        async move {
            let mut browser = Browser::default();
            let page = h.authorize(&code_query("openid", ""), &browser).await;
            browser.take(&page);
            h.post(
                &format!("/{TID}/login"),
                &[
                    ("ctx", &page.hidden("ctx").unwrap()),
                    ("csrf", &page.hidden("csrf").unwrap()),
                    ("login", "alice@contoso.onmicrosoft.com"),
                    ("passwd", password),
                ],
                &browser,
            )
            .await
        }
    };
    let old = login("alice-pw").await;
    assert!(
        old.body.contains("name=\"passwd\""),
        "the old password is refused"
    );
    let new = login("N3w-Passw0rd!").await;
    assert!(!new.body.contains("name=\"passwd\""), "{}", new.body);

    let deleted = call(&h, "DELETE", &path, &t, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let gone = call(&h, "GET", &path, &t, None).await;
    assert_error(&gone, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
}
