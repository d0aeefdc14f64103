//! Azure Resource Manager's error body: `{"error": {"code", "message"}}` with ARM's codes and
//! statuses, which the Azure CLI prints as a readable message.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A refused ARM request; `Display` is the message the Azure CLI shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ArmError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ArmError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ArmError {
        ArmError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ArmError {
        ArmError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// A body that is not JSON, or not the expected shape; the message names the place.
    pub fn invalid_body(message: impl Into<String>) -> ArmError {
        ArmError::new(StatusCode::BAD_REQUEST, "InvalidRequestContent", message)
    }

    pub fn not_found(kind: &str, name: &str, group: &str) -> ArmError {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            format!(
                "The Resource '{kind}/{name}' under resource group '{group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ),
        )
    }

    pub fn group_not_found(group: &str) -> ArmError {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
            format!("Resource group '{group}' could not be found."),
        )
    }

    pub fn subscription_not_found(subscription: &str) -> ArmError {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{subscription}' could not be found."),
        )
    }

    pub fn unknown_type(what: &str) -> ArmError {
        ArmError::new(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            format!(
                "The resource type '{what}' could not be found in the namespace 'Microsoft.Web' for api version of this local platform (easyauth serves resource groups, serverfarms and sites)."
            ),
        )
    }

    pub fn method_not_allowed(method: &str, path: &str) -> ArmError {
        ArmError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The method '{method}' is not supported on '{path}'."),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ArmError {
        ArmError::new(StatusCode::CONFLICT, code, message)
    }

    /// The platform could not apply a valid request; nothing was changed.
    pub fn failed(message: impl Into<String>) -> ArmError {
        ArmError::new(StatusCode::BAD_REQUEST, "OperationFailed", message)
    }

    pub fn internal(message: impl Into<String>) -> ArmError {
        ArmError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            message,
        )
    }
}

impl From<easyauth_store::StoreError> for ArmError {
    fn from(e: easyauth_store::StoreError) -> Self {
        tracing::error!(error = %e, "the platform's store failed");
        ArmError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The platform's state could not be read or written; try again.",
        )
    }
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer authorization_uri=\"local\", error=\"invalid_token\"",
                ),
            );
        }
        r
    }
}

pub type ArmResult<T> = Result<T, ArmError>;
