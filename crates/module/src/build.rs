//! From configuration to a running module: the `authsettingsV2` settings plus the app settings
//! (environment variables, as App Service provides them) become [`Module`].

use std::collections::HashMap;
use std::sync::Arc;

use easyauth_store::Store;

use crate::authz::AadAuthorization;
use crate::config::{
    self, AuthSettings, CookieExpirationConvention, ForwardProxyConvention, UnauthenticatedAction,
};
use crate::cookies::CookieKeys;
use crate::module::Module;
use crate::oidc::{OidcHttp, discovery_url};
use crate::paths::Exclusion;
use crate::provider::{IdentityProvider, ProviderKind, ProviderSettings};
use crate::session_redis::RedisSessions;
use crate::session_store::{SessionStore, TokenStoreSessions};
use crate::settings::{Action, ForwardTrust, ModuleSettings};

/// App settings (environment variables) the module reads.
#[derive(Debug, Clone, Default)]
pub struct AppSettings(pub HashMap<String, String>);

impl AppSettings {
    /// The process environment.
    pub fn from_env() -> AppSettings {
        AppSettings(std::env::vars().collect())
    }

    /// A setting's value; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn flag(&self, name: &str) -> Option<bool> {
        self.get(name)
            .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1"))
    }
}

/// Why the settings do not make a module.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Entra is enabled without an issuer.
    #[error("identityProviders.azureActiveDirectory.registration.openIdIssuer is required")]
    MissingIssuer,
    /// A custom provider says neither where its discovery document is nor its issuer.
    #[error(
        "custom provider {0}: set openIdConnectConfiguration.wellKnownOpenIdConfiguration or issuer"
    )]
    MissingDiscovery(String),
    /// An app setting the module reads is malformed.
    #[error("app setting {0}: {1}")]
    AppSetting(&'static str, String),
    /// The cookie keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] crate::cookies::KeyError),
    /// The session store could not be set up.
    #[error(transparent)]
    SessionStore(#[from] crate::session_redis::RedisSetupError),
    /// The public URL is not an absolute http(s) URL with a host.
    #[error("the public URL {0} must be an absolute http:// or https:// URL with a host")]
    PublicUrl(String),
}

/// Everything needed to build a module besides the settings.
#[derive(Debug)]
pub struct Environment {
    /// The site's external URL when it is fixed; `None`: the host each request came to.
    pub public_url: Option<url::Url>,
    /// `http` or `https`: how the module is served (for sites taken from requests).
    pub scheme: &'static str,
    /// The app settings (`WEBSITE_AUTH_*`, provider secrets).
    pub app_settings: AppSettings,
    /// The token store: sessions, generated keys.
    pub store: Arc<dyn Store>,
    /// The outbound client for discovery, keys and the token endpoint.
    pub http: OidcHttp,
    /// Refusals explain themselves in the response (see [`crate::Refusal`]).
    pub development: bool,
    /// Where signed-in sessions live.
    pub session_store: SessionBackend,
}

/// Where the module keeps its sessions.
#[derive(Debug, Clone, Default)]
pub enum SessionBackend {
    /// In [`Environment::store`] (the token store), with a short read cache: one instance, or
    /// several sharing nothing but the cookie keys.
    #[default]
    TokenStore,
    /// In Redis, shared by every replica that uses the same Redis and cookie keys.
    Redis {
        /// `redis://…` or `rediss://…`.
        url: String,
        /// PEM of a CA to trust for `rediss://` besides the system's.
        ca_pem: Option<Vec<u8>>,
    },
}

/// The module the auth settings and the environment describe.
pub async fn build(settings: &AuthSettings, env: Environment) -> Result<Module, BuildError> {
    if let Some(url) = &env.public_url
        && crate::site::Site::from_url(url).is_none()
    {
        return Err(BuildError::PublicUrl(url.to_string()));
    }
    let app = &env.app_settings;
    let mut providers = Vec::new();
    for provider in settings.enabled_providers() {
        match provider {
            config::ProviderName::AzureActiveDirectory => {
                let Some(aad) = settings.identity_providers.azure_active_directory.as_ref() else {
                    continue;
                };
                let issuer = aad
                    .registration
                    .open_id_issuer
                    .clone()
                    .ok_or(BuildError::MissingIssuer)?;
                let (scope, extra) =
                    split_login_parameters(&aad.login.login_parameters, "openid profile email");
                let v = &aad.validation;
                providers.push(ProviderSettings {
                    alias: "aad".into(),
                    kind: ProviderKind::Aad,
                    client_id: aad.registration.client_id.clone().unwrap_or_default(),
                    client_secret: app
                        .get(&aad.registration.client_secret_setting_name)
                        .map(str::to_owned),
                    discovery_url: discovery_url(&issuer),
                    issuer: Some(issuer),
                    audiences: aad.effective_audiences(),
                    scope,
                    extra_login_parameters: extra,
                    authorization: AadAuthorization {
                        allowed_applications: v
                            .default_authorization_policy
                            .allowed_applications
                            .clone(),
                        allowed_client_applications: v
                            .jwt_claim_checks
                            .allowed_client_applications
                            .clone(),
                        allowed_identities: v
                            .default_authorization_policy
                            .allowed_principals
                            .identities
                            .clone(),
                        allowed_principal_groups: v
                            .default_authorization_policy
                            .allowed_principals
                            .groups
                            .clone(),
                        allowed_groups: v.jwt_claim_checks.allowed_groups.clone(),
                        allowed_tenants: app.list("WEBSITE_AUTH_AAD_ALLOWED_TENANTS"),
                        require_oid: app
                            .flag("WEBSITE_AUTH_AAD_REQUIRE_CLIENT_SERVICE_PRINCIPAL")
                            .unwrap_or(false),
                    },
                    disable_www_authenticate: aad.login.disable_www_authenticate,
                    name_claim: None,
                });
            }
            config::ProviderName::Custom(name) => {
                let Some((key, custom)) = settings.custom_provider(&name) else {
                    continue;
                };
                let oidc = &custom.registration.open_id_connect_configuration;
                let discovery = match (&oidc.well_known_open_id_configuration, &oidc.issuer) {
                    (Some(url), _) => url.clone(),
                    (None, Some(issuer)) => discovery_url(issuer),
                    (None, None) => return Err(BuildError::MissingDiscovery(key.to_owned())),
                };
                let scopes = custom.login.effective_scopes().join(" ");
                let (_, extra) =
                    split_login_parameters(&custom.login.login_parameter_names, &scopes);
                providers.push(ProviderSettings {
                    alias: key.to_ascii_lowercase(),
                    kind: ProviderKind::Custom,
                    client_id: custom.registration.client_id.clone().unwrap_or_default(),
                    client_secret: app
                        .get(
                            &custom
                                .registration
                                .client_credential
                                .client_secret_setting_name,
                        )
                        .map(str::to_owned),
                    issuer: oidc.issuer.clone(),
                    discovery_url: discovery,
                    audiences: Vec::new(),
                    scope: scopes,
                    extra_login_parameters: extra,
                    authorization: AadAuthorization::default(),
                    disable_www_authenticate: false,
                    name_claim: custom.login.name_claim_type.clone(),
                });
            }
            other => {
                tracing::warn!(target: "easyauth::module", provider = %other, "this identity provider is not supported yet; it is ignored");
            }
        }
    }
    let action = match settings.unauthenticated_action() {
        UnauthenticatedAction::RedirectToLoginPage => Action::RedirectToLoginPage,
        UnauthenticatedAction::AllowAnonymous => Action::AllowAnonymous,
        UnauthenticatedAction::Return401 => Action::Return401,
        UnauthenticatedAction::Return403 => Action::Return403,
        UnauthenticatedAction::Return404 => Action::Return404,
    };
    let fp = &settings.http_settings.forward_proxy;
    let forward = match fp.convention {
        ForwardProxyConvention::NoProxy => ForwardTrust::NoProxy,
        ForwardProxyConvention::Standard => ForwardTrust::Standard,
        ForwardProxyConvention::Custom => ForwardTrust::Custom {
            host_header: fp.custom_host_header_name.clone(),
            proto_header: fp.custom_proto_header_name.clone(),
        },
    };
    let login = &settings.login;
    let module_settings = ModuleSettings {
        public_url: env.public_url,
        scheme: env.scheme,
        api_prefix: settings.http_settings.routes.api_prefix.clone(),
        action,
        exclusions: settings
            .global_validation
            .excluded_paths
            .iter()
            .filter_map(|p| Exclusion::parse(p))
            .collect(),
        default_provider: settings.default_provider().map(|p| p.alias().into_owned()),
        token_store: login.token_store.enabled,
        session_lifetime: login.cookie_expiration.time_to_expiration,
        session_from_token: login.cookie_expiration.convention
            == CookieExpirationConvention::IdentityProviderDerived,
        refresh_extension: login.token_store.refresh_extension(),
        allowed_external_redirects: login.allowed_external_redirect_urls.clone(),
        forward,
        legacy_claims: app.flag("WEBSITE_AUTH_USE_LEGACY_CLAIMS").unwrap_or(true),
        preserve_fragments: app
            .flag("WEBSITE_AUTH_PRESERVE_URL_FRAGMENT")
            .unwrap_or(login.preserve_url_fragments_for_logins),
        development: env.development,
        validate_nonce: login.nonce.validate_nonce,
        nonce_lifetime: login.nonce.nonce_expiration_interval,
        logout_path: login.routes.logout_endpoint.clone(),
        require_https: settings.http_settings.require_https,
    };
    let keys = CookieKeys::load(
        app.get("WEBSITE_AUTH_ENCRYPTION_KEY"),
        app.get("WEBSITE_AUTH_SIGNING_KEY"),
        env.store.as_ref(),
    )
    .await?;
    let providers = providers
        .into_iter()
        .map(|p| IdentityProvider::new(p, env.http.clone()))
        .collect();
    let sessions: Arc<dyn SessionStore> = match env.session_store {
        SessionBackend::TokenStore => Arc::new(TokenStoreSessions::new(
            env.store,
            module_settings.refresh_extension,
        )),
        SessionBackend::Redis { url, ca_pem } => Arc::new(RedisSessions::connect(
            &url,
            ca_pem,
            module_settings.refresh_extension,
        )?),
    };
    Ok(Module::with_sessions(
        module_settings,
        providers,
        env.http,
        keys,
        sessions,
    ))
}

/// `loginParameters` as App Service applies them: `scope=` replaces the default scope, the rest
/// are appended to the authorize request.
fn split_login_parameters(
    parameters: &[String],
    default_scope: &str,
) -> (String, Vec<(String, String)>) {
    let mut scope = default_scope.to_owned();
    let mut extra = Vec::new();
    for p in parameters {
        let (k, v) = p.split_once('=').unwrap_or((p.as_str(), ""));
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("scope") {
            scope = v.to_owned();
        } else if !k.is_empty() && !is_reserved_parameter(k) {
            extra.push((k.to_owned(), v.to_owned()));
        }
    }
    (scope, extra)
}

/// Parameters the module sets itself; a `loginParameters` entry cannot override them.
fn is_reserved_parameter(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "response_type"
            | "redirect_uri"
            | "client_id"
            | "response_mode"
            | "nonce"
            | "state"
            | "code_challenge"
            | "code_challenge_method"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_parameters_replace_the_scope_and_cannot_override_the_protocol() {
        let (scope, extra) = split_login_parameters(
            &[
                "scope=openid offline_access api://b/user_impersonation".into(),
                "domain_hint=contoso.com".into(),
                "redirect_uri=https://evil.test".into(),
            ],
            "openid profile email",
        );
        assert_eq!(scope, "openid offline_access api://b/user_impersonation");
        assert_eq!(
            extra,
            vec![("domain_hint".to_string(), "contoso.com".to_string())]
        );
    }
}
