//! A client of a running platform's Resource Manager, as the Azure CLI is one: it signs in with
//! the platform's service principal (client credentials from `platform.json`) and calls the
//! same endpoints `az` calls. The `easyauth webapp` commands and the tests use it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::state::{PlatformState, StateError};

/// How long one request may take: changing app settings restarts the app and waits for it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to wait for the TCP connection (loopback: either it answers at once or nothing runs).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const API_VERSION: &str = "2024-11-01";

/// Why a request failed; `Display` is what the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `platform.json` is missing or unreadable.
    #[error(transparent)]
    State(#[from] StateError),
    /// Nothing accepts connections at the platform's URL.
    #[error("{}", not_answering(url, data_dir.as_deref()))]
    NotAnswering {
        url: String,
        data_dir: Option<PathBuf>,
    },
    /// The identity provider refused the platform's own credentials.
    #[error("the identity provider refused the platform's credentials: {0}")]
    SignIn(String),
    /// The Resource Manager answered with an error (`error.code`, `error.message`).
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Any other transport failure, or an answer that is not what ARM sends.
    #[error("{0}")]
    Http(String),
}

fn not_answering(url: &str, data_dir: Option<&Path>) -> String {
    match data_dir {
        Some(dir) => format!(
            "no easyauth up is answering at {url} (is it still running? platform.json in {} may be stale)",
            dir.display()
        ),
        None => format!("no easyauth up is answering at {url} (is it still running?)"),
    }
}

/// A signed-in client of one platform's Resource Manager.
#[derive(Debug, Clone)]
pub struct ArmClient {
    http: reqwest::Client,
    state: PlatformState,
    token: String,
    data_dir: Option<PathBuf>,
}

impl ArmClient {
    /// Finds the running platform through `platform.json` in `data_dir` and signs in.
    pub async fn from_data_dir(data_dir: &Path) -> Result<ArmClient, ClientError> {
        let state = PlatformState::read(data_dir)?;
        let mut client = ArmClient::new(state).await?;
        client.data_dir = Some(data_dir.to_owned());
        Ok(client)
    }

