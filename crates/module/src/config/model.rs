//! The typed `authsettingsV2` object: everything but the identity providers, which
//! live in `providers.rs`. Field defaults are the service's defaults; JSON names are ARM's
//! camelCase, with the file-format docs' alternative spellings accepted as aliases.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::enums::{CookieExpirationConvention, ForwardProxyConvention, UnauthenticatedAction};
use super::providers::IdentityProviders;
use super::{lenient, timespan};

/// The authentication module's whole configuration (the `properties` of `authsettingsV2`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthSettings {
    pub platform: Platform,
    pub global_validation: GlobalValidation,
    pub http_settings: HttpSettings,
    pub login: Login,
    pub identity_providers: IdentityProviders,
    /// ARM returns it as the string `"false"`; `None` when absent.
    #[serde(
        deserialize_with = "lenient::opt_bool_or_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub clear_inbound_claims_mapping: Option<bool>,
    /// Bookkeeping the service writes (`configVersion: "v2"`); kept so it round-trips.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_properties: Option<LegacyProperties>,
    /// Container Apps only: names of the secrets holding the cookie/token keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_settings: Option<EncryptionSettings>,
}

/// `platform`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Platform {
    /// Whether the module acts at all (default false).
    pub enabled: bool,
    /// `~1` = latest; a pin such as `1.3.2` is kept but has no effect here.
    pub runtime_version: String,
    /// A file holding these same settings (App Service reads it instead of ARM); not followed
    /// automatically by [`AuthSettings::load`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_file_path: Option<String>,
}

impl Default for Platform {
    fn default() -> Platform {
        Platform {
            enabled: false,
            runtime_version: "~1".into(),
            config_file_path: None,
        }
    }
}

/// `globalValidation`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GlobalValidation {
    /// Default false. See [`AuthSettings::unauthenticated_action`] for how it combines with the action.
    pub require_authentication: bool,
    /// Default `RedirectToLoginPage`.
    pub unauthenticated_client_action: UnauthenticatedAction,
    /// The provider alias unauthenticated browsers are sent to when several are enabled
    /// (`azureactivedirectory`/`aad`, `google`, a custom provider's name, ...); validated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_to_provider: Option<String>,
    /// Paths that skip the unauthenticated action: exact paths, or prefixes ending in `/*`.
    pub excluded_paths: Vec<String>,
}

/// `httpSettings`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpSettings {
    /// Default true: plain-http requests are redirected to https.
    pub require_https: bool,
    pub routes: HttpRoutes,
    pub forward_proxy: ForwardProxy,
}

impl Default for HttpSettings {
    fn default() -> HttpSettings {
        HttpSettings {
            require_https: true,
            routes: HttpRoutes::default(),
            forward_proxy: ForwardProxy::default(),
        }
    }
}

/// `httpSettings.routes`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpRoutes {
    /// Default `/.auth`; starts with `/`, never ends with `/` (validated).
    pub api_prefix: String,
}

impl Default for HttpRoutes {
    fn default() -> HttpRoutes {
        HttpRoutes {
            api_prefix: "/.auth".into(),
        }
    }
}

/// `httpSettings.forwardProxy`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ForwardProxy {
    pub convention: ForwardProxyConvention,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_host_header_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_proto_header_name: Option<String>,
}

/// `login`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Login {
    pub routes: LoginRoutes,
    pub token_store: TokenStore,
    pub preserve_url_fragments_for_logins: bool,
    /// Absolute URLs sign-in/sign-out may redirect to besides the app's own host. The 2021
    /// file-format docs spell it `allowedExternalRedirectUri`; both are accepted.
    #[serde(alias = "allowedExternalRedirectUri")]
    pub allowed_external_redirect_urls: Vec<String>,
    pub cookie_expiration: CookieExpiration,
    pub nonce: Nonce,
}

/// `login.routes`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoginRoutes {
    /// Unset means `<apiPrefix>/logout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logout_endpoint: Option<String>,
}

/// `login.tokenStore`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TokenStore {
    /// Default false (ARM); the portal turns it on. Token headers and `/.auth/me` need it.
    pub enabled: bool,
    /// Hours after session expiry during which `/.auth/refresh` still works (default 72).
    #[serde(deserialize_with = "lenient::hours")]
    pub token_refresh_extension_hours: f64,
    pub file_system: FileSystemTokenStore,
    pub azure_blob_storage: BlobStorageTokenStore,
}

impl Default for TokenStore {
    fn default() -> TokenStore {
        TokenStore {
            enabled: false,
            token_refresh_extension_hours: 72.0,
            file_system: FileSystemTokenStore::default(),
            azure_blob_storage: BlobStorageTokenStore::default(),
        }
    }
}

impl TokenStore {
    /// `tokenRefreshExtensionHours` as a duration.
    pub fn refresh_extension(&self) -> Duration {
        Duration::from_secs_f64(self.token_refresh_extension_hours * 3600.0)
    }
}

/// `login.tokenStore.fileSystem`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FileSystemTokenStore {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

/// `login.tokenStore.azureBlobStorage`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BlobStorageTokenStore {
    /// Name of the app setting holding a container SAS URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sas_url_setting_name: Option<String>,
}

/// `login.cookieExpiration`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CookieExpiration {
    pub convention: CookieExpirationConvention,
    /// Default `08:00:00`.
    #[serde(with = "timespan")]
    pub time_to_expiration: Duration,
}

impl Default for CookieExpiration {
    fn default() -> CookieExpiration {
        CookieExpiration {
            convention: CookieExpirationConvention::FixedTime,
            time_to_expiration: Duration::from_secs(8 * 3600),
        }
    }
}

/// `login.nonce`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Nonce {
    /// Default true; false only for debugging.
    pub validate_nonce: bool,
    /// Default `00:05:00`.
    #[serde(with = "timespan")]
    pub nonce_expiration_interval: Duration,
}

impl Default for Nonce {
    fn default() -> Nonce {
        Nonce {
            validate_nonce: true,
            nonce_expiration_interval: Duration::from_secs(300),
        }
    }
}

/// `legacyProperties` (service bookkeeping).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LegacyProperties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_version: Option<String>,
}

/// `encryptionSettings` (Container Apps).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EncryptionSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_app_auth_encryption_secret_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_app_auth_signing_secret_name: Option<String>,
}
