//! The authentication module's configuration: every accepted shape loads with the right typed
//! values, and every malformed input is refused with the exact JSON path at fault.

use std::path::PathBuf;
use std::time::Duration;

use easyauth_module::config::*;

const TENANT: &str = "11111111-2222-4333-8444-555555555555";
const BACKEND: &str = "5d0c8a1e-2b3f-4c5d-8e9f-0a1b2c3d4e5f";
const FRONTEND: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn load(name: &str) -> Loaded {
    match AuthSettings::load(&fixture(name)) {
        Ok(l) => l,
        Err(e) => panic!("{name} should load: {e}"),
    }
}

fn parse(text: &str) -> Result<Loaded, ConfigError> {
    AuthSettings::parse("test.json", text)
}

fn parse_ok(text: &str) -> Loaded {
    match parse(text) {
        Ok(l) => l,
        Err(e) => panic!("should parse: {e}"),
    }
}

fn parse_err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(l) => panic!("should be refused, loaded {:?}", l.settings),
        Err(e) => e,
    }
}

fn aad(s: &AuthSettings) -> &AzureActiveDirectory {
    s.identity_providers
        .azure_active_directory
        .as_ref()
        .expect("AAD configured")
}

fn aliases(s: &AuthSettings) -> Vec<String> {
    s.enabled_providers()
        .iter()
        .map(|p| p.alias().into_owned())
        .collect()
}

fn unknown_paths(l: &Loaded) -> Vec<&str> {
    l.warnings
        .iter()
        .filter(|w| w.kind == WarningKind::UnknownField)
        .map(|w| w.path.as_str())
        .collect()
}

// ---------------------------------------------------------------- accepted inputs

#[test]
fn tutorial_back_end_from_az_webapp_auth_show() {
    let l = load("backend_arm.json");
    assert_eq!(l.format, SourceFormat::ArmV2);
    let r = l.resource.as_ref().expect("envelope kept");
    assert_eq!(r.name.as_deref(), Some("authsettingsV2"));
    assert_eq!(
        r.resource_type.as_deref(),
        Some("Microsoft.Web/sites/config")
    );
    assert_eq!(r.resource_group.as_deref(), Some("myAuthResourceGroup"));
    assert_eq!(r.location.as_deref(), Some("West Europe"));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);

    let s = &l.settings;
    assert!(s.platform.enabled);
    assert_eq!(s.platform.runtime_version, "~1");
    assert_eq!(s.clear_inbound_claims_mapping, Some(false));
    assert!(s.global_validation.require_authentication);
    assert_eq!(
        s.unauthenticated_action(),
        UnauthenticatedAction::RedirectToLoginPage
    );
    assert!(s.login.token_store.enabled);
    assert_eq!(s.login.token_store.token_refresh_extension_hours, 72.0);
    assert_eq!(
        s.login.token_store.refresh_extension(),
        Duration::from_secs(72 * 3600)
    );

    let a = aad(s);
    assert!(a.enabled && a.is_auto_provisioned);
    assert_eq!(
        a.registration.open_id_issuer.as_deref(),
        Some(format!("https://sts.windows.net/{TENANT}/v2.0").as_str())
    );
    assert_eq!(a.registration.client_id.as_deref(), Some(BACKEND));
    assert_eq!(
        a.registration.client_secret_setting_name,
        "MICROSOFT_PROVIDER_AUTHENTICATION_SECRET"
    );
    assert_eq!(a.validation.allowed_audiences, [format!("api://{BACKEND}")]);
    assert_eq!(
        a.validation
            .default_authorization_policy
            .allowed_applications,
        [BACKEND, FRONTEND]
    );
    assert_eq!(
        a.validation.jwt_claim_checks.allowed_client_applications,
        [FRONTEND]
    );
    assert!(a.validation.jwt_claim_checks.allowed_groups.is_empty());
    assert_eq!(
        a.effective_audiences(),
        [format!("api://{BACKEND}"), BACKEND.to_string()]
    );

    // ARM lists every social provider as enabled with an empty registration: none is usable.
    assert!(
        s.identity_providers
            .facebook
            .as_ref()
            .is_some_and(|f| f.enabled)
    );
    assert_eq!(aliases(s), ["aad"]);
    assert_eq!(
        s.default_provider(),
        Some(ProviderName::AzureActiveDirectory)
    );
    assert_eq!(
        s.enabled_provider("azureactivedirectory"),
        Some(ProviderName::AzureActiveDirectory)
    );
}

