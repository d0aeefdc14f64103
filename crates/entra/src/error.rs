//! Entra's error model: every failure the identity provider can report, with its AADSTS code,
//! OAuth `error` string and HTTP status. `Display` is the description the client sees (it starts
//! with `AADSTSnnnnn:` as Entra's does); the JSON body adds trace and correlation ids.
//!
//! Codes are Entra's. Where Entra's exact code is not documented, the choice is noted on the
//! variant.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::util::{entra_timestamp, new_guid};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntraError {
    #[error("AADSTS900144: The request body must contain the following parameter: '{0}'.")]
    MissingParameter(&'static str),
    #[error("AADSTS9002313: Invalid request. Request is malformed or invalid. {0}")]
    Malformed(String),
    /// Entra's code for an over-long query string; used for bodies too (the body limit's own
    /// code is UNCONFIRMED). Answered with 413.
    #[error(
        "AADSTS90015: Requested query string or body is too long (the limit is {limit} bytes)."
    )]
    RequestTooLarge { limit: usize },
    /// UNCONFIRMED code (Entra's limit is not documented).
    #[error("AADSTS90015: The request has too many parameters (the limit is {limit}).")]
    TooManyParameters { limit: usize },
    /// Smart lockout: too many wrong passwords for the account in a short time.
    #[error(
        "AADSTS50053: Your account is locked because you've tried to sign in too many times with an incorrect user ID or password. Try again in {seconds} seconds."
    )]
    AccountLocked { seconds: i64 },
    /// Less common request errors that share `invalid_request`; the code is chosen per site.
    #[error("AADSTS{code}: {message}")]
    InvalidRequest { code: u32, message: String },
    #[error("AADSTS901002: The 'resource' request parameter is not supported.")]
    ResourceParameterUnsupported,
    #[error("AADSTS900561: The endpoint only accepts POST requests. Received a {0} request.")]
    MethodNotAllowed(String),
    #[error(
        "AADSTS90002: Tenant '{0}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
    )]
    TenantNotFound(String),
    #[error("AADSTS70003: The app requested an unsupported grant type '{0}'.")]
    UnsupportedGrantType(String),

    #[error(
        "AADSTS700016: Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
    )]
    UnknownClient { client_id: String, tenant: String },
    #[error(
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{0}'."
    )]
    InvalidClientSecret(String),
    #[error("AADSTS7000222: The provided client secret keys for app '{0}' are expired.")]
    ExpiredClientSecret(String),
    #[error(
        "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
    )]
    MissingClientCredential,
    #[error(
        "AADSTS700025: Client is public so neither 'client_assertion' nor 'client_secret' should be presented."
    )]
    PublicClientWithCredential,
    #[error("AADSTS700027: Client assertion failed signature validation. {0}")]
    InvalidClientAssertion(String),
    /// UNCONFIRMED text.
    #[error("AADSTS700024: Client assertion is not within its valid time range.")]
    ExpiredClientAssertion,
    /// Entra answers `invalid_client` at redemption.
    #[error(
        "AADSTS50011: The redirect URI '{uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'."
    )]
    RedirectUriMismatch { uri: String, client_id: String },

    #[error(
        "AADSTS70000: The provided value for the '{parameter}' parameter is not valid. {reason}"
    )]
    InvalidGrant {
        parameter: &'static str,
        reason: String,
    },
    #[error(
        "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."
    )]
    CodeRedeemed,
    #[error(
        "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource."
    )]
    GrantExpired,
    #[error(
        "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed. {0}"
    )]
    GrantRevoked(String),
    #[error(
        "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request."
    )]
    PkceMismatch,
    /// RFC 9700's rule; Entra's own answer to this is UNCONFIRMED, so the PKCE code is used.
    #[error(
        "AADSTS501481: A code_verifier was sent, but the authorization request had no code_challenge."
    )]
    VerifierWithoutChallenge,
    #[error(
        "AADSTS65001: The user or administrator has not consented to use the application with ID '{client_id}' named '{client_name}'. Send an interactive authorization request for this user and resource."
    )]
    ConsentRequired {
        client_id: String,
        client_name: String,
    },
    #[error(
        "AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid. {reason}"
    )]
    InvalidScope { scope: String, reason: String },
    /// The `error` string for 28000 is UNCONFIRMED; `invalid_scope` matches its meaning.
    #[error(
        "AADSTS28000: Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {0} is not valid."
    )]
    MultipleResources(String),
    #[error(
        "AADSTS500011: The resource principal named {identifier} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
    )]
    UnknownResource { identifier: String, tenant: String },
    #[error("AADSTS50013: Assertion failed signature validation. [Reason - {0}]")]
    InvalidAssertion(String),
    #[error(
        "AADSTS500133: Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token."
    )]
    AssertionExpired,
    #[error(
        "AADSTS240002: Input id_token cannot be used as 'urn:ietf:params:oauth:grant-type:jwt-bearer' grant."
    )]
    IdTokenAsAssertion,
    #[error("AADSTS50034: The user account {0} does not exist in the directory.")]
    UserNotFound(String),

    // ---- the device authorization grant (polling the token endpoint) -----------------------
    #[error(
        "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending. Continue polling."
    )]
    AuthorizationPending,
    /// RFC 8628's `slow_down`; Entra's code for it is UNCONFIRMED, so the pending code is used
    /// (it is a variant of pending: the client keeps polling, more slowly).
    #[error(
        "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending, but the client polled too often: wait at least {0} seconds between requests."
    )]
    SlowDown(i64),
    /// The person chose "Cancel" on the device-code page. The code is UNCONFIRMED; 65004 is
    /// Entra's code for a user declining.
    #[error("AADSTS65004: The user declined to sign in to the application on this device.")]
    AuthorizationDeclined,
    #[error(
        "AADSTS70020: The provided value for the input parameter 'device_code' is not valid. This device code has expired."
    )]
    DeviceCodeExpired,
    /// 70018 is Entra's BadVerificationCode; its wording for an unknown device code is
    /// UNCONFIRMED.
    #[error(
        "AADSTS70018: The provided value for the input parameter 'device_code' is not valid. The device code is unknown or malformed."
    )]
    BadVerificationCode,

    // ---- errors returned to the redirect URI by /authorize ---------------------------------
    #[error("AADSTS50058: A silent sign-in request was sent but no user is signed in.")]
    LoginRequired,
    #[error("AADSTS65004: User declined to consent to access the app.")]
    ConsentDeclined,
    #[error(
        "AADSTS65001: The user or administrator has not consented to use the application with ID '{client_id}' named '{client_name}'. Send an interactive authorization request for this user and resource."
    )]
    InteractiveConsentRequired {
        client_id: String,
        client_name: String,
    },
    #[error("AADSTS700054: response_type '{0}' is not enabled for the application.")]
    ResponseTypeNotEnabled(String),
    /// UNCONFIRMED code; Entra answers unknown response types with `unsupported_response_type`.
    #[error(
        "AADSTS900352: The response_type '{0}' is not supported. Supported values are 'code' and 'code id_token'."
    )]
    UnsupportedResponseType(String),

    #[error(
        "AADSTS50000: There was an error issuing a token or an issue with our sign-in service. {0}"
    )]
    Internal(String),
    /// The store cannot be reached right now (database restarting, connection lost). Entra
    /// answers transient service trouble with `temporarily_unavailable` and a 503; clients such
    /// as MSAL retry it.
    #[error("AADSTS90033: A transient error has occurred. Please try again.")]
    TemporarilyUnavailable,
}

