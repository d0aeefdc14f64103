//! The SQLite backend: one file (WAL mode) shared by every task of one process.
//!
//! The schema is created idempotently at open (`CREATE TABLE IF NOT EXISTS`); its version is kept
//! in the `settings` table under [`SCHEMA_VERSION_SETTING`], so a later build can migrate and an
//! older build refuses a newer file instead of corrupting it.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use crate::{
    Consumed, ObjectKind, RefreshTokenRecord, SigningKeyRecord, Store, StoreError, StoreResult,
};

/// The schema version this build creates and understands.
const SCHEMA_VERSION: i64 = 1;
/// The settings row holding the schema version (a name the identity provider never uses).
const SCHEMA_VERSION_SETTING: &str = "store.schema_version";
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers proceed in parallel under WAL; writers queue on SQLite's lock (busy timeout).
const FILE_POOL_CONNECTIONS: u32 = 4;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS settings (
        name TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS objects (
        kind TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        id TEXT NOT NULL,
        json TEXT NOT NULL,
        PRIMARY KEY (kind, tenant_id, id)
    )",
    "CREATE TABLE IF NOT EXISTS refresh_tokens (
        token_hash TEXT PRIMARY KEY NOT NULL,
        family_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        data TEXT NOT NULL,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    )",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id)",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (tenant_id, user_id)",
    "CREATE TABLE IF NOT EXISTS ephemeral (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        consumed INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (kind, key)
    )",
    "CREATE TABLE IF NOT EXISTS signing_keys (
        kid TEXT PRIMARY KEY NOT NULL,
        pkcs8_der BLOB NOT NULL,
        cert_der BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        retired INTEGER NOT NULL DEFAULT 0
    )",
];

/// A [`Store`] in a SQLite database file (or, for tests, a private in-memory database).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

#[allow(clippy::needless_pass_by_value)] // by value so it fits `map_err(backend)`
fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The message of a failure during open, without the variant's prefix.
fn reason(e: StoreError) -> String {
    match e {
        StoreError::Backend(reason)
        | StoreError::Corrupt(reason)
        | StoreError::Unavailable(reason) => reason,
        StoreError::Open { reason, .. } => reason,
    }
}

impl SqliteStore {
    /// Opens (creating if missing, mode 0600 on unix) the database at `path` and brings its
    /// schema up to date.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        create_private_file(path).map_err(|e| open_err(e.to_string()))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(FILE_POOL_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        let store = SqliteStore { pool };
        store.init_schema().await.map_err(|e| open_err(reason(e)))?;
        Ok(store)
    }

    /// A fresh private in-memory database, for tests. The pool holds exactly one connection that
    /// is never closed, so every call sees the same database.
    pub async fn open_in_memory() -> StoreResult<SqliteStore> {
        let open_err = |reason: String| StoreError::Open {
            path: ":memory:".to_owned(),
            reason,
        };
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(|e| open_err(e.to_string()))?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        let store = SqliteStore { pool };
        store.init_schema().await.map_err(|e| open_err(reason(e)))?;
        Ok(store)
    }

    /// Closes every connection: from then on each call fails, as when the database is gone.
    /// For shutdown, and for tests of what a failing store looks like.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn init_schema(&self) -> StoreResult<()> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
        )
        .bind(SCHEMA_VERSION_SETTING)
        .bind(SCHEMA_VERSION.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(SCHEMA_VERSION_SETTING)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let version: i64 = stored.parse().map_err(|_| {
            StoreError::Corrupt(format!("schema version {stored:?} is not a number"))
        })?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "database schema version {version} is newer than this build supports \
                 ({SCHEMA_VERSION}); upgrade easyauth"
            )));
        }
        // Version 1 is the first schema: there is nothing to migrate from yet.
        tx.commit().await.map_err(backend)?;
        Ok(())
    }
}

/// Creates `path` with owner-only permissions if it does not exist yet, so the database (and the
/// WAL and shared-memory files SQLite derives from its mode) never become world-readable.
#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private_file(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

