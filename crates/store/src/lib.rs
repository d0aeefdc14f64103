//! Storage for easyauth: one trait, several backends, one conformance suite.
//!
//! The identity provider keeps its directory (tenants, users, app registrations, consent grants,
//! app role assignments) as JSON documents, and the records that need atomic state changes
//! (refresh-token rotation, single-use authorization codes, create-once secrets) behind dedicated
//! methods. Every backend must pass [`conformance::run`]; that is what keeps the in-memory store a
//! laptop uses and the SQLite and PostgreSQL stores production uses equivalent.

pub mod conformance;
mod memory;
mod postgres;
mod sqlite;

pub use memory::MemoryStore;
pub use postgres::{PostgresStore, redact_url};
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A storage failure. The message is for operators; it never contains secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot open store at {path}: {reason}")]
    Open { path: String, reason: String },
    /// The backend cannot be reached right now (connection refused or lost, no free connection
    /// within the pool's timeout, server shutting down): worth retrying, nothing was changed
    /// that the caller must undo.
    #[error("storage backend temporarily unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// Whether the failure is transient (see [`StoreError::Unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The kinds of directory document the store holds. Kept as a closed set so a typo cannot create
/// a new table of orphans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    Tenant,
    User,
    Application,
    /// An `oauth2PermissionGrant` (delegated consent, per user or for all principals).
    PermissionGrant,
    /// An `appRoleAssignment` (application permission or user role).
    AppRoleAssignment,
    /// Azure Resource Manager documents of the local platform, stored under the subscription id:
    /// a resource group, an App Service plan, a web app (with its configuration).
    ResourceGroup,
    ServerFarm,
    WebSite,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Tenant => "tenant",
            ObjectKind::User => "user",
            ObjectKind::Application => "application",
            ObjectKind::PermissionGrant => "permissionGrant",
            ObjectKind::AppRoleAssignment => "appRoleAssignment",
            ObjectKind::ResourceGroup => "resourceGroup",
            ObjectKind::ServerFarm => "serverFarm",
            ObjectKind::WebSite => "webSite",
        }
    }
}

/// One refresh token, stored under the SHA-256 of its value (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenRecord {
    /// Hex SHA-256 of the token value.
    pub token_hash: String,
    /// All tokens rotated from one sign-in share a family; reuse of a rotated token revokes it.
    pub family_id: String,
    pub tenant_id: String,
    pub client_id: String,
    pub user_id: String,
    /// Opaque JSON owned by the identity provider (scopes, auth time, ...).
    pub data: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Set once the token has been exchanged for a successor.
    pub used_at: Option<i64>,
    pub revoked: bool,
}

impl RefreshTokenRecord {
    /// Usable for a new exchange at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.used_at.is_none() && !self.revoked && now < self.expires_at
    }
}

/// The result of consuming a single-use record such as an authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// First consumption: the value and its expiry.
    First {
        value: String,
        expires_at: i64,
    },
    /// Already consumed before (a replay): the value, so the caller can react to the replay.
    Again {
        value: String,
        expires_at: i64,
    },
    Missing,
}

/// A token-signing key pair with its self-signed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// PKCS#8 DER of the private key.
    pub pkcs8_der: Vec<u8>,
    /// DER of the self-signed X.509 certificate published in `x5c`.
    pub cert_der: Vec<u8>,
    pub created_at: i64,
    /// Retired keys are still published (so earlier tokens validate) but no longer sign.
    pub retired: bool,
}

