//! The v1 `authsettings` object: a flat list of fields, translated to the v2 model.
//! The field correspondence is inferred from the names (no official table exists); validation
//! errors found after translation are reported at the v1 field's path (see [`v1_path`]).

use serde::Deserialize;
use serde_json::Value;

use super::enums::UnauthenticatedAction;
use super::error::{ConfigError, ConfigWarning, WarningKind};
use super::model::{AuthSettings, LegacyProperties};
use super::providers::{
    AzureActiveDirectory, ClientRegistration, Facebook, JwtClaimChecks, OAuth2Provider, Twitter,
};
use super::secret::Secret;
use super::{json, lenient};

/// Every field of v1 `SiteAuthSettings`. Deliberately no `Debug`: it holds inline secrets.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct V1Settings {
    #[serde(deserialize_with = "lenient::bool_or_string")]
    enabled: bool,
    runtime_version: Option<String>,
    unauthenticated_client_action: Option<UnauthenticatedAction>,
    #[serde(deserialize_with = "lenient::opt_bool_or_string")]
    token_store_enabled: Option<bool>,
    #[serde(deserialize_with = "opt_hours")]
    token_refresh_extension_hours: Option<f64>,
    allowed_external_redirect_urls: Vec<String>,
    default_provider: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_secret_setting_name: Option<String>,
    client_secret_certificate_thumbprint: Option<String>,
    issuer: Option<String>,
    #[serde(deserialize_with = "lenient::opt_bool_or_string")]
    validate_issuer: Option<bool>,
    allowed_audiences: Vec<String>,
    additional_login_params: Vec<String>,
    /// A JSON *string*: `{"allowed_groups": [...], "allowed_client_applications": [...]}`.
    aad_claims_authorization: Option<String>,
    #[serde(deserialize_with = "lenient::opt_bool_or_string")]
    is_aad_auto_provisioned: Option<bool>,
    google_client_id: Option<String>,
    google_client_secret: Option<Secret>,
    google_client_secret_setting_name: Option<String>,
    #[serde(rename = "googleOAuthScopes")]
    google_oauth_scopes: Vec<String>,
    facebook_app_id: Option<String>,
    facebook_app_secret: Option<Secret>,
    facebook_app_secret_setting_name: Option<String>,
    #[serde(rename = "facebookOAuthScopes")]
    facebook_oauth_scopes: Vec<String>,
    git_hub_client_id: Option<String>,
    git_hub_client_secret: Option<Secret>,
    git_hub_client_secret_setting_name: Option<String>,
    #[serde(rename = "gitHubOAuthScopes")]
    git_hub_oauth_scopes: Vec<String>,
    twitter_consumer_key: Option<String>,
    twitter_consumer_secret: Option<Secret>,
    twitter_consumer_secret_setting_name: Option<String>,
    microsoft_account_client_id: Option<String>,
    microsoft_account_client_secret: Option<Secret>,
    microsoft_account_client_secret_setting_name: Option<String>,
    #[serde(rename = "microsoftAccountOAuthScopes")]
    microsoft_account_oauth_scopes: Vec<String>,
    /// A string in the ARM schema (`"true"`), a boolean in some dumps.
    #[serde(deserialize_with = "lenient::opt_bool_or_string")]
    is_auth_from_file: Option<bool>,
    auth_file_path: Option<String>,
    config_version: Option<String>,
}

fn opt_hours<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    lenient::hours(d).map(Some)
}

/// Top-level field names that identify a v1 object.
pub(super) const V1_FIELDS: &[&str] = &[
    "enabled",
    "runtimeVersion",
    "unauthenticatedClientAction",
    "tokenStoreEnabled",
    "tokenRefreshExtensionHours",
    "allowedExternalRedirectUrls",
    "defaultProvider",
    "clientId",
    "clientSecret",
    "clientSecretSettingName",
    "clientSecretCertificateThumbprint",
    "issuer",
    "validateIssuer",
    "allowedAudiences",
    "additionalLoginParams",
    "aadClaimsAuthorization",
    "isAadAutoProvisioned",
    "googleClientId",
    "facebookAppId",
    "gitHubClientId",
    "twitterConsumerKey",
    "microsoftAccountClientId",
    "isAuthFromFile",
    "authFilePath",
    "configVersion",
];

