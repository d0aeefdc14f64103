//! `redis-server` (Debian package `redis-server`) on a free loopback port.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::{Running, ServerError, find_binary, free_port};

/// A private `redis-server`: append-only persistence in its own folder, so a stop and a start on
/// the same port keep the data (as a production Redis with persistence does).
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
    tls: Option<RedisTls>,
    running: Option<Running>,
}

/// PEM files for a TLS-only server (`rediss://`; clients are not asked for certificates).
#[derive(Debug, Clone)]
pub struct RedisTls {
    /// The server's certificate chain.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA that issued it.
    pub ca: PathBuf,
}

impl RedisServer {
    /// Starts a new server.
    pub fn start() -> Result<RedisServer, ServerError> {
        RedisServer::launch(None)
    }

    /// Starts a new server that speaks only TLS.
    pub fn start_tls(tls: RedisTls) -> Result<RedisServer, ServerError> {
        RedisServer::launch(Some(tls))
    }

    fn launch(tls: Option<RedisTls>) -> Result<RedisServer, ServerError> {
        let binary = find_binary("redis-server", &["/usr/bin/redis-server"], "redis-server")?;
        let dir = tempfile::Builder::new()
            .prefix("easyauth-redis-")
            .tempdir()
            .map_err(|e| ServerError(format!("cannot make a temporary folder: {e}")))?;
        let mut server = RedisServer {
            port: free_port(),
            dir,
            binary,
            tls,
            running: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>/`, or `rediss://localhost:<port>/` with TLS.
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://localhost:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: no shutdown save beyond what the append-only file has).
    pub fn stop(&mut self) {
        if let Some(mut r) = self.running.take() {
            r.kill();
        }
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.stop();
        let mut cmd = Command::new(&self.binary);
        match &self.tls {
            Some(tls) => {
                cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                    .arg("--tls-cert-file")
                    .arg(&tls.cert)
                    .arg("--tls-key-file")
                    .arg(&tls.key)
                    .arg("--tls-ca-cert-file")
                    .arg(&tls.ca)
                    .args(["--tls-auth-clients", "no"]);
            }
            None => {
                cmd.args(["--port", &self.port.to_string()]);
            }
        }
        cmd.args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .args(["--protected-mode", "yes"]);
        let mut running = Running::spawn(cmd, &self.dir.path().join("redis.log"))?;
        running.wait_listening(self.port, Duration::from_secs(20))?;
        self.running = Some(running);
        Ok(())
    }
}
