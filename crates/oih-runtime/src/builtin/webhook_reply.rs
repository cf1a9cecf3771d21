//! `webhook-reply`: answers the webhook call that started the execution (Ferryman's
//! `httpReply`, runtime.md §4.6; OIH could never deliver it, quirk 12) and hands the message on,
//! so steps after the reply still run.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Kind, describe, expression_schema, fields_schema, headers_schema};
use crate::component::{
    BuiltinComponent, ConfigError, Descriptor, Function, Step, StepContext, StepError,
};
use crate::expr::{HeaderExprs, Jsonata};
use crate::message::{Emit, StepMessage};
use crate::schema;

pub(super) struct WebhookReply;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    status_code: Option<StatusField>,
    #[serde(default)]
    headers: Map<String, Value>,
    body: Option<String>,
}

/// A fixed status, or an expression computing it.
#[derive(Deserialize)]
#[serde(untagged)]
enum StatusField {
    Fixed(u16),
    Expression(String),
}

impl BuiltinComponent for WebhookReply {
    fn descriptor(&self) -> Descriptor {
        describe(
            "webhook-reply",
            "Webhook reply",
            "Answers the webhook call that started the flow execution",
            Kind::Action,
            Function {
                name: "reply",
                title: "Reply",
                description: "Sends the status, headers and body back to the waiting caller, then passes the message on",
                fields: schema(),
            },
        )
    }

    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
        let fields: Fields = schema::parse(&schema(), fields)?;
        let status = match fields.status_code {
            None => Status::Fixed(DEFAULT_STATUS),
            Some(StatusField::Fixed(code)) => Status::Fixed(code),
            Some(StatusField::Expression(source)) => {
                Status::Computed(Jsonata::compile("statusCode", &source)?)
            }
        };
        Ok(Box::new(Reply {
            status,
            headers: HeaderExprs::compile("headers", &fields.headers)?,
            body: fields
                .body
                .map(|source| Jsonata::compile("body", &source))
                .transpose()?,
        }))
    }
}

const DEFAULT_STATUS: u16 = 200;

fn schema() -> Value {
    fields_schema(
        json!({
            "statusCode": {
                "oneOf": [
                    {"type": "integer", "minimum": 100, "maximum": 599},
                    expression_schema("JSONata expression giving the status code"),
                ],
                "description": "HTTP status of the reply (default 200)",
            },
            "headers": headers_schema("Reply headers: name → JSONata expression (default content-type: application/json)"),
            "body": expression_schema("JSONata expression giving the reply body (default: the message data)"),
        }),
        &[],
    )
}

enum Status {
    Fixed(u16),
    Computed(Jsonata),
}

struct Reply {
    status: Status,
    headers: HeaderExprs,
    body: Option<Jsonata>,
}

impl Reply {
    fn status(&self, data: &Value) -> Result<u16, StepError> {
        let expr = match &self.status {
            Status::Fixed(code) => return Ok(*code),
            Status::Computed(expr) => expr,
        };
        expr.evaluate(data)?
            .and_then(|v| v.as_u64())
            .and_then(|code| u16::try_from(code).ok())
            .filter(|code| (100..=599).contains(code))
            .ok_or_else(|| expr.bad_result("must give an HTTP status code (100 to 599)"))
    }
}

#[async_trait]
impl Step for Reply {
    fn inline(&self) -> bool {
        true
    }

    async fn process(&self, msg: StepMessage, _: &StepContext) -> Result<Vec<Emit>, StepError> {
        let status = self.status(&msg.data)?;
        let mut headers = self.headers.evaluate(&msg.data)?;
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
        }
        let body = match &self.body {
            None => msg.data.clone(),
            // An undefined body is an empty JSON body, `null`.
            Some(expr) => expr.evaluate(&msg.data)?.unwrap_or(Value::Null),
        };
        Ok(vec![
            Emit::Reply {
                status,
                headers,
                body,
            },
            Emit::Data(msg),
        ])
    }

    fn replies(&self) -> bool {
        true
    }
}
