//! Embedded broker.
