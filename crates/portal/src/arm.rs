//! Calls to the Resource Manager with the signed-in person's token; ARM's error comes back as
//! [`ArmCallError`], which pages show as the portal does ("(Code) message").

use reqwest::Method;
use serde_json::Value;

use crate::Portal;

const API_VERSION: &str = "2024-11-01";

/// A refused or failed call; `Display` is what the page shows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("({code}) {message}")]
pub struct ArmCallError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ArmCallError {
    fn transport(e: &reqwest::Error) -> ArmCallError {
        ArmCallError {
            status: 502,
            code: "ServiceUnavailable".into(),
            message: format!("the Resource Manager did not answer: {e}"),
        }
    }
}

impl Portal {
    /// One ARM call; `path` is below the subscription.
    pub(crate) async fn arm(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ArmCallError> {
        let url = format!(
            "{}/subscriptions/{}/{path}{}api-version={API_VERSION}",
            self.config.arm_url,
            self.config.subscription_id,
            if path.contains('?') { '&' } else { '?' }
        );
        let mut request = self.http.request(method, &url).bearer_auth(token);
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ArmCallError::transport(&e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ArmCallError::transport(&e))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(value);
        }
        let s = |k: &str| value["error"][k].as_str().unwrap_or("").to_owned();
        Err(ArmCallError {
            status: status.as_u16(),
            code: s("code"),
            message: s("message"),
        })
    }
}

/// `resourceGroups/<g>/providers/Microsoft.Web/sites/<s>`, with both names URL-encoded.
pub(crate) fn site_path(group: &str, site: &str) -> String {
    format!(
        "resourceGroups/{}/providers/Microsoft.Web/sites/{}",
        crate::html::enc(group),
        crate::html::enc(site)
    )
}
