//! The load generator every system gets: bodies made by a [`Script`], POSTed as JSON over
//! kept-alive HTTP/1.1 connections, spread over the flows' URLs in turn when there are several.
//!
//! - closed loop: `concurrency` clients each send their next request as soon as the previous
//!   answer is read, for `duration`;
//! - open loop: requests start at a fixed rate whatever the answers do, at most `max_in_flight`
//!   at a time (a request that would exceed it is not sent and counts as an error); latency is
//!   measured from the moment the request was due, so a stalled system cannot hide its queue
//!   (no coordinated omission).
//!
//! An answer counts as an error if it does not arrive within the timeout or if the script
//! rejects it (scenario (a): the wrong kind of status for its body, see [`Case::status_ok`];
//! bodies are checked in full by [`Generator::verify`]; scenario (b): anything but a 2xx).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;

use super::workload::{Case, Replies};

/// What a load sends and how it judges each answer.
pub trait Script: Send + Sync + 'static {
    /// Ties one request's answer to its body.
    type Ticket: Send;
    /// The body of the `k`th request of a run, made right before it is sent.
    fn body(&self, k: usize) -> (String, Self::Ticket);
    /// Ok if the answer (status and body, or the transport error) is right under load.
    fn settle(
        &self,
        ticket: Self::Ticket,
        answer: Result<(u16, &[u8]), String>,
    ) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Mode {
    Closed { concurrency: usize },
    Open { rate: u64, max_in_flight: usize },
}

/// What one run of the load generator measured.
pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// Microseconds, successful requests only.
    pub latency_us: Histogram<u64>,
    /// The first few error descriptions, for the log.
    pub error_samples: Vec<String>,
}

impl Outcome {
    pub(super) fn empty() -> Result<Self> {
        Ok(Self {
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            // 1 µs .. 10 min, 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            error_samples: Vec::new(),
        })
    }

    fn merge(&mut self, other: Self) -> Result<()> {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latency_us.add(&other.latency_us)?;
        for e in other.error_samples {
            self.note_error(e);
        }
        Ok(())
    }

    fn note_error(&mut self, error: String) {
        if self.error_samples.len() < 5 {
            self.error_samples.push(error);
        }
    }

    fn record(&mut self, result: Result<(), String>, latency: Duration) {
        match result {
            Ok(()) => {
                self.ok += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency_us.saturating_record(us.max(1));
            }
            Err(e) => {
                self.errors += 1;
                self.note_error(e);
            }
        }
    }

    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

pub struct Generator<S> {
    client: reqwest::Client,
    script: Arc<S>,
    timeout: Duration,
}

impl<S: Script> Generator<S> {
    pub fn new(script: S, timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            // Node.js closes a keep-alive connection idle for 5 s; a pooled one older than
            // that would fail the first request after a pause (the systems take turns).
            .pool_idle_timeout(Duration::from_secs(2))
            .timeout(timeout)
            .build()?;
        Ok(Self {
            client,
            script: Arc::new(script),
            timeout,
        })
    }

    /// A generator with another script on the same connection pool and timeout.
    pub fn with_script<T: Script>(&self, script: T) -> Generator<T> {
        Generator {
            client: self.client.clone(),
            script: Arc::new(script),
            timeout: self.timeout,
        }
    }

    pub fn script(&self) -> &S {
        &self.script
    }

    /// One request, judged by the script.
    pub async fn once(&self, url: &str, k: usize) -> Result<(), String> {
        Self::attempt(&self.client, url, &self.script, k).await
    }

    async fn attempt(
        client: &reqwest::Client,
        url: &str,
        script: &S,
        k: usize,
    ) -> Result<(), String> {
        let (body, ticket) = script.body(k);
        match post(client, url, body).await {
            Ok((status, body)) => script.settle(ticket, Ok((status, &body))),
            Err(e) => script.settle(ticket, Err(e.to_string())),
        }
    }

