//! The authentication module's configuration: `authsettingsV2` as `az webapp auth show` prints it,
//! typed, defaulted and validated.
//!
//! [`AuthSettings::parse`] / [`AuthSettings::load`] accept, detected automatically:
//! 1. the whole ARM resource (`{"id": ..., "name": "authsettingsV2", "properties": {...}}`),
//! 2. just its `properties` (which is also the file-based format),
//! 3. the v1 `authsettings` flat object, bare or inside an ARM envelope, translated to v2.
//!
//! Errors name the file, the JSON path and what was expected ([`ConfigError`]); unknown fields
//! and notes become [`ConfigWarning`]s, never errors.
//!
//! Files: `model.rs` (the v2 object), `providers.rs` (identity providers), `enums.rs` (accepted
//! enum spellings), `timespan.rs`, `lenient.rs` (scalars with several JSON types), `secret.rs`,
//! `json.rs` (text → tree → types, with paths), `v1.rs`, `validate.rs`, `derived.rs` (answers for
//! the rest of the module: effective action, providers, audiences).

mod derived;
mod enums;
mod error;
mod json;
mod lenient;
mod model;
mod providers;
mod secret;
mod timespan;
mod v1;
mod validate;

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

pub use derived::ProviderName;
pub use enums::{
    ClientCredentialMethod, CookieExpirationConvention, ForwardProxyConvention,
    UnauthenticatedAction,
};
pub use error::{ConfigError, ConfigWarning, WarningKind};
pub use model::{
    AuthSettings, BlobStorageTokenStore, CookieExpiration, EncryptionSettings,
    FileSystemTokenStore, ForwardProxy, GlobalValidation, HttpRoutes, HttpSettings,
    LegacyProperties, Login, LoginRoutes, Nonce, Platform, TokenStore,
};
pub use providers::{
    AadLogin, AadRegistration, AadValidation, AllowedPrincipals, AudienceValidation,
    AzureActiveDirectory, AzureStaticWebApps, ClientCredential, ClientRegistration,
    CustomOidcLogin, CustomOidcProvider, CustomOidcRegistration, DEFAULT_AAD_SECRET_SETTING,
    DefaultAuthorizationPolicy, Facebook, FacebookRegistration, IdentityProviders, JwtClaimChecks,
    OAuth2Provider, OpenIdConnectConfiguration, ScopesLogin, StaticWebAppsRegistration, Twitter,
    TwitterRegistration,
};
pub use secret::Secret;
pub use timespan::{MAX_TIMESPAN_SECS, format_timespan, parse_timespan};

/// Which of the accepted shapes the input had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// The ARM resource around v2 properties (`az webapp auth show`).
    ArmV2,
    /// v2 properties alone (`jq .properties`, file-based configuration).
    V2,
    /// The ARM resource around v1 `authsettings`.
    ArmV1,
    /// The v1 `authsettings` object alone.
    V1,
}

/// The ARM envelope's identifying fields, kept so `webapp auth show` can print them back.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArmResource {
    pub id: Option<String>,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub resource_type: Option<String>,
    pub kind: Option<String>,
    pub location: Option<String>,
    /// Added by `az`.
    pub resource_group: Option<String>,
    /// Accepted without interpretation.
    pub system_data: Option<Value>,
    pub tags: Option<Value>,
}

/// A loaded configuration and everything worth telling the user about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: AuthSettings,
    /// Unknown fields (with their JSON paths), v1 mapping notes, inline secrets (never their
    /// values), leniencies, suspicious combinations.
    pub warnings: Vec<ConfigWarning>,
    pub format: SourceFormat,
    /// The ARM envelope, when there was one.
    pub resource: Option<ArmResource>,
}

/// Top-level fields of a v2 properties object.
const V2_FIELDS: &[&str] = &[
    "platform",
    "globalValidation",
    "identityProviders",
    "login",
    "httpSettings",
    "clearInboundClaimsMapping",
    "legacyProperties",
    "encryptionSettings",
];

/// "a string", "an object", ...: how errors about JSON shapes name what they found.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An ARM envelope has `properties`, or at least a resource `type` such as
/// `Microsoft.Web/sites/config` (neither v1 nor v2 settings have either field).
fn is_envelope(obj: &Map<String, Value>) -> bool {
    obj.contains_key("properties")
        || obj
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.contains('/'))
}

