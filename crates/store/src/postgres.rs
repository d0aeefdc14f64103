//! The PostgreSQL backend: one database shared by any number of processes (identity-provider
//! replicas), every method atomic across them.
//!
//! The schema is created at open by idempotent statements run under a transaction-scoped advisory
//! lock, so replicas starting together queue instead of racing on the catalog; its version is
//! kept in `settings` as in the SQLite backend. Losing the server (refused, reset, closed, pool
//! timeout, shutdown in progress) is [`StoreError::Unavailable`]: callers answer "try again"
//! instead of failing hard, and the pool reconnects once the server is back.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use crate::{
    Consumed, ObjectKind, RefreshTokenRecord, SigningKeyRecord, Store, StoreError, StoreResult,
};

/// The schema version this build creates and understands.
const SCHEMA_VERSION: i64 = 1;
const SCHEMA_VERSION_SETTING: &str = "store.schema_version";
/// Key of the advisory lock held while the schema is brought up to date ("easyauth" in ASCII).
const MIGRATION_LOCK: i64 = 0x6561_7379_6175_7468;
/// How long a call waits for a connection before it is answered as unavailable: bounded, so a
/// request never hangs while the database is down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const POOL_CONNECTIONS: u32 = 16;

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
        issued_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT NULL,
        revoked BOOLEAN NOT NULL DEFAULT FALSE
    )",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id)",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (tenant_id, user_id)",
    "CREATE INDEX IF NOT EXISTS refresh_tokens_expiry ON refresh_tokens (expires_at)",
    "CREATE TABLE IF NOT EXISTS ephemeral (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        consumed BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (kind, key)
    )",
    "CREATE INDEX IF NOT EXISTS ephemeral_expiry ON ephemeral (expires_at)",
    "CREATE TABLE IF NOT EXISTS signing_keys (
        kid TEXT PRIMARY KEY NOT NULL,
        pkcs8_der BYTEA NOT NULL,
        cert_der BYTEA NOT NULL,
        created_at BIGINT NOT NULL,
        retired BOOLEAN NOT NULL DEFAULT FALSE
    )",
];

/// A [`Store`] in a PostgreSQL database, safe to share between processes.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// Whether `e` means "the server cannot be reached right now" rather than a failed statement.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        // Not `Tls`: a TLS failure (sslmode the server or this build cannot do, an untrusted
        // certificate) is configuration, and waiting would not fix it.
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Protocol(message) => message.contains("closed") || message.contains("EOF"),
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Class 08: connection exception; 57P01-57P03: shutdown or start-up in progress;
            // 53300: too many connections.
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

#[allow(clippy::needless_pass_by_value)] // by value so it fits `map_err(backend)`
fn backend(e: sqlx::Error) -> StoreError {
    if is_transient(&e) {
        StoreError::Unavailable(format!("PostgreSQL: {e}"))
    } else {
        StoreError::Backend(e.to_string())
    }
}

