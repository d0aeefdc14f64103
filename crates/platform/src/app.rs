//! One web app at run time: its origin (behind its authentication module), its SCM endpoint
//! (Kudu), its token store, what it runs (a site-file command, an upstream URL, its current
//! deployment, or nothing yet), and the environment App Service would give its process.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::response::IntoResponse;
use easyauth_arm::WebApp;
use easyauth_module::{AppSettings, AuthSettings, BoxedService, Environment, OidcHttp, ProxyStack};
use easyauth_store::Store;
use tokio::sync::Mutex;

use crate::auth::aad_client_id;
use crate::origin::SwappableService;
use crate::supervisor::{AppCommand, AppProcess, ProcessStatus, wait_for_port};

/// How long start-up waits for an app's port before reporting it as not listening yet.
pub(crate) const APP_READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a request may wait for the app's response headers (App Service's 230 s).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(230);

/// What an app runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Run {
    /// A command from the site file (or the tutorial's sample apps).
    Command(AppCommand),
    /// An app that already runs elsewhere (http only); only the module is ours.
    Upstream(url::Url),
    /// The current deployment made through Kudu.
    Deployment(easyauth_kudu::BuiltDeployment),
    /// Nothing deployed yet: App Service's "waiting for your content" page.
    Empty,
}

/// The process of an app, with the port it was given.
#[derive(Debug, Clone)]
pub(crate) struct Running {
    pub(crate) process: AppProcess,
    pub(crate) port: u16,
}

#[derive(Debug)]
pub(crate) struct App {
    pub(crate) name: String,
    /// `http://127.0.0.N:<port>`: the site's origin.
    pub(crate) url: url::Url,
    /// `https://127.0.0.N:<port>`: the site's SCM (Kudu) endpoint.
    pub(crate) scm_url: url::Url,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) service: SwappableService,
    pub(crate) config: Mutex<AppConfig>,
    pub(crate) run: Mutex<Run>,
    pub(crate) running: std::sync::Mutex<Option<Running>>,
    /// Where the module sends requests now (shared with the origin, which names it when the app
    /// does not answer).
    pub(crate) upstream: Arc<std::sync::Mutex<url::Url>>,
    /// Where an app with nothing to run is sent (the shared "waiting for content" page).
    pub(crate) hostingstart: url::Url,
    pub(crate) ca_file: PathBuf,
    pub(crate) kudu: OnceLock<Arc<easyauth_kudu::Kudu>>,
    pub(crate) handles: Vec<axum_server::Handle<SocketAddr>>,
    pub(crate) name_width: usize,
    /// Read without waiting for a change in progress: the SCM endpoint's Basic credentials
    /// (`None`: basic authentication is off) and whether the site is stopped.
    pub(crate) facts: std::sync::Mutex<Facts>,
    /// What the log stream shows: every process's output, and the platform's explanations.
    pub(crate) log: crate::applog::AppLog,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) stopped: bool,
}

impl Facts {
    pub(crate) fn of(site: &WebApp) -> Facts {
        Facts {
            credentials: site
                .basic_auth_scm
                .then(|| (site.publishing_user(), site.publishing_password.clone())),
            stopped: site.stopped,
        }
    }
}

/// What the module and the process are built from.
#[derive(Debug, Clone)]
pub(crate) struct AppConfig {
    pub(crate) auth: AuthSettings,
    pub(crate) settings: BTreeMap<String, String>,
    /// The Resource Manager's document, as last applied.
    pub(crate) site: WebApp,
}

impl App {
    pub(crate) fn facts(&self) -> Facts {
        self.facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_facts(&self, site: &WebApp) {
        *self
            .facts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Facts::of(site);
    }

    /// Where the module sends requests now.
    pub(crate) fn current_upstream(&self) -> url::Url {
        self.upstream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn current_running(&self) -> Option<Running> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records what runs now and where the module sends requests; returns what ran before.
    pub(crate) fn set_running(
        &self,
        running: Option<Running>,
        upstream: url::Url,
    ) -> Option<Running> {
        *self
            .upstream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = upstream;
        std::mem::replace(
            &mut *self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            running,
        )
    }

    pub(crate) fn process(&self) -> Option<AppProcess> {
        self.current_running().map(|r| r.process)
    }

    pub(crate) fn port(&self) -> Option<u16> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|r| r.port)
    }

