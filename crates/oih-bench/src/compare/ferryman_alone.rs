//! Scenario (d), OIH's side: the Ferryman step alone on OIH's queue topology.
//!
//! The transform component of `oih-ferryman` is started as OIH's orchestrator starts it (the
//! `ELASTICIO_*` settings, prefetch 1, `LOG_LEVEL=info`) and fed by the harness straight over
//! RabbitMQ: each input goes to the step's `flow-<id>:step_1:messages` queue with the
//! `orchestratorToken` header Ferryman reads its step from, and each output is taken from a
//! queue bound to the backchannel exchange under the output routing key. There is no
//! orchestrator and no HTTP in between, so this is as fast as any orchestrator, OIH's own
//! included, can move messages through this step: the ceiling that `oih-ferryman` is held
//! against. Loads are closed loops of a fixed number of messages in flight.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hdrhistogram::Histogram;
use oih_bus::amqp::{AmqpBus, AmqpOptions};
use oih_bus::{
    ConsumeOptions, Consumer, Delivery, ExchangeKind, Message, MessageBus, QueueOptions,
};
use serde_json::{Map, Value, json};

use super::process::Process;
use super::systems::Context;
use super::workload::{order, same};

/// The step's name in the flow the token describes.
const STEP: &str = "step_1";
/// The routing key Ferryman publishes its output under.
const OUTPUT_KEY: &str = "orchestrator_backchannel.input";
/// How long an answer may take before the run fails.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// One closed-loop load: `in_flight` messages, all rounds together.
pub struct AloneRow {
    pub in_flight: usize,
    pub delivered: u64,
    pub seconds: f64,
    pub latency_us: Histogram<u64>,
}

impl AloneRow {
    pub fn per_sec(&self) -> f64 {
        self.delivered as f64 / self.seconds.max(f64::EPSILON)
    }
}

/// What the harness declared on the broker, deleted afterwards.
struct Topology {
    exchange: String,
    backchannel: String,
    messages: String,
    outputs: String,
}

impl Topology {
    fn new() -> Self {
        let id = format!("{:x}", rand_suffix());
        let exchange = format!("flow-bench{id}");
        let backchannel = format!("bench{id}_backchannel");
        Self {
            messages: format!("{exchange}:{STEP}:messages"),
            outputs: format!("{backchannel}:outputs"),
            exchange,
            backchannel,
        }
    }

    async fn declare(&self, bus: &dyn MessageBus) -> Result<()> {
        bus.declare_exchange(&self.exchange, ExchangeKind::Topic)
            .await?;
        bus.declare_exchange(&self.backchannel, ExchangeKind::Topic)
            .await?;
        for queue in [&self.messages, &self.outputs] {
            bus.declare_queue(queue, &QueueOptions::default()).await?;
        }
        bus.bind_queue(
            &self.messages,
            &self.exchange,
            &format!("{}.{STEP}.messages", self.exchange),
        )
        .await?;
        bus.bind_queue(&self.outputs, &self.backchannel, OUTPUT_KEY)
            .await?;
        Ok(())
    }

    async fn delete(&self, bus: &dyn MessageBus) {
        for queue in [&self.messages, &self.outputs] {
            let _ = bus.delete_queue(queue).await;
        }
        for exchange in [&self.exchange, &self.backchannel] {
            let _ = bus.delete_exchange(exchange).await;
        }
    }

