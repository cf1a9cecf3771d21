//! `oih`: the Open Integration Hub in one binary.

mod admin;
mod cli;
mod client;
mod memory;
mod redact;
mod serve;
mod services;
mod storage;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// mimalloc instead of the system allocator: the hub allocates many short-lived buffers
/// (messages, JSON values) across threads, where glibc's malloc spent a fifth of the CPU time
/// under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    memory::apply_allocator_settings();
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let result = match cli.command {
        Command::Login(args) => return client::run(client::login(args)).await,
        Command::Iam(args) => return client::run(client::iam(args)).await,
        Command::Flow(args) => return client::run(client::flow(args)).await,
        Command::Component(args) => return client::run(client::component(args)).await,
        Command::Serve(args) => serve::run(*args).await,
        Command::Secrets(args) => admin::secrets(args).await,
        Command::Metadata(args) => admin::metadata(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "oih stopped with an error");
            ExitCode::FAILURE
        }
    }
}
