//! The AMQP 0-9-1 model that OIH relies on, behind one [`MessageBus`] trait with two backends:
//! - [`embedded`]: an in-process broker whose queues are persisted in the store's database
//!   (`oih_store::MessageLog`), so confirmed messages survive a crash and a service can write a
//!   document and publish in one transaction;
//! - [`amqp`]: RabbitMQ through lapin, with reconnect and re-declare.
//!
//! [`event_bus`] is OIH's control-plane event bus on top of either.
//!
//! This is the only crate that names lapin.

pub mod amqp;
mod api;
pub mod embedded;
mod error;
pub mod event_bus;
mod pattern;
pub mod testing;

pub use api::{
    ConsumeOptions, Consumer, Delivery, ExchangeKind, Headers, Message, MessageBus, Properties,
    QueueOptions, Settle, Settlement,
};
pub use error::BusError;
pub use event_bus::{EventBus, EventFailure, EventHandler, EventStream, ReceivedEvent};

pub use pattern::topic_matches;

pub type Result<T, E = BusError> = std::result::Result<T, E>;
