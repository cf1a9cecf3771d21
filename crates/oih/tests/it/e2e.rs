//! Services working together in one hub, through the real binary: IAM issues the token, the
//! Flow Repository and the orchestrator take a flow through its lifecycle over the event bus,
//! the builtin catalogue supplies the components, a webhook call runs the flow, and the Audit
//! Log records what happened.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::hub::{ADMIN, Backend, Hub, PASSWORD, wait_execution, wait_for_hook};

#[tokio::test]
async fn a_flow_of_builtin_steps_goes_through_its_lifecycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path(), &Backend::Embedded).await;

    let flow = json!({
        "name": "e2e",
        "graph": {
            "nodes": [
                {"id": "step_1", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "step_2", "componentId": hub.builtin("jsonata").await, "function": "transform",
                 "fields": {"expression": "{\"doubled\": n * 2}"}},
                {"id": "step_3", "componentId": hub.builtin("log").await, "function": "log"}
            ],
            "edges": [{"source": "step_1", "target": "step_2"}, {"source": "step_2", "target": "step_3"}]
        }
    });
    let created = hub.post("/flows", &flow).await;
    let id = created["data"]["id"].as_str().expect("flow id").to_owned();

    // start → flow.starting → the orchestrator prepares the steps → flow.started → active
    hub.post(&format!("/flows/{id}/start"), &json!({})).await;
    hub.wait_status(&id, "active").await;
    // A call to the flow's webhook runs it: webhooks → flow.execute → orchestrator → steps.
    let hooked = wait_for_hook(&hub, &id, &json!({"n": 21})).await;
    assert_eq!(hooked["data"]["message"], "thank you", "{hooked}");
    let execution = wait_execution(&hub, &id, "succeeded").await;
    for step in ["step_1", "step_2", "step_3"] {
        assert_eq!(
            execution["steps"][step]["status"], "succeeded",
            "{execution}"
        );
    }

    // stop → flow.stopping → the orchestrator tears down → flow.stopped → inactive
    hub.post(&format!("/flows/{id}/stop"), &json!({})).await;
    hub.wait_status(&id, "inactive").await;

    // The Audit Log saw the flow repository's event, and its chain verifies.
    let logs = hub
        .get("/logs?filter%5Bname%5D=flowrepo.flow.created")
        .await;
    assert!(
        logs["data"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["payload"]["flowId"] == id.as_str()),
        "flowrepo.flow.created for {id} in {logs}"
    );
    let verify = hub.get("/logs/verify").await;
    assert!(
        verify["data"]
            .as_array()
            .expect("chains")
            .iter()
            .all(|c| c["valid"] == true),
        "{verify}"
    );
}

#[tokio::test]
async fn a_flow_with_a_bad_step_configuration_does_not_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path(), &Backend::Embedded).await;
    let flow = json!({
        "name": "broken",
        "graph": {
            "nodes": [
                {"id": "step_1", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "step_2", "componentId": hub.builtin("jsonata").await, "function": "transform",
                 "fields": {"expression": "{ unclosed"}}
            ],
            "edges": [{"source": "step_1", "target": "step_2"}]
        }
    });
    let id = hub.post("/flows", &flow).await["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    hub.post(&format!("/flows/{id}/start"), &json!({})).await;
    // flow.failed → the repository stops it → the orchestrator confirms → inactive again
    hub.wait_status(&id, "inactive").await;
}

/// OIH's schema data beside the repository, or None (with the reason printed).
fn shared_schema_data() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let (archive, models) = (data.join("oih-dev-schemas.zip"), data.join("oih-models"));
    if archive.is_file() && models.is_dir() {
        Some((archive, models))
    } else {
        eprintln!(
            "skipping: OIH's schema data is absent from {}",
            data.display()
        );
        None
    }
}

/// The Meta Data Repository holds OIH's standard models (imported with the CLI); the
/// Integration Layer Service merges two partial person records and validates the merge
/// against the person model, whose `$ref`s (to `oih-data-record.json` and the shared
/// definitions) are resolved in process.
#[tokio::test]
async fn ils_merges_partial_records_validated_against_an_imported_oih_model() {
    let Some((archive, models)) = shared_schema_data() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for source in [&archive, &models] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_oih"))
            .args(["metadata", "import"])
            .arg(source)
            .args(["--domain", "oih-standard", "--data-dir"])
            .arg(dir.path())
            .env_remove("OIH_DATABASE_URL")
            .output()
            .expect("run oih metadata import");
        assert!(out.status.success(), "{out:?}");
    }
    let (_running, hub) = Hub::start(dir.path(), &Backend::Embedded).await;

    let domains = hub.get("/api/v1/domains").await;
    let domain = domains["data"]
        .as_array()
        .expect("domains")
        .iter()
        .find(|d| d["name"] == "oih-standard")
        .and_then(|d| d["id"].as_str())
        .expect("the imported domain")
        .to_owned();
    let def = json!({"domainId": domain, "schemaUri": "Addresses/personV2.json"});
    let chunk = |payload: Value| json!({"ilaId": "contacts", "token": "compat-token", "cid": "email", "def": def, "payload": payload});

    // The CRM's half lacks `oihApplicationRecords`, which the model requires through its
    // reference to oih-data-record.json: stored, not valid.
    let first = hub
        .post(
            "/chunks",
            &chunk(json!({"email": "ann@example.com", "firstName": "Ann"})),
        )
        .await;
    assert_eq!(first["data"]["valid"], false, "{first}");
    // The other system's half, same email: merged into one record that now validates.
    let records = json!([{"applicationUid": "crm", "recordUid": "42"}]);
    let merged = hub
        .post(
            "/chunks",
            &chunk(json!({"email": "ann@example.com", "oihApplicationRecords": records})),
        )
        .await;
    assert_eq!(merged["data"]["valid"], true, "{merged}");
    assert_eq!(
        merged["data"]["payload"],
        json!({"email": "ann@example.com", "firstName": "Ann", "oihApplicationRecords": records})
    );
    let listed = hub.get("/chunks/contacts").await;
    assert_eq!(listed["meta"]["total"], 1, "{listed}");
}