/// `url` without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            // `password=` in the query string is a libpq spelling too.
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("password") {
                        "***".to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !pairs.is_empty() {
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        // Unparseable: show only the scheme, which cannot hold a secret.
        Err(_) => match url.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://(unparseable URL)"),
            None => "(unparseable URL)".to_owned(),
        },
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?sslmode=...`) and brings
    /// the schema up to date. A server that cannot be reached is [`StoreError::Unavailable`]
    /// (worth retrying); a malformed URL, a refused login or a newer schema is
    /// [`StoreError::Open`]. Messages name the URL without its password.
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        let shown = redact_url(url);
        let open_err = |reason: String| StoreError::Open {
            path: shown.clone(),
            reason,
        };
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| open_err(format!("not a PostgreSQL URL: {e}")))?;
        let options = options.application_name("easyauth");
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| match backend(e) {
                StoreError::Unavailable(reason) => {
                    StoreError::Unavailable(format!("{shown}: {reason}"))
                }
                other => open_err(other.to_string()),
            })?;
        let store = PostgresStore { pool };
        store.init_schema().await.map_err(|e| match e {
            StoreError::Unavailable(reason) => {
                StoreError::Unavailable(format!("{shown}: {reason}"))
            }
            StoreError::Backend(reason) | StoreError::Corrupt(reason) => open_err(reason),
            StoreError::Open { reason, .. } => open_err(reason),
        })?;
        Ok(store)
    }

    async fn init_schema(&self) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Replicas starting together wait here for each other; the lock goes with the
        // transaction.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        for statement in SCHEMA {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(SCHEMA_VERSION_SETTING)
        .bind(SCHEMA_VERSION.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
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
        tx.commit().await.map_err(backend)?;
        Ok(())
    }
}

fn refresh_from_row(row: &PgRow) -> Result<RefreshTokenRecord, sqlx::Error> {
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
        revoked: row.try_get("revoked")?,
    })
}

fn signing_key_from_row(row: &PgRow) -> Result<SigningKeyRecord, sqlx::Error> {
    Ok(SigningKeyRecord {
        kid: row.try_get("kid")?,
        pkcs8_der: row.try_get("pkcs8_der")?,
        cert_der: row.try_get("cert_der")?,
        created_at: row.try_get("created_at")?,
        retired: row.try_get("retired")?,
    })
}

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens \
    (token_hash, family_id, tenant_id, client_id, user_id, data, issued_at, expires_at, used_at, revoked) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

fn insert_refresh_query(
    r: &RefreshTokenRecord,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
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
        .bind(r.revoked)
}

// Orderings use the "C" collation so ids sort by bytes, as in the other backends, whatever the
// database's locale.
#[async_trait]
impl Store for PostgresStore {
    async fn check(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn put_object(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
        id: &str,
        json: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO objects (kind, tenant_id, id, json) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, tenant_id, id) DO UPDATE SET json = excluded.json",
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
        sqlx::query_scalar(
            "SELECT json FROM objects WHERE kind = $1 AND tenant_id = $2 AND id = $3",
        )
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
            "SELECT id, json FROM objects WHERE kind = $1 AND tenant_id = $2 \
             ORDER BY id COLLATE \"C\"",
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
        let done =
            sqlx::query("DELETE FROM objects WHERE kind = $1 AND tenant_id = $2 AND id = $3")
                .bind(kind.as_str())
                .bind(tenant_id)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_tenant_ids(&self) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT id FROM (SELECT DISTINCT id FROM objects WHERE kind = $1) AS t \
             ORDER BY id COLLATE \"C\"",
        )
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
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1")
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
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // A concurrent rotation of the same token waits on the row lock; when the first commits,
        // PostgreSQL re-checks the condition on the new row version, so the second matches
        // nothing. Exactly one wins, whichever replica it runs on.
        let marked = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND NOT revoked AND expires_at > $1",
        )
        .bind(now)
        .bind(old_hash)
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
            "UPDATE refresh_tokens SET revoked = TRUE WHERE family_id = $1 AND NOT revoked",
        )
        .bind(family_id)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn revoke_refresh_tokens_for(&self, tenant_id: &str, user_id: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET revoked = TRUE \
             WHERE tenant_id = $1 AND user_id = $2 AND NOT revoked",
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
            "INSERT INTO ephemeral (kind, key, value, expires_at, consumed) \
             VALUES ($1, $2, $3, $4, FALSE) \
             ON CONFLICT (kind, key) DO UPDATE SET \
             value = excluded.value, expires_at = excluded.expires_at, consumed = FALSE",
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
            "SELECT value FROM ephemeral WHERE kind = $1 AND key = $2 AND expires_at > $3",
        )
        .bind(kind)
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)
    }

    async fn consume_ephemeral(&self, kind: &str, key: &str) -> StoreResult<Consumed> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // The row lock makes a concurrent consumer (on any replica) wait and then read the
        // committed `consumed = TRUE`: only one caller sees it unconsumed.
        let row = sqlx::query(
            "SELECT value, expires_at, consumed FROM ephemeral \
             WHERE kind = $1 AND key = $2 FOR UPDATE",
        )
        .bind(kind)
        .bind(key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else {
            tx.rollback().await.map_err(backend)?;
            return Ok(Consumed::Missing);
        };
        let value: String = row.try_get("value").map_err(backend)?;
        let expires_at: i64 = row.try_get("expires_at").map_err(backend)?;
        let consumed: bool = row.try_get("consumed").map_err(backend)?;
        if consumed {
            tx.rollback().await.map_err(backend)?;
            return Ok(Consumed::Again { value, expires_at });
        }
        sqlx::query("UPDATE ephemeral SET consumed = TRUE WHERE kind = $1 AND key = $2")
            .bind(kind)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(Consumed::First { value, expires_at })
    }

    async fn delete_ephemeral(&self, kind: &str, key: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM ephemeral WHERE kind = $1 AND key = $2")
            .bind(kind)
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected() > 0)
    }

    async fn get_or_create_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        // Settings are never deleted, so the row inserted above (or by a racing replica) exists.
        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY created_at, kid COLLATE \"C\"")
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
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.kid)
        .bind(&key.pkcs8_der)
        .bind(&key.cert_der)
        .bind(key.created_at)
        .bind(key.retired)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let ephemeral = sqlx::query("DELETE FROM ephemeral WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let refresh = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(ephemeral.rows_affected() + refresh.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db.example:5432/idp?sslmode=require"),
            "postgres://app:***@db.example:5432/idp?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://db/idp?user=app&password=s3cret"),
            "postgresql://db/idp?user=app&password=***"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert!(!redact_url("postgres://a:s3cret@[bad").contains("s3cret"));
    }

    #[test]
    fn connection_failures_are_transient() {
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(is_transient(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }
}
