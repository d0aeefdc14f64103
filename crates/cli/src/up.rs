//! `easyauth up`: the local platform (identity provider + apps, each behind its own module).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use easyauth_platform::admin::{self, AdminToken};
use easyauth_platform::platform::{Options, Platform};
use easyauth_platform::site::Site;
use easyauth_platform::tutorial;

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Site file (TOML): the apps, their auth settings and app settings, the directory file.
    /// Without it: Microsoft's tutorial (front end + back end + demo tenant).
    #[arg(long, env = "EASYAUTH_SITE")]
    site: Option<PathBuf>,
    /// Where the store, generated secrets, the local CA and platform.json are kept.
    #[arg(long, env = "EASYAUTH_DATA_DIR", default_value = ".easyauth")]
    data_dir: PathBuf,
    /// Port of every app's origin (each app has its own loopback address); 0 = free ports.
    #[arg(long, env = "EASYAUTH_PORT", default_value_t = 8080)]
    port: u16,
    /// Port of the identity provider on 127.0.0.1; 0 = a free port.
    #[arg(long, env = "EASYAUTH_IDP_PORT", default_value_t = 5443)]
    idp_port: u16,
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let (site, tutorial) = match &args.site {
        Some(path) => (Site::load(path)?, false),
        None => {
            let exe = std::env::current_exe()
                .context("cannot find the easyauth executable to run the sample apps")?;
            (tutorial::site(&exe), true)
        }
    };
    let options = Options {
        data_dir: args.data_dir.clone(),
        port: args.port,
        idp_port: args.idp_port,
    };
    let mut platform = Platform::start(site, &options, tutorial).await?;

    let token = AdminToken::load_or_create(platform.data_dir())?;
    let admin_listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .context("cannot listen for the admin API on 127.0.0.1")?;
    let admin_url = format!("http://{}", admin_listener.local_addr()?);
    platform.publish(&admin_url)?;
    let platform = Arc::new(platform);
    let router = admin::router(platform.clone(), token);
    let admin = tokio::spawn(async move { axum::serve(admin_listener, router).await });

    print_banner(&platform, &args);
    crate::idp::wait_for_signal().await;
    println!("easyauth up: stopping");
    admin.abort();
    platform.shutdown().await;
    Ok(())
}

fn print_banner(platform: &Platform, args: &UpArgs) {
    let state = platform.state();
    let width = state
        .apps
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(15);
    if platform.is_tutorial() {
        println!(
            "easyauth up: Microsoft's tutorial \"Authenticate and authorize users end-to-end in Azure App Service\""
        );
    } else if let Some(site) = &args.site {
        println!("easyauth up: site {}", site.display());
    }
    let names = easyauth_platform::control::Control::app_names(platform);
    for (name, app) in names.iter().filter_map(|n| Some((n, state.apps.get(n)?))) {
        let client = app.client_id.as_deref().map_or_else(
            || "authentication off".to_owned(),
            |c| format!("app registration {c}"),
        );
        println!(
            "  {name:<width$}  {}   (app at {}; {client})",
            app.url, app.upstream
        );
    }
    println!(
        "  {:<width$}  {}/{}",
        "identity", state.idp_url, state.tenant_id
    );
    println!("  {:<width$}  {}", "issuer", state.issuer);
    if let Some(user) = &state.demo_user {
        println!(
            "  {:<width$}  {}  /  {}",
            "sign in as", user.username, user.password
        );
    }
    println!(
        "  {:<width$}  {}",
        "CA certificate",
        state.ca_file.display()
    );
    println!(
        "  {:<width$}  {}",
        "data dir",
        platform.data_dir().display()
    );
    let dir = if args.data_dir == std::path::Path::new(".easyauth") {
        String::new()
    } else {
        format!(" --data-dir {}", args.data_dir.display())
    };
    if let Some(first) = names.first() {
        println!(
            "  {:<width$}  easyauth webapp auth show --name {first}{dir}",
            "change settings"
        );
        println!(
            "  {:<width$}  easyauth webapp config appsettings list --name {first}{dir}",
            ""
        );
    }
    let open = if platform.is_tutorial() {
        state
            .apps
            .get(easyauth_platform::tutorial::FRONTEND)
            .map(|a| a.url.clone())
    } else {
        names
            .first()
            .and_then(|n| state.apps.get(n))
            .map(|a| a.url.clone())
    };
    println!(
        "easyauth up: ready in {:.1} s{}",
        platform.started_in.as_secs_f64(),
        open.map(|u| format!(": open {u}")).unwrap_or_default()
    );
}
