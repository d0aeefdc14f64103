//! The directory: one tenant's users, app registrations, consent grants and app role
//! assignments. The store is the source of truth; a [`Directory`] is an indexed in-memory
//! snapshot that the endpoints read without touching the store on the hot path.

pub mod demo;
pub mod model;
pub mod seed;

use std::collections::HashMap;
use std::sync::Arc;

use easyauth_store::{ObjectKind, Store, StoreError};

pub use model::*;
pub use seed::{
    ARM_APP_ID, ARM_RESOURCE, AZURE_CLI_APP_ID, DirectoryError, GRAPH_APP_ID, GRAPH_RESOURCE, Seed,
};

#[derive(Debug, Default)]
pub struct Directory {
    pub tenant: Tenant,
    users: Vec<User>,
    user_by_id: HashMap<String, usize>,
    user_by_upn: HashMap<String, usize>,
    apps: Vec<Arc<Application>>,
    app_by_key: HashMap<String, usize>,
    app_by_uri: HashMap<String, usize>,
    pub grants: Vec<PermissionGrant>,
    pub assignments: Vec<AppRoleAssignment>,
}

impl Directory {
    pub fn new(
        tenant: Tenant,
        users: Vec<User>,
        mut apps: Vec<Application>,
        grants: Vec<PermissionGrant>,
        assignments: Vec<AppRoleAssignment>,
    ) -> Directory {
        // The built-in applications are never stored, and nothing stored may stand in for them.
        apps.retain(|a| builtin_name(&a.app_id).is_none());
        apps.extend(builtin_applications());
        let mut dir = Directory {
            tenant,
            grants,
            assignments,
            ..Default::default()
        };
        for (i, user) in users.iter().enumerate() {
            dir.user_by_id.insert(user.id.to_ascii_lowercase(), i);
            dir.user_by_upn
                .insert(user.user_principal_name.to_ascii_lowercase(), i);
        }
        dir.users = users;
        for (i, app) in apps.into_iter().enumerate() {
            dir.app_by_key.insert(app.app_id.to_ascii_lowercase(), i);
            dir.app_by_key
                .insert(app.service_principal_id.to_ascii_lowercase(), i);
            for uri in &app.identifier_uris {
                dir.app_by_uri.insert(uri.to_ascii_lowercase(), i);
                dir.app_by_uri
                    .insert(uri.trim_end_matches('/').to_ascii_lowercase(), i);
            }
            dir.apps.push(Arc::new(app));
        }
        dir
    }

    /// Reads the snapshot of `tenant_id` from the store.
    pub async fn load(store: &dyn Store, tenant_id: &str) -> Result<Directory, LoadError> {
        let tenant: Tenant = match store
            .get_object(ObjectKind::Tenant, tenant_id, tenant_id)
            .await?
        {
            Some(json) => parse(&json)?,
            None => return Err(LoadError::NoTenant(tenant_id.into())),
        };
        async fn all<T: serde::de::DeserializeOwned>(
            store: &dyn Store,
            kind: ObjectKind,
            tenant: &str,
        ) -> Result<Vec<T>, LoadError> {
            store
                .list_objects(kind, tenant)
                .await?
                .iter()
                .map(|(_, json)| parse(json))
                .collect()
        }
        Ok(Directory::new(
            tenant,
            all(store, ObjectKind::User, tenant_id).await?,
            all(store, ObjectKind::Application, tenant_id).await?,
            all(store, ObjectKind::PermissionGrant, tenant_id).await?,
            all(store, ObjectKind::AppRoleAssignment, tenant_id).await?,
        ))
    }

    /// Writes a seed into the store (objects with the same ids are replaced).
    pub async fn save_seed(store: &dyn Store, seed: &Seed) -> Result<(), StoreError> {
        let t = &seed.tenant.id;
        let json = |v: &dyn erased::Json| v.to_json();
        store
            .put_object(ObjectKind::Tenant, t, t, &json(&seed.tenant))
            .await?;
        for u in &seed.users {
            store
                .put_object(ObjectKind::User, t, &u.id, &json(u))
                .await?;
        }
        for a in &seed.applications {
            store
                .put_object(ObjectKind::Application, t, &a.app_id, &json(a))
                .await?;
        }
        for g in &seed.grants {
            store
                .put_object(ObjectKind::PermissionGrant, t, &g.id, &json(g))
                .await?;
        }
        for a in &seed.assignments {
            store
                .put_object(ObjectKind::AppRoleAssignment, t, &a.id, &json(a))
                .await?;
        }
        Ok(())
    }

    pub fn users(&self) -> &[User] {
        &self.users
    }

    pub fn applications(&self) -> impl Iterator<Item = &Arc<Application>> {
        self.apps.iter()
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.user_by_id
            .get(&id.to_ascii_lowercase())
            .map(|&i| &self.users[i])
    }