    /// The module for `config`, in front of `upstream`.
    pub(crate) async fn build_module(
        &self,
        config: &AppConfig,
        upstream: &url::Url,
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
            session_store: Default::default(),
        };
        let stack = ProxyStack::build(&config.auth, env, upstream, UPSTREAM_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        Ok(stack.into_service())
    }

    /// The app process's environment, as App Service sets it: the app settings, each also as
    /// `APPSETTING_<name>`, `PORT`, `WEBSITE_*` facts about the site and its authentication.
    pub(crate) fn environment(&self, config: &AppConfig, port: u16) -> BTreeMap<String, String> {
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
        env.insert("WEBSITE_HOSTNAME".into(), host_port(&self.url));
        env.insert("WEBSITE_RESOURCE_GROUP".into(), config.site.group.clone());
        env.insert("PORT".into(), port.to_string());
        env.insert("WEBSITES_PORT".into(), port.to_string());
        // Additive in Node; lets apps call the local identity provider over https.
        env.entry("NODE_EXTRA_CA_CERTS".into())
            .or_insert_with(|| self.ca_file.to_string_lossy().into_owned());
        env.insert(
            "EASYAUTH_CA_FILE".into(),
            self.ca_file.to_string_lossy().into_owned(),
        );
        env
    }

    /// Waits (at most [`APP_READY_TIMEOUT`]) for the app's PORT; says so in the log when it
    /// does not answer.
    pub(crate) async fn wait_ready(&self) {
        let Some(port) = self.port() else { return };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        if !wait_for_port(addr, APP_READY_TIMEOUT).await {
            tracing::warn!(app = %self.name, %addr, "the app is not listening on its PORT yet; requests get 502 until it does");
        }
    }

    /// `az webapp show`'s extra facts about the app (under `properties.easyauth`).
    pub(crate) fn detail(&self) -> serde_json::Value {
        let (state, process) = match self.process() {
            None => ("Running", serde_json::Value::Null),
            Some(p) => {
                let (state, mut detail) = match p.status() {
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
                detail["restarts"] = serde_json::json!(p.restarts());
                detail["port"] = serde_json::json!(self.port());
                (state, detail)
            }
        };
        let run = match self.run.try_lock().ok().as_deref() {
            Some(Run::Command(_)) => "command",
            Some(Run::Upstream(_)) => "upstream",
            Some(Run::Deployment(_)) => "deployment",
            Some(Run::Empty) => "empty",
            None => "changing",
        };
        serde_json::json!({
            "processState": state,
            "url": self.url.as_str().trim_end_matches('/'),
            "scmUrl": self.scm_url.as_str().trim_end_matches('/'),
            "upstream": self.current_upstream().as_str().trim_end_matches('/'),
            "runs": run,
            "process": process,
        })
    }
}

/// `http://127.0.0.1:<port>`.
pub(crate) fn local(port: u16) -> url::Url {
    #[allow(clippy::expect_used)]
    url::Url::parse(&format!("http://127.0.0.1:{port}")).expect("a loopback URL parses")
}

/// `host:port` of a URL (`127.0.0.2:8080`).
pub(crate) fn host_port(url: &url::Url) -> String {
    url.host_str()
        .map_or_else(String::new, |h| match url.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_owned(),
        })
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

/// What a stopped app serves: App Service's "Error 403 - This web app is stopped."
pub(crate) fn stopped() -> BoxedService {
    BoxedService::new(tower::service_fn(
        |_request: axum::extract::Request| async {
            Ok::<_, std::convert::Infallible>(
                (
                    axum::http::StatusCode::FORBIDDEN,
                    axum::response::Html(
                        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Web app stopped</title></head>\
                         <body><h1>Error 403 - This web app is stopped.</h1>\
                         <p>Start it with <code>az webapp start</code>.</p></body></html>",
                    ),
                )
                    .into_response(),
            )
        },
    ))
}
