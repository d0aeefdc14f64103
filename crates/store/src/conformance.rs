//! The behaviour every [`Store`] backend must show, as one executable suite.
//!
//! [`run`] runs every [`Check`] and panics with `"<check>: <what went wrong>"` on the first
//! violation; [`check`] runs one. [`conformance_tests!`](crate::conformance_tests) turns the suite
//! into one named test per check for a backend, so a failing test names its check. Every check
//! works in its own namespace (ids carry a per-run prefix, times are chosen per check), so the
//! suite can run against a store that already holds data, or twice against the same store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Consumed, ObjectKind, RefreshTokenRecord, SigningKeyRecord, Store, StoreResult};

/// "Now" for most checks. Far above [`PURGE_BASE`], so purging below it touches nothing else.
const NOW: i64 = 1_700_000_000;
/// The time window (`PURGE_BASE ..= PURGE_BASE + 1000`) that only the purge check uses.
const PURGE_BASE: i64 = 1_000_000;

/// One check of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    ObjectsCrud,
    ObjectsIsolation,
    TenantIds,
    RefreshInsertGet,
    RefreshRotate,
    RefreshRotateInactive,
    RefreshRotateConflictingNew,
    RefreshRotateRace,
    RefreshRevokeFamily,
    RefreshRevokeForUser,
    EphemeralGetPutDelete,
    EphemeralConsume,
    EphemeralConsumeRace,
    SettingsCreateOnce,
    SigningKeys,
    PurgeExpired,
}

impl Check {
    /// Every check, in the order [`run`] runs them.
    pub const ALL: [Check; 16] = [
        Check::ObjectsCrud,
        Check::ObjectsIsolation,
        Check::TenantIds,
        Check::RefreshInsertGet,
        Check::RefreshRotate,
        Check::RefreshRotateInactive,
        Check::RefreshRotateConflictingNew,
        Check::RefreshRotateRace,
        Check::RefreshRevokeFamily,
        Check::RefreshRevokeForUser,
        Check::EphemeralGetPutDelete,
        Check::EphemeralConsume,
        Check::EphemeralConsumeRace,
        Check::SettingsCreateOnce,
        Check::SigningKeys,
        Check::PurgeExpired,
    ];

    /// The check's name, as its failures and generated tests name it.
    pub fn name(self) -> &'static str {
        match self {
            Check::ObjectsCrud => "objects_crud",
            Check::ObjectsIsolation => "objects_isolation",
            Check::TenantIds => "tenant_ids",
            Check::RefreshInsertGet => "refresh_insert_get",
            Check::RefreshRotate => "refresh_rotate",
            Check::RefreshRotateInactive => "refresh_rotate_inactive",
            Check::RefreshRotateConflictingNew => "refresh_rotate_conflicting_new",
            Check::RefreshRotateRace => "refresh_rotate_race",
            Check::RefreshRevokeFamily => "refresh_revoke_family",
            Check::RefreshRevokeForUser => "refresh_revoke_for_user",
            Check::EphemeralGetPutDelete => "ephemeral_get_put_delete",
            Check::EphemeralConsume => "ephemeral_consume",
            Check::EphemeralConsumeRace => "ephemeral_consume_race",
            Check::SettingsCreateOnce => "settings_create_once",
            Check::SigningKeys => "signing_keys",
            Check::PurgeExpired => "purge_expired",
        }
    }
}

/// Runs every check against `store`, panicking on the first violation.
pub async fn run(store: &dyn Store) {
    for c in Check::ALL {
        check(store, c).await;
    }
}

/// Runs one check against `store`, in a namespace of its own; panics on a violation.
pub async fn check(store: &dyn Store, check: Check) {
    let ns = Ns::new();
    match check {
        Check::ObjectsCrud => objects_crud(store, &ns).await,
        Check::ObjectsIsolation => objects_isolation(store, &ns).await,
        Check::TenantIds => tenant_ids(store, &ns).await,
        Check::RefreshInsertGet => refresh_insert_get(store, &ns).await,
        Check::RefreshRotate => refresh_rotate(store, &ns).await,
        Check::RefreshRotateInactive => refresh_rotate_inactive(store, &ns).await,
        Check::RefreshRotateConflictingNew => refresh_rotate_conflicting_new(store, &ns).await,
        Check::RefreshRotateRace => refresh_rotate_race(store, &ns).await,
        Check::RefreshRevokeFamily => refresh_revoke_family(store, &ns).await,
        Check::RefreshRevokeForUser => refresh_revoke_for_user(store, &ns).await,
        Check::EphemeralGetPutDelete => ephemeral_get_put_delete(store, &ns).await,
        Check::EphemeralConsume => ephemeral_consume(store, &ns).await,
        Check::EphemeralConsumeRace => ephemeral_consume_race(store, &ns).await,
        Check::SettingsCreateOnce => settings_create_once(store, &ns).await,
        Check::SigningKeys => signing_keys(store, &ns).await,
        Check::PurgeExpired => purge_expired(store, &ns).await,
    }
}

