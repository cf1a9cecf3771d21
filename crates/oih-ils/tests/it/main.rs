//! The integration-layer-service through its router, as `oih serve` mounts it.

mod chunks;
mod http_source;
mod schema_refs;
mod split;
mod support;
mod tenancy;
