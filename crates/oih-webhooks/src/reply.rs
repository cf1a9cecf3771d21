//! Synchronous replies: a caller of a flow with a `webhook-reply` step waits for that step's
//! answer (Ferryman's `httpReply`, which OIH could never deliver: it set no `reply_to`).
//!
//! Each webhooks instance has a queue of its own, `webhooks_replies:<instance>`, bound to the
//! orchestrator's backchannel exchange under `webhooks.reply.<instance>.*`. A waiting request
//! registers a random key, sends `reply_to = webhooks.reply.<instance>.<key>` with
//! `flow.execute`, and is woken by the step's reply, or by the orchestrator's note that the
//! execution ended without one. Replies nobody waits for any more (timed out, or for another
//! process after a restart) are dropped; the queue's message TTL bounds what piles up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oih_bus::{BusError, ConsumeOptions, Consumer, ExchangeKind, MessageBus, QueueOptions};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// The orchestrator's backchannel exchange (runtime.md §2.1), where steps publish replies.
const BACKCHANNEL: &str = "orchestrator_backchannel";
/// Header naming the execution a synchronous answer belongs to.
pub const EXECUTION_HEADER: &str = "x-oih-execution-id";

/// What a waiting caller is woken with.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A step's `httpReply`: `{statusCode, headers, body}`.
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
        execution: Option<String>,
    },
    /// The execution ended before any step replied.
    Finished { succeeded: bool, execution: String },
}

impl Answer {
    /// Reads a message of the reply queue; `None` when it is neither shape.
    fn parse(body: &Value, execution_header: Option<&str>) -> Option<Self> {
        if let Some(finished) = body.get("executionFinished") {
            return Some(Self::Finished {
                succeeded: finished.get("status").and_then(Value::as_str) == Some("succeeded"),
                execution: finished.get("flowExecId")?.as_str()?.to_owned(),
            });
        }
        let status = body
            .get("statusCode")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(200);
        let headers = body
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self::Reply {
            status,
            headers,
            body: body.get("body").cloned().unwrap_or(Value::Null),
            execution: execution_header.map(str::to_owned),
        })
    }

    /// The stored form, replayed to repeats of an `Idempotency-Key`.
    pub fn to_stored(&self) -> Value {
        match self {
            Self::Reply {
                status,
                headers,
                body,
                execution,
            } => json!({"reply": {
                "statusCode": status,
                "headers": headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                "body": body,
                "execution": execution,
            }}),
            Self::Finished {
                succeeded,
                execution,
            } => json!({"finished": {"succeeded": succeeded, "execution": execution}}),
        }
    }

    /// The inverse of [`Answer::to_stored`]; `None` for any other stored answer.
    pub fn from_stored(stored: &Value) -> Option<Self> {
        if let Some(reply) = stored.get("reply") {
            let headers = reply
                .get("headers")?
                .as_array()?
                .iter()
                .filter_map(|pair| {
                    Some((
                        pair.get(0)?.as_str()?.to_owned(),
                        pair.get(1)?.as_str()?.to_owned(),
                    ))
                })
                .collect();
            return Some(Self::Reply {
                status: u16::try_from(reply.get("statusCode")?.as_u64()?).ok()?,
                headers,
                body: reply.get("body").cloned().unwrap_or(Value::Null),
                execution: reply
                    .get("execution")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        }
        let finished = stored.get("finished")?;
        Some(Self::Finished {
            succeeded: finished.get("succeeded")?.as_bool()?,
            execution: finished.get("execution")?.as_str()?.to_owned(),
        })
    }

    /// The HTTP response. A failure tells the caller only that the flow failed: step errors
    /// may carry internals, and a hook may be public; the flow's owners see them under
    /// `/executions`.
    pub fn into_response(self) -> Response {
        match self {
            Self::Reply {
                status,
                headers,
                body,
                execution,
            } => reply_response(status, &headers, &body, execution.as_deref()),
            Self::Finished {
                succeeded: true,
                execution,
            } => with_execution(StatusCode::NO_CONTENT.into_response(), Some(&execution)),
            Self::Finished {
                succeeded: false,
                execution,
            } => with_execution(
                (
                    StatusCode::BAD_GATEWAY,
                    axum::Json(json!({"error": "The flow failed before it replied"})),
                )
                    .into_response(),
                Some(&execution),
            ),
        }
    }
}

/// Headers a reply may not set: the server frames the response itself.
const FRAMING: &[HeaderName] = &[
    header::CONNECTION,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn reply_response(
    status: u16,
    headers: &[(String, String)],
    body: &Value,
    execution: Option<&str>,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase());
    // A text body under a non-JSON content type is sent as it is; anything else as JSON.
    let bytes = match (body, &content_type) {
        (Value::String(text), Some(ct)) if !ct.contains("json") => text.clone().into_bytes(),
        _ => serde_json::to_vec(body).unwrap_or_default(),
    };
    let mut res = Response::new(Body::from(bytes));
    *res.status_mut() = status;
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) else {
            tracing::debug!(header = %name, "reply header that is not valid HTTP skipped");
            continue;
        };
        if !FRAMING.contains(&name) {
            res.headers_mut().append(name, value);
        }
    }
    if content_type.is_none() {
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    with_execution(res, execution)
}

fn with_execution(mut res: Response, execution: Option<&str>) -> Response {
    if let Some(value) = execution.and_then(|e| HeaderValue::try_from(e).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static(EXECUTION_HEADER), value);
    }
    res
}