/// One `#[tokio::test]` per [`Check`] for a backend, in a module named `$module`: each test is
/// named after its check, and calls `$run` (an `async` closure taking the [`Check`]) to open the
/// backend and run it with [`check`]. The calling crate needs `tokio` with the `macros` and
/// `rt-multi-thread` features (the race checks run on two worker threads).
///
/// ```ignore
/// easyauth_store::conformance_tests!(memory_store_conforms, |check| async move {
///     easyauth_store::conformance::check(&easyauth_store::MemoryStore::new(), check).await;
/// });
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($module:ident, $run:expr) => {
        $crate::conformance_tests!(@tests $module, $run,
        objects_crud ObjectsCrud,
        objects_isolation ObjectsIsolation,
        tenant_ids TenantIds,
        refresh_insert_get RefreshInsertGet,
        refresh_rotate RefreshRotate,
        refresh_rotate_inactive RefreshRotateInactive,
        refresh_rotate_conflicting_new RefreshRotateConflictingNew,
        refresh_rotate_race RefreshRotateRace,
        refresh_revoke_family RefreshRevokeFamily,
        refresh_revoke_for_user RefreshRevokeForUser,
        ephemeral_get_put_delete EphemeralGetPutDelete,
        ephemeral_consume EphemeralConsume,
        ephemeral_consume_race EphemeralConsumeRace,
        settings_create_once SettingsCreateOnce,
        signing_keys SigningKeys,
        purge_expired PurgeExpired,
        );
    };
    (@tests $module:ident, $run:expr, $($name:ident $variant:ident,)*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    ($run)($crate::conformance::Check::$variant).await;
                }
            )*

            /// The list above and [`Check::ALL`] must not drift apart.
            #[test]
            fn every_check_has_its_test() {
                assert_eq!(
                    [$($crate::conformance::Check::$variant),*],
                    $crate::conformance::Check::ALL
                );
            }
        }
    };
}

/// A per-run prefix for every id and key the suite writes.
struct Ns(String);

impl Ns {
    fn new() -> Self {
        static RUN: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let run = RUN.fetch_add(1, Ordering::Relaxed);
        Ns(format!("conf{}x{nanos}x{run}", std::process::id()))
    }

    fn id(&self, name: &str) -> String {
        format!("{}-{name}", self.0)
    }

    /// Whether `id` was made by [`Ns::id`] of this run.
    fn owns(&self, id: &str) -> bool {
        id.strip_prefix(&self.0)
            .is_some_and(|rest| rest.starts_with('-'))
    }
}

/// Unwraps a store result, naming the check and the call on failure.
#[track_caller]
fn ok<T>(check: &str, call: &str, result: StoreResult<T>) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{check}: {call} failed: {e}"),
    }
}

fn token(
    hash: &str,
    family: &str,
    tenant: &str,
    client: &str,
    user: &str,
    expires_at: i64,
) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.to_owned(),
        family_id: family.to_owned(),
        tenant_id: tenant.to_owned(),
        client_id: client.to_owned(),
        user_id: user.to_owned(),
        data: format!(r#"{{"scp":"openid offline_access","for":"{hash}"}}"#),
        issued_at: NOW - 100,
        expires_at,
        used_at: None,
        revoked: false,
    }
}

