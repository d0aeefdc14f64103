//! A deployment's record: its state in ARM's deploymentStatus vocabulary, Kudu's status number,
//! times, runtime and start command. Saved as `deployment.json` in the deployment's folder.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a deployment is, in ARM's deploymentStatus words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeploymentState {
    /// The zip is stored and unpacked; the build has not started.
    BuildRequestReceived,
    /// Resolving the runtime, installing dependencies, finding the start command.
    BuildInProgress,
    /// Built; about to be started.
    BuildSuccessful,
    /// The build (or the runtime, or the start command) failed. Final.
    BuildFailed,
    /// The platform is starting the app.
    RuntimeStarting,
    /// The app listens and serves; it is the site's current deployment. Final.
    RuntimeSuccessful,
    /// The app crashed or did not listen; the previous deployment keeps serving. Final.
    RuntimeFailed,
}

impl DeploymentState {
    /// Whether the outcome is known.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeploymentState::BuildFailed
                | DeploymentState::RuntimeSuccessful
                | DeploymentState::RuntimeFailed
        )
    }

    /// Kudu's DeployStatus for this state.
    pub fn kudu_status(self) -> KuduStatus {
        match self {
            DeploymentState::BuildRequestReceived => KuduStatus::Pending,
            DeploymentState::BuildInProgress => KuduStatus::Building,
            DeploymentState::BuildSuccessful | DeploymentState::RuntimeStarting => {
                KuduStatus::Deploying
            }
            DeploymentState::BuildFailed | DeploymentState::RuntimeFailed => KuduStatus::Failed,
            DeploymentState::RuntimeSuccessful => KuduStatus::Success,
        }
    }

    /// The ARM spelling, e.g. `RuntimeSuccessful`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::BuildRequestReceived => "BuildRequestReceived",
            DeploymentState::BuildInProgress => "BuildInProgress",
            DeploymentState::BuildSuccessful => "BuildSuccessful",
            DeploymentState::BuildFailed => "BuildFailed",
            DeploymentState::RuntimeStarting => "RuntimeStarting",
            DeploymentState::RuntimeSuccessful => "RuntimeSuccessful",
            DeploymentState::RuntimeFailed => "RuntimeFailed",
        }
    }
}

impl std::fmt::Display for DeploymentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kudu's DeployStatus number (`status` in its JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KuduStatus {
    Pending = 0,
    Building = 1,
    Deploying = 2,
    Failed = 3,
    Success = 4,
}

impl KuduStatus {
    /// Kudu's wording (`status_text` while running).
    pub fn text(self) -> &'static str {
        match self {
            KuduStatus::Pending => "Pending",
            KuduStatus::Building => "Building",
            KuduStatus::Deploying => "Deploying",
            KuduStatus::Failed => "Failed",
            KuduStatus::Success => "Success",
        }
    }
}

/// How to start a built deployment. The platform runs `program` with `args` in `cwd`, with its
/// own environment, then [`StartCommand::environment`], then `PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartCommand {
    pub program: String,
    pub args: Vec<String>,
    /// The deployment's `site/` folder.
    pub cwd: PathBuf,
    /// Extra variables (e.g. `VIRTUAL_ENV`); `PATH` is built by [`StartCommand::environment`].
    pub env: BTreeMap<String, String>,
    /// Folders to put in front of `PATH` (e.g. the venv's `bin`).
    pub path_prepend: Vec<PathBuf>,
    /// The command as a person would type it, for logs.
    pub display: String,
}

impl StartCommand {
    /// `env` plus `PATH` = `path_prepend` + this process's `PATH` (computed now, so a restart
    /// of the platform under another `PATH` still finds the machine's tools).
    pub fn environment(&self) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        if !self.path_prepend.is_empty() {
            let mut parts: Vec<PathBuf> = self.path_prepend.clone();
            if let Some(path) = std::env::var_os("PATH") {
                parts.extend(std::env::split_paths(&path));
            }
            if let Ok(joined) = std::env::join_paths(parts) {
                env.insert("PATH".to_owned(), joined.to_string_lossy().into_owned());
            }
        }
        env
    }
}

