//! Serving a router on a loopback port, over TLS or plain HTTP, for as long as a test holds it.

use std::net::{SocketAddr, TcpListener};

use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use easyauth_pki::LocalCa;

/// A router being served; dropping it stops the server.
#[derive(Debug)]
pub struct Served {
    /// `https://127.0.0.1:<port>` or `http://127.0.0.1:<port>`.
    pub url: String,
    pub(crate) handle: Handle<SocketAddr>,
    pub(crate) task: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    /// Stops the server and waits until its port is closed.
    ///
    /// # Panics
    /// When the server task panicked.
    pub async fn stop(mut self) {
        self.handle.shutdown();
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// A loopback listener on a free port: bind first, when the URL must be known before the
/// router is (a callback URL in a directory, say).
///
/// # Panics
/// When no port can be bound.
pub fn loopback_listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("a loopback port")
}

/// Serves `router` on `listener` over TLS with a certificate from `ca` for 127.0.0.1 and
/// localhost. Handlers see the peer address (`ConnectInfo<SocketAddr>`).
///
/// # Panics
/// When the certificate or the listener fails.
pub async fn serve_tls(listener: TcpListener, ca: &LocalCa, router: Router) -> Served {
    let port = listener.local_addr().expect("listener address").port();
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let tls = RustlsConfig::from_config(
        ca.server_config(&["127.0.0.1".into(), "localhost".into()])
            .expect("server certificate"),
    );
    let handle = Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls)
        .expect("TLS listener")
        .handle(handle.clone());
    let task = tokio::spawn(async move {
        server
            .serve(router.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .expect("TLS server");
    });
    handle.listening().await.expect("listening");
    Served {
        url: format!("https://127.0.0.1:{port}"),
        handle,
        task: Some(task),
    }
}

/// Serves `router` on `listener` over plain HTTP (an app behind the module, say).
///
/// # Panics
/// When the listener fails.
pub async fn serve_http(listener: TcpListener, router: Router) -> Served {
    let port = listener.local_addr().expect("listener address").port();
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let handle = Handle::new();
    let server = axum_server::from_tcp(listener)
        .expect("listener")
        .handle(handle.clone());
    let task = tokio::spawn(async move {
        server
            .serve(router.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .expect("HTTP server");
    });
    handle.listening().await.expect("listening");
    Served {
        url: format!("http://127.0.0.1:{port}"),
        handle,
        task: Some(task),
    }
}
