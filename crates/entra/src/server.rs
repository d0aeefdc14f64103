//! The identity provider served over https, with the store's upkeep: expired codes, sessions,
//! device codes and refresh tokens are purged for as long as it serves, and (replicas on a
//! shared store) the directory and signing keys are re-read. `easyauth idp` and
//! `easyauth up` both serve it through here, so neither can forget the purge.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

use crate::Idp;

/// How often expired records leave the store.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// An https server for the identity provider, bound but not yet serving.
pub struct HttpsServer {
    idp: Arc<Idp>,
    server: axum_server::Server<SocketAddr, RustlsAcceptor>,
    handle: Handle<SocketAddr>,
}

impl std::fmt::Debug for HttpsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsServer")
            .field("idp", &self.idp)
            .finish_non_exhaustive()
    }
}

impl HttpsServer {
    /// Takes over `listener` with the server certificate in `tls`.
    pub fn new(
        idp: Arc<Idp>,
        listener: std::net::TcpListener,
        tls: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<HttpsServer> {
        listener.set_nonblocking(true)?;
        let handle = Handle::new();
        let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls))?
            .handle(handle.clone());
        Ok(HttpsServer {
            idp,
            server,
            handle,
        })
    }

    /// What stops the server (`graceful_shutdown`) once it serves.
    pub fn handle(&self) -> Handle<SocketAddr> {
        self.handle.clone()
    }

    /// Serves until the handle shuts the server down, purging expired records meanwhile.
    pub async fn serve(self) -> std::io::Result<()> {
        let purge = tokio::spawn(easyauth_store::purge_periodically(
            self.idp.store.clone(),
            PURGE_EVERY,
        ));
        // Replicas sharing the store re-read it (and rotate keys when due) while serving.
        let sync = tokio::spawn(self.idp.clone().keep_in_sync());
        let served = self
            .server
            .serve(self.idp.router().into_make_service())
            .await;
        purge.abort();
        sync.abort();
        served
    }
}
