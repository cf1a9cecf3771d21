//! The `orchestratorToken` header of a step input (runtime.md §2.5), which Ferryman needs on
//! every message. OIH signs it with a default key (`foo`), never lets it expire and puts the
//! flow starter's long-lived IAM token into its `apiKey`. Here it is signed with the hub's
//! step-token key, expires, and its `apiKey` is a step token that reaches only the node's
//! own secret and snapshots (`oih_http::step_token`).

use oih_core::StepScope;
use oih_http::step_token::{StepGrant, StepTokens};
use serde_json::{Map, Value, json};

use crate::model::{Flow, Node};

/// The token for one input of `node` in execution `flow_exec_id`.
pub fn orchestrator_token(
    tokens: &StepTokens,
    flow: &Flow,
    node: &Node,
    flow_exec_id: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let user_id = flow.started_by.clone().unwrap_or_default();
    let api_key = tokens.issue(&StepGrant {
        user_id: user_id.clone(),
        tenant: flow.tenant.clone(),
        scope: StepScope {
            flow_id: flow.id.clone(),
            step_id: node.id.clone(),
            secret_id: node.credentials_id.clone(),
        },
    })?;
    let or_empty = |v: &Value| {
        if v.is_null() { json!({}) } else { v.clone() }
    };
    let mut claims = Map::new();
    claims.insert("flowId".into(), json!(flow.id));
    claims.insert("stepId".into(), json!(node.id));
    claims.insert("userId".into(), json!(user_id));
    claims.insert("function".into(), json!(node.function));
    claims.insert("flowExecId".into(), json!(flow_exec_id));
    claims.insert("secretId".into(), json!(node.credentials_id));
    claims.insert("fields".into(), or_empty(&node.fields));
    claims.insert("apiKey".into(), json!(api_key));
    claims.insert("nodeSettings".into(), or_empty(&node.node_settings));
    if let Some(tenant) = &flow.tenant {
        claims.insert("tenant".into(), json!(tenant));
    }
    tokens.sign_orchestrator_token(claims)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_token_carries_oihs_claims_and_a_scoped_api_key() {
        let tokens = StepTokens::new(b"test-key-test-key-test-key-test!", Duration::from_secs(60))
            .expect("key");
        let flow: Flow = serde_json::from_value(json!({
            "id": "f1", "tenant": "t1", "startedBy": "u1",
            "graph": {"nodes": [{"id": "s1", "componentId": "c", "function": "act",
                                 "credentials_id": "sec1", "fields": {"a": 1}}]},
        }))
        .expect("flow");
        let token = orchestrator_token(&tokens, &flow, &flow.graph.nodes[0], "x1").expect("sign");
        // Ferryman decodes without verifying: read the payload the same way.
        let payload = token.split('.').nth(1).expect("payload");
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .expect("base64"),
        )
        .expect("json");
        assert_eq!(claims["flowId"], "f1");
        assert_eq!(claims["stepId"], "s1");
        assert_eq!(claims["userId"], "u1");
        assert_eq!(claims["function"], "act");
        assert_eq!(claims["flowExecId"], "x1");
        assert_eq!(claims["secretId"], "sec1");
        assert_eq!(claims["fields"], json!({"a": 1}));
        assert_eq!(claims["nodeSettings"], json!({}));
        assert_eq!(claims["tenant"], "t1");
        assert!(claims["exp"].as_i64() > claims["iat"].as_i64());
        let step = tokens
            .verify(claims["apiKey"].as_str().expect("apiKey"))
            .expect("the apiKey is a valid step token");
        assert_eq!(step.sub, "u1");
        let scope = step.step.expect("scoped");
        assert_eq!(
            (
                scope.flow_id.as_str(),
                scope.step_id.as_str(),
                scope.secret_id.as_deref()
            ),
            ("f1", "s1", Some("sec1"))
        );
        assert!(tokens.verify(&token).is_none(), "not a bearer token");
    }
}
