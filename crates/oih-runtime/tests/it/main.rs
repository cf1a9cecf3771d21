//! oih-runtime's integration tests: every builtin component through the public API.

mod catalogue;
mod http_request;
mod message;
mod support;
mod transform;
mod webhook_reply;
