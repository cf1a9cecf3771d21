//! webhook-reply.

use oih_runtime::{Emit, StepMessage, run_step};
use serde_json::{Value, json};

use crate::support::{bad_field, ctx, error_of, run, step};

fn reply_of(emits: &[Emit]) -> (u16, Vec<(String, String)>, Value, Value) {
    match emits {
        [
            Emit::Reply {
                status,
                headers,
                body,
            },
            Emit::Data(msg),
            Emit::End,
        ] => (*status, headers.clone(), body.clone(), msg.data.clone()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn defaults_answer_200_with_the_data_as_json_and_pass_the_message_on() {
    let reply = step("webhook-reply", json!({}));
    let mut msg = StepMessage::new(json!({"id": 7}));
    msg.headers.reply_to = Some("webhooks.reply.abc".into());
    let emits = run_step(reply.as_ref(), msg, &ctx()).await;
    let (status, headers, body, data) = reply_of(&emits);
    assert_eq!(status, 200);
    assert_eq!(
        headers,
        [("content-type".to_owned(), "application/json".to_owned())]
    );
    assert_eq!(body, json!({"id": 7}));
    assert_eq!(data, json!({"id": 7}));
}

#[tokio::test]
async fn status_headers_and_body_come_from_the_fields() {
    let reply = step(
        "webhook-reply",
        json!({
            "statusCode": 201,
            "headers": {"Content-Type": "'text/plain'", "X-Order": "$string(id)", "X-Missing": "nothing"},
            "body": "'created ' & $string(id)",
        }),
    );
    let (status, headers, body, _) = reply_of(&run(reply.as_ref(), json!({"id": 7})).await);
    assert_eq!(status, 201);
    assert_eq!(
        headers,
        [
            ("Content-Type".to_owned(), "text/plain".to_owned()),
            ("X-Order".to_owned(), "7".to_owned())
        ]
    );
    assert_eq!(body, json!("created 7"));

    let computed = step("webhook-reply", json!({"statusCode": "ok ? 200 : 422"}));
    assert_eq!(
        reply_of(&run(computed.as_ref(), json!({"ok": false})).await).0,
        422
    );
    assert_eq!(
        reply_of(&run(computed.as_ref(), json!({"ok": true})).await).0,
        200
    );
}

#[tokio::test]
async fn bad_results_and_bad_config() {
    let computed = step("webhook-reply", json!({"statusCode": "code"}));
    let message = error_of(&run(computed.as_ref(), json!({"code": 42})).await);
    assert!(message.contains("statusCode"), "{message}");
    let message = error_of(&run(computed.as_ref(), json!({})).await);
    assert!(message.contains("statusCode"), "{message}");
    let headers = step("webhook-reply", json!({"headers": {"x-a": "obj"}}));
    let message = error_of(&run(headers.as_ref(), json!({"obj": {"a": 1}})).await);
    assert!(message.contains("headers.x-a"), "{message}");

    assert_eq!(
        bad_field("webhook-reply", json!({"statusCode": 99})),
        "statusCode"
    );
    assert_eq!(
        bad_field("webhook-reply", json!({"statusCode": 600})),
        "statusCode"
    );
    assert_eq!(
        bad_field("webhook-reply", json!({"statusCode": "(("})),
        "statusCode"
    );
    assert_eq!(
        bad_field("webhook-reply", json!({"headers": {"x": 1}})),
        "headers.x"
    );
    assert_eq!(bad_field("webhook-reply", json!({"body": "{"})), "body");
}
