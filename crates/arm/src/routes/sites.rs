//! Web apps (`Microsoft.Web/sites`): list, create or update, read, patch, delete; start, stop,
//! restart; the publishing profile; instances.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::groups::existing as existing_group;
use super::meta::check_location;
use super::{Call, kind_of, not_allowed, ok, opt_bool, opt_str};
use crate::error::{ArmError, ArmResult};
use crate::ids::{Scope, check_site_name, parse_plan_id};
use crate::model::{WebApp, now_iso, sku_tier};
use crate::runtime::Change;
use crate::{Arm, stacks};

pub(crate) async fn list(arm: &Arm, call: &Call, group: Option<&str>) -> ArmResult<Response> {
    if call.method != Method::GET {
        return not_allowed(call, "sites");
    }
    let plans = arm.state.plans().await?;
    let mut value = Vec::new();
    for site in arm.state.sites().await? {
        if group.is_none_or(|g| site.group.eq_ignore_ascii_case(g)) {
            value.push(site_json(arm, &site, &plans));
        }
    }
    ok(json!({"value": value, "nextLink": null}))
}

fn site_json(arm: &Arm, site: &WebApp, plans: &[crate::model::Plan]) -> Value {
    let sub = &arm.config.subscription_id;
    let plan = plans
        .iter()
        .find(|p| p.id(sub).eq_ignore_ascii_case(&site.server_farm_id));
    site.json(sub, &sku_tier(plan), &arm.runtime.status(&site.name))
}

/// The site named in `scope`, or 404 (`ResourceGroupNotFound` / `ResourceNotFound`).
pub(crate) async fn existing(arm: &Arm, scope: &Scope, name: &str) -> ArmResult<WebApp> {
    let group = existing_group(arm, scope).await?;
    arm.state
        .site(name)
        .await?
        .filter(|s| s.group.eq_ignore_ascii_case(&group.name))
        .ok_or_else(|| ArmError::not_found("Microsoft.Web/sites", name, &group.name))
}

pub(crate) async fn one(arm: &Arm, call: &Call, scope: &Scope, name: &str) -> ArmResult<Response> {
    match call.method {
        Method::GET => {
            let site = existing(arm, scope, name).await?;
            let plans = arm.state.plans().await?;
            ok(site_json(arm, &site, &plans))
        }
        Method::PUT => put(arm, call, scope, name).await,
        Method::PATCH => patch(arm, call, scope, name).await,
        Method::DELETE => delete(arm, call, scope, name).await,
        _ => not_allowed(call, "sites/{name}"),
    }
}

/// App settings from `siteConfig.appSettings` (`[{name, value}]`); values may be any scalar.
pub(crate) fn settings_from_array(
    list: &Value,
    place: &str,
) -> ArmResult<std::collections::BTreeMap<String, String>> {
    let Value::Array(items) = list else {
        return Err(ArmError::invalid_body(format!(
            "{place}: expected an array of {{name, value}}, found {}",
            kind_of(list)
        )));
    };
    let mut out = std::collections::BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{place}[{i}]");
        let name = opt_str(item, "name", &p)?
            .ok_or_else(|| ArmError::invalid_body(format!("{p}.name: a name is required")))?;
        super::config::check_setting_name(name)
            .map_err(|why| ArmError::bad_request(format!("{p}.name: {why}")))?;
        out.insert(
            name.to_owned(),
            scalar(item.get("value"), &format!("{p}.value"))?,
        );
    }
    Ok(out)
}

/// A setting value: strings as they are, booleans and numbers as App Service stores them.
pub(crate) fn scalar(v: Option<&Value>, place: &str) -> ArmResult<String> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Bool(b)) => Ok(b.to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(ArmError::invalid_body(format!(
            "{place}: expected a string, found {}",
            kind_of(other)
        ))),
    }
}