#[tokio::test]
async fn a_protected_webhook_takes_basic_credentials_checked_by_iam() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path(), &Backend::Embedded).await;
    let flow = json!({
        "name": "e2e-basic",
        "flowSettings": {"webhooks": {"requireWebhookAuth": true}},
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "answer", "componentId": hub.builtin("webhook-reply").await, "function": "reply"}
            ],
            "edges": [{"source": "hook", "target": "answer"}]
        }
    });
    let created = hub.post("/flows", &flow).await;
    let id = created["data"]["id"].as_str().expect("flow id").to_owned();
    hub.post(&format!("/flows/{id}/start"), &json!({})).await;
    hub.wait_status(&id, "active").await;

    let call = |password: &'static str| {
        hub.http
            .post(format!("{}/hook/{id}", hub.base))
            .basic_auth(ADMIN, Some(password))
            .json(&json!({"n": 1}))
            .send()
    };
    // The webhooks service learns that the flow is active from the bus, a moment later.
    let deadline = Instant::now() + Duration::from_secs(10);
    let res = loop {
        let res = call(PASSWORD).await.expect("POST /hook");
        if res.status() != reqwest::StatusCode::NOT_FOUND || Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert_eq!(res.json::<Value>().await.expect("json"), json!({"n": 1}));
    let refused = call("wrong-password").await.expect("POST /hook");
    assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
}

/// A flow step's token (the `apiKey` of its `orchestratorToken`) reads its own secret, raw,
/// and nothing else of the hub.
#[tokio::test]
async fn a_step_token_reads_only_its_own_secret() {
    use oih_http::step_token::{StepGrant, StepTokens};

    const KEY: &str = "e2e-step-token-key-0123456789abcdef";
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start_with(
        dir.path(),
        &Backend::Embedded,
        &[("ORCHESTRATOR_TOKEN_SECRET", KEY)],
    )
    .await;
    let secret = |name: &str| json!({"data": {"name": name, "type": "SIMPLE", "value": {"username": "u", "passphrase": "p4ss"}}});
    let own = hub.post("/api/v1/secrets", &secret("crm")).await;
    let own = own["data"]["_id"].as_str().expect("id").to_owned();
    let other = hub.post("/api/v1/secrets", &secret("bank")).await;
    let other = other["data"]["_id"].as_str().expect("id").to_owned();
    let me = hub.get("/api/v1/users/me").await;
    let grant = |secret_id: &str| StepGrant {
        user_id: me["_id"]
            .as_str()
            .or(me["id"].as_str())
            .expect("my id")
            .to_owned(),
        tenant: me["tenant"].as_str().map(str::to_owned),
        scope: oih_core::StepScope {
            flow_id: "flow".into(),
            step_id: "step_2".into(),
            secret_id: Some(secret_id.to_owned()),
        },
    };
    let tokens = StepTokens::new(KEY.as_bytes(), Duration::from_secs(60)).expect("key");
    let step = tokens.issue(&grant(&own)).expect("sign");
    let get = |path: String, token: String| {
        hub.http
            .get(format!("{}{path}", hub.base))
            .bearer_auth(token)
            .send()
    };

    let res = get(format!("/api/v1/secrets/{own}"), step.clone())
        .await
        .expect("GET");
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert_eq!(
        body["data"]["value"]["passphrase"], "p4ss",
        "raw for its step: {body}"
    );
    for path in [
        format!("/api/v1/secrets/{other}"),
        "/api/v1/secrets".into(),
        "/flows".into(),
    ] {
        let res = get(path.clone(), step.clone()).await.expect("GET");
        assert_eq!(res.status(), reqwest::StatusCode::FORBIDDEN, "{path}");
    }
    let forged = StepTokens::new(
        b"another-key-another-key-another-key",
        Duration::from_secs(60),
    )
    .expect("key")
    .issue(&grant(&own))
    .expect("sign");
    let res = get(format!("/api/v1/secrets/{own}"), forged)
        .await
        .expect("GET");
    assert_eq!(res.status(), reqwest::StatusCode::UNAUTHORIZED);
}