#[test]
fn tutorial_front_end_login_parameters() {
    let l = load("frontend_arm.json");
    let a = aad(&l.settings);
    assert_eq!(a.registration.client_id.as_deref(), Some(FRONTEND));
    assert_eq!(
        a.login.login_parameters,
        [format!(
            "scope=openid offline_access api://{BACKEND}/user_impersonation"
        )]
    );
    assert!(!a.login.disable_www_authenticate);
    assert_eq!(
        a.validation
            .default_authorization_policy
            .allowed_applications,
        [FRONTEND]
    );
    assert!(
        a.validation
            .jwt_claim_checks
            .allowed_client_applications
            .is_empty()
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

#[test]
fn properties_only_object() {
    let l = load("properties_only.json");
    assert_eq!(l.format, SourceFormat::V2);
    assert!(l.resource.is_none());
    let s = &l.settings;
    assert_eq!(s.unauthenticated_action(), UnauthenticatedAction::Return401);
    assert_eq!(
        s.global_validation.excluded_paths,
        ["/health", "/api/public/*"]
    );
    assert!(s.is_excluded_path("/api/public/docs"));
    assert!(!s.is_excluded_path("/api/private"));
    assert!(!s.http_settings.require_https);
    assert_eq!(s.http_settings.routes.api_prefix, "/.easyauth");
    assert_eq!(
        s.http_settings.forward_proxy.convention,
        ForwardProxyConvention::Standard
    );
    assert_eq!(s.login.routes.logout_endpoint.as_deref(), Some("/signout"));
    assert_eq!(s.logout_path(), "/signout");
    assert_eq!(s.login.token_store.token_refresh_extension_hours, 1.5);
    assert_eq!(
        s.login.token_store.refresh_extension(),
        Duration::from_secs(5400)
    );
    assert_eq!(
        s.login.token_store.file_system.directory.as_deref(),
        Some("/home/data/.auth/tokens")
    );
    assert_eq!(
        s.login.allowed_external_redirect_urls,
        ["https://spa.contoso.com"]
    );
    let a = aad(s);
    assert!(a.login.disable_www_authenticate);
    assert_eq!(
        a.validation.jwt_claim_checks.allowed_groups,
        ["0f1e2d3c-4b5a-4968-8776-655443322110"]
    );
    assert_eq!(
        a.validation
            .default_authorization_policy
            .allowed_principals
            .identities,
        ["aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"]
    );
    // Unspecified: the default secret setting, and both implicit audiences.
    assert_eq!(
        a.registration.client_secret_setting_name,
        DEFAULT_AAD_SECRET_SETTING
    );
    assert_eq!(
        a.effective_audiences(),
        [BACKEND.to_string(), format!("api://{BACKEND}")]
    );
    // Untouched sections keep the service defaults.
    assert_eq!(s.login.cookie_expiration, CookieExpiration::default());
    assert_eq!(s.login.nonce, Nonce::default());
}

#[test]
fn logicjp_payload_spells_out_every_default() {
    let l = load("logicjp_full.json");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let s = &l.settings;
    let defaults = AuthSettings::default();
    assert_eq!(s.http_settings, defaults.http_settings);
    assert_eq!(s.login, defaults.login);
    assert_eq!(s.http_settings.routes.api_prefix, "/.auth");
    assert!(s.http_settings.require_https);
    assert_eq!(
        s.http_settings.forward_proxy.convention,
        ForwardProxyConvention::NoProxy
    );
    assert_eq!(
        s.login.cookie_expiration.convention,
        CookieExpirationConvention::FixedTime
    );
    assert_eq!(
        s.login.cookie_expiration.time_to_expiration,
        Duration::from_secs(8 * 3600)
    );
    assert!(s.login.nonce.validate_nonce);
    assert_eq!(
        s.login.nonce.nonce_expiration_interval,
        Duration::from_secs(300)
    );
    assert_eq!(s.login.token_store.token_refresh_extension_hours, 72.0);
    assert!(!s.login.token_store.enabled);
    // requireAuthentication=true + AllowAnonymous stays pass-through.
    assert!(s.global_validation.require_authentication);
    assert_eq!(
        s.global_validation.unauthenticated_client_action,
        UnauthenticatedAction::AllowAnonymous
    );
    assert_eq!(
        s.unauthenticated_action(),
        UnauthenticatedAction::AllowAnonymous
    );
    // Disabled providers are kept but not offered.
    assert!(
        s.identity_providers
            .google
            .as_ref()
            .is_some_and(|g| !g.enabled)
    );
    assert_eq!(aliases(s), ["aad"]);
    assert_eq!(
        aad(s).effective_audiences()[0],
        "https://management.azure.com"
    );
}

#[test]
fn defaults_match_the_services_defaults() {
    let s = parse_ok("{}").settings;
    assert!(!s.platform.enabled);
    assert_eq!(s.platform.runtime_version, "~1");
    assert!(!s.global_validation.require_authentication);
    assert_eq!(
        s.global_validation.unauthenticated_client_action,
        UnauthenticatedAction::RedirectToLoginPage
    );
    assert!(s.http_settings.require_https);
    assert_eq!(s.http_settings.routes.api_prefix, "/.auth");
    assert_eq!(
        s.http_settings.forward_proxy.convention,
        ForwardProxyConvention::NoProxy
    );
    assert!(!s.login.token_store.enabled);
    assert_eq!(s.login.token_store.token_refresh_extension_hours, 72.0);
    assert_eq!(
        s.login.cookie_expiration.time_to_expiration,
        Duration::from_secs(8 * 3600)
    );
    assert!(s.login.nonce.validate_nonce);
    assert_eq!(
        s.login.nonce.nonce_expiration_interval,
        Duration::from_secs(300)
    );
    assert!(!s.login.preserve_url_fragments_for_logins);
    assert_eq!(
        s.unauthenticated_action(),
        UnauthenticatedAction::AllowAnonymous
    );
    assert_eq!(s.logout_path(), "/.auth/logout");
}

#[test]
fn file_based_config_with_numeric_enums_and_doc_spellings() {
    let l = load("file_based.json");
    assert_eq!(l.format, SourceFormat::V2);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let s = &l.settings;
    assert_eq!(
        s.global_validation.unauthenticated_client_action,
        UnauthenticatedAction::Return401
    );
    assert_eq!(s.unauthenticated_action(), UnauthenticatedAction::Return401);
    let fp = &s.http_settings.forward_proxy;
    assert_eq!(fp.convention, ForwardProxyConvention::Custom);
    assert_eq!(
        fp.custom_host_header_name.as_deref(),
        Some("X-Original-Host")
    );
    assert_eq!(
        fp.custom_proto_header_name.as_deref(),
        Some("X-Original-Proto")
    );
    assert_eq!(
        s.login.cookie_expiration.convention,
        CookieExpirationConvention::IdentityProviderDerived
    );
    assert_eq!(
        s.login.cookie_expiration.time_to_expiration,
        Duration::from_secs(86_400)
    );
    assert!(!s.login.nonce.validate_nonce);
    assert_eq!(
        s.login.nonce.nonce_expiration_interval,
        Duration::from_secs(600)
    );
    assert_eq!(s.login.token_store.token_refresh_extension_hours, 48.5);
    assert!(s.login.preserve_url_fragments_for_logins);
    assert_eq!(
        s.login.allowed_external_redirect_urls,
        [
            "https://uri1.contoso.net/",
            "contoso-app://easyauth.callback"
        ]
    );

    let (name, p) = s
        .custom_provider("contosoidp")
        .expect("openIdConnectProviders read");
    assert_eq!(name, "ContosoIdP");
    assert_eq!(p.registration.client_id.as_deref(), Some("contoso-web"));
    assert_eq!(
        p.registration.client_credential.method,
        ClientCredentialMethod::ClientSecretPost
    );
    assert_eq!(
        p.registration.client_credential.client_secret_setting_name,
        "CONTOSOIDP_AUTHENTICATION_SECRET"
    );
    let c = &p.registration.open_id_connect_configuration;
    assert_eq!(
        c.authorization_endpoint.as_deref(),
        Some("https://idp.contoso.net/oauth2/authorize")
    );
    assert_eq!(
        c.token_endpoint.as_deref(),
        Some("https://idp.contoso.net/oauth2/token")
    );
    assert_eq!(c.issuer.as_deref(), Some("https://idp.contoso.net"));
    assert_eq!(
        c.certification_uri.as_deref(),
        Some("https://idp.contoso.net/oauth2/keys")
    );
    assert_eq!(c.well_known_open_id_configuration, None);
    assert_eq!(
        p.login.name_claim_type.as_deref(),
        Some("preferred_username")
    );
    assert_eq!(p.login.login_parameter_names, ["prompt=login"]);
    assert_eq!(p.login.effective_scopes(), ["openid", "profile", "email"]);

    assert_eq!(aliases(s), ["contosoidp"]);
    assert_eq!(
        s.default_provider(),
        Some(ProviderName::Custom("ContosoIdP".into()))
    );
}

#[test]
fn v1_authsettings_are_mapped_to_v2() {
    let l = load("v1_authsettings.json");
    assert_eq!(l.format, SourceFormat::V1);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.kind == WarningKind::V1Mapped && w.path == "$")
    );
    assert!(unknown_paths(&l).is_empty(), "{:?}", l.warnings);
    let s = &l.settings;
    assert!(s.platform.enabled);
    assert!(
        s.global_validation.require_authentication,
        "v1: the action alone decides"
    );
    assert_eq!(
        s.unauthenticated_action(),
        UnauthenticatedAction::RedirectToLoginPage
    );
    assert_eq!(
        s.global_validation.redirect_to_provider.as_deref(),
        Some("azureactivedirectory")
    );
    assert_eq!(
        s.default_provider(),
        Some(ProviderName::AzureActiveDirectory)
    );
    assert!(s.login.token_store.enabled);
    assert_eq!(s.login.token_store.token_refresh_extension_hours, 24.0);
    assert_eq!(
        s.login.allowed_external_redirect_urls,
        ["https://frontend-app.azurewebsites.net"]
    );
    assert_eq!(
        s.platform.config_file_path, None,
        "isAuthFromFile is \"false\""
    );
    assert_eq!(
        s.legacy_properties
            .as_ref()
            .and_then(|p| p.config_version.as_deref()),
        Some("v1")
    );
    let a = aad(s);
    assert_eq!(a.registration.client_id.as_deref(), Some(BACKEND));
    assert_eq!(
        a.registration.open_id_issuer.as_deref(),
        Some(format!("https://sts.windows.net/{TENANT}/").as_str())
    );
    assert_eq!(a.registration.client_secret_inline, None);
    assert!(a.is_auto_provisioned);
    assert_eq!(a.validation.allowed_audiences, [format!("api://{BACKEND}")]);
    assert_eq!(
        a.login.login_parameters,
        [
            "response_type=code id_token",
            &format!("resource={BACKEND}")
        ]
    );
    assert_eq!(
        a.validation.jwt_claim_checks.allowed_groups,
        ["0f1e2d3c-4b5a-4968-8776-655443322110"]
    );
    assert_eq!(
        a.validation.jwt_claim_checks.allowed_client_applications,
        [FRONTEND]
    );
    assert!(s.identity_providers.google.is_none());
}

