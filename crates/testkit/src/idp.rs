//! The local identity provider in-process over TLS.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use easyauth_entra::{Idp, IdpConfig, Seed, SigningKeys};
use easyauth_pki::LocalCa;
use easyauth_store::MemoryStore;

use crate::browser::Browser;
use crate::dirs::{TempDir, temp_dir};
use crate::serve::{Served, serve_tls};

/// Changes the identity provider's router before it is served (a probe layer, say).
type Wrap = Arc<dyn Fn(Router) -> Router + Send + Sync>;
/// Changes the identity provider's configuration (token lifetimes, ...).
type Adjust = Arc<dyn Fn(&mut IdpConfig) + Send + Sync>;

/// The local identity provider on `https://127.0.0.1:<port>`, with a memory store, a directory
/// file's contents, and a certificate from a local CA of its own. [`TestIdp::stop`] and
/// [`TestIdp::serve`] restart it on the same port and store (keys and sessions survive).
pub struct TestIdp {
    /// `https://127.0.0.1:<port>`, the provider's public URL.
    pub base: String,
    pub port: u16,
    pub store: Arc<MemoryStore>,
    /// The signing keys the provider publishes: tests can sign with the very key.
    pub keys: SigningKeys,
    pub ca: LocalCa,
    directory: String,
    adjust: Adjust,
    wrap: Wrap,
    server: Mutex<Option<Served>>,
    // Last: the CA's files go only after everything else.
    _ca_dir: TempDir,
}

impl std::fmt::Debug for TestIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIdp")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl TestIdp {
    /// Starts the provider with `directory` (a directory file's JSON).
    ///
    /// # Panics
    /// When the directory is invalid or the provider cannot start.
    pub async fn start(directory: &str) -> TestIdp {
        TestIdp::start_with(directory, |_| {}, |router| router).await
    }

    /// Starts the provider with `directory`, its configuration changed by `adjust` and its router
    /// by `wrap` (both applied again on every [`TestIdp::serve`]).
    ///
    /// # Panics
    /// When the directory is invalid or the provider cannot start.
    pub async fn start_with(
        directory: &str,
        adjust: impl Fn(&mut IdpConfig) + Send + Sync + 'static,
        wrap: impl Fn(Router) -> Router + Send + Sync + 'static,
    ) -> TestIdp {
        let store = Arc::new(MemoryStore::new());
        // Keys first, so a test can sign with the very key the provider publishes.
        let keys = SigningKeys::load_or_create(store.as_ref())
            .await
            .expect("signing keys");
        let ca_dir = temp_dir("test-idp-ca");
        let ca = LocalCa::load_or_create(&ca_dir).expect("local CA");
        let port = free_port();
        let idp = TestIdp {
            base: format!("https://127.0.0.1:{port}"),
            port,
            store,
            keys,
            ca,
            directory: directory.to_owned(),
            adjust: Arc::new(adjust),
            wrap: Arc::new(wrap),
            server: Mutex::new(None),
            _ca_dir: ca_dir,
        };
        idp.serve().await;
        idp
    }

    /// (Re)starts the provider on its port; a restart reloads the directory and the signing keys
    /// from the store.
    ///
    /// # Panics
    /// When the provider cannot start or the port cannot be bound.
    pub async fn serve(&self) {
        let seed = Seed::parse("directory.json", &self.directory).expect("directory");
        let mut config = IdpConfig::new(&self.base);
        (self.adjust)(&mut config);
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).expect("IdP port");
        let running = serve_over_tls(
            self.store.clone(),
            config,
            &seed,
            &self.ca,
            listener,
            self.wrap.as_ref(),
        )
        .await;
        *self.server.lock().expect("server lock") = Some(running);
    }

    /// Stops the server and waits until its port is closed.
    ///
    /// # Panics
    /// When the server task panicked.
    pub async fn stop(&self) {
        let running = self.server.lock().expect("server lock").take();
        if let Some(running) = running {
            running.stop().await;
        }
    }

    /// The local CA's certificate (PEM): what clients must trust.
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The v2.0 issuer of `tenant`.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.base)
    }

    /// An HTTPS client that trusts the provider's CA (no cookies, no redirects followed).
    pub fn client(&self) -> reqwest::Client {
        https_client(self.ca_pem().as_bytes())
    }

    /// A fresh browser (empty cookie jar) that trusts the provider's CA.
    pub fn browser(&self) -> Browser {
        Browser::new(self.ca_pem().as_bytes())
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        // Dropping the server stops it.
        if let Ok(mut server) = self.server.lock() {
            server.take();
        }
    }
}

/// The one place the kit starts the identity provider and serves it over TLS: what `easyauth
/// idp` does (store, directory, keys, router, TLS listener) minus the purge task, which test
/// stores that live for seconds do not need.
async fn serve_over_tls(
    store: Arc<MemoryStore>,
    config: IdpConfig,
    seed: &Seed,
    ca: &LocalCa,
    listener: std::net::TcpListener,
    wrap: &(dyn Fn(Router) -> Router + Send + Sync),
) -> Served {
    let idp = Idp::start(store, config, seed).await.expect("IdP starts");
    serve_tls(listener, ca, wrap(idp.router())).await
}

/// A loopback port nobody listens on right now (the provider rebinds it on every restart).
fn free_port() -> u16 {
    crate::serve::loopback_listener()
        .local_addr()
        .expect("a free port")
        .port()
}

/// An HTTPS client that trusts `ca_pem` besides the system roots (no cookies, no redirects
/// followed, no proxy).
///
/// # Panics
/// When `ca_pem` is not a PEM certificate.
pub fn https_client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).expect("CA certificate"))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTPS client")
}
