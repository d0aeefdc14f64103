//! `easyauth forward-auth`: the authentication module as the auth service of a reverse proxy the
//! site already runs. The same settings, store and module as `easyauth proxy`, without an
//! upstream: the front proxy asks `/.auth/forward/<style>` and forwards to the app itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use easyauth_module::{
    AppSettings, AuthSettings, Environment, ForwardAuth, OidcHttp, ProxyNet, TrustedProxies,
};
use easyauth_store::{SqliteStore, Store};

#[derive(Debug, Args)]
pub(crate) struct ForwardAuthArgs {
    /// authsettingsV2 JSON (`az webapp auth show` output, its `properties`, v1 authsettings, or the file-based format).
    #[arg(long, env = "EASYAUTH_AUTH_SETTINGS")]
    pub(crate) auth_settings: PathBuf,
    /// Address to listen on (the front proxy's side; loopback unless told otherwise).
    #[arg(long, env = "EASYAUTH_LISTEN", default_value = "127.0.0.1:8081")]
    pub(crate) listen: SocketAddr,
    /// Where the token store and generated cookie keys are kept.
    #[arg(long, env = "EASYAUTH_DATA_DIR", default_value = ".easyauth")]
    pub(crate) data_dir: PathBuf,
    /// The site's external base URL; without it the site is the host each request came to
    /// (`X-Forwarded-Host` from a trusted proxy).
    #[arg(long, env = "EASYAUTH_PUBLIC_URL")]
    pub(crate) public_url: Option<url::Url>,
    /// A front proxy (IP address or CIDR block) whose X-Forwarded-* / X-Original-* headers are
    /// believed; repeatable. None by default: the headers of every peer are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "EASYAUTH_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub(crate) trusted_proxies: Vec<ProxyNet>,
    /// The scheme the site is served over when no trusted proxy says (`X-Forwarded-Proto`).
    #[arg(long, env = "EASYAUTH_SITE_SCHEME", default_value = "http", value_parser = ["http", "https"])]
    pub(crate) site_scheme: String,
    /// Explain every 401/403 in the response body and headers too (the log always does).
    #[arg(long, env = "EASYAUTH_DEVELOPMENT")]
    pub(crate) development: bool,
    #[command(flatten)]
    pub(crate) sessions: crate::session_store::SessionStoreArgs,
}

pub(crate) async fn run(args: ForwardAuthArgs) -> anyhow::Result<()> {
    let loaded = AuthSettings::load(&args.auth_settings)?;
    for warning in &loaded.warnings {
        tracing::warn!(file = %args.auth_settings.display(), "{warning}");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data dir {}", args.data_dir.display()))?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&args.data_dir.join("easyauth.db")).await?);
    let session_store = args.sessions.backend()?;
    let scheme = if args.site_scheme == "https" {
        "https"
    } else {
        "http"
    };
    let env = Environment {
        public_url: args.public_url.clone(),
        scheme,
        app_settings: AppSettings::from_env(),
        store,
        http: OidcHttp::new()?,
        development: args.development,
        session_store: session_store.clone(),
    };
    let trusted = TrustedProxies::new(args.trusted_proxies.clone());
    let service = ForwardAuth::build(&loaded.settings, env, trusted.clone()).await?;
    let module = service.module().clone();
    let router = axum::Router::new().fallback_service(service.into_service());

    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let prefix = module.settings().api_prefix.clone();
    println!("easyauth forward-auth: App Service authentication for your reverse proxy");
    println!("  listening       http://{}", args.listen);
    println!("  routes          {prefix}/* (send the site's {prefix}/ here)");
    for (style, proxy) in [
        ("nginx", "nginx auth_request"),
        ("caddy", "Caddy forward_auth"),
        ("traefik", "Traefik ForwardAuth"),
        ("envoy", "Envoy ext_authz (path_prefix)"),
    ] {
        println!(
            "  check           http://{}{prefix}/forward/{style}  ({proxy})",
            args.listen
        );
    }
    if trusted.is_empty() {
        println!(
            "  trusted proxies none: X-Forwarded-* / X-Original-* are ignored (--trusted-proxy)"
        );
    } else {
        let nets: Vec<String> = trusted.nets().iter().map(ToString::to_string).collect();
        println!("  trusted proxies {}", nets.join(", "));
    }
    match &args.public_url {
        Some(url) => println!("  site            {url} (--public-url)"),
        None => println!(
            "  site            the host each request names (X-Forwarded-Host from a trusted proxy)"
        ),
    }
    crate::session_store::print_banner(&module, &session_store);
    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));
    let make = router.into_make_service_with_connect_info::<SocketAddr>();
    axum_server::from_tcp(listener)?
        .handle(handle)
        .serve(make)
        .await?;
    Ok(())
}

async fn shutdown_on_signal(handle: axum_server::Handle<SocketAddr>) {
    crate::idp::wait_for_signal().await;
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
}