/// The callers waiting on this instance.
pub struct Replies {
    /// `webhooks.reply.<instance>`.
    prefix: String,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
}

/// One caller's registration; dropping it (answered, timed out, or the caller went away)
/// forgets the key.
pub struct Waiter {
    replies: Arc<Replies>,
    key: String,
    /// Where the answer should be published (`reply_to`).
    pub reply_to: String,
    pub answer: oneshot::Receiver<Answer>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.replies.lock().remove(&self.key);
    }
}

impl Replies {
    /// Declares this instance's reply queue (messages older than `ttl` are dropped) and starts
    /// consuming it. `instance` tells replicas apart; characters other than letters, digits,
    /// `-` and `_` become `-` (a dot would split the routing key).
    pub async fn declare(
        bus: &dyn MessageBus,
        instance: &str,
        ttl: Duration,
    ) -> Result<(Arc<Self>, Consumer), BusError> {
        let instance: String = instance
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let prefix = format!("webhooks.reply.{instance}");
        let queue = format!("webhooks_replies:{instance}");
        bus.declare_exchange(BACKCHANNEL, ExchangeKind::Topic)
            .await?;
        let opts = QueueOptions {
            message_ttl: Some(ttl),
            ..QueueOptions::default()
        };
        bus.declare_queue(&queue, &opts).await?;
        bus.bind_queue(&queue, BACKCHANNEL, &format!("{prefix}.*"))
            .await?;
        let consumer = bus
            .consume(&queue, ConsumeOptions { prefetch: 256 })
            .await?;
        let replies = Arc::new(Self {
            prefix,
            waiting: Mutex::new(HashMap::new()),
        });
        Ok((replies, consumer))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Answer>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a caller under a fresh key.
    pub fn wait(self: &Arc<Self>) -> Waiter {
        let key = format!("{:032x}", rand::random::<u128>());
        let (tx, rx) = oneshot::channel();
        self.lock().insert(key.clone(), tx);
        Waiter {
            replies: self.clone(),
            reply_to: format!("{}.{key}", self.prefix),
            key,
            answer: rx,
        }
    }

    /// Hands each message of the reply queue to its caller; every message is acknowledged
    /// (a reply is worth nothing once its caller is gone).
    pub async fn run(self: Arc<Self>, mut consumer: Consumer, cancel: CancellationToken) {
        loop {
            let delivery = tokio::select! {
                () = cancel.cancelled() => return,
                next = consumer.next() => match next {
                    Some(delivery) => delivery,
                    None => return,
                },
            };
            self.deliver(&delivery.routing_key, delivery.body(), delivery.headers());
            if let Err(err) = delivery.ack().await {
                tracing::warn!(error = %err, "could not acknowledge a webhook reply");
            }
        }
    }

    /// Wakes the caller waiting under `routing_key` with the answer in `body`.
    pub(crate) fn deliver(&self, routing_key: &str, body: &[u8], headers: &oih_bus::Headers) {
        let Some(key) = routing_key
            .strip_prefix(&self.prefix)
            .and_then(|k| k.strip_prefix('.'))
        else {
            return;
        };
        let Some(answer) = serde_json::from_slice::<Value>(body).ok().and_then(|body| {
            Answer::parse(&body, headers.get("flowExecId").and_then(Value::as_str))
        }) else {
            tracing::warn!(routing_key, "malformed webhook reply dropped");
            return;
        };
        // The first answer wins: a later reply, or the end note after a reply, finds no one.
        match self.lock().remove(key) {
            Some(waiting) => {
                let _ = waiting.send(answer);
            }
            None => tracing::debug!(routing_key, "reply for a caller no longer waiting"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_answers_read_back_the_same() {
        let reply = Answer::Reply {
            status: 201,
            headers: vec![("x-a".into(), "1".into())],
            body: json!({"sum": 5}),
            execution: Some("e1".into()),
        };
        assert_eq!(Answer::from_stored(&reply.to_stored()), Some(reply));
        let finished = Answer::Finished {
            succeeded: false,
            execution: "e2".into(),
        };
        assert_eq!(Answer::from_stored(&finished.to_stored()), Some(finished));
        assert_eq!(
            Answer::from_stored(&json!({"data": {"message": "thank you"}})),
            None
        );
    }

    #[test]
    fn replies_and_end_notes_are_told_apart() {
        let note = json!({"executionFinished": {"flowExecId": "e", "status": "failed"}});
        assert_eq!(
            Answer::parse(&note, None),
            Some(Answer::Finished {
                succeeded: false,
                execution: "e".into()
            })
        );
        let reply = json!({"statusCode": 202, "headers": {"a": "b", "n": 1}, "body": "x"});
        assert_eq!(
            Answer::parse(&reply, Some("e")),
            Some(Answer::Reply {
                status: 202,
                headers: vec![("a".into(), "b".into())],
                body: json!("x"),
                execution: Some("e".into()),
            })
        );
    }

    #[test]
    fn a_text_body_under_a_text_type_is_sent_raw() {
        let headers = vec![
            ("content-type".to_owned(), "text/plain".to_owned()),
            ("content-length".to_owned(), "999".to_owned()),
        ];
        let res = reply_response(200, &headers, &json!("hello"), None);
        assert_eq!(res.headers()["content-type"], "text/plain");
        assert!(
            res.headers()
                .get("content-length")
                .is_none_or(|v| v != "999")
        );
        let res = reply_response(200, &[], &json!("hello"), Some("e"));
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(res.headers()[EXECUTION_HEADER], "e");
    }
}
