//! `easyauth idp`: the local Microsoft Entra ID over https.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use easyauth_entra::directory::demo::{self, DemoSecrets};
use easyauth_entra::health::{READY_TIMEOUT, ReadyCheck};
use easyauth_entra::{HttpsServer, Idp, IdpConfig, IdpMetrics, InitialDirectory, Seed};
use easyauth_pki::LocalCa;
use easyauth_store::{PostgresStore, SqliteStore, Store, StoreError, redact_url};

use crate::IdpArgs;
use crate::ops::{self, OpsListener};

const STORE_FILE: &str = "easyauth.db";
/// How often replicas on a shared store re-read it, unless told otherwise.
const DEFAULT_REPLICA_REFRESH: i64 = 5;
/// The longest wait between two attempts to reach an unreachable database at start.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// Which store a `--store` value names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoreSpec {
    /// The SQLite file in the data dir (the default: nothing to install).
    DataDir,
    Postgres(String),
}

impl StoreSpec {
    pub(crate) fn parse(value: Option<&str>) -> anyhow::Result<StoreSpec> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(StoreSpec::DataDir);
        };
        let scheme = value.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => Ok(StoreSpec::Postgres(value.to_owned())),
            _ => anyhow::bail!(
                "--store {}: not a store URL this build knows; use postgres://user:password@host:port/database \
                 (or leave it unset for the SQLite file in the data dir)",
                redact_url(value)
            ),
        }
    }
}

/// Opens the store. An unreachable PostgreSQL is waited for (with a log line per attempt)
/// rather than exiting, so a replica started before its database does not crash-loop; any
/// other failure (bad URL, refused login, newer schema) stops with the reason.
async fn open_store(
    spec: &StoreSpec,
    data_dir: &std::path::Path,
) -> anyhow::Result<Arc<dyn Store>> {
    match spec {
        StoreSpec::DataDir => Ok(Arc::new(
            SqliteStore::open(&data_dir.join(STORE_FILE)).await?,
        )),
        StoreSpec::Postgres(url) => {
            let mut wait = Duration::from_millis(500);
            loop {
                match PostgresStore::open(url).await {
                    Ok(store) => return Ok(Arc::new(store)),
                    Err(StoreError::Unavailable(reason)) => {
                        tracing::warn!(
                            store = %redact_url(url),
                            %reason,
                            retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                            "PostgreSQL is unreachable; waiting for it"
                        );
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(MAX_RETRY_WAIT);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

pub(crate) async fn run(args: IdpArgs) -> anyhow::Result<()> {
    let spec = StoreSpec::parse(args.store.as_deref())?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data dir {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir).unwrap_or(args.data_dir.clone());
    // The operations listener serves before the store opens: while an unreachable database is
    // waited for, /healthz says the process lives and /readyz that it is not ready yet.
    let ops_listener = match args.ops_listen {
        Some(addr) => Some(OpsListener::bind(addr).await?),
        None => None,
    };
    let mut registry = ops::registry();
    let metrics = ops_listener
        .as_ref()
        .map(|_| IdpMetrics::register(&mut registry));
    let started: Arc<OnceLock<Arc<Idp>>> = Arc::new(OnceLock::new());
    let mut ops_banner = ops_listener.as_ref().map(OpsListener::banner);
    if let (StoreSpec::Postgres(_), Some(line)) = (&spec, &ops_banner) {
        // The database may keep the rest of the banner waiting: say at once where to probe.
        println!("{line}");
        ops_banner = None;
    }
    if let Some(ops_listener) = ops_listener {
        let started = started.clone();
        ops_listener.spawn(
            registry,
            ops::readiness(move || {
                let idp = started.get().cloned();
                async move {
                    match idp {
                        Some(idp) => idp.readiness(READY_TIMEOUT).await,
                        None => vec![ReadyCheck {
                            name: "store".to_owned(),
                            problem: Some(
                                "not open yet (an unreachable database is retried)".to_owned(),
                            ),
                        }],
                    }
                }
            }),
        );
    }
    let store = open_store(&spec, &data_dir).await?;

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
    config.key_rotation_period = args.key_rotation;
    if let StoreSpec::Postgres(_) = spec {
        config.refresh_interval = Some(args.replica_refresh.unwrap_or(DEFAULT_REPLICA_REFRESH));
    }
    config.metrics = metrics;
    let idp = Idp::start(store.clone(), config, &seed).await?;
    let _ = started.set(idp.clone());

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
    if let Some(ops_banner) = &ops_banner {
        listening.push('\n');
        listening.push_str(ops_banner);
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
    match &spec {
        StoreSpec::DataDir => println!("  store           {}", data_dir.join(STORE_FILE).display()),
        StoreSpec::Postgres(url) => println!("  store           {}", redact_url(url)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(StoreSpec::parse(None).ok(), Some(StoreSpec::DataDir));
        assert_eq!(StoreSpec::parse(Some(" ")).ok(), Some(StoreSpec::DataDir));
        assert!(matches!(
            StoreSpec::parse(Some("postgresql://db/idp")),
            Ok(StoreSpec::Postgres(_))
        ));
        let refused = StoreSpec::parse(Some("mysql://app:s3cret@db/idp"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("postgres://"), "{refused}");
        assert!(!refused.contains("s3cret"), "{refused}");
    }
}
