//! Entra's rules for an application written through Graph. Each check runs on the complete new
//! object before anything is stored, so a refused write changes nothing. Values already stored
//! (a redirect URI the platform added, say) are not re-judged: only what the write adds is.

use std::collections::HashSet;

use super::error::GraphError;
use crate::credentials::ClientCertificate;
use crate::directory::{Application, Directory, builtin_applications};

const SIGN_IN_AUDIENCES: [&str; 4] = [
    "AzureADMyOrg",
    "AzureADMultipleOrgs",
    "AzureADandPersonalMicrosoftAccount",
    "PersonalMicrosoftAccount",
];
const GROUP_CLAIMS: [&str; 5] = [
    "None",
    "SecurityGroup",
    "All",
    "DirectoryRole",
    "ApplicationGroup",
];

fn bad(message: impl Into<String>) -> GraphError {
    GraphError::BadRequest(message.into())
}

/// A GUID in canonical (lower-case, hyphenated) form, or a 400 naming the property.
pub(crate) fn guid(property: &str, value: &str) -> Result<String, GraphError> {
    uuid::Uuid::parse_str(value)
        .map(|u| u.to_string())
        .map_err(|_| {
            bad(format!(
                "Invalid value specified for property '{property}': {} is not a GUID.",
                crate::util::clip(value, 64)
            ))
        })
}

/// Checks and normalises `app` (the whole object after the write); `old` is what is stored.
pub(crate) fn application(
    app: &mut Application,
    old: Option<&Application>,
    dir: &Directory,
) -> Result<(), GraphError> {
    let display = app.display_name.trim();
    if display.is_empty() {
        return Err(bad(
            "Property 'displayName' is required and cannot be empty.",
        ));
    }
    if display.chars().count() > 256 {
        return Err(bad("Property 'displayName' is longer than 256 characters."));
    }
    if let Some(a) = &app.sign_in_audience
        && !SIGN_IN_AUDIENCES.contains(&a.as_str())
    {
        return Err(bad(format!(
            "Invalid value specified for property 'signInAudience': expected one of {}.",
            SIGN_IN_AUDIENCES.join(", ")
        )));
    }
    if let Some(g) = &app.group_membership_claims
        && !GROUP_CLAIMS.contains(&g.as_str())
    {
        return Err(bad(format!(
            "Invalid value specified for property 'groupMembershipClaims': expected one of {}.",
            GROUP_CLAIMS.join(", ")
        )));
    }
    identifier_uris(app, dir)?;
    redirect_uris(app, old)?;
    scopes(app, old)?;
    roles(app, old)?;
    if let Some(v) = app.api.requested_access_token_version
        && !matches!(v, 1 | 2)
    {
        return Err(bad(
            "Invalid value specified for property 'api.requestedAccessTokenVersion': expected 1, 2 or null.",
        ));
    }
    for (i, pre) in app.api.pre_authorized_applications.iter_mut().enumerate() {
        pre.app_id = guid(
            &format!("api.preAuthorizedApplications[{i}].appId"),
            &pre.app_id,
        )?;
        for (j, id) in pre.delegated_permission_ids.iter_mut().enumerate() {
            let path = format!("api.preAuthorizedApplications[{i}].delegatedPermissionIds[{j}]");
            *id = guid(&path, id)?;
            if !app.api.oauth2_permission_scopes.iter().any(|s| s.id == *id) {
                return Err(bad(format!(
                    "Invalid value specified for property '{path}': {id} is not the id of one of this application's oauth2PermissionScopes."
                )));
            }
        }
    }
    for id in &mut app.api.known_client_applications {
        *id = guid("api.knownClientApplications", id)?;
    }
    for (i, rra) in app.required_resource_access.iter_mut().enumerate() {
        rra.resource_app_id = guid(
            &format!("requiredResourceAccess[{i}].resourceAppId"),
            &rra.resource_app_id,
        )?;
        for (j, access) in rra.resource_access.iter_mut().enumerate() {
            let path = format!("requiredResourceAccess[{i}].resourceAccess[{j}]");
            access.id = guid(&format!("{path}.id"), &access.id)?;
            if !matches!(access.kind.as_str(), "Scope" | "Role") {
                return Err(bad(format!(
                    "Invalid value specified for property '{path}.type': expected \"Scope\" or \"Role\"."
                )));
            }
        }
    }
    let mut key_ids = HashSet::new();
    for (i, key) in app.key_credentials.iter_mut().enumerate() {
        let path = format!("keyCredentials[{i}]");
        let known = old.is_some_and(|o| {
            o.key_credentials
                .iter()
                .any(|k| k.key_id == key.key_id && k.key == key.key)
        });
        if !known && let Err(reason) = ClientCertificate::parse(&key.key) {
            return Err(bad(format!(
                "Invalid value specified for property '{path}.key': expected a certificate (base64 DER or PEM): {reason}"
            )));
        }
        key.key_id = if key.key_id.is_empty() {
            crate::util::new_guid()
        } else {
            guid(&format!("{path}.keyId"), &key.key_id)?
        };
        if !key_ids.insert(key.key_id.clone()) {
            return Err(bad(format!(
                "Duplicate keyId {} in keyCredentials.",
                key.key_id
            )));
        }
    }
    Ok(())
}

