//! A local Microsoft Entra ID.
//!
//! It speaks Entra's v2.0 protocol closely enough that unmodified Microsoft libraries (MSAL
//! Python and Node, azure-identity) and token validators accept it: per-tenant discovery and
//! JWKS, the authorize endpoint with sign-in and consent pages, the device authorization endpoint
//! with its code-entry page, the token endpoint (one module per grant under [`grants`]), logout,
//! and Microsoft Graph v1.0 for the directory (applications, service principals, grants, users,
//! `/me`). Every tenant has Entra's built-in applications:
//! Microsoft Graph, Azure Resource Manager and the Azure CLI.
//!
//! The directory lives in an [`easyauth_store::Store`]; [`Idp`] keeps an indexed snapshot of it.

pub mod client_auth;
pub mod consent;
pub mod credentials;
pub mod directory;
pub mod endpoints;
pub mod error;
pub mod grants;
pub mod health;
pub mod keys;
mod log;
mod metrics;
mod pages;
pub mod scopes;
mod server;
mod session;
mod signin;
pub mod tokens;
mod util;

use std::sync::{Arc, RwLock};

use aws_lc_rs::hmac;
use easyauth_store::Store;

pub use directory::{Directory, InitialDirectory, InitialDirectoryError, Seed, demo};
pub use error::EntraError;
pub use keys::{HeaderStyle, SigningKeys};
pub use metrics::IdpMetrics;
pub use server::HttpsServer;

/// Lifetimes and addresses. Lifetimes are in seconds.
#[derive(Debug, Clone)]
pub struct IdpConfig {
    /// External base URL, without a trailing slash (e.g. `https://localhost:5443`).
    pub public_url: String,
    pub access_token_lifetime: i64,
    pub id_token_lifetime: i64,
    pub refresh_token_lifetime: i64,
    pub code_lifetime: i64,
    pub session_lifetime: i64,
    /// How long a device code (and its user code) can be redeemed: Entra's 15 minutes.
    pub device_code_lifetime: i64,
    /// The polling interval the device authorization endpoint announces; polling faster is
    /// answered with `slow_down`.
    pub device_code_interval: i64,
    /// Replicas sharing one store: how often (seconds) each re-reads the directory and the
    /// signing keys, so a change made through another replica is seen here. `None`: this is the
    /// store's only user and its snapshot is always current.
    pub refresh_interval: Option<i64>,
    /// Rotate the signing key when the newest one is this many seconds old (`None`: never).
    pub key_rotation_period: Option<i64>,
    /// Where requests, tokens issued and store failures are counted; `None`: nowhere.
    pub metrics: Option<Arc<IdpMetrics>>,
}

impl IdpConfig {
    pub fn new(public_url: &str) -> IdpConfig {
        IdpConfig {
            public_url: public_url.trim_end_matches('/').to_owned(),
            access_token_lifetime: 3600,
            id_token_lifetime: 3600,
            refresh_token_lifetime: 90 * 24 * 3600,
            code_lifetime: 600,
            session_lifetime: 12 * 3600,
            device_code_lifetime: 900,
            device_code_interval: 5,
            refresh_interval: None,
            key_rotation_period: None,
            metrics: None,
        }
    }

    /// How long a new signing key is published before it signs: two re-read intervals, so every
    /// replica has published it (and clients refetching JWKS see it) before a token uses it.
    pub fn key_publish_lead(&self) -> i64 {
        self.refresh_interval
            .map_or(0, |every| every.saturating_mul(2))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] easyauth_store::StoreError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("cannot load the directory: {0}")]
    Directory(#[from] directory::LoadError),
}

/// A directory re-read that failed, as the token endpoint answers it.
pub(crate) fn reload_error(e: directory::LoadError) -> EntraError {
    match e {
        directory::LoadError::Store(e) => EntraError::from(e),
        other => {
            tracing::error!(error = %other, "re-reading the directory failed");
            EntraError::Internal("The directory store is unavailable.".into())
        }
    }
}