async fn objects_crud(store: &dyn Store, ns: &Ns) {
    const C: &str = "objects_crud";
    let tenant = ns.id("crud-tenant");
    let kind = ObjectKind::User;

    assert_eq!(
        ok(
            C,
            "get_object",
            store.get_object(kind, &tenant, "nobody").await
        ),
        None,
        "{C}: get of a never-stored document must be None"
    );
    assert!(
        ok(C, "list_objects", store.list_objects(kind, &tenant).await).is_empty(),
        "{C}: list of an empty tenant must be empty"
    );

    // Inserted out of order; listing must be ordered by id.
    for (id, json) in [
        ("c", r#"{"n":"c"}"#),
        ("a", r#"{"n":"a"}"#),
        ("b", r#"{"n":"b"}"#),
    ] {
        ok(
            C,
            "put_object",
            store.put_object(kind, &tenant, id, json).await,
        );
    }
    assert_eq!(
        ok(C, "get_object", store.get_object(kind, &tenant, "a").await).as_deref(),
        Some(r#"{"n":"a"}"#),
        "{C}: get must return the stored JSON byte-for-byte"
    );

    // Replace.
    let unicode = r#"{"n":"b2","name":"Zoë ✓"}"#;
    ok(
        C,
        "put_object (replace)",
        store.put_object(kind, &tenant, "b", unicode).await,
    );
    assert_eq!(
        ok(C, "get_object", store.get_object(kind, &tenant, "b").await).as_deref(),
        Some(unicode),
        "{C}: put of an existing id must replace the document"
    );

    let listed = ok(C, "list_objects", store.list_objects(kind, &tenant).await);
    let expected: Vec<(String, String)> = vec![
        ("a".into(), r#"{"n":"a"}"#.into()),
        ("b".into(), unicode.into()),
        ("c".into(), r#"{"n":"c"}"#.into()),
    ];
    assert_eq!(
        listed, expected,
        "{C}: list must hold each id once, ordered by id"
    );

    // Delete: true, then false.
    assert!(
        ok(
            C,
            "delete_object",
            store.delete_object(kind, &tenant, "b").await
        ),
        "{C}: deleting a stored document must return true"
    );
    assert!(
        !ok(
            C,
            "delete_object",
            store.delete_object(kind, &tenant, "b").await
        ),
        "{C}: deleting it again must return false"
    );
    assert!(
        !ok(
            C,
            "delete_object",
            store.delete_object(kind, &tenant, "never").await
        ),
        "{C}: deleting a never-stored document must return false"
    );
    assert_eq!(
        ok(C, "get_object", store.get_object(kind, &tenant, "b").await),
        None,
        "{C}: a deleted document must be gone"
    );
    let ids: Vec<String> = ok(C, "list_objects", store.list_objects(kind, &tenant).await)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["a", "c"], "{C}: list after delete");
}

async fn objects_isolation(store: &dyn Store, ns: &Ns) {
    const C: &str = "objects_isolation";
    let t1 = ns.id("iso-t1");
    let t2 = ns.id("iso-t2");
    let id = "same-id";

    ok(
        C,
        "put_object",
        store.put_object(ObjectKind::User, &t1, id, "user-t1").await,
    );
    ok(
        C,
        "put_object",
        store.put_object(ObjectKind::User, &t2, id, "user-t2").await,
    );
    ok(
        C,
        "put_object",
        store
            .put_object(ObjectKind::Application, &t1, id, "app-t1")
            .await,
    );
    ok(
        C,
        "put_object",
        store
            .put_object(ObjectKind::PermissionGrant, &t1, id, "grant-t1")
            .await,
    );
    ok(
        C,
        "put_object",
        store
            .put_object(ObjectKind::AppRoleAssignment, &t1, id, "ara-t1")
            .await,
    );

    for (kind, tenant, want) in [
        (ObjectKind::User, &t1, "user-t1"),
        (ObjectKind::User, &t2, "user-t2"),
        (ObjectKind::Application, &t1, "app-t1"),
        (ObjectKind::PermissionGrant, &t1, "grant-t1"),
        (ObjectKind::AppRoleAssignment, &t1, "ara-t1"),
    ] {
        assert_eq!(
            ok(C, "get_object", store.get_object(kind, tenant, id).await).as_deref(),
            Some(want),
            "{C}: ({kind:?}, {tenant}, {id}) must hold its own document"
        );
    }
    assert_eq!(
        ok(
            C,
            "get_object",
            store.get_object(ObjectKind::Application, &t2, id).await
        ),
        None,
        "{C}: a document of another tenant must not be visible"
    );
    assert_eq!(
        ok(
            C,
            "get_object",
            store.get_object(ObjectKind::Tenant, &t1, id).await
        ),
        None,
        "{C}: a document of another kind must not be visible"
    );

    let users_t1 = ok(
        C,
        "list_objects",
        store.list_objects(ObjectKind::User, &t1).await,
    );
    assert_eq!(
        users_t1,
        vec![(id.to_owned(), "user-t1".to_owned())],
        "{C}: list must only return one kind in one tenant"
    );

    assert!(
        ok(
            C,
            "delete_object",
            store.delete_object(ObjectKind::User, &t1, id).await
        ),
        "{C}: delete must succeed"
    );
    assert_eq!(
        ok(
            C,
            "get_object",
            store.get_object(ObjectKind::User, &t2, id).await
        )
        .as_deref(),
        Some("user-t2"),
        "{C}: delete must not touch another tenant"
    );
    assert_eq!(
        ok(
            C,
            "get_object",
            store.get_object(ObjectKind::Application, &t1, id).await
        )
        .as_deref(),
        Some("app-t1"),
        "{C}: delete must not touch another kind"
    );
}

async fn tenant_ids(store: &dyn Store, ns: &Ns) {
    const C: &str = "tenant_ids";
    let ta = ns.id("tid-a");
    let tb = ns.id("tid-b");
    let not_a_tenant = ns.id("tid-user-only");

    // Inserted out of order, one twice (a replace), plus a non-tenant document.
    ok(
        C,
        "put_object",
        store.put_object(ObjectKind::Tenant, &tb, &tb, "{}").await,
    );
    ok(
        C,
        "put_object",
        store.put_object(ObjectKind::Tenant, &ta, &ta, "{}").await,
    );
    ok(
        C,
        "put_object",
        store
            .put_object(ObjectKind::Tenant, &ta, &ta, r#"{"v":2}"#)
            .await,
    );
    ok(
        C,
        "put_object",
        store
            .put_object(ObjectKind::User, &not_a_tenant, "u", "{}")
            .await,
    );

    let ids = ok(C, "list_tenant_ids", store.list_tenant_ids().await);
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "{C}: tenant ids must be sorted and distinct");
    let ours: Vec<&String> = ids.iter().filter(|id| ns.owns(id)).collect();
    assert_eq!(
        ours,
        [&ta, &tb],
        "{C}: must list exactly the ids of Tenant documents (not tenants of other kinds)"
    );

    ok(
        C,
        "delete_object",
        store.delete_object(ObjectKind::Tenant, &ta, &ta).await,
    );
    let ids = ok(C, "list_tenant_ids", store.list_tenant_ids().await);
    assert!(
        !ids.contains(&ta) && ids.contains(&tb),
        "{C}: a deleted tenant must disappear from the list"
    );
}

async fn refresh_insert_get(store: &dyn Store, ns: &Ns) {
    const C: &str = "refresh_insert_get";
    let fresh = token(
        &ns.id("rig-1"),
        &ns.id("rig-fam"),
        "t",
        "c",
        "u",
        NOW + 3600,
    );
    let mut used_revoked = token(
        &ns.id("rig-2"),
        &ns.id("rig-fam"),
        "t",
        "c",
        "u",
        NOW + 7200,
    );
    used_revoked.used_at = Some(NOW - 5);
    used_revoked.revoked = true;
    used_revoked.data = r#"{"emoji":"🔑","quote":"'\""}"#.to_owned();

    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&fresh.token_hash).await
        ),
        None,
        "{C}: unknown hash must be None"
    );
    ok(
        C,
        "insert_refresh_token",
        store.insert_refresh_token(&fresh).await,
    );
    ok(
        C,
        "insert_refresh_token",
        store.insert_refresh_token(&used_revoked).await,
    );
    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&fresh.token_hash).await
        ),
        Some(fresh.clone()),
        "{C}: record must round-trip unchanged"
    );
    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&used_revoked.token_hash).await
        ),
        Some(used_revoked.clone()),
        "{C}: used_at and revoked must round-trip"
    );

    let mut dup = token(
        &fresh.token_hash,
        "other-family",
        "t2",
        "c2",
        "u2",
        NOW + 10,
    );
    dup.data = "{}".to_owned();
    assert!(
        store.insert_refresh_token(&dup).await.is_err(),
        "{C}: inserting an existing token hash must fail"
    );
    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&fresh.token_hash).await
        ),
        Some(fresh),
        "{C}: a failed duplicate insert must not change the stored record"
    );
}

