//! Consent: which delegated permissions a client may use on a resource for a user.
//! Sources, as in Entra: admin consent (`AllPrincipals` grants), the user's own consent
//! (`Principal` grants), and the resource's `preAuthorizedApplications`.

use std::collections::BTreeSet;

use crate::directory::{Application, Directory, PermissionGrant, seed::grant_id};
use crate::scopes::ResourceScopes;

/// Permission values (lower-cased) granted to `client` on `resource` for `user`.
pub fn granted(
    dir: &Directory,
    client: &Application,
    resource: &Application,
    user: Option<&str>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for g in &dir.grants {
        let applies = g.client_id.eq_ignore_ascii_case(&client.app_id)
            && g.resource_id.eq_ignore_ascii_case(&resource.app_id)
            && match g.consent_type.as_str() {
                "AllPrincipals" => true,
                _ => {
                    matches!((&g.principal_id, user), (Some(p), Some(u)) if p.eq_ignore_ascii_case(u))
                }
            };
        if applies {
            out.extend(g.scope.split_whitespace().map(str::to_ascii_lowercase));
        }
    }
    for pre in &resource.api.pre_authorized_applications {
        if pre.app_id.eq_ignore_ascii_case(&client.app_id) {
            out.extend(
                pre.delegated_permission_ids
                    .iter()
                    .filter_map(|id| resource.scope_by_id(id))
                    .map(|s| s.value.to_ascii_lowercase()),
            );
        }
    }
    out
}

/// The permissions a consent page would have to ask for. For `/.default` with nothing granted
/// yet, that is what the client's registration statically requires of the resource.
pub fn missing(
    dir: &Directory,
    client: &Application,
    requested: &ResourceScopes,
    user: Option<&str>,
) -> Vec<String> {
    let granted = granted(dir, client, &requested.app, user);
    if requested.default {
        if !granted.is_empty() {
            return Vec::new();
        }
        return required(client, &requested.app);
    }
    requested
        .values
        .iter()
        .filter(|v| !granted.contains(&v.to_ascii_lowercase()))
        .cloned()
        .collect()
}

/// The `scp` values a token carries: the named permissions, or for `/.default` everything
/// granted (canonical spelling, the resource's definition order).
pub fn effective(
    dir: &Directory,
    client: &Application,
    requested: &ResourceScopes,
    user: Option<&str>,
) -> Vec<String> {
    if !requested.default {
        return requested.values.clone();
    }
    let granted = granted(dir, client, &requested.app, user);
    requested
        .app
        .api
        .oauth2_permission_scopes
        .iter()
        .filter(|s| s.is_enabled && granted.contains(&s.value.to_ascii_lowercase()))
        .map(|s| s.value.clone())
        .collect()
}

fn required(client: &Application, resource: &Application) -> Vec<String> {
    client
        .required_resource_access
        .iter()
        .filter(|r| r.resource_app_id.eq_ignore_ascii_case(&resource.app_id))
        .flat_map(|r| &r.resource_access)
        .filter(|a| a.kind == "Scope")
        .filter_map(|a| resource.scope_by_id(&a.id))
        .map(|s| s.value.clone())
        .collect()
}

/// Whether any of `values` needs an administrator (type `Admin`) and no grant covers it.
pub fn needs_admin(resource: &Application, values: &[String]) -> bool {
    values.iter().any(|v| {
        resource
            .scope_by_value(v)
            .is_some_and(|s| s.consent_type == "Admin")
    })
}

/// The grant document recording `user`'s consent, merged with what they consented to before.
pub fn user_grant(
    dir: &Directory,
    client: &Application,
    resource: &Application,
    user: &str,
    values: &[String],
) -> PermissionGrant {
    let id = grant_id(&client.app_id, &resource.app_id, Some(user));
    let mut scopes: Vec<String> = dir
        .grants
        .iter()
        .find(|g| g.id == id)
        .map(|g| g.scope.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    for v in values {
        if !scopes.iter().any(|s| s.eq_ignore_ascii_case(v)) {
            scopes.push(v.clone());
        }
    }
    PermissionGrant {
        id,
        client_id: client.app_id.clone(),
        consent_type: "Principal".into(),
        principal_id: Some(user.into()),
        resource_id: resource.app_id.clone(),
        scope: scopes.join(" "),
    }
}
