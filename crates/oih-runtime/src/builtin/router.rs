//! `router`: sends the message to the nodes of the first route whose JSONata condition holds
//! (or to `otherwise` when none does); the orchestrator follows only those edges.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Kind, describe, expression_schema, fields_schema};
use crate::component::{
    BuiltinComponent, ConfigError, Descriptor, Function, Step, StepContext, StepError,
};
use crate::expr::Jsonata;
use crate::message::{Emit, StepMessage};
use crate::schema;

pub(super) struct Router;

#[derive(Deserialize)]
struct Fields {
    routes: Vec<RouteFields>,
    #[serde(default)]
    otherwise: Vec<String>,
}

#[derive(Deserialize)]
struct RouteFields {
    condition: String,
    to: Vec<String>,
}

impl BuiltinComponent for Router {
    fn descriptor(&self) -> Descriptor {
        describe(
            "router",
            "Router",
            "Sends each message along the edges of the first route whose condition holds",
            Kind::Action,
            Function {
                name: "route",
                title: "Route",
                description: "Routes are tried in order; a message no route takes goes to `otherwise` (or nowhere)",
                fields: schema(),
            },
        )
    }

    fn prepare(&self, fields: &Value) -> Result<Box<dyn Step>, ConfigError> {
        let fields: Fields = schema::parse(&schema(), fields)?;
        let routes = fields
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(Route {
                    condition: Jsonata::compile(format!("routes[{i}].condition"), &r.condition)?,
                    to: r.to,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        Ok(Box::new(Routes {
            routes,
            otherwise: fields.otherwise,
        }))
    }
}

fn schema() -> Value {
    let node_ids = json!({
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "uniqueItems": true,
    });
    fields_schema(
        json!({
            "routes": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "condition": expression_schema("JSONata condition on the message data"),
                        "to": node_ids,
                    },
                    "required": ["condition", "to"],
                    "additionalProperties": false,
                },
            },
            "otherwise": node_ids,
        }),
        &["routes"],
    )
}

struct Route {
    condition: Jsonata,
    to: Vec<String>,
}

struct Routes {
    routes: Vec<Route>,
    otherwise: Vec<String>,
}

#[async_trait]
impl Step for Routes {
    fn inline(&self) -> bool {
        true
    }

    async fn process(&self, msg: StepMessage, _: &StepContext) -> Result<Vec<Emit>, StepError> {
        let mut to = &self.otherwise;
        for route in &self.routes {
            if route.condition.test(&msg.data)? {
                to = &route.to;
                break;
            }
        }
        Ok(if to.is_empty() {
            Vec::new()
        } else {
            vec![Emit::Routed {
                to: to.clone(),
                msg,
            }]
        })
    }

    fn targets(&self) -> Vec<&str> {
        let mut targets: Vec<&str> = Vec::new();
        for id in self
            .routes
            .iter()
            .flat_map(|r| &r.to)
            .chain(&self.otherwise)
        {
            if !targets.contains(&id.as_str()) {
                targets.push(id);
            }
        }
        targets
    }
}
