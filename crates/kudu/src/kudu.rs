//! [`Kudu`]: one site's deployments. Receiving and checking a zip happens in the caller's
//! request; building and starting run in a background task that holds the site's deployment
//! lock until the outcome is recorded.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedMutexGuard, watch};

use crate::build::{self, BuildContext};
use crate::config;
use crate::deployment::{BuiltDeployment, Deployment, DeploymentState, StartCommand, now_ms};
use crate::detect;
use crate::log::{self, DeployLog};
use crate::runtime::Runtime;
use crate::unzip;
use crate::{Limits, SiteHost, deployment_dir};

const RECORD: &str = "deployment.json";
const LOG: &str = "log.txt";
const CURRENT: &str = "current";
const STAGING_PREFIX: &str = ".staging-";

/// Why a deployment was not accepted. `Display` is the message for the client.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Another deployment of the site is running (409).
    #[error("There is a deployment currently in progress. Please try again when it completes.")]
    Conflict,
    /// The body passed [`Limits::max_zip_bytes`] (413).
    #[error("the zip is larger than {limit} bytes, the limit for a deployment")]
    TooLarge { limit: u64 },
    /// `x-ms-artifact-checksum` does not match the body (400).
    #[error(
        "the x-ms-artifact-checksum header does not match the body: the header says {expected}, the body's SHA-256 is {actual}"
    )]
    ChecksumMismatch { expected: String, actual: String },
    /// The zip was refused: not a zip, unsafe entry names or links, too big unpacked (400).
    #[error("{0}")]
    BadZip(String),
    /// The body could not be read (the client went away) (400).
    #[error("cannot receive the zip: {0}")]
    Receive(String),
    /// Our side could not store it (500).
    #[error("cannot store the deployment: {0}")]
    Io(#[from] io::Error),
}

impl DeployError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            DeployError::Conflict => 409,
            DeployError::TooLarge { .. } => 413,
            DeployError::ChecksumMismatch { .. }
            | DeployError::BadZip(_)
            | DeployError::Receive(_) => 400,
            DeployError::Io(_) => 500,
        }
    }
}

/// One site's deployments. Create with [`Kudu::open`]; serve with [`crate::router`].
pub struct Kudu {
    site: Arc<dyn SiteHost>,
    root: PathBuf,
    limits: Limits,
    /// Held from the first byte of an upload to the recorded outcome.
    lock: Arc<tokio::sync::Mutex<()>>,
    state: Mutex<State>,
    changed: watch::Sender<u64>,
}

impl std::fmt::Debug for Kudu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kudu")
            .field("site", &self.site.site_name())
            .field("root", &self.root)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    /// Oldest first.
    records: Vec<Deployment>,
    current: Option<String>,
}

impl Kudu {
    /// Opens the site's folder `root` (created if missing): loads the records, marks deployments
    /// that were running when the platform stopped as failed ("interrupted"), and removes
    /// half-received uploads.
    pub async fn open(
        site: Arc<dyn SiteHost>,
        root: PathBuf,
        limits: Limits,
    ) -> io::Result<Arc<Kudu>> {
        let dir = root.clone();
        let state = tokio::task::spawn_blocking(move || load(&dir))
            .await
            .map_err(io::Error::other)??;
        Ok(Arc::new(Kudu {
            site,
            root,
            limits,
            lock: Arc::new(tokio::sync::Mutex::new(())),
            state: Mutex::new(state),
            changed: watch::channel(0).0,
        }))
    }

