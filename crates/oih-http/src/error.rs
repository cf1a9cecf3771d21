//! `ApiError`, the one error type handlers return, and the per-service JSON shapes OIH renders
//! errors in (data-services.md §0.3, iam-ils.md §6.5).
//!
//! How the shape is chosen: `ApiError::into_response` renders the default shape
//! ([`ErrorShape::Errors`]) and also stores an [`ErrorReport`] in the response extensions. The
//! layer a service's router carries ([`ErrorShape::apply`], or [`crate::ServiceModule`] does it)
//! re-renders the report in that service's shape and marks the response as shaped, so the
//! outer, app-wide layer leaves it alone. Handlers therefore just return `Result<_, ApiError>`
//! and never think about shapes.

use std::error::Error as StdError;

use axum::body::{Body, HttpBody};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Router, middleware};
use serde_json::{Map, Value, json};

pub type BoxError = Box<dyn StdError + Send + Sync>;

/// One entry of a validation failure. OIH reports every failed rule as its own entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub message: String,
    /// The offending field, when known. Rendered as an extra `field` key (clients that only
    /// read `message` are unaffected).
    pub field: Option<String>,
}

impl FieldError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// Everything a handler can fail with. 4xx messages are shown to the caller as given; the
/// cause of an [`ApiError::Internal`] is logged and never shown.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// OIH's `{status:403, message, details}`; `details` is e.g. `["flows.read"]` for
    /// `MISSING_PERMISSION`.
    #[error("forbidden: {message}")]
    Forbidden {
        message: String,
        details: Option<String>,
    },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// OIH answers validation failures with 400 and one entry per failed rule.
    #[error("validation failed ({} errors)", .0.len())]
    Validation(Vec<FieldError>),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Any other status with a message meant for the caller (e.g. 423, 502).
    #[error("{status}: {message}")]
    Other { status: StatusCode, message: String },
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden {
            message: message.into(),
            details: None,
        }
    }

    pub fn internal(cause: impl Into<BoxError>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Other { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the caller may see.
    pub fn report(&self) -> ErrorReport {
        let one = |message: &str| vec![ErrorEntry::new(message)];
        let errors = match self {
            Self::BadRequest(m)
            | Self::Unauthorized(m)
            | Self::NotFound(m)
            | Self::Conflict(m)
            | Self::UnsupportedMediaType(m)
            | Self::Unavailable(m)
            | Self::Other { message: m, .. } => one(m),
            Self::Forbidden { message, details } => vec![ErrorEntry {
                message: message.clone(),
                field: None,
                details: details.clone(),
            }],
            Self::MethodNotAllowed => one("Method not allowed"),
            // body-parser's wording, which OIH clients have seen for years.
            Self::PayloadTooLarge => one("request entity too large"),
            Self::Validation(fields) => fields
                .iter()
                .map(|f| ErrorEntry {
                    message: f.message.clone(),
                    field: f.field.clone(),
                    details: None,
                })
                .collect(),
            Self::Internal(_) => one("Internal server error"),
        };
        ErrorReport {
            status: self.status(),
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(cause) = &self {
            tracing::error!(error = %cause, source = ?cause.source(), "request failed");
        } else if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, "request rejected");
        }
        self.report().into_response()
    }
}

/// One error as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorEntry {
    pub message: String,
    pub field: Option<String>,
    pub details: Option<String>,
}

impl ErrorEntry {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
            details: None,
        }
    }
}

/// The public part of an error, kept in the response extensions until a shape layer renders
/// it for the service that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    pub status: StatusCode,
    pub errors: Vec<ErrorEntry>,
}

impl IntoResponse for ErrorReport {
    fn into_response(self) -> Response {
        // Default shape for now; the service's shape layer re-renders it from the report.
        let mut res = (self.status, axum::Json(ErrorShape::default().body(&self))).into_response();
        res.extensions_mut().insert(self);
        res
    }
}

/// Marks a response whose error body already has its final shape.
#[derive(Debug, Clone, Copy)]
struct Shaped;

/// The JSON error body of one OIH service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorShape {
    /// `{"errors":[{"message","code"}]}`: flow-repository, audit-log, ILS, and the app-wide
    /// fallback.
    #[default]
    Errors,
    /// `{"errors":[{"message"}]}`: component-repository, the Koa services.
    ErrorsNoCode,
    /// `{"message":"..."}`: IAM, secret-service, meta-data-repository. Several errors are joined
    /// with `; ` into the one message.
    Message,
}

impl ErrorShape {
    pub fn body(self, report: &ErrorReport) -> Value {
        let entry = |e: &ErrorEntry, code: bool| {
            let mut obj = Map::new();
            obj.insert("message".into(), Value::String(e.message.clone()));
            if code {
                obj.insert("code".into(), json!(report.status.as_u16()));
            }
            if let Some(field) = &e.field {
                obj.insert("field".into(), Value::String(field.clone()));
            }
            if let Some(details) = &e.details {
                obj.insert("details".into(), Value::String(details.clone()));
            }
            Value::Object(obj)
        };
        match self {
            Self::Errors => {
                json!({"errors": report.errors.iter().map(|e| entry(e, true)).collect::<Vec<_>>()})
            }
            Self::ErrorsNoCode => {
                json!({"errors": report.errors.iter().map(|e| entry(e, false)).collect::<Vec<_>>()})
            }
            Self::Message => {
                let message = report
                    .errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut obj = Map::new();
                obj.insert("message".into(), Value::String(message));
                let details: Vec<&str> = report
                    .errors
                    .iter()
                    .filter_map(|e| e.details.as_deref())
                    .collect();
                if !details.is_empty() {
                    obj.insert("details".into(), Value::String(details.join("; ")));
                }
                Value::Object(obj)
            }
        }
    }