#[test]
fn v1_allow_anonymous_and_disabled() {
    let s = parse_ok(
        r#"{"enabled": true, "unauthenticatedClientAction": "AllowAnonymous", "clientId": "c"}"#,
    )
    .settings;
    assert!(!s.global_validation.require_authentication);
    assert_eq!(
        s.unauthenticated_action(),
        UnauthenticatedAction::AllowAnonymous
    );
    let s = parse_ok(r#"{"enabled": false, "unauthenticatedClientAction": "RedirectToLoginPage", "clientId": "c"}"#).settings;
    assert_eq!(
        s.unauthenticated_action(),
        UnauthenticatedAction::AllowAnonymous,
        "v1 enabled=false"
    );
}

#[test]
fn v1_inside_an_arm_envelope_with_an_inline_secret() {
    let text = r#"{
        "id": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/sites/app/config/authsettings",
        "name": "authsettings",
        "type": "Microsoft.Web/sites/config",
        "properties": {
            "enabled": true,
            "clientId": "c1",
            "clientSecret": "TOPSECRET-value-123",
            "issuer": "https://login.microsoftonline.com/t/v2.0",
            "facebookAppId": "fb1",
            "facebookAppSecret": "FBSECRET-456"
        }
    }"#;
    let l = parse_ok(text);
    assert_eq!(l.format, SourceFormat::ArmV1);
    let a = aad(&l.settings);
    assert_eq!(
        a.registration
            .client_secret_inline
            .as_ref()
            .map(Secret::expose),
        Some("TOPSECRET-value-123")
    );
    let fb = l
        .settings
        .identity_providers
        .facebook
        .as_ref()
        .expect("facebook mapped");
    assert_eq!(
        fb.registration
            .app_secret_inline
            .as_ref()
            .map(Secret::expose),
        Some("FBSECRET-456")
    );
    let inline: Vec<&str> = l
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::InlineSecret)
        .map(|w| w.path.as_str())
        .collect();
    assert_eq!(
        inline,
        [
            "$.properties.clientSecret",
            "$.properties.facebookAppSecret"
        ]
    );
    assert_eq!(aliases(&l.settings), ["aad", "facebook"]);

    // The secret appears nowhere it could be printed or written back.
    let printed = format!("{l:?} {:?} {}", l.settings, l.settings.to_v2_json());
    let notes: String = l.warnings.iter().map(|w| w.to_string()).collect();
    for secret in ["TOPSECRET", "FBSECRET"] {
        assert!(!printed.contains(secret), "{secret} leaked into Debug/JSON");
        assert!(!notes.contains(secret), "{secret} leaked into a warning");
    }
    assert!(printed.contains("<redacted>"));
}

