//! The running platform as the local Resource Manager drives it ([`SiteRuntime`]): web apps
//! are created, reconfigured, started, stopped, deployed to and removed while `up` runs.
//!
//! Every change is checked before it is applied (a module that does not build changes nothing),
//! and a deployment is swapped in only once its process listens: a failed build or start leaves
//! the previous deployment serving.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use easyauth_arm::{Arm, Change, SiteRuntime, SiteStatus, WebApp};
use easyauth_entra::Idp;
use easyauth_module::oidc::OidcHttp;
use easyauth_pki::LocalCa;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::app::{App, AppConfig, Run, Running, local, starting, stopped};
use crate::auth::{aad_client_id, auth_off, parse_auth};
use crate::explain::{Callers, SharedCallers};
use crate::kudu_host::KuduHost;
use crate::origin::{self, SwappableService};
use crate::supervisor::{AppCommand, AppProcess, ProcessStatus};

/// How long a new deployment's process may take to listen before it counts as failed.
const ACTIVATE_TIMEOUT: Duration = Duration::from_secs(90);

/// The ports every app uses on its own loopback address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    /// The site's origin (http); 0 = a free port per app.
    pub(crate) site: u16,
    /// The SCM (Kudu) endpoint (https); 0 = a free port per app.
    pub(crate) scm: u16,
}

/// An app's listeners, bound before anything else starts (so every URL is known).
#[derive(Debug)]
pub(crate) struct Bound {
    pub(crate) address: Ipv4Addr,
    pub(crate) origin: std::net::TcpListener,
    pub(crate) scm: std::net::TcpListener,
    pub(crate) url: url::Url,
    pub(crate) scm_url: url::Url,
}

#[derive(Debug)]
pub(crate) struct Runtime {
    pub(crate) apps: RwLock<BTreeMap<String, Arc<App>>>,
    pub(crate) http: OidcHttp,
    pub(crate) ca: Arc<LocalCa>,
    pub(crate) data_dir: PathBuf,
    pub(crate) ports: Ports,
    pub(crate) idp: Arc<Idp>,
    pub(crate) callers: SharedCallers,
    pub(crate) hostingstart: url::Url,
    pub(crate) arm: OnceLock<Weak<Arm>>,
    /// Rewrites `platform.json` when the set of apps changes.
    pub(crate) on_apps_changed: OnceLock<AppsChanged>,
    /// Serialises changes per platform (they are rare; processes and listeners must not race).
    pub(crate) changes: Mutex<()>,
}

/// What to do when apps are added or removed (rewrite `platform.json`).
pub(crate) struct AppsChanged(pub(crate) Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for AppsChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppsChanged(..)")
    }
}

/// The runtime as the Resource Manager holds it.
#[derive(Debug, Clone)]
pub(crate) struct RuntimeHandle(pub(crate) Arc<Runtime>);

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// A free port on 127.0.0.1 (for an app's process).
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