async fn refresh_rotate(store: &dyn Store, ns: &Ns) {
    const C: &str = "refresh_rotate";
    let family = ns.id("rot-fam");
    let old = token(&ns.id("rot-old"), &family, "t", "c", "u", NOW + 3600);
    let new = token(&ns.id("rot-new"), &family, "t", "c", "u", NOW + 7200);
    let other = token(&ns.id("rot-other"), &family, "t", "c", "u", NOW + 7200);
    ok(
        C,
        "insert_refresh_token",
        store.insert_refresh_token(&old).await,
    );

    assert!(
        ok(
            C,
            "rotate_refresh_token",
            store.rotate_refresh_token(&old.token_hash, &new, NOW).await
        ),
        "{C}: rotating an active token must succeed"
    );
    let old_after = ok(
        C,
        "get_refresh_token",
        store.get_refresh_token(&old.token_hash).await,
    )
    .unwrap_or_else(|| panic!("{C}: the rotated token must still be stored"));
    assert_eq!(
        old_after.used_at,
        Some(NOW),
        "{C}: rotation must set used_at = now"
    );
    assert!(
        !old_after.revoked,
        "{C}: rotation must not revoke the old token"
    );
    assert_eq!(
        RefreshTokenRecord {
            used_at: None,
            ..old_after
        },
        old,
        "{C}: rotation must change nothing but used_at"
    );
    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&new.token_hash).await
        ),
        Some(new.clone()),
        "{C}: rotation must insert the successor unchanged"
    );

    // Reuse of the rotated token: refused, nothing inserted, old record unchanged.
    assert!(
        !ok(
            C,
            "rotate_refresh_token",
            store
                .rotate_refresh_token(&old.token_hash, &other, NOW + 1)
                .await
        ),
        "{C}: rotating an already-used token must return false"
    );
    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&other.token_hash).await
        ),
        None,
        "{C}: a refused rotation must not insert the successor"
    );
    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&old.token_hash).await
        )
        .and_then(|r| r.used_at),
        Some(NOW),
        "{C}: a refused rotation must not move used_at"
    );

    // The successor can itself be rotated.
    assert!(
        ok(
            C,
            "rotate_refresh_token",
            store
                .rotate_refresh_token(&new.token_hash, &other, NOW + 2)
                .await
        ),
        "{C}: the successor must be rotatable"
    );

    // Unknown token.
    let orphan = token(&ns.id("rot-orphan"), &family, "t", "c", "u", NOW + 7200);
    assert!(
        !ok(
            C,
            "rotate_refresh_token",
            store
                .rotate_refresh_token(&ns.id("rot-unknown"), &orphan, NOW)
                .await
        ),
        "{C}: rotating an unknown token must return false"
    );
    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&orphan.token_hash).await
        ),
        None,
        "{C}: rotating an unknown token must insert nothing"
    );
}

async fn refresh_rotate_inactive(store: &dyn Store, ns: &Ns) {
    const C: &str = "refresh_rotate_inactive";
    let family = ns.id("inact-fam");
    let expired = token(&ns.id("inact-expired"), &family, "t", "c", "u", NOW - 1);
    let boundary = token(&ns.id("inact-boundary"), &family, "t", "c", "u", NOW);
    let mut revoked = token(&ns.id("inact-revoked"), &family, "t", "c", "u", NOW + 3600);
    revoked.revoked = true;
    for record in [&expired, &boundary, &revoked] {
        ok(
            C,
            "insert_refresh_token",
            store.insert_refresh_token(record).await,
        );
    }

    for (label, record) in [
        ("an expired", &expired),
        ("a token expiring exactly now", &boundary),
        ("a revoked", &revoked),
    ] {
        let successor = token(
            &format!("{}-next", record.token_hash),
            &family,
            "t",
            "c",
            "u",
            NOW + 7200,
        );
        assert!(
            !ok(
                C,
                "rotate_refresh_token",
                store
                    .rotate_refresh_token(&record.token_hash, &successor, NOW)
                    .await
            ),
            "{C}: rotating {label} token must return false"
        );
        assert_eq!(
            ok(
                C,
                "get_refresh_token",
                store.get_refresh_token(&successor.token_hash).await
            ),
            None,
            "{C}: rotating {label} token must insert nothing"
        );
        assert_eq!(
            ok(
                C,
                "get_refresh_token",
                store.get_refresh_token(&record.token_hash).await
            )
            .as_ref(),
            Some(record),
            "{C}: rotating {label} token must leave it unchanged"
        );
    }
}

