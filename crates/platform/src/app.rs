//! One app of the site at run time: its origin, its module (rebuilt on every change), its store,
//! its process, and the environment App Service would give that process.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use easyauth_module::build::{AppSettings, Environment, build};
use easyauth_module::config::AuthSettings;
use easyauth_module::oidc::OidcHttp;
use easyauth_module::pipeline::{BoxedService, proxy_service};
use easyauth_module::proxy::Upstream;
use easyauth_store::Store;
use tokio::sync::Mutex;

use crate::auth::aad_client_id;
use crate::origin::SwappableService;
use crate::platform::APP_READY_TIMEOUT;
use crate::supervisor::{AppProcess, wait_for_port};

/// How long a request may wait for the app's response headers (App Service's 230 s).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(230);

#[derive(Debug)]
pub(crate) struct App {
    pub(crate) name: String,
    pub(crate) url: url::Url,
    pub(crate) upstream: url::Url,
    pub(crate) port: Option<u16>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) service: SwappableService,
    pub(crate) process: Option<AppProcess>,
    pub(crate) config: Mutex<AppConfig>,
    pub(crate) ca_file: PathBuf,
}

#[derive(Debug, Clone)]
pub(crate) struct AppConfig {
    pub(crate) auth: AuthSettings,
    pub(crate) settings: BTreeMap<String, String>,
}

impl App {
    /// The module for `config`, in front of the app.
    pub(crate) async fn build_module(
        &self,
        config: &AppConfig,
        http: &OidcHttp,
    ) -> Result<BoxedService, String> {
        let env = Environment {
            // As on App Service, the site is the host a request came to (an app answers to its
            // loopback address and any name that resolves to it); callbacks follow it.
            public_url: None,
            scheme: "http",
            app_settings: AppSettings(
                config
                    .settings
                    .clone()
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            ),
            store: self.store.clone(),
            http: http.clone(),
            // A local platform explains every 401/403 to the caller, not only in the log.
            development: true,
        };
        let module = build(&config.auth, env).await.map_err(|e| e.to_string())?;
        let upstream =
            Upstream::new(&self.upstream, UPSTREAM_TIMEOUT).map_err(|e| e.to_string())?;
        Ok(proxy_service(Arc::new(module), upstream))
    }

    /// Waits (at most [`APP_READY_TIMEOUT`]) for a command app's PORT to accept connections;
    /// says so in the log when it does not.
    pub(crate) async fn wait_ready(&self) {
        let Some(port) = self.port else { return };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if !wait_for_port(addr, APP_READY_TIMEOUT).await {
            tracing::warn!(app = %self.name, %addr, "the app is not listening on its PORT yet; requests get 502 until it does");
        }
    }

    /// Restarts the app's process with the environment `config` gives it and waits for it;
    /// `false` when the app is an upstream URL (no process here).
    pub(crate) async fn restart_process(&self, config: &AppConfig) -> bool {
        let Some(process) = &self.process else {
            return false;
        };
        process.restart(self.environment(config)).await;
        self.wait_ready().await;
        true
    }

    /// `az webapp show`'s view of the app.
    pub(crate) fn overview(&self, config: &AppConfig) -> serde_json::Value {
        use crate::supervisor::ProcessStatus;
        let host = self
            .url
            .host_str()
            .map_or_else(String::new, |h| match self.url.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_owned(),
            });
        let (state, process) = match &self.process {
            None => ("Running", serde_json::Value::Null),
            Some(p) => {
                let (state, detail) = match p.status() {
                    ProcessStatus::Starting => ("Starting", serde_json::json!({})),
                    ProcessStatus::Running { pid } => ("Running", serde_json::json!({"pid": pid})),
                    ProcessStatus::BackingOff {
                        attempt,
                        retry_in,
                        reason,
                    } => (
                        "BackingOff",
                        serde_json::json!({"lastExit": reason, "attempt": attempt, "retryInSeconds": retry_in.as_secs_f64()}),
                    ),
                    ProcessStatus::Stopped => ("Stopped", serde_json::json!({})),
                };
                let mut detail = detail;
                detail["restarts"] = serde_json::json!(p.restarts());
                detail["port"] = serde_json::json!(self.port);
                (state, detail)
            }
        };
        serde_json::json!({
            "name": self.name,
            "state": state,
            "defaultHostName": host,
            "url": self.url.as_str().trim_end_matches('/'),
            "upstream": self.upstream.as_str().trim_end_matches('/'),
            "authEnabled": config.auth.platform.enabled,
            "clientId": crate::auth::aad_client_id(&config.auth),
            "process": process,
        })
    }

    /// The app process's environment, as App Service sets it: the app settings, each also as
    /// `APPSETTING_<name>`, `PORT`, `WEBSITE_*` facts about the site and its authentication.
    pub(crate) fn environment(&self, config: &AppConfig) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v.clone());
            env.insert(format!("APPSETTING_{k}"), v);
        };
        let auth = &config.auth;
        let enabled = auth.platform.enabled;
        set(
            "WEBSITE_AUTH_ENABLED",
            if enabled { "True" } else { "False" }.to_owned(),
        );
        set("WEBSITE_SITE_NAME", self.name.clone());
        if let Some(client_id) = aad_client_id(auth) {
            set("WEBSITE_AUTH_CLIENT_ID", client_id);
        }
        if let Some(issuer) = &auth
            .identity_providers
            .azure_active_directory
            .as_ref()
            .and_then(|a| a.registration.open_id_issuer.clone())
        {
            set("WEBSITE_AUTH_OPENID_ISSUER", issuer.clone());
        }
        for (k, v) in &config.settings {
            set(k, v.clone());
        }
        env.insert(
            "WEBSITE_HOSTNAME".into(),
            self.url
                .host_str()
                .map_or_else(String::new, |h| match self.url.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_owned(),
                }),
        );
        if let Some(port) = self.port {
            env.insert("PORT".into(), port.to_string());
            env.insert("WEBSITES_PORT".into(), port.to_string());
        }
        // Additive in Node; lets apps call the local identity provider over https.
        env.entry("NODE_EXTRA_CA_CERTS".into())
            .or_insert_with(|| self.ca_file.to_string_lossy().into_owned());
        env.insert(
            "EASYAUTH_CA_FILE".into(),
            self.ca_file.to_string_lossy().into_owned(),
        );
        env
    }
}

/// What an origin serves for the instant before its module is built.
pub(crate) fn starting() -> BoxedService {
    BoxedService::new(tower::service_fn(
        |_request: axum::extract::Request| async {
            Ok::<_, std::convert::Infallible>(
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response(),
            )
        },
    ))
}
