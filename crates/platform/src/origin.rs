//! An app's origin: the address a browser uses, served by the app's authentication module in
//! front of the app. The module can be replaced while the origin serves (a settings change
//! takes effect on the next request, with no restart and no dropped connections).

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::extract::Request;
use easyauth_module::pipeline::BoxedService;
use tower::ServiceExt;
use tracing::Instrument;

/// The module stack an origin currently serves; swapped as a whole.
#[derive(Debug, Clone)]
pub struct SwappableService {
    current: Arc<ArcSwap<BoxedService>>,
}

impl SwappableService {
    pub fn new(service: BoxedService) -> SwappableService {
        SwappableService {
            current: Arc::new(ArcSwap::from_pointee(service)),
        }
    }

    /// Requests that arrive from now on go to `service`; requests in flight finish on the old one.
    pub fn swap(&self, service: BoxedService) {
        self.current.store(Arc::new(service));
    }
}

/// Binds an origin's listener (loopback addresses other than 127.0.0.1 work on Linux without
/// configuration: the whole 127.0.0.0/8 is local).
pub fn bind(addr: SocketAddr, app: &str) -> Result<std::net::TcpListener, std::io::Error> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} for app {app:?}: {e}"),
        )
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Serves `service` on `listener` until `handle` shuts it down. Log lines of the module carry
/// the app's name.
pub async fn serve(
    listener: std::net::TcpListener,
    app: String,
    service: SwappableService,
    handle: axum_server::Handle<SocketAddr>,
) -> std::io::Result<()> {
    let app: Arc<str> = app.into();
    let front = tower::service_fn(move |request: Request| {
        let stack = BoxedService::clone(&service.current.load());
        let span = tracing::info_span!("app", app = %app);
        async move { stack.oneshot(request).await }.instrument(span)
    });
    let router = axum::Router::new().fallback_service(front);
    axum_server::from_tcp(listener)?
        .handle(handle)
        .serve(router.into_make_service_with_connect_info::<SocketAddr>())
        .await
}