fn refresh_from_row(row: &SqliteRow) -> Result<RefreshTokenRecord, sqlx::Error> {
    Ok(RefreshTokenRecord {
        token_hash: row.try_get("token_hash")?,
        family_id: row.try_get("family_id")?,
        tenant_id: row.try_get("tenant_id")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        data: row.try_get("data")?,
        issued_at: row.try_get("issued_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
    })
}

fn signing_key_from_row(row: &SqliteRow) -> Result<SigningKeyRecord, sqlx::Error> {
    Ok(SigningKeyRecord {
        kid: row.try_get("kid")?,
        pkcs8_der: row.try_get("pkcs8_der")?,
        cert_der: row.try_get("cert_der")?,
        created_at: row.try_get("created_at")?,
        retired: row.try_get::<i64, _>("retired")? != 0,
    })
}

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens \
    (token_hash, family_id, tenant_id, client_id, user_id, data, issued_at, expires_at, used_at, revoked) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

fn insert_refresh_query(
    r: &RefreshTokenRecord,
) -> sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
    sqlx::query(INSERT_REFRESH)
        .bind(&r.token_hash)
        .bind(&r.family_id)
        .bind(&r.tenant_id)
        .bind(&r.client_id)
        .bind(&r.user_id)
        .bind(&r.data)
        .bind(r.issued_at)
        .bind(r.expires_at)
        .bind(r.used_at)
        .bind(i64::from(r.revoked))
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_object(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
        id: &str,
        json: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO objects (kind, tenant_id, id, json) VALUES (?, ?, ?, ?) \
             ON CONFLICT(kind, tenant_id, id) DO UPDATE SET json = excluded.json",
        )
        .bind(kind.as_str())
        .bind(tenant_id)
        .bind(id)
        .bind(json)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_object(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
        id: &str,
    ) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT json FROM objects WHERE kind = ? AND tenant_id = ? AND id = ?")
            .bind(kind.as_str())
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn list_objects(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, json FROM objects WHERE kind = ? AND tenant_id = ? ORDER BY id",
        )
        .bind(kind.as_str())
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("json")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(backend)
    }

    async fn delete_object(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
        id: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM objects WHERE kind = ? AND tenant_id = ? AND id = ?")
            .bind(kind.as_str())
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_tenant_ids(&self) -> StoreResult<Vec<String>> {
        sqlx::query_scalar("SELECT DISTINCT id FROM objects WHERE kind = ? ORDER BY id")
            .bind(ObjectKind::Tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)
    }

    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> StoreResult<()> {
        insert_refresh_query(record)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref()
            .map(refresh_from_row)
            .transpose()
            .map_err(backend)
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<bool> {
        // IMMEDIATE takes the write lock up front, so racing rotations queue on the busy timeout
        // instead of failing to upgrade a stale read snapshot.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let marked = sqlx::query(
            "UPDATE refresh_tokens SET used_at = ? \
             WHERE token_hash = ? AND used_at IS NULL AND revoked = 0 AND expires_at > ?",
        )
        .bind(now)
        .bind(old_hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if marked.rows_affected() != 1 {
            tx.rollback().await.map_err(backend)?;
            return Ok(false);
        }
        // On error the transaction is dropped, which rolls the update back.
        insert_refresh_query(new)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn revoke_refresh_family(&self, family_id: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked = 1 WHERE family_id = ? AND revoked = 0",
        )
        .bind(family_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn revoke_refresh_tokens_for(&self, tenant_id: &str, user_id: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked = 1 \
             WHERE tenant_id = ? AND user_id = ? AND revoked = 0",
        )
        .bind(tenant_id)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn put_ephemeral(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO ephemeral (kind, key, value, expires_at, consumed) VALUES (?, ?, ?, ?, 0) \
             ON CONFLICT(kind, key) DO UPDATE SET \
             value = excluded.value, expires_at = excluded.expires_at, consumed = 0",
        )
        .bind(kind)
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_ephemeral(&self, kind: &str, key: &str, now: i64) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT value FROM ephemeral WHERE kind = ? AND key = ? AND expires_at > ?",
        )
        .bind(kind)
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)
    }

    async fn consume_ephemeral(&self, kind: &str, key: &str) -> StoreResult<Consumed> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        // Only one caller can flip `consumed` from 0 to 1; that caller gets `First`.
        let first = sqlx::query(
            "UPDATE ephemeral SET consumed = 1 WHERE kind = ? AND key = ? AND consumed = 0 \
             RETURNING value, expires_at",
        )
        .bind(kind)
        .bind(key)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let result = if let Some(row) = first.first() {
            Consumed::First {
                value: row.try_get("value").map_err(backend)?,
                expires_at: row.try_get("expires_at").map_err(backend)?,
            }
        } else {
            let again =
                sqlx::query("SELECT value, expires_at FROM ephemeral WHERE kind = ? AND key = ?")
                    .bind(kind)
                    .bind(key)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
            match again {
                Some(row) => Consumed::Again {
                    value: row.try_get("value").map_err(backend)?,
                    expires_at: row.try_get("expires_at").map_err(backend)?,
                },
                None => Consumed::Missing,
            }
        };
        tx.commit().await.map_err(backend)?;
        Ok(result)
    }

    async fn delete_ephemeral(&self, kind: &str, key: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM ephemeral WHERE kind = ? AND key = ?")
            .bind(kind)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_or_create_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        // Settings are never deleted, so the row inserted above (or by a racing instance) exists.
        sqlx::query_scalar("SELECT value FROM settings WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(signing_key_from_row)
            .collect::<Result<_, _>>()
            .map_err(backend)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, pkcs8_der, cert_der, created_at, retired) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&key.kid)
        .bind(&key.pkcs8_der)
        .bind(&key.cert_der)
        .bind(key.created_at)
        .bind(i64::from(key.retired))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<u64> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        let ephemeral = sqlx::query("DELETE FROM ephemeral WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let refresh = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(ephemeral.rows_affected() + refresh.rows_affected())
    }

    async fn check(&self) -> StoreResult<()> {
        // Reads a page of the database (not just `SELECT 1`), so a file that went bad shows.
        sqlx::query("SELECT 1 FROM settings LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
