//! `identityProviders`: Microsoft Entra ID (`azureActiveDirectory`), custom OpenID Connect
//! providers, and the social providers (kept so their configuration loads and round-trips, though
//! the module does not sign in with them yet).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::enums::ClientCredentialMethod;
use super::secret::Secret;

/// The app setting the portal stores the Entra client secret in.
pub const DEFAULT_AAD_SECRET_SETTING: &str = "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET";

/// `identityProviders`. A provider object being present does not make it usable: ARM returns
/// every social provider as `{"enabled": true, "registration": {}}`; see `is_configured`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IdentityProviders {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_active_directory: Option<AzureActiveDirectory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facebook: Option<Facebook>,
    #[serde(alias = "github", skip_serializing_if = "Option::is_none")]
    pub git_hub: Option<OAuth2Provider>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub google: Option<OAuth2Provider>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub twitter: Option<Twitter>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apple: Option<OAuth2Provider>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_microsoft_account: Option<OAuth2Provider>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_static_web_apps: Option<AzureStaticWebApps>,
    /// Keyed by provider name as written (the URL alias is the name lower-cased). The file
    /// format docs call this `openIdConnectProviders`; both are accepted.
    #[serde(alias = "openIdConnectProviders")]
    pub custom_open_id_connect_providers: BTreeMap<String, CustomOidcProvider>,
}

/// `identityProviders.azureActiveDirectory`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureActiveDirectory {
    /// Default true: the ARM schema says "false if the provider should not be enabled despite
    /// the set registration".
    pub enabled: bool,
    pub registration: AadRegistration,
    pub login: AadLogin,
    pub validation: AadValidation,
    /// Portal bookkeeping only.
    pub is_auto_provisioned: bool,
}

impl Default for AzureActiveDirectory {
    fn default() -> AzureActiveDirectory {
        AzureActiveDirectory {
            enabled: true,
            registration: AadRegistration::default(),
            login: AadLogin::default(),
            validation: AadValidation::default(),
            is_auto_provisioned: false,
        }
    }
}

/// `azureActiveDirectory.registration`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AadRegistration {
    /// e.g. `https://sts.windows.net/<tid>/v2.0` or `https://login.microsoftonline.com/<tid>/v2.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_id_issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The app setting (environment variable) holding the client secret; default
    /// `MICROSOFT_PROVIDER_AUTHENTICATION_SECRET`. The special value
    /// `OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID` means "use a managed-identity federated credential".
    pub client_secret_setting_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_certificate_thumbprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_certificate_subject_alternative_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_certificate_issuer: Option<String>,
    /// Only from a v1 `authsettings` `clientSecret`: v2 has no inline secret. Never serialized,
    /// never printed. The caller decides whether to use it or insist on an app setting.
    #[serde(skip)]
    pub client_secret_inline: Option<Secret>,
}

impl Default for AadRegistration {
    fn default() -> AadRegistration {
        AadRegistration {
            open_id_issuer: None,
            client_id: None,
            client_secret_setting_name: DEFAULT_AAD_SECRET_SETTING.into(),
            client_secret_certificate_thumbprint: None,
            client_secret_certificate_subject_alternative_name: None,
            client_secret_certificate_issuer: None,
            client_secret_inline: None,
        }
    }
}

/// `azureActiveDirectory.login`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AadLogin {
    /// `key=value` strings appended to the authorize request (`scope=...` replaces the default).
    pub login_parameters: Vec<String>,
    /// True removes `WWW-Authenticate` from the module's 401s.
    #[serde(rename = "disableWWWAuthenticate", alias = "disableWwwAuthenticate")]
    pub disable_www_authenticate: bool,
}

/// `azureActiveDirectory.validation`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AadValidation {
    /// Accepted `aud` values besides the implicit ones; see
    /// [`AzureActiveDirectory::effective_audiences`].
    pub allowed_audiences: Vec<String>,
    pub jwt_claim_checks: JwtClaimChecks,
    pub default_authorization_policy: DefaultAuthorizationPolicy,
}

/// `validation.jwtClaimChecks`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JwtClaimChecks {
    /// Group object ids, checked against the `groups` claim.
    pub allowed_groups: Vec<String>,
    /// Client ids, checked against `appid`/`azp`.
    pub allowed_client_applications: Vec<String>,
}

/// `validation.defaultAuthorizationPolicy`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DefaultAuthorizationPolicy {
    /// Non-empty: the token's `azp`/`appid` must be listed.
    pub allowed_applications: Vec<String>,
    pub allowed_principals: AllowedPrincipals,
}

/// `defaultAuthorizationPolicy.allowedPrincipals`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AllowedPrincipals {
    /// Object ids matched against `oid`.
    pub identities: Vec<String>,
    pub groups: Vec<String>,
}