impl Runtime {
    pub(crate) fn app(&self, name: &str) -> Option<Arc<App>> {
        self.apps
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key(name))
            .cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<App>> {
        self.apps
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The module configuration of an ARM document: its auth settings (off when never set)
    /// and app settings.
    pub(crate) fn config_of(site: &WebApp) -> Result<(AppConfig, Vec<String>), String> {
        let (auth, warnings) = match &site.auth_v2 {
            None => (auth_off(), Vec::new()),
            Some(props) => parse_auth(&format!("authsettingsV2 of {}", site.name), props)?,
        };
        Ok((
            AppConfig {
                auth,
                settings: site.app_settings.clone(),
                site: site.clone(),
            },
            warnings,
        ))
    }

    /// A loopback address no app uses yet (nor one of `taken`), from 127.0.0.2 up.
    pub(crate) fn free_address(&self, taken: &[Ipv4Addr]) -> Result<Ipv4Addr, String> {
        let mut used: Vec<Ipv4Addr> = self
            .all()
            .iter()
            .filter_map(|a| a.url.host_str().and_then(|h| h.parse().ok()))
            .collect();
        used.extend_from_slice(taken);
        pick_address(&used)
    }

    /// Binds an app's origin and SCM endpoint on `address`.
    pub(crate) fn bind(
        &self,
        name: &str,
        address: Ipv4Addr,
        site_port: u16,
    ) -> Result<Bound, String> {
        bind_app(name, address, site_port, self.ports.scm)
    }

    /// Creates the app's run-time parts on `bound` and serves its origin and SCM endpoint (with
    /// the "starting" page until [`Runtime::start`] builds its module).
    pub(crate) async fn open(
        self: &Arc<Self>,
        site: &WebApp,
        bound: Bound,
        name_width: usize,
    ) -> Result<Arc<App>, String> {
        let (config, _) = Self::config_of(site)?;
        let apps_dir = self.data_dir.join("apps");
        std::fs::create_dir_all(&apps_dir).map_err(|e| format!("{}: {e}", apps_dir.display()))?;
        let store = crate::store::open_store(&apps_dir.join(format!("{}.db", site.name)))
            .await
            .map_err(|e| e.to_string())?;
        let origin_handle = axum_server::Handle::new();
        let scm_handle = axum_server::Handle::new();
        let app = Arc::new(App {
            name: site.name.clone(),
            url: bound.url.clone(),
            scm_url: bound.scm_url.clone(),
            store,
            service: SwappableService::new(starting()),
            config: Mutex::new(config),
            run: Mutex::new(Run::Empty),
            running: std::sync::Mutex::new(None),
            upstream: Arc::new(std::sync::Mutex::new(self.hostingstart.clone())),
            hostingstart: self.hostingstart.clone(),
            ca_file: self.ca.cert_path().to_path_buf(),
            kudu: OnceLock::new(),
            handles: vec![origin_handle.clone(), scm_handle.clone()],
            name_width,
            facts: std::sync::Mutex::new(crate::app::Facts::of(site)),
            log: crate::applog::AppLog::default(),
        });
        let host = Arc::new(KuduHost {
            app: Arc::downgrade(&app),
            runtime: Arc::downgrade(self),
        });
        let kudu = easyauth_kudu::Kudu::open(
            host,
            self.data_dir.join("sites").join(&site.name),
            easyauth_kudu::Limits::default(),
        )
        .await
        .map_err(|e| format!("the site's deployment folder: {e}"))?;
        let _ = app.kudu.set(kudu.clone());
        *app.run.lock().await = run_of(site, &kudu)?;
        // The origin.
        tokio::spawn({
            let callers = self.callers.clone();
            let service = app.service.clone();
            let name = app.name.clone();
            let upstream = app.upstream.clone();
            let log = app.log.clone();
            async move {
                if let Err(e) = origin::serve(
                    bound.origin,
                    name.clone(),
                    service,
                    callers,
                    upstream,
                    log,
                    origin_handle,
                )
                .await
                {
                    tracing::error!(app = %name, error = %e, "the app's origin failed");
                }
            }
        });
        // The SCM endpoint: Kudu over https with a certificate for the app's address.
        let tls = self
            .ca
            .server_config(&[bound.address.to_string()])
            .map_err(|e| e.to_string())?;
        let router = easyauth_kudu::router(kudu);
        let scm = bound.scm;
        let name = app.name.clone();
        tokio::spawn(async move {
            let server = match axum_server::from_tcp_rustls(
                scm,
                axum_server::tls_rustls::RustlsConfig::from_config(tls),
            ) {
                Ok(s) => s.handle(scm_handle),
                Err(e) => {
                    tracing::error!(app = %name, error = %e, "the SCM endpoint could not start");
                    return;
                }
            };
            if let Err(e) = server.serve(router.into_make_service()).await {
                tracing::error!(app = %name, error = %e, "the SCM endpoint failed");
            }
        });
        self.apps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key(&app.name), app.clone());
        Ok(app)
    }

    /// Builds the app's module and starts what it runs (unless the site is stopped).
    pub(crate) async fn start(&self, app: &Arc<App>) -> Result<(), String> {
        let config = app.config.lock().await.clone();
        self.register_callback(app, &config).await;
        if config.site.stopped {
            app.service.swap(stopped());
            return Ok(());
        }
        let run = app.run.lock().await.clone();
        let (upstream, running) = self.launch(app, &config, &run)?;
        let module = app.build_module(&config, &upstream, &self.http).await?;
        app.set_running(running, upstream);
        app.service.swap(module);
        Ok(())
    }

