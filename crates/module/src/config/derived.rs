//! Answers the rest of the module needs from the settings: the effective unauthenticated action,
//! which providers can sign users in, which one is the default, the audiences a bearer token may
//! carry, and whether a path is excluded.

use std::borrow::Cow;
use std::fmt;

use super::enums::UnauthenticatedAction;
use super::model::AuthSettings;
use super::providers::{AzureActiveDirectory, CustomOidcProvider};

/// An identity provider, named the way `/.auth/login/<alias>` names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProviderName {
    /// Config key `azureActiveDirectory`, URL alias `aad`.
    AzureActiveDirectory,
    Facebook,
    GitHub,
    Google,
    Twitter,
    Apple,
    /// Config key `legacyMicrosoftAccount`, alias `microsoftaccount`.
    LegacyMicrosoftAccount,
    /// A custom OpenID Connect provider, by its configuration key as written.
    Custom(String),
}

impl ProviderName {
    /// The URL alias: `aad`, `facebook`, `github`, `google`, `twitter`, `apple`,
    /// `microsoftaccount`, or a custom provider's name lower-cased.
    pub fn alias(&self) -> Cow<'_, str> {
        match self {
            ProviderName::AzureActiveDirectory => "aad".into(),
            ProviderName::Facebook => "facebook".into(),
            ProviderName::GitHub => "github".into(),
            ProviderName::Google => "google".into(),
            ProviderName::Twitter => "twitter".into(),
            ProviderName::Apple => "apple".into(),
            ProviderName::LegacyMicrosoftAccount => "microsoftaccount".into(),
            ProviderName::Custom(name) => name.to_ascii_lowercase().into(),
        }
    }

    /// A built-in provider from any alias the service uses for it (case-insensitive):
    /// `aad` and `azureactivedirectory` (the `redirectToProvider` / v1 `defaultProvider`
    /// spelling) both mean Entra ID; `microsoftaccount` and `legacymicrosoftaccount` both mean
    /// the legacy Microsoft Account provider.
    pub fn builtin(alias: &str) -> Option<ProviderName> {
        let a = alias.trim().to_ascii_lowercase();
        Some(match a.as_str() {
            "aad" | "azureactivedirectory" => ProviderName::AzureActiveDirectory,
            "facebook" => ProviderName::Facebook,
            "github" => ProviderName::GitHub,
            "google" => ProviderName::Google,
            "twitter" => ProviderName::Twitter,
            "apple" => ProviderName::Apple,
            "microsoftaccount" | "legacymicrosoftaccount" => ProviderName::LegacyMicrosoftAccount,
            _ => return None,
        })
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.alias())
    }
}

fn has(value: Option<&String>) -> bool {
    value.is_some_and(|v| !v.trim().is_empty())
}

impl AzureActiveDirectory {
    /// Enabled and registered (has a client id). ARM returns AAD objects without a registration
    /// on sites that never configured it.
    pub fn is_configured(&self) -> bool {
        self.enabled && has(self.registration.client_id.as_ref())
    }

    /// The `aud` values a bearer token may carry: `allowedAudiences`, plus the client id (always
    /// implicitly allowed, as on App Service), plus `api://<clientId>`.
    ///
    /// Why `api://<clientId>` by default: v1 access tokens for an app whose identifier URI is the
    /// portal default carry `aud=api://<clientId>` (the tutorial's front end gets exactly such a
    /// token for the back end), and the portal's auto-configuration lists it explicitly — so a
    /// hand-written config without it would reject tokens the same app accepts on App Service.
    /// Whether the service adds it implicitly is not documented (docs/authentication-module.md).
    /// Order: configured audiences first, then the implicit ones; no duplicates.
    pub fn effective_audiences(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |a: String| {
            if !a.is_empty() && !out.contains(&a) {
                out.push(a);
            }
        };
        for a in &self.validation.allowed_audiences {
            push(a.clone());
        }
        if let Some(id) = self.registration.client_id.as_deref().map(str::trim)
            && !id.is_empty()
        {
            push(id.to_string());
            push(format!("api://{id}"));
        }
        out
    }
}

impl CustomOidcProvider {
    /// Enabled and registered (has a client id).
    pub fn is_configured(&self) -> bool {
        self.enabled && has(self.registration.client_id.as_ref())
    }
}

