#![recursion_limit = "256"]
//! A local Azure Resource Manager: the endpoints the real Azure CLI and the Azure SDKs use for
//! the tutorial's commands (`az webapp up`, `az webapp config appsettings`, `az webapp auth`,
//! `az webapp show|list|restart|stop|start|delete`), with ARM's JSON shapes and errors, bearer
//! authentication against the local identity provider, and its documents in the store.
//!
//! The running platform implements [`SiteRuntime`]; this crate records each change and asks
//! the platform to apply it, so a refused change (auth settings that do not build a module) is
//! answered with ARM's error and changes nothing.

pub mod auth;
pub mod error;
pub mod ids;
pub mod model;
mod routes;
pub mod runtime;
pub mod stacks;
pub mod state;

use std::collections::HashMap;
use std::sync::Arc;

use easyauth_module::oidc::{OidcHttp, TokenValidator, ValidationPolicy};

pub use error::{ArmError, ArmResult};
pub use model::{Plan, ResourceGroup, SiteStatus, WebApp};
pub use routes::config::{check_setting_name, default_auth_v2};
pub use runtime::{Change, SiteRuntime};
pub use state::State;

/// Where everything is, as the cloud metadata document tells the Azure CLI.
#[derive(Debug, Clone)]
pub struct ArmConfig {
    /// This endpoint's base URL, e.g. `https://127.0.0.1:5444` (no trailing slash).
    pub base_url: String,
    /// The identity provider's base URL (the cloud's login endpoint and Microsoft Graph).
    pub login_url: String,
    pub tenant_id: String,
    pub subscription_id: String,
    pub subscription_name: String,
    /// The identity provider's v1 and v2 issuers for the tenant.
    pub issuers: Vec<String>,
    pub jwks_uri: String,
    /// The local portal's URL, when one is served.
    pub portal_url: Option<String>,
}

/// Files served under `/azmirror` (the Azure CLI's extension index and wheels, as an air-gapped
/// cloud mirrors them): path below `/azmirror/` -> (content type, bytes).
#[derive(Debug, Clone, Default)]
pub struct Mirror {
    pub files: HashMap<String, (&'static str, Vec<u8>)>,
}

/// The Resource Manager: configuration, documents, token validation and the platform.
pub struct Arm {
    pub config: ArmConfig,
    pub state: State,
    validator: TokenValidator,
    policy: ValidationPolicy,
    pub(crate) runtime: Arc<dyn SiteRuntime>,
    pub(crate) mirror: Mirror,
}

impl std::fmt::Debug for Arm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arm")
            .field("base_url", &self.config.base_url)
            .field("subscription", &self.config.subscription_id)
            .finish_non_exhaustive()
    }
}

impl Arm {
    pub fn new(
        config: ArmConfig,
        store: Arc<dyn easyauth_store::Store>,
        http: OidcHttp,
        runtime: Arc<dyn SiteRuntime>,
        mirror: Mirror,
    ) -> Arm {
        let policy = ValidationPolicy::new(
            config.issuers.clone(),
            auth::AUDIENCES.iter().map(|a| (*a).to_owned()).collect(),
            config.jwks_uri.clone(),
        );
        Arm {
            state: State::new(store, config.subscription_id.clone()),
            config,
            validator: TokenValidator::new(http),
            policy,
            runtime,
            mirror,
        }
    }

    /// The HTTP surface.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        routes::router(self.clone())
    }

    pub(crate) async fn authenticate(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> ArmResult<auth::Caller> {
        auth::authenticate(&self.validator, &self.policy, headers).await
    }

    /// Checks a bearer token as every Resource Manager call is checked (for the SCM endpoint,
    /// which accepts ARM tokens when basic authentication is off).
    pub async fn check_bearer(&self, headers: &axum::http::HeaderMap) -> ArmResult<auth::Caller> {
        self.authenticate(headers).await
    }

    pub fn runtime(&self) -> &Arc<dyn SiteRuntime> {
        &self.runtime
    }
}