    pub fn user_by_upn(&self, upn: &str) -> Option<&User> {
        self.user_by_upn
            .get(&upn.trim().to_ascii_lowercase())
            .map(|&i| &self.users[i])
    }

    /// By appId or service principal id.
    pub fn app(&self, id: &str) -> Option<&Arc<Application>> {
        self.app_by_key
            .get(&id.to_ascii_lowercase())
            .map(|&i| &self.apps[i])
    }

    /// Resolves a resource identifier as used in scopes and `aud`: an App ID URI (with or
    /// without a trailing slash) or an appId.
    pub fn resource(&self, identifier: &str) -> Option<&Arc<Application>> {
        let key = identifier.to_ascii_lowercase();
        self.app_by_uri
            .get(&key)
            .or_else(|| self.app_by_uri.get(key.trim_end_matches('/')))
            .map(|&i| &self.apps[i])
            .or_else(|| self.app(identifier))
    }

    /// Whether `name` (a tenant id or domain) names this tenant.
    pub fn is_tenant(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(&self.tenant.id) || name.eq_ignore_ascii_case(&self.tenant.domain)
    }

    /// App roles of `resource` assigned to `principal` (a user id or a client appId), as values.
    pub fn assigned_roles(
        &self,
        resource: &Application,
        principal: &str,
        member_type: &str,
    ) -> Vec<String> {
        let mut roles: Vec<String> = self
            .assignments
            .iter()
            .filter(|a| {
                a.resource_id.eq_ignore_ascii_case(&resource.app_id)
                    && a.principal_id.eq_ignore_ascii_case(principal)
            })
            .filter_map(|a| resource.role_by_id(&a.app_role_id))
            .filter(|r| r.is_enabled && r.allowed_member_types.iter().any(|m| m == member_type))
            .map(|r| r.value.clone())
            .collect();
        roles.sort();
        roles.dedup();
        roles
    }

    /// Returns a copy with one grant added or replaced (by id).
    /// The same directory with `app` added or replacing the app of the same `appId`.
    pub fn with_application(&self, app: Application) -> Directory {
        let mut apps: Vec<Application> = self
            .apps
            .iter()
            .filter(|a| !a.app_id.eq_ignore_ascii_case(&app.app_id))
            .map(|a| (**a).clone())
            .collect();
        apps.push(app);
        Directory::new(
            self.tenant.clone(),
            self.users.clone(),
            apps,
            self.grants.clone(),
            self.assignments.clone(),
        )
    }

    pub fn with_grant(&self, grant: PermissionGrant) -> Directory {
        let mut grants = self.grants.clone();
        grants.retain(|g| g.id != grant.id);
        grants.push(grant);
        Directory::new(
            self.tenant.clone(),
            self.users.clone(),
            self.apps.iter().map(|a| (**a).clone()).collect(),
            grants,
            self.assignments.clone(),
        )
    }
}

