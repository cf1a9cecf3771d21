//! Black-box tests of the `oih` binary.

mod cli;
mod serve;
