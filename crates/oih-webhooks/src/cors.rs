//! CORS on `/hook` as OIH (runtime.md §5.1): a request without `Origin` (a server calling)
//! or from an origin in `CORS_ORIGIN_WHITELIST` is served, with credentials allowed; any
//! other origin is refused before anything happens (OIH: a 500, here a 403). Preflights
//! (`OPTIONS` with an allowed origin) are answered with the methods of the `cors` package.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::HookError;

/// The methods the `cors` package announces by default.
const ALLOWED_METHODS: &str = "GET,HEAD,PUT,PATCH,POST,DELETE";

#[derive(Debug, Clone, Default)]
pub struct Cors {
    whitelist: Vec<String>,
}

impl Cors {
    /// `whitelist`: OIH's comma-separated `CORS_ORIGIN_WHITELIST`.
    pub fn new(whitelist: &str) -> Self {
        Self {
            whitelist: whitelist
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// The origin to echo (`None`: the request has none), or the refusal.
    pub fn origin(&self, headers: &HeaderMap) -> Result<Option<HeaderValue>, HookError> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(None);
        };
        let allowed = origin
            .to_str()
            .is_ok_and(|o| self.whitelist.iter().any(|w| w == o));
        if allowed {
            Ok(Some(origin.clone()))
        } else {
            Err(HookError::CorsRefused)
        }
    }
}

/// Adds the CORS answer for an allowed `origin` to `res`.
pub fn decorate(mut res: Response, origin: Option<HeaderValue>) -> Response {
    if let Some(origin) = origin {
        let headers = res.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    res
}

/// The answer to a preflight from an allowed origin: the methods, and the headers the
/// browser asked for.
pub fn preflight(request: &HeaderMap) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    if let Some(asked) = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    res
}