    /// The site folder this Kudu keeps its deployments in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn site(&self) -> &Arc<dyn SiteHost> {
        &self.site
    }

    /// Every deployment, newest first.
    pub fn deployments(&self) -> Vec<Deployment> {
        let state = self.state();
        state.records.iter().rev().cloned().collect()
    }

    /// The deployment named `id` (its real or its temp id).
    pub fn deployment(&self, id: &str) -> Option<Deployment> {
        self.state()
            .records
            .iter()
            .rev()
            .find(|d| d.is_named(id))
            .cloned()
    }

    /// The newest deployment.
    pub fn latest(&self) -> Option<Deployment> {
        self.state().records.last().cloned()
    }

    /// The id of the deployment that serves, if any.
    pub fn current_id(&self) -> Option<String> {
        self.state().current.clone()
    }

    /// The deployment that serves: what the platform starts after a restart.
    pub fn current(&self) -> Option<BuiltDeployment> {
        let state = self.state();
        let id = state.current.as_deref()?;
        let d = state.records.iter().find(|d| d.id == id)?;
        built(&self.root, d)
    }

    /// Ticks on every change of any record (state, progress, current): a cheap way to follow
    /// deployments without polling.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Whether a deployment is being received, built or started now.
    pub fn is_deploying(&self) -> bool {
        self.lock.try_lock().is_err()
    }

    /// The whole log of deployment `id` as text (one timestamped line per event).
    pub async fn log_text(&self, id: &str) -> Option<String> {
        let d = self.deployment(id)?;
        let path = deployment_dir(&self.root, &d.id).join(LOG);
        Some(tokio::fs::read_to_string(path).await.unwrap_or_default())
    }

    /// The log as Kudu's entries, each with the command output under it.
    pub(crate) async fn log_steps(&self, id: &str) -> Option<(Deployment, Vec<log::Step>)> {
        let text = self.log_text(id).await?;
        let d = self.deployment(id)?;
        Some((d, log::parse(&text)))
    }

    /// Waits until deployment `id` has an outcome (at most `timeout`); its record then.
    pub async fn wait(&self, id: &str, timeout: Duration) -> Option<Deployment> {
        let mut changes = self.changed.subscribe();
        let wait = async {
            loop {
                let d = self.deployment(id)?;
                if d.state.is_final() {
                    return Some(d);
                }
                if changes.changed().await.is_err() {
                    return self.deployment(id);
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(d) => d,
            Err(_) => self.deployment(id),
        }
    }

    /// Deploys `zip` and waits for the outcome: for tests and for seeding a site. The wait is
    /// bounded by the build and activation timeouts in [`Limits`].
    pub async fn deploy_zip(self: &Arc<Self>, zip: Vec<u8>) -> Result<Deployment, DeployError> {
        let accepted = self.start_deploy(Body::from(zip), None, None).await?;
        let bound = self
            .limits
            .build_timeout
            .saturating_mul(4)
            .saturating_add(self.limits.activate_timeout)
            .saturating_add(Duration::from_secs(60));
        Ok(self.wait(&accepted.id, bound).await.unwrap_or(accepted))
    }

    /// Receives a zip body, checks it (size as it streams, checksum, entries) and unpacks it into
    /// a new deployment, then builds and starts it in the background. Returns the new record
    /// (BuildRequestReceived) once the zip is safely unpacked: what 202 Accepted means.
    pub async fn start_deploy(
        self: &Arc<Self>,
        body: Body,
        checksum: Option<String>,
        content_length: Option<u64>,
    ) -> Result<Deployment, DeployError> {
        let guard = Arc::clone(&self.lock)
            .try_lock_owned()
            .map_err(|_| DeployError::Conflict)?;
        if content_length.is_some_and(|n| n > self.limits.max_zip_bytes) {
            return Err(DeployError::TooLarge {
                limit: self.limits.max_zip_bytes,
            });
        }
        let deployments = self.root.join("deployments");
        tokio::fs::create_dir_all(&deployments).await?;
        // Holding the lock, any staging folder is from an upload that was cut off.
        remove_staging(&deployments).await;
        let temp_id = format!("temp-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let staging = deployments.join(format!("{STAGING_PREFIX}{temp_id}"));
        tokio::fs::create_dir(&staging).await?;
        // Removes the staging folder on every way out, including the client going away (the
        // request's future is then dropped mid-upload).
        let mut cleanup = StagingCleanup(Some(staging.clone()));
        let received = self.receive(&staging, body, checksum.as_deref()).await;
        let (zip_bytes, zip_sha256, unpacked) = match received {
            Ok(r) => r,
            Err(err) => {
                // Gone before the answer, so the client never sees a trace of a refused zip.
                cleanup.0 = None;
                let _ = tokio::fs::remove_dir_all(&staging).await;
                tracing::warn!(site = %self.site.site_name(), %err, "zip deployment refused");
                return Err(err);
            }
        };
        let _ = tokio::fs::remove_file(staging.join("upload.zip")).await;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = deployment_dir(&self.root, &id);
        tokio::fs::rename(&staging, &dir).await?;
        cleanup.0 = None;
        let record = Deployment {
            id: id.clone(),
            temp_id,
            state: DeploymentState::BuildRequestReceived,
            error: None,
            progress: "Received the zip".to_owned(),
            message: "Created via a push deployment".to_owned(),
            author: "N/A".to_owned(),
            deployer: "ZipDeploy".to_owned(),
            received_ms: now_ms(),
            start_ms: None,
            end_ms: None,
            zip_bytes,
            zip_sha256: zip_sha256.clone(),
            runtime_requested: None,
            runtime_actual: None,
            build: false,
            start_command: None,
        };
        save_record(&dir, &record).await?;
        let log = DeployLog::create(&dir.join(LOG), &self.site.site_name()).await?;
        log.info(&format!(
            "Received a zip of {zip_bytes} bytes (SHA-256 {zip_sha256}); unpacked: {} files, {} bytes",
            unpacked.files, unpacked.bytes
        ))
        .await;
        {
            let mut state = self.state();
            state.records.push(record.clone());
        }
        self.changed.send_modify(|n| *n += 1);
        let kudu = Arc::clone(self);
        tokio::spawn(async move { kudu.run(id, log, guard).await });
        Ok(record)
    }

    /// Streams the body into `staging/upload.zip` (counting, hashing), checks the checksum,
    /// then unpacks into `staging/site` on the blocking pool.
    async fn receive(
        &self,
        staging: &Path,
        mut body: Body,
        checksum: Option<&str>,
    ) -> Result<(u64, String, unzip::Unpacked), DeployError> {
        let limit = self.limits.max_zip_bytes;
        let zip_path = staging.join("upload.zip");
        let mut file = tokio::fs::File::create(&zip_path).await?;
        let mut hasher = Sha256::new();
        let mut total: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| DeployError::Receive(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total = total.saturating_add(data.len() as u64);
            if total > limit {
                return Err(DeployError::TooLarge { limit });
            }
            hasher.update(&data);
            file.write_all(&data).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        let digest = hasher.finalize();
        let hex = hex(&digest);
        if let Some(expected) = checksum.map(str::trim).filter(|c| !c.is_empty())
            && !checksum_matches(expected, &digest)
        {
            return Err(DeployError::ChecksumMismatch {
                expected: expected.to_owned(),
                actual: hex,
            });
        }
        let limits = self.limits;
        let dest = staging.join("site");
        let unpacked =
            tokio::task::spawn_blocking(move || unzip::unpack(&zip_path, &dest, &limits))
                .await
                .map_err(io::Error::other)?
                .map_err(|refused| DeployError::BadZip(refused.0))?;
        Ok((total, hex, unpacked))
    }

    /// Build, start, record, prune. Holds `guard` (the site's lock) until all that is done and
    /// the outcome is in memory, so that whoever sees it final can deploy again at once.
    async fn run(self: Arc<Self>, id: String, log: DeployLog, guard: OwnedMutexGuard<()>) {
        let dir = deployment_dir(&self.root, &id);
        let site_dir = dir.join("site");
        // On a task of its own so that a panic (in the platform's activate, say) still ends in
        // a recorded failure and a released lock.
        let log = Arc::new(log);
        let task = {
            let (kudu, id, site_dir, log) = (
                Arc::clone(&self),
                id.clone(),
                site_dir.clone(),
                Arc::clone(&log),
            );
            tokio::spawn(async move { kudu.build_and_start(&id, &site_dir, &log).await })
        };
        let outcome = match task.await {
            Ok(outcome) => outcome,
            Err(err) => {
                let state = match self.deployment(&id).map(|d| d.state) {
                    Some(DeploymentState::RuntimeStarting) => DeploymentState::RuntimeFailed,
                    _ => DeploymentState::BuildFailed,
                };
                Err((
                    state,
                    format!("internal error: the deployment task failed ({err})"),
                ))
            }
        };
        let (state, error) = match outcome {
            Ok(()) => {
                log.info("Deployment successful: the app is running").await;
                (DeploymentState::RuntimeSuccessful, None)
            }
            Err((state, message)) => {
                log.error(&format!("{state}: {message}")).await;
                (state, Some(message))
            }
        };
        let succeeded = state == DeploymentState::RuntimeSuccessful;
        if succeeded && let Err(err) = write_current(&self.root, &id).await {
            tracing::error!(site = %self.site.site_name(), %err, "cannot record the current deployment; it serves, but a restart of the platform will not know it");
        }
        // Everything on disk first (record, pruned folders), then the outcome in memory and the
        // lock released together: whoever sees the outcome can deploy again at once, and no
        // file is touched after that.
        let snapshot = self.deployment(&id).map(|mut d| {
            d.state = state;
            d.error = error;
            d.end_ms = Some(now_ms());
            d.progress = state.as_str().to_owned();
            d
        });
        if let Some(snapshot) = &snapshot
            && let Err(err) = save_record(&dir, snapshot).await
        {
            tracing::warn!(site = %self.site.site_name(), %err, "cannot save the deployment record");
        }
        let doomed = {
            let s = self.state();
            let current = if succeeded {
                Some(id.as_str())
            } else {
                s.current.as_deref()
            };
            doomed(&s.records, current, self.limits.keep_deployments, &id)
        };
        for old in &doomed {
            let dir = deployment_dir(&self.root, old);
            if let Err(err) = tokio::fs::remove_dir_all(&dir).await {
                tracing::warn!(site = %self.site.site_name(), %err, dir = %dir.display(), "cannot remove an old deployment");
            }
        }
        {
            let mut s = self.state();
            if succeeded {
                s.current = Some(id.clone());
            }
            if let Some(snapshot) = snapshot
                && let Some(d) = s.records.iter_mut().find(|d| d.id == id)
            {
                *d = snapshot;
            }
            s.records.retain(|d| !doomed.contains(&d.id));
        }
        drop(guard);
        self.changed.send_modify(|n| *n += 1);
    }

    async fn build_and_start(
        &self,
        id: &str,
        site_dir: &Path,
        log: &DeployLog,
    ) -> Result<(), (DeploymentState, String)> {
        use DeploymentState::{BuildFailed, RuntimeFailed};
        let failed = |m: String| (BuildFailed, m);
        self.update(id, |d| {
            d.state = DeploymentState::BuildInProgress;
            d.start_ms = Some(now_ms());
            d.progress = "Building".to_owned();
        })
        .await;
        let config = self.site.site_config().await;
        let runtime = Runtime::resolve(&config, site_dir).map_err(failed)?;
        let env = build::build_env(&config.app_settings);
        let ctx = BuildContext {
            log,
            site_dir,
            env: &env,
            timeout: self.limits.build_timeout,
        };
        let actual = build::machine_version(&ctx, runtime.stack)
            .await
            .map_err(|e| {
                failed(format!(
                    "the machine has no usable {}: {e}",
                    runtime.stack.program()
                ))
            })?;
        let actual = format!("{} {actual}", runtime.stack.program());
        log.info(&format!(
            "Runtime: {} asked for ({}); {actual} runs it (every {} version runs on the machine's {})",
            runtime.describe(),
            runtime.source,
            match runtime.stack {
                crate::Stack::Node => "NODE",
                crate::Stack::Python => "PYTHON",
            },
            runtime.stack.program(),
        ))
        .await;
        if let Some(v) = &runtime.version
            && !build::version_matches(v, &actual)
        {
            log.warn(&format!(
                "The site asks for version {v}, the machine has {actual}: running on it anyway"
            ))
            .await;
        }
        let deployment_file = match tokio::fs::read_to_string(site_dir.join(".deployment")).await {
            Ok(text) => Some(config::parse_deployment_file(&text)),
            Err(_) => None,
        };
        if let Some(command) = deployment_file.as_ref().and_then(|f| f.get("COMMAND")) {
            log.warn(&format!(
                ".deployment asks for a custom deployment script (command = {command}); it is not supported here and is ignored"
            ))
            .await;
        }
        let decision = config::decide(&config.app_settings, deployment_file.as_ref());
        self.update(id, |d| {
            d.runtime_requested = Some(runtime.describe());
            d.runtime_actual = Some(actual.clone());
            d.build = decision.build;
        })
        .await;
        if decision.build {
            log.info(&format!("Building the app ({})", decision.source))
                .await;
            self.update(id, |d| d.progress = "Building the app".to_owned())
                .await;
            build::build(&ctx, runtime.stack).await.map_err(failed)?;
        } else {
            log.info(&format!(
                "Skipping the build ({}): the zip must carry its dependencies",
                decision.source
            ))
            .await;
        }
        let start: StartCommand = {
            // It reads package.json and lists folders: off the async threads.
            let (stack, dir, line) = (
                runtime.stack,
                site_dir.to_owned(),
                config.app_command_line.clone(),
            );
            tokio::task::spawn_blocking(move || detect::start_command(stack, &dir, line.as_deref()))
                .await
                .map_err(|e| failed(format!("internal error: {e}")))?
                .map_err(failed)?
        };
        log.info(&format!("Start command: {}", start.display)).await;
        self.update(id, |d| {
            d.state = DeploymentState::BuildSuccessful;
            d.start_command = Some(start.clone());
        })
        .await;
        self.update(id, |d| {
            d.state = DeploymentState::RuntimeStarting;
            d.progress = "Starting the app".to_owned();
        })
        .await;
        log.info("Starting the app").await;
        let built = BuiltDeployment {
            id: id.to_owned(),
            dir: deployment_dir(&self.root, id),
            site_dir: site_dir.to_owned(),
            start,
        };
        match tokio::time::timeout(self.limits.activate_timeout, self.site.activate(&built)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err((RuntimeFailed, message)),
            Err(_) => Err((
                RuntimeFailed,
                format!(
                    "the app did not start within {} s",
                    self.limits.activate_timeout.as_secs()
                ),
            )),
        }
    }

    /// Changes a record in memory and on disk, and wakes waiters.
    async fn update(&self, id: &str, change: impl FnOnce(&mut Deployment)) {
        let snapshot = {
            let mut state = self.state();
            let Some(d) = state.records.iter_mut().find(|d| d.id == id) else {
                return;
            };
            change(d);
            d.clone()
        };
        let dir = deployment_dir(&self.root, id);
        if let Err(err) = save_record(&dir, &snapshot).await {
            tracing::warn!(site = %self.site.site_name(), %err, "cannot save the deployment record");
        }
        self.changed.send_modify(|n| *n += 1);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; keep serving it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The deployments to remove: all but the newest `keep` (at least 1), the current one and any
/// still running (`finishing` counts as finished).
fn doomed(
    records: &[Deployment],
    current: Option<&str>,
    keep: usize,
    finishing: &str,
) -> Vec<String> {
    let keep = keep.max(1);
    let n = records.len();
    records
        .iter()
        .enumerate()
        .filter(|(i, d)| {
            n - i > keep
                && Some(d.id.as_str()) != current
                && (d.state.is_final() || d.id == finishing)
        })
        .map(|(_, d)| d.id.clone())
        .collect()
}

/// Removes a staging folder when dropped (on the blocking pool when there is a runtime).
struct StagingCleanup(Option<PathBuf>);

impl Drop for StagingCleanup {
    fn drop(&mut self) {
        let Some(path) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || std::fs::remove_dir_all(&path));
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

/// Removes every `.staging-*` folder in `deployments`.
async fn remove_staging(deployments: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(deployments).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(STAGING_PREFIX)
        {
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

/// The deployment that serves in the site folder `root`, read from disk: what the platform
/// starts after `easyauth up` restarts, without opening a [`Kudu`].
pub fn current_deployment(root: &Path) -> io::Result<Option<BuiltDeployment>> {
    let Some(id) = read_current(root)? else {
        return Ok(None);
    };
    let dir = deployment_dir(root, &id);
    let record: Deployment = match std::fs::read(dir.join(RECORD)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(built(root, &record))
}

fn built(root: &Path, d: &Deployment) -> Option<BuiltDeployment> {
    let dir = deployment_dir(root, &d.id);
    Some(BuiltDeployment {
        id: d.id.clone(),
        site_dir: dir.join("site"),
        dir,
        start: d.start_command.clone()?,
    })
}

fn read_current(root: &Path) -> io::Result<Option<String>> {
    match std::fs::read_to_string(root.join(CURRENT)) {
        Ok(text) => {
            let id = text.trim();
            // Only a plain id: the file names a folder below `deployments/`.
            Ok(
                (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()))
                    .then(|| id.to_owned()),
            )
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the records (blocking; at open).
fn load(root: &Path) -> io::Result<State> {
    let deployments = root.join("deployments");
    std::fs::create_dir_all(&deployments)?;
    let mut records = Vec::new();
    for entry in std::fs::read_dir(&deployments)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(STAGING_PREFIX) {
            // An upload that was being received when the platform stopped.
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        let Ok(bytes) = std::fs::read(path.join(RECORD)) else {
            continue;
        };
        let mut record: Deployment = match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "ignoring an unreadable deployment record");
                continue;
            }
        };
        if record.id != name {
            continue;
        }
        if !record.state.is_final() {
            record.state = if record.state == DeploymentState::RuntimeStarting {
                DeploymentState::RuntimeFailed
            } else {
                DeploymentState::BuildFailed
            };
            record.error =
                Some("interrupted: the platform stopped during the deployment".to_owned());
            record.end_ms = Some(now_ms());
            record.progress = record.state.as_str().to_owned();
            let json = serde_json::to_vec_pretty(&record).map_err(io::Error::other)?;
            std::fs::write(path.join(RECORD), json)?;
        }
        records.push(record);
    }
    records.sort_by_key(|d| d.received_ms);
    let current = read_current(root)?.filter(|id| {
        records
            .iter()
            .any(|d| &d.id == id && d.state == DeploymentState::RuntimeSuccessful)
    });
    Ok(State { records, current })
}

async fn save_record(dir: &Path, record: &Deployment) -> io::Result<()> {
    let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
    write_atomic(&dir.join(RECORD), &json).await
}

async fn write_current(root: &Path, id: &str) -> io::Result<()> {
    write_atomic(&root.join(CURRENT), format!("{id}\n").as_bytes()).await
}

/// Write to a temporary file, then rename: a crash leaves the old or the new file, never half.
async fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `expected` as hex (any case) or base64 of the SHA-256.
fn checksum_matches(expected: &str, digest: &[u8]) -> bool {
    use base64::Engine;
    if expected.eq_ignore_ascii_case(&hex(digest)) {
        return true;
    }
    base64::engine::general_purpose::STANDARD
        .decode(expected)
        .is_ok_and(|b| b == digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_forms() {
        let digest = Sha256::digest(b"abc");
        let h = hex(&digest);
        assert!(checksum_matches(&h, &digest));
        assert!(checksum_matches(&h.to_uppercase(), &digest));
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(digest);
        assert!(checksum_matches(&b, &digest));
        assert!(!checksum_matches("00", &digest));
    }
}
