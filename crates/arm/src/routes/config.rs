//! A web app's configuration resources (`.../sites/{name}/config/...`): app settings, auth
//! settings (v2, and v1 for reading), logs, the site configuration, publishing credentials,
//! and the basic-authentication policies of the SCM and FTP endpoints.

use std::collections::BTreeMap;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::sites::scalar;
use super::{Call, kind_of, not_allowed, ok};
use crate::Arm;
use crate::error::{ArmError, ArmResult};
use crate::model::WebApp;
use crate::runtime::Change;

/// What App Service accepts as an app setting name (it becomes an environment variable).
pub fn check_setting_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("a setting name must not be empty")
    } else if name.contains('=') {
        Err("a setting name must not contain '='")
    } else if name.contains('\0') {
        Err("a setting name must not contain NUL")
    } else if name.len() > 1024 {
        Err("a setting name must be at most 1,024 characters")
    } else {
        Ok(())
    }
}

/// The auth settings of an app that never configured them: App Service's defaults, off.
pub fn default_auth_v2() -> Value {
    json!({
        "platform": {"enabled": false, "runtimeVersion": "~1"},
        "globalValidation": {"requireAuthentication": false, "unauthenticatedClientAction": "RedirectToLoginPage"},
        "identityProviders": {},
        "login": {
            "routes": {},
            "tokenStore": {"enabled": false, "tokenRefreshExtensionHours": 72.0, "fileSystem": {}, "azureBlobStorage": {}},
            "preserveUrlFragmentsForLogins": false,
            "cookieExpiration": {"convention": "FixedTime", "timeToExpiration": "08:00:00"},
            "nonce": {"validateNonce": true, "nonceExpirationInterval": "00:05:00"},
        },
        "httpSettings": {"requireHttps": true, "routes": {"apiPrefix": "/.auth"}, "forwardProxy": {"convention": "NoProxy"}},
    })
}

/// The `properties` of a config PUT: `{"properties": {...}}`, or the properties themselves.
fn properties(call: &Call) -> ArmResult<&Value> {
    let body = call.body()?;
    let props = match body.get("properties") {
        Some(p) => p,
        None => body,
    };
    if props.is_object() {
        Ok(props)
    } else {
        Err(ArmError::invalid_body(format!(
            "$.properties: expected an object, found {}",
            kind_of(props)
        )))
    }
}

pub(crate) async fn handle(
    arm: &Arm,
    call: &Call,
    app: WebApp,
    rest: &[&str],
) -> ArmResult<Response> {
    let sub = arm.config.subscription_id.clone();
    let m = &call.method;
    match rest {
        ["appsettings", "list"] if matches!(*m, Method::POST | Method::GET) => {
            ok(app.config_resource(&sub, "appsettings", settings_json(&app.app_settings)))
        }
        ["appsettings"] if *m == Method::PUT => put_app_settings(arm, call, app).await,
        ["appsettings"] if *m == Method::GET => {
            ok(app.config_resource(&sub, "appsettings", settings_json(&app.app_settings)))
        }
        ["authsettingsv2", "list"] | ["authsettingsv2"]
            if matches!(*m, Method::POST | Method::GET) =>
        {
            let props = app.auth_v2.clone().unwrap_or_else(default_auth_v2);
            ok(app.config_resource(&sub, "authsettingsV2", props))
        }
        ["authsettingsv2"] if *m == Method::PUT => put_auth_v2(arm, call, app).await,
        ["authsettings", "list"] | ["authsettings"] if matches!(*m, Method::POST | Method::GET) => {
            ok(app.config_resource(&sub, "authsettings", auth_v1_view(&app)))
        }
        ["authsettings"] if *m == Method::PUT => Err(ArmError::bad_request(
            "This local platform keeps auth settings in the V2 format only: use `az webapp auth` from the authV2 extension (`az extension add --name authV2`), or PUT config/authsettingsV2.",
        )),
        ["logs"] if *m == Method::GET => {
            ok(app.config_resource(&sub, "logs", app.logs.clone().unwrap_or_else(default_logs)))
        }
        ["logs"] if *m == Method::PUT || *m == Method::PATCH => {
            let props = properties(call)?.clone();
            let _guard = arm.state.write.lock().await;
            let mut app = app;
            app.logs = Some(props);
            arm.state.put_site(&app).await?;
            ok(app.config_resource(&sub, "logs", app.logs.clone().unwrap_or_default()))
        }
        ["web"] if *m == Method::GET => {
            ok(app.config_resource(&sub, "web", app.site_config_json(false)))
        }
        ["web"] if *m == Method::PUT || *m == Method::PATCH => {
            put_site_config(arm, call, app).await
        }
        ["publishingcredentials", "list"] if matches!(*m, Method::POST | Method::GET) => {
            let scm = app.scm_host.clone().unwrap_or_default();
            ok(app.config_resource(
                &sub,
                "publishingcredentials",
                json!({
                    "name": null,
                    "publishingUserName": app.publishing_user(),
                    "publishingPassword": app.publishing_password,
                    "publishingPasswordHash": null,
                    "publishingPasswordHashSalt": null,
                    "metadata": null,
                    "isDeleted": false,
                    "scmUri": format!("https://{}:{}@{scm}", app.publishing_user(), app.publishing_password),
                }),
            ))
        }
        ["connectionstrings", "list"] if matches!(*m, Method::POST | Method::GET) => {
            ok(app.config_resource(&sub, "connectionstrings", json!({})))
        }
        ["slotconfignames"] if matches!(*m, Method::GET | Method::PUT) => ok(json!({
            "id": format!("{}/config/slotConfigNames", app.id(&sub)),
            "name": "slotConfigNames",
            "type": "Microsoft.Web/sites/config",
            "properties": {"connectionStringNames": null, "appSettingNames": null, "azureStorageConfigNames": null},
        })),
        ["metadata", "list"] if matches!(*m, Method::POST | Method::GET) => {
            ok(app.config_resource(&sub, "metadata", Value::Object(app.metadata.clone())))
        }
        ["metadata"] if *m == Method::PUT => {
            let Value::Object(props) = properties(call)?.clone() else {
                return Err(ArmError::invalid_body("$.properties: expected an object"));
            };
            let _guard = arm.state.write.lock().await;
            let mut app = app;
            app.metadata = props;
            arm.state.put_site(&app).await?;
            ok(app.config_resource(&sub, "metadata", Value::Object(app.metadata.clone())))
        }
        ["azurestorageaccounts", "list"] if matches!(*m, Method::POST | Method::GET) => {
            ok(app.config_resource(&sub, "azurestorageaccounts", json!({})))
        }
        [name, ..] => Err(ArmError::unknown_type(&format!(
            "Microsoft.Web/sites/config/{name} ({} {})",
            call.method,
            rest.join("/")
        ))),
        [] => not_allowed(call, "config"),
    }
}

