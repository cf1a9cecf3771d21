//! jsonata, filter, router and splitter.

use oih_runtime::{Emit, StepMessage, run_step};
use serde_json::json;

use crate::support::{bad_field, ctx, data_of, error_of, run, step};

#[tokio::test]
async fn jsonata_replaces_the_data_and_keeps_the_rest() {
    let transform = step(
        "jsonata",
        json!({"expression": "{\"name\": first & ' ' & last, \"total\": $sum(items.price)}"}),
    );
    let mut msg = StepMessage::new(
        json!({"first": "Ada", "last": "Lovelace", "items": [{"price": 2}, {"price": 3.5}]}),
    );
    msg.metadata = json!({"source": {"name": "webhooks"}});
    msg.headers.step_id = Some("step_1".into());
    let emits = run_step(transform.as_ref(), msg, &ctx()).await;
    match &emits[..] {
        [Emit::Data(out), Emit::End] => {
            assert_eq!(out.data, json!({"name": "Ada Lovelace", "total": 5.5}));
            assert_eq!(out.metadata, json!({"source": {"name": "webhooks"}}));
            assert_eq!(out.headers.step_id.as_deref(), Some("step_1"));
        }
        other => panic!("{other:?}"),
    }
    // Nothing matched: the data becomes {}, OIH's default.
    let emits = run(
        step("jsonata", json!({"expression": "missing.field"})).as_ref(),
        json!({}),
    )
    .await;
    assert_eq!(data_of(&emits), [json!({})]);
}

#[tokio::test]
async fn jsonata_errors_fail_the_message_not_the_process() {
    let transform = step("jsonata", json!({"expression": "$error('bad input')"}));
    let message = error_of(&run(transform.as_ref(), json!({})).await);
    assert!(
        message.contains("\"expression\"") && message.contains("bad input"),
        "{message}"
    );

    let typed = step("jsonata", json!({"expression": "a + 1"}));
    let message = error_of(&run(typed.as_ref(), json!({"a": "text"})).await);
    assert!(message.contains("expression"), "{message}");
    // The same prepared step still works on good input.
    assert_eq!(
        data_of(&run(typed.as_ref(), json!({"a": 1})).await),
        [json!(2)]
    );
}

#[test]
fn jsonata_bad_config_names_the_field() {
    assert_eq!(bad_field("jsonata", json!({})), "expression");
    assert_eq!(bad_field("jsonata", json!({"expression": 3})), "expression");
    assert_eq!(
        bad_field("jsonata", json!({"expression": ""})),
        "expression"
    );
    assert_eq!(
        bad_field("jsonata", json!({"expression": "a +"})),
        "expression"
    );
    assert_eq!(
        bad_field("jsonata", json!({"expression": "a", "expresion": "b"})),
        "expresion"
    );
    assert_eq!(bad_field("jsonata", json!("not an object")), "");
}

#[tokio::test]
async fn filter_passes_only_matching_messages() {
    let filter = step("filter", json!({"condition": "amount > 100"}));
    let big = json!({"amount": 150});
    assert_eq!(data_of(&run(filter.as_ref(), big.clone()).await), [big]);
    assert!(data_of(&run(filter.as_ref(), json!({"amount": 5})).await).is_empty());
    // Undefined counts as false; non-booleans are cast as $boolean does.
    assert!(data_of(&run(filter.as_ref(), json!({})).await).is_empty());
    let cast = step("filter", json!({"condition": "tags"}));
    assert_eq!(
        data_of(&run(cast.as_ref(), json!({"tags": ["x"]})).await).len(),
        1
    );
    assert!(data_of(&run(cast.as_ref(), json!({"tags": []})).await).is_empty());
    assert!(data_of(&run(cast.as_ref(), json!({"tags": ""})).await).is_empty());
}

#[tokio::test]
async fn filter_errors_and_bad_config() {
    assert_eq!(bad_field("filter", json!({})), "condition");
    assert_eq!(bad_field("filter", json!({"condition": "(("})), "condition");
    let filter = step("filter", json!({"condition": "$number(x) > 1"}));
    let message = error_of(&run(filter.as_ref(), json!({"x": "abc"})).await);
    assert!(message.contains("condition"), "{message}");
}

fn router_fields() -> serde_json::Value {
    json!({
        "routes": [
            {"condition": "kind = 'order'", "to": ["orders"]},
            {"condition": "amount > 100", "to": ["big", "audit"]},
            {"condition": "amount > 10", "to": ["audit"]},
        ],
        "otherwise": ["rest"],
    })
}

