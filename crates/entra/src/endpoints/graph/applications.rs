//! `/applications`: app registrations in Graph's `application` shape. List (with the Azure CLI's
//! filters), get by object id or `(appId='…')`, create, update, delete, and the credential
//! actions `addPassword` / `removePassword`. The built-in applications are not registrations of
//! this tenant, so they are not here (their service principals are).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use easyauth_store::ObjectKind;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::GraphError;
use super::{Access, AppKey, AppRoute, Area, Call, json_response, no_content, to_json, validate};
use crate::credentials;
use crate::directory::{
    AppRole, Application, KeyCredential, PasswordCredential, PermissionScope, builtin_name,
};
use crate::util::new_guid;

/// The top-level properties a create or update may set. Graph has more; this directory does not
/// hold them, so setting one is refused rather than silently dropped.
const WRITABLE: [&str; 12] = [
    "displayName",
    "identifierUris",
    "signInAudience",
    "web",
    "publicClient",
    "spa",
    "isFallbackPublicClient",
    "api",
    "appRoles",
    "requiredResourceAccess",
    "keyCredentials",
    "groupMembershipClaims",
];

/// Filters the Azure CLI sends for applications.
const FILTERABLE: [&str; 3] = ["displayName", "appId", "identifierUris"];

pub(super) async fn serve(
    call: &Call,
    method: &str,
    route: AppRoute,
) -> Result<Response, GraphError> {
    match (route, method) {
        (AppRoute::List, "GET") => list(call),
        (AppRoute::List, "POST") => create(call).await,
        (AppRoute::List, m) => Err(super::method_not_allowed(m)),
        (AppRoute::One { key, action: None }, m) => {
            let app = find(call, &key)?;
            match m {
                "GET" => {
                    call.require(Area::Applications, Access::Read)?;
                    Ok(call.entity(StatusCode::OK, "applications", to_graph(call, &app)))
                }
                "PATCH" => update(call, &app).await,
                "DELETE" => delete(call, &app).await,
                m => Err(super::method_not_allowed(m)),
            }
        }
        (
            AppRoute::One {
                key,
                action: Some(action),
            },
            "POST",
        ) => {
            let app = find(call, &key)?;
            match action.as_str() {
                "addPassword" => add_password(call, &app).await,
                "removePassword" => remove_password(call, &app).await,
                other => Err(GraphError::NoSegment(crate::util::clip(other, 100))),
            }
        }
        (AppRoute::One { .. }, m) => Err(super::method_not_allowed(m)),
    }
}

/// The registration a path names; 404 for built-in apps, which are not registrations here.
fn find(call: &Call, key: &AppKey) -> Result<Arc<Application>, GraphError> {
    let found = match key {
        AppKey::ObjectId(id) => call.dir.application_by_object_id(id),
        AppKey::AppId(app_id) => call
            .dir
            .app(app_id)
            .filter(|a| a.app_id.eq_ignore_ascii_case(app_id)),
    };
    let name = match key {
        AppKey::ObjectId(id) | AppKey::AppId(id) => id,
    };
    found
        .filter(|a| builtin_name(&a.app_id).is_none())
        .cloned()
        .ok_or_else(|| GraphError::NotFound(crate::util::clip(name, 100)))
}

fn list(call: &Call) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Read)?;
    let filter = call.query.filter_on(&FILTERABLE)?;
    let mut apps: Vec<&Arc<Application>> = call
        .dir
        .applications()
        .filter(|a| builtin_name(&a.app_id).is_none())
        .filter(|a| match filter {
            None => true,
            Some(f) if f.property().eq_ignore_ascii_case("displayName") => {
                f.matches_text(&a.display_name)
            }
            Some(f) if f.property().eq_ignore_ascii_case("appId") => f.matches_text(&a.app_id),
            Some(f) => a.identifier_uris.iter().any(|u| f.matches_text(u)),
        })
        .collect();
    apps.sort_by(|a, b| {
        a.created_date_time
            .cmp(&b.created_date_time)
            .then(a.id.cmp(&b.id))
    });
    let items = apps.into_iter().map(|a| to_graph(call, a)).collect();
    Ok(call.list("applications", items))
}

