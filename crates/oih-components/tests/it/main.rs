//! The component repository through its HTTP API and the embedded event bus.

mod builtin;
mod components;
mod enrich;
mod events;
mod global;
mod security;
mod support;
mod versions;
mod virtual_components;
