//! The resources the local Resource Manager keeps, as stored documents, and their ARM JSON.
//!
//! A web app's document holds everything ARM reports about it and everything a person can change
//! through ARM (site configuration, app settings, auth settings, publishing credentials); how
//! the platform runs it (a site-file command, an upstream URL, or deployments) is kept in
//! `platform`, opaque to ARM.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ids::{Kind, Scope};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroup {
    pub name: String,
    pub location: String,
    #[serde(default)]
    pub tags: Map<String, Value>,
}

impl ResourceGroup {
    pub fn json(&self, subscription: &str) -> Value {
        json!({
            "id": format!("/subscriptions/{subscription}/resourceGroups/{}", self.name),
            "name": self.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": self.location,
            "tags": self.tags,
            "properties": {"provisioningState": "Succeeded"},
        })
    }
}

/// An App Service plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub name: String,
    pub group: String,
    pub location: String,
    /// `{name, tier, size, family, capacity}` as given (normalised).
    pub sku: Value,
    /// Linux plans are "reserved".
    pub reserved: bool,
    #[serde(default)]
    pub per_site_scaling: bool,
    #[serde(default)]
    pub tags: Map<String, Value>,
}

impl Plan {
    pub fn scope(&self, subscription: &str) -> Scope {
        Scope {
            subscription: subscription.to_owned(),
            group: self.group.clone(),
        }
    }

    pub fn id(&self, subscription: &str) -> String {
        self.scope(subscription)
            .resource_id(Kind::ServerFarms, &self.name)
    }

    pub fn kind(&self) -> &'static str {
        if self.reserved { "linux" } else { "app" }
    }

    pub fn json(&self, subscription: &str, sites: usize) -> Value {
        json!({
            "id": self.id(subscription),
            "name": self.name,
            "type": "Microsoft.Web/serverfarms",
            "kind": self.kind(),
            "location": self.location,
            "tags": self.tags,
            "sku": self.sku,
            "properties": {
                "serverFarmId": 0,
                "name": self.name,
                "status": "Ready",
                "reserved": self.reserved,
                "isXenon": false,
                "hyperV": false,
                "perSiteScaling": self.per_site_scaling,
                "elasticScaleEnabled": false,
                "maximumElasticWorkerCount": 1,
                "numberOfSites": sites,
                "maximumNumberOfWorkers": 1,
                "numberOfWorkers": 1,
                "currentNumberOfWorkers": 1,
                "geoRegion": self.location,
                "resourceGroup": self.group,
                "provisioningState": "Succeeded",
                "kind": self.kind(),
                "targetWorkerCount": 0,
                "targetWorkerSizeId": 0,
                "zoneRedundant": false,
            },
        })
    }
}

/// A web app (`Microsoft.Web/sites`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebApp {
    pub name: String,
    pub group: String,
    pub location: String,
    /// `app,linux` or `app` (Windows).
    pub kind: String,
    pub server_farm_id: String,
    #[serde(default)]
    pub stopped: bool,
    #[serde(default)]
    pub https_only: bool,
    #[serde(default)]
    pub client_cert_enabled: bool,
    #[serde(default)]
    pub tags: Map<String, Value>,
    /// `siteConfig` as ARM names it (`linuxFxVersion`, `appCommandLine`, `nodeVersion`, ...),
    /// without `appSettings`, which live in `app_settings`.
    #[serde(default)]
    pub site_config: Map<String, Value>,
    #[serde(default)]
    pub app_settings: BTreeMap<String, String>,
    /// `authsettingsV2` properties; `None`: never configured (authentication off).
    #[serde(default)]
    pub auth_v2: Option<Value>,
    /// The `config/logs` properties.
    #[serde(default)]
    pub logs: Option<Value>,
    /// The `config/metadata` properties (`CURRENT_STACK` on Windows apps).
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub publishing_password: String,
    #[serde(default = "yes")]
    pub basic_auth_scm: bool,
    #[serde(default = "yes")]
    pub basic_auth_ftp: bool,
    /// Where the platform serves the site and its SCM (Kudu) endpoint, `host:port`; filled in
    /// by the platform when it binds them.
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub scm_host: Option<String>,
    /// The loopback address the platform gave the app (`127.0.0.N`).
    #[serde(default)]
    pub address: Option<String>,
    /// How the platform runs the app; ARM never looks inside.
    #[serde(default)]
    pub platform: Value,
    pub created: String,
}

