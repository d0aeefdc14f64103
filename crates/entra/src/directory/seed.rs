//! The directory file: parsing with precise errors (file, JSON path, what was expected),
//! validation of every cross-reference, and normalisation into what the store keeps (ids filled
//! in, secrets and passwords replaced by hashes).

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use super::model::*;
use crate::credentials;

/// The Microsoft Graph application every tenant has.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// Azure Resource Manager ("Windows Azure Service Management API").
pub const ARM_APP_ID: &str = "797f4846-ba00-4fd7-ba43-dac1f8f63013";
/// The identifier the Azure CLI asks for (`https://management.core.windows.net//.default`).
pub const ARM_RESOURCE: &str = "https://management.core.windows.net/";
/// The Microsoft Azure CLI, a public client.
pub const AZURE_CLI_APP_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryFile {
    pub tenant: Option<Tenant>,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub applications: Vec<Application>,
    #[serde(default)]
    pub oauth2_permission_grants: Vec<PermissionGrant>,
    #[serde(default)]
    pub app_role_assignments: Vec<AppRoleAssignment>,
}

/// A directory file problem, reported with where it is.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot read directory file {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: at {path}: {message}")]
    Invalid {
        file: String,
        path: String,
        message: String,
    },
}

/// A parsed, validated and normalised directory, plus the unknown fields that were ignored.
#[derive(Debug, Clone)]
pub struct Seed {
    pub tenant: Tenant,
    pub users: Vec<User>,
    pub applications: Vec<Application>,
    pub grants: Vec<PermissionGrant>,
    pub assignments: Vec<AppRoleAssignment>,
    pub ignored_fields: Vec<String>,
}

impl Seed {
    pub fn load(path: &Path) -> Result<Seed, DirectoryError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| DirectoryError::Read {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Seed::parse(&file, &text)
    }

    /// Parses directory JSON; `file` names the source in errors.
    pub fn parse(file: &str, text: &str) -> Result<Seed, DirectoryError> {
        let mut ignored = Vec::new();
        let de = &mut serde_json::Deserializer::from_str(text);
        let mut record = |path: serde_ignored::Path<'_>| ignored.push(path.to_string());
        let tracked = serde_ignored::Deserializer::new(de, &mut record);
        let parsed: DirectoryFile = serde_path_to_error::deserialize(tracked).map_err(|e| {
            let path = e.path().to_string();
            DirectoryError::Invalid {
                file: file.into(),
                path: if path == "." {
                    "$".into()
                } else {
                    format!("$.{path}")
                },
                message: e.into_inner().to_string(),
            }
        })?;
        let mut seed = validate(file, parsed)?;
        seed.ignored_fields = ignored.into_iter().map(|p| format!("$.{p}")).collect();
        Ok(seed)
    }
}

struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    fn fail(&self, path: impl Into<String>, message: impl Into<String>) -> DirectoryError {
        DirectoryError::Invalid {
            file: self.file.into(),
            path: path.into(),
            message: message.into(),
        }
    }

    fn guid(&self, path: &str, value: &str) -> Result<String, DirectoryError> {
        uuid::Uuid::parse_str(value)
            .map(|u| u.to_string())
            .map_err(|_| self.fail(path, format!("expected a GUID such as 3f1b7c2a-9d4e-4f6a-8b1c-2d3e4f5a6b7c, found {value:?}")))
    }
}

fn derived_id(app_id: &str, what: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{app_id}/{what}").as_bytes(),
    )
    .to_string()
}