/// `identityProviders.customOpenIdConnectProviders.<name>`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomOidcProvider {
    /// Default true, as for every provider.
    pub enabled: bool,
    pub registration: CustomOidcRegistration,
    pub login: CustomOidcLogin,
}

impl Default for CustomOidcProvider {
    fn default() -> CustomOidcProvider {
        CustomOidcProvider {
            enabled: true,
            registration: CustomOidcRegistration::default(),
            login: CustomOidcLogin::default(),
        }
    }
}

/// `<custom>.registration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomOidcRegistration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub client_credential: ClientCredential,
    pub open_id_connect_configuration: OpenIdConnectConfiguration,
}

/// `<custom>.registration.clientCredential`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientCredential {
    pub method: ClientCredentialMethod,
    /// Filled in at load time when absent: `<NAME>_AUTHENTICATION_SECRET`, the provider name
    /// upper-cased (D-oidc).
    pub client_secret_setting_name: String,
}

/// `<custom>.registration.openIdConnectConfiguration`: either the discovery document's URL, or
/// the three endpoints (plus optionally the JWKS URI) spelled out.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OpenIdConnectConfiguration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The JWKS URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certification_uri: Option<String>,
    /// When set, the other fields are taken from this discovery document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub well_known_open_id_configuration: Option<String>,
}

/// `<custom>.login`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CustomOidcLogin {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_claim_type: Option<String>,
    pub scopes: Vec<String>,
    /// Extra authorize-request parameters, `key=value` (file-format docs only).
    pub login_parameter_names: Vec<String>,
}

impl CustomOidcLogin {
    /// The scopes to request: as configured, or `openid profile email` (which D-oidc says the
    /// list must contain) when none are.
    pub fn effective_scopes(&self) -> Vec<String> {
        if self.scopes.is_empty() {
            ["openid", "profile", "email"].map(String::from).to_vec()
        } else {
            self.scopes.clone()
        }
    }
}

/// `identityProviders.gitHub`, `google`, `apple`, `legacyMicrosoftAccount`: a client id, a secret
/// setting, scopes, and (Google, Microsoft Account) allowed audiences.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OAuth2Provider {
    pub enabled: bool,
    pub registration: ClientRegistration,
    pub login: ScopesLogin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<AudienceValidation>,
}

impl Default for OAuth2Provider {
    fn default() -> OAuth2Provider {
        OAuth2Provider {
            enabled: true,
            registration: ClientRegistration::default(),
            login: ScopesLogin::default(),
            validation: None,
        }
    }
}

/// `registration` of the client-id providers.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientRegistration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_setting_name: Option<String>,
    /// Only from a v1 inline secret; never serialized or printed.
    #[serde(skip)]
    pub client_secret_inline: Option<Secret>,
}

/// `login` of the social providers.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScopesLogin {
    pub scopes: Vec<String>,
}

/// `validation` of Google and Microsoft Account.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AudienceValidation {
    pub allowed_audiences: Vec<String>,
}

/// `identityProviders.facebook`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Facebook {
    pub enabled: bool,
    pub registration: FacebookRegistration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_api_version: Option<String>,
    pub login: ScopesLogin,
}

impl Default for Facebook {
    fn default() -> Facebook {
        Facebook {
            enabled: true,
            registration: FacebookRegistration::default(),
            graph_api_version: None,
            login: ScopesLogin::default(),
        }
    }
}

/// `facebook.registration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FacebookRegistration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_secret_setting_name: Option<String>,
    /// Only from a v1 inline secret; never serialized or printed.
    #[serde(skip)]
    pub app_secret_inline: Option<Secret>,
}

/// `identityProviders.twitter` (OAuth 1.0a).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Twitter {
    pub enabled: bool,
    pub registration: TwitterRegistration,
}

impl Default for Twitter {
    fn default() -> Twitter {
        Twitter {
            enabled: true,
            registration: TwitterRegistration::default(),
        }
    }
}

/// `twitter.registration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TwitterRegistration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_secret_setting_name: Option<String>,
    /// Only from a v1 inline secret; never serialized or printed.
    #[serde(skip)]
    pub consumer_secret_inline: Option<Secret>,
}

/// `identityProviders.azureStaticWebApps`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AzureStaticWebApps {
    pub enabled: bool,
    pub registration: StaticWebAppsRegistration,
}

impl Default for AzureStaticWebApps {
    fn default() -> AzureStaticWebApps {
        AzureStaticWebApps {
            enabled: true,
            registration: StaticWebAppsRegistration::default(),
        }
    }
}

/// `azureStaticWebApps.registration`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StaticWebAppsRegistration {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}
