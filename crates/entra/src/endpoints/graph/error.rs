//! Microsoft Graph's error shape: `{"error":{"code","message","innerError":{"date","request-id",
//! "client-request-id"}}}`. `Display` is the `message` the caller sees.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::directory::GRAPH_APP_ID;

/// The message Graph answers a missing permission with.
pub(crate) const INSUFFICIENT_PRIVILEGES: &str =
    "Insufficient privileges to complete the operation.";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GraphError {
    /// No token, or one this tenant did not issue for Graph (401).
    #[error("{0}")]
    InvalidToken(String),
    /// A valid token without the permission the operation needs (403).
    #[error("{INSUFFICIENT_PRIVILEGES}")]
    Denied,
    #[error(
        "Resource '{0}' does not exist or one of its queried reference-property objects are not present."
    )]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("/me request is only valid with delegated authentication flow.")]
    DelegatedOnly,
    /// A `$filter` (or other query option) this Graph does not evaluate.
    #[error("Unsupported query: {0}")]
    UnsupportedQuery(String),
    /// An object with the same key exists (service principal of an app, grant of a triple).
    #[error("{0}")]
    Conflict(String),
    /// Entra's rule: a scope or app role is disabled before it is changed or removed.
    #[error("Permission (scope or role) cannot be deleted or updated unless disabled first. ({0})")]
    EnabledPermission(String),
    #[error("The request body is larger than {0} bytes.")]
    TooLarge(usize),
    #[error("Resource not found for the segment '{0}'.")]
    NoSegment(String),
    #[error("The method {0} is not allowed on this resource.")]
    MethodNotAllowed(String),
    /// The store failed: nothing the caller sent is at fault.
    #[error("The directory could not be updated: {0}")]
    Internal(String),
    /// The store cannot be reached right now: Graph's 503 `serviceNotAvailable`.
    #[error("The service is temporarily unavailable. Please try again later.")]
    Unavailable,
}

impl GraphError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            GraphError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            GraphError::Denied => StatusCode::FORBIDDEN,
            GraphError::NotFound(_) => StatusCode::NOT_FOUND,
            GraphError::BadRequest(_)
            | GraphError::UnsupportedQuery(_)
            | GraphError::EnabledPermission(_)
            | GraphError::NoSegment(_)
            | GraphError::DelegatedOnly => StatusCode::BAD_REQUEST,
            GraphError::Conflict(_) => StatusCode::CONFLICT,
            GraphError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GraphError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            GraphError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GraphError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            GraphError::InvalidToken(_) => "InvalidAuthenticationToken",
            GraphError::Denied => "Authorization_RequestDenied",
            GraphError::NotFound(_) => "Request_ResourceNotFound",
            GraphError::BadRequest(_) | GraphError::TooLarge(_) => "Request_BadRequest",
            GraphError::UnsupportedQuery(_) => "Request_UnsupportedQuery",
            GraphError::Conflict(_) => "Request_MultipleObjectsWithSameKeyValue",
            GraphError::EnabledPermission(_) => "CannotDeleteOrUpdateEnabledEntitlement",
            GraphError::NoSegment(_) | GraphError::DelegatedOnly => "BadRequest",
            GraphError::MethodNotAllowed(_) => "Request_BadRequest",
            GraphError::Internal(_) => "Service_InternalServerError",
            GraphError::Unavailable => "serviceNotAvailable",
        }
    }

    /// A body that is not what the operation takes; `at` names the place in it.
    pub(crate) fn invalid_body(at: &str, reason: impl std::fmt::Display) -> GraphError {
        if at.is_empty() || at == "." {
            GraphError::BadRequest(format!("Invalid request body: {reason}"))
        } else {
            GraphError::BadRequest(format!("Invalid value at '{at}': {reason}"))
        }
    }

    /// The response, with the request's ids in `innerError` and, for 401, the challenge.
    pub(crate) fn response(
        &self,
        request_id: &str,
        client_request_id: &str,
        public_url: &str,
    ) -> Response {
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let body = json!({"error": {
            "code": self.code(),
            "message": self.to_string(),
            "innerError": {
                "date": date,
                "request-id": request_id,
                "client-request-id": client_request_id,
            }
        }});
        let mut response = (self.status(), Json(body)).into_response();
        response
            .extensions_mut()
            .insert(crate::log::Outcome::Graph(self.code()));
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::error::RETRY_AFTER_SECONDS),
            );
        }
        if self.status() == StatusCode::UNAUTHORIZED {
            let challenge = format!(
                "Bearer realm=\"\", authorization_uri=\"{public_url}/common/oauth2/authorize\", client_id=\"{GRAPH_APP_ID}\""
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        response
    }
}

impl From<easyauth_store::StoreError> for GraphError {
    fn from(e: easyauth_store::StoreError) -> GraphError {
        crate::metrics::store_error();
        if e.is_unavailable() {
            tracing::warn!(error = %e, "store temporarily unavailable");
            return GraphError::Unavailable;
        }
        GraphError::Internal(e.to_string())
    }
}
