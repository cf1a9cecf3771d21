//! Scenario (b)'s sink: the HTTP server that the asynchronous flows' last step POSTs each
//! result to, and the ledger of the results it awaits.
//!
//! The load generator writes a sequence number (`seq`) into every body and notes the send
//! time here before sending; the flow carries `seq` into its result. An arrival is checked in
//! full against the body its `seq` was sent with, and its end-to-end latency (send → arrival)
//! recorded. Each system gets its own sink, so whatever arrives there is that system's doing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use hdrhistogram::Histogram;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::workload::{Case, cases, same};

/// How many error descriptions a tally keeps.
const SAMPLES: usize = 5;

/// What arrived at the sink (and what did not) since the last [`Ledger::settle`].
#[derive(Clone)]
pub struct Tally {
    /// Results that arrived right, once.
    pub delivered: u64,
    /// Accepted orders the filter drops (orderId a multiple of 10): awaited nowhere.
    pub expected_dropped: u64,
    /// Accepted kept orders whose result had not arrived when the drain period ended.
    pub lost: u64,
    /// Arrivals that are not the result of an awaited body: wrong fields, a dropped order, a
    /// duplicate, a late one already counted lost, or no `seq`.
    pub wrong: u64,
    /// Microseconds from sending the body to its result's arrival, right results only.
    pub e2e_us: Histogram<u64>,
    pub last_arrival: Option<Instant>,
    pub samples: Vec<String>,
}

impl Tally {
    fn new() -> Result<Self> {
        Ok(Self {
            delivered: 0,
            expected_dropped: 0,
            lost: 0,
            wrong: 0,
            // 1 µs .. 10 min, 3 significant digits, as the answer latencies.
            e2e_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            last_arrival: None,
            samples: Vec::new(),
        })
    }

    fn note(&mut self, sample: impl FnOnce() -> String) {
        if self.samples.len() < SAMPLES {
            self.samples.push(sample());
        }
    }

    /// An empty tally (its histogram's bounds kept).
    fn fresh(&self) -> Self {
        let mut e2e_us = self.e2e_us.clone();
        e2e_us.reset();
        Self {
            delivered: 0,
            expected_dropped: 0,
            lost: 0,
            wrong: 0,
            e2e_us,
            last_arrival: None,
            samples: Vec::new(),
        }
    }
}

struct Books {
    /// Kept orders sent and not yet arrived, with their send time.
    awaited: HashMap<u64, Instant>,
    /// Orders sent that the filter must drop: their arrival is wrong.
    dropped: HashSet<u64>,
    tally: Tally,
}

/// The results one system's sink awaits.
pub struct Ledger {
    cases: Vec<Case>,
    books: Mutex<Books>,
}

impl Ledger {
    fn new() -> Result<Self> {
        Ok(Self {
            cases: cases(),
            books: Mutex::new(Books {
                awaited: HashMap::new(),
                dropped: HashSet::new(),
                tally: Tally::new()?,
            }),
        })
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The body sent with `seq`: the bodies cycle in order.
    pub fn case(&self, seq: u64) -> &Case {
        &self.cases[(seq % self.cases.len() as u64) as usize]
    }

    /// How many distinct bodies there are.
    pub fn case_count(&self) -> usize {
        self.cases.len()
    }

    pub fn is_kept(&self, seq: u64) -> bool {
        self.case(seq).expected.is_some()
    }

    /// `seq` is about to be sent.
    pub fn expect(&self, seq: u64, sent: Instant) {
        let kept = self.is_kept(seq);
        let mut books = self.books();
        if kept {
            books.awaited.insert(seq, sent);
        } else {
            books.dropped.insert(seq);
        }
    }

    /// The system accepted `seq` (a 2xx).
    pub fn accepted(&self, seq: u64) {
        if !self.is_kept(seq) {
            self.books().tally.expected_dropped += 1;
        }
    }

    /// The system refused `seq` or gave no answer: nothing of it is awaited.
    pub fn forget(&self, seq: u64) {
        let mut books = self.books();
        books.awaited.remove(&seq);
        books.dropped.remove(&seq);
    }

    /// One result arrived at `at`.
    fn arrive(&self, body: &[u8], at: Instant) {
        let parsed = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(record)) => Some(record),
            _ => None,
        };
        let seq = parsed.as_ref().and_then(|r| r.get("seq")).and_then(as_seq);
        let mut books = self.books();
        let (Some(mut record), Some(seq)) = (parsed, seq) else {
            books.tally.wrong += 1;
            books
                .tally
                .note(|| format!("not a result with a seq: {}", String::from_utf8_lossy(body)));
            return;
        };
        record.remove("seq");
        let case = self.case(seq);
        let verdict = match (books.awaited.remove(&seq), &case.expected) {
            (Some(sent), Some(want)) if same(want, &record) => Ok(sent),
            (Some(_), Some(want)) => Err(format!("seq {seq}: expected {}", show(want))),
            (None, _) if books.dropped.contains(&seq) => {
                Err(format!("seq {seq}: the filter should have dropped it"))
            }
            _ => Err(format!(
                "seq {seq}: not awaited (refused, delivered before, or counted lost)"
            )),
        };
        let tally = &mut books.tally;
        match verdict {
            Ok(sent) => {
                tally.delivered += 1;
                let us = u64::try_from(at.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
                tally.e2e_us.saturating_record(us.max(1));
                tally.last_arrival = Some(tally.last_arrival.map_or(at, |last| last.max(at)));
            }
            Err(why) => {
                tally.wrong += 1;
                tally.note(|| format!("{why}, got {}", String::from_utf8_lossy(body)));
            }
        }
    }

