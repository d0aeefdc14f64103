//! `easyauth sample frontend|backend`: the tutorial's apps, run by `up` as ordinary app processes
//! (they get PORT and their app settings as environment variables, like any other app).

use easyauth_samples::common::{Settings, listen_addr, serve};
use easyauth_samples::{backend, frontend};

#[derive(Debug, clap::Args)]
pub(crate) struct SampleArgs {
    #[arg(value_enum)]
    app: SampleApp,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SampleApp {
    Frontend,
    Backend,
}

pub(crate) async fn run(args: SampleArgs) -> anyhow::Result<()> {
    let settings = Settings::from_env();
    let addr = listen_addr(&settings).map_err(anyhow::Error::msg)?;
    let app = match args.app {
        SampleApp::Frontend => frontend::router(settings),
        SampleApp::Backend => backend::router(settings),
    }
    .map_err(anyhow::Error::msg)?;
    println!("listening on http://{addr}");
    serve(app, addr)
        .await
        .map_err(|e| anyhow::anyhow!("{addr}: {e}"))
}
