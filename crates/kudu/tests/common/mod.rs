//! A real test host: starts a deployment's start command as a process (own process group,
//! PORT set), waits for the port, keeps one app running per site and kills it when dropped.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use easyauth_kudu::{BuiltDeployment, Kudu, Limits, PublishingCredentials, SiteConfig, SiteHost};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

pub const USER: &str = "$web";
pub const PASSWORD: &str = "s3cret-publishing-password";
pub const TOKEN: &str = "arm-token-for-web";

/// A folder under the system's temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Running {
    id: String,
    port: u16,
    pgid: i32,
    child: tokio::process::Child,
}

/// The platform's part, for real: processes on loopback ports.
pub struct ProcessHost {
    pub credentials: Mutex<Option<PublishingCredentials>>,
    pub config: Mutex<SiteConfig>,
    running: Mutex<Option<Running>>,
    pub ready_timeout: Duration,
}

impl ProcessHost {
    pub fn new(config: SiteConfig) -> Arc<ProcessHost> {
        Arc::new(ProcessHost {
            credentials: Mutex::new(Some(PublishingCredentials {
                user: USER.to_owned(),
                password: PASSWORD.to_owned(),
            })),
            config: Mutex::new(config),
            running: Mutex::new(None),
            ready_timeout: Duration::from_secs(30),
        })
    }

    /// The running deployment's id and port.
    pub fn running(&self) -> Option<(String, u16)> {
        self.running
            .lock()
            .expect("lock")
            .as_ref()
            .map(|r| (r.id.clone(), r.port))
    }

    pub fn set_setting(&self, k: &str, v: &str) {
        self.config
            .lock()
            .expect("lock")
            .app_settings
            .insert(k.to_owned(), v.to_owned());
    }

    /// Stops the running app (SIGKILL to its group) and reaps it, so no zombie outlives the test.
    pub fn stop(&self) {
        if let Some(mut r) = self.running.lock().expect("lock").take() {
            kill_group(r.pgid);
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(r.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for ProcessHost {
    fn drop(&mut self) {
        self.stop();
    }
}

fn kill_group(pgid: i32) {
    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
}

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[async_trait::async_trait]
impl SiteHost for ProcessHost {
    fn site_name(&self) -> String {
        "web".to_owned()
    }

    fn publishing_credentials(&self) -> Option<PublishingCredentials> {
        self.credentials.lock().expect("lock").clone()
    }

    async fn authorize_bearer(&self, token: &str) -> bool {
        token == TOKEN
    }

    async fn site_config(&self) -> SiteConfig {
        self.config.lock().expect("lock").clone()
    }

    async fn activate(&self, d: &BuiltDeployment) -> Result<(), String> {
        let port = free_port();
        let mut child = tokio::process::Command::new(&d.start.program)
            .args(&d.start.args)
            .current_dir(&d.start.cwd)
            .envs(d.start.environment())
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", d.start.display))?;
        let pgid = i32::try_from(child.id().unwrap_or(0)).unwrap_or(0);
        let output = Arc::new(Mutex::new(String::new()));
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(collect(out, Arc::clone(&output))));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(collect(err, Arc::clone(&output))));
        }
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                kill_group(pgid);
                for p in pumps {
                    let _ = tokio::time::timeout(Duration::from_secs(2), p).await;
                }
                let out = output.lock().expect("lock").clone();
                return Err(format!(
                    "the app exited ({status}) before listening; its output:\n{out}"
                ));
            }
            if Instant::now() > deadline {
                kill_group(pgid);
                let out = output.lock().expect("lock").clone();
                return Err(format!(
                    "the app did not listen on PORT {port} in time; its output:\n{out}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let old = self.running.lock().expect("lock").replace(Running {
            id: d.id.clone(),
            port,
            pgid,
            child,
        });
        if let Some(mut old) = old {
            kill_group(old.pgid);
            let _ = tokio::time::timeout(Duration::from_secs(5), old.child.wait()).await;
        }
        Ok(())
    }
}

async fn collect<R: tokio::io::AsyncRead + Unpin>(reader: R, into: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut out = into.lock().expect("lock");
        out.push_str(&line);
        out.push('\n');
    }
}

/// A Kudu over a fresh `ProcessHost`, rooted at `<tmp>/a/b/site` so that an escape to `..` or
/// `../..` would still land inside `tmp` where the test can see it.
pub struct Site {
    pub tmp: TempDir,
    pub root: PathBuf,
    pub host: Arc<ProcessHost>,
    pub kudu: Arc<Kudu>,
}

impl Site {
    pub async fn new(config: SiteConfig, limits: Limits) -> Site {
        let tmp = TempDir::new("kudu-test");
        let root = tmp.0.join("a").join("b").join("site");
        let host = ProcessHost::new(config);
        let kudu = Kudu::open(host.clone(), root.clone(), limits)
            .await
            .expect("open");
        Site {
            tmp,
            root,
            host,
            kudu,
        }
    }

    /// Every path under the temp folder, relative, sorted.
    pub fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.tmp.0, &self.tmp.0, &mut out);
        out.sort();
        out
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.host.stop();
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        out.push(
            p.strip_prefix(base)
                .expect("prefix")
                .to_string_lossy()
                .into_owned(),
        );
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(base, &p, out);
        }
    }
}

pub fn node_settings(build: bool) -> SiteConfig {
    let mut app_settings = BTreeMap::new();
    app_settings.insert(
        "SCM_DO_BUILD_DURING_DEPLOYMENT".to_owned(),
        build.to_string(),
    );
    SiteConfig {
        app_settings,
        linux_fx_version: Some("NODE|20-lts".to_owned()),
        ..SiteConfig::default()
    }
}

/// A zip of `files` (deflated).
pub fn zip(files: &[(&str, &str)]) -> Vec<u8> {
    zip_with(|w| {
        for (name, content) in files {
            w.start_file(
                *name,
                SimpleFileOptions::default().compression_method(CompressionMethod::Deflated),
            )
            .expect("start");
            w.write_all(content.as_bytes()).expect("write");
        }
    })
}

pub fn zip_with(f: impl FnOnce(&mut ZipWriter<Cursor<Vec<u8>>>)) -> Vec<u8> {
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    f(&mut w);
    w.finish().expect("finish").into_inner()
}

/// A dependency-free Node server answering `tag`.
pub fn node_server(tag: &str) -> String {
    format!(
        "const http = require('http');\n\
         http.createServer((req, res) => res.end('{tag}')).listen(Number(process.env.PORT), '127.0.0.1');\n\
         console.log('listening on', process.env.PORT);\n"
    )
}

/// GET `http://127.0.0.1:<port><path>`, body as text.
pub async fn get_text(port: u16, path: &str) -> Result<String, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await?
        .text()
        .await
}

/// Waits for deployment `id` to finish (bounded).
pub async fn finished(kudu: &Kudu, id: &str, within: Duration) -> easyauth_kudu::Deployment {
    let d = kudu.wait(id, within).await.expect("deployment exists");
    assert!(d.state.is_final(), "not finished within {within:?}: {d:?}");
    d
}
