//! App Service plans (`Microsoft.Web/serverfarms`).

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::groups::existing;
use super::meta::check_location;
use super::{Call, not_allowed, ok, opt_bool, opt_str};
use crate::Arm;
use crate::error::{ArmError, ArmResult};
use crate::ids::{Scope, check_plan_name};
use crate::model::Plan;

pub(crate) async fn list(arm: &Arm, call: &Call, group: Option<&str>) -> ArmResult<Response> {
    if call.method != Method::GET {
        return not_allowed(call, "serverfarms");
    }
    let sub = &arm.config.subscription_id;
    let sites = arm.state.sites().await?;
    let value: Vec<Value> = arm
        .state
        .plans()
        .await?
        .iter()
        .filter(|p| group.is_none_or(|g| p.group.eq_ignore_ascii_case(g)))
        .map(|p| p.json(sub, count_sites(&sites, p, sub)))
        .collect();
    ok(json!({"value": value, "nextLink": null}))
}

fn count_sites(sites: &[crate::model::WebApp], plan: &Plan, sub: &str) -> usize {
    let id = plan.id(sub);
    sites
        .iter()
        .filter(|s| s.server_farm_id.eq_ignore_ascii_case(&id))
        .count()
}

/// A sku object from a request: `{"name": "F1", "tier": "FREE", ...}` or just a name.
fn sku_of(body: &Value) -> ArmResult<Value> {
    let sku = body.get("sku").cloned().unwrap_or(json!({"name": "F1"}));
    let name = match &sku {
        Value::Object(_) => opt_str(&sku, "name", "$.sku")?.unwrap_or("F1").to_owned(),
        Value::String(s) => s.clone(),
        _ => {
            return Err(ArmError::invalid_body(
                "$.sku: expected an object with a name",
            ));
        }
    };
    let (tier, family) = match name.to_ascii_uppercase().as_str() {
        "F1" | "FREE" => ("Free", "F"),
        "D1" | "SHARED" => ("Shared", "D"),
        n if n.starts_with('B') => ("Basic", "B"),
        n if n.starts_with('S') => ("Standard", "S"),
        n if n.starts_with('P') => ("PremiumV3", "Pv3"),
        _ => {
            return Err(ArmError::invalid_body(format!(
                "$.sku.name: '{name}' is not an App Service sku (F1, B1, S1, P1v3 ...)"
            )));
        }
    };
    let name = if tier == "Free" {
        "F1".to_owned()
    } else {
        name.to_ascii_uppercase()
    };
    Ok(json!({"name": name, "tier": tier, "size": name, "family": family, "capacity": 1}))
}

pub(crate) async fn one(arm: &Arm, call: &Call, scope: &Scope, name: &str) -> ArmResult<Response> {
    let group = existing(arm, scope).await?;
    let sub = &scope.subscription;
    let current = arm
        .state
        .plan(name)
        .await?
        .filter(|p| p.group.eq_ignore_ascii_case(&group.name));
    match call.method {
        Method::GET => {
            let plan = current.ok_or_else(|| {
                ArmError::not_found("Microsoft.Web/serverFarms", name, &group.name)
            })?;
            let sites = arm.state.sites().await?;
            ok(plan.json(sub, count_sites(&sites, &plan, sub)))
        }
        Method::PUT | Method::PATCH => {
            check_plan_name(name).map_err(ArmError::bad_request)?;
            let body = call.body()?;
            let _guard = arm.state.write.lock().await;
            if let Some(other) = arm.state.plan(name).await?
                && !other.group.eq_ignore_ascii_case(&group.name)
            {
                return Err(ArmError::conflict(
                    "Conflict",
                    format!(
                        "An App Service plan named '{name}' already exists in resource group '{}'.",
                        other.group
                    ),
                ));
            }
            let props = body.get("properties").cloned().unwrap_or(json!({}));
            let location = match (opt_str(body, "location", "$")?, &current) {
                (Some(l), _) => check_location(l)?.to_owned(),
                (None, Some(c)) => c.location.clone(),
                (None, None) => group.location.clone(),
            };
            let kind_linux = opt_str(body, "kind", "$")?
                .is_some_and(|k| k.to_ascii_lowercase().contains("linux"));
            let reserved = opt_bool(&props, "reserved", "$.properties")?
                .or(current.as_ref().map(|c| c.reserved))
                .unwrap_or(kind_linux);
            if let Some(c) = &current
                && c.reserved != reserved
            {
                return Err(ArmError::conflict(
                    "Conflict",
                    format!(
                        "The App Service plan '{name}' is a {} plan; it cannot become a {} plan.",
                        if c.reserved { "Linux" } else { "Windows" },
                        if reserved { "Linux" } else { "Windows" }
                    ),
                ));
            }
            let plan = Plan {
                name: current
                    .as_ref()
                    .map_or_else(|| name.to_owned(), |c| c.name.clone()),
                group: group.name.clone(),
                location,
                sku: if body.get("sku").is_some() || current.is_none() {
                    sku_of(body)?
                } else {
                    current.as_ref().map_or(json!({}), |c| c.sku.clone())
                },
                reserved,
                per_site_scaling: opt_bool(&props, "perSiteScaling", "$.properties")?
                    .unwrap_or(false),
                tags: body
                    .get("tags")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            };
            arm.state.put_plan(&plan).await?;
            let sites = arm.state.sites().await?;
            let json = plan.json(sub, count_sites(&sites, &plan, sub));
            // 200 for both: the SDK's create_or_update accepts only 200 (not 201) for plans.
            if current.is_none() {
                tracing::info!(target: "easyauth::arm", plan = %plan.name, "App Service plan created");
            }
            ok(json)
        }
        Method::DELETE => {
            let _guard = arm.state.write.lock().await;
            let Some(plan) = current else {
                return Ok(StatusCode::NO_CONTENT.into_response());
            };
            let sites = arm.state.sites().await?;
            if count_sites(&sites, &plan, sub) > 0 {
                return Err(ArmError::conflict(
                    "Conflict",
                    format!(
                        "Server farm '{}' cannot be deleted because it has web app(s) assigned to it.",
                        plan.name
                    ),
                ));
            }
            arm.state.delete_plan(&plan.name).await?;
            Ok(StatusCode::OK.into_response())
        }
        _ => not_allowed(call, "serverfarms/{name}"),
    }
}
