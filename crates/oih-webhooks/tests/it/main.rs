mod auth;
mod bodies;
mod execute;
mod lifecycle;
mod support;
mod sync_reply;
