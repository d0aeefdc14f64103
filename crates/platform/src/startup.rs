//! The steps of `Platform::start`, in order: bind every listener, read the directory, work out
//! the placeholders, configure each app, serve the identity provider, start each app.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use easyauth_entra::directory::demo::{self, DemoSecrets};
use easyauth_entra::{Idp, IdpConfig, Seed};
use easyauth_module::oidc::OidcHttp;
use easyauth_pki::LocalCa;
use easyauth_store::{SqliteStore, Store};
use futures_util::future::join_all;
use tokio::sync::Mutex;

use crate::app::{App, AppConfig, starting};
use crate::auth::{aad_client_id, load_auth, register_callback};
use crate::explain::Callers;
use crate::origin::{self, SwappableService};
use crate::platform::{StartError, io};
use crate::site::{AppRun, AppSpec, Placeholders, Site};
use crate::state::{AppState, DemoUser, PlatformState};
use crate::supervisor::AppProcess;

/// An app's listeners and addresses, known before anything starts.
#[derive(Debug)]
pub(crate) struct Bound {
    listener: std::net::TcpListener,
    url: url::Url,
    upstream: url::Url,
    /// `PORT` for a command app.
    port: Option<u16>,
}

pub(crate) async fn open_store(path: &Path) -> Result<Arc<dyn Store>, StartError> {
    let store = SqliteStore::open(path)
        .await
        .map_err(|e| StartError::Io(format!("{}: {e}", path.display())))?;
    Ok(Arc::new(store))
}

/// The identity provider's listener on 127.0.0.1 and its base URL.
pub(crate) fn bind_idp(port: u16) -> Result<(std::net::TcpListener, String), StartError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = origin::bind(addr, "the identity provider").map_err(|e| {
        StartError::Io(format!(
            "{e} (is `easyauth idp` or another `easyauth up` running? `--idp-port 0` picks a free port)"
        ))
    })?;
    let port = listener
        .local_addr()
        .map_err(io("identity provider"))?
        .port();
    Ok((listener, format!("https://127.0.0.1:{port}")))
}

/// Each app's origin (127.0.0.2, .3, ... unless the site says) and, for a command, a free PORT.
pub(crate) fn bind_apps(site: &Site, default_port: u16) -> Result<Vec<Bound>, StartError> {
    let mut bound = Vec::with_capacity(site.apps.len());
    for (i, spec) in site.apps.iter().enumerate() {
        let ip = spec.address.unwrap_or(IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            u8::try_from(i + 2).unwrap_or(254),
        )));
        let addr = SocketAddr::new(ip, spec.port.unwrap_or(default_port));
        let listener = origin::bind(addr, "its origin").map_err(|e| StartError::App {
            app: spec.name.clone(),
            reason: format!("{e} (is another `easyauth up` running? `--port 0` picks free ports)"),
        })?;
        let local = listener.local_addr().map_err(io(&spec.name))?;
        let url = parse_url(&format!("http://{local}"))?;
        let (upstream, port) = match &spec.run {
            AppRun::Upstream(u) => (u.clone(), None),
            AppRun::Command(_) => {
                let port = free_port().map_err(io("finding a free port"))?;
                (parse_url(&format!("http://127.0.0.1:{port}"))?, Some(port))
            }
        };
        bound.push(Bound {
            listener,
            url,
            upstream,
            port,
        });
    }
    Ok(bound)
}