/// The identity provider: configuration, store, directory snapshot, keys.
pub struct Idp {
    pub(crate) config: IdpConfig,
    pub(crate) store: Arc<dyn Store>,
    directory: RwLock<Arc<Directory>>,
    keys: RwLock<Arc<SigningKeys>>,
    /// When (Unix seconds) an unknown kid last made this replica re-read the keys.
    keys_reread_at: std::sync::atomic::AtomicI64,
    pub(crate) cookie_key: cookie::Key,
    pub(crate) pairwise_key: hmac::Key,
    pub(crate) issuer_v2: String,
    pub(crate) issuer_v1: String,
    /// Serialises consent writes so concurrent consents cannot drop each other's grant.
    pub(crate) consent_lock: tokio::sync::Mutex<()>,
    /// Serialises the smart-lockout counter's read-modify-write.
    pub(crate) lockout_lock: tokio::sync::Mutex<()>,
    /// Serialises a device code's state changes (approved, declined), so neither is lost.
    pub(crate) device_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Idp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idp")
            .field("issuer", &self.issuer_v2)
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl Idp {
    /// Writes `seed` into the store, then loads the directory, keys and per-store secrets.
    pub async fn start(
        store: Arc<dyn Store>,
        config: IdpConfig,
        seed: &Seed,
    ) -> Result<Arc<Idp>, StartError> {
        Directory::save_seed(store.as_ref(), seed).await?;
        let directory = Directory::load(store.as_ref(), &seed.tenant.id)
            .await?
            .with_graph_alias(&config.public_url);
        let keys =
            SigningKeys::load_or_create_with(store.as_ref(), config.key_publish_lead()).await?;
        // Created once per store, so every instance sharing the store agrees.
        let cookie_secret = store
            .get_or_create_setting("idp.cookie-key", &util::random_token(64))
            .await?;
        let pairwise_secret = store
            .get_or_create_setting("idp.pairwise-key", &util::random_token(32))
            .await?;
        let tid = &directory.tenant.id;
        let issuer_v2 = format!("{}/{tid}/v2.0", config.public_url);
        let issuer_v1 = format!("{}/{tid}/", config.public_url);
        Ok(Arc::new(Idp {
            cookie_key: cookie::Key::derive_from(cookie_secret.as_bytes()),
            pairwise_key: hmac::Key::new(hmac::HMAC_SHA256, pairwise_secret.as_bytes()),
            config,
            store,
            directory: RwLock::new(Arc::new(directory)),
            keys: RwLock::new(Arc::new(keys)),
            keys_reread_at: std::sync::atomic::AtomicI64::new(0),
            issuer_v2,
            issuer_v1,
            consent_lock: tokio::sync::Mutex::new(()),
            lockout_lock: tokio::sync::Mutex::new(()),
            device_lock: tokio::sync::Mutex::new(()),
        }))
    }

    /// The current directory snapshot.
    pub fn directory(&self) -> Arc<Directory> {
        match self.directory.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn replace_directory(&self, dir: Directory) {
        let mut guard = match self.directory.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(dir);
    }

    /// The current signing keys.
    pub fn keys(&self) -> Arc<SigningKeys> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace_keys(&self, keys: SigningKeys) {
        let mut guard = match self.keys.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(keys);
    }

    /// Re-reads the signing keys from the store (another replica may have added one, or the
    /// next key may have become old enough to sign).
    pub async fn reload_keys(&self) -> Result<(), keys::KeyError> {
        let records = self.store.list_signing_keys().await?;
        let keys = SigningKeys::from_records(records, util::now(), self.config.key_publish_lead())?;
        self.replace_keys(keys);
        Ok(())
    }

    /// Re-reads the directory from the store, for changes written through another replica.
    /// Holds the write lock, so a change made here meanwhile is not overwritten by an older read.
    pub async fn reload_directory(&self) -> Result<(), directory::LoadError> {
        let _guard = self.consent_lock.lock().await;
        let tenant = self.tenant_id();
        let dir = Directory::load(self.store.as_ref(), &tenant)
            .await?
            .with_graph_alias(&self.config.public_url);
        self.replace_directory(dir);
        Ok(())
    }

    /// One round of what replicas sharing a store do periodically: rotate the signing key when
    /// due (one replica creates the successor), then re-read keys and directory.
    pub async fn sync_with_store(&self) {
        if let Some(period) = self.config.key_rotation_period {
            match keys::rotate_if_due(self.store.as_ref(), period, util::now()).await {
                Ok(Some(kid)) => tracing::info!(kid, "signing key rotation: next key published"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "signing key rotation failed; retrying"),
            }
        }
        if let Err(e) = self.reload_keys().await {
            tracing::warn!(error = %e, "re-reading the signing keys failed; keeping the last");
        }
        if let Err(e) = self.reload_directory().await {
            tracing::warn!(error = %e, "re-reading the directory failed; keeping the last");
        }
    }

    /// Keeps this replica in step with the store for as long as the task runs (spawn it);
    /// returns at once for a store with no other user and no key rotation.
    pub async fn keep_in_sync(self: Arc<Self>) {
        let every = match (
            self.config.refresh_interval,
            self.config.key_rotation_period,
        ) {
            (None, None) => return,
            (Some(every), _) => every,
            (None, Some(_)) => 30,
        };
        let every = std::time::Duration::from_secs(u64::try_from(every.max(1)).unwrap_or(30));
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            self.sync_with_store().await;
        }
    }

    /// Verifies a token this identity provider signed. A kid this replica does not know yet may
    /// be a key another replica just created: the keys are re-read (at most once a second) and
    /// the check repeated.
    pub async fn verify_own(
        &self,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, keys::VerifyError> {
        match self.keys().verify_own(token) {
            Err(keys::VerifyError::UnknownKey) if self.config.refresh_interval.is_some() => {
                let now = util::now();
                let last = self
                    .keys_reread_at
                    .swap(now, std::sync::atomic::Ordering::Relaxed);
                if last == now {
                    return Err(keys::VerifyError::UnknownKey);
                }
                if let Err(e) = self.reload_keys().await {
                    tracing::warn!(error = %e, "re-reading the signing keys failed");
                }
                self.keys().verify_own(token)
            }
            other => other,
        }
    }

    pub fn config(&self) -> &IdpConfig {
        &self.config
    }

    /// `https://host/<tenant-id>/v2.0`
    pub fn issuer(&self) -> &str {
        &self.issuer_v2
    }

    /// `https://host/<tenant-id>/` (the form of `https://sts.windows.net/<tid>/`).
    pub fn issuer_v1(&self) -> &str {
        &self.issuer_v1
    }

    pub fn tenant_id(&self) -> String {
        self.directory().tenant.id.clone()
    }

    /// The token endpoint URL (also the audience of client assertions).
    pub fn token_endpoint(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.config.public_url,
            self.tenant_id()
        )
    }

    /// Adds `uri` to the web redirect URIs of the app registration `client_id` (stored, and used
    /// from the next request on). Returns whether it was added: `false` when it was already
    /// there, or the app is unknown or built in. The platform calls this when a web app's auth
    /// settings name a registration, so the app's callback works on the host it is served at.
    pub async fn ensure_redirect_uri(
        &self,
        client_id: &str,
        uri: &str,
    ) -> Result<bool, EntraError> {
        let _guard = self.consent_lock.lock().await;
        let dir = self.directory();
        let Some(app) = dir
            .app(client_id)
            .filter(|a| a.app_id.eq_ignore_ascii_case(client_id))
            .filter(|a| directory::builtin_name(&a.app_id).is_none())
        else {
            return Ok(false);
        };
        if app.web.redirect_uris.iter().any(|u| u == uri) {
            return Ok(false);
        }
        let mut app = (**app).clone();
        app.web.redirect_uris.push(uri.to_owned());
        let json = serde_json::to_string(&app).map_err(|e| EntraError::Internal(e.to_string()))?;
        self.store
            .put_object(
                easyauth_store::ObjectKind::Application,
                &dir.tenant.id,
                &app.app_id,
                &json,
            )
            .await?;
        self.replace_directory(dir.with_application(app));
        Ok(true)
    }

    /// The HTTP surface: every endpoint, wrapped in the request-log layer (and the metrics').
    pub fn router(self: &Arc<Self>) -> axum::Router {
        let router = endpoints::router(self.clone());
        let router = match &self.config.metrics {
            Some(metrics) => router.layer(axum::middleware::from_fn_with_state(
                metrics.clone(),
                metrics::record,
            )),
            None => router,
        };
        router.layer(axum::middleware::from_fn(log::log_request))
    }
}
