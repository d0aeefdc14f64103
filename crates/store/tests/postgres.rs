//! PostgreSQL against the shared conformance suite (one fresh database per check), plus what
//! only a shared server can show: two stores on one database standing in for two replicas.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use easyauth_store::{Consumed, PostgresStore, RefreshTokenRecord, Store, StoreError, conformance};
use easyauth_testservers::PostgresServer;

/// A new, empty database on the test binary's server.
fn fresh_database(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let server = PostgresServer::shared().unwrap();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    server.create_database(&format!("{label}_{n}")).unwrap()
}

easyauth_store::conformance_tests!(postgres_store_conforms, |check| async move {
    let url = fresh_database("conform");
    let store = PostgresStore::open(&url).await.unwrap();
    conformance::check(&store, check).await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conforms_twice_on_one_database() {
    let url = fresh_database("twice");
    let store = PostgresStore::open(&url).await.unwrap();
    conformance::run(&store).await;
    // A second store on the same database (another replica) sees a migrated schema and passes.
    let other = PostgresStore::open(&url).await.unwrap();
    conformance::run(&other).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_open_one_new_database_together() {
    let url = fresh_database("firstopen");
    // Migrations race on an empty database: all must succeed and agree on one schema.
    let opened = futures_join(
        (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { PostgresStore::open(&url).await })
            })
            .collect(),
    )
    .await;
    let stores: Vec<PostgresStore> = opened.into_iter().map(Result::unwrap).collect();
    stores[0]
        .insert_refresh_token(&token("seen-by-all", 1_700_003_600))
        .await
        .unwrap();
    for store in &stores {
        assert!(
            store
                .get_refresh_token("seen-by-all")
                .await
                .unwrap()
                .is_some()
        );
    }
}

async fn futures_join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotation_across_replicas_has_one_winner() {
    let url = fresh_database("rotate");
    let a = Arc::new(PostgresStore::open(&url).await.unwrap());
    let b = Arc::new(PostgresStore::open(&url).await.unwrap());
    for round in 0..20 {
        let old = format!("old-{round}");
        a.insert_refresh_token(&token(&old, 1_700_003_600))
            .await
            .unwrap();
        let (na, nb) = (
            token(&format!("a-{round}"), 1_700_007_200),
            token(&format!("b-{round}"), 1_700_007_200),
        );
        let (ra, rb) = tokio::join!(
            a.rotate_refresh_token(&old, &na, 1_700_000_000),
            b.rotate_refresh_token(&old, &nb, 1_700_000_000),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(
            ra ^ rb,
            "round {round}: exactly one replica must win: a={ra} b={rb}"
        );
        // Only the winner's successor exists.
        assert_eq!(
            a.get_refresh_token(&na.token_hash).await.unwrap().is_some(),
            ra
        );
        assert_eq!(
            b.get_refresh_token(&nb.token_hash).await.unwrap().is_some(),
            rb
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_consume_across_replicas_is_single_use() {
    let url = fresh_database("consume");
    let a = PostgresStore::open(&url).await.unwrap();
    let b = PostgresStore::open(&url).await.unwrap();
    for round in 0..20 {
        let key = format!("code-{round}");
        a.put_ephemeral("code", &key, "v", 1_700_000_600)
            .await
            .unwrap();
        let (ra, rb) = tokio::join!(
            a.consume_ephemeral("code", &key),
            b.consume_ephemeral("code", &key)
        );
        let results = [ra.unwrap(), rb.unwrap()];
        let first = results
            .iter()
            .filter(|r| matches!(r, Consumed::First { .. }))
            .count();
        let again = results
            .iter()
            .filter(|r| matches!(r, Consumed::Again { .. }))
            .count();
        assert_eq!((first, again), (1, 1), "round {round}: {results:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_server_is_unavailable_and_the_pool_recovers() {
    let mut server = PostgresServer::start().unwrap();
    let url = server.create_database("recover").unwrap();
    let store = PostgresStore::open(&url).await.unwrap();
    store.check().await.unwrap();
    store
        .insert_refresh_token(&token("before", 1_700_003_600))
        .await
        .unwrap();

    server.stop();
    match store.check().await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable while stopped, got {other:?}"),
    }
    match store.get_refresh_token("before").await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable while stopped, got {other:?}"),
    }

    server.restart().unwrap();
    // The same store (no reopen) serves again, with the data written before the outage.
    store.check().await.unwrap();
    assert!(store.get_refresh_token("before").await.unwrap().is_some());
}

#[tokio::test]
async fn unreachable_server_at_open_is_unavailable_without_the_password() {
    let port = easyauth_testservers::free_port();
    let url = format!("postgres://app:s3cret@127.0.0.1:{port}/idp");
    match PostgresStore::open(&url).await {
        Err(StoreError::Unavailable(reason)) => {
            assert!(!reason.contains("s3cret"), "{reason}");
            assert!(reason.contains(&port.to_string()), "{reason}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn malformed_url_is_a_precise_open_error() {
    match PostgresStore::open("postgres://app:s3cret@127.0.0.1:notaport/idp").await {
        Err(e @ StoreError::Open { .. }) => {
            let text = e.to_string();
            assert!(!text.contains("s3cret"), "{text}");
        }
        other => panic!("expected Open, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schema_is_refused() {
    let url = fresh_database("schema");
    let store = PostgresStore::open(&url).await.unwrap();
    drop(store);
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE settings SET value = '999' WHERE name = 'store.schema_version'")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    match PostgresStore::open(&url).await {
        Err(StoreError::Open { reason, .. }) => assert!(reason.contains("999"), "{reason}"),
        other => panic!("expected Open, got {other:?}"),
    }
}

#[tokio::test]
async fn tls_the_server_cannot_do_is_a_configuration_error() {
    let server = PostgresServer::shared().unwrap();
    let url = format!("{}?sslmode=require", server.url());
    match PostgresStore::open(&url).await {
        Err(StoreError::Open { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("expected Open (not worth retrying), got {other:?}"),
    }
}
