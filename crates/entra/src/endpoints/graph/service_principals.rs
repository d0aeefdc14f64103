//! `/servicePrincipals`: an application's instance in this tenant. The directory keeps a service
//! principal as part of its application (`servicePrincipalId`); an app created through Graph
//! has none until one is created here, as in Entra. The built-in applications (Microsoft Graph,
//! Azure Resource Manager, the Azure CLI) have theirs, so grants can name them.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use easyauth_store::ObjectKind;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::applications::{object, role_json, scope_json};
use super::error::GraphError;
use super::{Access, Area, Call, no_content, to_json};
use crate::directory::{Application, Directory, builtin_name};

/// Microsoft's own tenant, which owns the built-in applications.
const MICROSOFT_TENANT: &str = "f8cdef31-a31e-4b4a-93e4-5f571e91255a";

const FILTERABLE: [&str; 3] = ["servicePrincipalNames", "appId", "displayName"];

pub(super) async fn serve(
    call: &Call,
    method: &str,
    id: Option<String>,
) -> Result<Response, GraphError> {
    match (id, method) {
        (None, "GET") => list(call),
        (None, "POST") => create(call).await,
        (Some(id), "GET") => {
            call.require(Area::Applications, Access::Read)?;
            let app = find(&call.dir, &id)?;
            Ok(call.entity(StatusCode::OK, "servicePrincipals", to_graph(call, &app)))
        }
        (Some(id), "DELETE") => delete(call, &id).await,
        (_, m) => Err(super::method_not_allowed(m)),
    }
}

/// Every application of the tenant that has a service principal.
fn with_principal(dir: &Directory) -> impl Iterator<Item = &Arc<Application>> {
    dir.applications().filter(|a| !a.without_service_principal)
}

/// The application whose service principal has object id `id`.
pub(super) fn find(dir: &Directory, id: &str) -> Result<Arc<Application>, GraphError> {
    with_principal(dir)
        .find(|a| a.service_principal_id.eq_ignore_ascii_case(id))
        .cloned()
        .ok_or_else(|| GraphError::NotFound(crate::util::clip(id, 100)))
}

/// `servicePrincipalNames`: the appId and the identifier URIs.
fn names(app: &Application) -> Vec<String> {
    std::iter::once(app.app_id.clone())
        .chain(app.identifier_uris.iter().cloned())
        .collect()
}

fn list(call: &Call) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Read)?;
    let filter = call.query.filter_on(&FILTERABLE)?;
    let items = with_principal(&call.dir)
        .filter(|a| match filter {
            None => true,
            Some(f) if f.property().eq_ignore_ascii_case("appId") => f.matches_text(&a.app_id),
            Some(f) if f.property().eq_ignore_ascii_case("displayName") => {
                f.matches_text(&a.display_name)
            }
            Some(f) => names(a).iter().any(|n| f.matches_text(n)),
        })
        .map(|a| to_graph(call, a))
        .collect();
    Ok(call.list("servicePrincipals", items))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewPrincipal {
    app_id: String,
    #[serde(default = "yes")]
    account_enabled: bool,
}

fn yes() -> bool {
    true
}

async fn create(call: &Call) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Write)?;
    let input: NewPrincipal = call.body_as()?;
    if !input.account_enabled {
        return Err(GraphError::BadRequest(
            "easyauth's Microsoft Graph keeps every service principal enabled; omit 'accountEnabled' or set it to true.".into(),
        ));
    }
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let app = dir
        .app(&input.app_id)
        .filter(|a| a.app_id.eq_ignore_ascii_case(&input.app_id))
        .cloned()
        .ok_or_else(|| {
            GraphError::BadRequest(format!(
                "The appId '{}' of the service principal does not reference a valid application object.",
                crate::util::clip(&input.app_id, 100)
            ))
        })?;
    if !app.without_service_principal {
        return Err(GraphError::Conflict(format!(
            "The service principal cannot be created, updated, or restored because the service principal name {} is already in use.",
            app.app_id
        )));
    }
    let mut updated = (*app).clone();
    updated.without_service_principal = false;
    call.idp
        .store
        .put_object(
            ObjectKind::Application,
            &dir.tenant.id,
            &updated.app_id,
            &to_json(&updated)?,
        )
        .await?;
    call.idp
        .replace_directory(dir.with_application(updated.clone()));
    Ok(call.entity(
        StatusCode::CREATED,
        "servicePrincipals",
        to_graph(call, &updated),
    ))
}

