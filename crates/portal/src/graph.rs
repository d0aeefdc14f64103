//! Calls to Microsoft Graph (the local identity provider's `/v1.0`) with the signed-in person's
//! Graph token; Graph's OData error comes back as [`GraphCallError`], shown as "(Code) message".

use reqwest::Method;
use serde_json::Value;

/// A refused or failed Graph call; `Display` is what the page shows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("({code}) {message}")]
pub struct GraphCallError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

pub(crate) async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, GraphCallError> {
    let url = format!("{base}/v1.0/{path}");
    let mut request = http.request(method, &url).bearer_auth(token);
    if let Some(b) = body {
        request = request.json(b);
    }
    let transport = |e: reqwest::Error| GraphCallError {
        status: 502,
        code: "ServiceUnavailable".into(),
        message: format!("Microsoft Graph did not answer: {e}"),
    };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let text = response.text().await.map_err(transport)?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    let s = |k: &str| value["error"][k].as_str().unwrap_or("").to_owned();
    Err(GraphCallError {
        status: status.as_u16(),
        code: s("code"),
        message: s("message"),
    })
}
