//! OIH's webhooks service (`services/webhooks` + `lib/webhooks`, runtime.md §5): HTTP
//! requests to `/hook/{flowId}[/{suffix}]` become `flow.execute` events for the orchestrator.
//!
//! - [`store`]: `webhooks_flows` (the hookable flows) and `webhooks_idempotency`;
//! - [`events`]: the `webhooks` queue keeping `webhooks_flows` in step with the flow lifecycle;
//! - [`body`], [`xml`] and [`multipart`]: request bodies as `msg.data`, per content type as OIH;
//! - [`auth`]: per-flow authorization from `flowSettings.webhooks`;
//! - [`http`]: the routes and the `flow.execute` message;
//! - [`reply`]: synchronous replies for flows with a `webhook-reply` step.

pub mod auth;
pub mod body;
pub mod cors;
pub mod error;
pub mod events;
pub mod http;
pub mod multipart;
pub mod reply;
pub mod store;
pub mod xml;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oih_bus::{EventBus, Message, MessageBus};
use oih_http::{ErrorShape, ServiceModule, Worker};
use oih_store::DocStore;

pub use auth::{HmacVerifier, PasswordLogin};

/// The service name: event-bus queue, `serviceName` header, module name.
pub const SERVICE_NAME: &str = "webhooks";

/// Configuration, with OIH's environment variable names. The port, database and queue URLs
/// belong to `oih serve`.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "webhooks")]
pub struct Config {
    /// Largest accepted `/hook` body, as OIH writes it (`10mb`, `512kb`, `1024`); larger
    /// bodies are refused with 413.
    #[arg(long = "webhooks-payload-size-limit", env = "PAYLOAD_SIZE_LIMIT", default_value = "10mb", value_parser = parse_size)]
    pub payload_size_limit: usize,
    /// When false, flows with a `cron` (run by the scheduler) cannot be hooked.
    #[arg(long, env = "ALLOW_RUN_SCHEDULED_FLOWS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_run_scheduled_flows: bool,
    /// Header carrying the HMAC signature when the flow names none.
    #[arg(long, env = "DEFAULT_HMAC_HEADER_KEY", default_value = "x-hmac")]
    pub default_hmac_header_key: String,
    /// HMAC algorithm when the flow names none.
    #[arg(long, env = "DEFAULT_HMAC_ALGORITHM", default_value = "sha256")]
    pub default_hmac_algorithm: String,
    /// Permission a Bearer/Basic caller needs to run a flow that requires authentication.
    #[arg(
        long,
        env = "WEBHOOK_EXECUTE_PERMISSION",
        default_value = "webhooks.execute"
    )]
    pub webhook_execute_permission: String,
    /// Milliseconds every 404 waits (OIH: 1000), so flow ids cannot be probed quickly.
    #[arg(long, env = "WEBHOOKS_NOT_FOUND_DELAY_MS", default_value_t = 1000)]
    pub webhooks_not_found_delay_ms: u64,
    /// Seconds the first answer to an `Idempotency-Key` is replayed.
    #[arg(long, env = "WEBHOOKS_IDEMPOTENCY_TTL_SECS", default_value_t = 86_400)]
    pub webhooks_idempotency_ttl_secs: u32,
    /// Comma-separated origins browsers may call the hooks from; requests with any other
    /// `Origin` are refused (requests without one, from servers, are always served).
    #[arg(long, env = "CORS_ORIGIN_WHITELIST", default_value = "")]
    pub cors_origin_whitelist: String,
    /// How many lifecycle events the consumer takes from the bus before acknowledging.
    #[arg(long, env = "WEBHOOKS_EVENT_PREFETCH", default_value_t = 10)]
    pub webhooks_event_prefetch: u16,
    /// Milliseconds a caller of a flow with a `webhook-reply` step waits for the reply; then it
    /// gets `202` and the flow runs on.
    #[arg(long, env = "WEBHOOKS_REPLY_TIMEOUT_MS", default_value_t = 30_000)]
    pub webhooks_reply_timeout_ms: u64,
    /// Tells webhooks replicas apart: each has its reply queue `webhooks_replies:<id>`. Give
    /// every replica its own (for example the pod name).
    #[arg(long, env = "WEBHOOKS_INSTANCE_ID", default_value = "local")]
    pub webhooks_instance_id: String,
    /// Where the orchestrator runs in the same process and runs the flow, a caller waiting
    /// for a reply has the flow run there directly: `flow.execute` and the reply do not cross
    /// the bus. false: always through the bus, as OIH.
    #[arg(long, env = "WEBHOOKS_IN_PROCESS", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhooks_in_process: bool,
    /// Milliseconds an active flow is served from memory instead of the store. A flow
    /// stopped through another replica (or another process) may still be hooked for this
    /// long; changes seen by this replica apply at once. 0: read the store on every call.
    #[arg(long, env = "WEBHOOKS_FLOW_CACHE_MS", default_value_t = 2_000)]
    pub webhooks_flow_cache_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            payload_size_limit: oih_http::DEFAULT_BODY_LIMIT,
            allow_run_scheduled_flows: false,
            default_hmac_header_key: "x-hmac".into(),
            default_hmac_algorithm: "sha256".into(),
            webhook_execute_permission: "webhooks.execute".into(),
            webhooks_not_found_delay_ms: 1000,
            webhooks_idempotency_ttl_secs: 86_400,
            cors_origin_whitelist: String::new(),
            webhooks_event_prefetch: 10,
            webhooks_reply_timeout_ms: 30_000,
            webhooks_instance_id: "local".into(),
            webhooks_in_process: true,
            webhooks_flow_cache_ms: 2_000,
        }
    }
}