#[test]
fn two_custom_providers_plus_aad_and_redirect_to_provider() {
    let l = load("multi_provider.json");
    assert_eq!(l.format, SourceFormat::ArmV2);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let s = &l.settings;
    assert_eq!(aliases(s), ["aad", "keycloak_dev", "okta"]);
    assert_eq!(
        s.default_provider(),
        Some(ProviderName::Custom("Okta".into()))
    );
    assert_eq!(
        s.enabled_provider("OKTA"),
        Some(ProviderName::Custom("Okta".into()))
    );
    assert_eq!(
        s.enabled_provider("retired"),
        None,
        "disabled providers are not offered"
    );

    let (_, okta) = s.custom_provider("okta").expect("okta");
    assert!(okta.enabled, "enabled defaults to true");
    assert_eq!(
        okta.registration
            .client_credential
            .client_secret_setting_name,
        "OKTA_SECRET"
    );
    assert_eq!(
        okta.registration
            .open_id_connect_configuration
            .well_known_open_id_configuration
            .as_deref(),
        Some("https://contoso.okta.com/.well-known/openid-configuration")
    );
    assert_eq!(okta.login.scopes, ["openid", "profile", "email", "groups"]);
    let (_, kc) = s.custom_provider("keycloak_dev").expect("keycloak");
    assert_eq!(
        kc.registration.client_credential.client_secret_setting_name,
        "KEYCLOAK_DEV_AUTHENTICATION_SECRET"
    );
    assert_eq!(
        kc.login.effective_scopes(),
        ["openid", "profile", "email"],
        "default scopes"
    );
    // AAD enabled by default when registered.
    assert!(aad(s).enabled);
}