async fn refresh_rotate_conflicting_new(store: &dyn Store, ns: &Ns) {
    const C: &str = "refresh_rotate_conflicting_new";
    let family = ns.id("conflict-fam");
    let old = token(&ns.id("conflict-old"), &family, "t", "c", "u", NOW + 3600);
    let existing = token(
        &ns.id("conflict-existing"),
        &family,
        "t",
        "c",
        "u",
        NOW + 3600,
    );
    ok(
        C,
        "insert_refresh_token",
        store.insert_refresh_token(&old).await,
    );
    ok(
        C,
        "insert_refresh_token",
        store.insert_refresh_token(&existing).await,
    );

    let mut clash = existing.clone();
    clash.data = "different".to_owned();
    let result = store
        .rotate_refresh_token(&old.token_hash, &clash, NOW)
        .await;
    assert!(
        !matches!(result, Ok(true)),
        "{C}: rotation onto an existing successor hash must not report success"
    );
    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&old.token_hash).await
        ),
        Some(old.clone()),
        "{C}: a failed rotation must leave the old token unused (all or nothing)"
    );
    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&existing.token_hash).await
        ),
        Some(existing),
        "{C}: a failed rotation must not overwrite the existing record"
    );
}

async fn refresh_rotate_race(store: &dyn Store, ns: &Ns) {
    const C: &str = "refresh_rotate_race";
    let family = ns.id("race-fam");
    let old = token(&ns.id("race-old"), &family, "t", "c", "u", NOW + 3600);
    ok(
        C,
        "insert_refresh_token",
        store.insert_refresh_token(&old).await,
    );
    let news: Vec<RefreshTokenRecord> = (0..4)
        .map(|i| {
            token(
                &ns.id(&format!("race-new-{i}")),
                &family,
                "t",
                "c",
                "u",
                NOW + 7200,
            )
        })
        .collect();

    let (a, b, c, d) = tokio::join!(
        store.rotate_refresh_token(&old.token_hash, &news[0], NOW),
        store.rotate_refresh_token(&old.token_hash, &news[1], NOW),
        store.rotate_refresh_token(&old.token_hash, &news[2], NOW),
        store.rotate_refresh_token(&old.token_hash, &news[3], NOW),
    );
    let outcomes = [
        ok(C, "rotate_refresh_token", a),
        ok(C, "rotate_refresh_token", b),
        ok(C, "rotate_refresh_token", c),
        ok(C, "rotate_refresh_token", d),
    ];
    assert_eq!(
        outcomes.iter().filter(|won| **won).count(),
        1,
        "{C}: exactly one of concurrent rotations must win, got {outcomes:?}"
    );
    for (won, new) in outcomes.iter().zip(&news) {
        let stored = ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&new.token_hash).await,
        );
        assert_eq!(
            stored.is_some(),
            *won,
            "{C}: only the winning rotation's successor may be stored"
        );
    }
}

async fn refresh_revoke_family(store: &dyn Store, ns: &Ns) {
    const C: &str = "refresh_revoke_family";
    let family = ns.id("rev-fam");
    let other_family = ns.id("rev-other-fam");
    let mut members = vec![
        token(&ns.id("rev-1"), &family, "t", "c", "u", NOW + 3600),
        token(&ns.id("rev-2"), &family, "t", "c", "u", NOW + 3600),
        token(&ns.id("rev-3"), &family, "t", "c2", "u", NOW + 3600),
    ];
    members[0].used_at = Some(NOW - 10);
    let bystander = token(
        &ns.id("rev-other"),
        &other_family,
        "t",
        "c",
        "u",
        NOW + 3600,
    );
    for record in members.iter().chain([&bystander]) {
        ok(
            C,
            "insert_refresh_token",
            store.insert_refresh_token(record).await,
        );
    }

    assert_eq!(
        ok(
            C,
            "revoke_refresh_family",
            store.revoke_refresh_family(&family).await
        ),
        3,
        "{C}: must revoke (and count) every member of the family"
    );
    for member in &members {
        let stored = ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&member.token_hash).await,
        )
        .unwrap_or_else(|| panic!("{C}: revocation must not delete tokens"));
        assert!(
            stored.revoked,
            "{C}: family member {} must be revoked",
            member.token_hash
        );
        assert_eq!(
            stored.used_at, member.used_at,
            "{C}: revocation must not touch used_at"
        );
        assert!(
            !stored.is_active(NOW),
            "{C}: a revoked token must be inactive"
        );
    }
    assert_eq!(
        ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&bystander.token_hash).await
        ),
        Some(bystander.clone()),
        "{C}: another family must be untouched"
    );
    assert_eq!(
        ok(
            C,
            "revoke_refresh_family",
            store.revoke_refresh_family(&family).await
        ),
        0,
        "{C}: revoking again must count nothing new"
    );
    assert_eq!(
        ok(
            C,
            "revoke_refresh_family",
            store.revoke_refresh_family(&ns.id("rev-none")).await
        ),
        0,
        "{C}: an unknown family must count 0"
    );
    let successor = token(&ns.id("rev-next"), &family, "t", "c", "u", NOW + 7200);
    assert!(
        !ok(
            C,
            "rotate_refresh_token",
            store
                .rotate_refresh_token(&members[1].token_hash, &successor, NOW)
                .await
        ),
        "{C}: a revoked token must not rotate"
    );
}

