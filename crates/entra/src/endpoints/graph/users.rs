//! `/users`: list, get (by object id or userPrincipalName) and create. A password set here is
//! hashed as a directory file's is, and must pass Entra's complexity rule.

use axum::http::StatusCode;
use axum::response::Response;
use easyauth_store::ObjectKind;
use serde::Deserialize;

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
        (_, m) => Err(super::method_not_allowed(m)),
    }
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
    let domain_ok = upn.split_once('@').is_some_and(|(name, domain)| {
        !name.is_empty()
            && !name.contains(char::is_whitespace)
            && domain.eq_ignore_ascii_case(&call.dir.tenant.domain)
    });
    if !domain_ok {
        return Err(GraphError::BadRequest(format!(
            "Property userPrincipalName is invalid: expected name@{}.",
            call.dir.tenant.domain
        )));
    }
    if !password_complies(&input.password_profile.password) {
        return Err(GraphError::BadRequest(
            "The specified password does not comply with password complexity requirements. Please provide a different password.".into(),
        ));
    }
    // Stretching takes a while; it stays off the async workers.
    let password = input.password_profile.password;
    let hash = tokio::task::spawn_blocking(move || credentials::hash_password(&password))
        .await
        .map_err(|e| GraphError::Internal(e.to_string()))?;
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
        return Err(GraphError::BadRequest(
            "Another object with the same value for property userPrincipalName already exists."
                .into(),
        ));
    }
    call.idp
        .store
        .put_object(ObjectKind::User, &dir.tenant.id, &user.id, &to_json(&user)?)
        .await?;
    let object = profile(&user);
    call.idp.replace_directory(dir.with_user(user));
    Ok(call.entity(StatusCode::CREATED, "users", object))
}