fn identifier_uris(app: &Application, dir: &Directory) -> Result<(), GraphError> {
    let builtins = builtin_applications();
    let mut seen = HashSet::new();
    for uri in &app.identifier_uris {
        let shown = crate::util::clip(uri, 200);
        let parsed = url::Url::parse(uri)
            .ok()
            .filter(|_| !uri.contains(char::is_whitespace));
        let Some(parsed) = parsed else {
            return Err(bad(format!(
                "Invalid value specified for property 'identifierUris' of resource 'Application': '{shown}' is not an absolute URI."
            )));
        };
        if parsed.scheme() == "api"
            && (parsed.host_str().unwrap_or_default().is_empty()
                || parsed.query().is_some()
                || parsed.fragment().is_some())
        {
            return Err(bad(format!(
                "Invalid value specified for property 'identifierUris' of resource 'Application': '{shown}' must have the form api://<appId> or api://<name>, without a query or fragment."
            )));
        }
        if parsed.fragment().is_some() {
            return Err(bad(format!(
                "Invalid value specified for property 'identifierUris' of resource 'Application': '{shown}' has a fragment."
            )));
        }
        let key = uri.trim_end_matches('/').to_ascii_lowercase();
        if !seen.insert(key.clone()) {
            return Err(bad(format!(
                "Property 'identifierUris' of resource 'Application' lists '{shown}' twice."
            )));
        }
        let taken = dir
            .applications()
            .map(|a| &**a)
            .chain(builtins.iter())
            .filter(|a| !a.app_id.eq_ignore_ascii_case(&app.app_id))
            .any(|a| {
                a.identifier_uris
                    .iter()
                    .any(|u| u.trim_end_matches('/').eq_ignore_ascii_case(&key))
            });
        if taken {
            return Err(bad(format!(
                "Another object with the same value for property identifierUris already exists. ('{shown}')"
            )));
        }
    }
    Ok(())
}

fn redirect_uris(app: &Application, old: Option<&Application>) -> Result<(), GraphError> {
    let lists = [
        ("web.redirectUris", &app.web.redirect_uris, false),
        (
            "publicClient.redirectUris",
            &app.public_client.redirect_uris,
            true,
        ),
        ("spa.redirectUris", &app.spa.redirect_uris, false),
    ];
    for (name, list, public) in lists {
        for uri in list {
            if old.is_some_and(|o| contains(o, uri)) {
                continue;
            }
            if let Some(reason) = redirect_problem(uri, public) {
                return Err(bad(format!(
                    "Invalid value specified for property '{name}': '{}' {reason}.",
                    crate::util::clip(uri, 200)
                )));
            }
        }
    }
    Ok(())
}

fn contains(app: &Application, uri: &str) -> bool {
    [
        &app.web.redirect_uris,
        &app.public_client.redirect_uris,
        &app.spa.redirect_uris,
    ]
    .iter()
    .any(|l| l.iter().any(|u| u == uri))
}

