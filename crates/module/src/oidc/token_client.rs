//! A client of a provider's token endpoint: the authorization-code exchange of the login
//! callback, the refresh of `/.auth/refresh`, and client credentials. Clients authenticate with
//! `client_secret_post` (what App Service sends to Entra).

use std::fmt;

use serde_json::{Map, Value};

use super::http::{HttpError, OidcHttp};

/// A client id and, for confidential clients, its secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Option<String>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// A successful token response (RFC 6749 section 5.1 plus OpenID Connect's `id_token`). `Debug` shows
/// which tokens are present, not their values.
#[derive(Clone, PartialEq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    /// Seconds; Entra sends a number, some providers a numeric string.
    pub expires_in: Option<u64>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub scope: Option<String>,
    /// Every other member (`ext_expires_in`, `client_info`, ...).
    pub extra: Map<String, Value>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |t: &Option<String>| t.as_ref().map(|_| "[redacted]");
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &present(&self.refresh_token))
            .field("id_token", &present(&self.id_token))
            .field("scope", &self.scope)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The provider refused (RFC 6749 section 5.2), e.g. `invalid_grant` for a used code.
    #[error("token endpoint {endpoint} answered HTTP {status} {error}{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        endpoint: String,
        status: u16,
        error: String,
        description: Option<String>,
        /// Entra's numeric `error_codes` (AADSTS numbers), when present.
        error_codes: Vec<u64>,
    },
    #[error("token endpoint {endpoint} answered HTTP {status} with an unusable body: {reason}")]
    InvalidResponse {
        endpoint: String,
        status: u16,
        reason: String,
    },
}

/// The token endpoint of one client registration.
#[derive(Debug, Clone)]
pub struct TokenClient {
    http: OidcHttp,
    token_endpoint: String,
    credentials: ClientCredentials,
}

impl TokenClient {
    pub fn new(
        http: OidcHttp,
        token_endpoint: impl Into<String>,
        credentials: ClientCredentials,
    ) -> TokenClient {
        TokenClient {
            http,
            token_endpoint: token_endpoint.into(),
            credentials,
        }
    }

    pub fn token_endpoint(&self) -> &str {
        &self.token_endpoint
    }

    /// Redeems an authorization code (`grant_type=authorization_code`).
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier));
        }
        self.request(form).await
    }

    /// Redeems a refresh token; `scope` narrows or repeats the original scopes.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.request(form).await
    }

    /// An app-only token (`grant_type=client_credentials`), e.g. `api://<app>/.default`.
    pub async fn client_credentials(&self, scope: &str) -> Result<TokenResponse, TokenError> {
        self.request(vec![("grant_type", "client_credentials"), ("scope", scope)])
            .await
    }

    async fn request<'a>(
        &'a self,
        mut form: Vec<(&'a str, &'a str)>,
    ) -> Result<TokenResponse, TokenError> {
        form.push(("client_id", &self.credentials.client_id));
        if let Some(secret) = &self.credentials.client_secret {
            form.push(("client_secret", secret));
        }
        let response = self.http.post_form(&self.token_endpoint, &form).await?;
        parse_response(
            &self.token_endpoint,
            response.status.as_u16(),
            &response.body,
        )
    }
}

fn parse_response(endpoint: &str, status: u16, body: &[u8]) -> Result<TokenResponse, TokenError> {
    let invalid = |reason: String| TokenError::InvalidResponse {
        endpoint: endpoint.to_owned(),
        status,
        reason,
    };
    let mut json: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(invalid("not a JSON object".into())),
        Err(e) => return Err(invalid(format!("not JSON: {e}"))),
    };
    let mut take_string = |name: &str| match json.remove(name) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    if let Some(error) = take_string("error") {
        return Err(TokenError::OAuth {
            endpoint: endpoint.to_owned(),
            status,
            error,
            description: take_string("error_description"),
            error_codes: json
                .get("error_codes")
                .and_then(Value::as_array)
                .map(|codes| codes.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default(),
        });
    }
    if !(200..300).contains(&status) {
        return Err(invalid("an error status without an OAuth \"error\"".into()));
    }
    let access_token =
        take_string("access_token").ok_or_else(|| invalid("no \"access_token\"".into()))?;
    let token_type = take_string("token_type").unwrap_or_else(|| "Bearer".into());
    let refresh_token = take_string("refresh_token");
    let id_token = take_string("id_token");
    let scope = take_string("scope");
    let expires_in = match json.remove("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Ok(TokenResponse {
        access_token,
        token_type,
        expires_in,
        refresh_token,
        id_token,
        scope,
        extra: json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_success_and_errors() {
        let ok = parse_response(
            "https://idp/token",
            200,
            br#"{"token_type":"Bearer","expires_in":"3599","access_token":"at","refresh_token":"rt","ext_expires_in":3599}"#,
        )
        .expect("ok");
        assert_eq!(ok.access_token, "at");
        assert_eq!(ok.expires_in, Some(3599));
        assert_eq!(ok.refresh_token.as_deref(), Some("rt"));
        assert!(ok.extra.contains_key("ext_expires_in"));
        let debug = format!("{ok:?}");
        assert!(
            !debug.contains("\"at\"") && !debug.contains("\"rt\""),
            "{debug}"
        );

        let err = parse_response(
            "https://idp/token",
            400,
            br#"{"error":"invalid_grant","error_description":"AADSTS70008: expired","error_codes":[70008]}"#,
        )
        .expect_err("oauth error");
        assert_eq!(
            err.to_string(),
            "token endpoint https://idp/token answered HTTP 400 invalid_grant: AADSTS70008: expired"
        );
        assert!(
            matches!(err, TokenError::OAuth { ref error_codes, .. } if error_codes == &[70008])
        );

        assert!(matches!(
            parse_response("https://idp/token", 502, b"<html>"),
            Err(TokenError::InvalidResponse { status: 502, .. })
        ));
        assert!(matches!(
            parse_response("https://idp/token", 200, b"{}"),
            Err(TokenError::InvalidResponse { .. })
        ));
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = ClientCredentials {
            client_id: "id".into(),
            client_secret: Some("s3cret".into()),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
