//! `/oauth2PermissionGrants`: delegated consent. Graph names the client and the resource by
//! their service principals' object ids; the directory keeps appIds (which the consent rules in
//! [`crate::consent`] compare), so ids are translated both ways here. A grant written here is the
//! same record a user's consent writes, so it takes effect on the next sign-in.

use axum::http::StatusCode;
use axum::response::Response;
use easyauth_store::ObjectKind;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::GraphError;
use super::{Access, Area, Call, no_content, service_principals, to_json};
use crate::directory::seed::grant_id;
use crate::directory::{Application, Directory, PermissionGrant};

const FILTERABLE: [&str; 4] = ["clientId", "resourceId", "principalId", "consentType"];

pub(super) async fn serve(
    call: &Call,
    method: &str,
    id: Option<String>,
) -> Result<Response, GraphError> {
    match (id, method) {
        (None, "GET") => list(call),
        (None, "POST") => create(call).await,
        (Some(id), "GET") => {
            call.require(Area::Grants, Access::Read)?;
            let grant = find(&call.dir, &id)?;
            let object = to_graph(&call.dir, &grant).ok_or(GraphError::NotFound(id))?;
            Ok(call.entity(StatusCode::OK, "oauth2PermissionGrants", object))
        }
        (Some(id), "PATCH") => update(call, &id).await,
        (Some(id), "DELETE") => delete(call, &id).await,
        (_, m) => Err(super::method_not_allowed(m)),
    }
}

fn find(dir: &Directory, id: &str) -> Result<PermissionGrant, GraphError> {
    dir.grants
        .iter()
        .find(|g| g.id == id)
        .cloned()
        .ok_or_else(|| GraphError::NotFound(crate::util::clip(id, 100)))
}

fn list(call: &Call) -> Result<Response, GraphError> {
    call.require(Area::Grants, Access::Read)?;
    let filter = call.query.filter_on(&FILTERABLE)?;
    let items = call
        .dir
        .grants
        .iter()
        .filter_map(|g| to_graph(&call.dir, g))
        .filter(|o| match filter {
            None => true,
            Some(f) => o
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(f.property()))
                .and_then(|(_, v)| v.as_str())
                .is_some_and(|v| f.matches_text(v)),
        })
        .collect();
    Ok(call.list("oauth2PermissionGrants", items))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewGrant {
    client_id: String,
    consent_type: String,
    #[serde(default)]
    principal_id: Option<String>,
    resource_id: String,
    #[serde(default)]
    scope: String,
    // Graph's startTime and expiryTime are accepted and ignored: grants here do not expire.
}

/// The service principal an id names, or a 400 naming the property.
fn principal(dir: &Directory, property: &str, id: &str) -> Result<Application, GraphError> {
    service_principals::find(dir, id)
        .map(|a| (*a).clone())
        .map_err(|_| {
            GraphError::BadRequest(format!(
                "Invalid value specified for property '{property}': no service principal with id '{}'.",
                crate::util::clip(id, 100)
            ))
        })
}

/// `scope` normalised (single spaces), every value an enabled scope of `resource`.
fn scopes(resource: &Application, scope: &str) -> Result<String, GraphError> {
    let mut values: Vec<String> = Vec::new();
    for value in scope.split_whitespace() {
        let Some(s) = resource.scope_by_value(value) else {
            return Err(GraphError::BadRequest(format!(
                "Invalid value specified for property 'scope': {} exposes no enabled scope named '{}'.",
                resource.display_name,
                crate::util::clip(value, 100)
            )));
        };
        if !values.iter().any(|v| v.eq_ignore_ascii_case(&s.value)) {
            values.push(s.value.clone());
        }
    }
    Ok(values.join(" "))
}