#[test]
fn round_trips_through_v2_json() {
    for name in [
        "backend_arm.json",
        "properties_only.json",
        "file_based.json",
        "multi_provider.json",
        "v1_authsettings.json",
    ] {
        let original = load(name).settings;
        let written = serde_json::to_string_pretty(&original.to_v2_json()).expect("serializes");
        let again = match AuthSettings::parse("written.json", &written) {
            Ok(l) => l,
            Err(e) => panic!("{name} written back does not load: {e}\n{written}"),
        };
        assert_eq!(again.settings, original, "{name}");
        assert_eq!(again.format, SourceFormat::V2);
    }
    let json = load("backend_arm.json").settings.to_v2_json();
    assert_eq!(
        json["login"]["cookieExpiration"]["timeToExpiration"],
        "08:00:00"
    );
    assert_eq!(
        json["globalValidation"]["unauthenticatedClientAction"],
        "RedirectToLoginPage"
    );
    assert_eq!(
        json["identityProviders"]["azureActiveDirectory"]["login"]["disableWWWAuthenticate"],
        false
    );
}

#[test]
fn docs_style_json_with_comments_nulls_and_a_bom() {
    let text = "\u{feff}{\n  // file-based config, as in the docs\n  \"platform\": {\"enabled\": true, \"configFilePath\": null},\n  \"globalValidation\": {\"requireAuthentication\": true, \"unauthenticatedClientAction\": \"rejectwith404\", \"redirectToProvider\": null,},\n  /* trailing commas too */\n  \"login\": {\"nonce\": {\"nonceExpirationInterval\": \"00:01:30\",},},\n}";
    let l = parse_ok(text);
    assert_eq!(
        l.settings.unauthenticated_action(),
        UnauthenticatedAction::Return404
    );
    assert_eq!(
        l.settings.login.nonce.nonce_expiration_interval,
        Duration::from_secs(90)
    );
    let lenient = l
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::LenientJson)
        .count();
    assert_eq!(lenient, 2, "BOM and comments: {:?}", l.warnings);
}

#[test]
fn unknown_fields_are_warnings_with_paths() {
    let text = r#"{
        "id": "/x", "name": "authsettingsV2", "type": "Microsoft.Web/sites/config", "etag": "W/1",
        "properties": {
            "platform": {"enabled": true, "futureFlag": 1},
            "identityProviders": {
                "azureActiveDirectory": {"registration": {"clientId": "c", "clientSecret": "do-not-print"}},
                "customOpenIdConnectProviders": {"idp": {"registration": {"clientId": "x",
                    "openIdConnectConfiguration": {"wellKnownOpenIdConfiguration": "https://idp.example/.well-known/openid-configuration", "jwksUri": "https://idp.example/keys"}}}}
            },
            "somethingNew": {"a": [1, 2]}
        }
    }"#;
    let l = parse_ok(text);
    assert_eq!(
        unknown_paths(&l),
        [
            "$.etag",
            "$.properties.platform.futureFlag",
            "$.properties.identityProviders.azureActiveDirectory.registration.clientSecret",
            "$.properties.identityProviders.customOpenIdConnectProviders.idp.registration.openIdConnectConfiguration.jwksUri",
            "$.properties.somethingNew",
        ]
    );
    let secret_note = l
        .warnings
        .iter()
        .find(|w| w.path.ends_with("clientSecret"))
        .expect("warned");
    assert!(
        secret_note.message.contains("clientSecretSettingName"),
        "{}",
        secret_note.message
    );
    assert!(!format!("{:?}", l.warnings).contains("do-not-print"));
}