/// Seconds a client is asked to wait after `temporarily_unavailable` (the `Retry-After` header).
pub const RETRY_AFTER_SECONDS: u32 = 5;

impl EntraError {
    /// The AADSTS number (also `error_codes[0]`).
    pub fn code(&self) -> u32 {
        use EntraError::*;
        match self {
            MissingParameter(_) => 900144,
            Malformed(_) => 9002313,
            RequestTooLarge { .. } | TooManyParameters { .. } => 90015,
            AccountLocked { .. } => 50053,
            InvalidRequest { code, .. } => *code,
            ResourceParameterUnsupported => 901002,
            MethodNotAllowed(_) => 900561,
            TenantNotFound(_) => 90002,
            UnsupportedGrantType(_) => 70003,
            UnknownClient { .. } => 700016,
            InvalidClientSecret(_) => 7000215,
            ExpiredClientSecret(_) => 7000222,
            MissingClientCredential => 7000218,
            PublicClientWithCredential => 700025,
            InvalidClientAssertion(_) => 700027,
            ExpiredClientAssertion => 700024,
            RedirectUriMismatch { .. } => 50011,
            InvalidGrant { .. } => 70000,
            CodeRedeemed => 54005,
            GrantExpired => 70008,
            GrantRevoked(_) => 50173,
            PkceMismatch | VerifierWithoutChallenge => 501481,
            ConsentRequired { .. } | InteractiveConsentRequired { .. } => 65001,
            InvalidScope { .. } => 70011,
            MultipleResources(_) => 28000,
            UnknownResource { .. } => 500011,
            InvalidAssertion(_) => 50013,
            AssertionExpired => 500133,
            IdTokenAsAssertion => 240002,
            UserNotFound(_) => 50034,
            AuthorizationPending | SlowDown(_) => 70016,
            AuthorizationDeclined => 65004,
            DeviceCodeExpired => 70020,
            BadVerificationCode => 70018,
            LoginRequired => 50058,
            ConsentDeclined => 65004,
            ResponseTypeNotEnabled(_) => 700054,
            UnsupportedResponseType(_) => 900352,
            Internal(_) => 50000,
            TemporarilyUnavailable => 90033,
        }
    }

