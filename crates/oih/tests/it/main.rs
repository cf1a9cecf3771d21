//! Black-box tests of the `oih` binary.

mod admin;
mod cli;
mod serve;
