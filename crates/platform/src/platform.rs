//! The running platform: the identity provider, one origin + authentication module + process per
//! app, and the controls the admin API exposes.
//!
//! Start-up order matters: every listener is bound first (so `--port 0` works and every URL is
//! known), then placeholders are expanded and each app's callback is registered on its app
//! registration, then the identity provider serves, then each module is built (building one
//! fetches the provider's metadata) and each app starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use easyauth_module::oidc::OidcHttp;
use easyauth_pki::LocalCa;
use futures_util::future::join_all;
use serde_json::Value;

use crate::app::{App, AppConfig};
use crate::auth::{aad_client_id, parse_auth, resource};
use crate::control::{AuthSetOutcome, Control, ControlError};
use crate::explain::Callers;
use crate::site::{Placeholders, Site};
use crate::startup;
use crate::state::PlatformState;

/// How long start-up waits for an app's port before reporting it as not listening yet.
pub(crate) const APP_READY_TIMEOUT: Duration = Duration::from_secs(20);
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

pub(crate) fn io(context: &str) -> impl Fn(std::io::Error) -> StartError + '_ {
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
        let http = OidcHttp::with_extra_root_pem(ca.cert_pem().as_bytes())
            .map_err(|e| StartError::Io(e.to_string()))?;
        let idp_store = startup::open_store(&data_dir.join(IDP_STORE)).await?;

        // 1. Every listener, so that every URL is known (`--port 0` included).
        let (idp_listener, idp_url) = startup::bind_idp(options.idp_port)?;
        let bound = startup::bind_apps(&site, options.port)?;
        // 2. The directory, and what `${...}` can refer to.
        let (mut seed, demo) = startup::directory(&site, idp_store.as_ref()).await?;
        let issuer = format!("{idp_url}/{}/v2.0", seed.tenant.id);
        let placeholders = startup::placeholders(
            &site,
            &bound,
            &seed,
            demo.as_ref(),
            &idp_url,
            &issuer,
            ca.cert_path(),
        );
        // 3. Each app's settings; its callback registered on its app registration.
        let configs = startup::configure_apps(&site, &bound, &placeholders, &mut seed)?;
        // 4. The identity provider (modules fetch its metadata when they are built).
        let mut handles =
            vec![startup::serve_idp(idp_listener, idp_store, &idp_url, &seed, &ca).await?];
        // 5. Each app: module, origin, process; then wait for their ports.
        let callers = Arc::new(Callers::new(site.apps.iter().zip(&configs).filter_map(
            |(spec, config)| Some((aad_client_id(&config.auth)?, spec.name.clone())),
        )));
        let name_width = site.apps.iter().map(|a| a.name.len()).max().unwrap_or(0);
        let mut apps = Vec::with_capacity(site.apps.len());
        for ((spec, bound), config) in site.apps.into_iter().zip(bound).zip(configs) {
            let context = startup::AppContext {
                data_dir: &data_dir,
                ca_file: ca.cert_path(),
                http: &http,
                callers: &callers,
                name_width,
            };
            let (app, handle) = startup::start_app(spec, bound, config, &context).await?;
            handles.push(handle);
            apps.push(app);
        }
        startup::wait_for_apps(&apps).await;

        let state = startup::state(&apps, &idp_url, &seed, issuer, ca.cert_path(), demo);
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

#[async_trait::async_trait]
impl Control for Platform {
    fn app_names(&self) -> Vec<String> {
        self.apps.iter().map(|a| a.name.clone()).collect()
    }

    async fn show(&self, app: &str) -> Result<Value, ControlError> {
        let app = self.app(app)?;
        let config = app.config.lock().await;
        Ok(app.overview(&config))
    }

    async fn restart(&self, app: &str) -> Result<(), ControlError> {
        let app = self.app(app)?;
        let config = app.config.lock().await;
        if !app.restart_process(&config).await {
            return Err(ControlError::Invalid(format!(
                "{} is an upstream URL ({}); easyauth does not run it, so it cannot restart it",
                app.name, app.upstream
            )));
        }
        tracing::info!(app = %app.name, "app restarted");
        Ok(())
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
        app.restart_process(&next).await;
        app.service.swap(service);
        *config = next;
        tracing::info!(app = %app.name, "app settings changed; the app was restarted");
        Ok(config.settings.clone())
    }
}
