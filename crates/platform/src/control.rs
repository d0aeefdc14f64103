//! What the admin API can do to a running platform, as a trait so that the HTTP layer (admin.rs)
//! does not depend on how the platform is put together.

use std::collections::BTreeMap;

use serde_json::Value;

/// A running platform's controls, as `az webapp auth` / `az webapp config appsettings` see them.
#[async_trait::async_trait]
pub trait Control: Send + Sync + 'static {
    /// The apps' names, in site order.
    fn app_names(&self) -> Vec<String>;

    /// The app as `az webapp show` describes it: name, state (`Running`, `Starting`,
    /// `BackingOff`, `Stopped`), host name, URL, and its process.
    async fn show(&self, app: &str) -> Result<Value, ControlError>;

    /// Restarts the app's process (`az webapp restart`); the module stays as it is. An app that
    /// is an upstream URL has no process here: [`ControlError::Invalid`].
    async fn restart(&self, app: &str) -> Result<(), ControlError>;

    /// The app's auth settings as the `authsettingsV2` resource `az webapp auth show` prints
    /// (`id`, `name`, `type`, `properties`).
    async fn auth_show(&self, app: &str) -> Result<Value, ControlError>;

    /// Replaces the app's auth settings with `body` (the whole resource or just `properties`, as
    /// `az webapp auth set --body` accepts) and swaps the app's module without a restart. Returns
    /// what `auth_show` returns afterwards, plus the configuration warnings.
    async fn auth_set(&self, app: &str, body: Value) -> Result<AuthSetOutcome, ControlError>;

    /// The app's app settings.
    async fn appsettings_list(&self, app: &str) -> Result<BTreeMap<String, String>, ControlError>;

    /// Applies `changes` (a `None` value removes the setting), restarts only this app's process
    /// and rebuilds its module. Returns the app settings afterwards.
    async fn appsettings_set(
        &self,
        app: &str,
        changes: BTreeMap<String, Option<String>>,
    ) -> Result<BTreeMap<String, String>, ControlError>;
}

/// The result of a successful `auth_set`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AuthSetOutcome {
    pub resource: Value,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Why a control request failed; `Display` is what the user sees.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ControlError {
    #[error("no app named {name:?} in this site (apps: {})", known.join(", "))]
    NoSuchApp { name: String, known: Vec<String> },
    /// The request itself is wrong (e.g. auth settings that do not parse): HTTP 400.
    #[error("{0}")]
    Invalid(String),
    /// The request was valid but applying it failed (e.g. the module could not be built): 500-ish,
    /// but the old configuration stays in place.
    #[error("{0}")]
    Failed(String),
}
