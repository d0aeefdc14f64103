//! Resource groups: list, check (HEAD), create or update, read, delete (with what they hold).

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::meta::{check_location, subscription_of};
use super::{Call, created, not_allowed, ok, opt_str};
use crate::Arm;
use crate::error::{ArmError, ArmResult};
use crate::ids::{Scope, check_group_name};
use crate::model::ResourceGroup;

pub(crate) async fn list(arm: &Arm, call: &Call, subscription: &str) -> ArmResult<Response> {
    subscription_of(arm, subscription)?;
    if call.method != Method::GET {
        return not_allowed(call, "resourcegroups");
    }
    let value: Vec<Value> = arm
        .state
        .groups()
        .await?
        .iter()
        .map(|g| g.json(subscription))
        .collect();
    ok(json!({"value": value}))
}

/// The group named by `scope`, or 404 `ResourceGroupNotFound`.
pub(crate) async fn existing(arm: &Arm, scope: &Scope) -> ArmResult<ResourceGroup> {
    subscription_of(arm, &scope.subscription)?;
    arm.state
        .group(&scope.group)
        .await?
        .ok_or_else(|| ArmError::group_not_found(&scope.group))
}

pub(crate) async fn one(arm: &Arm, call: &Call, scope: &Scope) -> ArmResult<Response> {
    subscription_of(arm, &scope.subscription)?;
    let sub = &scope.subscription;
    match call.method {
        Method::HEAD => {
            let status = if arm.state.group(&scope.group).await?.is_some() {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::NOT_FOUND
            };
            Ok(status.into_response())
        }
        Method::GET => ok(existing(arm, scope).await?.json(sub)),
        Method::PUT | Method::PATCH => {
            check_group_name(&scope.group).map_err(ArmError::bad_request)?;
            let body = call.body()?;
            let _guard = arm.state.write.lock().await;
            let current = arm.state.group(&scope.group).await?;
            let location = match (opt_str(body, "location", "$")?, &current) {
                (Some(l), _) => check_location(l)?.to_owned(),
                (None, Some(c)) => c.location.clone(),
                (None, None) => {
                    return Err(ArmError::invalid_body("$.location: a location is required"));
                }
            };
            let tags = body
                .get("tags")
                .and_then(Value::as_object)
                .cloned()
                .or_else(|| current.as_ref().map(|c| c.tags.clone()))
                .unwrap_or_default();
            // A group keeps the name it was created with (ARM names are case-preserving).
            let name = current
                .as_ref()
                .map_or_else(|| scope.group.clone(), |c| c.name.clone());
            let group = ResourceGroup {
                name,
                location,
                tags,
            };
            arm.state.put_group(&group).await?;
            if current.is_some() {
                ok(group.json(sub))
            } else {
                tracing::info!(target: "easyauth::arm", group = %group.name, "resource group created");
                created(group.json(sub))
            }
        }
        Method::DELETE => delete(arm, scope).await,
        _ => not_allowed(call, "resourcegroups/{name}"),
    }
}

/// Deletes the group with its web apps and plans (as ARM does).
async fn delete(arm: &Arm, scope: &Scope) -> ArmResult<Response> {
    let _guard = arm.state.write.lock().await;
    let Some(group) = arm.state.group(&scope.group).await? else {
        return Err(ArmError::group_not_found(&scope.group));
    };
    for site in arm.state.sites().await? {
        if site.group.eq_ignore_ascii_case(&group.name) {
            arm.runtime.remove(&site).await;
            arm.state.delete_site(&site.name).await?;
        }
    }
    for plan in arm.state.plans().await? {
        if plan.group.eq_ignore_ascii_case(&group.name) {
            arm.state.delete_plan(&plan.name).await?;
        }
    }
    arm.state.delete_group(&group.name).await?;
    tracing::info!(target: "easyauth::arm", group = %group.name, "resource group deleted with its resources");
    Ok(StatusCode::OK.into_response())
}
