//! The built-in demo tenant used when no directory file is given: the tutorial's two app
//! registrations, wired as the tutorial wires them, and two users. Secrets and the demo password
//! are generated once per data dir (never hard-coded) and printed at start-up.

use super::model::*;
use super::seed::{GRAPH_APP_ID, Seed, grant_id};
use crate::credentials::{hash_client_secret, hash_password};

pub const TENANT_ID: &str = "b8f2e4a1-5c3d-4e6f-9a7b-1c2d3e4f5a6b";
pub const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
pub const ALICE_ID: &str = "f2a9c5e0-7b1d-4c3e-8f6a-2b4c6d8e0a1c";
pub const BOB_ID: &str = "0d3b1e5a-6c7f-4a8b-9c0d-1e2f3a4b5c6d";
pub const FRONTEND_APP_ID: &str = "3f1b7c2a-9d4e-4f6a-8b1c-2d3e4f5a6b7c";
pub const BACKEND_APP_ID: &str = "7a4c2e1f-3b5d-4c6e-9f8a-0b1c2d3e4f5a";
pub const USER_IMPERSONATION_ID: &str = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const GRAPH_USER_READ: &str = "e1fe6dd8-ba31-4d61-89e7-88639da4683d";

/// Generated per data dir.
#[derive(Debug, Clone)]
pub struct DemoSecrets {
    pub user_password: String,
    pub frontend_secret: String,
    pub backend_secret: String,
}

pub fn seed(secrets: &DemoSecrets) -> Seed {
    let user = |id: &str, given: &str, surname: &str| {
        let upn = format!("{}@{TENANT_DOMAIN}", given.to_ascii_lowercase());
        User {
            id: id.into(),
            user_principal_name: upn.clone(),
            display_name: format!("{given} {surname}"),
            given_name: Some(given.into()),
            surname: Some(surname.into()),
            mail: Some(upn),
            job_title: None,
            office_location: None,
            mobile_phone: None,
            preferred_language: Some("en-US".into()),
            account_enabled: true,
            groups: Vec::new(),
            password: None,
            password_hash: Some(hash_password(&secrets.user_password)),
        }
    };
    let secret = |text: &str| PasswordCredential {
        key_id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, text.as_bytes()).to_string(),
        display_name: Some("easyauth demo secret".into()),
        secret_text: None,
        secret_hash: Some(hash_client_secret(text)),
        hint: Some(text.chars().take(3).collect()),
        end_date_time: None,
        start_date_time: None,
    };
    let graph_user_read = RequiredResourceAccess {
        resource_app_id: GRAPH_APP_ID.into(),
        resource_access: vec![ResourceAccess {
            id: GRAPH_USER_READ.into(),
            kind: "Scope".into(),
        }],
    };
    // Any loopback port: the platform gives each app its own origin.
    let loopback_callbacks = vec![
        "http://localhost".to_string(),
        "http://localhost/.auth/login/aad/callback".to_string(),
        "http://127.0.0.1/.auth/login/aad/callback".to_string(),
    ];
    let backend = Application {
        id: String::new(),
        app_id: BACKEND_APP_ID.into(),
        display_name: "easyauth-backend".into(),
        identifier_uris: vec![format!("api://{BACKEND_APP_ID}")],
        web: WebApplication {
            redirect_uris: loopback_callbacks.clone(),
            logout_url: None,
            implicit_grant_settings: ImplicitGrantSettings { enable_id_token_issuance: true, enable_access_token_issuance: false },
        },
        api: ApiApplication {
            requested_access_token_version: None,
            oauth2_permission_scopes: vec![PermissionScope {
                id: USER_IMPERSONATION_ID.into(),
                value: "user_impersonation".into(),
                consent_type: "User".into(),
                is_enabled: true,
                admin_consent_display_name: Some("Access easyauth-backend".into()),
                admin_consent_description: Some("Allow the application to access easyauth-backend on behalf of the signed-in user.".into()),
                user_consent_display_name: Some("Access easyauth-backend".into()),
                user_consent_description: Some("Allow the application to access easyauth-backend on your behalf.".into()),
            }],
            pre_authorized_applications: Vec::new(),
            known_client_applications: Vec::new(),
        },
        required_resource_access: vec![graph_user_read.clone()],
        password_credentials: vec![secret(&secrets.backend_secret)],
        ..Default::default()
    };
    let frontend = Application {
        id: String::new(),
        app_id: FRONTEND_APP_ID.into(),
        display_name: "easyauth-frontend".into(),
        web: WebApplication {
            redirect_uris: loopback_callbacks,
            logout_url: None,
            implicit_grant_settings: ImplicitGrantSettings {
                enable_id_token_issuance: true,
                enable_access_token_issuance: false,
            },
        },
        required_resource_access: vec![
            graph_user_read,
            RequiredResourceAccess {
                resource_app_id: BACKEND_APP_ID.into(),
                resource_access: vec![ResourceAccess {
                    id: USER_IMPERSONATION_ID.into(),
                    kind: "Scope".into(),
                }],
            },
        ],
        password_credentials: vec![secret(&secrets.frontend_secret)],
        ..Default::default()
    };
    let mut applications = vec![frontend, backend];
    for app in &mut applications {
        app.id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{}/application", app.app_id).as_bytes(),
        )
        .to_string();
        app.service_principal_id = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{}/servicePrincipal", app.app_id).as_bytes(),
        )
        .to_string();
    }
    // Admin consent for the back end's on-behalf-of call to Graph (the tutorial's next step).
    let grants = vec![PermissionGrant {
        id: grant_id(BACKEND_APP_ID, GRAPH_APP_ID, None),
        client_id: BACKEND_APP_ID.into(),
        consent_type: "AllPrincipals".into(),
        principal_id: None,
        resource_id: GRAPH_APP_ID.into(),
        scope: "User.Read".into(),
        seed_fingerprint: None,
    }];
    Seed {
        tenant: Tenant {
            id: TENANT_ID.into(),
            domain: TENANT_DOMAIN.into(),
            display_name: Some("Contoso (easyauth demo)".into()),
            // Low enough to try smart lockout by hand: 5 wrong passwords lock for 30 s.
            password_rule_settings: Some(PasswordRuleSettings {
                lockout_threshold: 5,
                lockout_duration_in_seconds: 30,
            }),
        },
        users: vec![
            user(ALICE_ID, "Alice", "Smith"),
            user(BOB_ID, "Bob", "Jones"),
        ],
        applications,
        grants,
        assignments: Vec::new(),
        ignored_fields: Vec::new(),
    }
}

/// The demo password and client secrets of this data dir: generated on first use, then kept in
/// the store so that every `easyauth idp` / `easyauth up` on the same data dir agrees.
pub async fn secrets(
    store: &dyn easyauth_store::Store,
) -> easyauth_store::StoreResult<DemoSecrets> {
    let new = crate::credentials::generate_secret;
    Ok(DemoSecrets {
        user_password: store
            .get_or_create_setting("demo.user-password", &format!("Demo-{}", new(9)))
            .await?,
        frontend_secret: store
            .get_or_create_setting("demo.frontend-secret", &new(30))
            .await?,
        backend_secret: store
            .get_or_create_setting("demo.backend-secret", &new(30))
            .await?,
    })
}
