//! The oih-bus integration tests: one binary (see ARCHITECTURE.md), one module per concern.
//!
//! `conformance` is the `MessageBus` contract, instantiated below once per backend. RabbitMQ
//! tests need `OIH_TEST_AMQP_URL` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`) and are
//! skipped without it.

mod amqp;
mod backends;
mod conformance;
mod embedded;
mod event_bus;
mod proxy;
mod support;

support::conformance_tests!(embedded_conformance, crate::backends::embedded_bus);
support::conformance_tests!(amqp_conformance, crate::backends::amqp_bus);
support::conformance_tests!(embedded_pg_conformance, crate::backends::embedded_pg_bus);