    /// Starts what `run` needs: a process on a fresh port (commands, deployments), or nothing.
    fn launch(
        &self,
        app: &App,
        config: &AppConfig,
        run: &Run,
    ) -> Result<(url::Url, Option<Running>), String> {
        let command = match run {
            Run::Upstream(u) => return Ok((u.clone(), None)),
            Run::Empty => return Ok((self.hostingstart.clone(), None)),
            Run::Command(c) => (c.clone(), BTreeMap::new()),
            Run::Deployment(d) => deployment_command(d, &config.site),
        };
        let port = free_port().map_err(|e| format!("finding a free port: {e}"))?;
        let mut env = app.environment(config, port);
        env.extend(command.1);
        let process =
            AppProcess::spawn_logged(&app.name, app.name_width, command.0, env, app.log.clone());
        Ok((local(port), Some(Running { process, port })))
    }

    /// The environment of `run` on `port` (restarts keep the port).
    fn environment_for(
        &self,
        app: &App,
        config: &AppConfig,
        run: &Run,
        port: u16,
    ) -> BTreeMap<String, String> {
        let mut env = app.environment(config, port);
        if let Run::Deployment(d) = run {
            env.extend(deployment_command(d, &config.site).1);
        }
        env
    }

    /// Registers the app's callback (`<url>/.auth/login/aad/callback`) on the app registration
    /// its auth settings name, so sign-in works at the address the platform gave it.
    async fn register_callback(&self, app: &App, config: &AppConfig) {
        let Some(client_id) = aad_client_id(&config.auth) else {
            return;
        };
        let callback = format!(
            "{}/.auth/login/aad/callback",
            app.url.as_str().trim_end_matches('/')
        );
        match self.idp.ensure_redirect_uri(&client_id, &callback).await {
            Ok(true) => {
                tracing::info!(app = %app.name, %client_id, %callback, "callback registered on the app registration")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(app = %app.name, error = %e, "the callback could not be registered")
            }
        }
    }

    /// Client ids of the apps' registrations -> app names, for explaining refused calls.
    pub(crate) async fn refresh_callers(&self) {
        let mut pairs = Vec::new();
        for app in self.all() {
            let config = app.config.lock().await;
            if let Some(id) = aad_client_id(&config.auth) {
                pairs.push((id, app.name.clone()));
            }
        }
        self.callers.store(Arc::new(Callers::new(pairs)));
    }

