mod auth;
mod bodies;
mod execute;
mod lifecycle;
mod support;