    /// The settings OIH's orchestrator gives a Ferryman process for this step.
    fn ferryman_env(&self, amqp_url: &str) -> Vec<(String, String)> {
        [
            ("LISTEN_MESSAGES_ON", self.messages.clone()),
            ("NODE_EXCHANGE", self.exchange.clone()),
            ("BACKCHANNEL_EXCHANGE", self.backchannel.clone()),
            ("OUTPUT_ROUTING_KEY", OUTPUT_KEY.to_owned()),
            (
                "ERROR_ROUTING_KEY",
                "orchestrator_backchannel.error".to_owned(),
            ),
            (
                "STATE_ROUTING_KEY",
                "orchestrator_backchannel.step_state".to_owned(),
            ),
            (
                "SNAPSHOT_ROUTING_KEY",
                format!("{}.{STEP}.snapshot", self.exchange),
            ),
            (
                "REBOUND_ROUTING_KEY",
                format!("{}.{STEP}.rebound", self.exchange),
            ),
            ("AMQP_URI", amqp_url.to_owned()),
            ("COMP_ID", "5f1ad0d2ad7a2a4e9fbe0001".to_owned()),
            ("API_URI", "http://127.0.0.1:9".to_owned()),
            ("RABBITMQ_PREFETCH_SAILOR", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (format!("ELASTICIO_{k}"), v))
        .chain([("LOG_LEVEL".to_owned(), "info".to_owned())])
        .collect()
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        ^ u128::from(std::process::id())
}

/// The step's token as Ferryman reads it: it decodes the claims without verifying them
/// (OIH's orchestrator signs them; the signature here is a placeholder Ferryman ignores).
fn orchestrator_token(exchange: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({
        "flowId": exchange.trim_start_matches("flow-"),
        "stepId": STEP,
        "function": "transform",
        "tenant": "oih-bench",
        "userId": "oih-bench",
        "flowExecId": "oih-bench",
        "fields": {},
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(b"not-verified-by-ferryman");
    format!("{header}.{claims}.{signature}")
}

/// The loads: closed loops of each `in_flight` count, `rounds` times for `duration` each,
/// after a `warmup`.
pub struct Loads {
    pub in_flight: Vec<usize>,
    pub warmup: Duration,
    pub duration: Duration,
    pub rounds: usize,
}

/// Runs the step alone under `loads`.
pub async fn run(ctx: &Context, component_dir: &Path, loads: &Loads) -> Result<Vec<AloneRow>> {
    let amqp_url = ctx
        .amqp_url
        .as_deref()
        .context("the Ferryman step alone needs --amqp-url")?;
    let bus = AmqpBus::connect(
        amqp_url,
        AmqpOptions {
            connection_name: "oih-bench ferryman-alone".into(),
            ..AmqpOptions::default()
        },
    )
    .await?;
    let topology = Topology::new();
    topology.declare(bus.as_ref()).await?;
    let mut command = Command::new("node");
    command
        .arg(ctx.peers.ferryman()?)
        .current_dir(component_dir)
        .envs(topology.ferryman_env(amqp_url));
    let outcome = measure(&bus, &topology, command, loads).await;
    topology.delete(bus.as_ref()).await;
    bus.close().await;
    outcome
}

/// Starts Ferryman with `command`, checks its first answer, then measures it under `loads`.
async fn measure(
    bus: &Arc<AmqpBus>,
    topology: &Topology,
    command: Command,
    loads: &Loads,
) -> Result<Vec<AloneRow>> {
    let logs = tempfile::Builder::new()
        .prefix("oih-bench-ferryman-")
        .tempdir()?;
    let mut ferryman = Process::spawn(command, &logs.path().join("ferryman.log"))?;
    let outputs = bus
        .consume(&topology.outputs, ConsumeOptions { prefetch: 256 })
        .await?;
    let mut feeder = Feeder::new(bus.clone(), topology, outputs);
    // The first answer: Ferryman is up and transforms right. Its queue holds the input until
    // it has started.
    feeder.send().await?;
    let started = Instant::now();
    let first = loop {
        ferryman.check_alive()?;
        ensure!(
            started.elapsed() < ANSWER_WITHIN,
            "no answer from the Ferryman step within {ANSWER_WITHIN:?} (log: {})",
            ferryman.log.display()
        );
        let next = tokio::time::timeout(Duration::from_secs(1), feeder.outputs.next()).await;
        if let Ok(delivery) = next {
            break delivery.context("the output consumer ended")?;
        }
    };
    feeder.check(first).await?;
    println!(
        "ferryman-alone: first right answer {} ms after start",
        ferryman.started.elapsed().as_millis()
    );
    let mut rows = Vec::new();
    for &n in &loads.in_flight {
        feeder.closed_loop(n, loads.warmup).await?;
        let mut row = AloneRow {
            in_flight: n,
            delivered: 0,
            seconds: 0.0,
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
        };
        for round in 1..=loads.rounds {
            let (delivered, seconds, latency) = feeder.closed_loop(n, loads.duration).await?;
            println!(
                "ferryman-alone {n} in flight, round {round}: {:.0} msg/s, p99 {:.2} ms",
                delivered as f64 / seconds,
                latency.value_at_quantile(0.99) as f64 / 1000.0
            );
            row.delivered += delivered;
            row.seconds += seconds;
            row.latency_us.add(&latency)?;
        }
        rows.push(row);
        ferryman.check_alive()?;
    }
    Ok(rows)
}

/// Publishes orders to the step and matches its outputs to them by order id.
struct Feeder {
    bus: Arc<AmqpBus>,
    exchange: String,
    routing_key: String,
    token: String,
    /// Sent and not yet answered: order id → (when sent, the expected output).
    pending: HashMap<u64, (Instant, Map<String, Value>)>,
    outputs: Consumer,
    next: usize,
}

impl Feeder {
    fn new(bus: Arc<AmqpBus>, topology: &Topology, outputs: Consumer) -> Self {
        Self {
            bus,
            routing_key: format!("{}.{STEP}.messages", topology.exchange),
            token: orchestrator_token(&topology.exchange),
            exchange: topology.exchange.clone(),
            pending: HashMap::new(),
            outputs,
            next: 1,
        }
    }

    /// Sends the next order as OIH's orchestrator would send a step its input.
    async fn send(&mut self) -> Result<()> {
        let n = self.next;
        self.next += 1;
        let (input, expected) = order(n);
        let body = json!({"data": input, "metadata": {}});
        let mut message = Message::new(serde_json::to_vec(&body)?);
        message.properties.content_type = Some("text/json".into());
        let headers = &mut message.properties.headers;
        headers.insert("orchestratorToken".into(), json!(self.token));
        headers.insert("threadId".into(), json!(format!("thread-{n}")));
        headers.insert("messageId".into(), json!(format!("message-{n}")));
        self.pending.insert(n as u64, (Instant::now(), expected));
        self.bus
            .publish(&self.exchange, &self.routing_key, message)
            .await?;
        Ok(())
    }

    /// Waits for the next output, checks it against what was sent, and returns its latency.
    async fn receive(&mut self, within: Duration) -> Result<Duration> {
        let delivery = tokio::time::timeout(within, self.outputs.next())
            .await
            .context("no output in time")?
            .context("the output consumer ended")?;
        self.check(delivery).await
    }

    async fn check(&mut self, delivery: Delivery) -> Result<Duration> {
        let body: Value = serde_json::from_slice(delivery.body()).context("output JSON")?;
        delivery.ack().await?;
        let Some(Value::Object(data)) = body.get("data") else {
            bail!("an output without data: {body}");
        };
        let id = data
            .get("orderId")
            .and_then(Value::as_u64)
            .with_context(|| format!("an output without an orderId: {body}"))?;
        let (sent, expected) = self
            .pending
            .remove(&id)
            .with_context(|| format!("an output for an order not sent: {id}"))?;
        ensure!(
            same(&expected, data),
            "wrong output for order {id}: {body} (expected {expected:?})"
        );
        Ok(sent.elapsed())
    }

    /// Keeps `n` messages in flight for `duration`: (answered, seconds, latencies in µs).
    async fn closed_loop(
        &mut self,
        n: usize,
        duration: Duration,
    ) -> Result<(u64, f64, Histogram<u64>)> {
        let mut latency = Histogram::new_with_bounds(1, 600_000_000, 3)?;
        self.pending.clear();
        let start = Instant::now();
        let mut delivered = 0u64;
        while start.elapsed() < duration {
            while self.pending.len() < n {
                self.send().await?;
            }
            let took = self.receive(ANSWER_WITHIN).await?;
            latency.record(took.as_micros().max(1) as u64)?;
            delivered += 1;
        }
        let seconds = start.elapsed().as_secs_f64();
        // Let the rest come back so that the next load starts empty.
        while !self.pending.is_empty() {
            self.receive(ANSWER_WITHIN).await?;
        }
        Ok((delivered, seconds, latency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_carries_the_step_ferryman_reads() {
        let topology = Topology::new();
        let token = orchestrator_token(&topology.exchange);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "header.claims.signature");
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64url"))
                .expect("JSON claims");
        assert_eq!(claims["stepId"], STEP);
        assert_eq!(claims["function"], "transform");
        assert_eq!(
            format!("flow-{}", claims["flowId"].as_str().expect("a flow id")),
            topology.exchange
        );
    }

    #[test]
    fn ferryman_gets_every_setting_it_requires_pointing_at_this_topology() {
        let topology = Topology::new();
        let env: HashMap<String, String> = topology
            .ferryman_env("amqp://guest:guest@127.0.0.1:5672/%2f")
            .into_iter()
            .collect();
        // Ferryman's settings.js refuses to start without these.
        for required in [
            "COMP_ID",
            "API_URI",
            "AMQP_URI",
            "LISTEN_MESSAGES_ON",
            "BACKCHANNEL_EXCHANGE",
            "NODE_EXCHANGE",
            "OUTPUT_ROUTING_KEY",
            "REBOUND_ROUTING_KEY",
        ] {
            assert!(
                env.contains_key(&format!("ELASTICIO_{required}")),
                "{required}"
            );
        }
        assert_eq!(env["ELASTICIO_LISTEN_MESSAGES_ON"], topology.messages);
        assert_eq!(env["ELASTICIO_BACKCHANNEL_EXCHANGE"], topology.backchannel);
        assert_eq!(env["ELASTICIO_RABBITMQ_PREFETCH_SAILOR"], "1");
        assert_ne!(
            Topology::new().messages,
            topology.messages,
            "each run has its own queues"
        );
    }
}
