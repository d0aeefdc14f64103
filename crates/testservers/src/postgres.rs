//! A private PostgreSQL server (Debian package `postgresql`) on a free loopback port.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs to the
//! `postgres` system user the Debian package creates, and `initdb`/`postgres` are started through
//! `setpriv` (which execs, so the handle's process is the postmaster itself and killing it never
//! leaves an orphan behind).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{Running, ServerError, free_port};

/// A private PostgreSQL cluster: `initdb` into a temporary folder, the server listening on
/// `127.0.0.1:<port>` only, trust authentication for the `postgres` role. The data stays in the
/// folder across [`stop`](PostgresServer::stop) and [`restart`](PostgresServer::restart).
#[derive(Debug)]
pub struct PostgresServer {
    port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    /// Started with a parent-death signal (see [`PostgresServer::shared`]).
    die_with_parent: bool,
    running: Option<Running>,
}

/// The folder holding `initdb`, `postgres` and `psql`: Debian's newest version first.
fn bin_dir() -> Result<PathBuf, ServerError> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|p| p.join("initdb").is_file() && p.join("postgres").is_file())
                .collect()
        })
        .unwrap_or_default();
    // Numeric order, so 9.6 < 15 < 16.
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.split('.').next())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(newest) = versions.pop() {
        return Ok(newest);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
            return Ok(dir);
        }
    }
    Err(ServerError(
        "`initdb` and `postgres` are not installed: install the Debian package `postgresql` \
         (cargo xtask test does)"
            .into(),
    ))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PostgresServer {
    /// Creates a new cluster and starts it.
    pub fn start() -> Result<PostgresServer, ServerError> {
        PostgresServer::start_with(false)
    }

    fn start_with(die_with_parent: bool) -> Result<PostgresServer, ServerError> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("easyauth-postgres-")
            .tempdir()
            .map_err(|e| ServerError(format!("cannot make a temporary folder: {e}")))?;
        let run_as = if running_as_root() {
            // The folder (data and socket) must belong to the user the server runs as.
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .map_err(|e| ServerError(format!("cannot run chown: {e}")))?;
            if !status.success() {
                return Err(ServerError(
                    "running as root, and the folder cannot be given to the `postgres` user \
                     (install the Debian package `postgresql`, which creates it)"
                        .into(),
                ));
            }
            Some("postgres".to_owned())
        } else {
            None
        };
        let server = PostgresServer {
            port: free_port(),
            dir,
            bin,
            run_as,
            die_with_parent,
            running: None,
        };
        server.initdb()?;
        let mut server = server;
        server.restart()?;
        Ok(server)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// `program` from the server's bin folder, as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.run_as.is_none() && !self.die_with_parent {
            return Command::new(program);
        }
        let mut cmd = Command::new("setpriv");
        if let Some(user) = &self.run_as {
            cmd.arg(format!("--reuid={user}"))
                .arg(format!("--regid={user}"))
                .arg("--init-groups");
            // root's HOME is not readable by postgres; psql and initdb look there.
            cmd.env("HOME", self.dir.path());
        }
        if self.die_with_parent {
            cmd.args(["--pdeathsig", "KILL"]);
        }
        cmd.arg("--").arg(program);
        cmd
    }

    /// One server for a whole test binary, started on first use. Statics are never dropped, so
    /// it is started from a thread that lives as long as the process, with a parent-death
    /// signal: the server dies with the test binary. (Its temporary folder stays behind.)
    pub fn shared() -> Result<&'static PostgresServer, ServerError> {
        static SHARED: std::sync::OnceLock<Result<PostgresServer, String>> =
            std::sync::OnceLock::new();
        let started = SHARED.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("postgres-owner".into())
                .spawn(move || {
                    let result = PostgresServer::start_with(true).map_err(|e| e.0);
                    let _ = tx.send(result);
                    // The parent-death signal follows the thread that forked: keep it alive.
                    loop {
                        std::thread::park();
                    }
                });
            match spawned {
                Ok(_) => rx
                    .recv()
                    .unwrap_or_else(|_| Err("the server's thread ended".into())),
                Err(e) => Err(format!("cannot start a thread: {e}")),
            }
        });
        started.as_ref().map_err(|e| ServerError(e.clone()))
    }

    fn initdb(&self) -> Result<(), ServerError> {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .args(["--locale", "C"])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| ServerError(format!("cannot run initdb: {e}")))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(ServerError(format!(
                "initdb failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of database `name` on this server.
    pub fn url_for(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's log file (kept in its folder).
    pub fn log_file(&self) -> PathBuf {
        self.log_path()
    }

    /// Creates database `name` (letters, digits and `_` only) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, ServerError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ServerError(format!("not a plain database name: {name:?}")));
        }
        let output = self
            .command("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"])
            .args(["-c", &format!("CREATE DATABASE {name}")])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| ServerError(format!("cannot run psql: {e}")))?;
        if output.status.success() {
            Ok(self.url_for(name))
        } else {
            Err(ServerError(format!(
                "CREATE DATABASE {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// Stops the server with a fast shutdown (SIGINT: open connections are closed, the data is
    /// kept), falling back to SIGKILL if it does not exit within 10 s.
    pub fn stop(&mut self) {
        if let Some(mut running) = self.running.take() {
            if let Some(pid) = running.pid() {
                let _ = Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    if running.exited() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
            }
            running.kill();
        }
    }

    /// Starts it (again) on the same port with the same data.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.stop();
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-k")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off"])
            .args(["-c", "full_page_writes=off"])
            .args(["-c", "max_connections=200"])
            .current_dir(self.dir.path());
        let mut running = Running::spawn(cmd, &self.log_path())?;
        running.wait_listening(self.port, Duration::from_secs(30))?;
        self.wait_ready(&mut running)?;
        self.running = Some(running);
        Ok(())
    }

    /// The port opens before the server accepts sessions (it may still be recovering); wait until
    /// `psql` gets in.
    fn wait_ready(&self, running: &mut Running) -> Result<(), ServerError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self
                .command("psql")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres", "-d", "postgres", "-c", "SELECT 1"])
                .current_dir(self.dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if running.exited() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                return Err(ServerError(format!(
                    "PostgreSQL did not accept sessions; its log:\n{log}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The folder holding the cluster.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}