fn settings_json(settings: &BTreeMap<String, String>) -> Value {
    Value::Object(
        settings
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn default_logs() -> Value {
    json!({
        "applicationLogs": {"fileSystem": {"level": "Off"}, "azureTableStorage": null, "azureBlobStorage": null},
        "httpLogs": {"fileSystem": {"retentionInMb": 35, "retentionInDays": null, "enabled": false}, "azureBlobStorage": null},
        "failedRequestsTracing": {"enabled": false},
        "detailedErrorMessages": {"enabled": false},
    })
}

/// The v1 view of the auth settings, for clients that read it first (the authV2 extension
/// checks that v1 is not in use before writing v2).
fn auth_v1_view(app: &WebApp) -> Value {
    let enabled = app
        .auth_v2
        .as_ref()
        .and_then(|p| p.pointer("/platform/enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    json!({
        "enabled": enabled,
        "configVersion": "v2",
        "unauthenticatedClientAction": null,
        "tokenStoreEnabled": null,
        "defaultProvider": null,
        "clientId": null,
    })
}

async fn put_app_settings(arm: &Arm, call: &Call, app: WebApp) -> ArmResult<Response> {
    let props = properties(call)?;
    let Value::Object(map) = props else {
        return Err(ArmError::invalid_body("$.properties: expected an object"));
    };
    let mut settings = BTreeMap::new();
    for (k, v) in map {
        check_setting_name(k)
            .map_err(|why| ArmError::bad_request(format!("$.properties[{k:?}]: {why}")))?;
        settings.insert(k.clone(), scalar(Some(v), &format!("$.properties[{k:?}]"))?);
    }
    let _guard = arm.state.write.lock().await;
    let mut next = arm
        .state
        .site(&app.name)
        .await?
        .ok_or_else(|| ArmError::not_found("Microsoft.Web/sites", &app.name, &app.group))?;
    if next.app_settings == settings {
        let sub = &arm.config.subscription_id;
        return ok(next.config_resource(sub, "appsettings", settings_json(&next.app_settings)));
    }
    next.app_settings = settings;
    arm.runtime.check(&next).await.map_err(|e| {
        ArmError::bad_request(format!(
            "The app settings were not changed: with them the authentication module cannot be built: {e}"
        ))
    })?;
    let next = arm
        .runtime
        .apply(&next, Change::AppSettings)
        .await
        .map_err(ArmError::failed)?;
    arm.state.put_site(&next).await?;
    tracing::info!(target: "easyauth::arm", site = %next.name, "app settings changed; the app was restarted");
    let sub = &arm.config.subscription_id;
    ok(next.config_resource(sub, "appsettings", settings_json(&next.app_settings)))
}

async fn put_auth_v2(arm: &Arm, call: &Call, app: WebApp) -> ArmResult<Response> {
    let props = properties(call)?.clone();
    let _guard = arm.state.write.lock().await;
    let mut next = arm
        .state
        .site(&app.name)
        .await?
        .ok_or_else(|| ArmError::not_found("Microsoft.Web/sites", &app.name, &app.group))?;
    next.auth_v2 = Some(props);
    let warnings =
        arm.runtime.check(&next).await.map_err(|e| {
            ArmError::bad_request(format!("The auth settings were not changed: {e}"))
        })?;
    for w in &warnings {
        tracing::warn!(target: "easyauth::arm", site = %next.name, "authsettingsV2: {w}");
    }
    let next = arm
        .runtime
        .apply(&next, Change::Auth)
        .await
        .map_err(ArmError::failed)?;
    arm.state.put_site(&next).await?;
    tracing::info!(target: "easyauth::arm", site = %next.name, "auth settings replaced; the new module serves the next request");
    let sub = &arm.config.subscription_id;
    ok(next.config_resource(
        sub,
        "authsettingsV2",
        next.auth_v2.clone().unwrap_or_else(default_auth_v2),
    ))
}

async fn put_site_config(arm: &Arm, call: &Call, app: WebApp) -> ArmResult<Response> {
    let props = properties(call)?;
    let Value::Object(map) = props else {
        return Err(ArmError::invalid_body("$.properties: expected an object"));
    };
    let _guard = arm.state.write.lock().await;
    let mut next = arm
        .state
        .site(&app.name)
        .await?
        .ok_or_else(|| ArmError::not_found("Microsoft.Web/sites", &app.name, &app.group))?;
    let defaults = next.site_config_json(false);
    let mut changed = false;
    for (k, v) in map {
        if k == "appSettings" {
            if !v.is_null() {
                next.app_settings =
                    super::sites::settings_from_array(v, "$.properties.appSettings")?;
                changed = true;
            }
            continue;
        }
        if matches!(
            k.as_str(),
            "publishingUsername" | "machineKey" | "connectionStrings"
        ) {
            continue;
        }
        // A full PUT echoes every default back; only real differences count.
        let current = next.site_config.get(k).or_else(|| defaults.get(k));
        if current != Some(v) {
            next.site_config.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    let runtime = next.runtime();
    if !crate::stacks::is_known_runtime(&runtime) {
        return Err(ArmError::bad_request(format!(
            "$.properties: the runtime '{runtime}' is not one this platform runs (Node 16, 18, 20, 22 LTS or Python 3.11, 3.12)"
        )));
    }
    let sub = arm.config.subscription_id.clone();
    if !changed {
        return ok(next.config_resource(&sub, "web", next.site_config_json(false)));
    }
    arm.runtime.check(&next).await.map_err(|e| {
        ArmError::bad_request(format!("The site configuration was not changed: {e}"))
    })?;
    let next = arm
        .runtime
        .apply(&next, Change::SiteConfig)
        .await
        .map_err(ArmError::failed)?;
    arm.state.put_site(&next).await?;
    ok(next.config_resource(&sub, "web", next.site_config_json(false)))
}

pub(crate) async fn basic_auth_policy(
    arm: &Arm,
    call: &Call,
    app: WebApp,
    which: &str,
) -> ArmResult<Response> {
    let sub = arm.config.subscription_id.clone();
    let scm = match which {
        "scm" => true,
        "ftp" => false,
        other => {
            return Err(ArmError::unknown_type(&format!(
                "Microsoft.Web/sites/basicPublishingCredentialsPolicies/{other}"
            )));
        }
    };
    let resource = |app: &WebApp| {
        let allow = if scm {
            app.basic_auth_scm
        } else {
            app.basic_auth_ftp
        };
        json!({
            "id": format!("{}/basicPublishingCredentialsPolicies/{which}", app.id(&sub)),
            "name": which,
            "type": "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
            "location": app.location,
            "properties": {"allow": allow},
        })
    };
    match call.method {
        Method::GET => ok(resource(&app)),
        Method::PUT | Method::PATCH => {
            let props = properties(call)?;
            let allow = super::opt_bool(props, "allow", "$.properties")?.ok_or_else(|| {
                ArmError::invalid_body("$.properties.allow: true or false is required")
            })?;
            let _guard = arm.state.write.lock().await;
            let mut next = app;
            if scm {
                next.basic_auth_scm = allow;
            } else {
                next.basic_auth_ftp = allow;
            }
            let next = arm
                .runtime
                .apply(&next, Change::Credentials)
                .await
                .map_err(ArmError::failed)?;
            arm.state.put_site(&next).await?;
            ok(resource(&next))
        }
        _ => not_allowed(call, "basicPublishingCredentialsPolicies"),
    }
}
