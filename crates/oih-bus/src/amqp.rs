//! RabbitMQ backend (lapin).
