use thiserror::Error;

#[derive(Debug, Error)]
pub enum BusError {
    #[error("no exchange named {0:?}")]
    ExchangeNotFound(String),
    #[error("no queue named {0:?}")]
    QueueNotFound(String),
    /// A re-declaration with different arguments (RabbitMQ's PRECONDITION_FAILED).
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("the message was not confirmed by the broker")]
    NotConfirmed,
    #[error("the bus is closed")]
    Closed,
    #[error("store error: {0}")]
    Store(#[from] oih_store::StoreError),
    #[error("AMQP error: {0}")]
    Amqp(String),
    #[error("invalid message: {0}")]
    Invalid(String),
}