fn yes() -> bool {
    true
}

/// What the platform reports about a running app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteStatus {
    /// `Running` or `Stopped`.
    pub state: String,
    /// Extra facts for `az webapp show` (process id, restarts, ...), under `properties.easyauth`.
    pub detail: Option<Value>,
}

impl WebApp {
    pub fn scope(&self, subscription: &str) -> Scope {
        Scope {
            subscription: subscription.to_owned(),
            group: self.group.clone(),
        }
    }

    pub fn id(&self, subscription: &str) -> String {
        self.scope(subscription)
            .resource_id(Kind::Sites, &self.name)
    }

    pub fn is_linux(&self) -> bool {
        self.kind.to_ascii_lowercase().contains("linux")
    }

    pub fn publishing_user(&self) -> String {
        format!("${}", self.name)
    }

    /// The runtime the site asks for: `linuxFxVersion` on Linux; on Windows Node the
    /// `WEBSITE_NODE_DEFAULT_VERSION` app setting (what `az webapp create` sets), else the
    /// site config's version fields.
    pub fn runtime(&self) -> String {
        let config = |k: &str| {
            self.site_config
                .get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        if self.is_linux() {
            return config("linuxFxVersion").unwrap_or_default();
        }
        if let Some(v) = self.app_settings.get("WEBSITE_NODE_DEFAULT_VERSION") {
            return format!("NODE|{v}");
        }
        if let Some(v) = config("nodeVersion") {
            return format!("NODE|{v}");
        }
        if let Some(v) = config("pythonVersion") {
            return format!("PYTHON|{v}");
        }
        config("windowsFxVersion").unwrap_or_default()
    }

    fn host_states(&self) -> Value {
        let mut states = Vec::new();
        if let Some(h) = &self.host {
            states.push(json!({"name": h, "sslState": "Disabled", "hostType": "Standard"}));
        }
        if let Some(h) = &self.scm_host {
            states.push(json!({"name": h, "sslState": "Disabled", "hostType": "Repository"}));
        }
        Value::Array(states)
    }

    /// The site as `GET .../sites/{name}` answers.
    pub fn json(&self, subscription: &str, plan_sku: &str, status: &SiteStatus) -> Value {
        let host = self.host.clone().unwrap_or_default();
        let mut enabled: Vec<String> = self.host.iter().cloned().collect();
        enabled.extend(self.scm_host.iter().cloned());
        let mut properties = json!({
            "name": self.name,
            "state": status.state,
            "hostNames": self.host.iter().collect::<Vec<_>>(),
            "webSpace": format!("{}-{}webspace", self.group, self.location.replace(' ', "").to_ascii_lowercase()),
            "selfLink": "",
            "repositorySiteName": self.name,
            "owner": null,
            "usageState": "Normal",
            "enabled": true,
            "adminEnabled": true,
            "enabledHostNames": enabled,
            "siteProperties": {"metadata": null, "properties": [
                {"name": "LinuxFxVersion", "value": self.site_config.get("linuxFxVersion").cloned().unwrap_or(json!(""))},
                {"name": "WindowsFxVersion", "value": self.site_config.get("windowsFxVersion").cloned().unwrap_or(Value::Null)}
            ], "appSettings": null},
            "availabilityState": "Normal",
            "sslCertificates": null,
            "csrs": [],
            "cers": null,
            "siteMode": null,
            "hostNameSslStates": self.host_states(),
            "computeMode": null,
            "serverFarm": null,
            "serverFarmId": self.server_farm_id,
            "reserved": self.is_linux(),
            "isXenon": false,
            "hyperV": false,
            "lastModifiedTimeUtc": self.created,
            "storageRecoveryDefaultState": "Running",
            "contentAvailabilityState": "Normal",
            "runtimeAvailabilityState": "Normal",
            "dnsConfiguration": {},
            "vnetRouteAllEnabled": false,
            "siteConfig": self.site_config_json(false),
            "deploymentId": self.name,
            "sku": plan_sku,
            "scmSiteAlsoStopped": false,
            "clientAffinityEnabled": false,
            "clientCertEnabled": self.client_cert_enabled,
            "clientCertMode": "Required",
            "hostNamesDisabled": false,
            "customDomainVerificationId": "",
            "outboundIpAddresses": "127.0.0.1",
            "possibleOutboundIpAddresses": "127.0.0.1",
            "containerSize": 0,
            "dailyMemoryTimeQuota": 0,
            "resourceGroup": self.group,
            "defaultHostName": host,
            "httpsOnly": self.https_only,
            "redundancyMode": "None",
            "publicNetworkAccess": "Enabled",
            "keyVaultReferenceIdentity": "SystemAssigned",
            "kind": self.kind,
        });
        if let Some(detail) = &status.detail {
            properties["easyauth"] = detail.clone();
        }
        json!({
            "id": self.id(subscription),
            "name": self.name,
            "type": "Microsoft.Web/sites",
            "kind": self.kind,
            "location": self.location,
            "tags": self.tags,
            "properties": properties,
        })
    }

    /// `siteConfig` with ARM's defaults filled in; `with_settings` adds `appSettings`.
    pub fn site_config_json(&self, with_settings: bool) -> Value {
        let mut c = json!({
            "numberOfWorkers": 1,
            "defaultDocuments": ["Default.htm", "Default.html", "index.html", "hostingstart.html"],
            "netFrameworkVersion": "v4.0",
            "phpVersion": "",
            "pythonVersion": "",
            "nodeVersion": "",
            "powerShellVersion": "",
            "linuxFxVersion": "",
            "windowsFxVersion": null,
            "requestTracingEnabled": false,
            "remoteDebuggingEnabled": false,
            "httpLoggingEnabled": false,
            "detailedErrorLoggingEnabled": false,
            "publishingUsername": self.publishing_user(),
            "scmType": "None",
            "use32BitWorkerProcess": true,
            "webSocketsEnabled": false,
            "alwaysOn": false,
            "appCommandLine": "",
            "managedPipelineMode": "Integrated",
            "loadBalancing": "LeastRequests",
            "localMySqlEnabled": false,
            "http20Enabled": false,
            "minTlsVersion": "1.2",
            "ftpsState": "FtpsOnly",
            "functionAppScaleLimit": 0,
            "minimumElasticInstanceCount": 0,
            "azureStorageAccounts": {},
        });
        if let Some(map) = c.as_object_mut() {
            for (k, v) in &self.site_config {
                map.insert(k.clone(), v.clone());
            }
            if with_settings {
                map.insert(
                    "appSettings".into(),
                    Value::Array(
                        self.app_settings
                            .iter()
                            .map(|(k, v)| json!({"name": k, "value": v}))
                            .collect(),
                    ),
                );
            }
        }
        c
    }

    /// A `Microsoft.Web/sites/config` resource.
    pub fn config_resource(&self, subscription: &str, name: &str, properties: Value) -> Value {
        let mut r = json!({
            "id": format!("{}/config/{name}", self.id(subscription)),
            "name": name,
            "type": "Microsoft.Web/sites/config",
            "location": self.location,
            "tags": {},
        });
        r["properties"] = properties;
        r
    }
}

/// The plan's sku name for a site (`properties.sku`), e.g. `Free`.
pub fn sku_tier(plan: Option<&Plan>) -> String {
    plan.and_then(|p| p.sku.get("tier").and_then(Value::as_str))
        .unwrap_or("Free")
        .to_owned()
}

/// The current time as ARM writes it.
pub fn now_iso() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