fn parse_url(text: &str) -> Result<url::Url, StartError> {
    url::Url::parse(text).map_err(|e| StartError::Io(format!("{text}: {e}")))
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The site's directory file, or the demo tenant with this data dir's generated secrets.
pub(crate) async fn directory(
    site: &Site,
    store: &dyn Store,
) -> Result<(Seed, Option<DemoSecrets>), StartError> {
    match &site.directory {
        Some(path) => {
            let seed = Seed::load(path).map_err(|e| StartError::Config(e.to_string()))?;
            for field in &seed.ignored_fields {
                tracing::warn!(file = %path.display(), path = %field, "unknown field in the directory file was ignored");
            }
            Ok((seed, None))
        }
        None => {
            let secrets = demo::secrets(store)
                .await
                .map_err(|e| StartError::Io(e.to_string()))?;
            Ok((demo::seed(&secrets), Some(secrets)))
        }
    }
}

/// What `${...}` in app settings and auth settings refers to (docs/platform.md lists them).
pub(crate) fn placeholders(
    site: &Site,
    bound: &[Bound],
    seed: &Seed,
    demo: Option<&DemoSecrets>,
    idp_url: &str,
    issuer: &str,
    ca_file: &Path,
) -> Placeholders {
    let mut p = Placeholders::default();
    p.insert("idp.url", idp_url);
    p.insert("idp.issuer", issuer);
    p.insert("tenant.id", &seed.tenant.id);
    p.insert("tenant.domain", &seed.tenant.domain);
    p.insert("ca_file", ca_file.to_string_lossy());
    for (spec, b) in site.apps.iter().zip(bound) {
        let base = format!("apps.{}", spec.name);
        p.insert(format!("{base}.url"), b.url.as_str().trim_end_matches('/'));
        p.insert(
            format!("{base}.upstream"),
            b.upstream.as_str().trim_end_matches('/'),
        );
    }
    if let Some(s) = demo {
        p.insert("demo.frontend.client_id", demo::FRONTEND_APP_ID);
        p.insert("demo.frontend.secret", &s.frontend_secret);
        p.insert("demo.backend.client_id", demo::BACKEND_APP_ID);
        p.insert("demo.backend.secret", &s.backend_secret);
        p.insert("demo.user.name", demo_user_name());
        p.insert("demo.user.password", &s.user_password);
    }
    p
}

fn demo_user_name() -> String {
    format!("alice@{}", demo::TENANT_DOMAIN)
}

/// Each app's auth settings and app settings (placeholders expanded); an app that signs in with
/// Entra gets its callback registered on its app registration.
pub(crate) fn configure_apps(
    site: &Site,
    bound: &[Bound],
    placeholders: &Placeholders,
    seed: &mut Seed,
) -> Result<Vec<AppConfig>, StartError> {
    let mut configs = Vec::with_capacity(site.apps.len());
    for (spec, b) in site.apps.iter().zip(bound) {
        let app_err = |reason: String| StartError::App {
            app: spec.name.clone(),
            reason,
        };
        let auth = load_auth(&spec.auth, placeholders).map_err(app_err)?;
        let mut settings = BTreeMap::new();
        for (k, v) in &spec.app_settings {
            let value = placeholders
                .expand(v)
                .map_err(|e| app_err(format!("app setting {k}: {e}")))?;
            settings.insert(k.clone(), value);
        }
        if let Some(client_id) = aad_client_id(&auth) {
            register_callback(seed, &client_id, &b.url);
        }
        configs.push(AppConfig { auth, settings });
    }
    Ok(configs)
}

/// Seeds and serves the identity provider over https (certificate from the local CA).
pub(crate) async fn serve_idp(
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    idp_url: &str,
    seed: &Seed,
    ca: &LocalCa,
) -> Result<axum_server::Handle<SocketAddr>, StartError> {
    let idp = Idp::start(store.clone(), IdpConfig::new(idp_url), seed)
        .await
        .map_err(|e| StartError::Config(e.to_string()))?;
    let hosts = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let tls = ca
        .server_config(&hosts)
        .map_err(|e| StartError::Io(e.to_string()))?;
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(tls),
    )
    .map_err(io("identity provider"))?
    .handle(handle.clone());
    let router = idp.router();
    tokio::spawn(async move {
        if let Err(e) = server.serve(router.into_make_service()).await {
            tracing::error!(error = %e, "the identity provider's server failed");
        }
    });
    tokio::spawn(easyauth_store::purge_periodically(
        store,
        Duration::from_secs(600),
    ));
    Ok(handle)
}

/// What every app's start shares.
#[derive(Debug)]
pub(crate) struct AppContext<'a> {
    pub(crate) data_dir: &'a Path,
    pub(crate) ca_file: &'a Path,
    pub(crate) http: &'a OidcHttp,
    pub(crate) callers: &'a Arc<Callers>,
    pub(crate) name_width: usize,
}

/// One app: its token store, its module, its origin serving, its process started.
pub(crate) async fn start_app(
    spec: AppSpec,
    bound: Bound,
    config: AppConfig,
    cx: &AppContext<'_>,
) -> Result<(App, axum_server::Handle<SocketAddr>), StartError> {
    let app_err = |reason: String| StartError::App {
        app: spec.name.clone(),
        reason,
    };
    let apps_dir = cx.data_dir.join("apps");
    std::fs::create_dir_all(&apps_dir).map_err(io("the data dir"))?;
    let store = open_store(&apps_dir.join(format!("{}.db", spec.name))).await?;
    let mut app = App {
        name: spec.name.clone(),
        url: bound.url,
        upstream: bound.upstream,
        port: bound.port,
        store,
        service: SwappableService::new(starting()),
        process: None,
        config: Mutex::new(config.clone()),
        ca_file: cx.ca_file.to_path_buf(),
    };
    let module = app.build_module(&config, cx.http).await.map_err(app_err)?;
    app.service.swap(module);
    let handle = axum_server::Handle::new();
    tokio::spawn({
        let callers = cx.callers.clone();
        let upstream = app.upstream.as_str().trim_end_matches('/').to_owned();
        let service = app.service.clone();
        let name = app.name.clone();
        let handle = handle.clone();
        let listener = bound.listener;
        async move {
            if let Err(e) =
                origin::serve(listener, name.clone(), service, callers, upstream, handle).await
            {
                tracing::error!(app = %name, error = %e, "the app's origin failed");
            }
        }
    });
    if let AppRun::Command(command) = spec.run {
        let env = app.environment(&config);
        app.process = Some(AppProcess::spawn(&app.name, cx.name_width, command, env));
    }
    Ok((app, handle))
}

/// Waits for every command app's PORT, all at once.
pub(crate) async fn wait_for_apps(apps: &[App]) {
    join_all(apps.iter().map(App::wait_ready)).await;
}

/// `platform.json`'s content (the admin URL is filled in once the admin API listens).
pub(crate) fn state(
    apps: &[App],
    idp_url: &str,
    seed: &Seed,
    issuer: String,
    ca_file: &Path,
    demo: Option<DemoSecrets>,
) -> PlatformState {
    PlatformState {
        pid: std::process::id(),
        admin_url: String::new(),
        idp_url: idp_url.to_owned(),
        tenant_id: seed.tenant.id.clone(),
        issuer,
        ca_file: ca_file.to_path_buf(),
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
        demo_user: demo.map(|s| DemoUser {
            username: demo_user_name(),
            password: s.user_password,
        }),
    }
}
