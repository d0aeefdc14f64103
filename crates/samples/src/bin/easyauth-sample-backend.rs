//! The tutorial's back end. Settings (environment): `PORT` (default 8080), `HOST` (default
//! 127.0.0.1), `SSL_CERT_FILE`; for Microsoft Graph on-behalf-of: `BACKEND_USE_GRAPH=true`,
//! `WEBSITE_AUTH_CLIENT_ID`, `WEBSITE_AUTH_OPENID_ISSUER`,
//! `MICROSOFT_PROVIDER_AUTHENTICATION_SECRET`, `GRAPH_URL` (default https://graph.microsoft.com).

use easyauth_samples::backend;
use easyauth_samples::common::{Settings, listen_addr, serve};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = Settings::from_env();
    let setup =
        listen_addr(&settings).and_then(|addr| Ok((addr, backend::router(settings.clone())?)));
    let (addr, app) = match setup {
        Ok(s) => s,
        Err(e) => {
            eprintln!("easyauth-sample-backend: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let missing = backend::missing_obo_settings(&settings);
    if !missing.is_empty() {
        eprintln!(
            "easyauth-sample-backend: warning: BACKEND_USE_GRAPH is on but {} not set; /get-profile will answer 500",
            missing.join(", ")
        );
    }
    println!("easyauth-sample-backend: listening on http://{addr}");
    if let Err(e) = serve(app, addr).await {
        eprintln!("easyauth-sample-backend: {addr}: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}