#[test]
fn require_authentication_absent_is_flagged() {
    let l = parse_ok(
        r#"{"platform": {"enabled": true}, "globalValidation": {"unauthenticatedClientAction": "Return401"}}"#,
    );
    assert_eq!(
        l.settings.unauthenticated_action(),
        UnauthenticatedAction::AllowAnonymous
    );
    let w = l
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::Suspicious)
        .expect("warned");
    assert_eq!(w.path, "$.globalValidation.requireAuthentication");
}

#[test]
fn load_names_the_file() {
    let missing = fixture("does-not-exist.json");
    let err = AuthSettings::load(&missing).expect_err("missing file");
    assert_eq!(err.source, missing.display().to_string());
    assert_eq!(err.path, "$");
}

// ---------------------------------------------------------------- refused inputs

fn assert_err(text: &str, path: &str, message_has: &[&str]) -> ConfigError {
    let err = parse_err(text);
    assert_eq!(err.path, path, "{err}");
    assert_eq!(err.source, "test.json");
    for part in message_has {
        assert!(
            err.message.contains(part),
            "{:?} lacks {part:?}",
            err.message
        );
    }
    err
}

#[test]
fn error_display_is_source_path_message() {
    let err = assert_err(
        r#"{"httpSettings": {"requireHttps": "yes"}}"#,
        "$.httpSettings.requireHttps",
        &["boolean"],
    );
    assert_eq!(
        err.to_string(),
        format!("test.json: at $.httpSettings.requireHttps: {}", err.message)
    );
}

#[test]
fn wrong_type_deep_in_the_tree() {
    assert_err(
        r#"{"properties": {"identityProviders": {"azureActiveDirectory": {"validation": {"defaultAuthorizationPolicy": {"allowedApplications": "9a8b7c6d"}}}}}}"#,
        "$.properties.identityProviders.azureActiveDirectory.validation.defaultAuthorizationPolicy.allowedApplications",
        &["invalid type: string \"9a8b7c6d\"", "expected a sequence"],
    );
    assert_err(
        r#"{"identityProviders": {"azureActiveDirectory": {"validation": {"allowedAudiences": ["api://x", 42]}}}}"#,
        "$.identityProviders.azureActiveDirectory.validation.allowedAudiences[1]",
        &["integer `42`", "expected a string"],
    );
    assert_err(
        r#"{"properties": []}"#,
        "$.properties",
        &["expected an object, found an array"],
    );
    assert_err("[1]", "$", &["expected a JSON object", "found an array"]);
}

#[test]
fn bad_enum_lists_the_accepted_spellings() {
    assert_err(
        r#"{"name": "authsettingsV2", "properties": {"globalValidation": {"unauthenticatedClientAction": "Return402"}}}"#,
        "$.properties.globalValidation.unauthenticatedClientAction",
        &[
            "RedirectToLoginPage, AllowAnonymous, Return401, Return403, Return404, RejectWith401, RejectWith404",
            "found \"Return402\"",
        ],
    );
    assert_err(
        r#"{"httpSettings": {"forwardProxy": {"convention": 7}}}"#,
        "$.httpSettings.forwardProxy.convention",
        &["NoProxy, Standard, Custom", "found 7"],
    );
    assert_err(
        r#"{"login": {"cookieExpiration": {"convention": "Sliding"}}}"#,
        "$.login.cookieExpiration.convention",
        &["IdentityDerived", "found \"Sliding\""],
    );
}