    /// A final response in this shape (no layer will re-render it).
    pub fn render(self, report: &ErrorReport) -> Response {
        let mut res = (report.status, axum::Json(self.body(report))).into_response();
        res.extensions_mut().insert(Shaped);
        res
    }

    /// Renders every error leaving `router` (ApiErrors, and axum's bare 404/405) in this shape.
    pub fn apply<S>(self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router.layer(middleware::map_response_with_state(self, shape_errors))
    }

    /// Rewrites `res` in this shape if it is an unshaped error; otherwise returns it unchanged.
    pub fn reshape(self, res: Response) -> Response {
        if res.extensions().get::<Shaped>().is_some() {
            return res;
        }
        let (mut parts, body) = res.into_parts();
        let report = match parts.extensions.remove::<ErrorReport>() {
            Some(report) => report,
            None => match bare_error(parts.status, &parts.headers, &body) {
                Some(report) => report,
                None => return Response::from_parts(parts, body),
            },
        };
        let json = match serde_json::to_vec(&self.body(&report)) {
            Ok(json) => json,
            // A Value always serializes; keep the original body rather than panic.
            Err(_) => return Response::from_parts(parts, body),
        };
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.extensions.insert(Shaped);
        Response::from_parts(parts, Body::from(json))
    }
}

/// axum's own 404 (no route) and 405 (no method) responses have empty bodies; they get the
/// JSON shape too. Anything with a body was written on purpose and is left alone.
fn bare_error(
    status: StatusCode,
    headers: &axum::http::HeaderMap,
    body: &Body,
) -> Option<ErrorReport> {
    let empty = body.size_hint().exact() == Some(0) && !headers.contains_key(header::CONTENT_TYPE);
    let err = match status {
        StatusCode::NOT_FOUND if empty => ApiError::not_found("Not found"),
        StatusCode::METHOD_NOT_ALLOWED if empty => ApiError::MethodNotAllowed,
        _ => return None,
    };
    Some(err.report())
}

async fn shape_errors(State(shape): State<ErrorShape>, res: Response) -> Response {
    shape.reshape(res)
}

/// Store failures as HTTP errors. Handlers usually map `NotFound` and `Duplicate` themselves
/// with OIH's exact messages; this is the fallback, so that a store error never becomes a
/// bare 500 unless the database itself failed.
impl From<oih_store::StoreError> for ApiError {
    fn from(err: oih_store::StoreError) -> Self {
        use oih_store::StoreError;
        match err {
            StoreError::NotFound => Self::NotFound("Not found".into()),
            StoreError::Duplicate(what) => Self::Conflict(format!("Duplicate: {what}")),
            StoreError::Conflict { .. } => Self::Conflict(
                "The resource was changed by another request; reload and retry".into(),
            ),
            StoreError::Invalid(msg) => Self::BadRequest(msg),
            StoreError::Unavailable(_) => {
                Self::Unavailable("The database is temporarily unavailable".into())
            }
            other => Self::internal(other),
        }
    }
}

/// Bus failures as HTTP errors: a closed or unreachable bus is a temporary condition.
impl From<oih_bus::BusError> for ApiError {
    fn from(err: oih_bus::BusError) -> Self {
        match err {
            oih_bus::BusError::Closed => {
                Self::Unavailable("The message bus is shutting down".into())
            }
            other => Self::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ErrorReport {
        ApiError::Forbidden {
            message: "MISSING_PERMISSION".into(),
            details: Some("[\"flows.read\"]".into()),
        }
        .report()
    }

    #[test]
    fn shapes() {
        assert_eq!(
            ErrorShape::Errors.body(&ApiError::not_found("No flow found").report()),
            json!({"errors":[{"message":"No flow found","code":404}]})
        );
        assert_eq!(
            ErrorShape::ErrorsNoCode.body(&ApiError::not_found("x").report()),
            json!({"errors":[{"message":"x"}]})
        );
        assert_eq!(
            ErrorShape::Message.body(&report()),
            json!({"message":"MISSING_PERMISSION","details":"[\"flows.read\"]"})
        );
        let v = ApiError::Validation(vec![
            FieldError::new("a"),
            FieldError::new("b").with_field("graph"),
        ])
        .report();
        assert_eq!(
            ErrorShape::Errors.body(&v),
            json!({"errors":[{"message":"a","code":400},{"message":"b","code":400,"field":"graph"}]})
        );
        assert_eq!(ErrorShape::Message.body(&v), json!({"message":"a; b"}));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::internal("password=hunter2 leaked");
        assert_eq!(
            ErrorShape::Errors.body(&err.report()),
            json!({"errors":[{"message":"Internal server error","code":500}]})
        );
    }
}
