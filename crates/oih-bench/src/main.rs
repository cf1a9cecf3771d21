//! Benchmarks that print figures (a table for people, one JSON line per result for scripts).
//!
//! `cargo run --release -p oih-bench -- bus --help`, `… -- log --help`, `… -- auth --help`,
//! `… -- compare --help` (oih against n8n and Node-RED, see bench/README.md)

mod auth;
mod bus;
mod compare;
mod log;
mod services;
mod step;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "oih benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Message bus: publish -> consume -> ack throughput and end-to-end latency.
    Bus(bus::BusArgs),
    /// Message log alone: how fast the store persists group commits (append + remove).
    Log(log::LogArgs),
    /// Meta Data Repository: documents/s validated against a cached compiled schema.
    Mdr(services::MdrArgs),
    /// Audit Log: events/s ingested from the event bus into the hash chains.
    Audit(services::AuditArgs),
    /// Authenticated requests: throughput and latency of a protected endpoint per auth mode.
    Auth(auth::AuthArgs),
    /// One builtin step run in place: messages/s and per-message latency (scenario d).
    Step(step::StepArgs),
    /// oih against n8n and Node-RED: the same flow, the same load, side by side.
    // Boxed: by far the largest set of arguments.
    Compare(Box<compare::CompareArgs>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bus(args) => bus::run(args).await,
        Command::Step(args) => step::run(args).await,
        Command::Log(args) => log::run(args).await,
        Command::Mdr(args) => services::mdr(args).await,
        Command::Audit(args) => services::audit(args).await,
        Command::Auth(args) => auth::run(args).await,
        Command::Compare(args) => compare::run(*args).await,
    }
}
