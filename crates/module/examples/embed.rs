//! An axum app with App Service authentication in process: `EasyAuthLayer` in front of its
//! routes, as `easyauth proxy` puts it in front of an app over HTTP.
//!
//! ```text
//! cargo run -p easyauth-module --example embed -- auth.json [127.0.0.1:8080]
//! ```
//!
//! `auth.json` is what `az webapp auth show` prints (or just its `properties`). The app
//! greets the signed-in user by the name in `X-MS-CLIENT-PRINCIPAL-NAME`;
//! `/.auth/login/aad` signs in, `/.auth/me` shows the session.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use easyauth_module::{
    AppSettings, AuthSettings, BuildError, EasyAuthLayer, Environment, OidcHttp, build,
};

/// The app's own routes, with the module in front of them.
pub(crate) async fn protected_app(
    settings: &AuthSettings,
    env: Environment,
) -> Result<Router, BuildError> {
    let module = Arc::new(build(settings, env).await?);
    Ok(Router::new()
        .route("/", get(hello))
        .layer(EasyAuthLayer::new(module)))
}

/// Reads the user from the headers the module injected (the client cannot forge them: the
/// module removes any it sent).
async fn hello(headers: HeaderMap) -> String {
    match headers
        .get("x-ms-client-principal-name")
        .and_then(|v| v.to_str().ok())
    {
        Some(name) => format!("Hello, {name}\n"),
        None => "Hello, anonymous\n".to_owned(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: embed <auth-settings.json> [listen address]");
        std::process::exit(2);
    };
    let listen: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:8080").parse()?;
    let loaded = AuthSettings::load(std::path::Path::new(&path))?;
    for warning in &loaded.warnings {
        eprintln!("{path}: {warning}");
    }
    let env = Environment {
        // The site is the host each request names; callbacks follow it.
        public_url: None,
        scheme: "http",
        app_settings: AppSettings::from_env(),
        store: Arc::new(easyauth_store::MemoryStore::new()),
        http: OidcHttp::new()?,
        development: true,
        session_store: Default::default(),
    };
    let app = protected_app(&loaded.settings, env).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on http://{listen}");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
