//! Storage for every oih service, over SQLite (WAL, the embedded default) and PostgreSQL (JSONB).
//!
//! Two things live here, because both need the same database and one transaction must be able
//! to span them (the transactional outbox):
//! - a **document store**: named collections of JSON documents with optimistic concurrency,
//!   filters, sort, paging, unique constraints and TTL expiry (see [`DocStore`]);
//! - a **message log**: the durable part of the embedded message bus (see [`MessageLog`]).
//!   Routing and delivery live in `oih-bus`; this crate only persists what it is told.
//!
//! It also keeps the key files of the data directory ([`keyfile`]).
//!
//! This is the only crate that names sqlx.

mod doc;
mod engine;
mod error;
mod filter;
pub mod keyfile;
mod log;
mod open;
mod pg;
mod sql;
mod sqlite;
pub mod testing;

pub use doc::{
    Collection, CollectionSpec, DocOps, DocStore, Document, FindOptions, NewDocument, SortOrder,
    Transaction,
};
pub use error::StoreError;
pub use filter::Filter;
pub use log::{LogBatch, LogSnapshot, MessageLog, StoredMessage, TopologyRecord};
pub use open::{Backend, open};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