/// The v1 claims-authorization document inside `aadClaimsAuthorization`.
#[derive(Default, Deserialize)]
#[serde(default)]
struct ClaimsAuthorization {
    allowed_groups: Vec<String>,
    allowed_client_applications: Vec<String>,
}

/// Where a v2 path (relative, e.g. `globalValidation.redirectToProvider`) came from in v1.
pub(super) fn v1_path(v2: &str) -> Option<String> {
    const AAD: &str = "identityProviders.azureActiveDirectory.";
    const MAP: &[(&str, &str)] = &[
        ("platform.enabled", "enabled"),
        ("platform.runtimeVersion", "runtimeVersion"),
        ("platform.configFilePath", "authFilePath"),
        (
            "globalValidation.unauthenticatedClientAction",
            "unauthenticatedClientAction",
        ),
        (
            "globalValidation.requireAuthentication",
            "unauthenticatedClientAction",
        ),
        ("globalValidation.redirectToProvider", "defaultProvider"),
        ("login.tokenStore.enabled", "tokenStoreEnabled"),
        (
            "login.tokenStore.tokenRefreshExtensionHours",
            "tokenRefreshExtensionHours",
        ),
        (
            "login.allowedExternalRedirectUrls",
            "allowedExternalRedirectUrls",
        ),
        (
            "identityProviders.google.registration.clientId",
            "googleClientId",
        ),
        (
            "identityProviders.facebook.registration.appId",
            "facebookAppId",
        ),
        (
            "identityProviders.gitHub.registration.clientId",
            "gitHubClientId",
        ),
        (
            "identityProviders.twitter.registration.consumerKey",
            "twitterConsumerKey",
        ),
        (
            "identityProviders.legacyMicrosoftAccount.registration.clientId",
            "microsoftAccountClientId",
        ),
    ];
    const AAD_MAP: &[(&str, &str)] = &[
        ("registration.openIdIssuer", "issuer"),
        ("registration.clientId", "clientId"),
        (
            "registration.clientSecretSettingName",
            "clientSecretSettingName",
        ),
        (
            "registration.clientSecretCertificateThumbprint",
            "clientSecretCertificateThumbprint",
        ),
        ("validation.allowedAudiences", "allowedAudiences"),
        ("validation.jwtClaimChecks", "aadClaimsAuthorization"),
        ("login.loginParameters", "additionalLoginParams"),
    ];
    let matches = |path: &str, prefix: &str| -> Option<String> {
        let rest = path.strip_prefix(prefix)?;
        (rest.is_empty() || rest.starts_with('[')).then(|| rest.to_string())
    };
    for (from, to) in MAP {
        if let Some(rest) = matches(v2, from) {
            return Some(format!("{to}{rest}"));
        }
    }
    let inner = v2.strip_prefix(AAD)?;
    for (from, to) in AAD_MAP {
        if let Some(rest) = inner.strip_prefix(from)
            && (rest.is_empty() || rest.starts_with('[') || *to == "aadClaimsAuthorization")
        {
            // Paths inside the JSON string have no JSON-path spelling; point at the string.
            let rest = if *to == "aadClaimsAuthorization" {
                ""
            } else {
                rest
            };
            return Some(format!("{to}{rest}"));
        }
    }
    None
}

