//! `platform.json` in the data dir: where a running `up` can be reached (its Resource Manager,
//! identity provider and apps) and the credentials of the platform's own service principal,
//! which `easyauth webapp` and `easyauth az` sign in with. Owner-only (0600): it holds secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const STATE_FILE: &str = "platform.json";

/// The running platform, as other processes (the `webapp` commands, tests) find it.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlatformState {
    /// The `up` process.
    pub pid: u32,
    /// `https://127.0.0.1:<port>`: the local Azure Resource Manager.
    pub arm_url: String,
    /// The local portal's URL.
    #[serde(default)]
    pub portal_url: String,
    pub subscription_id: String,
    /// The platform's service principal (client credentials for the management resource).
    pub client_id: String,
    pub client_secret: String,
    /// The identity provider's base URL (`https://127.0.0.1:<port>`).
    pub idp_url: String,
    pub tenant_id: String,
    /// `<idp_url>/<tenant_id>/v2.0`
    pub issuer: String,
    /// The local CA's certificate (PEM) that the identity provider's certificate chains to.
    pub ca_file: PathBuf,
    /// By app name (`webapp list` gives them in site order).
    pub apps: BTreeMap<String, AppState>,
    /// The demo user, when the built-in demo tenant is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demo_user: Option<DemoUser>,
}

impl std::fmt::Debug for PlatformState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformState")
            .field("pid", &self.pid)
            .field("arm_url", &self.arm_url)
            .field("idp_url", &self.idp_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("apps", &self.apps)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AppState {
    /// The app's public origin (behind its authentication module), e.g. `http://127.0.0.2:8080`.
    pub url: String,
    /// Where the app itself listens (`http://127.0.0.1:<PORT>`) or the upstream URL.
    pub upstream: String,
    /// Its SCM (Kudu) endpoint, `https://127.0.0.N:<port>`.
    #[serde(default)]
    pub scm_url: String,
    #[serde(default)]
    pub resource_group: String,
    /// The app registration's client id, when the app signs in with Entra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DemoUser {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for DemoUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoUser")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "no running `easyauth up` found: {path} does not exist (start `easyauth up`, or pass the same --data-dir it uses)"
    )]
    NotRunning { path: PathBuf },
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error("{path}: cannot write: {message}")]
    Write { path: PathBuf, message: String },
}

impl PlatformState {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(STATE_FILE)
    }

    pub fn read(data_dir: &Path) -> Result<PlatformState, StateError> {
        let path = Self::path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotRunning { path });
            }
            Err(e) => {
                return Err(StateError::Unreadable {
                    path,
                    message: e.to_string(),
                });
            }
        };
        serde_json::from_str(&text).map_err(|e| StateError::Unreadable {
            path,
            message: e.to_string(),
        })
    }

    /// Writes atomically (temporary file + rename) so a reader never sees half a file.
    pub fn write(&self, data_dir: &Path) -> Result<(), StateError> {
        let path = Self::path(data_dir);
        let tmp = data_dir.join(format!("{STATE_FILE}.tmp"));
        let err = |e: std::io::Error| StateError::Write {
            path: path.clone(),
            message: e.to_string(),
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| StateError::Write {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // Owner-only: it names the demo user's password.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(err)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(err)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(err)
    }

    /// Removes the state file when `up` stops (only if it is still ours).
    pub fn remove(data_dir: &Path, pid: u32) {
        if let Ok(state) = Self::read(data_dir)
            && state.pid == pid
        {
            let _ = std::fs::remove_file(Self::path(data_dir));
        }
    }
}
