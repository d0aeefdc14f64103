//! App role assignments of a service principal: `/servicePrincipals/{id}/appRoleAssignedTo`
//! (roles of this resource given to users and apps) and `/servicePrincipals/{id}/appRoleAssignments`
//! (roles this app was given, its application permissions). The directory keeps the client by
//! appId and the resource by appId, as [`crate::Directory::assigned_roles`] reads them; Graph's
//! service principal ids are translated here. A new assignment shows in the next token.

use axum::http::StatusCode;
use axum::response::Response;
use easyauth_store::ObjectKind;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::GraphError;
use super::{Access, Area, Call, Relation, no_content, service_principals, to_json};
use crate::directory::{AppRoleAssignment, Application, Directory};

pub(super) async fn serve(
    call: &Call,
    method: &str,
    sp: &str,
    relation: Relation,
    id: Option<String>,
) -> Result<Response, GraphError> {
    let app = service_principals::find(&call.dir, sp)?;
    match (id, method) {
        (None, "GET") => {
            call.require(Area::Applications, Access::Read)?;
            let items = call
                .dir
                .assignments
                .iter()
                .filter(|a| on_side(a, &app, relation))
                .filter_map(|a| to_graph(&call.dir, a))
                .collect();
            Ok(call.list("appRoleAssignments", items))
        }
        (None, "POST") => create(call, &app, relation).await,
        (Some(id), "GET") => {
            call.require(Area::Applications, Access::Read)?;
            let object = call
                .dir
                .assignments
                .iter()
                .find(|a| a.id == id && on_side(a, &app, relation))
                .and_then(|a| to_graph(&call.dir, a))
                .ok_or_else(|| GraphError::NotFound(crate::util::clip(&id, 100)))?;
            Ok(call.entity(StatusCode::OK, "appRoleAssignments", object))
        }
        (Some(id), "DELETE") => delete(call, &app, relation, &id).await,
        (_, m) => Err(super::method_not_allowed(m)),
    }
}

/// Whether `a` is seen from `app` on the `relation` side.
fn on_side(a: &AppRoleAssignment, app: &Application, relation: Relation) -> bool {
    match relation {
        Relation::AssignedTo => a.resource_id.eq_ignore_ascii_case(&app.app_id),
        Relation::Assignments => a.principal_id.eq_ignore_ascii_case(&app.app_id),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewAssignment {
    principal_id: String,
    resource_id: String,
    app_role_id: String,
}

async fn create(
    call: &Call,
    app: &Application,
    relation: Relation,
) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Write)?;
    let input: NewAssignment = call.body_as()?;
    let (must_match, property) = match relation {
        Relation::AssignedTo => (&input.resource_id, "resourceId"),
        Relation::Assignments => (&input.principal_id, "principalId"),
    };
    if !must_match.eq_ignore_ascii_case(&app.service_principal_id) {
        return Err(GraphError::BadRequest(format!(
            "Property '{property}' must be the id of the service principal in the request path ({}).",
            app.service_principal_id
        )));
    }
    let role_id = super::validate::guid("appRoleId", &input.app_role_id)?;
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let resource = service_principals::find(&dir, &input.resource_id).map_err(|_| {
        GraphError::BadRequest(format!(
            "Invalid value specified for property 'resourceId': no service principal with id '{}'.",
            crate::util::clip(&input.resource_id, 100)
        ))
    })?;
    // The principal: a user by id, or an app by its service principal id.
    let (principal, member_type) = match dir.user(&input.principal_id) {
        Some(u) => (u.id.clone(), "User"),
        None => match service_principals::find(&dir, &input.principal_id) {
            Ok(client) => (client.app_id.clone(), "Application"),
            Err(_) => {
                return Err(GraphError::BadRequest(format!(
                    "Invalid value specified for property 'principalId': no user or service principal with id '{}'.",
                    crate::util::clip(&input.principal_id, 100)
                )));
            }
        },
    };
    let role = resource
        .role_by_id(&role_id)
        .filter(|r| r.is_enabled)
        .ok_or_else(|| {
            GraphError::BadRequest(format!(
                "Permission being assigned was not found on application '{}' ({role_id}).",
                resource.display_name
            ))
        })?;
    if !role.allowed_member_types.iter().any(|m| m == member_type) {
        return Err(GraphError::BadRequest(format!(
            "The app role {} of {} cannot be assigned to a {}.",
            role.value,
            resource.display_name,
            if member_type == "User" {
                "user"
            } else {
                "service principal"
            }
        )));
    }
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{}/assignment/{principal}/{role_id}", resource.app_id).as_bytes(),
    )
    .to_string();
    if dir.assignments.iter().any(|a| {
        a.id == id
            || (a.principal_id.eq_ignore_ascii_case(&principal)
                && a.resource_id.eq_ignore_ascii_case(&resource.app_id)
                && a.app_role_id.eq_ignore_ascii_case(&role_id))
    }) {
        return Err(GraphError::Conflict(
            "Permission being assigned already exists on the object".into(),
        ));
    }
    let assignment = AppRoleAssignment {
        id,
        principal_id: principal,
        resource_id: resource.app_id.clone(),
        app_role_id: role_id,
    };
    // The answer is built before anything is written, so a failure leaves nothing half-done.
    let updated = dir.with_assignment(assignment.clone());
    let object = to_graph(&updated, &assignment).ok_or_else(|| {
        GraphError::Internal("the new object's client or resource is not in the directory".into())
    })?;
    call.idp
        .store
        .put_object(
            ObjectKind::AppRoleAssignment,
            &dir.tenant.id,
            &assignment.id,
            &to_json(&assignment)?,
        )
        .await?;
    call.idp.replace_directory(updated);
    Ok(call.entity(StatusCode::CREATED, "appRoleAssignments", object))
}

async fn delete(
    call: &Call,
    app: &Application,
    relation: Relation,
    id: &str,
) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Write)?;
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let Some(found) = dir
        .assignments
        .iter()
        .find(|a| a.id == id && on_side(a, app, relation))
    else {
        return Err(GraphError::NotFound(crate::util::clip(id, 100)));
    };
    call.idp
        .store
        .delete_object(ObjectKind::AppRoleAssignment, &dir.tenant.id, &found.id)
        .await?;
    call.idp
        .replace_directory(dir.without_assignment(&found.id));
    Ok(no_content())
}

/// The Graph shape (`None` when the resource is gone).
fn to_graph(dir: &Directory, a: &AppRoleAssignment) -> Option<Map<String, Value>> {
    let resource = dir.app(&a.resource_id)?;
    let (principal_id, principal_type, principal_name) = match dir.user(&a.principal_id) {
        Some(u) => (u.id.clone(), "User", u.display_name.clone()),
        None => {
            let client = dir.app(&a.principal_id)?;
            (
                client.service_principal_id.clone(),
                "ServicePrincipal",
                client.display_name.clone(),
            )
        }
    };
    let v = json!({
        "id": a.id,
        "deletedDateTime": null,
        "appRoleId": a.app_role_id,
        "createdDateTime": null,
        "principalDisplayName": principal_name,
        "principalId": principal_id,
        "principalType": principal_type,
        "resourceDisplayName": resource.display_name,
        "resourceId": resource.service_principal_id,
    });
    match v {
        Value::Object(m) => Some(m),
        _ => None,
    }
}
