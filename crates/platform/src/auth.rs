//! Auth settings as the platform handles them: loaded from a file or built in, placeholders
//! expanded, shown as the ARM resource `az webapp auth show` prints, and the app registration
//! facts the platform derives from them.

use easyauth_entra::Seed;
use easyauth_module::AuthSettings;
use serde_json::Value;

use crate::site::{AuthSource, Placeholders};

pub(crate) fn aad_client_id(auth: &AuthSettings) -> Option<String> {
    auth.identity_providers
        .azure_active_directory
        .as_ref()
        .filter(|a| a.enabled)
        .and_then(|a| a.registration.client_id.clone())
        .filter(|c| !c.is_empty())
}

/// App Service's express setup registers `<site>/.auth/login/aad/callback` on the app
/// registration; so does the platform, for the app registration whose appId is the app's client id.
pub(crate) fn register_callback(seed: &mut Seed, client_id: &str, origin: &url::Url) {
    let callback = format!(
        "{}/.auth/login/aad/callback",
        origin.as_str().trim_end_matches('/')
    );
    if let Some(app) = seed
        .applications
        .iter_mut()
        .find(|a| a.app_id.eq_ignore_ascii_case(client_id))
        && !app.web.redirect_uris.contains(&callback)
    {
        app.web.redirect_uris.push(callback);
    }
}

/// Auth settings: a file (placeholders expanded), built-in JSON, or off.
pub(crate) fn load_auth(
    source: &AuthSource,
    placeholders: &Placeholders,
) -> Result<AuthSettings, String> {
    let (name, mut json) = match source {
        AuthSource::Off => return Ok(auth_off()),
        AuthSource::File(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{name}: cannot read the auth settings: {e}"))?;
            let json: Value =
                serde_json::from_str(&text).map_err(|e| format!("{name}: not JSON: {e}"))?;
            (name, json)
        }
        AuthSource::Inline { name, json } => (name.clone(), json.clone()),
    };
    placeholders
        .expand_json(&mut json)
        .map_err(|e| format!("{name}: {e}"))?;
    parse_auth(&name, &json).map(|(settings, warnings)| {
        for w in warnings {
            tracing::warn!(source = %name, "{w}");
        }
        settings
    })
}

/// The auth settings of a source as the `authsettingsV2` properties ARM keeps (validated).
pub(crate) fn load_auth_json(
    source: &AuthSource,
    placeholders: &Placeholders,
) -> Result<Value, String> {
    load_auth(source, placeholders).map(|s| s.to_v2_json())
}

pub(crate) fn parse_auth(name: &str, json: &Value) -> Result<(AuthSettings, Vec<String>), String> {
    let loaded = AuthSettings::parse(name, &json.to_string()).map_err(|e| e.to_string())?;
    Ok((
        loaded.settings,
        loaded.warnings.iter().map(ToString::to_string).collect(),
    ))
}

/// App Service's default for an app without authentication configured.
pub(crate) fn auth_off() -> AuthSettings {
    let mut settings = AuthSettings::default();
    settings.platform.enabled = false;
    settings
}
