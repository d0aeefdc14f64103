//! The `easyauth` command.

mod az;
mod forward_auth;
mod idp;
mod ops;
mod proxy;
mod runtime;
mod sample;
mod session_store;
mod up;
mod webapp;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "easyauth",
    version,
    about = "Azure App Service authentication (Easy Auth) and a local Microsoft Entra ID, anywhere"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (tracing's env-filter syntax), e.g. `info` or `easyauth=debug`.
    #[arg(long, env = "EASYAUTH_LOG", default_value = "info", global = true)]
    log: String,
    /// Log line format.
    #[arg(long, env = "EASYAUTH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Async worker threads (default: one per CPU the process may use; 1, or a single usable CPU,
    /// = a single-threaded scheduler).
    #[arg(long, env = "EASYAUTH_WORKER_THREADS", global = true)]
    worker_threads: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the local Microsoft Entra ID (OpenID Connect / OAuth 2.0 identity provider).
    Idp(IdpArgs),
    /// Run App Service's authentication module as a reverse proxy in front of an app.
    Proxy(ProxyArgs),
    /// Run the authentication module as the auth service of your own reverse proxy (nginx
    /// auth_request, Caddy forward_auth, Traefik ForwardAuth, Envoy ext_authz): docs/forward-auth.md.
    ForwardAuth(forward_auth::ForwardAuthArgs),
    /// Run the local platform: the identity provider and several apps, each behind its own
    /// authentication module on its own origin. Without --site: Microsoft's tutorial.
    Up(up::UpArgs),
    /// az-style commands against a running `easyauth up` (`az webapp auth ...`,
    /// `az webapp config appsettings ...`), through its Resource Manager.
    Webapp(webapp::WebappArgs),
    /// Run your own Azure CLI against a running `easyauth up` (a private AZURE_CONFIG_DIR,
    /// the local CA, the local cloud registered and selected, signed in).
    Az(az::AzArgs),
    /// Print the environment that points a plain `az` at a running `easyauth up`:
    /// `eval "$(easyauth env)"`.
    Env(az::EnvArgs),
    /// Run one of the tutorial's sample apps (used by `up`).
    #[command(hide = true)]
    Sample(sample::SampleArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// The app behind the module (an http:// URL).
    #[arg(long, env = "EASYAUTH_UPSTREAM")]
    pub(crate) upstream: url::Url,
    /// authsettingsV2 JSON (`az webapp auth show` output, its `properties`, v1 authsettings, or the file-based format).
    #[arg(long, env = "EASYAUTH_AUTH_SETTINGS")]
    pub(crate) auth_settings: PathBuf,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, env = "EASYAUTH_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// Where the token store, generated cookie keys and the local CA are kept.
    #[arg(long, env = "EASYAUTH_DATA_DIR", default_value = ".easyauth")]
    pub(crate) data_dir: PathBuf,
    /// The site's external base URL (default: http(s)://localhost:<port>).
    #[arg(long, env = "EASYAUTH_PUBLIC_URL")]
    pub(crate) public_url: Option<url::Url>,
    /// Serve https with a certificate from the local CA in the data dir.
    #[arg(long, env = "EASYAUTH_TLS")]
    pub(crate) tls: bool,
    /// Seconds to wait for the app's response headers before answering 504.
    #[arg(long, env = "EASYAUTH_UPSTREAM_TIMEOUT", default_value_t = 230)]
    pub(crate) upstream_timeout: u64,
    /// Explain every 401/403 in the response body too (the log always does).
    #[arg(long, env = "EASYAUTH_DEVELOPMENT")]
    pub(crate) development: bool,
    #[command(flatten)]
    pub(crate) sessions: session_store::SessionStoreArgs,
    /// Serve /healthz, /readyz and /metrics (Prometheus) over http on this address, apart from
    /// the app's (off unless given), e.g. 127.0.0.1:9090.
    #[arg(long, env = "EASYAUTH_OPS_LISTEN")]
    pub(crate) ops_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub(crate) struct IdpArgs {
    /// Directory JSON (tenant, users, app registrations); without it a demo tenant is used.
    #[arg(long, env = "EASYAUTH_DIRECTORY")]
    pub(crate) directory: Option<PathBuf>,
    /// Where the store, signing keys and local CA are kept.
    #[arg(long, env = "EASYAUTH_DATA_DIR", default_value = ".easyauth")]
    pub(crate) data_dir: PathBuf,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, env = "EASYAUTH_LISTEN", default_value = "127.0.0.1:5443")]
    pub(crate) listen: std::net::SocketAddr,
    /// External base URL (default: https://localhost:<port>). The issuer is <public-url>/<tenant-id>/v2.0.
    #[arg(long, env = "EASYAUTH_PUBLIC_URL")]
    pub(crate) public_url: Option<url::Url>,
    /// Access token lifetime in seconds.
    #[arg(long, env = "EASYAUTH_ACCESS_TOKEN_LIFETIME", default_value_t = 3600, value_parser = clap::value_parser!(i64).range(5..=86_400))]
    pub(crate) access_token_lifetime: i64,
    /// ID token lifetime in seconds.
    #[arg(long, env = "EASYAUTH_ID_TOKEN_LIFETIME", default_value_t = 3600, value_parser = clap::value_parser!(i64).range(5..=86_400))]
    pub(crate) id_token_lifetime: i64,
    /// Refresh token lifetime in seconds (default 90 days).
    #[arg(long, env = "EASYAUTH_REFRESH_TOKEN_LIFETIME", default_value_t = 7_776_000, value_parser = clap::value_parser!(i64).range(5..))]
    pub(crate) refresh_token_lifetime: i64,
    /// Where the state lives: a PostgreSQL URL (postgres://user:password@host:port/database),
    /// which several replicas can share; default: the SQLite file in the data dir.
    #[arg(long, env = "EASYAUTH_STORE")]
    pub(crate) store: Option<String>,
    /// Rotate the token-signing key when the newest is this many seconds old (default: never).
    #[arg(long, env = "EASYAUTH_KEY_ROTATION", value_parser = clap::value_parser!(i64).range(10..))]
    pub(crate) key_rotation: Option<i64>,
    /// With a shared store: how often (seconds) the directory and keys are re-read (default 5).
    #[arg(long, env = "EASYAUTH_REPLICA_REFRESH", value_parser = clap::value_parser!(i64).range(1..=3600))]
    pub(crate) replica_refresh: Option<i64>,
    /// Serve /healthz, /readyz and /metrics (Prometheus) over http on this address (off unless
    /// given), e.g. 127.0.0.1:9091. /healthz and /readyz are on the https address too.
    #[arg(long, env = "EASYAUTH_OPS_LISTEN")]
    pub(crate) ops_listen: Option<std::net::SocketAddr>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.log, cli.log_format);
    let runtime = match runtime::build(cli.worker_threads) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Idp(args) => idp::run(args).await,
            Command::Proxy(args) => proxy::run(args).await,
            Command::ForwardAuth(args) => forward_auth::run(args).await,
            Command::Up(args) => up::run(args).await,
            Command::Webapp(args) => webapp::run(args).await,
            Command::Az(args) => return az::run(args).await,
            Command::Env(args) => az::env(args).await,
            Command::Sample(args) => sample::run(args).await,
        }
        .map(|()| std::process::ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