/// A size as OIH's `bytes` library reads it: a number of bytes, or a number with `b`, `kb`,
/// `mb` or `gb` (powers of 1024, case-insensitive).
fn parse_size(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (number, unit) = match lower.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => lower.split_at(at),
        None => (lower.as_str(), "b"),
    };
    let factor: f64 = match unit.trim() {
        "b" => 1.0,
        "kb" => 1024.0,
        "mb" => 1024.0 * 1024.0,
        "gb" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit {other:?}")),
    };
    let number: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a size: {text:?}"))?;
    if !number.is_finite() || number < 0.0 {
        return Err(format!("not a size: {text:?}"));
    }
    // Sizes are far below 2^52; the float keeps them exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok((number * factor).floor() as usize)
}

/// Shared infrastructure the service runs on.
#[derive(Clone)]
pub struct Deps {
    /// Document store; the service owns the `webhooks_*` collections.
    pub docs: Arc<dyn DocStore>,
    /// Message bus carrying OIH's `event-bus` exchange.
    pub bus: Arc<dyn MessageBus>,
    /// Checks HMAC signatures with the Secret Service (flows with `hmacAuthSecret`).
    pub hmac: Arc<dyn HmacVerifier>,
    /// Logs Basic credentials in with IAM; without it, Basic authorization is refused.
    pub login: Option<Arc<dyn PasswordLogin>>,
    /// The orchestrator of this process, if it runs one.
    pub in_process: Option<Arc<dyn InProcess>>,
}

/// The orchestrator of the same process, which runs a flow's execution there and then.
#[async_trait]
pub trait InProcess: Send + Sync {
    /// Runs an execution of flow `flow_id` with `msg` (`flow.execute`'s `msg`) for a caller
    /// waiting at `reply_to`, as far as its steps run in place.
    async fn execute(
        &self,
        flow_id: &str,
        msg: serde_json::Value,
        reply_to: &str,
    ) -> Result<Ran, InProcessError>;
}

/// What [`InProcess::execute`] did with a message.
#[derive(Debug)]
pub enum Ran {
    /// The execution ran: what its steps sent the caller's `reply_to`, as `(routing key,
    /// message)`, handed over once what they did is stored.
    Here(Vec<(String, Message)>),
    /// The flow does not run in this process: the message back, to be published as
    /// `flow.execute`.
    NotHere(serde_json::Value),
}