async fn refresh_revoke_for_user(store: &dyn Store, ns: &Ns) {
    const C: &str = "refresh_revoke_for_user";
    let t1 = ns.id("rfu-t1");
    let t2 = ns.id("rfu-t2");
    let fam = ns.id("rfu-fam");
    let targets = [
        token(
            &ns.id("rfu-u1-c1"),
            &fam,
            &t1,
            "client-1",
            "user-1",
            NOW + 3600,
        ),
        token(
            &ns.id("rfu-u1-c2"),
            &fam,
            &t1,
            "client-2",
            "user-1",
            NOW + 3600,
        ),
    ];
    let bystanders = [
        // Same user id in another tenant.
        token(
            &ns.id("rfu-u1-t2"),
            &fam,
            &t2,
            "client-1",
            "user-1",
            NOW + 3600,
        ),
        // Another user in the same tenant.
        token(
            &ns.id("rfu-u2-t1"),
            &fam,
            &t1,
            "client-1",
            "user-2",
            NOW + 3600,
        ),
    ];
    for record in targets.iter().chain(&bystanders) {
        ok(
            C,
            "insert_refresh_token",
            store.insert_refresh_token(record).await,
        );
    }

    assert_eq!(
        ok(
            C,
            "revoke_refresh_tokens_for",
            store.revoke_refresh_tokens_for(&t1, "user-1").await
        ),
        2,
        "{C}: must revoke the user's tokens for every client in that tenant"
    );
    for target in &targets {
        let stored = ok(
            C,
            "get_refresh_token",
            store.get_refresh_token(&target.token_hash).await,
        );
        assert!(
            stored.is_some_and(|r| r.revoked),
            "{C}: {} must be revoked",
            target.token_hash
        );
    }
    for bystander in &bystanders {
        assert_eq!(
            ok(
                C,
                "get_refresh_token",
                store.get_refresh_token(&bystander.token_hash).await
            )
            .as_ref(),
            Some(bystander),
            "{C}: {} (other user or tenant) must be untouched",
            bystander.token_hash
        );
    }
    assert_eq!(
        ok(
            C,
            "revoke_refresh_tokens_for",
            store.revoke_refresh_tokens_for(&t1, "user-1").await
        ),
        0,
        "{C}: revoking again must count nothing new"
    );
}

async fn ephemeral_get_put_delete(store: &dyn Store, ns: &Ns) {
    const C: &str = "ephemeral_get_put_delete";
    let kind = ns.id("code");
    let other_kind = ns.id("session");
    let key = "k1";

    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&kind, key, NOW).await
        ),
        None,
        "{C}: unknown key must be None"
    );
    ok(
        C,
        "put_ephemeral",
        store.put_ephemeral(&kind, key, "v1", NOW + 100).await,
    );
    ok(
        C,
        "put_ephemeral",
        store
            .put_ephemeral(&other_kind, key, "other", NOW + 100)
            .await,
    );
    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&kind, key, NOW).await
        )
        .as_deref(),
        Some("v1"),
        "{C}: get before expiry must return the value"
    );
    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&other_kind, key, NOW).await
        )
        .as_deref(),
        Some("other"),
        "{C}: kinds must be separate namespaces"
    );
    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&kind, key, NOW + 99).await
        )
        .as_deref(),
        Some("v1"),
        "{C}: get one second before expiry must return the value"
    );
    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&kind, key, NOW + 100).await
        ),
        None,
        "{C}: get at expires_at must be None"
    );
    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&kind, key, NOW + 1000).await
        ),
        None,
        "{C}: get after expiry must be None"
    );

    // Replace.
    ok(
        C,
        "put_ephemeral",
        store.put_ephemeral(&kind, key, "v2", NOW + 500).await,
    );
    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&kind, key, NOW + 200).await
        )
        .as_deref(),
        Some("v2"),
        "{C}: put must replace the value and the expiry"
    );

    // Delete: true, then false; the other kind survives.
    assert!(
        ok(
            C,
            "delete_ephemeral",
            store.delete_ephemeral(&kind, key).await
        ),
        "{C}: deleting a stored record must return true"
    );
    assert!(
        !ok(
            C,
            "delete_ephemeral",
            store.delete_ephemeral(&kind, key).await
        ),
        "{C}: deleting it again must return false"
    );
    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&kind, key, NOW).await
        ),
        None,
        "{C}: a deleted record must be gone"
    );
    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&other_kind, key, NOW).await
        )
        .as_deref(),
        Some("other"),
        "{C}: delete must not touch another kind"
    );
}

