//! The directory: one tenant's users, app registrations, consent grants and app role
//! assignments. The store is the source of truth; a [`Directory`] is an indexed in-memory
//! snapshot that the endpoints read without touching the store on the hot path.

pub mod demo;
mod initial;
pub mod model;
pub mod seed;

use std::collections::HashMap;
use std::sync::Arc;

use easyauth_store::{ObjectKind, Store, StoreError};

pub use initial::{InitialDirectory, InitialDirectoryError};
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
    /// More identifiers of Microsoft Graph: the identity provider's own URL, which the local
    /// cloud names as Graph (`microsoftGraphResourceId`), so `az ad` asks for `<idp>//.default`.
    graph_aliases: Vec<String>,
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

    /// Writes a seed into the store (objects with the same ids are replaced). An application or
    /// grant the file defines exactly as it did at the last start is left as stored, so changes
    /// made at run time (Microsoft Graph, consent, the platform's redirect URIs) survive a
    /// restart; the file's version is written again when the file changes that object.
    pub async fn save_seed(store: &dyn Store, seed: &Seed) -> Result<(), StoreError> {
        let t = &seed.tenant.id;
        let json = |v: &dyn erased::Json| v.to_json();
        store
            .put_object(ObjectKind::Tenant, t, t, &json(&seed.tenant)?)
            .await?;
        for u in &seed.users {
            store
                .put_object(ObjectKind::User, t, &u.id, &json(u)?)
                .await?;
        }
        for a in &seed.applications {
            let mut a = a.clone();
            a.seed_fingerprint = None;
            let fingerprint = crate::util::sha256_hex(json(&a)?.as_bytes());
            let stored = store
                .get_object(ObjectKind::Application, t, &a.app_id)
                .await?;
            if unchanged::<Application>(stored, &fingerprint, |s| &s.seed_fingerprint) {
                continue;
            }
            a.seed_fingerprint = Some(fingerprint);
            store
                .put_object(ObjectKind::Application, t, &a.app_id, &json(&a)?)
                .await?;
        }
        for g in &seed.grants {
            let mut g = g.clone();
            g.seed_fingerprint = None;
            let fingerprint = crate::util::sha256_hex(json(&g)?.as_bytes());
            let stored = store
                .get_object(ObjectKind::PermissionGrant, t, &g.id)
                .await?;
            if unchanged::<PermissionGrant>(stored, &fingerprint, |s| &s.seed_fingerprint) {
                continue;
            }
            g.seed_fingerprint = Some(fingerprint);
            store
                .put_object(ObjectKind::PermissionGrant, t, &g.id, &json(&g)?)
                .await?;
        }
        for a in &seed.assignments {
            store
                .put_object(ObjectKind::AppRoleAssignment, t, &a.id, &json(a)?)
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
            .or_else(|| {
                self.graph_aliases
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(key.trim_end_matches('/')))
                    .then(|| self.app(GRAPH_APP_ID))
                    .flatten()
            })
    }

    /// The same directory, with `url` (the identity provider's own) also naming Microsoft Graph.
    pub fn with_graph_alias(mut self, url: &str) -> Directory {
        let alias = url.trim_end_matches('/').to_ascii_lowercase();
        if !self.graph_aliases.contains(&alias) {
            self.graph_aliases.push(alias);
        }
        self
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

    /// The app registration with this object id (`id`, not `appId`).
    pub fn application_by_object_id(&self, id: &str) -> Option<&Arc<Application>> {
        self.apps.iter().find(|a| a.id.eq_ignore_ascii_case(id))
    }

    fn rebuild(
        &self,
        users: Vec<User>,
        apps: Vec<Application>,
        grants: Vec<PermissionGrant>,
        assignments: Vec<AppRoleAssignment>,
    ) -> Directory {
        let mut dir = Directory::new(self.tenant.clone(), users, apps, grants, assignments);
        dir.graph_aliases = self.graph_aliases.clone();
        dir
    }

    fn app_list(&self) -> Vec<Application> {
        self.apps.iter().map(|a| (**a).clone()).collect()
    }

    /// The same directory with `app` added or replacing the app of the same `appId`.
    pub fn with_application(&self, app: Application) -> Directory {
        let mut apps: Vec<Application> = self
            .apps
            .iter()
            .filter(|a| !a.app_id.eq_ignore_ascii_case(&app.app_id))
            .map(|a| (**a).clone())
            .collect();
        apps.push(app);
        self.rebuild(
            self.users.clone(),
            apps,
            self.grants.clone(),
            self.assignments.clone(),
        )
    }

    /// Grants and app role assignments that name the app `app_id` on either side (they go when
    /// its service principal goes).
    pub fn references_to(&self, app_id: &str) -> (Vec<String>, Vec<String>) {
        let names = |id: &str| id.eq_ignore_ascii_case(app_id);
        let grants = self
            .grants
            .iter()
            .filter(|g| names(&g.client_id) || names(&g.resource_id))
            .map(|g| g.id.clone())
            .collect();
        let assignments = self
            .assignments
            .iter()
            .filter(|a| names(&a.principal_id) || names(&a.resource_id))
            .map(|a| a.id.clone())
            .collect();
        (grants, assignments)
    }

    /// The same directory with `app` in place of the app of the same `appId` (or without that
    /// app when `app` is `None`), and without the grants and assignments with these ids.
    pub fn with_changes(
        &self,
        app_id: &str,
        app: Option<Application>,
        dropped_grants: &[String],
        dropped_assignments: &[String],
    ) -> Directory {
        let mut apps: Vec<Application> = self
            .apps
            .iter()
            .filter(|a| !a.app_id.eq_ignore_ascii_case(app_id))
            .map(|a| (**a).clone())
            .collect();
        apps.extend(app);
        let mut grants = self.grants.clone();
        grants.retain(|g| !dropped_grants.contains(&g.id));
        let mut assignments = self.assignments.clone();
        assignments.retain(|a| !dropped_assignments.contains(&a.id));
        self.rebuild(self.users.clone(), apps, grants, assignments)
    }

    /// Returns a copy with one grant added or replaced (by id).
    pub fn with_grant(&self, grant: PermissionGrant) -> Directory {
        let mut grants = self.grants.clone();
        grants.retain(|g| g.id != grant.id);
        grants.push(grant);
        self.rebuild(
            self.users.clone(),
            self.app_list(),
            grants,
            self.assignments.clone(),
        )
    }

    /// Returns a copy without the grant with this id.
    pub fn without_grant(&self, id: &str) -> Directory {
        let mut grants = self.grants.clone();
        grants.retain(|g| g.id != id);
        self.rebuild(
            self.users.clone(),
            self.app_list(),
            grants,
            self.assignments.clone(),
        )
    }

    /// Returns a copy with one app role assignment added or replaced (by id).
    pub fn with_assignment(&self, assignment: AppRoleAssignment) -> Directory {
        let mut assignments = self.assignments.clone();
        assignments.retain(|a| a.id != assignment.id);
        assignments.push(assignment);
        self.rebuild(
            self.users.clone(),
            self.app_list(),
            self.grants.clone(),
            assignments,
        )
    }

    /// Returns a copy without the app role assignment with this id.
    pub fn without_assignment(&self, id: &str) -> Directory {
        let mut assignments = self.assignments.clone();
        assignments.retain(|a| a.id != id);
        self.rebuild(
            self.users.clone(),
            self.app_list(),
            self.grants.clone(),
            assignments,
        )
    }

    /// Returns a copy without the user with this id, and without the grants and app role
    /// assignments that name them.
    pub fn without_user(&self, id: &str) -> Directory {
        let mut users = self.users.clone();
        users.retain(|u| !u.id.eq_ignore_ascii_case(id));
        let mut grants = self.grants.clone();
        grants.retain(|g| {
            !g.principal_id
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(id))
        });
        let mut assignments = self.assignments.clone();
        assignments.retain(|a| !a.principal_id.eq_ignore_ascii_case(id));
        self.rebuild(users, self.app_list(), grants, assignments)
    }

    /// Returns a copy with one user added or replaced (by id).
    pub fn with_user(&self, user: User) -> Directory {
        let mut users = self.users.clone();
        users.retain(|u| !u.id.eq_ignore_ascii_case(&user.id));
        users.push(user);
        self.rebuild(
            users,
            self.app_list(),
            self.grants.clone(),
            self.assignments.clone(),
        )
    }
}