/// Deserializes a v1 object found at `root` and translates it to v2.
pub(super) fn load(
    source: &str,
    body: &Value,
    root: &str,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<AuthSettings, ConfigError> {
    let v1: V1Settings = json::deserialize_at(source, body, root, warnings)?;
    warnings.push(ConfigWarning::new(
        WarningKind::V1Mapped,
        root,
        "v1 authsettings mapped to v2 (authsettingsV2); field correspondence is inferred from names",
    ));
    let inline = |warnings: &mut Vec<ConfigWarning>, field: &str, setting: &str| {
        warnings.push(ConfigWarning::new(
            WarningKind::InlineSecret,
            format!("{root}.{field}"),
            format!(
                "inline secret kept in memory only; v2 keeps secrets in app settings — move it to \
                 an app setting and reference it with {setting}"
            ),
        ));
    };

    let mut s = AuthSettings::default();
    s.platform.enabled = v1.enabled;
    if let Some(v) = v1.runtime_version {
        s.platform.runtime_version = v;
    }
    if v1.is_auth_from_file == Some(true) {
        s.platform.config_file_path = v1.auth_file_path;
    }
    // v1 has no requireAuthentication: the action alone decides.
    let action = v1.unauthenticated_client_action.unwrap_or_default();
    s.global_validation.unauthenticated_client_action = action;
    s.global_validation.require_authentication = action != UnauthenticatedAction::AllowAnonymous;
    s.global_validation.redirect_to_provider = v1.default_provider.map(|p| p.to_ascii_lowercase());
    if let Some(v) = v1.token_store_enabled {
        s.login.token_store.enabled = v;
    }
    if let Some(v) = v1.token_refresh_extension_hours {
        s.login.token_store.token_refresh_extension_hours = v;
    }
    s.login.allowed_external_redirect_urls = v1.allowed_external_redirect_urls;
    if v1.config_version.is_some() {
        s.legacy_properties = Some(LegacyProperties {
            config_version: v1.config_version,
            legacy_version: None,
        });
    }

    if v1.client_id.is_some() || v1.issuer.is_some() || v1.client_secret.is_some() {
        let mut aad = AzureActiveDirectory::default();
        aad.registration.client_id = v1.client_id;
        aad.registration.open_id_issuer = v1.issuer;
        if let Some(name) = v1.client_secret_setting_name {
            aad.registration.client_secret_setting_name = name;
        }
        aad.registration.client_secret_certificate_thumbprint =
            v1.client_secret_certificate_thumbprint;
        if v1.client_secret.is_some() {
            inline(warnings, "clientSecret", "clientSecretSettingName");
        }
        aad.registration.client_secret_inline = v1.client_secret;
        aad.login.login_parameters = v1.additional_login_params;
        aad.validation.allowed_audiences = v1.allowed_audiences;
        aad.is_auto_provisioned = v1.is_aad_auto_provisioned.unwrap_or(false);
        if let Some(text) = v1.aad_claims_authorization.filter(|t| !t.trim().is_empty()) {
            let checks: ClaimsAuthorization = serde_json::from_str(&text).map_err(|e| {
                ConfigError::new(
                    source,
                    format!("{root}.aadClaimsAuthorization"),
                    format!(
                        "expected a string holding JSON such as \
                         {{\"allowed_groups\": [...], \"allowed_client_applications\": [...]}}: {e}"
                    ),
                )
            })?;
            aad.validation.jwt_claim_checks = JwtClaimChecks {
                allowed_groups: checks.allowed_groups,
                allowed_client_applications: checks.allowed_client_applications,
            };
        }
        s.identity_providers.azure_active_directory = Some(aad);
    }
    if v1.validate_issuer == Some(false) {
        warnings.push(ConfigWarning::new(
            WarningKind::Suspicious,
            format!("{root}.validateIssuer"),
            "validateIssuer=false has no v2 equivalent; the issuer is always validated",
        ));
    }

    let oauth2 = |id: Option<String>,
                  secret: Option<Secret>,
                  setting: Option<String>,
                  scopes: Vec<String>| {
        id.map(|id| OAuth2Provider {
            registration: ClientRegistration {
                client_id: Some(id),
                client_secret_setting_name: setting,
                client_secret_inline: secret,
            },
            login: super::providers::ScopesLogin { scopes },
            ..OAuth2Provider::default()
        })
    };
    for (present, field, setting) in [
        (
            v1.google_client_secret.is_some(),
            "googleClientSecret",
            "googleClientSecretSettingName",
        ),
        (
            v1.facebook_app_secret.is_some(),
            "facebookAppSecret",
            "facebookAppSecretSettingName",
        ),
        (
            v1.git_hub_client_secret.is_some(),
            "gitHubClientSecret",
            "gitHubClientSecretSettingName",
        ),
        (
            v1.twitter_consumer_secret.is_some(),
            "twitterConsumerSecret",
            "twitterConsumerSecretSettingName",
        ),
        (
            v1.microsoft_account_client_secret.is_some(),
            "microsoftAccountClientSecret",
            "microsoftAccountClientSecretSettingName",
        ),
    ] {
        if present {
            inline(warnings, field, setting);
        }
    }
    let ip = &mut s.identity_providers;
    ip.google = oauth2(
        v1.google_client_id,
        v1.google_client_secret,
        v1.google_client_secret_setting_name,
        v1.google_oauth_scopes,
    );
    ip.git_hub = oauth2(
        v1.git_hub_client_id,
        v1.git_hub_client_secret,
        v1.git_hub_client_secret_setting_name,
        v1.git_hub_oauth_scopes,
    );
    ip.legacy_microsoft_account = oauth2(
        v1.microsoft_account_client_id,
        v1.microsoft_account_client_secret,
        v1.microsoft_account_client_secret_setting_name,
        v1.microsoft_account_oauth_scopes,
    );
    if let Some(app_id) = v1.facebook_app_id {
        let mut fb = Facebook::default();
        fb.registration.app_id = Some(app_id);
        fb.registration.app_secret_setting_name = v1.facebook_app_secret_setting_name;
        fb.registration.app_secret_inline = v1.facebook_app_secret;
        fb.login.scopes = v1.facebook_oauth_scopes;
        ip.facebook = Some(fb);
    }
    if let Some(key) = v1.twitter_consumer_key {
        let mut tw = Twitter::default();
        tw.registration.consumer_key = Some(key);
        tw.registration.consumer_secret_setting_name = v1.twitter_consumer_secret_setting_name;
        tw.registration.consumer_secret_inline = v1.twitter_consumer_secret;
        ip.twitter = Some(tw);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_back_to_v1_fields() {
        assert_eq!(
            v1_path("globalValidation.redirectToProvider").as_deref(),
            Some("defaultProvider")
        );
        assert_eq!(
            v1_path("login.allowedExternalRedirectUrls[2]").as_deref(),
            Some("allowedExternalRedirectUrls[2]")
        );
        assert_eq!(
            v1_path("identityProviders.azureActiveDirectory.registration.openIdIssuer").as_deref(),
            Some("issuer")
        );
        assert_eq!(
            v1_path(
                "identityProviders.azureActiveDirectory.validation.jwtClaimChecks.allowedGroups"
            )
            .as_deref(),
            Some("aadClaimsAuthorization")
        );
        assert_eq!(v1_path("httpSettings.routes.apiPrefix"), None);
    }

    #[test]
    fn maps_fields_and_keeps_inline_secret() {
        let body = serde_json::json!({
            "enabled": true,
            "unauthenticatedClientAction": "AllowAnonymous",
            "clientId": "c1",
            "clientSecret": "s3cr3t",
            "issuer": "https://sts.windows.net/t/",
            "aadClaimsAuthorization": "{\"allowed_groups\":[\"g1\"]}",
            "googleClientId": "gid",
            "googleOAuthScopes": ["openid"]
        });
        let mut w = Vec::new();
        let s = load("f", &body, "$", &mut w).expect("loads");
        assert!(!s.global_validation.require_authentication);
        let aad = s.identity_providers.azure_active_directory.expect("aad");
        assert_eq!(
            aad.registration
                .client_secret_inline
                .as_ref()
                .map(Secret::expose),
            Some("s3cr3t")
        );
        assert_eq!(aad.validation.jwt_claim_checks.allowed_groups, ["g1"]);
        let google = s.identity_providers.google.expect("google");
        assert_eq!(google.login.scopes, ["openid"]);
        assert!(
            w.iter()
                .any(|w| w.kind == WarningKind::InlineSecret && w.path == "$.clientSecret")
        );
        assert!(w.iter().all(|w| !w.message.contains("s3cr3t")));
    }
}
