//! Black-box tests of the `oih` binary.

mod admin;
mod cli;
mod client;
mod e2e;
mod hub;
mod runtime;
mod serve;
mod support;
