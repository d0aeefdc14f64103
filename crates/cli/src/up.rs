//! `easyauth up`: the local platform (identity provider, Resource Manager, web apps, each
//! behind its own module).

use std::path::PathBuf;

use anyhow::Context;
use easyauth_platform::platform::{Kind, Options, Platform};
use easyauth_platform::site::Site;
use easyauth_platform::tutorial;

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Site file (TOML): the apps, their auth settings and app settings, the directory file.
    /// Without it (and without --bare): Microsoft's tutorial (front end + back end + demo tenant).
    #[arg(long, env = "EASYAUTH_SITE", conflicts_with = "bare")]
    site: Option<PathBuf>,
    /// Start a bare platform (identity provider and Resource Manager, no apps but those created
    /// before in this data dir), to follow the tutorial from its first `az` command.
    #[arg(long, env = "EASYAUTH_BARE")]
    bare: bool,
    /// The directory file (tenant, users, app registrations) of a bare platform; without it,
    /// the demo tenant. A site file names its own.
    #[arg(long, env = "EASYAUTH_DIRECTORY", requires = "bare")]
    directory: Option<PathBuf>,
    /// Where the store, generated secrets, deployed code, the local CA and platform.json are kept.
    #[arg(long, env = "EASYAUTH_DATA_DIR", default_value = ".easyauth")]
    data_dir: PathBuf,
    /// Port of every app's origin (each app has its own loopback address); 0 = free ports.
    #[arg(long, env = "EASYAUTH_PORT", default_value_t = 8080)]
    port: u16,
    /// Port of every app's SCM (Kudu) endpoint on its loopback address; 0 = free ports.
    #[arg(long, env = "EASYAUTH_SCM_PORT", default_value_t = 8443)]
    scm_port: u16,
    /// Port of the identity provider on 127.0.0.1; 0 = a free port.
    #[arg(long, env = "EASYAUTH_IDP_PORT", default_value_t = 5443)]
    idp_port: u16,
    /// Port of the local Azure Resource Manager on 127.0.0.1; 0 = a free port.
    #[arg(long, env = "EASYAUTH_ARM_PORT", default_value_t = 5444)]
    arm_port: u16,
    /// Port of the local portal on 127.0.0.1; 0 = a free port.
    #[arg(long, env = "EASYAUTH_PORTAL_PORT", default_value_t = 5445)]
    portal_port: u16,
    /// The platform's store: a PostgreSQL URL (postgres://user:password@host:port/database);
    /// default: the SQLite file in the data dir.
    #[arg(long, env = "EASYAUTH_STORE")]
    store: Option<String>,
}

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let (site, kind) = match (&args.site, args.bare) {
        (Some(path), _) => (Site::load(path)?, Kind::SiteFile),
        (None, true) => (
            Site {
                file: None,
                directory: args.directory.clone(),
                apps: Vec::new(),
            },
            Kind::Bare,
        ),
        (None, false) => {
            let exe = std::env::current_exe()
                .context("cannot find the easyauth executable to run the sample apps")?;
            (tutorial::site(&exe), Kind::Tutorial)
        }
    };
    let options = Options {
        data_dir: args.data_dir.clone(),
        port: args.port,
        scm_port: args.scm_port,
        idp_port: args.idp_port,
        arm_port: args.arm_port,
        portal_port: args.portal_port,
        store: match crate::idp::StoreSpec::parse(args.store.as_deref())? {
            crate::idp::StoreSpec::DataDir => None,
            crate::idp::StoreSpec::Postgres(url) => Some(url),
        },
    };
    let platform = Platform::start(site, &options, kind).await?;
    print_banner(&platform, &args);
    crate::idp::wait_for_signal().await;
    println!("easyauth up: stopping");
    platform.shutdown().await;
    Ok(())
}

fn print_banner(platform: &Platform, args: &UpArgs) {
    let state = platform.state();
    let names = platform.app_names();
    let width = names.iter().map(String::len).max().unwrap_or(0).max(15);
    match (platform.kind(), &args.site) {
        (Kind::Tutorial, _) => println!(
            "easyauth up: Microsoft's tutorial \"Authenticate and authorize users end-to-end in Azure App Service\""
        ),
        (Kind::SiteFile, Some(site)) => println!("easyauth up: site {}", site.display()),
        _ => println!("easyauth up: a bare platform (create web apps with `az webapp up`)"),
    }
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
    println!("  {:<width$}  {}/", "resource manager", state.arm_url);
    println!(
        "  {:<width$}  {}/  (sign in as the demo user or a user of your directory)",
        "portal", state.portal_url
    );
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
    println!(
        "  {:<width$}  easyauth az{dir} webapp list   (your own az, against this platform)",
        "Azure CLI"
    );
    println!(
        "  {:<width$}  eval \"$(easyauth env{dir})\"   (then plain `az` talks to it in this shell)",
        ""
    );
    if let Some(first) = names.first() {
        println!(
            "  {:<width$}  easyauth webapp auth show --name {first}{dir}",
            "change settings"
        );
    }
    let open = match platform.kind() {
        Kind::Tutorial => state
            .apps
            .get(easyauth_platform::tutorial::FRONTEND)
            .map(|a| a.url.clone()),
        _ => names
            .first()
            .and_then(|n| state.apps.get(n))
            .map(|a| a.url.clone()),
    };
    println!(
        "easyauth up: ready in {:.1} s{}",
        platform.started_in.as_secs_f64(),
        open.map(|u| format!(": open {u}")).unwrap_or_default()
    );
}
