//! secret-service integration tests: the HTTP API with the full app around it (SQLite store,
//! embedded bus), encryption at rest and key management, and the OIH import.

mod clients;
mod encryption;
mod events;
mod legacy;
mod oauth_flow;
mod secrets_api;
mod support;