fn routed(emits: &[Emit]) -> Vec<String> {
    match emits {
        [Emit::Routed { to, .. }, Emit::End] => to.clone(),
        [Emit::End] => Vec::new(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn router_picks_the_first_matching_route() {
    let router = step("router", router_fields());
    assert_eq!(
        routed(&run(router.as_ref(), json!({"kind": "order", "amount": 500})).await),
        ["orders"]
    );
    assert_eq!(
        routed(&run(router.as_ref(), json!({"amount": 500})).await),
        ["big", "audit"]
    );
    assert_eq!(
        routed(&run(router.as_ref(), json!({"amount": 50})).await),
        ["audit"]
    );
    assert_eq!(
        routed(&run(router.as_ref(), json!({"amount": 1})).await),
        ["rest"]
    );
    assert_eq!(router.targets(), ["orders", "big", "audit", "rest"]);

    // Without `otherwise`, a message no route takes goes nowhere.
    let strict = step(
        "router",
        json!({"routes": [{"condition": "ok", "to": ["next"]}]}),
    );
    assert!(routed(&run(strict.as_ref(), json!({"ok": false})).await).is_empty());
    let emits = run(strict.as_ref(), json!({"ok": true, "n": 1})).await;
    match &emits[..] {
        [Emit::Routed { to, msg }, Emit::End] => {
            assert_eq!(to, &["next"]);
            assert_eq!(msg.data, json!({"ok": true, "n": 1}));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn router_bad_config_and_errors() {
    assert_eq!(bad_field("router", json!({})), "routes");
    assert_eq!(bad_field("router", json!({"routes": []})), "routes");
    assert_eq!(
        bad_field("router", json!({"routes": [{"to": ["a"]}]})),
        "routes[0].condition"
    );
    assert_eq!(
        bad_field(
            "router",
            json!({"routes": [{"condition": "a", "to": ["a"]}, {"condition": "b", "to": []}]})
        ),
        "routes[1].to"
    );
    assert_eq!(
        bad_field(
            "router",
            json!({"routes": [{"condition": "a", "to": ["x"]}, {"condition": "a =", "to": ["y"]}]})
        ),
        "routes[1].condition"
    );
    assert_eq!(
        bad_field(
            "router",
            json!({"routes": [{"condition": "a", "to": ["x"]}], "otherwise": "y"})
        ),
        "otherwise"
    );
    let router = step(
        "router",
        json!({"routes": [{"condition": "$error('no')", "to": ["x"]}]}),
    );
    let message = error_of(&run(router.as_ref(), json!({})).await);
    assert!(message.contains("routes[0].condition"), "{message}");
}

#[tokio::test]
async fn splitter_emits_one_message_per_item() {
    let splitter = step("splitter", json!({"path": "order.lines"}));
    let lines = json!([{"sku": "a"}, {"sku": "b"}, 3]);
    let emits = run(splitter.as_ref(), json!({"order": {"lines": lines}})).await;
    assert_eq!(
        data_of(&emits),
        [json!({"sku": "a"}), json!({"sku": "b"}), json!(3)]
    );

    // A one-item array is still an array (JSONata would unwrap a one-item *sequence*).
    let one = run(
        splitter.as_ref(),
        json!({"order": {"lines": [{"sku": "a"}]}}),
    )
    .await;
    assert_eq!(data_of(&one), [json!({"sku": "a"})]);
    // Nothing selected, or an empty array: no messages.
    assert!(data_of(&run(splitter.as_ref(), json!({})).await).is_empty());
    assert!(data_of(&run(splitter.as_ref(), json!({"order": {"lines": []}})).await).is_empty());

    // Without a path the data itself is split.
    let whole = step("splitter", json!({}));
    assert_eq!(
        data_of(&run(whole.as_ref(), json!([1, 2])).await),
        [json!(1), json!(2)]
    );
}

#[tokio::test]
async fn splitter_on_a_non_array_is_an_error() {
    let splitter = step("splitter", json!({"path": "order"}));
    let message = error_of(&run(splitter.as_ref(), json!({"order": {"id": 1}})).await);
    assert!(
        message.contains("\"path\"") && message.contains("an object instead of an array"),
        "{message}"
    );
    let message = error_of(&run(splitter.as_ref(), json!({"order": "x"})).await);
    assert!(message.contains("a string"), "{message}");
    assert_eq!(bad_field("splitter", json!({"path": 1})), "path");
    assert_eq!(bad_field("splitter", json!({"path": "a["})), "path");
}