/// A deployment ready to run: what [`crate::SiteHost::activate`] gets, and what the platform
/// restarts from after `easyauth up` restarts ([`crate::Kudu::current`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltDeployment {
    pub id: String,
    /// `<root>/deployments/<id>`.
    pub dir: PathBuf,
    /// `<root>/deployments/<id>/site`: the app's files.
    pub site_dir: PathBuf,
    pub start: StartCommand,
}

/// One deployment's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The real id (32 hex digits).
    pub id: String,
    /// `temp-<8 hex>`: what `/api/deployments/latest` reports until the outcome is known.
    pub temp_id: String,
    pub state: DeploymentState,
    /// Why it failed (BuildFailed/RuntimeFailed), with the last lines of output.
    pub error: Option<String>,
    /// What it is doing now, e.g. `Running npm install`.
    pub progress: String,
    /// Kudu's `message`.
    pub message: String,
    /// Kudu's `author` and `deployer`.
    pub author: String,
    pub deployer: String,
    /// Unix milliseconds.
    pub received_ms: i64,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// The zip's size and sha256 (hex).
    pub zip_bytes: u64,
    pub zip_sha256: String,
    /// What the site asked for (`NODE|20-lts`) and what runs (`node v20.20.2`).
    pub runtime_requested: Option<String>,
    pub runtime_actual: Option<String>,
    /// Whether the Oryx-like build ran (`SCM_DO_BUILD_DURING_DEPLOYMENT`).
    pub build: bool,
    pub start_command: Option<StartCommand>,
}

impl Deployment {
    /// The id to show now: the temp id while the outcome is unknown and `window` has not passed
    /// since the zip was received, else the real one.
    pub fn reported_id(&self, window: Duration, now_ms: i64) -> &str {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        if self.state.is_final() || now_ms.saturating_sub(self.received_ms) >= window_ms {
            &self.id
        } else {
            &self.temp_id
        }
    }

    /// Whether `id` names this deployment (its real or its temp id).
    pub fn is_named(&self, id: &str) -> bool {
        self.id.eq_ignore_ascii_case(id) || self.temp_id.eq_ignore_ascii_case(id)
    }
}

pub(crate) fn now_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

/// Kudu's time format, e.g. `2024-05-01T10:00:00.1230000Z`.
pub(crate) fn format_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format_time(t)
}

pub(crate) fn format_time(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z"
    );
    t.format(&f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_map_to_kudu_numbers() {
        assert_eq!(DeploymentState::BuildRequestReceived.kudu_status() as u8, 0);
        assert_eq!(DeploymentState::BuildInProgress.kudu_status() as u8, 1);
        assert_eq!(DeploymentState::RuntimeStarting.kudu_status() as u8, 2);
        assert_eq!(DeploymentState::BuildFailed.kudu_status() as u8, 3);
        assert_eq!(DeploymentState::RuntimeFailed.kudu_status() as u8, 3);
        assert_eq!(DeploymentState::RuntimeSuccessful.kudu_status() as u8, 4);
        assert_eq!(
            serde_json::to_string(&DeploymentState::RuntimeSuccessful).expect("json"),
            "\"RuntimeSuccessful\""
        );
    }

    #[test]
    fn times_look_like_kudus() {
        assert_eq!(format_ms(1_714_557_600_123), "2024-05-01T10:00:00.1230000Z");
    }

    #[test]
    fn temp_id_until_outcome_or_window() {
        let mut d = Deployment {
            id: "abc".into(),
            temp_id: "temp-1234abcd".into(),
            state: DeploymentState::BuildInProgress,
            error: None,
            progress: String::new(),
            message: String::new(),
            author: String::new(),
            deployer: String::new(),
            received_ms: 1000,
            start_ms: None,
            end_ms: None,
            zip_bytes: 0,
            zip_sha256: String::new(),
            runtime_requested: None,
            runtime_actual: None,
            build: false,
            start_command: None,
        };
        let w = Duration::from_secs(50);
        assert_eq!(d.reported_id(w, 1000 + 49_999), "temp-1234abcd");
        assert_eq!(d.reported_id(w, 1000 + 50_000), "abc");
        d.state = DeploymentState::BuildFailed;
        assert_eq!(d.reported_id(w, 1001), "abc");
        assert!(d.is_named("TEMP-1234ABCD") && d.is_named("abc"));
    }
}