/// Applies the body's properties to `base` (model JSON): objects (complex types such as `web`
/// or `api`) merge property by property, anything else replaces, as an OData PATCH does.
fn merged(call: &Call, base: &Application) -> Result<Application, GraphError> {
    let body = call.body()?;
    let mut current =
        serde_json::to_value(base).map_err(|e| GraphError::Internal(e.to_string()))?;
    for (key, value) in body {
        if key.starts_with("@odata.") {
            continue;
        }
        if !WRITABLE.contains(&key.as_str()) {
            return Err(GraphError::BadRequest(format!(
                "Property '{}' cannot be set on resource 'Application' by easyauth's Microsoft Graph (settable: {}; credentials through addPassword/removePassword).",
                crate::util::clip(key, 64),
                WRITABLE.join(", ")
            )));
        }
        if let Value::Object(target) = &mut current {
            match (target.get(key), value) {
                // Graph clients send null for "none": an empty list, or the default settings.
                (Some(Value::Array(_)), Value::Null) => {
                    target.insert(key.clone(), Value::Array(Vec::new()));
                }
                (Some(Value::Object(_)), Value::Null) => {
                    target.remove(key);
                }
                _ => merge(target.entry(key.clone()).or_insert(Value::Null), value),
            }
        }
    }
    serde_path_to_error::deserialize(current).map_err(|e| {
        let path = e.path().to_string();
        GraphError::invalid_body(&path, e.into_inner())
    })
}

fn merge(slot: &mut Value, value: &Value) {
    match (slot, value) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                merge(into.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

async fn create(call: &Call) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Write)?;
    if !call.body()?.contains_key("displayName") {
        return Err(GraphError::BadRequest(
            "Property 'displayName' is required and cannot be empty.".into(),
        ));
    }
    let app_id = new_guid();
    let base = Application {
        id: new_guid(),
        service_principal_id: new_guid(),
        app_id: app_id.clone(),
        without_service_principal: true,
        created_date_time: Some(super::timestamp(0)),
        sign_in_audience: Some("AzureADMyOrg".into()),
        ..Default::default()
    };
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let mut app = merged(call, &base)?;
    // The keys are the server's, whatever the body said.
    app.id = base.id.clone();
    app.app_id = app_id;
    validate::application(&mut app, None, &dir)?;
    store(call, &app).await?;
    call.idp
        .replace_directory(dir.with_application(app.clone()));
    Ok(call.entity(StatusCode::CREATED, "applications", to_graph(call, &app)))
}

async fn update(call: &Call, found: &Application) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Write)?;
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    // Re-read under the lock: another write may have changed the app since the request began.
    let old = dir
        .application_by_object_id(&found.id)
        .cloned()
        .ok_or_else(|| GraphError::NotFound(found.id.clone()))?;
    let mut app = merged(call, &old)?;
    app.id = old.id.clone();
    app.app_id = old.app_id.clone();
    validate::application(&mut app, Some(&old), &dir)?;
    store(call, &app).await?;
    call.idp.replace_directory(dir.with_application(app));
    Ok(no_content())
}

async fn store(call: &Call, app: &Application) -> Result<(), GraphError> {
    call.idp
        .store
        .put_object(
            ObjectKind::Application,
            &call.dir.tenant.id,
            &app.app_id,
            &to_json(app)?,
        )
        .await?;
    Ok(())
}