    /// Signs in to the platform described by `state`.
    pub async fn new(state: PlatformState) -> Result<ArmClient, ClientError> {
        let pem = std::fs::read(&state.ca_file).map_err(|e| {
            ClientError::Http(format!(
                "cannot read the local CA {}: {e}",
                state.ca_file.display()
            ))
        })?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| ClientError::Http(format!("the local CA is not a certificate: {e}")))?;
        let http = reqwest::Client::builder()
            .add_root_certificate(cert)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Http(format!("cannot build the HTTP client: {e}")))?;
        let token = client_credentials(
            &http,
            &state,
            "https://management.core.windows.net//.default",
        )
        .await?;
        Ok(ArmClient {
            http,
            state,
            token,
            data_dir: None,
        })
    }

    pub fn state(&self) -> &PlatformState {
        &self.state
    }

    /// One ARM request; `path` is below the subscription unless it starts with `/`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/subscriptions/{}/{path}", self.state.subscription_id)
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = format!("{}{path}{sep}api-version={API_VERSION}", self.state.arm_url);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport(&e, &self.state.arm_url, self.data_dir.as_deref()))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| {
                ClientError::Http(format!(
                    "HTTP {status}: {}",
                    text.chars().take(300).collect::<String>()
                ))
            })?
        };
        if status.is_success() {
            return Ok(value);
        }
        let error = value.get("error").cloned().unwrap_or(Value::Null);
        Err(ClientError::Api {
            status: status.as_u16(),
            code: error
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| format!("HTTP {status}"), str::to_owned),
        })
    }

    /// Every web app of the subscription, as `az webapp list` prints them.
    pub async fn sites(&self) -> Result<Vec<Value>, ClientError> {
        let list = self
            .call(Method::GET, "providers/Microsoft.Web/sites", None)
            .await?;
        Ok(list
            .get("value")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// The resource path of the web app `name` (found in whatever resource group it is).
    pub async fn site_path(&self, name: &str) -> Result<String, ClientError> {
        let sites = self.sites().await?;
        let site = sites
            .iter()
            .find(|s| {
                s.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .ok_or_else(|| {
                let known: Vec<&str> = sites
                    .iter()
                    .filter_map(|s| s.get("name").and_then(Value::as_str))
                    .collect();
                ClientError::Api {
                    status: 404,
                    code: "ResourceNotFound".into(),
                    message: format!(
                        "no web app named {name:?} (web apps: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                }
            })?;
        site.get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Http("a web app without an id".into()))
    }

    pub async fn show(&self, name: &str) -> Result<Value, ClientError> {
        let path = self.site_path(name).await?;
        self.call(Method::GET, &path, None).await
    }

    pub async fn restart(&self, name: &str) -> Result<(), ClientError> {
        let path = self.site_path(name).await?;
        self.call(Method::POST, &format!("{path}/restart"), None)
            .await
            .map(|_| ())
    }

    pub async fn auth_show(&self, name: &str) -> Result<Value, ClientError> {
        let path = self.site_path(name).await?;
        self.call(
            Method::GET,
            &format!("{path}/config/authsettingsV2/list"),
            None,
        )
        .await
    }

    /// Replaces the auth settings with `body` (the resource or its `properties`).
    pub async fn auth_set(&self, name: &str, body: &Value) -> Result<Value, ClientError> {
        let path = self.site_path(name).await?;
        let properties = body.get("properties").unwrap_or(body);
        self.call(
            Method::PUT,
            &format!("{path}/config/authsettingsV2"),
            Some(&json!({"properties": properties})),
        )
        .await
    }

    pub async fn appsettings_list(
        &self,
        name: &str,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        let path = self.site_path(name).await?;
        let resource = self
            .call(
                Method::POST,
                &format!("{path}/config/appsettings/list"),
                None,
            )
            .await?;
        Ok(settings_of(&resource))
    }

    /// Applies `changes` (`None` removes a setting) as `az webapp config appsettings set`
    /// does: read, merge, write the whole set. Returns the settings afterwards.
    pub async fn appsettings_set(
        &self,
        name: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        let path = self.site_path(name).await?;
        let resource = self
            .call(
                Method::POST,
                &format!("{path}/config/appsettings/list"),
                None,
            )
            .await?;
        let mut settings = settings_of(&resource);
        for (k, v) in changes {
            match v {
                Some(v) => settings.insert(k.clone(), v.clone()),
                None => settings.remove(k),
            };
        }
        let written = self
            .call(
                Method::PUT,
                &format!("{path}/config/appsettings"),
                Some(&json!({"properties": settings})),
            )
            .await?;
        Ok(settings_of(&written))
    }
}

impl ArmClient {
    /// "Add identity provider → Microsoft → Create new app registration" for `name`, as the
    /// portal does it (Microsoft Graph as the platform's service principal, then ARM): the
    /// registration, its secret in `MICROSOFT_PROVIDER_AUTHENTICATION_SECRET`, and auth settings
    /// that require sign-in with `action` for unauthenticated requests. Returns the new
    /// authsettingsV2 resource.
    pub async fn add_identity_provider(
        &self,
        name: &str,
        registration_name: Option<&str>,
        secret_days: u32,
        action: &str,
    ) -> Result<Value, ClientError> {
        let site = self.show(name).await?;
        let app_url = site["properties"]["easyauth"]["url"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| {
                site["properties"]["defaultHostName"]
                    .as_str()
                    .map(|h| format!("http://{h}"))
            })
            .unwrap_or_default();
        let graph_token = client_credentials(
            &self.http,
            &self.state,
            "https://graph.microsoft.com/.default",
        )
        .await?;
        let graph = easyauth_portal::registration::GraphClient {
            http: &self.http,
            base: &self.state.idp_url,
            token: &graph_token,
        };
        let created = easyauth_portal::registration::create(
            &graph,
            &easyauth_portal::registration::NewRegistration {
                display_name: registration_name.unwrap_or(name).to_owned(),
                app_url,
                secret_days,
            },
        )
        .await
        .map_err(|e| ClientError::Api {
            status: e.status,
            code: e.code,
            message: e.message,
        })?;
        let secret_setting = easyauth_portal::registration::SECRET_SETTING;
        self.appsettings_set(
            name,
            &BTreeMap::from([(secret_setting.to_owned(), Some(created.secret.clone()))]),
        )
        .await?;
        let current = self.auth_show(name).await?;
        let mut properties = easyauth_portal::registration::with_microsoft_provider(
            current.get("properties").cloned().unwrap_or(Value::Null),
            &created.app_id,
            &self.state.issuer,
            Some(secret_setting),
            &[format!("api://{}", created.app_id)],
        );
        properties["globalValidation"]["requireAuthentication"] = json!(true);
        properties["globalValidation"]["unauthenticatedClientAction"] = json!(action);
        if action == "RedirectToLoginPage" {
            properties["globalValidation"]["redirectToProvider"] = json!("azureactivedirectory");
        }
        properties["login"]["tokenStore"]["enabled"] = json!(true);
        self.auth_set(name, &json!({ "properties": properties }))
            .await
    }
}

/// A client-credentials token of the platform's service principal for `scope`.
async fn client_credentials(
    http: &reqwest::Client,
    state: &PlatformState,
    scope: &str,
) -> Result<String, ClientError> {
    let token_url = format!("{}/{}/oauth2/v2.0/token", state.idp_url, state.tenant_id);
    let response = http
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", state.client_id.as_str()),
            ("client_secret", state.client_secret.as_str()),
            ("scope", scope),
        ])
        .send()
        .await
        .map_err(|e| transport(&e, &state.idp_url, None))?;
    let body: Value = response
        .json()
        .await
        .map_err(|e| ClientError::SignIn(e.to_string()))?;
    body.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ClientError::SignIn(
                body.get("error_description")
                    .and_then(Value::as_str)
                    .unwrap_or("no access token in the answer")
                    .to_owned(),
            )
        })
}

fn settings_of(resource: &Value) -> BTreeMap<String, String> {
    resource
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn transport(e: &reqwest::Error, url: &str, data_dir: Option<&Path>) -> ClientError {
    if e.is_connect() {
        ClientError::NotAnswering {
            url: url.to_owned(),
            data_dir: data_dir.map(Path::to_path_buf),
        }
    } else {
        ClientError::Http(format!("{url}: {e}"))
    }
}
