//! The running platform: the identity provider, one origin + authentication module + process per
//! app, and the controls the admin API exposes.
//!
//! Start-up order matters: every listener is bound first (so `--port 0` works and every URL is
//! known), then placeholders are expanded and each app's callback is registered on its app
//! registration, then the identity provider serves, then each module is built (building one
//! fetches the provider's metadata) and each app starts.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyauth_entra::directory::demo;
use easyauth_entra::{Idp, IdpConfig, Seed};
use easyauth_module::oidc::OidcHttp;
use easyauth_pki::LocalCa;
use easyauth_store::{SqliteStore, Store};
use futures_util::future::join_all;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::app::{App, AppConfig, starting};
use crate::auth::{aad_client_id, load_auth, parse_auth, register_callback, resource};
use crate::control::{AuthSetOutcome, Control, ControlError};
use crate::explain::Callers;
use crate::origin::{self, SwappableService};
use crate::site::{AppRun, Placeholders, Site};
use crate::state::{AppState, DemoUser, PlatformState};
use crate::supervisor::{AppProcess, wait_for_port};

/// How long start-up waits for an app's port before reporting it as not listening yet.
const APP_READY_TIMEOUT: Duration = Duration::from_secs(20);
const IDP_STORE: &str = "easyauth.db";

/// What `easyauth up` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub data_dir: PathBuf,
    /// Each app's origin port (each app has its own loopback address); 0 = any free port.
    pub port: u16,
    /// The identity provider's port on 127.0.0.1; 0 = any free port.
    pub idp_port: u16,
}

/// Start-up failures; `Display` is what the user sees.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Config(String),
    #[error("app {app}: {reason}")]
    App { app: String, reason: String },
}

fn io(context: &str) -> impl Fn(std::io::Error) -> StartError + '_ {
    move |e| StartError::Io(format!("{context}: {e}"))
}

/// A started platform.
#[derive(Debug)]
pub struct Platform {
    apps: Vec<App>,
    placeholders: Placeholders,
    http: OidcHttp,
    state: PlatformState,
    data_dir: PathBuf,
    handles: Vec<axum_server::Handle<SocketAddr>>,
    site_is_tutorial: bool,
    pub started_in: Duration,
}