async fn delete(call: &Call, found: &Application) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Write)?;
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let Some(app) = dir.application_by_object_id(&found.id).cloned() else {
        return Err(GraphError::NotFound(found.id.clone()));
    };
    // The app's service principal goes with it, and so do the grants and role assignments
    // that name it.
    let (grants, assignments) = dir.references_to(&app.app_id);
    let tenant = &dir.tenant.id;
    let store = &call.idp.store;
    for id in &grants {
        store
            .delete_object(ObjectKind::PermissionGrant, tenant, id)
            .await?;
    }
    for id in &assignments {
        store
            .delete_object(ObjectKind::AppRoleAssignment, tenant, id)
            .await?;
    }
    store
        .delete_object(ObjectKind::Application, tenant, &app.app_id)
        .await?;
    call.idp
        .replace_directory(dir.with_changes(&app.app_id, None, &grants, &assignments));
    Ok(no_content())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AddPassword {
    password_credential: NewPassword,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewPassword {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    end_date_time: Option<String>,
    #[serde(default)]
    start_date_time: Option<String>,
}

/// Two years, the default lifetime Graph gives a secret.
const DEFAULT_SECRET_LIFETIME: i64 = 2 * 365 * 24 * 3600;
/// Entra refuses more than this many secrets on one app... (it allows far more in practice; the
/// bound keeps one app's document small).
const MAX_SECRETS: usize = 100;

async fn add_password(call: &Call, found: &Application) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Write)?;
    let input: AddPassword = call.body_as()?;
    let p = input.password_credential;
    let start = p.start_date_time.unwrap_or_else(|| super::timestamp(0));
    let end = p
        .end_date_time
        .unwrap_or_else(|| super::timestamp(DEFAULT_SECRET_LIFETIME));
    let (Some(from), Some(until)) = (
        credentials::parse_rfc3339(&start),
        credentials::parse_rfc3339(&end),
    ) else {
        return Err(GraphError::BadRequest(
            "Invalid value specified for property 'passwordCredential.endDateTime' or 'startDateTime': expected an RFC 3339 date-time.".into(),
        ));
    };
    if until <= from {
        return Err(GraphError::BadRequest(
            "Invalid value specified for property 'passwordCredential.endDateTime': it must be later than startDateTime.".into(),
        ));
    }
    if p.display_name
        .as_ref()
        .is_some_and(|d| d.chars().count() > 256)
    {
        return Err(GraphError::BadRequest(
            "Invalid value specified for property 'passwordCredential.displayName': longer than 256 characters.".into(),
        ));
    }
    let secret = credentials::generate_secret(30);
    let credential = PasswordCredential {
        key_id: new_guid(),
        display_name: p.display_name,
        secret_text: None,
        secret_hash: Some(credentials::hash_client_secret(&secret)),
        hint: Some(secret.chars().take(3).collect()),
        end_date_time: Some(end),
        start_date_time: Some(start),
    };
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let mut app = dir
        .application_by_object_id(&found.id)
        .map(|a| (**a).clone())
        .ok_or_else(|| GraphError::NotFound(found.id.clone()))?;
    if app.password_credentials.len() >= MAX_SECRETS {
        return Err(GraphError::BadRequest(format!(
            "The application already has {MAX_SECRETS} secrets; remove one first."
        )));
    }
    app.password_credentials.push(credential.clone());
    store(call, &app).await?;
    call.idp.replace_directory(dir.with_application(app));
    let mut body = password_json(&credential);
    body.insert("secretText".into(), json!(secret));
    let mut out = Map::new();
    out.insert(
        "@odata.context".into(),
        json!(call.context("microsoft.graph.passwordCredential")),
    );
    out.extend(body);
    Ok(json_response(StatusCode::OK, Value::Object(out)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemovePassword {
    key_id: String,
}

async fn remove_password(call: &Call, found: &Application) -> Result<Response, GraphError> {
    call.require(Area::Applications, Access::Write)?;
    let input: RemovePassword = call.body_as()?;
    let key_id = validate::guid("keyId", &input.key_id)?;
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let mut app = dir
        .application_by_object_id(&found.id)
        .map(|a| (**a).clone())
        .ok_or_else(|| GraphError::NotFound(found.id.clone()))?;
    let before = app.password_credentials.len();
    app.password_credentials
        .retain(|c| !c.key_id.eq_ignore_ascii_case(&key_id));
    if app.password_credentials.len() == before {
        return Err(GraphError::BadRequest(format!(
            "No password credential with keyId {key_id} was found on the application."
        )));
    }
    store(call, &app).await?;
    call.idp.replace_directory(dir.with_application(app));
    Ok(no_content())
}

fn password_json(c: &PasswordCredential) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("customKeyIdentifier".into(), Value::Null);
    m.insert("displayName".into(), json!(c.display_name));
    m.insert("endDateTime".into(), json!(c.end_date_time));
    m.insert("hint".into(), json!(c.hint));
    m.insert("keyId".into(), json!(c.key_id));
    m.insert("secretText".into(), Value::Null);
    m.insert("startDateTime".into(), json!(c.start_date_time));
    m
}

fn key_json(k: &KeyCredential) -> Value {
    json!({
        "customKeyIdentifier": null,
        "displayName": k.display_name,
        "endDateTime": k.end_date_time,
        "key": null,
        "keyId": k.key_id,
        "startDateTime": null,
        "type": k.kind,
        "usage": k.usage,
    })
}

pub(super) fn scope_json(s: &PermissionScope) -> Value {
    json!({
        "adminConsentDescription": s.admin_consent_description,
        "adminConsentDisplayName": s.admin_consent_display_name,
        "id": s.id,
        "isEnabled": s.is_enabled,
        "type": s.consent_type,
        "userConsentDescription": s.user_consent_description,
        "userConsentDisplayName": s.user_consent_display_name,
        "value": s.value,
    })
}

pub(super) fn role_json(r: &AppRole) -> Value {
    json!({
        "allowedMemberTypes": r.allowed_member_types,
        "description": r.description,
        "displayName": r.display_name,
        "id": r.id,
        "isEnabled": r.is_enabled,
        "origin": "Application",
        "value": r.value,
    })
}

/// The full Graph `application` object: every property Graph returns is present (`null` or
/// empty when this directory does not hold it), because the Azure CLI reads them by key.
pub(super) fn to_graph(call: &Call, app: &Application) -> Map<String, Value> {
    let mut m = Map::new();
    // In parts: one json! this large exceeds the macro recursion limit.
    m.extend(object(json!({
        "id": app.id,
        "deletedDateTime": null,
        "addIns": [],
        "appId": app.app_id,
        "applicationTemplateId": null,
        "appRoles": app.app_roles.iter().map(role_json).collect::<Vec<_>>(),
        "createdDateTime": app.created_date_time,
        "defaultRedirectUri": null,
        "description": null,
        "disabledByMicrosoftStatus": null,
        "displayName": app.display_name,
        "groupMembershipClaims": app.group_membership_claims,
        "identifierUris": app.identifier_uris,
    })));
    m.extend(object(json!({
        "info": {"logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null,
                 "supportUrl": null, "termsOfServiceUrl": null},
        "isDeviceOnlyAuthSupported": null,
        "isFallbackPublicClient": app.is_fallback_public_client,
        "keyCredentials": app.key_credentials.iter().map(key_json).collect::<Vec<_>>(),
        "nativeAuthenticationApisEnabled": null,
        "notes": null,
        "oauth2RequirePostResponse": false,
        "optionalClaims": null,
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
    })));
    m.extend(object(json!({
        "passwordCredentials": app.password_credentials.iter().map(password_json).collect::<Vec<_>>(),
        "publicClient": {"redirectUris": app.public_client.redirect_uris},
        "publisherDomain": call.dir.tenant.domain,
        "requiredResourceAccess": app.required_resource_access,
        "serviceManagementReference": null,
        "signInAudience": app.sign_in_audience.clone().unwrap_or_else(|| "AzureADMyOrg".into()),
        "spa": {"redirectUris": app.spa.redirect_uris},
        "tags": [],
        "tokenEncryptionKeyId": null,
        "verifiedPublisher": {"displayName": null, "verifiedPublisherId": null, "addedDateTime": null},
    })));
    m.extend(object(json!({
        "api": {
            "acceptMappedClaims": null,
            "knownClientApplications": app.api.known_client_applications,
            "requestedAccessTokenVersion": app.api.requested_access_token_version,
            "oauth2PermissionScopes": app.api.oauth2_permission_scopes.iter().map(scope_json).collect::<Vec<_>>(),
            "preAuthorizedApplications": app.api.pre_authorized_applications,
        },
        "web": {
            "homePageUrl": null,
            "logoutUrl": app.web.logout_url,
            "redirectUris": app.web.redirect_uris,
            "implicitGrantSettings": app.web.implicit_grant_settings,
            "redirectUriSettings": app.web.redirect_uris.iter()
                .map(|u| json!({"uri": u, "index": null})).collect::<Vec<_>>(),
        },
    })));
    m
}

/// The members of a JSON object (nothing for any other value).
pub(super) fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