fn validate(file: &str, parsed: DirectoryFile) -> Result<Seed, DirectoryError> {
    let c = Checker { file };
    let mut tenant = parsed
        .tenant
        .ok_or_else(|| c.fail("$.tenant", "expected an object with \"id\" and \"domain\""))?;
    tenant.id = c.guid("$.tenant.id", &tenant.id)?;
    if !tenant.domain.contains('.') || tenant.domain.contains(['/', ' ', '?', '#']) {
        return Err(c.fail(
            "$.tenant.domain",
            format!(
                "expected a domain name such as contoso.onmicrosoft.com, found {:?}",
                tenant.domain
            ),
        ));
    }
    tenant.domain = tenant.domain.to_ascii_lowercase();
    if let Some(rules) = &tenant.password_rule_settings {
        if !(1..=100).contains(&rules.lockout_threshold) {
            return Err(c.fail(
                "$.tenant.passwordRuleSettings.lockoutThreshold",
                format!(
                    "expected a number of wrong passwords from 1 to 100, found {}",
                    rules.lockout_threshold
                ),
            ));
        }
        if !(1..=86_400).contains(&rules.lockout_duration_in_seconds) {
            return Err(c.fail(
                "$.tenant.passwordRuleSettings.lockoutDurationInSeconds",
                format!(
                    "expected seconds from 1 to 86400, found {}",
                    rules.lockout_duration_in_seconds
                ),
            ));
        }
    }

    let mut users = parsed.users;
    let mut seen = HashSet::new();
    let mut upns = HashSet::new();
    for (i, user) in users.iter_mut().enumerate() {
        let p = format!("$.users[{i}]");
        user.id = c.guid(&format!("{p}.id"), &user.id)?;
        if !seen.insert(user.id.clone()) {
            return Err(c.fail(format!("{p}.id"), format!("duplicate user id {}", user.id)));
        }
        if !user.user_principal_name.contains('@')
            || user.user_principal_name.contains(char::is_whitespace)
        {
            return Err(c.fail(
                format!("{p}.userPrincipalName"),
                format!("expected name@domain, found {:?}", user.user_principal_name),
            ));
        }
        if !upns.insert(user.user_principal_name.to_ascii_lowercase()) {
            return Err(c.fail(
                format!("{p}.userPrincipalName"),
                format!("duplicate userPrincipalName {}", user.user_principal_name),
            ));
        }
        if let Some(password) = user.password.take() {
            if password.is_empty() {
                return Err(c.fail(format!("{p}.password"), "expected a non-empty password"));
            }
            user.password_hash = Some(credentials::hash_password(&password));
        }
    }

    let mut apps = parsed.applications;
    let file_apps = apps.len();
    let builtins = super::builtin_applications();
    // Identifier URIs of the built-in applications, in both trailing-slash forms (the directory
    // resolves either), so a file cannot take over `https://management.azure.com` either.
    let builtin_uris: Vec<(String, &str)> = builtins
        .iter()
        .flat_map(|b| {
            b.identifier_uris.iter().map(|u| {
                (
                    u.trim_end_matches('/').to_ascii_lowercase(),
                    b.display_name.as_str(),
                )
            })
        })
        .collect();
    let mut app_ids = HashSet::new();
    let mut uris = HashSet::new();
    for (i, app) in apps.iter_mut().enumerate() {
        let p = format!("$.applications[{i}]");
        app.app_id = c.guid(&format!("{p}.appId"), &app.app_id)?;
        if let Some(name) = super::builtin_name(&app.app_id) {
            return Err(c.fail(
                format!("{p}.appId"),
                format!("{} is the built-in {name} appId", app.app_id),
            ));
        }
        if !app_ids.insert(app.app_id.clone()) {
            return Err(c.fail(
                format!("{p}.appId"),
                format!("{} is a duplicate appId", app.app_id),
            ));
        }
        app.id = if app.id.is_empty() {
            derived_id(&app.app_id, "application")
        } else {
            c.guid(&format!("{p}.id"), &app.id)?
        };
        app.service_principal_id = if app.service_principal_id.is_empty() {
            derived_id(&app.app_id, "servicePrincipal")
        } else {
            c.guid(
                &format!("{p}.servicePrincipalId"),
                &app.service_principal_id,
            )?
        };
        if app.display_name.trim().is_empty() {
            return Err(c.fail(
                format!("{p}.displayName"),
                "expected a non-empty display name",
            ));
        }
        for (j, uri) in app.identifier_uris.iter().enumerate() {
            let path = format!("{p}.identifierUris[{j}]");
            if url::Url::parse(uri).is_err() || uri.contains(char::is_whitespace) {
                return Err(c.fail(
                    path,
                    format!(
                        "expected an absolute URI such as api://{}, found {uri:?}",
                        app.app_id
                    ),
                ));
            }
            let bare = uri.trim_end_matches('/').to_ascii_lowercase();
            if let Some((_, name)) = builtin_uris.iter().find(|(u, _)| *u == bare) {
                return Err(c.fail(
                    path,
                    format!("identifier URI {uri} belongs to the built-in {name}"),
                ));
            }
            if !uris.insert(uri.to_ascii_lowercase()) {
                return Err(c.fail(
                    path,
                    format!("identifier URI {uri} is already used by another application"),
                ));
            }
        }
        let lists = [
            ("web.redirectUris", &app.web.redirect_uris),
            (
                "publicClient.redirectUris",
                &app.public_client.redirect_uris,
            ),
            ("spa.redirectUris", &app.spa.redirect_uris),
        ];
        for (name, list) in lists {
            for (j, uri) in list.iter().enumerate() {
                match url::Url::parse(uri) {
                    Ok(u)
                        if u.fragment().is_none() && matches!(u.scheme(), "http" | "https")
                            || u_is_custom(&u) => {}
                    _ => {
                        return Err(c.fail(
                            format!("{p}.{name}[{j}]"),
                            format!("expected an absolute URL without a fragment, found {uri:?}"),
                        ));
                    }
                }
            }
        }
        if let Some(v) = app.api.requested_access_token_version
            && !matches!(v, 1 | 2)
        {
            return Err(c.fail(
                format!("{p}.api.requestedAccessTokenVersion"),
                format!("expected 1, 2 or null, found {v}"),
            ));
        }
        let mut values = HashSet::new();
        for (j, scope) in app.api.oauth2_permission_scopes.iter_mut().enumerate() {
            let sp = format!("{p}.api.oauth2PermissionScopes[{j}]");
            scope.id = c.guid(&format!("{sp}.id"), &scope.id)?;
            if scope.value.is_empty()
                || scope.value.contains(char::is_whitespace)
                || scope.value.contains('/')
            {
                return Err(c.fail(
                    format!("{sp}.value"),
                    format!(
                        "expected a scope name without spaces or '/', found {:?}",
                        scope.value
                    ),
                ));
            }
            if !values.insert(scope.value.to_ascii_lowercase()) {
                return Err(c.fail(
                    format!("{sp}.value"),
                    format!("duplicate scope {}", scope.value),
                ));
            }
            if !matches!(scope.consent_type.as_str(), "User" | "Admin") {
                return Err(c.fail(
                    format!("{sp}.type"),
                    format!(
                        "expected \"User\" or \"Admin\", found {:?}",
                        scope.consent_type
                    ),
                ));
            }
        }
        let mut role_values = HashSet::new();
        for (j, role) in app.app_roles.iter_mut().enumerate() {
            let rp = format!("{p}.appRoles[{j}]");
            role.id = c.guid(&format!("{rp}.id"), &role.id)?;
            if role.value.is_empty()
                || role.value.contains(char::is_whitespace)
                || !role_values.insert(role.value.clone())
            {
                return Err(c.fail(
                    format!("{rp}.value"),
                    format!(
                        "expected a unique role value without spaces, found {:?}",
                        role.value
                    ),
                ));
            }
            for (k, member) in role.allowed_member_types.iter().enumerate() {
                if !matches!(member.as_str(), "User" | "Application") {
                    return Err(c.fail(
                        format!("{rp}.allowedMemberTypes[{k}]"),
                        format!("expected \"User\" or \"Application\", found {member:?}"),
                    ));
                }
            }
        }
        for (j, cred) in app.password_credentials.iter_mut().enumerate() {
            let cp = format!("{p}.passwordCredentials[{j}]");
            if cred.key_id.is_empty() {
                cred.key_id = derived_id(&app.app_id, &format!("password/{j}"));
            }
            match cred.secret_text.take() {
                Some(secret) if !secret.is_empty() => {
                    cred.hint = Some(secret.chars().take(3).collect());
                    cred.secret_hash = Some(credentials::hash_client_secret(&secret));
                }
                Some(_) => {
                    return Err(c.fail(format!("{cp}.secretText"), "expected a non-empty secret"));
                }
                None if cred.secret_hash.is_some() => {}
                None => {
                    return Err(c.fail(format!("{cp}.secretText"), "expected the secret's text"));
                }
            }
            if let Some(end) = &cred.end_date_time
                && credentials::parse_rfc3339(end).is_none()
            {
                return Err(c.fail(
                    format!("{cp}.endDateTime"),
                    format!("expected an RFC 3339 date-time, found {end:?}"),
                ));
            }
        }
        for (j, cred) in app.key_credentials.iter_mut().enumerate() {
            let kp = format!("{p}.keyCredentials[{j}]");
            if cred.key_id.is_empty() {
                cred.key_id = derived_id(&app.app_id, &format!("key/{j}"));
            }
            if let Err(reason) = credentials::ClientCertificate::parse(&cred.key) {
                return Err(c.fail(
                    format!("{kp}.key"),
                    format!("expected a certificate (base64 DER or PEM): {reason}"),
                ));
            }
        }
    }

    // Cross-references need every application known first, the built-in ones included (a file
    // may require ARM's `user_impersonation` or grant a permission to the Azure CLI).
    apps.extend(builtins);
    let find_app = |id: &str| {
        apps.iter().position(|a| {
            a.app_id.eq_ignore_ascii_case(id) || a.service_principal_id.eq_ignore_ascii_case(id)
        })
    };
    for (i, app) in apps.iter().enumerate().take(file_apps) {
        let p = format!("$.applications[{i}]");
        for (j, pre) in app.api.pre_authorized_applications.iter().enumerate() {
            if find_app(&pre.app_id).is_none() {
                return Err(c.fail(
                    format!("{p}.api.preAuthorizedApplications[{j}].appId"),
                    format!("no application with appId {}", pre.app_id),
                ));
            }
            for (k, id) in pre.delegated_permission_ids.iter().enumerate() {
                if app.scope_by_id(id).is_none() {
                    return Err(c.fail(
                        format!(
                            "{p}.api.preAuthorizedApplications[{j}].delegatedPermissionIds[{k}]"
                        ),
                        format!(
                            "{id} is not the id of one of this application's oauth2PermissionScopes"
                        ),
                    ));
                }
            }
        }
        for (j, rra) in app.required_resource_access.iter().enumerate() {
            let Some(res) = find_app(&rra.resource_app_id).map(|r| &apps[r]) else {
                return Err(c.fail(
                    format!("{p}.requiredResourceAccess[{j}].resourceAppId"),
                    format!("no application with appId {}", rra.resource_app_id),
                ));
            };
            for (k, access) in rra.resource_access.iter().enumerate() {
                let ok = match access.kind.as_str() {
                    "Scope" => res.scope_by_id(&access.id).is_some(),
                    "Role" => res.role_by_id(&access.id).is_some(),
                    _ => false,
                };
                if !ok {
                    return Err(c.fail(
                        format!("{p}.requiredResourceAccess[{j}].resourceAccess[{k}]"),
                        format!("expected type \"Scope\" or \"Role\" with the id of one of {}'s scopes or roles", res.display_name),
                    ));
                }
            }
        }
    }

    let mut grants = parsed.oauth2_permission_grants;
    for (i, grant) in grants.iter_mut().enumerate() {
        let p = format!("$.oauth2PermissionGrants[{i}]");
        let client = find_app(&grant.client_id).ok_or_else(|| {
            c.fail(
                format!("{p}.clientId"),
                format!("no application with appId {}", grant.client_id),
            )
        })?;
        let resource = find_app(&grant.resource_id).ok_or_else(|| {
            c.fail(
                format!("{p}.resourceId"),
                format!("no application with appId {}", grant.resource_id),
            )
        })?;
        grant.client_id = apps[client].app_id.clone();
        grant.resource_id = apps[resource].app_id.clone();
        match (grant.consent_type.as_str(), &grant.principal_id) {
            ("AllPrincipals", _) => grant.principal_id = None,
            ("Principal", Some(user)) if users.iter().any(|u| u.id.eq_ignore_ascii_case(user)) => {}
            ("Principal", _) => {
                return Err(c.fail(
                    format!("{p}.principalId"),
                    "expected the id of a user in $.users for consentType \"Principal\"",
                ));
            }
            (other, _) => {
                return Err(c.fail(
                    format!("{p}.consentType"),
                    format!("expected \"AllPrincipals\" or \"Principal\", found {other:?}"),
                ));
            }
        }
        for value in grant.scope.split_whitespace() {
            if apps[resource].scope_by_value(value).is_none() {
                return Err(c.fail(
                    format!("{p}.scope"),
                    format!(
                        "{} exposes no scope named {value:?}",
                        apps[resource].display_name
                    ),
                ));
            }
        }
        if grant.id.is_empty() {
            grant.id = grant_id(
                &grant.client_id,
                &grant.resource_id,
                grant.principal_id.as_deref(),
            );
        }
    }

    let mut assignments = parsed.app_role_assignments;
    for (i, a) in assignments.iter_mut().enumerate() {
        let p = format!("$.appRoleAssignments[{i}]");
        let resource = find_app(&a.resource_id).ok_or_else(|| {
            c.fail(
                format!("{p}.resourceId"),
                format!("no application with appId {}", a.resource_id),
            )
        })?;
        let role = apps[resource].role_by_id(&a.app_role_id).ok_or_else(|| {
            c.fail(
                format!("{p}.appRoleId"),
                format!(
                    "{} has no app role with id {}",
                    apps[resource].display_name, a.app_role_id
                ),
            )
        })?;
        let member_type = if users
            .iter()
            .any(|u| u.id.eq_ignore_ascii_case(&a.principal_id))
        {
            "User"
        } else if let Some(client) = find_app(&a.principal_id) {
            a.principal_id = apps[client].app_id.clone();
            "Application"
        } else {
            return Err(c.fail(
                format!("{p}.principalId"),
                format!("no user or application with id {}", a.principal_id),
            ));
        };
        if !role.allowed_member_types.iter().any(|m| m == member_type) {
            return Err(c.fail(
                format!("{p}.appRoleId"),
                format!(
                    "role {} does not allow member type {member_type}",
                    role.value
                ),
            ));
        }
        a.resource_id = apps[resource].app_id.clone();
        if a.id.is_empty() {
            a.id = derived_id(
                &a.resource_id,
                &format!("assignment/{}/{}", a.principal_id, a.app_role_id),
            );
        }
    }

    // The built-in applications are never stored from a file.
    apps.truncate(file_apps);
    Ok(Seed {
        tenant,
        users,
        applications: apps,
        grants,
        assignments,
        ignored_fields: Vec::new(),
    })
}

