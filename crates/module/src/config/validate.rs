//! Load-time normalisation (empty strings mean unset; derived defaults filled in) and the checks
//! serde cannot express: path shapes, URLs, provider names and cross-references. Every error
//! names the JSON path of the value at fault — the v1 field's path when the input was v1.

use std::collections::HashMap;

use super::derived::ProviderName;
use super::enums::{ForwardProxyConvention, UnauthenticatedAction};
use super::error::{ConfigError, ConfigWarning, WarningKind};
use super::model::AuthSettings;
use super::providers::OpenIdConnectConfiguration;
use super::v1::v1_path;

/// Where paths are rooted and whether they must be translated back to v1 names.
pub(super) struct Checker<'a> {
    pub(super) source: &'a str,
    pub(super) root: &'a str,
    pub(super) v1: bool,
}

impl Checker<'_> {
    pub(super) fn path(&self, rel: &str) -> String {
        let rel = if self.v1 {
            v1_path(rel).unwrap_or_else(|| rel.to_string())
        } else {
            rel.to_string()
        };
        format!("{}.{rel}", self.root)
    }

    fn fail(&self, rel: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(self.source, self.path(rel), message)
    }

    fn warn(&self, rel: &str, message: impl Into<String>) -> ConfigWarning {
        ConfigWarning::new(WarningKind::Suspicious, self.path(rel), message)
    }

    /// An absolute http(s) URL with a host.
    fn http_url(&self, rel: &str, value: &str) -> Result<(), ConfigError> {
        match url::Url::parse(value) {
            Ok(u)
                if matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some_and(|h| !h.is_empty()) =>
            {
                Ok(())
            }
            _ => Err(self.fail(
                rel,
                format!("expected an absolute http(s) URL, found {value:?}"),
            )),
        }
    }
}

fn none_if_blank(v: &mut Option<String>) {
    if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
        *v = None;
    }
}

/// Empty strings (which some tools write for "unset") become `None`; derived defaults are filled.
pub(super) fn normalize(s: &mut AuthSettings) {
    none_if_blank(&mut s.platform.config_file_path);
    if let Some(p) = s.global_validation.redirect_to_provider.as_mut() {
        *p = p.trim().to_string();
    }
    none_if_blank(&mut s.global_validation.redirect_to_provider);
    none_if_blank(&mut s.login.routes.logout_endpoint);
    none_if_blank(&mut s.http_settings.forward_proxy.custom_host_header_name);
    none_if_blank(&mut s.http_settings.forward_proxy.custom_proto_header_name);
    if let Some(aad) = s.identity_providers.azure_active_directory.as_mut() {
        let r = &mut aad.registration;
        none_if_blank(&mut r.open_id_issuer);
        none_if_blank(&mut r.client_id);
        if r.client_secret_setting_name.trim().is_empty() {
            r.client_secret_setting_name = super::providers::DEFAULT_AAD_SECRET_SETTING.into();
        }
    }
    for (name, p) in s
        .identity_providers
        .custom_open_id_connect_providers
        .iter_mut()
    {
        none_if_blank(&mut p.registration.client_id);
        let c = &mut p.registration.open_id_connect_configuration;
        for f in [
            &mut c.authorization_endpoint,
            &mut c.token_endpoint,
            &mut c.issuer,
            &mut c.certification_uri,
            &mut c.well_known_open_id_configuration,
        ] {
            none_if_blank(f);
        }
        let cred = &mut p.registration.client_credential;
        if cred.client_secret_setting_name.trim().is_empty() {
            cred.client_secret_setting_name =
                format!("{}_AUTHENTICATION_SECRET", name.to_ascii_uppercase());
        }
    }
}

/// Checks everything serde could not; returns the first error, pushes suspicious-but-valid notes.
pub(super) fn check(
    s: &AuthSettings,
    c: &Checker<'_>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<(), ConfigError> {
    check_http(s, c)?;
    check_paths(s, c)?;
    check_login(s, c)?;
    check_aad(s, c)?;
    check_custom_providers(s, c)?;
    check_redirect_provider(s, c, warnings)?;
    Ok(())
}

