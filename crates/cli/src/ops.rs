//! The operations listener (`--ops-listen`): `/healthz`, `/readyz` and `/metrics` over plain
//! http on an address of their own, so they never shadow a path of the app behind the module.
//! `easyauth proxy` and `easyauth idp` serve it alike; what "ready" means is theirs to say.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::Context;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use easyauth_entra::health::{ReadyCheck, healthz, readyz};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// What `/readyz` runs: every check of the server, bounded in time by the server itself.
pub(crate) type Readiness =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Vec<ReadyCheck>> + Send>> + Send + Sync>;

/// `check` as a [`Readiness`].
pub(crate) fn readiness<F, Fut>(check: F) -> Readiness
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<ReadyCheck>> + Send + 'static,
{
    Arc::new(move || -> Pin<Box<dyn Future<Output = Vec<ReadyCheck>> + Send>> { Box::pin(check()) })
}

/// A registry with what every server reports: `easyauth_build_info{version}`.
pub(crate) fn registry() -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "easyauth_build",
        "The easyauth build that runs (always 1)",
        Info::new([("version", env!("CARGO_PKG_VERSION"))]),
    );
    registry
}

/// The bound listener, before the server's banner names it.
#[derive(Debug)]
pub(crate) struct OpsListener {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl OpsListener {
    pub(crate) async fn bind(addr: SocketAddr) -> anyhow::Result<OpsListener> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--ops-listen)"))?;
        let addr = listener.local_addr()?;
        Ok(OpsListener { listener, addr })
    }

    /// The banner line, with the address bound (the port the system chose for port 0).
    pub(crate) fn banner(&self) -> String {
        format!(
            "  operations      http://{} (/healthz /readyz /metrics)",
            self.addr
        )
    }

    /// Serves the three endpoints in a task of their own for as long as the process runs.
    pub(crate) fn spawn(self, registry: Registry, readiness: Readiness) {
        let registry = Arc::new(registry);
        let router = axum::Router::new()
            .route("/healthz", get(|| async { healthz() }))
            .route(
                "/readyz",
                get(move || {
                    let readiness = readiness.clone();
                    async move { readyz(&readiness().await) }
                }),
            )
            .route(
                "/metrics",
                get(move || {
                    let registry = registry.clone();
                    async move { metrics(&registry) }
                }),
            )
            .fallback(|| async {
                (
                    StatusCode::NOT_FOUND,
                    "not found: the operations listener serves /healthz, /readyz and /metrics\n",
                )
            });
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(e) = axum::serve(self.listener, router).await {
                tracing::error!(%addr, error = %e, "the operations listener stopped");
            }
        });
    }
}

/// The registry in Prometheus' text format (what `promtool check metrics` reads).
fn metrics(registry: &Registry) -> Response {
    let mut body = String::new();
    if let Err(e) = prometheus_text::encode(&mut body, registry) {
        tracing::error!(error = %e, "the metrics could not be encoded");
        return (StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable\n").into_response();
    }
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
    );
    r
}