mod erased {
    pub(super) trait Json {
        fn to_json(&self) -> Result<String, super::StoreError>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> Result<String, super::StoreError> {
            serde_json::to_string(self).map_err(|e| super::StoreError::Corrupt(e.to_string()))
        }
    }
}

/// Whether the stored object was written from a file version with this fingerprint.
fn unchanged<T: serde::de::DeserializeOwned>(
    stored: Option<String>,
    fingerprint: &str,
    field: impl Fn(&T) -> &Option<String>,
) -> bool {
    stored
        .and_then(|json| serde_json::from_str::<T>(&json).ok())
        .is_some_and(|s| field(&s).as_deref() == Some(fingerprint))
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
        app_roles: GRAPH_APP_ROLES
            .iter()
            .map(|(id, value, name)| AppRole {
                id: (*id).into(),
                value: (*value).into(),
                display_name: (*name).into(),
                description: String::new(),
                allowed_member_types: vec!["Application".into()],
                is_enabled: true,
            })
            .collect(),
        ..Default::default()
    }
}

/// Graph's application permissions (app roles) that its directory routes check, with Graph's
/// real ids, so an app role assignment copied from Azure keeps working.
pub const GRAPH_APP_ROLES: [(&str, &str, &str); 7] = [
    (
        GRAPH_APPLICATION_READ_ALL,
        "Application.Read.All",
        "Read all applications",
    ),
    (
        GRAPH_APPLICATION_READWRITE_ALL,
        "Application.ReadWrite.All",
        "Read and write all applications",
    ),
    (
        "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
        "Directory.Read.All",
        "Read directory data",
    ),
    (
        GRAPH_DIRECTORY_READWRITE_ALL,
        "Directory.ReadWrite.All",
        "Read and write directory data",
    ),
    (
        "df021288-bdef-4463-88db-98f22de89214",
        "User.Read.All",
        "Read all users' full profiles",
    ),
    (
        "741f803b-c850-494e-b5df-cde7c675a1ca",
        "User.ReadWrite.All",
        "Read and write all users' full profiles",
    ),
    (
        "8e8e4742-1d95-4f68-9d56-6ee75648c72a",
        "DelegatedPermissionGrant.ReadWrite.All",
        "Manage all delegated permission grants",
    ),
];
pub const GRAPH_APPLICATION_READ_ALL: &str = "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30";
pub const GRAPH_APPLICATION_READWRITE_ALL: &str = "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9";
pub const GRAPH_DIRECTORY_READWRITE_ALL: &str = "19dbc75e-c2e2-444c-a770-ec69d8559fc7";
