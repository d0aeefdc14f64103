//! `/users`: list, get (by object id or userPrincipalName), create, update and delete. A password
//! set here is hashed as a directory file's is, and must pass Entra's complexity rule.

use axum::http::StatusCode;
use axum::response::Response;
use easyauth_store::ObjectKind;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::GraphError;
use super::me::profile;
use super::{Access, Area, Call, to_json};
use crate::credentials;
use crate::directory::User;
use crate::util::new_guid;

const FILTERABLE: [&str; 3] = ["userPrincipalName", "displayName", "mail"];

pub(super) async fn serve(
    call: &Call,
    method: &str,
    id: Option<String>,
) -> Result<Response, GraphError> {
    match (id, method) {
        (None, "GET") => list(call),
        (None, "POST") => create(call).await,
        (Some(id), "GET") => {
            call.require(Area::Users, Access::Read)?;
            let user = call
                .dir
                .user(&id)
                .or_else(|| call.dir.user_by_upn(&id))
                .ok_or_else(|| GraphError::NotFound(crate::util::clip(&id, 100)))?;
            Ok(call.entity(StatusCode::OK, "users", profile(user)))
        }
        (Some(id), "PATCH") => update(call, &id).await,
        (Some(id), "DELETE") => delete(call, &id).await,
        (_, m) => Err(super::method_not_allowed(m)),
    }
}

fn find(dir: &crate::Directory, id: &str) -> Result<User, GraphError> {
    dir.user(id)
        .or_else(|| dir.user_by_upn(id))
        .cloned()
        .ok_or_else(|| GraphError::NotFound(crate::util::clip(id, 100)))
}

/// A user principal name of this tenant: `name@<tenant domain>`.
fn check_upn(call: &Call, upn: &str) -> Result<(), GraphError> {
    let ok = upn.split_once('@').is_some_and(|(name, domain)| {
        !name.is_empty()
            && !name.contains(char::is_whitespace)
            && domain.eq_ignore_ascii_case(&call.dir.tenant.domain)
    });
    if ok {
        Ok(())
    } else {
        Err(GraphError::BadRequest(format!(
            "Property userPrincipalName is invalid: expected name@{}.",
            call.dir.tenant.domain
        )))
    }
}

fn text(key: &str, value: &Value) -> Result<Option<String>, GraphError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(GraphError::invalid_body(key, "expected a string or null")),
    }
}

/// Applies a PATCH body to `user`; returns the new password, if the body sets one.
fn apply(
    call: &Call,
    user: &mut User,
    body: &Map<String, Value>,
) -> Result<Option<String>, GraphError> {
    let mut new_password = None;
    for (key, value) in body {
        match key.as_str() {
            "displayName" => match text(key, value)? {
                Some(name) if !name.trim().is_empty() => user.display_name = name,
                _ => {
                    return Err(GraphError::BadRequest(
                        "Property 'displayName' cannot be empty.".into(),
                    ));
                }
            },
            "givenName" => user.given_name = text(key, value)?,
            "surname" => user.surname = text(key, value)?,
            "mail" => user.mail = text(key, value)?,
            "jobTitle" => user.job_title = text(key, value)?,
            "mobilePhone" => user.mobile_phone = text(key, value)?,
            "officeLocation" => user.office_location = text(key, value)?,
            "preferredLanguage" => user.preferred_language = text(key, value)?,
            "accountEnabled" => {
                user.account_enabled = value
                    .as_bool()
                    .ok_or_else(|| GraphError::invalid_body(key, "expected true or false"))?;
            }
            "userPrincipalName" => {
                let upn = text(key, value)?.unwrap_or_default().trim().to_owned();
                check_upn(call, &upn)?;
                user.user_principal_name = upn;
            }
            "passwordProfile" => {
                let password = value
                    .get("password")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        GraphError::invalid_body("passwordProfile.password", "expected a string")
                    })?;
                if !password_complies(password) {
                    return Err(GraphError::BadRequest(COMPLEXITY.into()));
                }
                new_password = Some(password.to_owned());
            }
            other if other.starts_with("@odata.") => {}
            other => {
                return Err(GraphError::BadRequest(format!(
                    "Property '{}' cannot be set on resource 'User' by easyauth's Microsoft Graph.",
                    crate::util::clip(other, 64)
                )));
            }
        }
    }
    Ok(new_password)
}

/// `PATCH /users/{id}`: the profile, `accountEnabled`, `userPrincipalName` and
/// `passwordProfile.password`. A new password or a disabled account ends the user's refresh
/// tokens, as in Entra.
async fn update(call: &Call, id: &str) -> Result<Response, GraphError> {
    call.require(Area::Users, Access::Write)?;
    let body = call.body()?;
    // Checked (and the password stretched) before the lock; applied to the current version
    // under it.
    let mut probe = find(&call.dir, id)?;
    let password_hash = match apply(call, &mut probe, body)? {
        Some(password) => Some(hash(password).await?),
        None => None,
    };
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let mut user = find(&dir, &probe.id)?;
    apply(call, &mut user, body)?;
    if let Some(other) = dir.user_by_upn(&user.user_principal_name)
        && !other.id.eq_ignore_ascii_case(&user.id)
    {
        return Err(GraphError::BadRequest(DUPLICATE_UPN.into()));
    }
    let ends_sessions = password_hash.is_some() || !user.account_enabled;
    if password_hash.is_some() {
        user.password_hash = password_hash;
    }
    call.idp
        .store
        .put_object(ObjectKind::User, &dir.tenant.id, &user.id, &to_json(&user)?)
        .await?;
    if ends_sessions {
        call.idp
            .store
            .revoke_refresh_tokens_for(&dir.tenant.id, &user.id)
            .await?;
    }
    call.idp.replace_directory(dir.with_user(user));
    Ok(super::no_content())
}

