//! What the running platform does when a web app changes: the local Resource Manager records
//! the change and the platform applies it (origins, modules, processes), behind this trait so the
//! HTTP surface does not depend on how the platform is put together.

use serde_json::Value;

use crate::model::{SiteStatus, WebApp};

/// Which part of a web app changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new web app: bind its origin and SCM endpoint (filling in `host`, `scm_host`,
    /// `address`) and serve it.
    Created,
    /// `siteConfig` (runtime, startup command): restart the app with it.
    SiteConfig,
    /// App settings: rebuild the module and restart only this app.
    AppSettings,
    /// `authsettingsV2`: rebuild the module and swap it in; no restart.
    Auth,
    Start,
    Stop,
    Restart,
    /// Publishing credentials or their policy: the SCM endpoint checks the new ones.
    Credentials,
}

/// The running platform, as the Resource Manager drives it.
#[async_trait::async_trait]
pub trait SiteRuntime: Send + Sync + 'static {
    /// Checks that `app` could run as it is (its auth settings parse, its module builds),
    /// changing nothing. `Ok` carries warnings (unknown auth-settings fields, ...).
    async fn check(&self, app: &WebApp) -> Result<Vec<String>, String>;

    /// Makes the platform match `app` after `change`; returns `app` with what the platform
    /// filled in (addresses). On `Err` nothing changed.
    async fn apply(&self, app: &WebApp, change: Change) -> Result<WebApp, String>;

    /// Stops serving and running `app` (it has been deleted).
    async fn remove(&self, app: &WebApp);

    /// The app's live state.
    fn status(&self, name: &str) -> SiteStatus;

    /// The `deploymentStatus` resource's `properties` for deployment `id` (`None`: the latest),
    /// if the app has such a deployment.
    async fn deployment_status(&self, name: &str, id: Option<&str>) -> Option<Value>;

    /// Every deployment's `deploymentStatus` properties, newest first.
    async fn deployment_statuses(&self, name: &str) -> Vec<(String, Value)>;
}
