//! `Store::check`, what readiness probes ask: it answers while the backend does, and fails
//! (quickly, with the backend's reason) once the backend is gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use easyauth_store::{MemoryStore, SqliteStore, Store, StoreError};

#[tokio::test]
async fn a_sqlite_store_answers_until_its_connections_are_closed() {
    let dir = tempfile::Builder::new()
        .prefix("easyauth-store-check-")
        .tempdir()
        .unwrap();
    let store = SqliteStore::open(&dir.path().join("easyauth.db"))
        .await
        .unwrap();
    store.check().await.expect("an open store answers");
    store.close().await;
    match store.check().await {
        Err(StoreError::Backend(reason)) => assert!(!reason.is_empty()),
        other => panic!("a closed store must fail its check, got {other:?}"),
    }
}

#[tokio::test]
async fn an_in_memory_sqlite_store_and_the_memory_store_answer() {
    SqliteStore::open_in_memory()
        .await
        .unwrap()
        .check()
        .await
        .unwrap();
    MemoryStore::new().check().await.unwrap();
}