/// Merges a `siteConfig` object into the app (its `appSettings` replace the app settings).
fn merge_site_config(app: &mut WebApp, config: &Value, place: &str) -> ArmResult<bool> {
    let Value::Object(map) = config else {
        return Err(ArmError::invalid_body(format!(
            "{place}: expected an object, found {}",
            kind_of(config)
        )));
    };
    let mut changed = false;
    for (k, v) in map {
        if k == "appSettings" {
            if !v.is_null() {
                app.app_settings = settings_from_array(v, &format!("{place}.appSettings"))?;
                changed = true;
            }
            continue;
        }
        // Fields ARM computes or that this platform does not keep.
        if matches!(
            k.as_str(),
            "publishingUsername" | "connectionStrings" | "machineKey"
        ) {
            continue;
        }
        if app.site_config.get(k) != Some(v) {
            app.site_config.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    let runtime = app.runtime();
    if !stacks::is_known_runtime(&runtime) {
        return Err(ArmError::bad_request(format!(
            "{place}: the runtime '{runtime}' is not one this platform runs (Node 16, 18, 20, 22 LTS or Python 3.11, 3.12); see `az webapp list-runtimes`"
        )));
    }
    Ok(changed)
}

fn random_password() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 45];
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random source failed");
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

async fn put(arm: &Arm, call: &Call, scope: &Scope, name: &str) -> ArmResult<Response> {
    let group = existing_group(arm, scope).await?;
    check_site_name(name).map_err(ArmError::bad_request)?;
    let body = call.body()?;
    let props = body.get("properties").cloned().unwrap_or(json!({}));
    let sub = &scope.subscription;
    let _guard = arm.state.write.lock().await;
    let current = arm.state.site(name).await?;
    if let Some(c) = &current
        && !c.group.eq_ignore_ascii_case(&group.name)
    {
        return Err(ArmError::conflict(
            "Conflict",
            format!(
                "Website with given name {name} already exists (in resource group '{}').",
                c.group
            ),
        ));
    }
    let plan_id = opt_str(&props, "serverFarmId", "$.properties")?;
    let plan = match (plan_id, &current) {
        (Some(id), _) => {
            let (plan_scope, plan_name) = parse_plan_id(id).ok_or_else(|| {
                ArmError::invalid_body(format!(
                    "$.properties.serverFarmId: '{id}' is not an App Service plan id"
                ))
            })?;
            arm.state
                .plan(&plan_name)
                .await?
                .filter(|p| {
                    p.group.eq_ignore_ascii_case(&plan_scope.group)
                        && plan_scope.subscription.eq_ignore_ascii_case(sub)
                })
                .ok_or_else(|| {
                    ArmError::not_found("Microsoft.Web/serverFarms", &plan_name, &plan_scope.group)
                })?
        }
        (None, Some(c)) => {
            let (_, plan_name) = parse_plan_id(&c.server_farm_id)
                .ok_or_else(|| ArmError::internal("a stored site names no plan"))?;
            arm.state
                .plan(&plan_name)
                .await?
                .ok_or_else(|| ArmError::internal("a stored site's plan is gone"))?
        }
        (None, None) => {
            return Err(ArmError::invalid_body(
                "$.properties.serverFarmId: an App Service plan is required to create a web app",
            ));
        }
    };
    let location = match opt_str(body, "location", "$")? {
        Some(l) => check_location(l)?.to_owned(),
        None => plan.location.clone(),
    };
    let mut app = match current.clone() {
        Some(c) => c,
        None => WebApp {
            name: name.to_owned(),
            group: group.name.clone(),
            location: location.clone(),
            kind: opt_str(body, "kind", "$")?
                .map(str::to_owned)
                .unwrap_or_else(|| {
                    if plan.reserved {
                        "app,linux".into()
                    } else {
                        "app".into()
                    }
                }),
            server_farm_id: plan.id(sub),
            stopped: false,
            https_only: false,
            client_cert_enabled: false,
            tags: Map::new(),
            site_config: Map::new(),
            app_settings: Default::default(),
            auth_v2: None,
            logs: None,
            metadata: Map::new(),
            publishing_password: random_password(),
            basic_auth_scm: true,
            basic_auth_ftp: true,
            host: None,
            scm_host: None,
            address: None,
            platform: Value::Null,
            created: now_iso(),
        },
    };
    // A Linux plan holds Linux apps: the kind follows the plan, as App Service enforces.
    if plan.reserved && !app.is_linux() {
        app.kind = "app,linux".into();
    }
    app.server_farm_id = plan.id(sub);
    if let Some(b) = opt_bool(&props, "httpsOnly", "$.properties")? {
        app.https_only = b;
    }
    if let Some(b) = opt_bool(&props, "clientCertEnabled", "$.properties")? {
        app.client_cert_enabled = b;
    }
    if let Some(tags) = body.get("tags").and_then(Value::as_object) {
        app.tags = tags.clone();
    }
    let config_changed = match props.get("siteConfig") {
        Some(c) if !c.is_null() => merge_site_config(&mut app, c, "$.properties.siteConfig")?,
        _ => false,
    };
    arm.runtime
        .check(&app)
        .await
        .map_err(|e| ArmError::bad_request(format!("The web app cannot run as configured: {e}")))?;
    let (app, status) = match &current {
        None => {
            let app = arm
                .runtime
                .apply(&app, Change::Created)
                .await
                .map_err(ArmError::failed)?;
            tracing::info!(target: "easyauth::arm", site = %app.name, host = ?app.host, "web app created");
            (app, StatusCode::OK)
        }
        Some(_) if config_changed => (
            arm.runtime
                .apply(&app, Change::SiteConfig)
                .await
                .map_err(ArmError::failed)?,
            StatusCode::OK,
        ),
        Some(_) => (app, StatusCode::OK),
    };
    if let Err(e) = arm.state.put_site(&app).await {
        if current.is_none() {
            arm.runtime.remove(&app).await;
        }
        return Err(e);
    }
    let plans = arm.state.plans().await?;
    Ok((status, axum::Json(site_json(arm, &app, &plans))).into_response())
}

async fn patch(arm: &Arm, call: &Call, scope: &Scope, name: &str) -> ArmResult<Response> {
    let body = call.body()?;
    let _guard = arm.state.write.lock().await;
    let mut app = existing(arm, scope, name).await?;
    let props = body.get("properties").cloned().unwrap_or(json!({}));
    if let Some(b) = opt_bool(&props, "httpsOnly", "$.properties")? {
        app.https_only = b;
    }
    if let Some(b) = opt_bool(&props, "clientCertEnabled", "$.properties")? {
        app.client_cert_enabled = b;
    }
    let changed = match props.get("siteConfig") {
        Some(c) if !c.is_null() => merge_site_config(&mut app, c, "$.properties.siteConfig")?,
        _ => false,
    };
    arm.runtime
        .check(&app)
        .await
        .map_err(|e| ArmError::bad_request(format!("The web app cannot run as configured: {e}")))?;
    let app = if changed {
        arm.runtime
            .apply(&app, Change::SiteConfig)
            .await
            .map_err(ArmError::failed)?
    } else {
        app
    };
    arm.state.put_site(&app).await?;
    let plans = arm.state.plans().await?;
    ok(site_json(arm, &app, &plans))
}

async fn delete(arm: &Arm, call: &Call, scope: &Scope, name: &str) -> ArmResult<Response> {
    let _guard = arm.state.write.lock().await;
    let group = existing_group(arm, scope).await?;
    let Some(app) = arm
        .state
        .site(name)
        .await?
        .filter(|s| s.group.eq_ignore_ascii_case(&group.name))
    else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    arm.runtime.remove(&app).await;
    arm.state.delete_site(&app.name).await?;
    tracing::info!(target: "easyauth::arm", site = %app.name, "web app deleted");
    if call
        .query("deleteEmptyServerFarm")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        && let Some((_, plan_name)) = parse_plan_id(&app.server_farm_id)
    {
        let sub = &arm.config.subscription_id;
        let still_used = arm
            .state
            .sites()
            .await?
            .iter()
            .any(|s| s.server_farm_id.eq_ignore_ascii_case(&app.server_farm_id));
        if !still_used && let Some(plan) = arm.state.plan(&plan_name).await? {
            arm.state.delete_plan(&plan.name).await?;
            tracing::info!(target: "easyauth::arm", plan = %plan.id(sub), "empty App Service plan deleted");
        }
    }
    Ok(StatusCode::OK.into_response())
}

pub(crate) async fn action(
    arm: &Arm,
    call: &Call,
    mut app: WebApp,
    action: &str,
) -> ArmResult<Response> {
    if call.method != Method::POST {
        return not_allowed(call, action);
    }
    let _guard = arm.state.write.lock().await;
    let change = match action {
        "start" => {
            app.stopped = false;
            Change::Start
        }
        "stop" => {
            app.stopped = true;
            Change::Stop
        }
        _ => Change::Restart,
    };
    let app = arm
        .runtime
        .apply(&app, change)
        .await
        .map_err(ArmError::failed)?;
    arm.state.put_site(&app).await?;
    tracing::info!(target: "easyauth::arm", site = %app.name, action, "web app {action}");
    Ok(StatusCode::OK.into_response())
}

pub(crate) fn publish_xml(arm: &Arm, call: &Call, app: &WebApp) -> ArmResult<Response> {
    if call.method != Method::POST && call.method != Method::GET {
        return not_allowed(call, "publishxml");
    }
    let _ = arm;
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let scm = esc(app.scm_host.as_deref().unwrap_or(""));
    let host = esc(app.host.as_deref().unwrap_or(""));
    let name = esc(&app.name);
    let user = esc(&app.publishing_user());
    let pwd = esc(&app.publishing_password);
    let xml = format!(
        "<publishData>\
<publishProfile profileName=\"{name} - Web Deploy\" publishMethod=\"MSDeploy\" publishUrl=\"{scm}\" msdeploySite=\"{name}\" userName=\"{user}\" userPWD=\"{pwd}\" destinationAppUrl=\"http://{host}\" SQLServerDBConnectionString=\"\" mySQLDBConnectionString=\"\" hostingProviderForumLink=\"\" controlPanelLink=\"\" webSystem=\"WebSites\"><databases /></publishProfile>\
<publishProfile profileName=\"{name} - Zip Deploy\" publishMethod=\"ZipDeploy\" publishUrl=\"{scm}\" userName=\"{user}\" userPWD=\"{pwd}\" destinationAppUrl=\"http://{host}\" SQLServerDBConnectionString=\"\" mySQLDBConnectionString=\"\" hostingProviderForumLink=\"\" controlPanelLink=\"\" webSystem=\"WebSites\"><databases /></publishProfile>\
</publishData>"
    );
    let mut r = (StatusCode::OK, xml).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    Ok(r)
}

pub(crate) fn instances(arm: &Arm, call: &Call, app: &WebApp) -> ArmResult<Response> {
    if call.method != Method::GET {
        return not_allowed(call, "instances");
    }
    let id = format!("{:x}", fnv(app.name.as_bytes()));
    let sub = &arm.config.subscription_id;
    ok(json!({"value": [{
        "id": format!("{}/instances/{id}", app.id(sub)),
        "name": id,
        "type": "Microsoft.Web/sites/instances",
        "location": app.location,
        "properties": {"siteInstanceName": id, "state": "READY", "statusUrl": null, "detectorUrl": null},
    }], "nextLink": null}))
}

/// A stable instance id per site (App Service's instance ids are opaque hex).
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