async fn delete(call: &Call, id: &str) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Write)?;
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let app = find(&dir, id)?;
    if let Some(name) = builtin_name(&app.app_id) {
        return Err(GraphError::BadRequest(format!(
            "The service principal of {name} is built into every tenant and cannot be deleted."
        )));
    }
    // Consent and role assignments hang off the service principal: they go with it.
    let (grants, assignments) = dir.references_to(&app.app_id);
    let mut updated = (*app).clone();
    updated.without_service_principal = true;
    let tenant = &dir.tenant.id;
    let store = &call.idp.store;
    for g in &grants {
        store
            .delete_object(ObjectKind::PermissionGrant, tenant, g)
            .await?;
    }
    for a in &assignments {
        store
            .delete_object(ObjectKind::AppRoleAssignment, tenant, a)
            .await?;
    }
    store
        .put_object(
            ObjectKind::Application,
            tenant,
            &updated.app_id,
            &to_json(&updated)?,
        )
        .await?;
    let app_id = updated.app_id.clone();
    call.idp
        .replace_directory(dir.with_changes(&app_id, Some(updated), &grants, &assignments));
    Ok(no_content())
}

fn to_graph(call: &Call, app: &Application) -> Map<String, Value> {
    let owner = if builtin_name(&app.app_id).is_some() {
        MICROSOFT_TENANT
    } else {
        call.dir.tenant.id.as_str()
    };
    let mut m = Map::new();
    // In parts: one json! this large exceeds the macro recursion limit.
    m.extend(object(json!({
        "id": app.service_principal_id,
        "deletedDateTime": null,
        "accountEnabled": true,
        "alternativeNames": [],
        "appDisplayName": app.display_name,
        "appDescription": null,
        "appId": app.app_id,
        "applicationTemplateId": null,
        "appOwnerOrganizationId": owner,
        "appRoleAssignmentRequired": false,
        "appRoles": app.app_roles.iter().map(role_json).collect::<Vec<_>>(),
        "description": null,
        "disabledByMicrosoftStatus": null,
        "displayName": app.display_name,
    })));
    m.extend(object(json!({
        "homepage": null,
        "info": {"logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null,
                 "supportUrl": null, "termsOfServiceUrl": null},
        "keyCredentials": [],
        "loginUrl": null,
        "logoutUrl": app.web.logout_url,
        "notes": null,
        "notificationEmailAddresses": [],
    })));
    m.extend(object(json!({
        "oauth2PermissionScopes": app.api.oauth2_permission_scopes.iter().map(scope_json).collect::<Vec<_>>(),
        "passwordCredentials": [],
        "preferredSingleSignOnMode": null,
        "preferredTokenSigningKeyThumbprint": null,
        "replyUrls": app.web.redirect_uris,
        "resourceSpecificApplicationPermissions": [],
        "samlSingleSignOnSettings": null,
    })));
    m.extend(object(json!({
        "servicePrincipalNames": names(app),
        "servicePrincipalType": "Application",
        "signInAudience": app.sign_in_audience.clone().unwrap_or_else(|| "AzureADMyOrg".into()),
        "tags": [],
        "tokenEncryptionKeyId": null,
        "verifiedPublisher": {"displayName": null, "verifiedPublisherId": null, "addedDateTime": null},
    })));
    m
}
