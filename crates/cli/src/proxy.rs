//! `easyauth proxy`: App Service's authentication module in front of any app.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use easyauth_entra::health::ReadyCheck;
use easyauth_module::health::{READY_TIMEOUT, readiness};
use easyauth_module::{AppSettings, AuthSettings, Environment, OidcHttp, ProxyStack, Upstream};
use easyauth_store::{SqliteStore, Store};

use crate::ProxyArgs;
use crate::ops::{self, OpsListener};

pub(crate) async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    let loaded = AuthSettings::load(&args.auth_settings)?;
    for warning in &loaded.warnings {
        tracing::warn!(file = %args.auth_settings.display(), "{warning}");
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data dir {}", args.data_dir.display()))?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&args.data_dir.join("easyauth.db")).await?);
    let session_store = args.sessions.backend()?;
    let scheme = if args.tls { "https" } else { "http" };
    let public_url = args.public_url.clone();
    let env = Environment {
        public_url: public_url.clone(),
        scheme,
        app_settings: AppSettings::from_env(),
        store,
        http: OidcHttp::new()?,
        development: args.development,
        session_store: session_store.clone(),
    };
    let ops_listener = match args.ops_listen {
        Some(addr) => Some(OpsListener::bind(addr).await?),
        None => None,
    };
    let mut module = easyauth_module::build(&loaded.settings, env).await?;
    let mut registry = ops::registry();
    if ops_listener.is_some() {
        module = module.instrument(&mut registry);
    }
    let module = Arc::new(module);
    let upstream = Upstream::new(&args.upstream, Duration::from_secs(args.upstream_timeout))?;
    let stack = ProxyStack::new(module.clone(), upstream);
    let router = axum::Router::new().fallback_service(stack.into_service());

    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    println!(
        "easyauth proxy: App Service authentication in front of {}",
        args.upstream
    );
    println!("  listening       {scheme}://{}", args.listen);
    if let Some(ops_listener) = &ops_listener {
        println!("{}", ops_listener.banner());
    }
    let callbacks: Vec<String> = module
        .providers()
        .iter()
        .map(|p| format!("/.auth/login/{}/callback", p.alias()))
        .collect();
    match &public_url {
        Some(url) => {
            println!("  site            {url} (--public-url)");
            let base = url.as_str().trim_end_matches('/');
            for c in &callbacks {
                println!(
                    "  redirect URI    {base}{}",
                    c.replacen("/.auth", &module.settings().api_prefix, 1)
                );
            }
        }
        None => {
            println!(
                "  site            the host each request names (open {scheme}://{})",
                args.listen
            );
            for host in site_hosts(args.listen) {
                for c in &callbacks {
                    println!(
                        "  redirect URI    {scheme}://{host}{}",
                        c.replacen("/.auth", &module.settings().api_prefix, 1)
                    );
                }
            }
        }
    }
    crate::session_store::print_banner(&module, &session_store);
    if let Some(ops_listener) = ops_listener {
        let ready_module = module.clone();
        ops_listener.spawn(
            registry,
            ops::readiness(move || {
                let module = ready_module.clone();
                async move {
                    readiness(&module, READY_TIMEOUT)
                        .await
                        .into_iter()
                        .map(|c| ReadyCheck {
                            name: c.name,
                            problem: c.problem,
                        })
                        .collect()
                }
            }),
        );
    }
    tokio::spawn(shutdown_on_signal(handle.clone()));
    let make = router.into_make_service_with_connect_info::<SocketAddr>();
    if args.tls {
        let ca = easyauth_pki::LocalCa::load_or_create(&args.data_dir)?;
        let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        if let Some(h) = public_url.as_ref().and_then(|u| u.host_str()) {
            hosts.insert(0, h.to_owned());
        }
        hosts.dedup();
        let config = axum_server::tls_rustls::RustlsConfig::from_config(ca.server_config(&hosts)?);
        println!("  CA certificate  {}", ca.cert_path().display());
        axum_server::from_tcp_rustls(listener, config)?
            .handle(handle)
            .serve(make)
            .await?;
    } else {
        axum_server::from_tcp(listener)?
            .handle(handle)
            .serve(make)
            .await?;
    }
    Ok(())
}

/// The `host:port` forms a browser on this machine can use for the listener: the address
/// itself, and `localhost` for a loopback or unspecified address.
fn site_hosts(listen: SocketAddr) -> Vec<String> {
    let port = listen.port();
    let ip = listen.ip();
    let mut hosts = Vec::new();
    if ip.is_unspecified() {
        hosts.push(format!("127.0.0.1:{port}"));
    } else if ip.is_ipv6() {
        hosts.push(format!("[{ip}]:{port}"));
    } else {
        hosts.push(format!("{ip}:{port}"));
    }
    if ip.is_loopback() || ip.is_unspecified() {
        hosts.push(format!("localhost:{port}"));
    }
    hosts
}

async fn shutdown_on_signal(handle: axum_server::Handle<SocketAddr>) {
    crate::idp::wait_for_signal().await;
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
}
