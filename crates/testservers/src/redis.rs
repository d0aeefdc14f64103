//! `redis-server` (Debian package `redis-server`) on a free loopback port.

use std::path::{Path, PathBuf};
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
        let binary = redis_server()?;
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

/// Debian's `redis-server`.
fn redis_server() -> Result<PathBuf, ServerError> {
    find_binary("redis-server", &["/usr/bin/redis-server"], "redis-server")
}

/// A `redis-server` without persistence on loopback `port`, its files in `parent/name`, with
/// `extra` arguments; returns once it listens.
fn ephemeral_server(
    parent: &Path,
    name: &str,
    port: u16,
    extra: &[&str],
) -> Result<Running, ServerError> {
    let binary = redis_server()?;
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir)
        .map_err(|e| ServerError(format!("cannot make {}: {e}", dir.display())))?;
    let mut cmd = Command::new(binary);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(&dir)
        .args(["--save", "", "--appendonly", "no"])
        .args(extra);
    let mut running = Running::spawn(cmd, &dir.join("redis.log"))?;
    running.wait_listening(port, Duration::from_secs(20))?;
    Ok(running)
}

/// Runs `redis-cli -p <port> <args>` and returns what it printed.
fn cli(port: u16, args: &[&str]) -> Result<String, ServerError> {
    let binary = find_binary("redis-cli", &["/usr/bin/redis-cli"], "redis-tools")?;
    let out = Command::new(binary)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map_err(|e| ServerError(format!("redis-cli: {e}")))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(text)
    } else {
        Err(ServerError(format!("redis-cli {args:?}: {text}")))
    }
}

/// Polls `check` every 100 ms until it is true or `within` has passed.
fn wait_until(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> bool,
) -> Result<(), ServerError> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if check() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(ServerError(format!("{what} within {within:?}")))
}

/// A private Redis Cluster: `nodes` masters (no replicas), slots spread by `redis-cli --cluster
/// create`.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<(u16, Running)>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts the nodes and joins them into one cluster.
    pub fn start(nodes: usize) -> Result<RedisCluster, ServerError> {
        let dir = tempfile::Builder::new()
            .prefix("easyauth-redis-cluster-")
            .tempdir()
            .map_err(|e| ServerError(format!("cannot make a temporary folder: {e}")))?;
        let mut running = Vec::new();
        for i in 0..nodes {
            let port = free_port();
            let r = ephemeral_server(
                dir.path(),
                &format!("node{i}"),
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ],
            )?;
            running.push((port, r));
        }
        let addrs: Vec<String> = running
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect();
        let mut args: Vec<&str> = vec!["--cluster", "create"];
        args.extend(addrs.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        cli(running[0].0, &args)?;
        for (port, _) in &running {
            wait_until(Duration::from_secs(30), "the cluster was not ok", || {
                cli(*port, &["cluster", "info"]).is_ok_and(|t| t.contains("cluster_state:ok"))
            })?;
        }
        Ok(RedisCluster {
            nodes: running,
            _dir: dir,
        })
    }

    /// `redis+cluster://127.0.0.1:<port>,…/`
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}/", nodes.join(","))
    }

    /// The node ports.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(p, _)| *p).collect()
    }
}

/// A private master, one replica and one Sentinel watching them as `mymaster` (quorum 1).
#[derive(Debug)]
pub struct RedisSentinel {
    master: (u16, Running),
    replica: (u16, Running),
    sentinel: (u16, Running),
    _dir: tempfile::TempDir,
}

/// The name the Sentinel knows the master by.
pub const SENTINEL_MASTER: &str = "mymaster";

impl RedisSentinel {
    /// Starts the three servers and waits until the Sentinel sees the replica.
    pub fn start() -> Result<RedisSentinel, ServerError> {
        let dir = tempfile::Builder::new()
            .prefix("easyauth-redis-sentinel-")
            .tempdir()
            .map_err(|e| ServerError(format!("cannot make a temporary folder: {e}")))?;
        let master_port = free_port();
        let master = ephemeral_server(dir.path(), "master", master_port, &[])?;
        let replica_port = free_port();
        let master_port_text = master_port.to_string();
        let replica = ephemeral_server(
            dir.path(),
            "replica",
            replica_port,
            &["--replicaof", "127.0.0.1", &master_port_text],
        )?;
        let sentinel_port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
                 sentinel failover-timeout {SENTINEL_MASTER} 5000\n",
                dir.path().display()
            ),
        )
        .map_err(|e| ServerError(format!("cannot write {}: {e}", conf.display())))?;
        let binary = redis_server()?;
        let mut cmd = Command::new(binary);
        cmd.arg(&conf).arg("--sentinel");
        let mut sentinel = Running::spawn(cmd, &dir.path().join("sentinel.log"))?;
        sentinel.wait_listening(sentinel_port, Duration::from_secs(20))?;
        wait_until(Duration::from_secs(30), "the replica did not sync", || {
            cli(replica_port, &["info", "replication"])
                .is_ok_and(|t| t.contains("master_link_status:up"))
        })?;
        wait_until(
            Duration::from_secs(30),
            "the Sentinel did not see the replica",
            || {
                cli(sentinel_port, &["sentinel", "replicas", SENTINEL_MASTER])
                    .is_ok_and(|t| t.contains(&replica_port.to_string()))
            },
        )?;
        Ok(RedisSentinel {
            master: (master_port, master),
            replica: (replica_port, replica),
            sentinel: (sentinel_port, sentinel),
            _dir: dir,
        })
    }

    /// `redis+sentinel://127.0.0.1:<sentinel port>/mymaster`
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/{SENTINEL_MASTER}",
            self.sentinel.0
        )
    }

    /// The port of the server that is master now, as the Sentinel reports it.
    pub fn master_port(&self) -> Result<u16, ServerError> {
        let out = cli(
            self.sentinel.0,
            &["sentinel", "get-master-addr-by-name", SENTINEL_MASTER],
        )?;
        out.lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| ServerError(format!("no master address in {out:?}")))
    }

    /// Waits until the replica has everything the master has written.
    pub fn wait_replicated(&self) -> Result<(), ServerError> {
        let out = cli(self.master.0, &["wait", "1", "5000"])?;
        if out.trim() == "1" {
            Ok(())
        } else {
            Err(ServerError(format!("WAIT answered {out:?}")))
        }
    }

    /// Makes the Sentinel promote the replica, and waits until it reports the new master.
    pub fn fail_over(&self) -> Result<u16, ServerError> {
        cli(self.sentinel.0, &["sentinel", "failover", SENTINEL_MASTER])?;
        let promoted = self.replica.0;
        wait_until(
            Duration::from_secs(30),
            "the Sentinel did not promote the replica",
            || {
                self.master_port().is_ok_and(|p| p == promoted)
                    && cli(promoted, &["role"]).is_ok_and(|t| t.starts_with("master"))
            },
        )?;
        Ok(promoted)
    }
}
