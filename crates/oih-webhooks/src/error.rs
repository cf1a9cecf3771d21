//! OIH's webhooks errors: `{"error": "<message>"}` with the status (runtime.md §5.1).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::body::BodyError;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// Unknown, not yet active, or malformed flow id: one answer for all (no enumeration).
    #[error("Flow {0} either does not exist or is inactive.")]
    FlowNotFound(String),
    /// OIH's `403 {"error":"Unauthorized"}`, whatever failed.
    #[error("Unauthorized")]
    Unauthorized,
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("Payload too large: the limit is {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    BadRequest(String),
    #[error("Flow has no first node")]
    NoFirstNode,
    /// The request's `Origin` is not in `CORS_ORIGIN_WHITELIST` (OIH's message).
    #[error("Not allowed by CORS")]
    CorsRefused,
    #[error("Method not allowed")]
    MethodNotAllowed,
    #[error("A request with this Idempotency-Key failed; retry it")]
    IdempotencyConflict,
    #[error("{0}")]
    Unavailable(String),
    /// Logged; the caller sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl HookError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::FlowNotFound(_) | Self::NoFirstNode => StatusCode::NOT_FOUND,
            Self::Unauthorized | Self::CorsRefused => StatusCode::FORBIDDEN,
            Self::Body(BodyError::MissingContentType | BodyError::Unsupported(_)) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::Body(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::IdempotencyConflict => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<oih_store::StoreError> for HookError {
    fn from(err: oih_store::StoreError) -> Self {
        match err {
            oih_store::StoreError::Unavailable(_) => {
                Self::Unavailable("The database is temporarily unavailable".into())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<oih_bus::BusError> for HookError {
    fn from(err: oih_bus::BusError) -> Self {
        match err {
            oih_bus::BusError::Closed => {
                Self::Unavailable("The message bus is shutting down".into())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::InProcessError> for HookError {
    fn from(_: crate::InProcessError) -> Self {
        // The orchestrator logged why.
        Self::Unavailable("The flow could not be run; retry the request".into())
    }
}

impl IntoResponse for HookError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = %cause, "webhook request failed");
                "Internal server error".to_owned()
            }
            other => other.to_string(),
        };
        (self.status(), Json(json!({"error": message}))).into_response()
    }
}