fn check_http(s: &AuthSettings, c: &Checker<'_>) -> Result<(), ConfigError> {
    let prefix = &s.http_settings.routes.api_prefix;
    if !prefix.starts_with('/')
        || prefix.len() < 2
        || prefix.ends_with('/')
        || prefix.contains(|ch: char| ch.is_whitespace() || matches!(ch, '?' | '#' | '*' | '\\'))
    {
        return Err(c.fail(
            "httpSettings.routes.apiPrefix",
            format!(
                "expected a path that starts with '/' and does not end with '/', such as \"/.auth\", found {prefix:?}"
            ),
        ));
    }
    let fp = &s.http_settings.forward_proxy;
    for (rel, name) in [
        (
            "httpSettings.forwardProxy.customHostHeaderName",
            &fp.custom_host_header_name,
        ),
        (
            "httpSettings.forwardProxy.customProtoHeaderName",
            &fp.custom_proto_header_name,
        ),
    ] {
        if let Some(name) = name
            && !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            return Err(c.fail(
                rel,
                format!("expected an HTTP header name such as \"X-Original-Host\", found {name:?}"),
            ));
        }
    }
    if fp.convention == ForwardProxyConvention::Custom
        && fp.custom_host_header_name.is_none()
        && fp.custom_proto_header_name.is_none()
    {
        return Err(c.fail(
            "httpSettings.forwardProxy",
            "convention Custom needs customHostHeaderName and/or customProtoHeaderName",
        ));
    }
    Ok(())
}

fn check_paths(s: &AuthSettings, c: &Checker<'_>) -> Result<(), ConfigError> {
    for (i, p) in s.global_validation.excluded_paths.iter().enumerate() {
        let star_ok = match p.find('*') {
            None => true,
            Some(at) => at == p.len() - 1 && p.ends_with("/*"),
        };
        if !p.starts_with('/') || !star_ok || p.contains(char::is_whitespace) {
            return Err(c.fail(
                &format!("globalValidation.excludedPaths[{i}]"),
                format!(
                    "expected a path starting with '/', optionally ending in the wildcard \"/*\" (no other '*'), such as \"/api/public/*\", found {p:?}"
                ),
            ));
        }
    }
    if let Some(p) = &s.login.routes.logout_endpoint
        && (!p.starts_with('/') || p.contains(char::is_whitespace))
    {
        return Err(c.fail(
            "login.routes.logoutEndpoint",
            format!("expected a path starting with '/', such as \"/.auth/logout\", found {p:?}"),
        ));
    }
    Ok(())
}

fn check_login(s: &AuthSettings, c: &Checker<'_>) -> Result<(), ConfigError> {
    for (i, u) in s.login.allowed_external_redirect_urls.iter().enumerate() {
        // Native apps register custom schemes (`myapp://easyauth.callback`, in the file-format
        // docs' own example), so any scheme is fine except the ones that run or embed content.
        let ok = match url::Url::parse(u) {
            Ok(url) => {
                let scheme = url.scheme();
                u.contains("://")
                    && !matches!(
                        scheme,
                        "javascript" | "data" | "vbscript" | "file" | "blob" | "about"
                    )
                    && (!matches!(scheme, "http" | "https")
                        || url.host_str().is_some_and(|h| !h.is_empty()))
            }
            Err(_) => false,
        };
        if !ok {
            return Err(c.fail(
                &format!("login.allowedExternalRedirectUrls[{i}]"),
                format!(
                    "expected an absolute URL such as \"https://app.contoso.com\" (or a native app's \"myapp://callback\"), found {u:?}"
                ),
            ));
        }
    }
    if s.login.cookie_expiration.time_to_expiration.is_zero() {
        return Err(c.fail(
            "login.cookieExpiration.timeToExpiration",
            "expected a timespan longer than zero, found \"00:00:00\"",
        ));
    }
    if s.login.nonce.nonce_expiration_interval.is_zero() {
        return Err(c.fail(
            "login.nonce.nonceExpirationInterval",
            "expected a timespan longer than zero, found \"00:00:00\"",
        ));
    }
    Ok(())
}

