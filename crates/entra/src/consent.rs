//! Consent: which delegated permissions a client may use on a resource for a user.
//! Sources, as in Entra: admin consent (`AllPrincipals` grants), the user's own consent
//! (`Principal` grants), and the resource's `preAuthorizedApplications`.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::Idp;
use crate::directory::{Application, Directory, PermissionGrant, User, seed::grant_id};
use crate::error::EntraError;
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
    let existing = dir.grants.iter().find(|g| g.id == id);
    let mut scopes: Vec<String> = existing
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
        // Still the file's grant, with more consented: kept at the next start.
        seed_fingerprint: existing.and_then(|g| g.seed_fingerprint.clone()),
    }
}

/// How the flow at hand may ask the user.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConsentPrompt {
    /// `prompt=consent`: ask again for everything requested, granted or not.
    pub(crate) force: bool,
    /// The user cannot be asked now (`prompt=none`, or the consent form was just answered):
    /// anything still missing ends the flow.
    pub(crate) silent: bool,
}

/// What `user` must still consent to before `client` gets `resources`, resource by resource, or
/// the error that ends the flow (nothing may be asked, or a permission only an administrator can
/// grant: AADSTS90094). Every flow that shows a consent page (the authorize endpoint, its
/// consent form, the device-code page) goes through here, so none can skip a rule.
pub(crate) fn needed<'r>(
    dir: &Directory,
    client: &Application,
    resources: &'r [ResourceScopes],
    user: &User,
    prompt: ConsentPrompt,
) -> Result<Vec<(&'r ResourceScopes, Vec<String>)>, EntraError> {
    let mut to_consent = Vec::new();
    for resource in resources {
        let mut absent = missing(dir, client, resource, Some(&user.id));
        if prompt.force {
            absent = resource.values.clone();
            if resource.default {
                absent.extend(effective(dir, client, resource, Some(&user.id)));
            }
        }
        if !absent.is_empty() {
            to_consent.push((resource, absent));
        }
    }
    if to_consent.is_empty() {
        return Ok(to_consent);
    }
    if prompt.silent {
        return Err(EntraError::InteractiveConsentRequired {
            client_id: client.app_id.clone(),
            client_name: client.display_name.clone(),
        });
    }
    if to_consent
        .iter()
        .any(|(r, values)| needs_admin(&r.app, values))
    {
        return Err(EntraError::InvalidRequest {
            code: 90094,
            message: format!(
                "{} needs permission to access resources in your organization that only an admin can grant.",
                client.display_name
            ),
        });
    }
    Ok(to_consent)
}

/// Stores `user`'s consent to exactly what [`needed`] allowed; returns the updated directory.
pub(crate) async fn record(
    idp: &Idp,
    client: &Application,
    user: &User,
    to_consent: &[(&ResourceScopes, Vec<String>)],
) -> Result<Arc<Directory>, EntraError> {
    let _guard = idp.consent_lock.lock().await;
    let mut dir = idp.directory();
    for (resource, values) in to_consent {
        if values.is_empty() {
            continue;
        }
        let grant = user_grant(&dir, client, &resource.app, &user.id, values);
        let json =
            serde_json::to_string(&grant).map_err(|e| EntraError::Internal(e.to_string()))?;
        idp.store
            .put_object(
                easyauth_store::ObjectKind::PermissionGrant,
                &dir.tenant.id,
                &grant.id,
                &json,
            )
            .await?;
        let updated = dir.with_grant(grant);
        idp.replace_directory(updated);
        dir = idp.directory();
    }
    Ok(dir)
}