impl AuthSettings {
    /// What to do with a request that carries no valid identity, all settings considered.
    ///
    /// Precedence, first match wins:
    /// 1. `platform.enabled == false` → `AllowAnonymous`: the module is off.
    /// 2. `globalValidation.requireAuthentication == false` → `AllowAnonymous` (v2 semantics:
    ///    the action only says *how* to reject once authentication is required; the portal's
    ///    "Allow unauthenticated access" is exactly this).
    /// 3. otherwise `unauthenticatedClientAction`. `AllowAnonymous` with
    ///    `requireAuthentication == true` (seen in real configurations) stays pass-through.
    ///
    /// For v1 `authsettings` the action alone decides: loading maps v1 to
    /// `requireAuthentication = (unauthenticatedClientAction != AllowAnonymous)`, so rule 2 never
    /// overrides a v1 action; v1 `enabled` is `platform.enabled` (rule 1).
    ///
    /// `excludedPaths` are the caller's business: see [`AuthSettings::is_excluded_path`].
    pub fn unauthenticated_action(&self) -> UnauthenticatedAction {
        if !self.platform.enabled || !self.global_validation.require_authentication {
            UnauthenticatedAction::AllowAnonymous
        } else {
            self.global_validation.unauthenticated_client_action
        }
    }

    /// The providers users can sign in with: enabled *and* registered (a client id, app id or
    /// consumer key is set), in the order aad, facebook, github, google, twitter, apple,
    /// microsoftaccount, then custom providers by alias. `azureStaticWebApps` is not a sign-in
    /// provider and is never listed.
    pub fn enabled_providers(&self) -> Vec<ProviderName> {
        let ip = &self.identity_providers;
        let mut out = Vec::new();
        if ip
            .azure_active_directory
            .as_ref()
            .is_some_and(AzureActiveDirectory::is_configured)
        {
            out.push(ProviderName::AzureActiveDirectory);
        }
        if ip
            .facebook
            .as_ref()
            .is_some_and(|p| p.enabled && has(p.registration.app_id.as_ref()))
        {
            out.push(ProviderName::Facebook);
        }
        let oauth2 = |p: &Option<super::providers::OAuth2Provider>| {
            p.as_ref()
                .is_some_and(|p| p.enabled && has(p.registration.client_id.as_ref()))
        };
        if oauth2(&ip.git_hub) {
            out.push(ProviderName::GitHub);
        }
        if oauth2(&ip.google) {
            out.push(ProviderName::Google);
        }
        if ip
            .twitter
            .as_ref()
            .is_some_and(|p| p.enabled && has(p.registration.consumer_key.as_ref()))
        {
            out.push(ProviderName::Twitter);
        }
        if oauth2(&ip.apple) {
            out.push(ProviderName::Apple);
        }
        if oauth2(&ip.legacy_microsoft_account) {
            out.push(ProviderName::LegacyMicrosoftAccount);
        }
        let mut custom: Vec<ProviderName> = ip
            .custom_open_id_connect_providers
            .iter()
            .filter(|(_, p)| p.is_configured())
            .map(|(name, _)| ProviderName::Custom(name.clone()))
            .collect();
        custom.sort_by(|a, b| a.alias().cmp(&b.alias()));
        out.extend(custom);
        out
    }

    /// The enabled provider an alias names (case-insensitive; `aad`/`azureactivedirectory`,
    /// `microsoftaccount`/`legacymicrosoftaccount`, custom names), or `None` when it names no
    /// enabled provider. This is how `/.auth/login/<alias>` and `redirectToProvider` resolve.
    pub fn enabled_provider(&self, alias: &str) -> Option<ProviderName> {
        let wanted = ProviderName::builtin(alias)
            .unwrap_or_else(|| ProviderName::Custom(alias.trim().to_ascii_lowercase()));
        self.enabled_providers()
            .into_iter()
            .find(|p| p.alias() == wanted.alias())
    }

    /// Where unauthenticated browsers go: `redirectToProvider` when set, otherwise the only
    /// enabled provider; `None` when nothing is enabled or several are and none is chosen
    /// (the service's behaviour then is not documented; docs/authentication-module.md).
    pub fn default_provider(&self) -> Option<ProviderName> {
        match self.global_validation.redirect_to_provider.as_deref() {
            Some(alias) if !alias.trim().is_empty() => self.enabled_provider(alias),
            _ => {
                let mut all = self.enabled_providers();
                if all.len() == 1 { all.pop() } else { None }
            }
        }
    }