impl Platform {
    /// Starts everything; returns once every app's module is in place and the apps' ports
    /// answer (or [`APP_READY_TIMEOUT`] passed: the app is then reported and keeps starting).
    pub async fn start(
        site: Site,
        options: &Options,
        tutorial: bool,
    ) -> Result<Platform, StartError> {
        let started = Instant::now();
        std::fs::create_dir_all(&options.data_dir).map_err(io(&format!(
            "cannot create the data dir {}",
            options.data_dir.display()
        )))?;
        let data_dir = std::fs::canonicalize(&options.data_dir).unwrap_or(options.data_dir.clone());
        let ca = LocalCa::load_or_create(&data_dir).map_err(|e| StartError::Io(e.to_string()))?;
        let ca_file = ca.cert_path().to_path_buf();
        let http = OidcHttp::with_extra_root_pem(ca.cert_pem().as_bytes())
            .map_err(|e| StartError::Io(e.to_string()))?;
        let idp_store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&data_dir.join(IDP_STORE))
                .await
                .map_err(|e| {
                    StartError::Io(format!("{}: {e}", data_dir.join(IDP_STORE).display()))
                })?,
        );

        // 1. Every listener.
        let idp_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.idp_port));
        let idp_listener =
            origin::bind(idp_addr, "the identity provider").map_err(|e| {
            StartError::Io(format!(
                "{e} (is `easyauth idp` or another `easyauth up` running? `--idp-port 0` picks a free port)"
            ))
        })?;
        let idp_port = idp_listener
            .local_addr()
            .map_err(io("identity provider"))?
            .port();
        let idp_url = format!("https://127.0.0.1:{idp_port}");
        let mut bound = Vec::with_capacity(site.apps.len());
        for (i, spec) in site.apps.iter().enumerate() {
            let ip = spec.address.unwrap_or(IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                u8::try_from(i + 2).unwrap_or(254),
            )));
            let addr = SocketAddr::new(ip, spec.port.unwrap_or(options.port));
            let listener = origin::bind(addr, "its origin").map_err(|e| StartError::App {
                app: spec.name.clone(),
                reason: format!(
                    "{e} (is another `easyauth up` running? `--port 0` picks free ports)"
                ),
            })?;
            let local = listener.local_addr().map_err(io(&spec.name))?;
            let url = url::Url::parse(&format!("http://{local}"))
                .map_err(|e| StartError::Io(e.to_string()))?;
            let (upstream, port) = match &spec.run {
                AppRun::Upstream(u) => (u.clone(), None),
                AppRun::Command(_) => {
                    let port = free_port().map_err(io("finding a free port"))?;
                    let u = url::Url::parse(&format!("http://127.0.0.1:{port}"))
                        .map_err(|e| StartError::Io(e.to_string()))?;
                    (u, Some(port))
                }
            };
            bound.push((listener, url, upstream, port));
        }

        // 2. The directory and the placeholders.
        let (mut seed, demo_secrets) = match &site.directory {
            Some(path) => {
                let seed = Seed::load(path).map_err(|e| StartError::Config(e.to_string()))?;
                for field in &seed.ignored_fields {
                    tracing::warn!(file = %path.display(), path = %field, "unknown field in the directory file was ignored");
                }
                (seed, None)
            }
            None => {
                let secrets = demo::secrets(idp_store.as_ref())
                    .await
                    .map_err(|e| StartError::Io(e.to_string()))?;
                (demo::seed(&secrets), Some(secrets))
            }
        };
        let tenant_id = seed.tenant.id.clone();
        let issuer = format!("{idp_url}/{tenant_id}/v2.0");
        let mut placeholders = Placeholders::default();
        placeholders.insert("idp.url", &idp_url);
        placeholders.insert("idp.issuer", &issuer);
        placeholders.insert("tenant.id", &tenant_id);
        placeholders.insert("tenant.domain", &seed.tenant.domain);
        placeholders.insert("ca_file", ca_file.to_string_lossy());
        for (spec, (_, url, upstream, _)) in site.apps.iter().zip(&bound) {
            let base = format!("apps.{}", spec.name);
            placeholders.insert(format!("{base}.url"), url.as_str().trim_end_matches('/'));
            placeholders.insert(
                format!("{base}.upstream"),
                upstream.as_str().trim_end_matches('/'),
            );
        }
        if let Some(s) = &demo_secrets {
            placeholders.insert("demo.frontend.client_id", demo::FRONTEND_APP_ID);
            placeholders.insert("demo.frontend.secret", &s.frontend_secret);
            placeholders.insert("demo.backend.client_id", demo::BACKEND_APP_ID);
            placeholders.insert("demo.backend.secret", &s.backend_secret);
            placeholders.insert("demo.user.name", format!("alice@{}", demo::TENANT_DOMAIN));
            placeholders.insert("demo.user.password", &s.user_password);
        }

        // 3. Each app's configuration, and its callback on its app registration.
        let mut configs = Vec::with_capacity(site.apps.len());
        for (spec, (_, url, _, _)) in site.apps.iter().zip(&bound) {
            let app_err = |reason: String| StartError::App {
                app: spec.name.clone(),
                reason,
            };
            let auth = load_auth(&spec.auth, &placeholders).map_err(app_err)?;
            let mut settings = BTreeMap::new();
            for (k, v) in &spec.app_settings {
                let value = placeholders
                    .expand(v)
                    .map_err(|e| app_err(format!("app setting {k}: {e}")))?;
                settings.insert(k.clone(), value);
            }
            if let Some(client_id) = aad_client_id(&auth) {
                register_callback(&mut seed, &client_id, url);
            }
            configs.push(AppConfig { auth, settings });
        }

        // 4. The identity provider.
        let idp = Idp::start(idp_store.clone(), IdpConfig::new(&idp_url), &seed)
            .await
            .map_err(|e| StartError::Config(e.to_string()))?;
        let hosts = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let tls = ca
            .server_config(&hosts)
            .map_err(|e| StartError::Io(e.to_string()))?;
        let idp_handle = axum_server::Handle::new();
        let idp_server = axum_server::from_tcp_rustls(
            idp_listener,
            axum_server::tls_rustls::RustlsConfig::from_config(tls),
        )
        .map_err(io("identity provider"))?
        .handle(idp_handle.clone());
        let router = idp.router();
        tokio::spawn(async move {
            if let Err(e) = idp_server.serve(router.into_make_service()).await {
                tracing::error!(error = %e, "the identity provider's server failed");
            }
        });
        tokio::spawn(easyauth_store::purge_periodically(
            idp_store,
            Duration::from_secs(600),
        ));
        let mut handles = vec![idp_handle];

        // 5. Each app: module, origin, process.
        let callers = Arc::new(Callers::new(site.apps.iter().zip(&configs).filter_map(
            |(spec, config)| Some((aad_client_id(&config.auth)?, spec.name.clone())),
        )));
        let name_width = site.apps.iter().map(|a| a.name.len()).max().unwrap_or(0);
        let mut apps = Vec::with_capacity(site.apps.len());
        for ((spec, (listener, url, upstream, port)), config) in
            site.apps.into_iter().zip(bound).zip(configs)
        {
            let app_err = |reason: String| StartError::App {
                app: spec.name.clone(),
                reason,
            };
            std::fs::create_dir_all(data_dir.join("apps")).map_err(io("the data dir"))?;
            let db = data_dir.join("apps").join(format!("{}.db", spec.name));
            let store: Arc<dyn Store> = Arc::new(
                SqliteStore::open(&db)
                    .await
                    .map_err(|e| app_err(format!("{}: {e}", db.display())))?,
            );
            let mut app = App {
                name: spec.name.clone(),
                url,
                upstream: upstream.clone(),
                port,
                store,
                service: SwappableService::new(starting()),
                process: None,
                config: Mutex::new(config.clone()),
                ca_file: ca_file.clone(),
            };
            let module = app.build_module(&config, &http).await.map_err(app_err)?;
            app.service.swap(module);
            let handle = axum_server::Handle::new();
            handles.push(handle.clone());
            tokio::spawn({
                let callers = callers.clone();
                let upstream = app.upstream.as_str().trim_end_matches('/').to_owned();
                let service = app.service.clone();
                let name = app.name.clone();
                async move {
                    if let Err(e) =
                        origin::serve(listener, name.clone(), service, callers, upstream, handle)
                            .await
                    {
                        tracing::error!(app = %name, error = %e, "the app's origin failed");
                    }
                }
            });
            if let AppRun::Command(command) = spec.run {
                let env = app.environment(&config);
                app.process = Some(AppProcess::spawn(&app.name, name_width, command, env));
            }
            apps.push(app);
        }
        let waits = apps.iter().filter_map(|app| {
            let port = app.port?;
            let name = app.name.clone();
            Some(async move {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                if !wait_for_port(addr, APP_READY_TIMEOUT).await {
                    tracing::warn!(app = %name, %addr, "the app is not listening on its PORT yet; requests get 502 until it does");
                }
            })
        });
        join_all(waits).await;

        let state = PlatformState {
            pid: std::process::id(),
            admin_url: String::new(),
            idp_url,
            tenant_id,
            issuer,
            ca_file,
            apps: apps
                .iter()
                .map(|a| {
                    (
                        a.name.clone(),
                        AppState {
                            url: a.url.as_str().trim_end_matches('/').to_owned(),
                            upstream: a.upstream.as_str().trim_end_matches('/').to_owned(),
                            client_id: a
                                .config
                                .try_lock()
                                .ok()
                                .and_then(|c| aad_client_id(&c.auth)),
                        },
                    )
                })
                .collect(),
            demo_user: demo_secrets.map(|s| DemoUser {
                username: format!("alice@{}", demo::TENANT_DOMAIN),
                password: s.user_password,
            }),
        };
        Ok(Platform {
            apps,
            placeholders,
            http,
            state,
            data_dir,
            handles,
            site_is_tutorial: tutorial,
            started_in: started.elapsed(),
        })
    }

    /// What other processes need to find this platform (written to `platform.json` once the
    /// admin API listens).
    pub fn state(&self) -> &PlatformState {
        &self.state
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn is_tutorial(&self) -> bool {
        self.site_is_tutorial
    }

    /// Records where the admin API listens and writes `platform.json`.
    pub fn publish(&mut self, admin_url: &str) -> Result<(), StartError> {
        self.state.admin_url = admin_url.to_owned();
        self.state
            .write(&self.data_dir)
            .map_err(|e| StartError::Io(e.to_string()))
    }

    /// Stops the apps and the servers; removes `platform.json`.
    pub async fn shutdown(&self) {
        let stops = self
            .apps
            .iter()
            .filter_map(|a| a.process.as_ref())
            .map(|p| p.stop());
        join_all(stops).await;
        for handle in &self.handles {
            handle.graceful_shutdown(Some(Duration::from_secs(3)));
        }
        PlatformState::remove(&self.data_dir, self.state.pid);
    }

    /// The pid of the app's current process (commands only, while it runs).
    pub fn process_id(&self, app: &str) -> Option<u32> {
        self.app(app).ok()?.process.as_ref()?.pid()
    }

    fn app(&self, name: &str) -> Result<&App, ControlError> {
        self.apps
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| ControlError::NoSuchApp {
                name: name.to_owned(),
                known: self.app_names(),
            })
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[async_trait::async_trait]
impl Control for Platform {
    fn app_names(&self) -> Vec<String> {
        self.apps.iter().map(|a| a.name.clone()).collect()
    }

    async fn auth_show(&self, app: &str) -> Result<Value, ControlError> {
        let app = self.app(app)?;
        let config = app.config.lock().await;
        Ok(resource(&app.name, &config.auth))
    }

    async fn auth_set(&self, app: &str, mut body: Value) -> Result<AuthSetOutcome, ControlError> {
        let app = self.app(app)?;
        let name = format!("authsettingsV2 of {}", app.name);
        self.placeholders
            .expand_json(&mut body)
            .map_err(|e| ControlError::Invalid(format!("{name}: {e}")))?;
        let (auth, warnings) = parse_auth(&name, &body).map_err(ControlError::Invalid)?;
        let mut config = app.config.lock().await;
        let next = AppConfig {
            auth,
            settings: config.settings.clone(),
        };
        let service = app.build_module(&next, &self.http).await.map_err(|e| {
            ControlError::Failed(format!(
                "the module could not be built, the previous settings stay: {e}"
            ))
        })?;
        app.service.swap(service);
        *config = next;
        tracing::info!(app = %app.name, "auth settings replaced; the new module serves the next request");
        Ok(AuthSetOutcome {
            resource: resource(&app.name, &config.auth),
            warnings,
        })
    }

    async fn appsettings_list(&self, app: &str) -> Result<BTreeMap<String, String>, ControlError> {
        let app = self.app(app)?;
        Ok(app.config.lock().await.settings.clone())
    }

    async fn appsettings_set(
        &self,
        app: &str,
        changes: BTreeMap<String, Option<String>>,
    ) -> Result<BTreeMap<String, String>, ControlError> {
        let app = self.app(app)?;
        for name in changes.keys() {
            crate::admin::check_setting_name(name)
                .map_err(|why| ControlError::Invalid(format!("{name:?}: {why}")))?;
        }
        let mut config = app.config.lock().await;
        let mut next = config.clone();
        for (k, v) in changes {
            match v {
                Some(v) => next.settings.insert(k, v),
                None => next.settings.remove(&k),
            };
        }
        // The module reads app settings too (the client secret, WEBSITE_AUTH_*).
        let service = app.build_module(&next, &self.http).await.map_err(|e| {
            ControlError::Failed(format!(
                "the module could not be built with these app settings, nothing was changed: {e}"
            ))
        })?;
        if let Some(process) = &app.process {
            process.restart(app.environment(&next)).await;
            if let Some(port) = app.port {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                if !wait_for_port(addr, APP_READY_TIMEOUT).await {
                    tracing::warn!(app = %app.name, %addr, "the restarted app is not listening yet");
                }
            }
        }
        app.service.swap(service);
        *config = next;
        tracing::info!(app = %app.name, "app settings changed; the app was restarted");
        Ok(config.settings.clone())
    }
}
