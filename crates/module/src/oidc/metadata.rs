//! OpenID Provider metadata (the `/.well-known/openid-configuration` document).

use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use super::http::{HttpError, OidcHttp, is_loopback};

/// The discovery document fields the module uses; everything else is kept in `other`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    /// Optional in OpenID Connect Discovery for implicit-only providers.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    pub jwks_uri: String,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    #[serde(default)]
    pub response_modes_supported: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("cannot fetch the OpenID configuration: {0}")]
    Fetch(#[from] HttpError),
    #[error("the OpenID configuration at {url} is invalid: {reason}")]
    Invalid { url: String, reason: String },
}

impl ProviderMetadata {
    /// Fetches and validates the document at `url`.
    pub async fn fetch(http: &OidcHttp, url: &str) -> Result<ProviderMetadata, MetadataError> {
        let metadata: ProviderMetadata = http.get_json(url).await?;
        metadata
            .validate()
            .map_err(|reason| MetadataError::Invalid {
                url: url.to_owned(),
                reason,
            })?;
        Ok(metadata)
    }

    /// Checks the fields the module relies on. The document's `issuer` is not compared with the
    /// URL it came from: Entra's `https://sts.windows.net/<tid>/v2.0` document names
    /// `https://login.microsoftonline.com/<tid>/v2.0`, and App Service accepts that.
    pub fn validate(&self) -> Result<(), String> {
        if self.issuer.trim().is_empty() {
            return Err("\"issuer\" is empty".into());
        }
        Url::parse(&self.issuer).map_err(|e| format!("\"issuer\" is not a URL: {e}"))?;
        check_endpoint("authorization_endpoint", &self.authorization_endpoint)?;
        check_endpoint("jwks_uri", &self.jwks_uri)?;
        if let Some(token) = &self.token_endpoint {
            check_endpoint("token_endpoint", token)?;
        }
        if let Some(end) = &self.end_session_endpoint {
            check_endpoint("end_session_endpoint", end)?;
        }
        if let Some(info) = &self.userinfo_endpoint {
            check_endpoint("userinfo_endpoint", info)?;
        }
        Ok(())
    }
}

/// `issuer` + `/.well-known/openid-configuration` (a trailing slash on the issuer is not doubled).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Fetches the discovery document of `issuer` (an `openIdIssuer` setting).
pub async fn discover_from_issuer(
    http: &OidcHttp,
    issuer: &str,
) -> Result<ProviderMetadata, MetadataError> {
    ProviderMetadata::fetch(http, &discovery_url(issuer)).await
}

/// Endpoints must be https: tokens and codes travel to them. Plain http is allowed only on
/// loopback, where it cannot leave the machine (local development).
fn check_endpoint(field: &str, value: &str) -> Result<(), String> {
    let url = Url::parse(value).map_err(|e| format!("\"{field}\" is not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        other => Err(format!(
            "\"{field}\" must use https (it uses {other}:) unless its host is loopback"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(jwks: &str) -> ProviderMetadata {
        serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.example/t/v2.0",
            "authorization_endpoint": "https://idp.example/t/oauth2/v2.0/authorize",
            "token_endpoint": "https://idp.example/t/oauth2/v2.0/token",
            "jwks_uri": jwks,
            "tenant_region_scope": null
        }))
        .expect("document")
    }

    #[test]
    fn https_or_loopback_only() {
        assert!(doc("https://idp.example/keys").validate().is_ok());
        assert!(doc("http://127.0.0.1:9/keys").validate().is_ok());
        assert!(doc("http://localhost/keys").validate().is_ok());
        let err = doc("http://idp.example/keys").validate().expect_err("http");
        assert!(err.contains("jwks_uri"), "{err}");
        assert!(doc("ftp://idp.example/keys").validate().is_err());
    }

    #[test]
    fn keeps_unknown_fields_and_rejects_missing_ones() {
        assert!(doc("https://x/k").other.contains_key("tenant_region_scope"));
        let missing: Result<ProviderMetadata, _> =
            serde_json::from_value(serde_json::json!({"issuer": "https://x"}));
        assert!(missing.is_err());
        let mut empty = doc("https://x/k");
        empty.issuer = " ".into();
        assert!(empty.validate().is_err());
    }

    #[test]
    fn discovery_url_appends_well_known() {
        assert_eq!(
            discovery_url("https://sts.windows.net/t/"),
            "https://sts.windows.net/t/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://login.microsoftonline.com/t/v2.0"),
            "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration"
        );
    }
}