    /// The custom OpenID Connect provider an alias names (case-insensitive), with its
    /// configuration key.
    pub fn custom_provider(&self, alias: &str) -> Option<(&str, &CustomOidcProvider)> {
        self.identity_providers
            .custom_open_id_connect_providers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(alias.trim()))
            .map(|(name, p)| (name.as_str(), p))
    }

    /// Whether the raw request path (no query string) is listed in
    /// `globalValidation.excludedPaths`. Matching happens on the normalised path
    /// ([`crate::paths`]), so an exclusion can never be used to reach a protected path.
    pub fn is_excluded_path(&self, path: &str) -> bool {
        let exclusions: Vec<crate::paths::Exclusion> = self
            .global_validation
            .excluded_paths
            .iter()
            .filter_map(|e| crate::paths::Exclusion::parse(e))
            .collect();
        crate::paths::is_excluded(&exclusions, path)
    }

    /// Where sign-out lives: `login.routes.logoutEndpoint`, or `<apiPrefix>/logout`.
    pub fn logout_path(&self) -> String {
        match self.login.routes.logout_endpoint.as_deref() {
            Some(p) if !p.trim().is_empty() => p.to_string(),
            _ => format!("{}/logout", self.http_settings.routes.api_prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::providers::{AadRegistration, CustomOidcRegistration};

    fn aad(client_id: &str, audiences: &[&str]) -> AzureActiveDirectory {
        let mut a = AzureActiveDirectory {
            registration: AadRegistration {
                client_id: Some(client_id.into()),
                ..AadRegistration::default()
            },
            ..AzureActiveDirectory::default()
        };
        a.validation.allowed_audiences = audiences.iter().map(|s| s.to_string()).collect();
        a
    }

    #[test]
    fn audiences_add_client_id_and_api_uri_once() {
        assert_eq!(
            aad("abc", &["api://abc", "https://other"]).effective_audiences(),
            ["api://abc", "https://other", "abc"]
        );
        assert_eq!(aad("abc", &[]).effective_audiences(), ["abc", "api://abc"]);
        let mut no_id = aad("", &["x"]);
        no_id.registration.client_id = None;
        assert_eq!(no_id.effective_audiences(), ["x"]);
    }

    fn custom(id: Option<&str>) -> CustomOidcProvider {
        CustomOidcProvider {
            registration: CustomOidcRegistration {
                client_id: id.map(String::from),
                ..CustomOidcRegistration::default()
            },
            ..CustomOidcProvider::default()
        }
    }

    #[test]
    fn providers_and_default() {
        let mut s = AuthSettings::default();
        assert!(s.enabled_providers().is_empty());
        assert_eq!(s.default_provider(), None);
        s.identity_providers.azure_active_directory = Some(aad("abc", &[]));
        assert_eq!(
            s.default_provider(),
            Some(ProviderName::AzureActiveDirectory)
        );
        s.identity_providers
            .custom_open_id_connect_providers
            .insert("MyIdP".into(), custom(Some("c")));
        s.identity_providers
            .custom_open_id_connect_providers
            .insert("Unregistered".into(), custom(None));
        let aliases: Vec<String> = s
            .enabled_providers()
            .iter()
            .map(|p| p.alias().into_owned())
            .collect();
        assert_eq!(aliases, ["aad", "myidp"]);
        assert_eq!(
            s.default_provider(),
            None,
            "two providers, no redirectToProvider"
        );
        s.global_validation.redirect_to_provider = Some("MYIDP".into());
        assert_eq!(
            s.default_provider(),
            Some(ProviderName::Custom("MyIdP".into()))
        );
        s.global_validation.redirect_to_provider = Some("AzureActiveDirectory".into());
        assert_eq!(
            s.default_provider(),
            Some(ProviderName::AzureActiveDirectory)
        );
        assert_eq!(
            s.enabled_provider("AAD"),
            Some(ProviderName::AzureActiveDirectory)
        );
        assert_eq!(s.enabled_provider("unregistered"), None);
        assert_eq!(s.custom_provider("myidp").map(|(n, _)| n), Some("MyIdP"));
    }

    #[test]
    fn action_precedence() {
        let mut s = AuthSettings::default();
        s.global_validation.unauthenticated_client_action = UnauthenticatedAction::Return401;
        s.global_validation.require_authentication = true;
        assert_eq!(
            s.unauthenticated_action(),
            UnauthenticatedAction::AllowAnonymous,
            "platform off"
        );
        s.platform.enabled = true;
        assert_eq!(s.unauthenticated_action(), UnauthenticatedAction::Return401);
        s.global_validation.require_authentication = false;
        assert_eq!(
            s.unauthenticated_action(),
            UnauthenticatedAction::AllowAnonymous
        );
    }

    #[test]
    fn excluded_paths() {
        let mut s = AuthSettings::default();
        s.global_validation.excluded_paths = vec!["/health".into(), "/api/public/*".into()];
        assert!(s.is_excluded_path("/health"));
        assert!(s.is_excluded_path("/HEALTH"));
        assert!(!s.is_excluded_path("/health/x"));
        assert!(s.is_excluded_path("/api/public"));
        assert!(s.is_excluded_path("/api/public/a/b"));
        assert!(!s.is_excluded_path("/api/publicity"));
        assert_eq!(s.logout_path(), "/.auth/logout");
    }
}