    /// Waits until `done` holds (polled every few ms) or `limit` passes; whether it held.
    async fn wait_until(&self, limit: Duration, done: impl Fn(&Books) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.books()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Whether `seq`'s result arrives within `limit`.
    pub async fn arrives(&self, seq: u64, limit: Duration) -> bool {
        self.wait_until(limit, |books| !books.awaited.contains_key(&seq))
            .await
    }

    /// Waits for every awaited result for as long as results keep arriving (a backlog is
    /// worked off, however long it takes) and up to `drain` after the last one came; counts
    /// the rest lost (a later arrival of one is then wrong), and returns the tally since the
    /// last call.
    pub async fn settle(&self, drain: Duration) -> Tally {
        let mut waiting = self.books().awaited.len();
        while waiting > 0 {
            let arrived = self
                .wait_until(drain, |books| books.awaited.len() < waiting)
                .await;
            if !arrived {
                break;
            }
            waiting = self.books().awaited.len();
        }
        let mut books = self.books();
        let mut lost: Vec<u64> = books.awaited.drain().map(|(seq, _)| seq).collect();
        lost.sort_unstable();
        let fresh = books.tally.fresh();
        let mut tally = std::mem::replace(&mut books.tally, fresh);
        tally.lost = lost.len() as u64;
        if !lost.is_empty() {
            let first: Vec<String> = lost.iter().take(10).map(u64::to_string).collect();
            tally.note(|| {
                format!(
                    "{} results missing, none arriving for {drain:?}, seq {} …",
                    lost.len(),
                    first.join(", ")
                )
            });
        }
        tally
    }
}

/// A `seq` as any engine writes it (`7` or `7.0`).
fn as_seq(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f as u64)
    })
}

fn show(map: &Map<String, Value>) -> String {
    Value::Object(map.clone()).to_string()
}

/// One system's sink, listening on 127.0.0.1 at a free port until dropped.
pub struct Sink {
    pub url: String,
    pub ledger: Arc<Ledger>,
    stop: CancellationToken,
}

impl Sink {
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/sink", listener.local_addr()?);
        let ledger = Arc::new(Ledger::new()?);
        let router = Router::new()
            .route("/sink", post(arrive))
            .with_state(ledger.clone());
        let stop = CancellationToken::new();
        let server =
            axum::serve(listener, router).with_graceful_shutdown(stop.clone().cancelled_owned());
        tokio::spawn(async move {
            if let Err(e) = server.await {
                println!("the sink stopped: {e}");
            }
        });
        Ok(Self { url, ledger, stop })
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Answers `{}` (every system's HTTP step takes a JSON answer as success).
async fn arrive(State(ledger): State<Arc<Ledger>>, body: Bytes) -> axum::Json<Value> {
    ledger.arrive(&body, Instant::now());
    axum::Json(Value::Object(Map::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(seq: u64, order: u64, customer: &str, total: f64) -> Vec<u8> {
        json!({"seq": seq, "orderId": order, "customer": customer, "total": total})
            .to_string()
            .into_bytes()
    }

    #[tokio::test]
    async fn right_results_are_delivered_and_everything_else_is_lost_or_wrong() {
        let ledger = Ledger::new().expect("ledger");
        let t0 = Instant::now();
        // seq 6 is the 7th body (order 7), seq 9 order 10 (dropped), seq 106 order 7 again.
        for seq in [6, 9, 106, 107, 108] {
            ledger.expect(seq, t0);
            ledger.accepted(seq);
        }
        ledger.expect(200, t0);
        ledger.forget(200);
        let later = t0 + Duration::from_millis(3);
        ledger.arrive(&result(6, 7, "Edsger Hopper", 7.75), later);
        ledger.arrive(&result(6, 7, "Edsger Hopper", 7.75), later);
        ledger.arrive(&result(106, 7, "Edsger Hopper", 9.0), later);
        ledger.arrive(&result(9, 10, "Alan Hopper", 0.0), later);
        ledger.arrive(br#"{"orderId": 8}"#, later);
        ledger.arrive(&result(200, 1, "Grace Hopper", 1.25), later);

        let tally = ledger.settle(Duration::ZERO).await;
        assert_eq!(tally.delivered, 1);
        assert_eq!(tally.expected_dropped, 1);
        // 107 and 108 never came; 106 came wrong, so it is not awaited any more.
        assert_eq!(tally.lost, 2);
        // A duplicate, wrong fields, a dropped order, no seq, a refused body.
        assert_eq!(tally.wrong, 5);
        assert_eq!(tally.e2e_us.max() / 1000, 3);
        assert_eq!(tally.last_arrival, Some(later));

        let next = ledger.settle(Duration::ZERO).await;
        assert_eq!((next.delivered, next.lost, next.wrong), (0, 0, 0));
        ledger.arrive(&result(107, 8, "Ada Turing", 1.0), later);
        let late = ledger.settle(Duration::ZERO).await;
        assert_eq!(late.wrong, 1, "a result counted lost that arrives late");
    }

    #[tokio::test]
    async fn the_sink_records_what_is_posted_to_it() {
        let sink = Sink::start().await.expect("sink");
        sink.ledger.expect(0, Instant::now());
        sink.ledger.accepted(0);
        let res = reqwest::Client::new()
            .post(&sink.url)
            .header("content-type", "application/json")
            .body(result(0, 1, "Grace Hopper", 2.5))
            .send()
            .await
            .expect("post");
        assert!(res.status().is_success());
        assert!(sink.ledger.arrives(0, Duration::from_secs(5)).await);
        let tally = sink.ledger.settle(Duration::ZERO).await;
        assert_eq!(
            (tally.delivered, tally.wrong),
            (1, 0),
            "{:?}",
            tally.samples
        );
    }
}
