//! A local Azure portal, served by `easyauth up`: plain server-rendered pages for the tutorial's
//! portal steps, with the tutorial's names for menus and buttons. Like the real portal it holds
//! no state of its own: a person signs in through the local identity provider (authorization code
//! with PKCE, as a confidential client the platform registers), and every page reads and writes
//! through the Resource Manager (and, for Microsoft Entra ID → App registrations, Microsoft Graph)
//! with that person's token, so what the portal can do is exactly what `az` can do, and a refused
//! write shows ARM's or Graph's own error.
//!
//! Pages work without JavaScript and on a phone-sized window. Every POST carries the session's
//! CSRF token, checked by one function ([`session::Sessions::check_csrf`]).

mod arm;
mod form;
mod graph;
mod html;
mod pages;
pub mod registration;
mod respond;
mod session;
mod signin;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use arm::ArmCallError;
pub use graph::GraphCallError;

/// Where everything is, and the portal's own app registration.
#[derive(Clone)]
pub struct PortalConfig {
    /// The portal's base URL as printed (e.g. `https://127.0.0.1:5445`, no trailing slash).
    pub public_url: String,
    /// The identity provider's base URL and tenant.
    pub idp_url: String,
    pub tenant_id: String,
    /// The v2 issuer (the identity provider's `iss` for ID tokens).
    pub issuer: String,
    /// The portal's registration (confidential client).
    pub client_id: String,
    pub client_secret: String,
    /// The Resource Manager's base URL and the subscription shown.
    pub arm_url: String,
    pub subscription_id: String,
    /// The local CA (PEM) that the identity provider's and the Resource Manager's certificates
    /// chain to.
    pub ca_pem: Vec<u8>,
}

impl std::fmt::Debug for PortalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalConfig")
            .field("public_url", &self.public_url)
            .field("client_id", &self.client_id)
            .field("arm_url", &self.arm_url)
            .finish_non_exhaustive()
    }
}

/// Why the portal could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the portal: {0}")]
pub struct PortalError(String);

/// The portal: configuration, sessions, and the HTTP client for the identity provider and ARM.
#[derive(Debug)]
pub struct Portal {
    pub(crate) config: PortalConfig,
    pub(crate) sessions: session::Sessions,
    pub(crate) http: reqwest::Client,
    /// For the log stream, which never ends: no overall timeout (Kudu writes a line at least
    /// every minute, so a silent connection is dead after 90 s).
    pub(crate) stream_http: reqwest::Client,
}

impl Portal {
    pub fn new(config: PortalConfig) -> Result<Arc<Portal>, PortalError> {
        let ca = reqwest::Certificate::from_pem(&config.ca_pem)
            .map_err(|e| PortalError(format!("the local CA is not a certificate: {e}")))?;
        let stream_http = reqwest::Client::builder()
            .add_root_certificate(ca.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .read_timeout(std::time::Duration::from_secs(90))
            .connect_timeout(std::time::Duration::from_secs(3))
            .build()
            .map_err(|e| PortalError(e.to_string()))?;
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(std::time::Duration::from_secs(120))
            .connect_timeout(std::time::Duration::from_secs(3))
            .build()
            .map_err(|e| PortalError(e.to_string()))?;
        Ok(Arc::new(Portal {
            config,
            sessions: session::Sessions::default(),
            http,
            stream_http,
        }))
    }

    /// The redirect URIs the portal's registration needs (one per host name it is served at).
    pub fn redirect_uris(public_url: &str) -> Vec<String> {
        signin::redirect_uris(public_url)
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(pages::home::home))
            .route("/signin", get(signin::start))
            .route("/signin-oidc", get(signin::callback))
            .route("/signout", post(signin::sign_out))
            .route("/resource/{group}", get(pages::home::group))
            .route("/resource/{group}/{site}", get(pages::webapp::overview))
            .route(
                "/resource/{group}/{site}/action",
                post(pages::webapp::action),
            )
            .route(
                "/resource/{group}/{site}/environment",
                get(pages::environment::show).post(pages::environment::change),
            )
            .route(
                "/resource/{group}/{site}/authentication",
                get(pages::authentication::show).post(pages::authentication::change),
            )
            .route(
                "/resource/{group}/{site}/logstream",
                get(pages::logstream::show),
            )
            .route(
                "/resource/{group}/{site}/logstream/raw",
                get(pages::logstream::raw),
            )
            .route("/registrations", get(pages::registrations::list::show))
            .route(
                "/registrations/app/{app_id}",
                get(pages::registrations::list::by_app_id),
            )
            .route(
                "/registrations/{id}",
                get(pages::registrations::overview::show)
                    .post(pages::registrations::overview::change),
            )
            .route(
                "/registrations/{id}/authentication",
                get(pages::registrations::authentication::show)
                    .post(pages::registrations::authentication::change),
            )
            .route(
                "/registrations/{id}/credentials",
                get(pages::registrations::credentials::show)
                    .post(pages::registrations::credentials::change),
            )
            .route(
                "/registrations/{id}/permissions",
                get(pages::registrations::permissions::show)
                    .post(pages::registrations::permissions::change),
            )
            .route(
                "/registrations/{id}/permissions/add",
                get(pages::registrations::permissions::add),
            )
            .route(
                "/registrations/{id}/expose",
                get(pages::registrations::expose::show).post(pages::registrations::expose::change),
            )
            .fallback(pages::not_found)
            .layer(axum::middleware::map_response(pages::security_headers))
            .with_state(self.clone())
    }
}
