//! An in-process store for laptops and tests. Everything lives behind one mutex, so every method
//! is trivially atomic; the lock is never held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::{
    Consumed, ObjectKind, RefreshTokenRecord, SigningKeyRecord, Store, StoreError, StoreResult,
};

/// A [`Store`] that keeps everything in memory; contents are lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Ephemeral {
    value: String,
    expires_at: i64,
    consumed: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// (kind, tenant) -> id -> json. The inner map is ordered so listing is ordered by id.
    objects: HashMap<(ObjectKind, String), BTreeMap<String, String>>,
    refresh_tokens: HashMap<String, RefreshTokenRecord>,
    /// (kind, key) -> record.
    ephemeral: HashMap<(String, String), Ephemeral>,
    settings: HashMap<String, String>,
    signing_keys: HashMap<String, SigningKeyRecord>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// No method panics while holding the lock, so even a poisoned lock guards a consistent
    /// state: recover it instead of failing every later call.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_object(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
        id: &str,
        json: &str,
    ) -> StoreResult<()> {
        self.lock()
            .objects
            .entry((kind, tenant_id.to_owned()))
            .or_default()
            .insert(id.to_owned(), json.to_owned());
        Ok(())
    }

    async fn get_object(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
        id: &str,
    ) -> StoreResult<Option<String>> {
        Ok(self
            .lock()
            .objects
            .get(&(kind, tenant_id.to_owned()))
            .and_then(|docs| docs.get(id))
            .cloned())
    }

    async fn list_objects(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        Ok(self
            .lock()
            .objects
            .get(&(kind, tenant_id.to_owned()))
            .map(|docs| {
                docs.iter()
                    .map(|(id, json)| (id.clone(), json.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn delete_object(
        &self,
        kind: ObjectKind,
        tenant_id: &str,
        id: &str,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        let key = (kind, tenant_id.to_owned());
        let Some(docs) = inner.objects.get_mut(&key) else {
            return Ok(false);
        };
        let deleted = docs.remove(id).is_some();
        if docs.is_empty() {
            inner.objects.remove(&key);
        }
        Ok(deleted)
    }

    async fn list_tenant_ids(&self) -> StoreResult<Vec<String>> {
        let inner = self.lock();
        let mut ids: Vec<String> = inner
            .objects
            .iter()
            .filter(|((kind, _), _)| *kind == ObjectKind::Tenant)
            .flat_map(|(_, docs)| docs.keys().cloned())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn insert_refresh_token(&self, record: &RefreshTokenRecord) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner.refresh_tokens.contains_key(&record.token_hash) {
            return Err(StoreError::Backend(
                "refresh token hash already exists".to_owned(),
            ));
        }
        inner
            .refresh_tokens
            .insert(record.token_hash.clone(), record.clone());
        Ok(())
    }

    async fn get_refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        Ok(self.lock().refresh_tokens.get(token_hash).cloned())
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new: &RefreshTokenRecord,
        now: i64,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        match inner.refresh_tokens.get(old_hash) {
            Some(old) if old.is_active(now) => {}
            _ => return Ok(false),
        }
        if inner.refresh_tokens.contains_key(&new.token_hash) {
            // Same outcome as the SQL backend: the insert fails and nothing changes.
            return Err(StoreError::Backend(
                "refresh token hash already exists".to_owned(),
            ));
        }
        if let Some(old) = inner.refresh_tokens.get_mut(old_hash) {
            old.used_at = Some(now);
        }
        inner
            .refresh_tokens
            .insert(new.token_hash.clone(), new.clone());
        Ok(true)
    }

    async fn revoke_refresh_family(&self, family_id: &str) -> StoreResult<u64> {
        let mut inner = self.lock();
        let mut count = 0;
        for record in inner.refresh_tokens.values_mut() {
            if record.family_id == family_id && !record.revoked {
                record.revoked = true;
                count += 1;
            }
        }
        Ok(count)
    }

    async fn revoke_refresh_tokens_for(&self, tenant_id: &str, user_id: &str) -> StoreResult<u64> {
        let mut inner = self.lock();
        let mut count = 0;
        for record in inner.refresh_tokens.values_mut() {
            if record.tenant_id == tenant_id && record.user_id == user_id && !record.revoked {
                record.revoked = true;
                count += 1;
            }
        }
        Ok(count)
    }

    async fn put_ephemeral(
        &self,
        kind: &str,
        key: &str,
        value: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.lock().ephemeral.insert(
            (kind.to_owned(), key.to_owned()),
            Ephemeral {
                value: value.to_owned(),
                expires_at,
                consumed: false,
            },
        );
        Ok(())
    }

    async fn get_ephemeral(&self, kind: &str, key: &str, now: i64) -> StoreResult<Option<String>> {
        Ok(self
            .lock()
            .ephemeral
            .get(&(kind.to_owned(), key.to_owned()))
            .filter(|e| now < e.expires_at)
            .map(|e| e.value.clone()))
    }

    async fn consume_ephemeral(&self, kind: &str, key: &str) -> StoreResult<Consumed> {
        let mut inner = self.lock();
        let Some(e) = inner.ephemeral.get_mut(&(kind.to_owned(), key.to_owned())) else {
            return Ok(Consumed::Missing);
        };
        let value = e.value.clone();
        let expires_at = e.expires_at;
        if e.consumed {
            Ok(Consumed::Again { value, expires_at })
        } else {
            e.consumed = true;
            Ok(Consumed::First { value, expires_at })
        }
    }

    async fn delete_ephemeral(&self, kind: &str, key: &str) -> StoreResult<bool> {
        Ok(self
            .lock()
            .ephemeral
            .remove(&(kind.to_owned(), key.to_owned()))
            .is_some())
    }

    async fn get_or_create_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        Ok(self
            .lock()
            .settings
            .entry(name.to_owned())
            .or_insert_with(|| value.to_owned())
            .clone())
    }

    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let mut keys: Vec<SigningKeyRecord> = self.lock().signing_keys.values().cloned().collect();
        keys.sort_by(|a, b| (a.created_at, &a.kid).cmp(&(b.created_at, &b.kid)));
        Ok(keys)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner.signing_keys.contains_key(&key.kid) {
            return Err(StoreError::Backend(
                "signing key id already exists".to_owned(),
            ));
        }
        inner.signing_keys.insert(key.kid.clone(), key.clone());
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> StoreResult<u64> {
        let mut inner = self.lock();
        let before = inner.ephemeral.len() + inner.refresh_tokens.len();
        inner.ephemeral.retain(|_, e| now < e.expires_at);
        inner.refresh_tokens.retain(|_, r| now < r.expires_at);
        let after = inner.ephemeral.len() + inner.refresh_tokens.len();
        Ok((before - after) as u64)
    }
}
