//! The wire shape of step messages.

use oih_runtime::{StepMessage, WebhookRequest};
use serde_json::json;

#[test]
fn a_plain_body_reads_with_defaults_and_writes_back_in_oih_shape() {
    let msg: StepMessage = serde_json::from_value(json!({"data": {"a": 1}})).expect("reads");
    assert_eq!(msg.data, json!({"a": 1}));
    assert_eq!(msg.request, None);
    assert_eq!(
        serde_json::to_value(&msg).expect("writes"),
        json!({"data": {"a": 1}, "attachments": {}, "metadata": {}, "passthrough": {}})
    );
    let empty: StepMessage = serde_json::from_value(json!({})).expect("reads");
    assert_eq!(empty.data, json!({}));
}

#[test]
fn a_webhook_body_keeps_the_request_fields() {
    let body = json!({
        "data": {"x": 1},
        "attachments": {},
        "metadata": {"source": {"name": "webhooks"}},
        "passthrough": {},
        "method": "POST",
        "headers": {"content-type": "application/json"},
        "params": {"id": "f1"},
        "query": {"q": "1"},
        "url": "/hook/f1?q=1",
        "originalUrl": "/hook/f1?q=1",
        "pathSuffix": "",
    });
    let msg: StepMessage = serde_json::from_value(body.clone()).expect("reads");
    let request = msg.request.clone().expect("has the request");
    assert_eq!(
        request,
        WebhookRequest {
            method: "POST".into(),
            headers: json!({"content-type": "application/json"})
                .as_object()
                .cloned()
                .expect("object"),
            params: json!({"id": "f1"}).as_object().cloned().expect("object"),
            query: json!({"q": "1"}).as_object().cloned().expect("object"),
            url: "/hook/f1?q=1".into(),
            original_url: "/hook/f1?q=1".into(),
            path_suffix: String::new(),
        }
    );
    assert_eq!(serde_json::to_value(&msg).expect("writes"), body);
}

#[test]
fn headers_use_oih_names_and_stay_out_of_the_body() {
    let mut msg = StepMessage::new(json!(1));
    msg.headers.task_id = Some("flow".into());
    msg.headers.reply_to = Some("reply.q".into());
    msg.headers.flow_exec_id = Some("e1".into());
    assert!(
        serde_json::to_value(&msg)
            .expect("writes")
            .get("taskId")
            .is_none()
    );
    assert_eq!(
        serde_json::to_value(&msg.headers).expect("writes"),
        json!({"taskId": "flow", "flowExecId": "e1", "reply_to": "reply.q"})
    );
}