/// Custom-scheme redirect URIs (`msal<id>://auth`) are valid for public clients.
fn u_is_custom(u: &url::Url) -> bool {
    !matches!(
        u.scheme(),
        "http" | "https" | "javascript" | "data" | "file"
    )
}

/// Deterministic id for the grant of one (client, resource, principal) triple, so that a user's
/// repeated consents update one document.
pub fn grant_id(client: &str, resource: &str, principal: Option<&str>) -> String {
    derived_id(
        client,
        &format!("grant/{resource}/{}", principal.unwrap_or("AllPrincipals")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match Seed::parse("dir.json", text) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error for {text}"),
        }
    }

    const TENANT: &str = r#""tenant":{"id":"b8f2e4a1-5c3d-4e6f-9a7b-1c2d3e4f5a6b","domain":"contoso.onmicrosoft.com"}"#;

    #[test]
    fn errors_name_the_file_and_json_path() {
        let e = err(r#"{"tenant":{"id":"nope","domain":"contoso.onmicrosoft.com"}}"#);
        assert!(
            e.starts_with("dir.json: at $.tenant.id: expected a GUID"),
            "{e}"
        );
        let e = err(&format!(
            r#"{{{TENANT},"applications":[{{"appId":"3f1b7c2a-9d4e-4f6a-8b1c-2d3e4f5a6b7c","displayName":"a","web":{{"redirectUris":[5]}}}}]}}"#
        ));
        assert!(e.contains("$.applications[0].web.redirectUris[0]"), "{e}");
        let e = err(&format!(
            r#"{{{TENANT},"users":[{{"id":"f2a9c5e0-7b1d-4c3e-8f6a-2b4c6d8e0a1c","userPrincipalName":"alice","displayName":"A"}}]}}"#
        ));
        assert!(e.contains("$.users[0].userPrincipalName"), "{e}");
        let e = err(&format!(
            r#"{{{TENANT},"oauth2PermissionGrants":[{{"clientId":"3f1b7c2a-9d4e-4f6a-8b1c-2d3e4f5a6b7c","consentType":"AllPrincipals","resourceId":"00000003-0000-0000-c000-000000000000","scope":"User.Read"}}]}}"#
        ));
        assert!(e.contains("$.oauth2PermissionGrants[0].clientId"), "{e}");
    }

    #[test]
    fn built_in_applications_cannot_be_redefined_but_can_be_referenced() {
        for (app_id, name) in [
            (GRAPH_APP_ID, "Microsoft Graph"),
            (ARM_APP_ID, "Windows Azure Service Management API"),
            (AZURE_CLI_APP_ID, "Microsoft Azure CLI"),
        ] {
            let e = err(&format!(
                r#"{{{TENANT},"applications":[{{"appId":"{app_id}","displayName":"mine"}}]}}"#
            ));
            assert!(
                e.contains("$.applications[0].appId")
                    && e.contains(&format!("the built-in {name} appId")),
                "{e}"
            );
        }
        for uri in [
            "https://management.azure.com",
            "https://management.core.windows.net/",
        ] {
            let e = err(&format!(
                r#"{{{TENANT},"applications":[{{"appId":"3f1b7c2a-9d4e-4f6a-8b1c-2d3e4f5a6b7c","displayName":"a","identifierUris":["{uri}"]}}]}}"#
            ));
            assert!(e.contains("$.applications[0].identifierUris[0]"), "{e}");
            assert!(
                e.contains("built-in Windows Azure Service Management API"),
                "{e}"
            );
        }
        // A file may require ARM's permission and grant permissions to the Azure CLI.
        let seed = Seed::parse(
            "dir.json",
            &format!(
                r#"{{{TENANT},"applications":[{{"appId":"3f1b7c2a-9d4e-4f6a-8b1c-2d3e4f5a6b7c","displayName":"a",
                "requiredResourceAccess":[{{"resourceAppId":"{ARM_APP_ID}","resourceAccess":[{{"id":"41094075-9dad-400e-a0bd-54e686782033","type":"Scope"}}]}}]}}],
                "oauth2PermissionGrants":[{{"clientId":"{AZURE_CLI_APP_ID}","consentType":"AllPrincipals","resourceId":"{GRAPH_APP_ID}","scope":"User.Read.All"}}]}}"#
            ),
        )
        .expect("valid");
        assert_eq!(seed.applications.len(), 1, "built-ins are never stored");
        assert_eq!(seed.grants[0].client_id, AZURE_CLI_APP_ID);
    }

    #[test]
    fn secrets_are_hashed_and_unknown_fields_reported() {
        let text = format!(
            r#"{{{TENANT},"users":[{{"id":"f2a9c5e0-7b1d-4c3e-8f6a-2b4c6d8e0a1c","userPrincipalName":"a@contoso.onmicrosoft.com","displayName":"A","password":"pw","shoeSize":9}}],
            "applications":[{{"appId":"3f1b7c2a-9d4e-4f6a-8b1c-2d3e4f5a6b7c","displayName":"a","passwordCredentials":[{{"secretText":"s3cret-value"}}]}}]}}"#
        );
        let seed = Seed::parse("dir.json", &text).expect("valid");
        assert!(seed.users[0].password.is_none());
        assert!(seed.users[0].password_hash.is_some());
        let cred = &seed.applications[0].password_credentials[0];
        assert!(cred.secret_text.is_none());
        assert_eq!(cred.hint.as_deref(), Some("s3c"));
        assert_eq!(seed.ignored_fields, vec!["$.users.0.shoeSize".to_string()]);
    }
}
