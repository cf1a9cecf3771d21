//! HTTP conventions shared by every oih service, so that each answers like its OIH original:
//! - [`ApiError`] and [`ErrorShape`]: one error type, rendered in each service's JSON shape;
//! - [`extract`]: `Json`/`Query`/`Path` whose rejections are JSON 400/413/415 errors;
//! - [`auth`]: the [`Authenticator`] contract and the [`Auth`] extractor with OIH's 401/403s;
//! - [`pagination`]: `page[size]`, `filter[x]`, `sort`, `search` and the `{data, meta}` envelopes;
//! - [`health`], [`metrics`], [`openapi`]: `/healthcheck`, `/metrics`, `/api-docs`;
//! - [`ServiceModule`] and [`App`]: what a service contributes, and the composed router.

pub mod app;
pub mod auth;
pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod module;
pub mod openapi;
pub mod pagination;
pub mod step_token;
pub mod testing;

pub use app::{App, Built, DEFAULT_BODY_LIMIT};
pub use auth::{Auth, AuthError, Authenticator, Authn, StepAuth, require, require_one_of};
pub use error::{ApiError, BoxError, ErrorReport, ErrorShape, FieldError};
pub use extract::{Json, Path, Query};
pub use health::{HealthCheck, ServiceHealth, WorkerWatch};
pub use module::{ServiceModule, Worker};
pub use pagination::{Data, DataMeta, ListQuery, Page, PageMeta, PageRequest, Sort, SortOrder};