mod erased {
    pub(super) trait Json {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> String {
            // Serialising these plain structs cannot fail.
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, LoadError> {
    serde_json::from_str(json).map_err(|e| LoadError::Store(StoreError::Corrupt(e.to_string())))
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("tenant {0} is not in the store")]
    NoTenant(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The applications every Entra tenant has, with Entra's real ids: Microsoft Graph, Azure Resource
/// Manager and the Azure CLI.
pub fn builtin_applications() -> Vec<Application> {
    vec![
        graph_application(),
        azure_resource_manager_application(),
        azure_cli_application(),
    ]
}

/// The display name of the built-in application with this appId, if it is one.
pub fn builtin_name(app_id: &str) -> Option<&'static str> {
    [
        (GRAPH_APP_ID, "Microsoft Graph"),
        (ARM_APP_ID, "Windows Azure Service Management API"),
        (AZURE_CLI_APP_ID, "Microsoft Azure CLI"),
    ]
    .into_iter()
    .find(|(id, _)| id.eq_ignore_ascii_case(app_id))
    .map(|(_, name)| name)
}

fn delegated_scope(id: &str, value: &str, kind: &str, admin: &str, user: &str) -> PermissionScope {
    PermissionScope {
        id: id.into(),
        value: value.into(),
        consent_type: kind.into(),
        is_enabled: true,
        admin_consent_display_name: Some(admin.into()),
        admin_consent_description: None,
        user_consent_display_name: Some(user.into()),
        user_consent_description: None,
    }
}

/// ARM's only delegated permission.
pub const ARM_USER_IMPERSONATION_ID: &str = "41094075-9dad-400e-a0bd-54e686782033";

/// Azure Resource Manager ("Windows Azure Service Management API"): v1 access tokens whose `aud`
/// is the identifier as requested (`https://management.core.windows.net/` from the CLI,
/// `https://management.azure.com` from the SDKs). It has no app roles: access is Azure RBAC's
/// decision, so any confidential client of the tenant gets app-only tokens for it. The Azure CLI
/// is pre-authorized for `user_impersonation`, which is how Entra's first-party apps need no
/// consent.
pub fn azure_resource_manager_application() -> Application {
    Application {
        id: "8e1b2c3d-0000-4000-8000-00000000a004".into(),
        app_id: ARM_APP_ID.into(),
        display_name: "Windows Azure Service Management API".into(),
        identifier_uris: vec![ARM_RESOURCE.into(), "https://management.azure.com/".into()],
        service_principal_id: "8e1b2c3d-0000-4000-8000-00000000b004".into(),
        api: ApiApplication {
            requested_access_token_version: Some(1),
            oauth2_permission_scopes: vec![delegated_scope(
                ARM_USER_IMPERSONATION_ID,
                "user_impersonation",
                "User",
                "Access Azure Service Management as organization users (preview)",
                "Access Azure Service Management as you (preview)",
            )],
            pre_authorized_applications: vec![PreAuthorizedApplication {
                app_id: AZURE_CLI_APP_ID.into(),
                delegated_permission_ids: vec![ARM_USER_IMPERSONATION_ID.into()],
            }],
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The Microsoft Azure CLI: a public client (no credentials; `http://localhost` for `az login`'s
/// browser flow, device code otherwise). Its permissions are pre-authorized by the resources
/// (ARM `user_impersonation`; Graph's user-consentable permissions), so nobody is asked to consent.
pub fn azure_cli_application() -> Application {
    Application {
        id: "8e1b2c3d-0000-4000-8000-00000000a005".into(),
        app_id: AZURE_CLI_APP_ID.into(),
        display_name: "Microsoft Azure CLI".into(),
        service_principal_id: "8e1b2c3d-0000-4000-8000-00000000b005".into(),
        public_client: RedirectUris {
            redirect_uris: vec!["http://localhost".into()],
        },
        is_fallback_public_client: Some(true),
        ..Default::default()
    }
}

/// Graph's permissions pre-authorized for the Azure CLI: every delegated permission a user could
/// consent to (not `User.Read.All`, which needs an administrator).
const GRAPH_CLI_PERMISSIONS: [&str; 5] = [
    "e1fe6dd8-ba31-4d61-89e7-88639da4683d", // User.Read
    "b340eb25-3456-403f-be2f-af7a0d370277", // User.ReadBasic.All
    "37f7f235-527c-4136-accd-4a02d197296e", // openid
    "14dad69e-099b-42c9-810b-d002981feec1", // profile
    "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0", // email
];

/// The Microsoft Graph application, with the delegated scopes the tutorial and MSAL use. The ids
/// are Graph's real permission ids, so directory files copied from Azure keep working.
pub fn graph_application() -> Application {
    let scope = |id: &str, value: &str, kind: &str, name: &str| PermissionScope {
        id: id.into(),
        value: value.into(),
        consent_type: kind.into(),
        is_enabled: true,
        admin_consent_display_name: Some(name.into()),
        admin_consent_description: None,
        user_consent_display_name: Some(name.into()),
        user_consent_description: None,
    };
    Application {
        id: "8e1b2c3d-0000-4000-8000-00000000a003".into(),
        app_id: GRAPH_APP_ID.into(),
        display_name: "Microsoft Graph".into(),
        identifier_uris: vec![GRAPH_RESOURCE.into()],
        service_principal_id: "8e1b2c3d-0000-4000-8000-00000000b003".into(),
        api: ApiApplication {
            requested_access_token_version: Some(1),
            oauth2_permission_scopes: vec![
                scope(
                    "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
                    "User.Read",
                    "User",
                    "Sign in and read user profile",
                ),
                scope(
                    "b340eb25-3456-403f-be2f-af7a0d370277",
                    "User.ReadBasic.All",
                    "User",
                    "Read all users' basic profiles",
                ),
                scope(
                    "a154be20-db9c-4678-8ab7-66f6cc099a59",
                    "User.Read.All",
                    "Admin",
                    "Read all users' full profiles",
                ),
                scope(
                    "37f7f235-527c-4136-accd-4a02d197296e",
                    "openid",
                    "User",
                    "Sign users in",
                ),
                scope(
                    "14dad69e-099b-42c9-810b-d002981feec1",
                    "profile",
                    "User",
                    "View users' basic profile",
                ),
                scope(
                    "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0",
                    "email",
                    "User",
                    "View users' email address",
                ),
                scope(
                    "7427e0e9-2fba-42fe-b0c0-848c9e6a8182",
                    "offline_access",
                    "User",
                    "Maintain access to data you have given it access to",
                ),
            ],
            pre_authorized_applications: vec![PreAuthorizedApplication {
                app_id: AZURE_CLI_APP_ID.into(),
                delegated_permission_ids: GRAPH_CLI_PERMISSIONS.map(String::from).to_vec(),
            }],
            ..Default::default()
        },
        ..Default::default()
    }
}
