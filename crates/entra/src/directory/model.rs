//! Directory objects in the shape of Microsoft Graph's resources, so that a directory file can be
//! written from Graph documentation (or from `az ad app show` output) without translation.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    /// The tenant's initial domain, e.g. `contoso.onmicrosoft.com`; usable in place of the id.
    pub domain: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Smart lockout, as Entra's "Password protection" settings name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_rule_settings: Option<PasswordRuleSettings>,
}

/// Smart lockout: after `lockout_threshold` wrong passwords for one account, sign-in for that
/// account is refused (AADSTS50053) for `lockout_duration_in_seconds`, whatever the password.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PasswordRuleSettings {
    #[serde(default = "PasswordRuleSettings::default_threshold")]
    pub lockout_threshold: u32,
    #[serde(default = "PasswordRuleSettings::default_duration")]
    pub lockout_duration_in_seconds: u32,
}

impl PasswordRuleSettings {
    /// Entra's defaults for a tenant without Entra ID P1.
    pub const DEFAULT: PasswordRuleSettings = PasswordRuleSettings {
        lockout_threshold: 10,
        lockout_duration_in_seconds: 60,
    };

    fn default_threshold() -> u32 {
        Self::DEFAULT.lockout_threshold
    }

    fn default_duration() -> u32 {
        Self::DEFAULT.lockout_duration_in_seconds
    }
}