fn check_aad(s: &AuthSettings, c: &Checker<'_>) -> Result<(), ConfigError> {
    if let Some(aad) = &s.identity_providers.azure_active_directory
        && let Some(issuer) = &aad.registration.open_id_issuer
    {
        c.http_url(
            "identityProviders.azureActiveDirectory.registration.openIdIssuer",
            issuer,
        )?;
    }
    Ok(())
}

fn check_custom_providers(s: &AuthSettings, c: &Checker<'_>) -> Result<(), ConfigError> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (name, p) in &s.identity_providers.custom_open_id_connect_providers {
        let base = format!("identityProviders.customOpenIdConnectProviders.{name}");
        if name.contains('-') {
            return Err(c.fail(
                &base,
                format!("a custom provider name must not contain '-' (App Service rejects it), found {name:?}; use letters, digits and '_'"),
            ));
        }
        // The name is a URL path segment (/.auth/login/<name>) and part of the default app
        // setting name <NAME>_AUTHENTICATION_SECRET, so it must be valid in both.
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(c.fail(
                &base,
                format!("expected a provider name of letters, digits and '_' (it appears in /.auth/login/<name> and <NAME>_AUTHENTICATION_SECRET), found {name:?}"),
            ));
        }
        if ProviderName::builtin(name).is_some() {
            return Err(c.fail(
                &base,
                format!("{name:?} is a built-in provider alias; choose another name"),
            ));
        }
        if let Some(other) = seen.insert(name.to_ascii_lowercase(), name) {
            return Err(c.fail(&base, format!("{name:?} and {other:?} differ only in case; provider aliases are case-insensitive")));
        }
        let cfg: &OpenIdConnectConfiguration = &p.registration.open_id_connect_configuration;
        let cfg_base = format!("{base}.registration.openIdConnectConfiguration");
        for (field, value) in [
            (
                "wellKnownOpenIdConfiguration",
                &cfg.well_known_open_id_configuration,
            ),
            ("authorizationEndpoint", &cfg.authorization_endpoint),
            ("tokenEndpoint", &cfg.token_endpoint),
            ("issuer", &cfg.issuer),
            ("certificationUri", &cfg.certification_uri),
        ] {
            if let Some(v) = value {
                c.http_url(&format!("{cfg_base}.{field}"), v)?;
            }
        }
        if !p.enabled {
            continue;
        }
        if p.registration.client_id.is_none() {
            return Err(c.fail(
                &format!("{base}.registration.clientId"),
                "an enabled custom provider needs a clientId, found none",
            ));
        }
        let spelled_out = cfg.authorization_endpoint.is_some()
            && cfg.token_endpoint.is_some()
            && cfg.issuer.is_some();
        if cfg.well_known_open_id_configuration.is_none() && !spelled_out {
            return Err(c.fail(
                &cfg_base,
                "expected wellKnownOpenIdConfiguration, or all of authorizationEndpoint, tokenEndpoint and issuer",
            ));
        }
    }
    Ok(())
}

fn check_redirect_provider(
    s: &AuthSettings,
    c: &Checker<'_>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<(), ConfigError> {
    let rel = "globalValidation.redirectToProvider";
    let enabled: Vec<String> = s
        .enabled_providers()
        .iter()
        .map(|p| p.alias().into_owned())
        .collect();
    let listing = if enabled.is_empty() {
        "none".to_string()
    } else {
        enabled.join(", ")
    };
    if let Some(alias) = &s.global_validation.redirect_to_provider {
        if s.enabled_provider(alias).is_none() {
            let message = format!(
                "{alias:?} does not name an enabled provider (enabled: {listing}; Entra ID is \"azureactivedirectory\" or \"aad\")"
            );
            // A disabled module with a dangling reference is not worth refusing to load.
            if s.platform.enabled {
                return Err(c.fail(rel, message));
            }
            warnings.push(c.warn(rel, message));
        }
    } else if s.unauthenticated_action() == UnauthenticatedAction::RedirectToLoginPage
        && enabled.len() != 1
    {
        warnings.push(c.warn(
            rel,
            format!(
                "unauthenticated browsers are to be redirected to sign in, but there is no single provider to send them to (enabled: {listing}) and redirectToProvider is not set"
            ),
        ));
    }
    Ok(())
}
