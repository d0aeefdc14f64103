//! The tutorial's front end. Settings (environment): `BACKEND_URL`, `PORT` (default 8080),
//! `HOST` (default 127.0.0.1), `APPSETTING_WEBSITE_AUTH_ENABLED`, `SSL_CERT_FILE`.

use easyauth_samples::common::{Settings, listen_addr, serve};
use easyauth_samples::frontend;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = Settings::from_env();
    let setup =
        listen_addr(&settings).and_then(|addr| Ok((addr, frontend::router(settings.clone())?)));
    let (addr, app) = match setup {
        Ok(s) => s,
        Err(e) => {
            eprintln!("easyauth-sample-frontend: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match settings.get("BACKEND_URL") {
        Some(url) => {
            println!("easyauth-sample-frontend: listening on http://{addr}, back end {url}")
        }
        None => println!(
            "easyauth-sample-frontend: listening on http://{addr}; BACKEND_URL is not set, /get-profile will say so"
        ),
    }
    if let Err(e) = serve(app, addr).await {
        eprintln!("easyauth-sample-frontend: {addr}: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
