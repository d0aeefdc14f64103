//! `easyauth idp`: the local Microsoft Entra ID over https.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use easyauth_entra::directory::demo::{self, DemoSecrets};
use easyauth_entra::health::READY_TIMEOUT;
use easyauth_entra::{HttpsServer, Idp, IdpConfig, IdpMetrics, InitialDirectory, Seed};
use easyauth_pki::LocalCa;
use easyauth_store::{SqliteStore, Store};

use crate::IdpArgs;
use crate::ops::{self, OpsListener};

const STORE_FILE: &str = "easyauth.db";

pub(crate) async fn run(args: IdpArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data dir {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir).unwrap_or(args.data_dir.clone());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&data_dir.join(STORE_FILE)).await?);

    let InitialDirectory {
        seed,
        demo: demo_secrets,
    } = InitialDirectory::file_or_demo(args.directory.as_deref(), store.as_ref()).await?;

    let listen = args.listen;
    let public_url = match &args.public_url {
        Some(u) => u.as_str().trim_end_matches('/').to_owned(),
        None => {
            let host = if listen.ip().is_unspecified() || listen.ip().is_loopback() {
                "localhost".to_owned()
            } else {
                listen.ip().to_string()
            };
            format!("https://{host}:{}", listen.port())
        }
    };
    let mut config = IdpConfig::new(&public_url);
    config.access_token_lifetime = args.access_token_lifetime;
    config.id_token_lifetime = args.id_token_lifetime;
    config.refresh_token_lifetime = args.refresh_token_lifetime;
    let ops_listener = match args.ops_listen {
        Some(addr) => Some(OpsListener::bind(addr).await?),
        None => None,
    };
    let mut registry = ops::registry();
    if ops_listener.is_some() {
        config.metrics = Some(IdpMetrics::register(&mut registry));
    }
    let idp = Idp::start(store.clone(), config, &seed).await?;

    let ca = LocalCa::load_or_create(&data_dir)?;
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = url::Url::parse(&public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    {
        hosts.insert(0, host.trim_matches(['[', ']']).to_owned());
    }
    if !listen.ip().is_unspecified() {
        hosts.push(listen.ip().to_string());
    }
    hosts.dedup();
    let tls = ca.server_config(&hosts)?;

    let listener = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot listen on {listen}"))?;
    let server = HttpsServer::new(idp.clone(), listener, tls)?;

    // The addresses it serves on, first in the banner.
    let mut listening = format!("  listening       https://{listen}");
    if let Some(ops_listener) = &ops_listener {
        listening.push('\n');
        listening.push_str(&ops_listener.banner());
    }
    print_banner(
        &idp,
        &public_url,
        &listening,
        &ca,
        &data_dir,
        demo_secrets.as_ref(),
        &seed,
    );
    if let Some(ops_listener) = ops_listener {
        let ready_idp = idp.clone();
        ops_listener.spawn(
            registry,
            ops::readiness(move || {
                let idp = ready_idp.clone();
                async move { idp.readiness(READY_TIMEOUT).await }
            }),
        );
    }
    tokio::spawn(shutdown_on_signal(server.handle()));
    server.serve().await.context("the https server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Demo secrets are generated once per data dir, never hard-coded.
fn print_banner(
    idp: &Idp,
    public_url: &str,
    listening: &str,
    ca: &LocalCa,
    data_dir: &std::path::Path,
    demo: Option<&DemoSecrets>,
    seed: &Seed,
) {
    let tid = idp.tenant_id();
    println!("easyauth idp: a local Microsoft Entra ID is ready");
    println!("{listening}");
    println!("  tenant          {tid} ({})", seed.tenant.domain);
    println!("  authority       {public_url}/{tid}");
    println!("  issuer          {}", idp.issuer());
    println!(
        "  discovery       {}/.well-known/openid-configuration",
        idp.issuer()
    );
    println!("  graph /me       {public_url}/v1.0/me");
    println!("  CA certificate  {}", ca.cert_path().display());
    println!(
        "                  trust it with REQUESTS_CA_BUNDLE, SSL_CERT_FILE or NODE_EXTRA_CA_CERTS"
    );
    println!("  data dir        {}", data_dir.display());
    println!(
        "  MSAL            Python: instance_discovery=False; Node: knownAuthorities: [\"{}\"]",
        host_port(public_url)
    );
    println!("  users           {}", seed.users.len());
    println!("  applications    {}", seed.applications.len());
    if let Some(d) = demo {
        println!("demo tenant (generated for this data dir):");
        println!(
            "  sign in as      alice@{}  /  {}",
            demo::TENANT_DOMAIN,
            d.user_password
        );
        println!(
            "  front end app   {}  secret {}",
            demo::FRONTEND_APP_ID,
            d.frontend_secret
        );
        println!(
            "  back end app    {}  secret {}",
            demo::BACKEND_APP_ID,
            d.backend_secret
        );
        println!(
            "  back end scope  api://{}/user_impersonation",
            demo::BACKEND_APP_ID
        );
    }
}

fn host_port(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(443)))
        })
        .unwrap_or_default()
}

async fn shutdown_on_signal(handle: axum_server::Handle<std::net::SocketAddr>) {
    wait_for_signal().await;
    tracing::info!("shutting down");
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