async fn ephemeral_consume(store: &dyn Store, ns: &Ns) {
    const C: &str = "ephemeral_consume";
    let kind = ns.id("authcode");
    let exp = NOW + 60;

    assert_eq!(
        ok(
            C,
            "consume_ephemeral",
            store.consume_ephemeral(&kind, "nope").await
        ),
        Consumed::Missing,
        "{C}: unknown key must be Missing"
    );

    ok(
        C,
        "put_ephemeral",
        store.put_ephemeral(&kind, "code1", "payload", exp).await,
    );
    let first = Consumed::First {
        value: "payload".into(),
        expires_at: exp,
    };
    let again = Consumed::Again {
        value: "payload".into(),
        expires_at: exp,
    };
    assert_eq!(
        ok(
            C,
            "consume_ephemeral",
            store.consume_ephemeral(&kind, "code1").await
        ),
        first,
        "{C}: first consumption must return First with value and expiry"
    );
    assert_eq!(
        ok(
            C,
            "consume_ephemeral",
            store.consume_ephemeral(&kind, "code1").await
        ),
        again,
        "{C}: second consumption must return Again"
    );
    assert_eq!(
        ok(
            C,
            "consume_ephemeral",
            store.consume_ephemeral(&kind, "code1").await
        ),
        again,
        "{C}: third consumption must still return Again"
    );
    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&kind, "code1", NOW).await
        )
        .as_deref(),
        Some("payload"),
        "{C}: get must not depend on the consumed state"
    );
    assert_eq!(
        ok(
            C,
            "consume_ephemeral",
            store.consume_ephemeral(&ns.id("other"), "code1").await
        ),
        Consumed::Missing,
        "{C}: consumption must be per kind"
    );

    // Consumption does not check expiry: it reports expires_at for the caller to check.
    ok(
        C,
        "put_ephemeral",
        store.put_ephemeral(&kind, "stale", "old", NOW - 10).await,
    );
    assert_eq!(
        ok(
            C,
            "consume_ephemeral",
            store.consume_ephemeral(&kind, "stale").await
        ),
        Consumed::First {
            value: "old".into(),
            expires_at: NOW - 10
        },
        "{C}: an expired, unpurged record must still report First with its expiry"
    );

    // A put over a consumed record starts afresh.
    ok(
        C,
        "put_ephemeral",
        store.put_ephemeral(&kind, "code1", "fresh", exp + 1).await,
    );
    assert_eq!(
        ok(
            C,
            "consume_ephemeral",
            store.consume_ephemeral(&kind, "code1").await
        ),
        Consumed::First {
            value: "fresh".into(),
            expires_at: exp + 1
        },
        "{C}: put must reset the consumed state"
    );

    assert!(
        ok(
            C,
            "delete_ephemeral",
            store.delete_ephemeral(&kind, "code1").await
        ),
        "{C}: deleting a consumed record must return true"
    );
    assert_eq!(
        ok(
            C,
            "consume_ephemeral",
            store.consume_ephemeral(&kind, "code1").await
        ),
        Consumed::Missing,
        "{C}: a deleted record must be Missing"
    );
}

async fn ephemeral_consume_race(store: &dyn Store, ns: &Ns) {
    const C: &str = "ephemeral_consume_race";
    let kind = ns.id("racecode");
    ok(
        C,
        "put_ephemeral",
        store.put_ephemeral(&kind, "k", "v", NOW + 60).await,
    );
    let (a, b, c, d) = tokio::join!(
        store.consume_ephemeral(&kind, "k"),
        store.consume_ephemeral(&kind, "k"),
        store.consume_ephemeral(&kind, "k"),
        store.consume_ephemeral(&kind, "k"),
    );
    let outcomes = [
        ok(C, "consume_ephemeral", a),
        ok(C, "consume_ephemeral", b),
        ok(C, "consume_ephemeral", c),
        ok(C, "consume_ephemeral", d),
    ];
    let firsts = outcomes
        .iter()
        .filter(|o| matches!(o, Consumed::First { .. }))
        .count();
    let agains = outcomes
        .iter()
        .filter(|o| matches!(o, Consumed::Again { .. }))
        .count();
    assert_eq!(
        (firsts, agains),
        (1, 3),
        "{C}: exactly one concurrent consumer must see First, got {outcomes:?}"
    );
}

async fn settings_create_once(store: &dyn Store, ns: &Ns) {
    const C: &str = "settings_create_once";
    let name = ns.id("cookie-key");
    assert_eq!(
        ok(
            C,
            "get_or_create_setting",
            store.get_or_create_setting(&name, "first").await
        ),
        "first",
        "{C}: the first call must store and return its value"
    );
    assert_eq!(
        ok(
            C,
            "get_or_create_setting",
            store.get_or_create_setting(&name, "second").await
        ),
        "first",
        "{C}: a later call must return the value stored first"
    );
    assert_eq!(
        ok(
            C,
            "get_or_create_setting",
            store.get_or_create_setting(&ns.id("other"), "x").await
        ),
        "x",
        "{C}: settings must be independent by name"
    );

    let racing = ns.id("raced");
    let (a, b, c) = tokio::join!(
        store.get_or_create_setting(&racing, "a"),
        store.get_or_create_setting(&racing, "b"),
        store.get_or_create_setting(&racing, "c"),
    );
    let values = [
        ok(C, "get_or_create_setting", a),
        ok(C, "get_or_create_setting", b),
        ok(C, "get_or_create_setting", c),
    ];
    assert!(
        values.iter().all(|v| *v == values[0]),
        "{C}: racing creators must agree on one value, got {values:?}"
    );
}

