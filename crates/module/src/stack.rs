//! The module in front of an HTTP app: what `easyauth proxy` serves and what `easyauth up` puts
//! in front of each app, assembled in one place.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use tower::Layer;

use crate::build::{BuildError, Environment, build};
use crate::config::AuthSettings;
use crate::context::{RequestContext, peer};
use crate::module::Module;
use crate::pipeline::{BoxedService, EasyAuthLayer};
use crate::proxy::{Forwarded, Upstream, UpstreamError};

/// Why the module and its upstream could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The auth settings and app settings do not make a module.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The upstream URL is not one the proxy can forward to.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// The module and the service that runs it in front of an upstream app.
#[derive(Debug, Clone)]
pub struct ProxyStack {
    module: Arc<Module>,
    service: BoxedService,
}

impl ProxyStack {
    /// Builds the module from `settings` and `env` and puts it in front of the app at
    /// `upstream` (requests to it time out after `timeout`).
    pub async fn build(
        settings: &AuthSettings,
        env: Environment,
        upstream: &url::Url,
        timeout: Duration,
    ) -> Result<ProxyStack, StackError> {
        let module = Arc::new(build(settings, env).await?);
        let upstream = Upstream::new(upstream, timeout)?;
        Ok(ProxyStack::new(module, upstream))
    }

    /// `module` in front of `upstream`.
    pub fn new(module: Arc<Module>, upstream: Upstream) -> ProxyStack {
        // Shared, not cloned per request: cloning the pooled client is several reference counts.
        let upstream = Arc::new(upstream);
        let app = tower::service_fn(move |mut request: Request| {
            let upstream = upstream.clone();
            async move {
                // The strip stage always records the context; the fallback only guards embedding.
                // Nothing after this point reads the context, so it is taken rather than copied.
                let forwarded = request
                    .extensions_mut()
                    .remove::<RequestContext>()
                    .map(|c| c.forwarded)
                    .unwrap_or_else(|| Forwarded {
                        for_chain: peer(&request).to_string(),
                        proto: "http",
                        host: "localhost".into(),
                    });
                Ok::<_, Infallible>(upstream.forward(request, &forwarded).await)
            }
        });
        let service = EasyAuthLayer::new(module.clone()).layer(app);
        ProxyStack { module, service }
    }

    /// The module (its settings and providers, for banners and checks).
    pub fn module(&self) -> &Arc<Module> {
        &self.module
    }

    /// The service to serve: every request goes through the module, then to the app.
    pub fn into_service(self) -> BoxedService {
        self.service
    }
}