impl Tenant {
    pub fn lockout(&self) -> PasswordRuleSettings {
        self.password_rule_settings
            .unwrap_or(PasswordRuleSettings::DEFAULT)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    #[serde(default = "yes")]
    pub account_enabled: bool,
    /// Group object ids the user belongs to (emitted as `groups` when an app asks for them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Plain text in the directory file only; replaced by `passwordHash` before storing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// The application object's id (not the appId); generated when absent.
    #[serde(default)]
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    #[serde(default)]
    pub identifier_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_audience: Option<String>,
    #[serde(default)]
    pub web: WebApplication,
    #[serde(default)]
    pub public_client: RedirectUris,
    #[serde(default)]
    pub spa: RedirectUris,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_fallback_public_client: Option<bool>,
    #[serde(default)]
    pub api: ApiApplication,
    #[serde(default)]
    pub app_roles: Vec<AppRole>,
    #[serde(default)]
    pub required_resource_access: Vec<RequiredResourceAccess>,
    #[serde(default)]
    pub password_credentials: Vec<PasswordCredential>,
    #[serde(default)]
    pub key_credentials: Vec<KeyCredential>,
    /// `None`, `SecurityGroup`, `All`...: whether tokens carry `groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_membership_claims: Option<String>,
    /// The object id of the app's service principal in this tenant (app-only tokens carry it as
    /// `oid`); derived from the appId when absent.
    #[serde(default)]
    pub service_principal_id: String,
    /// Set for an app created through Microsoft Graph until its service principal is created
    /// (`POST /servicePrincipals`), and again when that is deleted, as in Entra. Apps from a
    /// directory file and the built-in ones always have a service principal.
    #[serde(default, skip_serializing_if = "is_false")]
    pub without_service_principal: bool,
    /// When the registration was created through Microsoft Graph (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    /// The fingerprint of the directory file's version of this app when it was last written
    /// to the store; see [`crate::Directory::save_seed`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_fingerprint: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WebApplication {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_url: Option<String>,
    #[serde(default)]
    pub implicit_grant_settings: ImplicitGrantSettings,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImplicitGrantSettings {
    #[serde(default)]
    pub enable_id_token_issuance: bool,
    #[serde(default)]
    pub enable_access_token_issuance: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RedirectUris {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApiApplication {
    /// `1` or absent: v1.0 access tokens; `2`: v2.0 access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_access_token_version: Option<u8>,
    #[serde(default)]
    pub oauth2_permission_scopes: Vec<PermissionScope>,
    #[serde(default)]
    pub pre_authorized_applications: Vec<PreAuthorizedApplication>,
    #[serde(default)]
    pub known_client_applications: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionScope {
    pub id: String,
    pub value: String,
    /// `User` (users may consent) or `Admin` (admin consent only).
    #[serde(default = "user_type", rename = "type")]
    pub consent_type: String,
    #[serde(default = "yes")]
    pub is_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_consent_display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_consent_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_consent_display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_consent_description: Option<String>,
}

fn user_type() -> String {
    "User".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PreAuthorizedApplication {
    pub app_id: String,
    /// Graph's name; the older manifest name `permissionIds` is accepted too.
    #[serde(default, alias = "permissionIds")]
    pub delegated_permission_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: String,
    pub value: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    /// `User`, `Application`, or both.
    #[serde(default)]
    pub allowed_member_types: Vec<String>,
    #[serde(default = "yes")]
    pub is_enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RequiredResourceAccess {
    pub resource_app_id: String,
    #[serde(default)]
    pub resource_access: Vec<ResourceAccess>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAccess {
    pub id: String,
    /// `Scope` (delegated) or `Role` (application).
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    #[serde(default)]
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Plain text in the directory file only; replaced by `secretHash` before storing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// First three characters, as Graph shows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// RFC 3339; a secret past this instant is refused (AADSTS7000222).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    /// When the secret was added through Microsoft Graph (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyCredential {
    #[serde(default)]
    pub key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default = "cert_type", rename = "type")]
    pub kind: String,
    #[serde(default = "verify_usage")]
    pub usage: String,
    /// The certificate: base64 of its DER, or PEM text.
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
}

fn cert_type() -> String {
    "AsymmetricX509Cert".into()
}
fn verify_usage() -> String {
    "Verify".into()
}

/// Delegated consent (Graph `oauth2PermissionGrant`). `clientId` and `resourceId` may be appIds
/// (convenient in files) or service principal ids (what Graph itself uses).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionGrant {
    #[serde(default)]
    pub id: String,
    pub client_id: String,
    /// `AllPrincipals` (admin consent) or `Principal` (one user's consent).
    pub consent_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    pub resource_id: String,
    /// Space-separated scope values.
    pub scope: String,
    /// As [`Application::seed_fingerprint`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_fingerprint: Option<String>,
}

/// Graph `appRoleAssignment`: an app role granted to a user or to a client application.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    #[serde(default)]
    pub id: String,
    /// A user id, or a client's appId / service principal id.
    pub principal_id: String,
    /// The resource's appId or service principal id.
    pub resource_id: String,
    pub app_role_id: String,
}

impl Application {
    pub fn access_token_version(&self) -> u8 {
        match self.api.requested_access_token_version {
            Some(2) => 2,
            _ => 1,
        }
    }

    pub fn has_credentials(&self) -> bool {
        !self.password_credentials.is_empty() || !self.key_credentials.is_empty()
    }

    pub fn scope_by_value(&self, value: &str) -> Option<&PermissionScope> {
        self.api
            .oauth2_permission_scopes
            .iter()
            .find(|s| s.is_enabled && s.value.eq_ignore_ascii_case(value))
    }

    pub fn scope_by_id(&self, id: &str) -> Option<&PermissionScope> {
        self.api
            .oauth2_permission_scopes
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(id))
    }

    pub fn role_by_id(&self, id: &str) -> Option<&AppRole> {
        self.app_roles
            .iter()
            .find(|r| r.id.eq_ignore_ascii_case(id))
    }

    /// Whether `uri` is a registered redirect URI (Entra's matching: exact, except that the
    /// port of an `http://localhost` / `http://127.0.0.1` URI is ignored), and of which kind.
    pub fn redirect_kind(&self, uri: &str) -> Option<RedirectKind> {
        let lists = [
            (&self.web.redirect_uris, RedirectKind::Web),
            (
                &self.public_client.redirect_uris,
                RedirectKind::PublicClient,
            ),
            (&self.spa.redirect_uris, RedirectKind::Spa),
        ];
        for (list, kind) in lists {
            if list.iter().any(|r| redirect_matches(r, uri)) {
                return Some(kind);
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectKind {
    Web,
    PublicClient,
    Spa,
}

fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http" && matches!(u.host_str(), Some("localhost") | Some("127.0.0.1"))
    };
    // Registered URIs without a path match with or without the trailing slash.
    loopback(&reg)
        && loopback(&req)
        && reg.host_str() == req.host_str()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && req.fragment().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_redirects_ignore_the_port_only() {
        let app = Application {
            web: WebApplication {
                redirect_uris: vec!["http://localhost".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            app.redirect_kind("http://localhost:8400"),
            Some(RedirectKind::Web)
        );
        assert_eq!(
            app.redirect_kind("http://localhost:8400/"),
            Some(RedirectKind::Web)
        );
        assert_eq!(app.redirect_kind("http://localhost:8400/other"), None);
        assert_eq!(app.redirect_kind("https://localhost:8400"), None);
        assert_eq!(app.redirect_kind("http://localhost.evil.test"), None);
        assert_eq!(app.redirect_kind("http://127.0.0.1:8400"), None);
    }
}