async fn create(call: &Call) -> Result<Response, GraphError> {
    call.require(Area::Grants, Access::Write)?;
    let input: NewGrant = call.body_as()?;
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let client = principal(&dir, "clientId", &input.client_id)?;
    let resource = principal(&dir, "resourceId", &input.resource_id)?;
    let principal_id = match (input.consent_type.as_str(), &input.principal_id) {
        ("AllPrincipals", None) => None,
        ("AllPrincipals", Some(_)) => {
            return Err(GraphError::BadRequest(
                "Property 'principalId' must be null when consentType is AllPrincipals.".into(),
            ));
        }
        ("Principal", Some(p)) => Some(dir.user(p).map(|u| u.id.clone()).ok_or_else(|| {
            GraphError::BadRequest(format!(
                "Invalid value specified for property 'principalId': no user with id '{}'.",
                crate::util::clip(p, 100)
            ))
        })?),
        ("Principal", None) => {
            return Err(GraphError::BadRequest(
                "Property 'principalId' is required when consentType is Principal.".into(),
            ));
        }
        (other, _) => {
            return Err(GraphError::BadRequest(format!(
                "Invalid value specified for property 'consentType': '{}' (expected AllPrincipals or Principal).",
                crate::util::clip(other, 64)
            )));
        }
    };
    let scope = scopes(&resource, &input.scope)?;
    let id = grant_id(&client.app_id, &resource.app_id, principal_id.as_deref());
    if dir.grants.iter().any(|g| g.id == id) {
        return Err(GraphError::Conflict(
            "Permission entry already exists.".into(),
        ));
    }
    let grant = PermissionGrant {
        id,
        client_id: client.app_id.clone(),
        consent_type: input.consent_type,
        principal_id,
        resource_id: resource.app_id.clone(),
        scope,
        seed_fingerprint: None,
    };
    // The answer is built before anything is written, so a failure leaves nothing half-done.
    let updated = dir.with_grant(grant.clone());
    let object = to_graph(&updated, &grant).ok_or_else(|| {
        GraphError::Internal("the new object's client or resource is not in the directory".into())
    })?;
    store(call, &dir, &grant).await?;
    call.idp.replace_directory(updated);
    Ok(call.entity(StatusCode::CREATED, "oauth2PermissionGrants", object))
}

async fn store(call: &Call, dir: &Directory, grant: &PermissionGrant) -> Result<(), GraphError> {
    call.idp
        .store
        .put_object(
            ObjectKind::PermissionGrant,
            &dir.tenant.id,
            &grant.id,
            &to_json(grant)?,
        )
        .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GrantPatch {
    scope: String,
}

async fn update(call: &Call, id: &str) -> Result<Response, GraphError> {
    call.require(Area::Grants, Access::Write)?;
    let patch: GrantPatch = call.body_as()?;
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let mut grant = find(&dir, id)?;
    let resource = dir
        .app(&grant.resource_id)
        .cloned()
        .ok_or_else(|| GraphError::NotFound(crate::util::clip(id, 100)))?;
    grant.scope = scopes(&resource, &patch.scope)?;
    store(call, &dir, &grant).await?;
    call.idp.replace_directory(dir.with_grant(grant));
    Ok(no_content())
}

async fn delete(call: &Call, id: &str) -> Result<Response, GraphError> {
    call.require(Area::Grants, Access::Write)?;
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let grant = find(&dir, id)?;
    call.idp
        .store
        .delete_object(ObjectKind::PermissionGrant, &dir.tenant.id, &grant.id)
        .await?;
    call.idp.replace_directory(dir.without_grant(&grant.id));
    Ok(no_content())
}

/// The Graph shape: client and resource by service principal id (`None` when either app is
/// gone).
fn to_graph(dir: &Directory, g: &PermissionGrant) -> Option<Map<String, Value>> {
    let client = dir.app(&g.client_id)?;
    let resource = dir.app(&g.resource_id)?;
    let v = json!({
        "clientId": client.service_principal_id,
        "consentType": g.consent_type,
        "id": g.id,
        "principalId": g.principal_id,
        "resourceId": resource.service_principal_id,
        "scope": g.scope,
    });
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}
