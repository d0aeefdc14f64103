//! The session stores behind the module, against the real thing: the token store (SQLite) and
//! Redis (a private `redis-server`). What replicas rely on: a session saved by one instance is
//! read by another; sign-out is seen at once; Redis holds nothing readable; the refresh lease has
//! one holder at a time; Redis down is an error (never "no session"), and service resumes when it
//! is back, with the sessions it had.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use easyauth_module::{
    RedisSessions, SessionRecord, SessionStore, SessionStoreError, TokenStoreSessions,
};
use easyauth_store::SqliteStore;
use easyauth_testservers::RedisServer;
use serde_json::{Map, json};

const EXTENSION: Duration = Duration::from_secs(72 * 3600);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn record(access_token: &str) -> SessionRecord {
    let mut claims = Map::new();
    claims.insert("name".into(), json!("Alice"));
    serde_json::from_value(json!({
        "provider": "aad",
        "claims": claims,
        "id_token": "id-token-secret-value",
        "access_token": access_token,
        "refresh_token": "refresh-token-secret-value",
        "expires_on": now() + 3600,
        "session_expires": now() + 3600,
    }))
    .unwrap()
}

fn redis() -> RedisServer {
    RedisServer::start().expect("redis-server (cargo xtask test installs it)")
}

fn replica(server: &RedisServer) -> Arc<dyn SessionStore> {
    Arc::new(RedisSessions::connect(&server.url(), None, EXTENSION).unwrap())
}

/// What every session store does, whoever implements it; `a` and `b` are two instances over
/// the same backend (two replicas; for the token store, two handles of one process's store).
async fn behaves_as_a_session_store(a: &dyn SessionStore, b: &dyn SessionStore) {
    a.check().await.unwrap();
    let sid = "c2Vzc2lvbi1pZC0zMi1ieXRlcy1vZi1yYW5kb21uZXNz";
    assert!(a.load(sid).await.unwrap().is_none());
    let r = record("access-token-1");
    a.save(sid, &r).await.unwrap();
    let loaded = b
        .load(sid)
        .await
        .unwrap()
        .expect("saved by the other instance");
    assert_eq!(*loaded, r);
    let (found_sid, found) = b
        .find_by_access_token("access-token-1")
        .await
        .unwrap()
        .expect("indexed by its access token");
    assert_eq!(found_sid, sid);
    assert_eq!(*found, r);
    assert!(
        b.find_by_access_token("access-token-2")
            .await
            .unwrap()
            .is_none()
    );

    // A refresh replaces the record; the old token no longer finds it.
    let mut refreshed = r.clone();
    refreshed.access_token = Some("access-token-2".into());
    b.save(sid, &refreshed).await.unwrap();
    assert_eq!(*a.load(sid).await.unwrap().unwrap(), refreshed);
    assert!(
        a.find_by_access_token("access-token-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        a.find_by_access_token("access-token-2")
            .await
            .unwrap()
            .is_some()
    );

    // Sign-out on one instance: revoked and deleted everywhere.
    a.revoke(sid, &refreshed).await.unwrap();
    a.delete(sid, Some(&refreshed)).await.unwrap();
    assert!(a.load(sid).await.unwrap().is_none());
    assert!(b.admit_carried(sid, &refreshed).await.unwrap().is_none());
    let other = "b3RoZXItc2Vzc2lvbi1pZC0zMi1ieXRlcy1yYW5kb20";
    assert!(b.admit_carried(other, &refreshed).await.unwrap().is_some());

    // The refresh lease: one holder at a time, across instances; only the holder renews or
    // releases it.
    let ttl = Duration::from_secs(30);
    assert!(a.try_lease(sid, "holder-a", ttl).await.unwrap());
    assert!(!b.try_lease(sid, "holder-b", ttl).await.unwrap());
    assert!(a.renew_lease(sid, "holder-a", ttl).await.unwrap());
    assert!(!b.renew_lease(sid, "holder-b", ttl).await.unwrap());
    b.release_lease(sid, "holder-b").await.unwrap();
    assert!(!b.try_lease(sid, "holder-b", ttl).await.unwrap());
    a.release_lease(sid, "holder-a").await.unwrap();
    assert!(b.try_lease(sid, "holder-b", ttl).await.unwrap());
}

#[tokio::test]
async fn the_token_store_behaves_as_a_session_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).await.unwrap());
    let sessions = TokenStoreSessions::new(store, EXTENSION);
    behaves_as_a_session_store(&sessions, &sessions).await;
}