    /// The OAuth 2.0 / OpenID Connect `error` string.
    pub fn error(&self) -> &'static str {
        use EntraError::*;
        match self {
            MissingParameter(_)
            | Malformed(_)
            | RequestTooLarge { .. }
            | TooManyParameters { .. }
            | InvalidRequest { .. }
            | ResourceParameterUnsupported
            | MethodNotAllowed(_)
            | TenantNotFound(_) => "invalid_request",
            UnsupportedGrantType(_) => "unsupported_grant_type",
            UnknownClient { .. } => "unauthorized_client",
            InvalidClientSecret(_)
            | ExpiredClientSecret(_)
            | MissingClientCredential
            | PublicClientWithCredential
            | InvalidClientAssertion(_)
            | ExpiredClientAssertion
            | RedirectUriMismatch { .. } => "invalid_client",
            InvalidGrant { .. }
            | CodeRedeemed
            | GrantExpired
            | GrantRevoked(_)
            | PkceMismatch
            | VerifierWithoutChallenge
            | ConsentRequired { .. }
            | InvalidAssertion(_)
            | AssertionExpired
            | IdTokenAsAssertion
            | AccountLocked { .. }
            | UserNotFound(_) => "invalid_grant",
            AuthorizationPending => "authorization_pending",
            SlowDown(_) => "slow_down",
            AuthorizationDeclined => "authorization_declined",
            DeviceCodeExpired => "expired_token",
            BadVerificationCode => "bad_verification_code",
            InvalidScope { .. } | MultipleResources(_) => "invalid_scope",
            UnknownResource { .. } => "invalid_resource",
            LoginRequired => "login_required",
            ConsentDeclined => "access_denied",
            InteractiveConsentRequired { .. } => "consent_required",
            ResponseTypeNotEnabled(_) => "unsupported_response",
            UnsupportedResponseType(_) => "unsupported_response_type",
            Internal(_) => "server_error",
            TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    pub fn status(&self) -> StatusCode {
        use EntraError::*;
        match self {
            InvalidClientSecret(_)
            | ExpiredClientSecret(_)
            | MissingClientCredential
            | PublicClientWithCredential
            | InvalidClientAssertion(_)
            | ExpiredClientAssertion => StatusCode::UNAUTHORIZED,
            MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            RequestTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn suberror(&self) -> Option<&'static str> {
        match self {
            EntraError::ConsentRequired { .. } => Some("consent_required"),
            _ => None,
        }
    }

    /// The JSON body Entra sends, with fresh trace and correlation ids.
    pub fn body(&self, correlation_id: Option<&str>) -> ErrorBody {
        let timestamp = entra_timestamp(time::OffsetDateTime::now_utc());
        let trace_id = new_guid();
        let correlation_id = correlation_id
            .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .map(str::to_owned)
            .unwrap_or_else(new_guid);
        ErrorBody {
            error: self.error(),
            error_description: format!(
                "{self}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}"
            ),
            error_codes: [self.code()],
            timestamp,
            trace_id,
            correlation_id,
            error_uri: format!(
                "https://login.microsoftonline.com/error?code={}",
                self.code()
            ),
            suberror: self.suberror(),
        }
    }
}

impl From<easyauth_store::StoreError> for EntraError {
    fn from(e: easyauth_store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "store temporarily unavailable");
            return EntraError::TemporarilyUnavailable;
        }
        tracing::error!(error = %e, "store failure");
        crate::metrics::store_error();
        EntraError::Internal("The directory store is unavailable.".into())
    }
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: &'static str,
    pub error_description: String,
    pub error_codes: [u32; 1],
    pub timestamp: String,
    pub trace_id: String,
    pub correlation_id: String,
    pub error_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suberror: Option<&'static str>,
}

/// An error answered as Entra's JSON body (token endpoint, discovery).
#[derive(Debug)]
pub struct JsonError {
    pub error: EntraError,
    pub correlation_id: Option<String>,
    pub(crate) fields: Option<crate::log::LogFields>,
}

impl From<EntraError> for JsonError {
    fn from(error: EntraError) -> Self {
        JsonError {
            error,
            correlation_id: None,
            fields: None,
        }
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let body = self.error.body(self.correlation_id.as_deref());
        let mut response = (self.error.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.error.status() == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        if self.error.status() == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        // The request log line reads the outcome from here.
        response
            .extensions_mut()
            .insert(crate::log::Outcome::Error(self.error.code()));
        if let Some(fields) = self.fields {
            response.extensions_mut().insert(fields);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn an_unreachable_store_is_a_503_temporarily_unavailable_with_retry_after() {
        let error = EntraError::from(easyauth_store::StoreError::Unavailable(
            "PostgreSQL: connection refused (secret internals)".into(),
        ));
        let response = JsonError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "temporarily_unavailable");
        assert_eq!(body["error_codes"], serde_json::json!([90033]));
        let description = body["error_description"].as_str().unwrap();
        assert!(description.starts_with("AADSTS90033: "), "{description}");
        assert!(!description.contains("internals"), "{description}");
    }

    #[test]
    fn other_store_failures_stay_server_errors() {
        let error = EntraError::from(easyauth_store::StoreError::Backend("disk full".into()));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.error(), "server_error");
    }
}
