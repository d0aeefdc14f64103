//! The Resource Manager's documents in the store (`ObjectKind::ResourceGroup`, `ServerFarm`,
//! `WebSite`, keyed by the subscription id and the lower-cased name), so they survive a restart
//! and every store backend keeps them. Writes are serialised by one lock: ARM writes are rare,
//! and read-modify-write sequences (name checks, plan site counts) must not interleave.

use std::sync::Arc;

use easyauth_store::{ObjectKind, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ArmError, ArmResult};
use crate::model::{Plan, ResourceGroup, WebApp};

#[derive(Debug)]
pub struct State {
    store: Arc<dyn Store>,
    pub subscription: String,
    pub(crate) write: tokio::sync::Mutex<()>,
}

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl State {
    pub fn new(store: Arc<dyn Store>, subscription: String) -> State {
        State {
            store,
            subscription,
            write: tokio::sync::Mutex::new(()),
        }
    }

    async fn get<T: DeserializeOwned>(&self, kind: ObjectKind, name: &str) -> ArmResult<Option<T>> {
        match self
            .store
            .get_object(kind, &self.subscription, &key(name))
            .await?
        {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json).map(Some).map_err(|e| {
                ArmError::internal(format!("a stored {} is unreadable: {e}", kind.as_str()))
            }),
        }
    }

    async fn list<T: DeserializeOwned>(&self, kind: ObjectKind) -> ArmResult<Vec<T>> {
        let mut out = Vec::new();
        for (_, json) in self.store.list_objects(kind, &self.subscription).await? {
            match serde_json::from_str(&json) {
                Ok(v) => out.push(v),
                Err(e) => {
                    tracing::warn!(kind = kind.as_str(), error = %e, "an unreadable stored resource was skipped")
                }
            }
        }
        Ok(out)
    }

    async fn put<T: Serialize>(&self, kind: ObjectKind, name: &str, value: &T) -> ArmResult<()> {
        let json = serde_json::to_string(value).map_err(|e| {
            ArmError::internal(format!("cannot serialise a {}: {e}", kind.as_str()))
        })?;
        self.store
            .put_object(kind, &self.subscription, &key(name), &json)
            .await?;
        Ok(())
    }

    pub async fn group(&self, name: &str) -> ArmResult<Option<ResourceGroup>> {
        self.get(ObjectKind::ResourceGroup, name).await
    }

    pub async fn groups(&self) -> ArmResult<Vec<ResourceGroup>> {
        self.list(ObjectKind::ResourceGroup).await
    }

    pub async fn put_group(&self, group: &ResourceGroup) -> ArmResult<()> {
        self.put(ObjectKind::ResourceGroup, &group.name, group)
            .await
    }

    pub async fn delete_group(&self, name: &str) -> ArmResult<bool> {
        Ok(self
            .store
            .delete_object(ObjectKind::ResourceGroup, &self.subscription, &key(name))
            .await?)
    }

    pub async fn plan(&self, name: &str) -> ArmResult<Option<Plan>> {
        self.get(ObjectKind::ServerFarm, name).await
    }

    pub async fn plans(&self) -> ArmResult<Vec<Plan>> {
        self.list(ObjectKind::ServerFarm).await
    }

    pub async fn put_plan(&self, plan: &Plan) -> ArmResult<()> {
        self.put(ObjectKind::ServerFarm, &plan.name, plan).await
    }

    pub async fn delete_plan(&self, name: &str) -> ArmResult<bool> {
        Ok(self
            .store
            .delete_object(ObjectKind::ServerFarm, &self.subscription, &key(name))
            .await?)
    }

    pub async fn site(&self, name: &str) -> ArmResult<Option<WebApp>> {
        self.get(ObjectKind::WebSite, name).await
    }

    pub async fn sites(&self) -> ArmResult<Vec<WebApp>> {
        self.list(ObjectKind::WebSite).await
    }

    pub async fn put_site(&self, site: &WebApp) -> ArmResult<()> {
        self.put(ObjectKind::WebSite, &site.name, site).await
    }

    pub async fn delete_site(&self, name: &str) -> ArmResult<bool> {
        Ok(self
            .store
            .delete_object(ObjectKind::WebSite, &self.subscription, &key(name))
            .await?)
    }
}