/// Why a flow could not be run in process (the store or the bus failed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InProcessError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("webhooks storage: {0}")]
    Store(#[from] oih_store::StoreError),
    #[error("webhooks event bus: {0}")]
    Bus(#[from] oih_bus::BusError),
}

/// Builds the service: declares its collections, its `webhooks` queue (so lifecycle events
/// published from now on are kept) and its reply queue, and returns the `/hook` routes and
/// the workers that keep the flow projection and hand replies to waiting callers.
pub async fn module(config: Config, deps: Deps) -> Result<ServiceModule, Error> {
    let flow_cache = Duration::from_millis(config.webhooks_flow_cache_ms);
    let store = store::Store::open(deps.docs, flow_cache).await?;
    let reply_timeout = Duration::from_millis(config.webhooks_reply_timeout_ms.max(1));
    let (replies, reply_consumer) = reply::Replies::declare(
        deps.bus.as_ref(),
        &config.webhooks_instance_id,
        reply_timeout,
    )
    .await?;
    let bus = EventBus::new(deps.bus, SERVICE_NAME).await?;
    let stream = bus
        .subscribe(events::CONSUMED, config.webhooks_event_prefetch.max(1))
        .await?;
    let consumer = events::Consumer::new(store.clone(), config.allow_run_scheduled_flows);
    let authorizer = auth::Authorizer {
        hmac: deps.hmac,
        login: deps.login,
        default_hmac_header: config.default_hmac_header_key,
        default_hmac_algorithm: config.default_hmac_algorithm,
        permission: config.webhook_execute_permission,
    };
    let state = http::AppState {
        store,
        bus,
        authorizer: Arc::new(authorizer),
        cors: cors::Cors::new(&config.cors_origin_whitelist),
        body_limit: config.payload_size_limit,
        not_found_delay: Duration::from_millis(config.webhooks_not_found_delay_ms),
        idempotency_ttl: chrono::Duration::seconds(i64::from(config.webhooks_idempotency_ttl_secs)),
        replies: replies.clone(),
        reply_timeout,
        in_process: deps.in_process.filter(|_| config.webhooks_in_process),
    };
    let worker = Worker::new("webhooks-flows", move |cancel| async move {
        stream.consume_with(consumer, cancel).await;
        Ok(())
    });
    let reply_worker = Worker::new("webhooks-replies", move |cancel| async move {
        replies.run(reply_consumer, cancel).await;
        Ok(())
    });
    Ok(
        ServiceModule::new(SERVICE_NAME, ErrorShape::Errors, http::router(state))
            .with_openapi(http::openapi())
            .with_worker(worker)
            .with_worker(reply_worker),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Config, parse_size};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn command_line_defaults_match_default() {
        let parsed = Cli::try_parse_from(["oih"]).expect("parse").config;
        let default = Config::default();
        assert_eq!(parsed.payload_size_limit, default.payload_size_limit);
        assert_eq!(
            parsed.allow_run_scheduled_flows,
            default.allow_run_scheduled_flows
        );
        assert_eq!(
            parsed.default_hmac_header_key,
            default.default_hmac_header_key
        );
        assert_eq!(
            parsed.default_hmac_algorithm,
            default.default_hmac_algorithm
        );
        assert_eq!(
            parsed.webhook_execute_permission,
            default.webhook_execute_permission
        );
        assert_eq!(
            parsed.webhooks_not_found_delay_ms,
            default.webhooks_not_found_delay_ms
        );
        assert_eq!(
            parsed.webhooks_idempotency_ttl_secs,
            default.webhooks_idempotency_ttl_secs
        );
        assert_eq!(
            parsed.webhooks_event_prefetch,
            default.webhooks_event_prefetch
        );
        assert_eq!(parsed.webhooks_in_process, default.webhooks_in_process);
        assert_eq!(
            parsed.webhooks_flow_cache_ms,
            default.webhooks_flow_cache_ms
        );
        let custom = Cli::try_parse_from(["oih", "--webhooks-payload-size-limit", "1kb"])
            .expect("parse")
            .config;
        assert_eq!(custom.payload_size_limit, 1024);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10mb"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_size("1.5KB"), Ok(1536));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5tb").is_err());
    }
}