/// Why `uri` cannot be a redirect URI: absolute, no fragment, https except on the loopback
/// host (public clients may also use a custom scheme such as `msal<appId>://auth`).
fn redirect_problem(uri: &str, public: bool) -> Option<&'static str> {
    let Ok(u) = url::Url::parse(uri) else {
        return Some("is not an absolute URI");
    };
    if uri.contains(char::is_whitespace) {
        return Some("contains white space");
    }
    if u.fragment().is_some() {
        return Some("has a fragment");
    }
    match u.scheme() {
        "https" => None,
        // Entra allows http for localhost and 127.0.0.1; `easyauth up` serves each web app on
        // its own loopback address (127.0.0.2, ...), so the whole loopback range is allowed.
        "http" if is_loopback(&u) => None,
        "http" => Some("must use https (http is allowed for localhost and 127.0.0.0/8 only)"),
        "javascript" | "data" | "file" => Some("uses a scheme that cannot be a redirect URI"),
        _ if public => None,
        _ => Some("must use https"),
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn scopes(app: &mut Application, old: Option<&Application>) -> Result<(), GraphError> {
    let mut values = HashSet::new();
    let mut ids = HashSet::new();
    for (i, scope) in app.api.oauth2_permission_scopes.iter_mut().enumerate() {
        let path = format!("api.oauth2PermissionScopes[{i}]");
        scope.id = guid(&format!("{path}.id"), &scope.id)?;
        if !ids.insert(scope.id.clone()) {
            return Err(bad(format!(
                "Invalid value specified for property '{path}.id': {} is used by another scope.",
                scope.id
            )));
        }
        permission_value(&format!("{path}.value"), &scope.value)?;
        if !values.insert(scope.value.to_ascii_lowercase()) {
            return Err(bad(format!(
                "Invalid value specified for property '{path}.value': the application already has a scope named '{}'.",
                scope.value
            )));
        }
        if !matches!(scope.consent_type.as_str(), "User" | "Admin") {
            return Err(bad(format!(
                "Invalid value specified for property '{path}.type': expected \"User\" or \"Admin\"."
            )));
        }
    }
    let Some(old) = old else {
        return Ok(());
    };
    for before in old
        .api
        .oauth2_permission_scopes
        .iter()
        .filter(|s| s.is_enabled)
    {
        let after = app
            .api
            .oauth2_permission_scopes
            .iter()
            .find(|s| s.id == before.id);
        let changed = match after {
            None => true,
            Some(a) => a.value != before.value || a.consent_type != before.consent_type,
        };
        if changed {
            return Err(GraphError::EnabledPermission(format!(
                "scope '{}' is enabled",
                before.value
            )));
        }
    }
    Ok(())
}

fn roles(app: &mut Application, old: Option<&Application>) -> Result<(), GraphError> {
    let mut values = HashSet::new();
    let mut ids = HashSet::new();
    for (i, role) in app.app_roles.iter_mut().enumerate() {
        let path = format!("appRoles[{i}]");
        role.id = guid(&format!("{path}.id"), &role.id)?;
        if !ids.insert(role.id.clone()) {
            return Err(bad(format!(
                "Invalid value specified for property '{path}.id': {} is used by another app role.",
                role.id
            )));
        }
        permission_value(&format!("{path}.value"), &role.value)?;
        if !values.insert(role.value.to_ascii_lowercase()) {
            return Err(bad(format!(
                "Invalid value specified for property '{path}.value': the application already has an app role named '{}'.",
                role.value
            )));
        }
        if role.allowed_member_types.is_empty()
            || role
                .allowed_member_types
                .iter()
                .any(|m| !matches!(m.as_str(), "User" | "Application"))
        {
            return Err(bad(format!(
                "Invalid value specified for property '{path}.allowedMemberTypes': expected \"User\", \"Application\" or both."
            )));
        }
    }
    let Some(old) = old else {
        return Ok(());
    };
    for before in old.app_roles.iter().filter(|r| r.is_enabled) {
        let after = app.app_roles.iter().find(|r| r.id == before.id);
        let changed = match after {
            None => true,
            Some(a) => {
                a.value != before.value || a.allowed_member_types != before.allowed_member_types
            }
        };
        if changed {
            return Err(GraphError::EnabledPermission(format!(
                "app role '{}' is enabled",
                before.value
            )));
        }
    }
    Ok(())
}

/// A scope or role value: not empty, no white space, not starting with a dot, at most 120
/// characters.
fn permission_value(path: &str, value: &str) -> Result<(), GraphError> {
    let problem = if value.is_empty() {
        Some("is empty")
    } else if value.contains(char::is_whitespace) {
        Some("contains white space")
    } else if value.starts_with('.') {
        Some("starts with '.'")
    } else if value.contains('/') {
        Some("contains '/'")
    } else if value.chars().count() > 120 {
        Some("is longer than 120 characters")
    } else {
        None
    };
    match problem {
        Some(p) => Err(bad(format!(
            "Invalid value specified for property '{path}': '{}' {p}.",
            crate::util::clip(value, 130)
        ))),
        None => Ok(()),
    }
}