    /// A new deployment: start it on a fresh port, and swap it in once it listens; on failure
    /// the previous deployment keeps serving. `Err` carries the process's output.
    pub(crate) async fn activate(
        &self,
        app: &Arc<App>,
        built: &easyauth_kudu::BuiltDeployment,
    ) -> Result<(), String> {
        let _change = self.changes.lock().await;
        let config = app.config.lock().await.clone();
        let run = Run::Deployment(built.clone());
        let (upstream, running) = self.launch(app, &config, &run)?;
        let Some(new) = running else {
            return Err("the deployment has no process to start".into());
        };
        let outcome = wait_listening(&new, ACTIVATE_TIMEOUT).await;
        if let Err(why) = outcome {
            let output = new.process.output().lines();
            new.process.stop().await;
            let tail: Vec<&String> = output
                .iter()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(format!(
                "{why}\n--- the app's output ---\n{}",
                tail.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
        let module = match app.build_module(&config, &upstream, &self.http).await {
            Ok(m) => m,
            Err(e) => {
                new.process.stop().await;
                return Err(format!("the authentication module could not be built: {e}"));
            }
        };
        let old = app.set_running(Some(new), upstream);
        *app.run.lock().await = run;
        if !config.site.stopped {
            app.service.swap(module);
        }
        if let Some(old) = old {
            old.process.stop().await;
        }
        tracing::info!(app = %app.name, deployment = %built.id, "the new deployment serves");
        Ok(())
    }

    async fn apply_change(
        &self,
        app: &Arc<App>,
        site: &WebApp,
        change: Change,
    ) -> Result<(), String> {
        let (config, _) = Self::config_of(site)?;
        let previous = std::mem::replace(&mut *app.config.lock().await, config.clone());
        let result = self.apply_config(app, &config, &previous, change).await;
        if result.is_err() {
            *app.config.lock().await = previous;
        } else {
            app.set_facts(site);
        }
        result
    }

    async fn apply_config(
        &self,
        app: &Arc<App>,
        config: &AppConfig,
        previous: &AppConfig,
        change: Change,
    ) -> Result<(), String> {
        let run = app.run.lock().await.clone();
        match change {
            Change::Auth => {
                let module = app
                    .build_module(config, &app.current_upstream(), &self.http)
                    .await?;
                self.register_callback(app, config).await;
                if !config.site.stopped {
                    app.service.swap(module);
                }
            }
            Change::AppSettings | Change::SiteConfig | Change::Restart => {
                let module = app
                    .build_module(config, &app.current_upstream(), &self.http)
                    .await?;
                if let Some(r) = app.current_running() {
                    let env = self.environment_for(app, config, &run, r.port);
                    let command_changed = change == Change::SiteConfig
                        && matches!(run, Run::Deployment(_))
                        && previous.site.site_config.get("appCommandLine")
                            != config.site.site_config.get("appCommandLine");
                    if command_changed {
                        // A new startup command needs a new process, not a restart of the old.
                        let (upstream, running) = self.launch(app, config, &run)?;
                        let module = app.build_module(config, &upstream, &self.http).await?;
                        let old = app.set_running(running, upstream);
                        app.service.swap(module);
                        if let Some(old) = old {
                            old.process.stop().await;
                        }
                        app.wait_ready().await;
                        return Ok(());
                    }
                    r.process.restart(env).await;
                    app.wait_ready().await;
                }
                if !config.site.stopped {
                    app.service.swap(module);
                }
            }
            Change::Stop => {
                app.service.swap(stopped());
                if let Some(old) = app.set_running(None, app.hostingstart.clone()) {
                    old.process.stop().await;
                }
            }
            Change::Start => {
                if app.current_running().is_none() {
                    let (upstream, running) = self.launch(app, config, &run)?;
                    let module = app.build_module(config, &upstream, &self.http).await?;
                    app.set_running(running, upstream);
                    app.service.swap(module);
                    app.wait_ready().await;
                } else {
                    let module = app
                        .build_module(config, &app.current_upstream(), &self.http)
                        .await?;
                    app.service.swap(module);
                }
            }
            Change::Created | Change::Credentials => {}
        }
        Ok(())
    }

    /// Stops an app and forgets it; its deployments and token store are deleted.
    pub(crate) async fn remove_app(&self, name: &str) {
        let app = self
            .apps
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key(name));
        let Some(app) = app else { return };
        if let Some(r) = app.set_running(None, app.hostingstart.clone()) {
            r.process.stop().await;
        }
        for h in &app.handles {
            h.graceful_shutdown(Some(Duration::from_secs(2)));
        }
        for path in [
            self.data_dir.join("sites").join(&app.name),
            self.data_dir.join("apps").join(format!("{}.db", app.name)),
        ] {
            let result = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = result
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(app = %app.name, path = %path.display(), error = %e, "could not delete the app's files");
            }
        }
        self.refresh_callers().await;
        self.apps_changed();
    }

    pub(crate) fn apps_changed(&self) {
        if let Some(f) = self.on_apps_changed.get() {
            (f.0)();
        }
    }

    /// Validates a bearer token for the SCM endpoint with the Resource Manager's rules.
    pub(crate) async fn authorize_bearer(&self, token: &str) -> bool {
        let Some(arm) = self.arm.get().and_then(Weak::upgrade) else {
            return false;
        };
        let mut headers = axum::http::HeaderMap::new();
        let Ok(value) = axum::http::HeaderValue::from_str(&format!("Bearer {token}")) else {
            return false;
        };
        headers.insert(axum::http::header::AUTHORIZATION, value);
        arm.check_bearer(&headers).await.is_ok()
    }
}

/// The lowest loopback address from 127.0.0.2 that is not in `used`.
pub(crate) fn pick_address(used: &[Ipv4Addr]) -> Result<Ipv4Addr, String> {
    (2..=254u8)
        .map(|n| Ipv4Addr::new(127, 0, 0, n))
        .find(|a| !used.contains(a))
        .ok_or_else(|| {
            "no free loopback address is left (127.0.0.2 to .254 are all used)".to_owned()
        })
}

/// Binds an app's origin (http, `site_port`) and SCM endpoint (`scm_port`) on `address`.
pub(crate) fn bind_app(
    name: &str,
    address: Ipv4Addr,
    site_port: u16,
    scm_port: u16,
) -> Result<Bound, String> {
    let origin = origin::bind(
        SocketAddr::new(IpAddr::V4(address), site_port),
        &format!("app {name:?}"),
    )
    .map_err(|e| format!("{e} (is another `easyauth up` running? `--port 0` picks free ports)"))?;
    let scm = origin::bind(
        SocketAddr::new(IpAddr::V4(address), scm_port),
        &format!("the SCM (Kudu) endpoint of {name:?}"),
    )
    .map_err(|e| format!("{e} (`--scm-port 0` picks free ports)"))?;
    let url = parse_url(&format!(
        "http://{}",
        origin.local_addr().map_err(|e| e.to_string())?
    ))?;
    let scm_url = parse_url(&format!(
        "https://{}",
        scm.local_addr().map_err(|e| e.to_string())?
    ))?;
    Ok(Bound {
        address,
        origin,
        scm,
        url,
        scm_url,
    })
}

fn parse_url(text: &str) -> Result<url::Url, String> {
    url::Url::parse(text).map_err(|e| format!("{text}: {e}"))
}

/// What the ARM document says the app runs: the platform part (`run.command` /
/// `run.upstream`, written for site-file apps) or else the current deployment.
fn run_of(site: &WebApp, kudu: &easyauth_kudu::Kudu) -> Result<Run, String> {
    if let Some(run) = site.platform.get("run") {
        if let Some(url) = run.get("upstream").and_then(Value::as_str) {
            return url::Url::parse(url)
                .map(Run::Upstream)
                .map_err(|e| format!("upstream {url}: {e}"));
        }
        if let Some(c) = run.get("command") {
            let command: AppCommand = serde_json::from_value(c.clone())
                .map_err(|e| format!("the stored command of {}: {e}", site.name))?;
            return Ok(Run::Command(command));
        }
    }
    Ok(kudu.current().map_or(Run::Empty, Run::Deployment))
}

/// How to run a deployment: the site's startup command (`appCommandLine`) if set, else the one
/// the deployment found; plus the environment it needs (PATH with its venv, ...).
fn deployment_command(
    d: &easyauth_kudu::BuiltDeployment,
    site: &WebApp,
) -> (AppCommand, BTreeMap<String, String>) {
    let env = d.start.environment();
    let explicit = site
        .site_config
        .get("appCommandLine")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let command = match explicit {
        Some(line) => AppCommand::shell(line).with_cwd(&d.site_dir),
        None => AppCommand {
            program: d.start.program.clone(),
            args: d.start.args.clone(),
            cwd: Some(d.start.cwd.clone()),
        },
    };
    (command, env)
}

/// Waits until the process listens on its port, or crashes, or `timeout` passes.
async fn wait_listening(r: &Running, timeout: Duration) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, r.port));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut status = r.process.watch_status();
    loop {
        if let ProcessStatus::BackingOff { reason, .. } = &*status.borrow() {
            return Err(format!(
                "the app exited before it listened on its PORT ({reason})"
            ));
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "the app did not listen on 127.0.0.1:$PORT ({}) within {} s",
                r.port,
                timeout.as_secs()
            ));
        }
        tokio::select! {
            _ = status.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

#[async_trait::async_trait]
impl SiteRuntime for RuntimeHandle {
    async fn check(&self, app: &WebApp) -> Result<Vec<String>, String> {
        let this = &self.0;
        let (config, warnings) = Runtime::config_of(app)?;
        // Building the module proves the settings work (it fetches the provider's metadata);
        // the upstream is irrelevant here.
        let probe = this
            .app(&app.name)
            .map(|a| a.current_upstream())
            .unwrap_or_else(|| this.hostingstart.clone());
        let builder = ModuleProbe {
            store: Arc::new(easyauth_store::MemoryStore::new()),
        };
        builder.build(&config, &probe, &this.http).await?;
        Ok(warnings)
    }

    async fn apply(&self, site: &WebApp, change: Change) -> Result<WebApp, String> {
        let this = &self.0;
        let mut site = site.clone();
        if change == Change::Created {
            let _change = this.changes.lock().await;
            if this.app(&site.name).is_some() {
                return Err(format!("a web app named {} already runs", site.name));
            }
            let address = match site.address.as_deref().and_then(|a| a.parse().ok()) {
                Some(a) => a,
                None => this.free_address(&[])?,
            };
            let bound = this.bind(&site.name, address, this.ports.site)?;
            site.address = Some(address.to_string());
            site.host = Some(crate::app::host_port(&bound.url));
            site.scm_host = Some(crate::app::host_port(&bound.scm_url));
            let width = this
                .all()
                .iter()
                .map(|a| a.name.len())
                .max()
                .unwrap_or(0)
                .max(site.name.len());
            let app = this.open(&site, bound, width).await?;
            {
                let mut c = app.config.lock().await;
                c.site = site.clone();
            }
            if let Err(e) = this.start(&app).await {
                drop(_change);
                this.remove_app(&site.name).await;
                return Err(e);
            }
            app.wait_ready().await;
            this.refresh_callers().await;
            this.apps_changed();
            return Ok(site);
        }
        let app = this
            .app(&site.name)
            .ok_or_else(|| format!("the web app {} is not running on this platform", site.name))?;
        let _change = this.changes.lock().await;
        this.apply_change(&app, &site, change).await?;
        if change == Change::Auth {
            this.refresh_callers().await;
        }
        site.host = Some(crate::app::host_port(&app.url));
        site.scm_host = Some(crate::app::host_port(&app.scm_url));
        Ok(site)
    }

    async fn remove(&self, site: &WebApp) {
        let _change = self.0.changes.lock().await;
        self.0.remove_app(&site.name).await;
    }

    fn status(&self, name: &str) -> SiteStatus {
        let Some(app) = self.0.app(name) else {
            return SiteStatus {
                state: "Stopped".into(),
                detail: None,
            };
        };
        let stopped = app.facts().stopped;
        SiteStatus {
            state: if stopped { "Stopped" } else { "Running" }.into(),
            detail: Some(app.detail()),
        }
    }

    async fn deployment_status(&self, name: &str, id: Option<&str>) -> Option<Value> {
        let app = self.0.app(name)?;
        let kudu = app.kudu.get()?;
        let d = match id {
            Some(id) => kudu.deployment(id)?,
            None => kudu.latest()?,
        };
        Some(deployment_properties(&app, &d))
    }

    async fn deployment_statuses(&self, name: &str) -> Vec<(String, Value)> {
        let Some(app) = self.0.app(name) else {
            return Vec::new();
        };
        let Some(kudu) = app.kudu.get() else {
            return Vec::new();
        };
        let mut all = kudu.deployments();
        all.reverse();
        all.iter()
            .map(|d| (d.id.clone(), deployment_properties(&app, d)))
            .collect()
    }
}

/// ARM's `deploymentStatus` properties for a Kudu deployment record.
fn deployment_properties(app: &App, d: &easyauth_kudu::Deployment) -> Value {
    use easyauth_kudu::DeploymentState as S;
    let (in_progress, ok, failed) = match d.state {
        S::RuntimeSuccessful => (0, 1, 0),
        S::RuntimeFailed | S::BuildFailed => (0, 0, 1),
        _ => (1, 0, 0),
    };
    let log_url = format!(
        "{}/api/deployments/{}/log",
        app.scm_url.as_str().trim_end_matches('/'),
        d.id
    );
    let errors = match (&d.error, d.state) {
        (Some(message), S::BuildFailed | S::RuntimeFailed) => json!([{
            "extendedCode": if d.state == S::BuildFailed { "54000" } else { "54001" },
            "messageTemplate": message,
            "parameters": [],
            "code": "Unspecified",
            "message": message,
        }]),
        _ => Value::Null,
    };
    json!({
        "deploymentId": d.id,
        "status": d.state.as_str(),
        "numberOfInstancesInProgress": in_progress.to_string(),
        "numberOfInstancesSuccessful": ok.to_string(),
        "numberOfInstancesFailed": failed.to_string(),
        "failedInstancesLogs": if failed > 0 { json!([log_url]) } else { json!([]) },
        "errors": errors,
    })
}

/// Builds a module only to check settings (a memory store: nothing is written).
struct ModuleProbe {
    store: Arc<dyn easyauth_store::Store>,
}

impl ModuleProbe {
    async fn build(
        &self,
        config: &AppConfig,
        upstream: &url::Url,
        http: &OidcHttp,
    ) -> Result<(), String> {
        let env = easyauth_module::Environment {
            public_url: None,
            scheme: "http",
            app_settings: easyauth_module::AppSettings(
                config.settings.clone().into_iter().collect(),
            ),
            store: self.store.clone(),
            http: http.clone(),
            development: true,
            session_store: Default::default(),
        };
        easyauth_module::ProxyStack::build(&config.auth, env, upstream, Duration::from_secs(1))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}
