//! The admin API's client, used by the `easyauth webapp` commands.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{AdminError, AdminToken};
use crate::control::AuthSetOutcome;
use crate::state::{PlatformState, StateError};

/// How long one admin request may take: `appsettings_set` restarts the app and waits for it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for the TCP connection (loopback: either it answers at once or nothing runs).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why an admin request failed; `Display` is what the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `platform.json` is missing or unreadable.
    #[error(transparent)]
    State(#[from] StateError),
    /// `admin-token` is missing or unreadable.
    #[error(transparent)]
    Token(#[from] AdminError),
    /// The admin URL is unusable (not `http://<loopback>:<port>`).
    #[error("invalid admin URL {url:?}: {message}")]
    InvalidUrl { url: String, message: String },
    /// An app name that cannot be put in a URL path segment.
    #[error("invalid app name {0:?}")]
    InvalidAppName(String),
    /// Nothing accepts connections at the admin URL.
    #[error("{}", not_answering(url, data_dir.as_deref()))]
    NotAnswering {
        url: String,
        data_dir: Option<PathBuf>,
    },
    /// The platform took longer than [`REQUEST_TIMEOUT`].
    #[error("easyauth up at {url} did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout { url: String },
    /// The admin API answered with an error: `message` is its `error.message`.
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Any other transport failure, or an answer that is not what the API sends.
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

/// A client for a running platform's admin API.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: url::Url,
    token: AdminToken,
    http: reqwest::Client,
    /// Where the URL came from, for the "not answering" message.
    data_dir: Option<PathBuf>,
}

impl AdminClient {
    /// Finds the running platform via `PlatformState::read(data_dir)` and
    /// `AdminToken::read(data_dir)`.
    pub fn from_data_dir(data_dir: &Path) -> Result<AdminClient, ClientError> {
        let state = PlatformState::read(data_dir)?;
        let token = AdminToken::read(data_dir)?;
        let mut client = AdminClient::new(&state.admin_url, token)?;
        client.data_dir = Some(data_dir.to_owned());
        Ok(client)
    }

    /// A client for the admin API at `admin_url` (`http://127.0.0.1:<port>`). Only loopback
    /// `http` URLs are accepted, so the token never leaves the machine; proxies are not used.
    pub fn new(admin_url: &str, token: AdminToken) -> Result<AdminClient, ClientError> {
        let invalid = |message: &str| ClientError::InvalidUrl {
            url: admin_url.to_owned(),
            message: message.to_owned(),
        };
        let mut base = url::Url::parse(admin_url).map_err(|e| invalid(&e.to_string()))?;
        if base.scheme() != "http" {
            return Err(invalid("expected an http:// URL"));
        }
        let loopback = match base.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        };
        if !loopback {
            return Err(invalid(
                "the admin API is only reached on a loopback address",
            ));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("expected no query or fragment"));
        }
        // Treat the path as a directory the routes are appended to.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| ClientError::Http(format!("cannot build the HTTP client: {e}")))?;
        Ok(AdminClient {
            base,
            token,
            http,
            data_dir: None,
        })
    }

    /// The admin API's base URL (without the trailing slash).
    pub fn url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The apps' names, in site order.
    pub async fn apps(&self) -> Result<Vec<String>, ClientError> {
        let url = self.url_for(&["apps"])?;
        let body = self.send(Method::GET, url, None).await?;
        field(body, "value", "/apps")
    }

    /// The app as `az webapp show` describes it.
    pub async fn show(&self, app: &str) -> Result<Value, ClientError> {
        check_app_name(app)?;
        let url = self.url_for(&["apps", app])?;
        self.send(Method::GET, url, None).await
    }

    /// Restarts the app's process (`az webapp restart`).
    pub async fn restart(&self, app: &str) -> Result<(), ClientError> {
        check_app_name(app)?;
        let url = self.url_for(&["apps", app, "restart"])?;
        self.send(Method::POST, url, Some(json!({})))
            .await
            .map(drop)
    }

    /// The app's `authsettingsV2` resource.
    pub async fn auth_show(&self, app: &str) -> Result<Value, ClientError> {
        let url = self.app_url(app, "authsettingsV2")?;
        self.send(Method::GET, url, None).await
    }

    /// Replaces the app's auth settings (`body`: the resource or its `properties`).
    pub async fn auth_set(&self, app: &str, body: Value) -> Result<AuthSetOutcome, ClientError> {
        let url = self.app_url(app, "authsettingsV2")?;
        let answer = self.send(Method::PUT, url, Some(body)).await?;
        serde_json::from_value(answer)
            .map_err(|e| ClientError::Http(format!("unexpected answer from the admin API: {e}")))
    }

    /// The app's app settings.
    pub async fn appsettings_list(
        &self,
        app: &str,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        let url = self.app_url(app, "appsettings")?;
        let body = self.send(Method::GET, url, None).await?;
        field(body, "properties", "appsettings")
    }

    /// Applies `changes` (`None` deletes) and returns the app settings afterwards. The platform
    /// restarts the app, so this can take a while (up to [`REQUEST_TIMEOUT`]).
    pub async fn appsettings_set(
        &self,
        app: &str,
        changes: BTreeMap<String, Option<String>>,
    ) -> Result<BTreeMap<String, String>, ClientError> {
        let url = self.app_url(app, "appsettings")?;
        let body = self
            .send(Method::PATCH, url, Some(json!({"properties": changes})))
            .await?;
        field(body, "properties", "appsettings")
    }

    fn app_url(&self, app: &str, config: &str) -> Result<url::Url, ClientError> {
        check_app_name(app)?;
        self.url_for(&["apps", app, "config", config])
    }

    /// The base URL plus `segments`, each percent-encoded as one path segment.
    fn url_for(&self, segments: &[&str]) -> Result<url::Url, ClientError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| ClientError::InvalidUrl {
                url: self.base.to_string(),
                message: "cannot be a base URL".into(),
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn send(
        &self,
        method: Method,
        url: url::Url,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(self.token.expose())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return parsed.ok_or_else(|| {
                ClientError::Http(format!(
                    "{url}: HTTP {status} with a body that is not JSON: {}",
                    snippet(&bytes)
                ))
            });
        }
        Err(api_error(status, parsed.as_ref(), &bytes, &url))
    }

    fn transport_error(&self, e: &reqwest::Error) -> ClientError {
        let url = self.url().to_owned();
        if e.is_connect() {
            ClientError::NotAnswering {
                url,
                data_dir: self.data_dir.clone(),
            }
        } else if e.is_timeout() {
            ClientError::Timeout { url }
        } else {
            // Without the URL's query (there is none) and never the headers: no token in here.
            ClientError::Http(format!("request to {url} failed: {}", error_chain(e)))
        }
    }
}

