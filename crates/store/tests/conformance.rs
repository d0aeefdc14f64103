//! Every backend against the shared conformance suite, plus what only a file store can show:
//! persistence across reopen, file permissions, schema-version guarding and cross-connection
//! races.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use easyauth_store::{
    MemoryStore, ObjectKind, RefreshTokenRecord, SigningKeyRecord, SqliteStore, Store, StoreError,
    conformance,
};

/// A fresh directory under the system temp dir, removed (with everything in it) on drop.
struct TempDir(tempfile::TempDir);

impl TempDir {
    fn new(label: &str) -> Self {
        TempDir(
            tempfile::Builder::new()
                .prefix(&format!("easyauth-store-{label}-"))
                .tempdir()
                .unwrap(),
        )
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn db(&self) -> PathBuf {
        self.path().join("store.db")
    }
}

fn token(hash: &str, expires_at: i64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.to_owned(),
        family_id: "family".to_owned(),
        tenant_id: "tenant".to_owned(),
        client_id: "client".to_owned(),
        user_id: "user".to_owned(),
        data: r#"{"scp":"openid"}"#.to_owned(),
        issued_at: 1_700_000_000,
        expires_at,
        used_at: None,
        revoked: false,
    }
}

// One test per check and backend, named `<backend>::<check>`.
easyauth_store::conformance_tests!(memory_store_conforms, |check| async move {
    conformance::check(&MemoryStore::new(), check).await;
});

easyauth_store::conformance_tests!(sqlite_in_memory_conforms, |check| async move {
    let store = SqliteStore::open_in_memory().await.unwrap();
    conformance::check(&store, check).await;
});

easyauth_store::conformance_tests!(sqlite_file_conforms, |check| async move {
    let dir = TempDir::new("conform");
    let store = SqliteStore::open(&dir.db()).await.unwrap();
    conformance::check(&store, check).await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_conforms_twice_on_one_database() {
    let dir = TempDir::new("conform-twice");
    let store = SqliteStore::open(&dir.db()).await.unwrap();
    conformance::run(&store).await;
    // The suite namespaces its data, so a second run on the same database must pass too.
    conformance::run(&store).await;
}

#[tokio::test]
async fn in_memory_stores_are_separate() {
    let a = SqliteStore::open_in_memory().await.unwrap();
    let b = SqliteStore::open_in_memory().await.unwrap();
    a.put_object(ObjectKind::User, "t", "u", "{}")
        .await
        .unwrap();
    assert_eq!(
        b.get_object(ObjectKind::User, "t", "u").await.unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_persists_across_reopen() {
    let dir = TempDir::new("persist");
    let path = dir.db();
    let refresh = token("persisted-hash", 1_700_003_600);
    let key = SigningKeyRecord {
        kid: "kid-1".to_owned(),
        pkcs8_der: vec![0x30, 0x00, 0xff, 0x7f],
        cert_der: (0..=255u8).collect(),
        created_at: 1_700_000_000,
        retired: true,
    };
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .put_object(ObjectKind::Tenant, "t1", "t1", r#"{"name":"Contoso"}"#)
            .await
            .unwrap();
        store.insert_refresh_token(&refresh).await.unwrap();
        store.insert_signing_key(&key).await.unwrap();
        assert_eq!(
            store.get_or_create_setting("secret", "s1").await.unwrap(),
            "s1"
        );
    }

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store
            .get_object(ObjectKind::Tenant, "t1", "t1")
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"name":"Contoso"}"#)
    );
    assert_eq!(store.list_tenant_ids().await.unwrap(), ["t1"]);
    assert_eq!(
        store.get_refresh_token("persisted-hash").await.unwrap(),
        Some(refresh)
    );
    assert_eq!(store.list_signing_keys().await.unwrap(), [key]);
    assert_eq!(
        store.get_or_create_setting("secret", "s2").await.unwrap(),
        "s1"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    let path = dir.db();
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .put_object(ObjectKind::User, "t", "u", "{}")
        .await
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "database file mode is {mode:o}");
    let wal = path.with_file_name("store.db-wal");
    if wal.exists() {
        let mode = std::fs::metadata(&wal).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "WAL file mode is {mode:o}");
    }
}

#[tokio::test]
async fn sqlite_open_fails_cleanly_for_missing_directory() {
    let dir = TempDir::new("missing");
    let path = dir.path().join("no-such-dir").join("store.db");
    match SqliteStore::open(&path).await {
        Err(StoreError::Open { path: reported, .. }) => {
            assert!(reported.contains("no-such-dir"), "reported path {reported}");
        }
        other => panic!("expected an Open error, got {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_refuses_newer_schema() {
    let dir = TempDir::new("schema");
    let path = dir.db();
    drop(SqliteStore::open(&path).await.unwrap());
    // Simulate a database written by a future build.
    set_schema_version(&path, "999").await;
    match SqliteStore::open(&path).await {
        Err(StoreError::Open { reason, .. }) => {
            assert!(reason.contains("999"), "reason {reason}");
        }
        other => panic!("expected an Open error, got {other:?}"),
    }
}

async fn set_schema_version(path: &Path, version: &str) {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let done = sqlx::query("UPDATE settings SET value = ? WHERE name = 'store.schema_version'")
        .bind(version)
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    conn.close().await.unwrap();
}

/// Eight tasks race to rotate one token, each with its own successor: exactly one may win, and
/// only its successor may exist.
async fn race_rotation(store: Arc<dyn Store>) {
    const NOW: i64 = 1_700_000_100;
    store
        .insert_refresh_token(&token("race-old", NOW + 3600))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let new = token(&format!("race-new-{i}"), NOW + 7200);
                store.rotate_refresh_token("race-old", &new, NOW).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if task.await.unwrap().unwrap() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    for i in 0..8 {
        let stored = store
            .get_refresh_token(&format!("race-new-{i}"))
            .await
            .unwrap();
        assert_eq!(stored.is_some(), winners.contains(&i), "successor {i}");
    }
    let old = store.get_refresh_token("race-old").await.unwrap().unwrap();
    assert_eq!(old.used_at, Some(NOW));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_concurrent_rotation_has_one_winner() {
    let dir = TempDir::new("race");
    let store = SqliteStore::open(&dir.db()).await.unwrap();
    race_rotation(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_concurrent_rotation_across_instances() {
    // Two stores on one file stand in for two processes sharing it.
    let dir = TempDir::new("race2");
    let a = SqliteStore::open(&dir.db()).await.unwrap();
    let b = SqliteStore::open(&dir.db()).await.unwrap();
    a.insert_refresh_token(&token("shared-old", 1_700_003_600))
        .await
        .unwrap();
    let (new_a, new_b) = (
        token("from-a", 1_700_007_200),
        token("from-b", 1_700_007_200),
    );
    let (ra, rb) = tokio::join!(
        a.rotate_refresh_token("shared-old", &new_a, 1_700_000_000),
        b.rotate_refresh_token("shared-old", &new_b, 1_700_000_000),
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra ^ rb, "exactly one instance must win: a={ra} b={rb}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_concurrent_rotation_has_one_winner() {
    race_rotation(Arc::new(MemoryStore::new())).await;
}