/// Everything easyauth persists. Implementations must be safe to share between tasks and must make
/// each method atomic: a crash in the middle of a call leaves either the old or the new state.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    // ---- directory documents -------------------------------------------------------------
    /// Insert or replace a document.
    async fn put_object(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
        id: &str,
        json: &str,
    ) -> StoreResult<()>;
    async fn get_object(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
        id: &str,
    ) -> StoreResult<Option<String>>;
    /// All documents of one kind in one tenant, ordered by id.
    async fn list_objects(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
    ) -> StoreResult<Vec<(String, String)>>;
    /// Returns whether a document was deleted.
    async fn delete_object(&self, kind: ObjectKind, tenant_id: &str, id: &str)
    -> StoreResult<bool>;
    /// Tenants are documents too: the distinct ids of all [`ObjectKind::Tenant`] documents
    /// (whatever `tenant_id` they are stored under), sorted.
    async fn list_tenant_ids(&self) -> StoreResult<Vec<String>>;

    // ---- refresh tokens ------------------------------------------------------------------
    /// Inserts a new token; fails (changing nothing) if `token_hash` is already stored.
    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> StoreResult<()>;
    async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>>;
    /// Atomically marks `old_hash` used (at `now`) and inserts `new`, but only if the old token
    /// is still active at `now` (see [`RefreshTokenRecord::is_active`]). Returns false (and
    /// changes nothing) otherwise. Of several concurrent rotations of one token exactly one
    /// succeeds. Fails (changing nothing) if `new.token_hash` is already stored.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<bool>;
    /// Revokes every token of a family; returns how many were newly revoked (tokens that were
    /// already revoked are not counted, so a second call returns 0).
    async fn revoke_refresh_family(&self, family_id: &str) -> StoreResult<u64>;
    /// Revokes every refresh token of one user in one tenant, for all clients (sign-out);
    /// returns how many were newly revoked.
    async fn revoke_refresh_tokens_for(&self, tenant_id: &str, user_id: &str) -> StoreResult<u64>;

    // ---- short-lived records (authorization codes, sign-in sessions) ---------------------
    /// Inserts or replaces a record; replacing resets it to not consumed.
    async fn put_ephemeral(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        expires_at: i64,
    ) -> StoreResult<()>;
    /// The value if present and not expired at `now` (`now < expires_at`), consumed or not.
    async fn get_ephemeral(&self, kind: &str, key: &str, now: i64) -> StoreResult<Option<String>>;
    /// Single-use read: the first call returns `First`, later calls `Again` (until purged or
    /// deleted); `Missing` if there is no such record. Expiry is not checked here: the caller
    /// compares the returned `expires_at` with its clock.
    async fn consume_ephemeral(&self, kind: &str, key: &str) -> StoreResult<Consumed>;
    async fn delete_ephemeral(&self, kind: &str, key: &str) -> StoreResult<bool>;

    // ---- create-once settings (secrets generated on first start) -------------------------
    /// Stores `value` under `name` unless a value exists; returns the value that is now stored.
    /// Two instances racing on one store therefore agree on a single value.
    /// Names starting with `store.` are reserved for the backends.
    async fn get_or_create_setting(&self, name: &str, value: &str) -> StoreResult<String>;

    // ---- token-signing keys --------------------------------------------------------------
    /// Every key, retired or not, ordered by `created_at` then `kid`.
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Inserts a new key; fails (changing nothing) if `kid` is already stored.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;

    // ---- housekeeping --------------------------------------------------------------------
    /// Deletes ephemeral records and refresh tokens expired at `now` (`expires_at <= now`),
    /// consumed or used or not; returns how many records were deleted.
    async fn purge_expired(&self, now: i64) -> StoreResult<u64>;

    /// Whether the backend answers now (readiness probes): a trivial round trip, no data read
    /// or written. A backend with nothing that can fail (memory) keeps the default.
    async fn check(&self) -> StoreResult<()> {
        Ok(())
    }
}

/// Purges expired records every `every`, for as long as the task runs (spawn it). Failures are
/// logged and retried at the next tick: expired records are only dead weight.
pub async fn purge_periodically(store: std::sync::Arc<dyn Store>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if let Err(e) = store.purge_expired(now).await {
            tracing::warn!(error = %e, "purging expired records failed");
        }
    }
}