fn api_error(
    status: StatusCode,
    parsed: Option<&Value>,
    bytes: &[u8],
    url: &url::Url,
) -> ClientError {
    let error = parsed.and_then(|v| v.get("error"));
    let message = error.and_then(|e| e.get("message")).and_then(Value::as_str);
    match message {
        Some(message) => ClientError::Api {
            status: status.as_u16(),
            code: error
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            message: message.to_owned(),
        },
        None => ClientError::Api {
            status: status.as_u16(),
            code: String::new(),
            message: format!("{url}: HTTP {status}: {}", snippet(bytes)),
        },
    }
}

fn field<T: serde::de::DeserializeOwned>(
    mut body: Value,
    name: &str,
    what: &str,
) -> Result<T, ClientError> {
    let value = body.get_mut(name).map(Value::take).ok_or_else(|| {
        ClientError::Http(format!("unexpected answer for {what}: no {name:?} member"))
    })?;
    serde_json::from_value(value)
        .map_err(|e| ClientError::Http(format!("unexpected answer for {what}: {name}: {e}")))
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `url` drops "." and ".." segments instead of encoding them, so they are refused up front.
fn check_app_name(app: &str) -> Result<(), ClientError> {
    if app.is_empty() || app == "." || app == ".." {
        return Err(ClientError::InvalidAppName(app.to_owned()));
    }
    Ok(())
}