    pub async fn run(&self, urls: &[String], mode: Mode, duration: Duration) -> Result<Outcome> {
        if urls.is_empty() {
            bail!("no flow to load");
        }
        let urls = Arc::new(urls.to_vec());
        match mode {
            Mode::Closed { concurrency } => self.closed(urls, concurrency, duration).await,
            Mode::Open {
                rate,
                max_in_flight,
            } => self.open(urls, rate, max_in_flight, duration).await,
        }
    }

    async fn closed(
        &self,
        urls: Arc<Vec<String>>,
        concurrency: usize,
        duration: Duration,
    ) -> Result<Outcome> {
        let next = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let deadline = start + duration;
        let mut tasks = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let (client, script, next) = (self.client.clone(), self.script.clone(), next.clone());
            let urls = urls.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Outcome::empty()?;
                while Instant::now() < deadline {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let sent = Instant::now();
                    let result = Self::attempt(&client, &urls[k % urls.len()], &script, k).await;
                    out.record(result, sent.elapsed());
                }
                anyhow::Ok(out)
            }));
        }
        let mut total = Outcome::empty()?;
        for task in tasks {
            total.merge(task.await??)?;
        }
        total.elapsed = start.elapsed();
        Ok(total)
    }

    async fn open(
        &self,
        urls: Arc<Vec<String>>,
        rate: u64,
        max_in_flight: usize,
        duration: Duration,
    ) -> Result<Outcome> {
        if rate == 0 {
            bail!("an open-loop rate must be positive");
        }
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let total_requests = (duration.as_secs_f64() * rate as f64).round() as u64;
        let slots = Arc::new(Semaphore::new(max_in_flight));
        let shed = Arc::new(AtomicU64::new(0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        for k in 0..total_requests {
            let due = start + interval.mul_f64(k as f64);
            tokio::time::sleep_until(due.into()).await;
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                shed.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let (client, script, tx) = (self.client.clone(), self.script.clone(), tx.clone());
            let urls = urls.clone();
            tokio::spawn(async move {
                let k = k as usize;
                let result = Self::attempt(&client, &urls[k % urls.len()], &script, k).await;
                let _ = tx.send((result, due.elapsed()));
                drop(permit);
            });
        }
        drop(tx);
        let mut out = Outcome::empty()?;
        // Every sent request ends within the client's timeout.
        let drain = tokio::time::timeout(self.timeout + Duration::from_secs(5), async {
            while let Some((result, latency)) = rx.recv().await {
                out.record(result, latency);
            }
        })
        .await;
        if drain.is_err() {
            bail!("open loop: answers still missing after the timeout");
        }
        let shed = shed.load(Ordering::Relaxed);
        if shed > 0 {
            out.errors += shed;
            out.note_error(format!(
                "{shed} requests not sent: {max_in_flight} already in flight"
            ));
        }
        // Throughput over the time the requests were due, not the tail of the last answers.
        out.elapsed = duration;
        Ok(out)
    }
}

impl Generator<Replies> {
    pub fn cases(&self) -> &[Case] {
        self.script.cases()
    }

    /// Sends every body once to the first flow and one body to each other flow, and checks
    /// each answer in full; the first wrong answer fails.
    pub async fn verify(&self, urls: &[String]) -> Result<()> {
        let (first, others) = urls.split_first().context("no flow to verify")?;
        let every_body = self.cases().iter().map(|case| (first, case));
        let each_flow = others.iter().map(|url| (url, &self.cases()[0]));
        for (url, case) in every_body.chain(each_flow) {
            self.try_once(url, case)
                .await
                .with_context(|| format!("{url}: answer to {}", case.body))?;
        }
        Ok(())
    }

    /// One request with the full check of its answer.
    pub async fn try_once(&self, url: &str, case: &Case) -> Result<()> {
        let (status, body) = post(&self.client, url, case.body.clone()).await?;
        case.check(status, &body).map_err(anyhow::Error::msg)
    }
}

/// POSTs `body` as JSON; the answer's status and body.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
) -> Result<(u16, axum::body::Bytes), reqwest::Error> {
    let res = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let status = res.status().as_u16();
    Ok((status, res.bytes().await?))
}