/// `DELETE /users/{id}`: the user, their consent and role assignments, their refresh tokens.
async fn delete(call: &Call, id: &str) -> Result<Response, GraphError> {
    call.require(Area::Users, Access::Write)?;
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    let user = find(&dir, id)?;
    let tenant = &dir.tenant.id;
    let store = &call.idp.store;
    for g in dir.grants.iter().filter(|g| {
        g.principal_id
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(&user.id))
    }) {
        store
            .delete_object(ObjectKind::PermissionGrant, tenant, &g.id)
            .await?;
    }
    for a in dir
        .assignments
        .iter()
        .filter(|a| a.principal_id.eq_ignore_ascii_case(&user.id))
    {
        store
            .delete_object(ObjectKind::AppRoleAssignment, tenant, &a.id)
            .await?;
    }
    store
        .delete_object(ObjectKind::User, tenant, &user.id)
        .await?;
    store.revoke_refresh_tokens_for(tenant, &user.id).await?;
    call.idp.replace_directory(dir.without_user(&user.id));
    Ok(super::no_content())
}

const COMPLEXITY: &str = "The specified password does not comply with password complexity requirements. Please provide a different password.";
const DUPLICATE_UPN: &str =
    "Another object with the same value for property userPrincipalName already exists.";

/// PBKDF2 takes a while; it stays off the async workers.
async fn hash(password: String) -> Result<String, GraphError> {
    tokio::task::spawn_blocking(move || credentials::hash_password(&password))
        .await
        .map_err(|e| GraphError::Internal(e.to_string()))
}

fn list(call: &Call) -> Result<Response, GraphError> {
    call.require(Area::Users, Access::Read)?;
    let filter = call.query.filter_on(&FILTERABLE)?;
    let items = call
        .dir
        .users()
        .iter()
        .filter(|u| match filter {
            None => true,
            Some(f) if f.property().eq_ignore_ascii_case("displayName") => {
                f.matches_text(&u.display_name)
            }
            Some(f) if f.property().eq_ignore_ascii_case("mail") => {
                u.mail.as_deref().is_some_and(|m| f.matches_text(m))
            }
            Some(f) => f.matches_text(&u.user_principal_name),
        })
        .map(profile)
        .collect();
    Ok(call.list("users", items))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewUser {
    #[serde(default = "yes")]
    account_enabled: bool,
    #[serde(default)]
    display_name: String,
    user_principal_name: String,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    surname: Option<String>,
    #[serde(default)]
    mail: Option<String>,
    #[serde(default)]
    job_title: Option<String>,
    password_profile: PasswordProfile,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordProfile {
    password: String,
    // forceChangePasswordNextSignIn is accepted and ignored: there is no password-change page.
}

fn yes() -> bool {
    true
}

/// Entra's rule for cloud accounts: 8 to 256 characters, at least three of lower-case letters,
/// upper-case letters, digits and symbols.
pub(crate) fn password_complies(password: &str) -> bool {
    let length = password.chars().count();
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password
            .chars()
            .any(|c| !c.is_alphanumeric() && !c.is_whitespace()),
    ];
    (8..=256).contains(&length) && classes.iter().filter(|c| **c).count() >= 3
}

async fn create(call: &Call) -> Result<Response, GraphError> {
    call.require(Area::Users, Access::Write)?;
    let input: NewUser = call.body_as()?;
    if input.display_name.trim().is_empty() {
        return Err(GraphError::BadRequest(
            "Property 'displayName' is required and cannot be empty.".into(),
        ));
    }
    let upn = input.user_principal_name.trim().to_owned();
    check_upn(call, &upn)?;
    if !password_complies(&input.password_profile.password) {
        return Err(GraphError::BadRequest(COMPLEXITY.into()));
    }
    let hash = hash(input.password_profile.password).await?;
    let user = User {
        id: new_guid(),
        user_principal_name: upn,
        display_name: input.display_name,
        given_name: input.given_name,
        surname: input.surname,
        mail: input.mail,
        job_title: input.job_title,
        office_location: None,
        mobile_phone: None,
        preferred_language: None,
        account_enabled: input.account_enabled,
        groups: Vec::new(),
        password: None,
        password_hash: Some(hash),
    };
    let _guard = super::write_lock(&call.idp).await;
    let dir = call.idp.directory();
    if dir.user_by_upn(&user.user_principal_name).is_some() {
        return Err(GraphError::BadRequest(DUPLICATE_UPN.into()));
    }
    call.idp
        .store
        .put_object(ObjectKind::User, &dir.tenant.id, &user.id, &to_json(&user)?)
        .await?;
    let object = profile(&user);
    call.idp.replace_directory(dir.with_user(user));
    Ok(call.entity(StatusCode::CREATED, "users", object))
}
