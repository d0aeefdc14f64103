//! The local Resource Manager over real HTTPS, as a client that is not the Azure CLI sees it:
//! bearer authentication with ARM's two 401 codes (a token for another resource, another tenant
//! or past its lifetime is `InvalidAuthenticationToken`, even when the identity provider's own key
//! signed it, as Entra's keys sign for every tenant), ARM's error bodies for bad JSON (with the
//! place), oversized bodies, unknown types, a taken name, and `az webapp delete`.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use easyauth_entra::keys::{HeaderStyle, SigningKeys};
use easyauth_platform::client::ArmClient;
use easyauth_platform::platform::{Kind, Platform};
use easyauth_platform::site::Site;
use easyauth_platform::state::PlatformState;
use serde_json::{Map, Value, json};

mod common;
use common::{client_credentials, echo_app, https, options, sp_token, temp_dir};

async fn bare(dir: &Path) -> Platform {
    let site = Site {
        file: None,
        directory: None,
        apps: Vec::new(),
    };
    Platform::start(site, &options(dir), Kind::Bare)
        .await
        .expect("platform starts")
}

fn claims_of(jwt: &str) -> Map<String, Value> {
    let payload = jwt.split('.').nth(1).expect("a JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

/// Signs `claims` with the identity provider's own key, read from the platform's store.
async fn sign_with_the_idps_key(data_dir: &Path, claims: &Map<String, Value>) -> String {
    let store = easyauth_store::SqliteStore::open(&data_dir.join("easyauth.db"))
        .await
        .expect("the platform's store");
    let keys = SigningKeys::load_or_create(&store).await.expect("keys");
    keys.sign(HeaderStyle::V1, claims).expect("signed")
}

/// GET `path` (below the ARM base URL) with `authorization`; returns status and body.
async fn arm_get(state: &PlatformState, path: &str, authorization: Option<&str>) -> (u16, Value) {
    let mut request = https(state).get(format!("{}{path}", state.arm_url));
    if let Some(a) = authorization {
        request = request.header("Authorization", a);
    }
    let response = request.send().await.expect("ARM answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn every_call_needs_a_management_token_of_this_tenant() {
    let dir = temp_dir("auth");
    let platform = bare(&dir).await;
    let state = platform.state();
    let groups = format!(
        "/subscriptions/{}/resourcegroups?api-version=2022-09-01",
        state.subscription_id
    );

    // The cloud metadata is public: the CLI reads it before it has signed in.
    let (status, body) = arm_get(&state, "/metadata/endpoints?api-version=2022-09-01", None).await;
    assert_eq!(status, 200, "{body}");

    for authorization in [None, Some("Basic dXNlcjpwYXNz"), Some("Bearer ")] {
        let (status, body) = arm_get(&state, &groups, authorization).await;
        assert_eq!(status, 401, "{authorization:?}: {body}");
        assert_eq!(code(&body), "AuthenticationFailed", "{body}");
    }

    let arm_token = sp_token(&state, "https://management.core.windows.net//.default").await;
    let (status, body) = arm_get(&state, &groups, Some(&format!("Bearer {arm_token}"))).await;
    assert_eq!(status, 200, "{body}");

    // A genuine token of this tenant for another resource (Microsoft Graph).
    let graph = sp_token(&state, "https://graph.microsoft.com/.default").await;
    let (status, body) = arm_get(&state, &groups, Some(&format!("Bearer {graph}"))).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(code(&body), "InvalidAuthenticationToken", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("audience"),
        "{body}"
    );

    // The same claims re-signed with the identity provider's key are accepted (so the refusals
    // below are about the claims, not the signature)...
    let claims = claims_of(&arm_token);
    let resigned = sign_with_the_idps_key(platform.data_dir(), &claims).await;
    assert_eq!(
        arm_get(&state, &groups, Some(&format!("Bearer {resigned}")))
            .await
            .0,
        200
    );
    // ...but not for another tenant, as the keys that sign for every Entra tenant would allow,
    let other_tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let mut foreign = claims.clone();
    foreign.insert(
        "iss".into(),
        json!(format!("https://sts.windows.net/{other_tenant}/")),
    );
    foreign.insert("tid".into(), json!(other_tenant));
    let foreign = sign_with_the_idps_key(platform.data_dir(), &foreign).await;
    let (status, body) = arm_get(&state, &groups, Some(&format!("Bearer {foreign}"))).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(code(&body), "InvalidAuthenticationToken", "{body}");
    // ...nor past its lifetime,
    let mut expired = claims.clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    expired.insert("iat".into(), json!(now - 7200));
    expired.insert("nbf".into(), json!(now - 7200));
    expired.insert("exp".into(), json!(now - 3600));
    let expired = sign_with_the_idps_key(platform.data_dir(), &expired).await;
    let (status, body) = arm_get(&state, &groups, Some(&format!("Bearer {expired}"))).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(code(&body), "InvalidAuthenticationToken", "{body}");
    // ...nor with a signature that is not the identity provider's.
    let mut parts: Vec<&str> = arm_token.split('.').collect();
    let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&{
            let mut c = claims.clone();
            c.insert("oid".into(), json!("00000000-0000-0000-0000-000000000001"));
            c
        })
        .expect("json"),
    );
    parts[1] = &tampered;
    let (status, body) = arm_get(
        &state,
        &groups,
        Some(&format!("Bearer {}", parts.join("."))),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(code(&body), "InvalidAuthenticationToken", "{body}");
    platform.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_arms_error_bodies_and_change_nothing() {
    let dir = temp_dir("errors");
    let platform = bare(&dir).await;
    let state = platform.state();
    let client = ArmClient::new(state.clone()).await.expect("signed in");
    let arm_token = sp_token(&state, "https://management.core.windows.net//.default").await;
    let group = "resourceGroups/rg1";
    client
        .call(
            reqwest::Method::PUT,
            group,
            Some(&json!({"location": "westeurope"})),
        )
        .await
        .expect("group created");

    // JSON that does not parse: the place is named.
    let url = format!(
        "{}/subscriptions/{}/{group}/providers/Microsoft.Web/serverfarms/plan1?api-version=2024-11-01",
        state.arm_url, state.subscription_id
    );
    let response = https(&state)
        .put(&url)
        .bearer_auth(&arm_token)
        .header("Content-Type", "application/json")
        .body("{\"location\": \"westeurope\", \"sku\": {\"name\": \"F1\",}}")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 400);
    let body: Value = response.json().await.expect("ARM error JSON");
    assert_eq!(code(&body), "InvalidRequestContent", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("$.sku") && message.contains("line 1"),
        "{message}"
    );

    // A body over the limit is refused at once, with ARM's shape.
    let response = https(&state)
        .put(&url)
        .bearer_auth(&arm_token)
        .header("Content-Type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.expect("ARM error JSON");
    assert_eq!(code(&body), "RequestEntityTooLarge", "{body}");
    // Neither created the plan.
    let err = client
        .call(
            reqwest::Method::GET,
            &format!("{group}/providers/Microsoft.Web/serverfarms/plan1"),
            None,
        )
        .await
        .expect_err("no plan");
    assert!(
        matches!(&err, easyauth_platform::client::ClientError::Api { status: 404, code, .. } if code == "ResourceNotFound"),
        "{err:?}"
    );

    // A resource type this Resource Manager does not serve.
    let err = client
        .call(
            reqwest::Method::GET,
            &format!("{group}/providers/Microsoft.Web/staticSites/x"),
            None,
        )
        .await
        .expect_err("unknown type");
    assert!(
        matches!(&err, easyauth_platform::client::ClientError::Api { status: 404, code, .. } if code == "InvalidResourceType"),
        "{err:?}"
    );
    // A group that does not exist.
    let err = client
        .call(
            reqwest::Method::GET,
            "resourceGroups/nope/providers/Microsoft.Web/sites/x",
            None,
        )
        .await
        .expect_err("no group");
    assert!(
        matches!(&err, easyauth_platform::client::ClientError::Api { status: 404, code, .. } if code == "ResourceGroupNotFound"),
        "{err:?}"
    );

    // A web app name is global (it is a host name): a second group cannot take it.
    let plan = client
        .call(
            reqwest::Method::PUT,
            &format!("{group}/providers/Microsoft.Web/serverfarms/plan1"),
            Some(&json!({"location": "westeurope", "sku": {"name": "F1", "tier": "Free"}, "kind": "linux", "properties": {"reserved": true}})),
        )
        .await
        .expect("plan created");
    let site_body = json!({"location": "westeurope", "kind": "app,linux", "properties": {"serverFarmId": plan["id"], "siteConfig": {"linuxFxVersion": "NODE|20-lts"}}});
    client
        .call(
            reqwest::Method::PUT,
            &format!("{group}/providers/Microsoft.Web/sites/taken-name"),
            Some(&site_body),
        )
        .await
        .expect("site created");
    client
        .call(
            reqwest::Method::PUT,
            "resourceGroups/rg2",
            Some(&json!({"location": "westeurope"})),
        )
        .await
        .expect("second group");
    let check = client
        .call(
            reqwest::Method::POST,
            "providers/Microsoft.Web/checknameavailability",
            Some(&json!({"name": "taken-name", "type": "Microsoft.Web/sites"})),
        )
        .await
        .expect("check");
    assert_eq!(check["nameAvailable"], false, "{check}");
    let err = client
        .call(
            reqwest::Method::PUT,
            "resourceGroups/rg2/providers/Microsoft.Web/sites/taken-name",
            Some(&site_body),
        )
        .await
        .expect_err("name taken");
    match &err {
        easyauth_platform::client::ClientError::Api {
            status, message, ..
        } => {
            assert_eq!(*status, 409, "{err:?}");
            assert!(message.contains("already exists"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    platform.shutdown().await;
}

#[tokio::test]
async fn delete_removes_the_web_app_its_files_and_its_address() {
    let dir = temp_dir("delete");
    let echo = echo_app();
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[[apps]]\nname = \"doomed\"\ncommand = 'exec python3 {} --port \"$PORT\"'\n[[apps]]\nname = \"kept\"\ncommand = 'exec python3 {} --port \"$PORT\"'\n",
            echo.display(),
            echo.display()
        ),
    )
    .expect("site file");
    let site = Site::load(&dir.join("site.toml")).expect("site");
    let platform = Platform::start(site, &options(&dir), Kind::SiteFile)
        .await
        .expect("platform starts");
    let client = ArmClient::new(platform.state()).await.expect("signed in");
    let url = platform.state().apps["doomed"].url.clone();
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut up = false;
    for _ in 0..200 {
        if plain
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "doomed never answered at {url}");
    let pid = platform.process_id("doomed").expect("a process");
    let path = client.site_path("doomed").await.expect("found");
    let files = [
        platform.data_dir().join("sites").join("doomed"),
        platform.data_dir().join("apps").join("doomed.db"),
    ];
    assert!(files.iter().any(|f| f.exists()), "{files:?}");

    client
        .call(reqwest::Method::DELETE, &path, None)
        .await
        .expect("deleted");

    let err = client.show("doomed").await.expect_err("gone");
    assert!(
        matches!(
            &err,
            easyauth_platform::client::ClientError::Api { status: 404, .. }
        ),
        "{err:?}"
    );
    assert!(platform.process_id("doomed").is_none());
    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the app's process {pid} was stopped"
    );
    assert!(
        plain.get(&url).send().await.is_err(),
        "nothing answers at {url} any more"
    );
    assert!(!files.iter().any(|f| f.exists()), "{files:?} removed");
    let state = PlatformState::read(platform.data_dir()).expect("platform.json");
    assert!(
        !state.apps.contains_key("doomed"),
        "{:?}",
        state.apps.keys()
    );
    // The other app is untouched.
    assert!(platform.process_id("kept").is_some());
    assert_eq!(client.show("kept").await.expect("kept")["name"], "kept");
    // Deleting again is what ARM answers for a resource that is not there.
    let err = client
        .call(reqwest::Method::DELETE, &path, None)
        .await
        .err();
    assert!(
        err.is_none()
            || matches!(
                &err,
                Some(easyauth_platform::client::ClientError::Api { status: 404, .. })
            ),
        "{err:?}"
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn add_identity_provider_as_a_command_makes_the_registration_and_the_settings() {
    let dir = temp_dir("add-idp");
    let echo = echo_app();
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[[apps]]\nname = \"shop\"\ncommand = 'exec python3 {} --port \"$PORT\"'\n",
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
    let client = ArmClient::new(state.clone()).await.expect("signed in");
    let err = client
        .add_identity_provider("no-such-app", None, 180, "Return401")
        .await
        .expect_err("unknown app");
    assert!(err.to_string().contains("no-such-app"), "{err}");

    let resource = client
        .add_identity_provider("shop", Some("Shop (local)"), 365, "Return401")
        .await
        .expect("added");
    let aad = &resource["properties"]["identityProviders"]["azureActiveDirectory"];
    let app_id = aad["registration"]["clientId"]
        .as_str()
        .expect("client id")
        .to_owned();
    assert_eq!(
        aad["validation"]["allowedAudiences"][0],
        format!("api://{app_id}").as_str()
    );
    let settings = client.appsettings_list("shop").await.expect("settings");
    let secret = settings["MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"].clone();
    // The secret works, for the registration's own API.
    let answer = client_credentials(
        &state,
        &app_id,
        &secret,
        &format!("api://{app_id}/.default"),
    )
    .await;
    let own = answer["access_token"].as_str().expect("a token").to_owned();
    // The app requires sign-in now, and accepts a token for its registration.
    let url = state.apps["shop"].url.clone();
    let plain = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    assert_eq!(plain.get(&url).send().await.expect("app").status(), 401);
    assert_eq!(
        plain
            .get(&url)
            .bearer_auth(&own)
            .send()
            .await
            .expect("app")
            .status(),
        200
    );
    // The registration, as Graph shows it.
    let graph = sp_token(&state, "https://graph.microsoft.com/.default").await;
    let registration: Value = https(&state)
        .get(format!(
            "{}/v1.0/applications(appId='{app_id}')",
            state.idp_url
        ))
        .bearer_auth(&graph)
        .send()
        .await
        .expect("graph")
        .json()
        .await
        .expect("json");
    assert_eq!(
        registration["displayName"], "Shop (local)",
        "{registration}"
    );
    assert_eq!(
        registration["web"]["redirectUris"][0],
        format!("{url}/.auth/login/aad/callback").as_str()
    );
    assert_eq!(
        registration["api"]["oauth2PermissionScopes"][0]["value"],
        "user_impersonation"
    );
    platform.shutdown().await;
}