#[tokio::test]
async fn redis_behaves_as_a_session_store_shared_by_replicas() {
    let server = redis();
    let (a, b) = (replica(&server), replica(&server));
    behaves_as_a_session_store(a.as_ref(), b.as_ref()).await;
}

/// Every key easyauth wrote, with its value and time to live.
async fn dump(server: &RedisServer) -> Vec<(String, Vec<u8>, i64)> {
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = Vec::new();
    for k in keys {
        let v: Vec<u8> = redis::cmd("GET").arg(&k).query_async(&mut c).await.unwrap();
        let ttl: i64 = redis::cmd("TTL").arg(&k).query_async(&mut c).await.unwrap();
        out.push((k, v, ttl));
    }
    out
}

#[tokio::test]
async fn redis_holds_no_readable_token_or_session_id_and_expires_with_the_session() {
    let server = redis();
    let sessions = replica(&server);
    let sid = "dGlja2V0LW9mLXRoaXJ0eS10d28tcmFuZG9tLWJ5dGVz";
    let r = record("the-access-token-value");
    sessions.save(sid, &r).await.unwrap();
    let stored = dump(&server).await;
    assert_eq!(
        stored.len(),
        2,
        "the session and its access-token index: {stored:?}"
    );
    let keep_until = r.session_expires + EXTENSION.as_secs() as i64;
    for (key, value, ttl) in &stored {
        assert!(key.starts_with("easyauth:"), "{key}");
        let text = String::from_utf8_lossy(value);
        for secret in [
            sid,
            "the-access-token-value",
            "refresh-token-secret-value",
            "id-token-secret-value",
            "Alice",
        ] {
            assert!(!key.contains(secret), "{key} names {secret}");
            assert!(!text.contains(secret), "{key} holds {secret} in clear");
        }
        assert!(
            *ttl > 0 && *ttl <= keep_until - now() + 1,
            "{key}: TTL {ttl}"
        );
        assert!(
            *ttl >= keep_until - now() - 5,
            "{key}: TTL {ttl}, session kept until {keep_until}"
        );
    }
    // A session that has ended beyond its refresh extension is not kept at all.
    let mut ended = r.clone();
    ended.session_expires = now() - EXTENSION.as_secs() as i64 - 10;
    sessions.save(sid, &ended).await.unwrap();
    assert!(sessions.load(sid).await.unwrap().is_none());
}

