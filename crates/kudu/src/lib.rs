//! App Service's SCM side ("Kudu") for one web app: zip deploy over HTTP, safe unpacking, the
//! Oryx-like build, start-command detection, deployment records and their logs.
//!
//! The platform owns everything else (processes, ports, ARM); it plugs in through [`SiteHost`].
//! One [`Kudu`] serves one site, rooted at a folder the platform gives it:
//!
//! ```text
//! <root>/current                      the id of the deployment that serves (absent: none yet)
//! <root>/deployments/<id>/deployment.json   the record (state, times, runtime, start command)
//! <root>/deployments/<id>/log.txt     the deployment's log, one timestamped line per event
//! <root>/deployments/<id>/site/       the unpacked (and built) app; the app's working folder
//! <root>/deployments/.staging-<tmp>/  an upload being received and checked (removed after)
//! ```
//!
//! Deployments of one site are serialized: a second deploy while one runs is refused
//! ([`DeployError::Conflict`]), never interleaved.

mod build;
mod config;
mod deployment;
mod detect;
mod http;
mod kudu;
mod log;
mod process;
mod runtime;
mod unzip;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use deployment::{BuiltDeployment, Deployment, DeploymentState, KuduStatus, StartCommand};
pub use http::router;
pub use kudu::{DeployError, Kudu, current_deployment};
pub use log::LogEntry;
pub use runtime::{Runtime, Stack};

/// What the platform tells Kudu about the site, read at the start of every deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteConfig {
    /// The site's app settings (also the build's environment, as on App Service). Read here:
    /// `SCM_DO_BUILD_DURING_DEPLOYMENT`, `WEBSITE_NODE_DEFAULT_VERSION`.
    pub app_settings: BTreeMap<String, String>,
    /// `siteConfig.linuxFxVersion`, e.g. `NODE|20-lts` or `PYTHON|3.12`.
    pub linux_fx_version: Option<String>,
    /// `siteConfig.nodeVersion` of a Windows site, e.g. `~20`.
    pub node_version: Option<String>,
    /// `siteConfig.appCommandLine`: an explicit startup command (run with `sh -c`).
    pub app_command_line: Option<String>,
}

/// The site's publishing (basic auth) credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct PublishingCredentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for PublishingCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishingCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The platform's side of one site.
#[async_trait::async_trait]
pub trait SiteHost: Send + Sync + 'static {
    /// The site's name (`site_name` in Kudu's JSON, the log).
    fn site_name(&self) -> String;

    /// The publishing credentials Basic auth is checked against (in constant time, here);
    /// `None` when basic authentication is disabled for the site (then only bearer tokens work).
    fn publishing_credentials(&self) -> Option<PublishingCredentials>;

    /// Whether `token` (from `Authorization: Bearer`) may deploy to this site: the platform
    /// validates its ARM token.
    async fn authorize_bearer(&self, token: &str) -> bool;

    /// App settings, runtime and startup command as they are now.
    async fn site_config(&self) -> SiteConfig;

    /// Starts `deployment` on a fresh PORT behind the site's module and swaps it in. `Ok` once
    /// it listens; `Err(message with the process's output)` if it crashes or does not listen in
    /// time, in which case the previous deployment must keep serving.
    async fn activate(&self, deployment: &BuiltDeployment) -> Result<(), String>;

    /// The site's log for `/api/logstream` (the app's output and the platform's explanations):
    /// the recent lines and a receiver of new ones. The default has neither.
    fn log(&self) -> LogFeed {
        LogFeed::default()
    }
}

/// A site's log as the log stream serves it.
#[derive(Debug, Default)]
pub struct LogFeed {
    /// The lines kept, oldest first.
    pub recent: Vec<String>,
    /// New lines as they are written; `None`: the stream ends after `recent`.
    pub live: Option<tokio::sync::broadcast::Receiver<String>>,
}

/// Bounds on what a deployment may take, and its timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest zip body accepted (413 beyond).
    pub max_zip_bytes: u64,
    /// The most bytes the zip may unpack to, counted while unpacking (never trusted from the
    /// zip's headers).
    pub max_unpacked_bytes: u64,
    /// The most entries (files, folders, links) the zip may hold.
    pub max_entries: usize,
    /// How long one build command (`npm install`, `pip install`, ...) may run.
    pub build_timeout: Duration,
    /// How long the platform's `activate` may take before the deployment counts as failed.
    pub activate_timeout: Duration,
    /// How many deployment folders to keep (the current one is always kept on top).
    pub keep_deployments: usize,
    /// How long `/api/deployments/latest` reports a `temp-` id for a deployment whose outcome
    /// is not known yet (az switches to ARM's deploymentStatus once it sees the real id).
    pub temp_id_window: Duration,
}

impl Default for Limits {
    /// 100 MiB zip, 500 MiB unpacked, 20,000 entries, 15 min per build command, 5 min to start,
    /// 5 deployments kept, 50 s of temp id.
    fn default() -> Self {
        Limits {
            max_zip_bytes: 100 * 1024 * 1024,
            max_unpacked_bytes: 500 * 1024 * 1024,
            max_entries: 20_000,
            build_timeout: Duration::from_secs(15 * 60),
            activate_timeout: Duration::from_secs(5 * 60),
            keep_deployments: 5,
            temp_id_window: Duration::from_secs(50),
        }
    }
}

/// The folder of deployment `id` under `root` (its app is in `site/` inside).
fn deployment_dir(root: &std::path::Path, id: &str) -> PathBuf {
    root.join("deployments").join(id)
}
