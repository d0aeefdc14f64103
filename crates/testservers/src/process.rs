//! Starting a server process and waiting until it listens.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a test server could not be started.
#[derive(Debug)]
pub struct ServerError(pub String);

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

/// A port nothing listens on right now (the OS picks it; a race with another process taking it
/// in between shows up as the server failing to start, with its log).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// The first of `candidates` that is an executable file, else `name` on `PATH`.
pub(crate) fn find_binary(
    name: &str,
    candidates: &[&str],
    package: &str,
) -> Result<PathBuf, ServerError> {
    for c in candidates {
        let p = Path::new(c);
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(ServerError(format!(
        "`{name}` is not installed: install the Debian package `{package}` (cargo xtask test does)"
    )))
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub(crate) struct Running {
    child: Option<Child>,
    log: PathBuf,
}

impl Running {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(mut command: Command, log: &Path) -> Result<Running, ServerError> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| ServerError(format!("cannot open {}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| ServerError(format!("cannot open {}: {e}", log.display())))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| ServerError(format!("cannot start {command:?}: {e}")))?;
        Ok(Running {
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// Waits until `port` on loopback accepts connections, or fails with the server's log.
    pub(crate) fn wait_listening(
        &mut self,
        port: u16,
        within: Duration,
    ) -> Result<(), ServerError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + within;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(self.failed(&format!("exited with {status}")));
            }
            if Instant::now() > deadline {
                return Err(
                    self.failed(&format!("did not listen on port {port} within {within:?}"))
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn failed(&self, what: &str) -> ServerError {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        ServerError(format!("the server {what}; its log:\n{log}"))
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process has exited (reaping it if so).
    pub(crate) fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Kills the process now (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}