/// v2 if any v2 top-level field is present, else v1 if any v1 field is, else what the envelope's
/// `name` says (`authsettings` = v1), else v2 (an empty object is a valid v2 config).
fn is_v1(body: &Map<String, Value>, envelope_name: Option<&str>) -> bool {
    if V2_FIELDS.iter().any(|k| body.contains_key(*k)) {
        return false;
    }
    if v1::V1_FIELDS.iter().any(|k| body.contains_key(*k)) {
        return true;
    }
    envelope_name.is_some_and(|n| n.eq_ignore_ascii_case("authsettings"))
}

fn checker_path(root: &str, v1: bool, rel: &str) -> String {
    validate::Checker {
        source: "",
        root,
        v1,
    }
    .path(rel)
}

impl AuthSettings {
    /// Reads and parses a settings file; `path` names the source in errors.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&source, "$", format!("cannot read the file: {e}")))?;
        AuthSettings::parse(&source, &text)
    }

    /// Parses settings text in any accepted shape (see the module docs); `source_name` names the
    /// source in errors and warnings.
    pub fn parse(source_name: &str, text: &str) -> Result<Loaded, ConfigError> {
        let mut warnings = Vec::new();
        let doc = json::read_document(source_name, text, &mut warnings)?;
        let Value::Object(top) = &doc else {
            return Err(ConfigError::new(
                source_name,
                "$",
                format!(
                    "expected a JSON object (the authsettingsV2 resource from `az webapp auth show`, its properties, or v1 authsettings), found {}",
                    kind_of(&doc)
                ),
            ));
        };

        let empty = Value::Object(Map::new());
        let (body, root, resource) = if is_envelope(top) {
            let body = match top.get("properties") {
                Some(v @ Value::Object(_)) => v,
                Some(other) => {
                    return Err(ConfigError::new(
                        source_name,
                        "$.properties",
                        format!("expected an object, found {}", kind_of(other)),
                    ));
                }
                None => &empty,
            };
            let mut envelope = top.clone();
            envelope.remove("properties");
            let resource: ArmResource =
                json::deserialize_at(source_name, &Value::Object(envelope), "$", &mut warnings)?;
            (body, "$.properties", Some(resource))
        } else {
            (&doc, "$", None)
        };
        let body_map = body.as_object().unwrap_or(top);

        let v1 = is_v1(body_map, resource.as_ref().and_then(|r| r.name.as_deref()));
        let mut settings = if v1 {
            v1::load(source_name, body, root, &mut warnings)?
        } else {
            let s: AuthSettings = json::deserialize_at(source_name, body, root, &mut warnings)?;
            let gv = body.pointer("/globalValidation");
            let action_set = gv
                .and_then(|g| g.get("unauthenticatedClientAction"))
                .is_some();
            if !s.global_validation.require_authentication
                && gv.and_then(|g| g.get("requireAuthentication")).is_none()
                && action_set
                && s.global_validation.unauthenticated_client_action
                    != UnauthenticatedAction::AllowAnonymous
            {
                warnings.push(ConfigWarning::new(
                    WarningKind::Suspicious,
                    format!("{root}.globalValidation.requireAuthentication"),
                    format!(
                        "absent, so it defaults to false and unauthenticated requests are allowed through; \
                         unauthenticatedClientAction {} applies only with requireAuthentication: true",
                        s.global_validation.unauthenticated_client_action
                    ),
                ));
            }
            s
        };

        validate::normalize(&mut settings);
        if let Some(file) = &settings.platform.config_file_path {
            warnings.push(ConfigWarning::new(
                WarningKind::Suspicious,
                checker_path(root, v1, "platform.configFilePath"),
                format!(
                    "App Service would read the settings from {file:?} instead; easyauth uses this document as given (load that file to use it)"
                ),
            ));
        }
        let checker = validate::Checker {
            source: source_name,
            root,
            v1,
        };
        validate::check(&settings, &checker, &mut warnings)?;

        let format = match (resource.is_some(), v1) {
            (true, false) => SourceFormat::ArmV2,
            (false, false) => SourceFormat::V2,
            (true, true) => SourceFormat::ArmV1,
            (false, true) => SourceFormat::V1,
        };
        Ok(Loaded {
            settings,
            warnings,
            format,
            resource,
        })
    }

    /// The settings as a v2 `properties` object (camelCase, timespans as `hh:mm:ss`), e.g. for
    /// `WEBSITE_AUTH_V2_CONFIG_JSON` or `webapp auth show`. Inline v1 secrets are never included.
    pub fn to_v2_json(&self) -> Value {
        // Serializing these plain structs cannot fail; Null is an unreachable fallback.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