#[test]
fn bad_timespan_and_hours() {
    assert_err(
        r#"{"login": {"cookieExpiration": {"timeToExpiration": "8h"}}}"#,
        "$.login.cookieExpiration.timeToExpiration",
        &["expected a timespan", "found \"8h\""],
    );
    assert_err(
        r#"{"login": {"nonce": {"nonceExpirationInterval": "00:00:00"}}}"#,
        "$.login.nonce.nonceExpirationInterval",
        &["longer than zero"],
    );
    assert_err(
        r#"{"login": {"tokenStore": {"tokenRefreshExtensionHours": "three days"}}}"#,
        "$.login.tokenStore.tokenRefreshExtensionHours",
        &["number of hours", "found \"three days\""],
    );
    // Found by fuzzing: spans beyond .NET's TimeSpan.MaxValue loaded, then turning them into
    // durations (or adding them to the time) panicked when the module was built.
    for hours in ["1e300", "18446744073709551615", "\"256204779\""] {
        assert_err(
            &format!(r#"{{"login": {{"tokenStore": {{"tokenRefreshExtensionHours": {hours}}}}}}}"#),
            "$.login.tokenStore.tokenRefreshExtensionHours",
            &["at most 256204778"],
        );
    }
    assert_err(
        r#"{"login": {"cookieExpiration": {"timeToExpiration": "10675200.00:00:00"}}}"#,
        "$.login.cookieExpiration.timeToExpiration",
        &["expected a timespan"],
    );
    let longest = parse_ok(
        r#"{"login": {"tokenStore": {"tokenRefreshExtensionHours": 256204778}, "cookieExpiration": {"timeToExpiration": "10675199.02:48:05"}}}"#,
    );
    let login = &longest.settings.login;
    assert!(login.token_store.refresh_extension() < Duration::from_secs(922_337_203_686));
    assert_eq!(
        login.cookie_expiration.time_to_expiration,
        Duration::from_secs(922_337_203_685)
    );
}

#[test]
fn bad_urls() {
    assert_err(
        r#"{"identityProviders": {"azureActiveDirectory": {"registration": {"clientId": "c", "openIdIssuer": "sts.windows.net/tid/v2.0"}}}}"#,
        "$.identityProviders.azureActiveDirectory.registration.openIdIssuer",
        &["absolute http(s) URL", "found \"sts.windows.net/tid/v2.0\""],
    );
    assert_err(
        r#"{"identityProviders": {"customOpenIdConnectProviders": {"idp": {"registration": {"clientId": "c", "openIdConnectConfiguration": {"wellKnownOpenIdConfiguration": "ftp://idp/.well-known/openid-configuration"}}}}}}"#,
        "$.identityProviders.customOpenIdConnectProviders.idp.registration.openIdConnectConfiguration.wellKnownOpenIdConfiguration",
        &["absolute http(s) URL"],
    );
    assert_err(
        r#"{"login": {"allowedExternalRedirectUrls": ["https://ok.example", "/relative"]}}"#,
        "$.login.allowedExternalRedirectUrls[1]",
        &["absolute URL", "found \"/relative\""],
    );
    assert_err(
        r#"{"login": {"allowedExternalRedirectUrls": ["javascript://alert(1)"]}}"#,
        "$.login.allowedExternalRedirectUrls[0]",
        &["absolute URL"],
    );
}

#[test]
fn v1_errors_point_at_v1_fields() {
    assert_err(
        r#"{"name": "authsettings", "properties": {"enabled": true, "clientId": "c", "issuer": "not a url"}}"#,
        "$.properties.issuer",
        &["absolute http(s) URL"],
    );
    assert_err(
        r#"{"enabled": true, "clientId": "c", "defaultProvider": "Google"}"#,
        "$.defaultProvider",
        &[
            "\"google\" does not name an enabled provider",
            "enabled: aad",
        ],
    );
    assert_err(r#"{"enabled": "maybe"}"#, "$.enabled", &["true or false"]);
}

#[test]
fn v1_claims_authorization_string_must_hold_json() {
    assert_err(
        r#"{"enabled": true, "clientId": "c", "aadClaimsAuthorization": "{allowed_groups: [g1]"}"#,
        "$.aadClaimsAuthorization",
        &["expected a string holding JSON", "line 1 column 2"],
    );
    assert_err(
        r#"{"enabled": true, "clientId": "c", "aadClaimsAuthorization": "{\"allowed_groups\": \"g1\"}"}"#,
        "$.aadClaimsAuthorization",
        &["expected a sequence"],
    );
}

#[test]
fn custom_provider_names() {
    let with = |name: &str| {
        format!(
            r#"{{"identityProviders": {{"customOpenIdConnectProviders": {{"{name}": {{"registration": {{"clientId": "c", "openIdConnectConfiguration": {{"wellKnownOpenIdConfiguration": "https://idp.example/.well-known/openid-configuration"}}}}}}}}}}}}"#
        )
    };
    assert_err(
        &with("my-idp"),
        "$.identityProviders.customOpenIdConnectProviders.my-idp",
        &["must not contain '-'"],
    );
    assert_err(
        &with("my idp"),
        "$.identityProviders.customOpenIdConnectProviders.my idp",
        &["letters, digits and '_'"],
    );
    assert_err(
        &with("a/b"),
        "$.identityProviders.customOpenIdConnectProviders.a/b",
        &["letters, digits and '_'"],
    );
    assert_err(
        &with("Google"),
        "$.identityProviders.customOpenIdConnectProviders.Google",
        &["built-in provider alias"],
    );
    assert!(parse(&with("my_idp2")).is_ok());
}

#[test]
fn custom_provider_needs_discovery_or_endpoints() {
    assert_err(
        r#"{"identityProviders": {"customOpenIdConnectProviders": {"idp": {"registration": {"clientId": "c", "openIdConnectConfiguration": {"authorizationEndpoint": "https://idp/a", "tokenEndpoint": "https://idp/t"}}}}}}"#,
        "$.identityProviders.customOpenIdConnectProviders.idp.registration.openIdConnectConfiguration",
        &[
            "wellKnownOpenIdConfiguration, or all of authorizationEndpoint, tokenEndpoint and issuer",
        ],
    );
    assert_err(
        r#"{"identityProviders": {"customOpenIdConnectProviders": {"idp": {"registration": {"openIdConnectConfiguration": {"wellKnownOpenIdConfiguration": "https://idp/.well-known/openid-configuration"}}}}}}"#,
        "$.identityProviders.customOpenIdConnectProviders.idp.registration.clientId",
        &["needs a clientId"],
    );
    // A disabled, half-configured provider is kept without complaint.
    assert!(parse(r#"{"identityProviders": {"customOpenIdConnectProviders": {"idp": {"enabled": false}}}}"#).is_ok());
}

#[test]
fn redirect_to_provider_must_name_an_enabled_provider() {
    let err = assert_err(
        r#"{"platform": {"enabled": true}, "globalValidation": {"redirectToProvider": "github"},
            "identityProviders": {"azureActiveDirectory": {"registration": {"clientId": "c"}}, "gitHub": {"enabled": true, "registration": {}}}}"#,
        "$.globalValidation.redirectToProvider",
        &[
            "\"github\" does not name an enabled provider",
            "enabled: aad",
            "azureactivedirectory",
        ],
    );
    assert!(err.message.contains("aad"));
    for alias in ["azureactivedirectory", "AAD", "AzureActiveDirectory"] {
        let text = format!(
            r#"{{"platform": {{"enabled": true}}, "globalValidation": {{"redirectToProvider": "{alias}"}}, "identityProviders": {{"azureActiveDirectory": {{"registration": {{"clientId": "c"}}}}}}}}"#
        );
        assert_eq!(
            parse_ok(&text).settings.default_provider(),
            Some(ProviderName::AzureActiveDirectory),
            "{alias}"
        );
    }
    // With the module off, a dangling reference is only a warning.
    let l = parse_ok(r#"{"globalValidation": {"redirectToProvider": "nobody"}}"#);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.path == "$.globalValidation.redirectToProvider")
    );
}

#[test]
fn excluded_paths_must_be_rooted() {
    assert_err(
        r#"{"globalValidation": {"excludedPaths": ["/ok", "api/health"]}}"#,
        "$.globalValidation.excludedPaths[1]",
        &["starting with '/'", "found \"api/health\""],
    );
    assert_err(
        r#"{"globalValidation": {"excludedPaths": ["/api/*/docs"]}}"#,
        "$.globalValidation.excludedPaths[0]",
        &["\"/*\""],
    );
    assert_err(
        r#"{"globalValidation": {"excludedPaths": ["/api*"]}}"#,
        "$.globalValidation.excludedPaths[0]",
        &["/*"],
    );
}

#[test]
fn api_prefix_shape() {
    for bad in [".auth", "/.auth/", "/", "", "/my auth"] {
        assert_err(
            &format!(r#"{{"httpSettings": {{"routes": {{"apiPrefix": "{bad}"}}}}}}"#),
            "$.httpSettings.routes.apiPrefix",
            &["starts with '/' and does not end with '/'"],
        );
    }
    assert_err(
        r#"{"login": {"routes": {"logoutEndpoint": "logout"}}}"#,
        "$.login.routes.logoutEndpoint",
        &["starting with '/'"],
    );
    assert_err(
        r#"{"httpSettings": {"forwardProxy": {"convention": "Custom"}}}"#,
        "$.httpSettings.forwardProxy",
        &["customHostHeaderName"],
    );
}

#[test]
fn invalid_json_names_line_and_column() {
    let err = assert_err(
        "{\n  \"platform\": {\n    \"enabled\": true\n    \"runtimeVersion\": \"~1\"\n  }\n}",
        "$",
        &["invalid JSON", "line 4 column 5"],
    );
    assert!(err.to_string().starts_with("test.json: at $: invalid JSON"));
    assert_err("", "$", &["invalid JSON", "EOF"]);
    assert_err("{\"a\": 1 /* unterminated", "$", &["invalid JSON"]);
}

#[test]
fn config_file_path_is_reported_not_followed() {
    let l = parse_ok(
        r#"{"platform": {"enabled": true, "configFilePath": "/home/site/wwwroot/auth.json"}}"#,
    );
    assert_eq!(
        l.settings.platform.config_file_path.as_deref(),
        Some("/home/site/wwwroot/auth.json")
    );
    assert!(
        l.warnings
            .iter()
            .any(|w| w.path == "$.platform.configFilePath" && w.message.contains("auth.json"))
    );
    let l = parse_ok(r#"{"enabled": true, "isAuthFromFile": "true", "authFilePath": "auth.json"}"#);
    assert_eq!(l.format, SourceFormat::V1);
    assert_eq!(
        l.settings.platform.config_file_path.as_deref(),
        Some("auth.json")
    );
    assert!(l.warnings.iter().any(|w| w.path == "$.authFilePath"));
}