async fn signing_keys(store: &dyn Store, ns: &Ns) {
    const C: &str = "signing_keys";
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let later = SigningKeyRecord {
        kid: ns.id("kid-later"),
        pkcs8_der: all_bytes.iter().rev().copied().collect(),
        cert_der: vec![0x30, 0x82, 0x00, 0x00, 0xff],
        created_at: NOW + 10,
        retired: false,
    };
    let earlier = SigningKeyRecord {
        kid: ns.id("kid-earlier"),
        pkcs8_der: all_bytes,
        cert_der: vec![0; 3],
        created_at: NOW,
        retired: true,
    };
    ok(
        C,
        "insert_signing_key",
        store.insert_signing_key(&later).await,
    );
    ok(
        C,
        "insert_signing_key",
        store.insert_signing_key(&earlier).await,
    );

    let keys = ok(C, "list_signing_keys", store.list_signing_keys().await);
    assert!(
        keys.windows(2)
            .all(|w| (w[0].created_at, &w[0].kid) <= (w[1].created_at, &w[1].kid)),
        "{C}: keys must be ordered by created_at, then kid"
    );
    let ours: Vec<&SigningKeyRecord> = keys.iter().filter(|k| ns.owns(&k.kid)).collect();
    assert_eq!(
        ours,
        [&earlier, &later],
        "{C}: keys must round-trip byte-exact, retired flag included"
    );

    let dup = SigningKeyRecord {
        pkcs8_der: vec![1],
        cert_der: vec![2],
        retired: false,
        ..earlier.clone()
    };
    assert!(
        store.insert_signing_key(&dup).await.is_err(),
        "{C}: inserting an existing kid must fail"
    );
    let keys = ok(C, "list_signing_keys", store.list_signing_keys().await);
    assert_eq!(
        keys.iter().find(|k| k.kid == earlier.kid),
        Some(&earlier),
        "{C}: a failed duplicate insert must not change the stored key"
    );
}

async fn purge_expired(store: &dyn Store, ns: &Ns) {
    const C: &str = "purge_expired";
    let base = PURGE_BASE;
    // Anything an earlier run left at or below the window's start goes first, so the count below
    // covers exactly this check's records.
    ok(C, "purge_expired", store.purge_expired(base).await);

    let kind = ns.id("purge");
    let fam = ns.id("purge-fam");
    let cutoff = base + 100;
    ok(
        C,
        "put_ephemeral",
        store.put_ephemeral(&kind, "old", "x", base + 10).await,
    );
    ok(
        C,
        "put_ephemeral",
        store.put_ephemeral(&kind, "edge", "x", cutoff).await,
    );
    ok(
        C,
        "put_ephemeral",
        store.put_ephemeral(&kind, "live", "x", cutoff + 1).await,
    );
    ok(
        C,
        "put_ephemeral",
        store
            .put_ephemeral(&kind, "consumed-live", "x", base + 900)
            .await,
    );
    ok(
        C,
        "consume_ephemeral",
        store.consume_ephemeral(&kind, "consumed-live").await,
    );

    let old = token(&ns.id("purge-old"), &fam, "t", "c", "u", base + 20);
    let edge = token(&ns.id("purge-edge"), &fam, "t", "c", "u", cutoff);
    let mut used_live = token(&ns.id("purge-used-live"), &fam, "t", "c", "u", base + 900);
    used_live.used_at = Some(base + 5);
    let mut revoked_live = token(
        &ns.id("purge-revoked-live"),
        &fam,
        "t",
        "c",
        "u",
        base + 900,
    );
    revoked_live.revoked = true;
    let live_now = token(&ns.id("purge-live-now"), &fam, "t", "c", "u", NOW + 3600);
    for record in [&old, &edge, &used_live, &revoked_live, &live_now] {
        ok(
            C,
            "insert_refresh_token",
            store.insert_refresh_token(record).await,
        );
    }

    assert_eq!(
        ok(C, "purge_expired", store.purge_expired(cutoff).await),
        4,
        "{C}: must delete exactly the records with expires_at <= now (2 ephemeral, 2 tokens)"
    );
    for key in ["old", "edge"] {
        assert_eq!(
            ok(
                C,
                "consume_ephemeral",
                store.consume_ephemeral(&kind, key).await
            ),
            Consumed::Missing,
            "{C}: expired ephemeral record {key:?} must be deleted"
        );
    }
    assert_eq!(
        ok(
            C,
            "get_ephemeral",
            store.get_ephemeral(&kind, "live", cutoff).await
        )
        .as_deref(),
        Some("x"),
        "{C}: an unexpired ephemeral record must survive"
    );
    assert!(
        matches!(
            ok(
                C,
                "consume_ephemeral",
                store.consume_ephemeral(&kind, "consumed-live").await
            ),
            Consumed::Again { .. }
        ),
        "{C}: an unexpired consumed record must survive, still consumed"
    );
    for gone in [&old, &edge] {
        assert_eq!(
            ok(
                C,
                "get_refresh_token",
                store.get_refresh_token(&gone.token_hash).await
            ),
            None,
            "{C}: expired refresh token {} must be deleted",
            gone.token_hash
        );
    }
    for kept in [&used_live, &revoked_live, &live_now] {
        assert_eq!(
            ok(
                C,
                "get_refresh_token",
                store.get_refresh_token(&kept.token_hash).await
            )
            .as_ref(),
            Some(kept),
            "{C}: unexpired refresh token {} must survive unchanged",
            kept.token_hash
        );
    }
    assert_eq!(
        ok(C, "purge_expired", store.purge_expired(cutoff).await),
        0,
        "{C}: purging again must delete nothing"
    );
    // Leave nothing of this check in the window for a later run.
    ok(C, "purge_expired", store.purge_expired(base + 1000).await);
}
