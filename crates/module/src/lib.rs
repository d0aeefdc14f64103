//! The App Service authentication module ("Easy Auth"): App Service's auth layer in front of any
//! app. It reads the `authsettingsV2` JSON that `az webapp auth show` prints, signs users in with
//! Microsoft Entra ID or any OpenID Connect provider, validates bearer tokens, and injects the
//! `X-MS-*` identity and token headers apps written for App Service expect.
//!
//! Embedding it in an axum app (see `examples/embed.rs`):
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use easyauth_module::{AppSettings, AuthSettings, EasyAuthLayer, Environment, OidcHttp};
//!
//! let loaded = AuthSettings::load(std::path::Path::new("auth.json"))?;
//! let env = Environment {
//!     public_url: None,
//!     scheme: "http",
//!     app_settings: AppSettings::from_env(),
//!     store: Arc::new(easyauth_store::MemoryStore::new()),
//!     http: OidcHttp::new()?,
//!     development: false,
//!     session_store: Default::default(),
//! };
//! let module = Arc::new(easyauth_module::build(&loaded.settings, env).await?);
//! let app: axum::Router = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "hello" }))
//!     .layer(EasyAuthLayer::new(module));
//! # let _ = app; Ok(()) }
//! ```
//!
//! In front of an app over HTTP instead, [`ProxyStack`] puts the module before an [`Upstream`];
//! behind a reverse proxy the site already runs, [`ForwardAuth`] answers its auth checks.

#![warn(missing_docs)]

mod authz;
mod build;
mod clock;
// `config` and `oidc` mirror the authsettingsV2 JSON and the OpenID Connect documents field by
// field (their names are the documentation for now); every other public item is documented.
#[allow(missing_docs)]
pub mod config;
mod context;
pub mod cookies;
mod forward_auth;
mod headers;
pub mod health;
mod identity;
mod ids;
mod injected;
mod local_leases;
mod metrics;
mod module;
#[allow(missing_docs)]
pub mod oidc;
pub mod paths;
mod pipeline;
mod principal;
mod provider;
mod proxy;
pub mod redirect;
mod redis_connection;
mod refresh_lease;
mod refusal;
mod respond;
mod routes;
mod session_cookie;
mod session_redis;
mod session_store;
mod settings;
mod site;
mod stack;
mod zumo;

pub use authz::{AadAuthorization, Denial};
pub use build::{AppSettings, BuildError, Environment, SessionBackend, build};
pub use config::{AuthSettings, ConfigError, Loaded};
pub use cookies::KeyError;
pub use forward_auth::{ForwardAuth, ProxyNet, ProxyNetError, TrustedProxies};
pub use identity::{CredentialError, Identity};
pub use module::Module;
pub use oidc::OidcHttp;
pub use pipeline::{BoxedService, EasyAuthLayer};
pub use principal::{Claim, ClientPrincipal, NAME_TYPE, ROLE_TYPE};
pub use provider::{IdentityProvider, ProviderKind, ProviderSettings};
pub use proxy::{Upstream, UpstreamError};
pub use redis_connection::redacted_url;
pub use refusal::{REASON_CODE_HEADER, REASON_HEADER, ReasonCode, Refusal, UnknownReasonCode};
pub use session_redis::{RedisSessions, RedisSetupError};
pub use session_store::{SessionRecord, SessionStore, SessionStoreError, TokenStoreSessions};
pub use settings::{Action, ForwardTrust, ModuleSettings};
pub use site::Site;
pub use stack::{ProxyStack, StackError};