#[tokio::test]
async fn a_tampered_redis_record_is_an_error_not_a_session() {
    let server = redis();
    let sessions = replica(&server);
    let sid = "dGFtcGVyZWQtc2Vzc2lvbi10aGlydHktdHdvLWJ5dGVz";
    sessions.save(sid, &record("at")).await.unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    for (key, mut value, _) in dump(&server).await {
        let last = value.len() - 1;
        value[last] ^= 1;
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let fresh = replica(&server);
    match fresh.load(sid).await {
        Err(SessionStoreError::Corrupt(_)) => {}
        other => panic!("expected a corrupt-record error, got {other:?}"),
    }
}

#[tokio::test]
async fn redis_down_is_an_error_within_bounds_and_sessions_come_back_with_it() {
    let mut server = redis();
    let sessions = replica(&server);
    let sid = "cGVyc2lzdGVkLXNlc3Npb24tdGhpcnR5LXR3by1ieXRl";
    let r = record("persisted-access-token");
    sessions.save(sid, &r).await.unwrap();
    server.stop();
    let asked = Instant::now();
    match sessions.load(sid).await {
        Err(SessionStoreError::Unavailable(message)) => {
            assert!(message.contains("Redis"), "{message}");
        }
        other => panic!("Redis down must be an error, not {other:?}"),
    }
    assert!(sessions.check().await.is_err());
    // Bounded: not a hang (the bound itself is generous; speed is not what this checks).
    assert!(asked.elapsed() < Duration::from_secs(30));
    server.restart().unwrap();
    let mut back = None;
    for _ in 0..100 {
        match sessions.load(sid).await {
            Ok(found) => {
                back = Some(found);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let back = back.expect("service resumes by itself once Redis is back");
    assert_eq!(
        *back.expect("the session survived the restart (append-only file)"),
        r
    );
    sessions.check().await.unwrap();
}

#[tokio::test]
async fn a_module_starts_with_redis_down_and_is_ready_once_it_is_up() {
    let mut server = redis();
    server.stop();
    // Connecting is lazy: no error at start-up, only until Redis answers.
    let sessions = replica(&server);
    assert!(sessions.check().await.is_err());
    server.restart().unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if sessions.check().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready);
}

#[test]
fn a_bad_redis_url_is_a_precise_error_without_the_password() {
    let e = RedisSessions::connect("redis://user:hunter2@[bad", None, EXTENSION).unwrap_err();
    let text = e.to_string();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.starts_with("session store"), "{text}");
    assert_eq!(
        easyauth_module::redacted_url("rediss://default:hunter2@cache.example:6380/0"),
        "rediss://default:***@cache.example:6380/0"
    );
}

#[tokio::test]
async fn rediss_trusts_the_given_ca_and_refuses_an_unknown_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = easyauth_pki::LocalCa::load_or_create(dir.path()).unwrap();
    let (chain, key) = ca
        .server_cert_pem(&["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap();
    let tls = easyauth_testservers::RedisTls {
        cert: dir.path().join("redis.pem"),
        key: dir.path().join("redis.key"),
        ca: ca.cert_path().to_path_buf(),
    };
    std::fs::write(&tls.cert, chain).unwrap();
    std::fs::write(&tls.key, key).unwrap();
    let server = RedisServer::start_tls(tls).expect("redis-server with TLS");
    assert!(server.url().starts_with("rediss://"));

    let trusted = RedisSessions::connect(
        &server.url(),
        Some(ca.cert_pem().as_bytes().to_vec()),
        EXTENSION,
    )
    .unwrap();
    let other = RedisSessions::connect(
        &server.url(),
        Some(ca.cert_pem().as_bytes().to_vec()),
        EXTENSION,
    )
    .unwrap();
    behaves_as_a_session_store(&trusted, &other).await;

    // The system's roots alone do not know the local CA: no session data goes to that server.
    let untrusting = RedisSessions::connect(&server.url(), None, EXTENSION).unwrap();
    match untrusting.check().await {
        Err(SessionStoreError::Unavailable(_)) => {}
        other => panic!("an unknown certificate must not be trusted: {other:?}"),
    }
}

#[tokio::test]
async fn a_redis_cluster_behaves_as_a_session_store() {
    let cluster = easyauth_testservers::RedisCluster::start(3).expect("a private Redis Cluster");
    let url = cluster.url();
    assert!(url.starts_with("redis+cluster://"), "{url}");
    let a = RedisSessions::connect(&url, None, EXTENSION).unwrap();
    let b = RedisSessions::connect(&url, None, EXTENSION).unwrap();
    behaves_as_a_session_store(&a, &b).await;
    // Many sessions: their keys hash to slots on every node, and each is found again.
    for i in 0..30 {
        let sid = format!("Y2x1c3Rlci1zZXNzaW9uLW51bWJlci0{i:02}");
        a.save(&sid, &record(&format!("cluster-token-{i}")))
            .await
            .unwrap();
        let (found, _) = b
            .find_by_access_token(&format!("cluster-token-{i}"))
            .await
            .unwrap()
            .expect("indexed");
        assert_eq!(found, sid);
    }
}

#[tokio::test]
async fn sentinel_sessions_follow_a_failover_by_themselves() {
    let sentinel =
        easyauth_testservers::RedisSentinel::start().expect("master, replica and Sentinel");
    let url = sentinel.url();
    let a = RedisSessions::connect(&url, None, EXTENSION).unwrap();
    let b = RedisSessions::connect(&url, None, EXTENSION).unwrap();
    behaves_as_a_session_store(&a, &b).await;
    let before = "YmVmb3JlLXRoZS1mYWlsb3Zlci10aGlydHktdHdvLWI";
    let r = record("token-before-failover");
    a.save(before, &r).await.unwrap();
    sentinel.wait_replicated().unwrap();
    let old_master = sentinel.master_port().unwrap();
    let new_master = sentinel.fail_over().unwrap();
    assert_ne!(old_master, new_master);
    // The first operations may still reach the demoted master (READONLY) or a closed
    // connection; the store then asks the Sentinel again.
    let after = "YWZ0ZXItdGhlLWZhaWxvdmVyLXRoaXJ0eS10d28tYnk";
    let r2 = record("token-after-failover");
    let mut saved = false;
    for _ in 0..100 {
        if a.save(after, &r2).await.is_ok() {
            saved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saved, "writes resume on the promoted master");
    let mut read = None;
    for _ in 0..100 {
        if let Ok(found) = b.load(after).await {
            read = found;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(*read.expect("written after the failover"), r2);
    assert_eq!(
        *b.load(before).await.unwrap().expect("replicated before it"),
        r
    );
}
