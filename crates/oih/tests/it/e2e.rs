//! Services working together in one hub, through the real binary: IAM issues the token, the
//! Flow Repository and the orchestrator take a flow through its lifecycle over the event bus,
//! the builtin catalogue supplies the components, a webhook call runs the flow, and the Audit
//! Log records what happened.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Running, start, wait_healthy};

const ADMIN: &str = "admin@example.com";
const PASSWORD: &str = "e2e-admin-password";

struct Hub {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Hub {
    /// The hub on `data_dir`, healthy, with the admin logged in.
    async fn start(data_dir: &std::path::Path) -> (Running, Hub) {
        Self::start_with(data_dir, &[]).await
    }

    /// As [`Hub::start`], with more environment.
    async fn start_with(data_dir: &std::path::Path, extra: &[(&str, &str)]) -> (Running, Hub) {
        let mut env = vec![
            ("IAM_ACC_ADMIN_USERNAME", ADMIN),
            ("IAM_ACC_ADMIN_PASSWORD", PASSWORD),
        ];
        env.extend_from_slice(extra);
        let (running, base) = start(data_dir, &env);
        wait_healthy(&base).await;
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{base}/login"))
            .json(&json!({"username": ADMIN, "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("json");
        let token = login["token"].as_str().expect("a token").to_owned();
        (running, Hub { base, http, token })
    }

    async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.expect("json")
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST");
        assert!(res.status().is_success(), "POST {path}: {}", res.status());
        res.json().await.expect("json")
    }

    /// The id of the builtin component with this distribution name.
    async fn builtin(&self, name: &str) -> String {
        let list = self.get("/components?page%5Bsize%5D=100").await;
        list["data"]
            .as_array()
            .expect("components")
            .iter()
            .find(|c| c["distribution"]["name"] == name)
            .and_then(|c| c["id"].as_str())
            .unwrap_or_else(|| panic!("builtin {name} is listed"))
            .to_owned()
    }

    /// Polls the flow until its status is `want` (at most 10 s).
    async fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let flow = self.get(&format!("/flows/{id}")).await;
            if flow["data"]["status"] == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "flow stayed {} instead of {want}",
                flow["data"]["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Posts to `/hook/{flow}` until the webhooks service has seen the flow become active (it
/// learns that from the bus, a moment after the flow repository does).
async fn wait_for_hook(hub: &Hub, flow: &str, body: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = hub
            .http
            .post(format!("{}/hook/{flow}", hub.base))
            .json(body)
            .send()
            .await
            .expect("POST /hook");
        if res.status().is_success() {
            return res.json().await.expect("json");
        }
        assert!(
            Instant::now() < deadline,
            "the webhook still answers {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the flow's executions until the newest has `status` (at most 10 s); returns it.
async fn wait_execution(hub: &Hub, flow: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = hub
            .get(&format!("/executions?filter%5BflowId%5D={flow}"))
            .await;
        if let Some(newest) = list["data"].as_array().and_then(|a| a.first())
            && newest["status"] == status
        {
            return newest.clone();
        }
        assert!(Instant::now() < deadline, "no {status} execution: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_flow_of_builtin_steps_goes_through_its_lifecycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path()).await;

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
    let (_running, hub) = Hub::start(dir.path()).await;
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
    let (_running, hub) = Hub::start(dir.path()).await;

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
async fn a_webhook_caller_gets_the_flows_reply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path()).await;
    let flow = json!({
        "name": "e2e-reply",
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "shape", "componentId": hub.builtin("jsonata").await, "function": "transform",
                 "fields": {"expression": "{\"name\": first & \" \" & last, \"total\": price * qty}"}},
                {"id": "big", "componentId": hub.builtin("filter").await, "function": "filter",
                 "fields": {"condition": "total >= 10"}},
                {"id": "answer", "componentId": hub.builtin("webhook-reply").await, "function": "reply",
                 "fields": {"statusCode": 201}}
            ],
            "edges": [
                {"source": "hook", "target": "shape"},
                {"source": "shape", "target": "big"},
                {"source": "big", "target": "answer"}
            ]
        }
    });
    let created = hub.post("/flows", &flow).await;
    let id = created["data"]["id"].as_str().expect("flow id").to_owned();
    hub.post(&format!("/flows/{id}/start"), &json!({})).await;
    hub.wait_status(&id, "active").await;

    let order = json!({"first": "Ada", "last": "Lovelace", "price": 4, "qty": 3});
    let replied = wait_for_hook(&hub, &id, &order).await;
    assert_eq!(replied, json!({"name": "Ada Lovelace", "total": 12}));

    // Filtered out before the reply step: the caller hears that the execution ended.
    let res = hub
        .http
        .post(format!("{}/hook/{id}", hub.base))
        .json(&json!({"first": "A", "last": "B", "price": 1, "qty": 1}))
        .send()
        .await
        .expect("POST /hook");
    assert_eq!(res.status(), reqwest::StatusCode::NO_CONTENT);
    let execution = res.headers()["x-oih-execution-id"]
        .to_str()
        .expect("execution id")
        .to_owned();
    let record = hub.get(&format!("/executions/{execution}")).await;
    assert_eq!(record["data"]["status"], "succeeded", "{record}");
}

#[tokio::test]
async fn a_protected_webhook_takes_basic_credentials_checked_by_iam() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start(dir.path()).await;
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

/// A 2xx from a hook means the message is kept: the hub killed while a step works on it
/// finishes the execution after a restart (the step's input is delivered again).
#[tokio::test]
async fn an_execution_cut_by_a_crash_finishes_after_the_restart() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let remote = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"stored": true}))
                .set_delay(Duration::from_secs(2)),
        )
        .mount(&remote)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut running, hub) = Hub::start(dir.path()).await;
    let flow = json!({
        "name": "e2e-crash",
        "graph": {
            "nodes": [
                {"id": "hook", "componentId": hub.builtin("webhook").await, "function": "receive"},
                {"id": "call", "componentId": hub.builtin("http-request").await, "function": "request",
                 "fields": {"method": "POST", "url": format!("'{}/orders'", remote.uri()), "timeout": 10000}},
                {"id": "done", "componentId": hub.builtin("log").await, "function": "log"}
            ],
            "edges": [{"source": "hook", "target": "call"}, {"source": "call", "target": "done"}]
        }
    });
    let created = hub.post("/flows", &flow).await;
    let id = created["data"]["id"].as_str().expect("flow id").to_owned();
    hub.post(&format!("/flows/{id}/start"), &json!({})).await;
    hub.wait_status(&id, "active").await;
    wait_for_hook(&hub, &id, &json!({"order": 7})).await;

    // Kill the hub while the remote call is in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while remote
        .received_requests()
        .await
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the step never called out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.0.kill().expect("SIGKILL");
    running.0.wait().expect("reaped");
    drop(running);

    let (_running, hub) = Hub::start(dir.path()).await;
    let execution = wait_execution(&hub, &id, "succeeded").await;
    assert_eq!(
        execution["steps"]["done"]["status"], "succeeded",
        "{execution}"
    );
    let calls = remote.received_requests().await.unwrap_or_default();
    assert!(
        calls.len() >= 2,
        "the step ran again: {} calls",
        calls.len()
    );
}

/// A flow step's token (the `apiKey` of its `orchestratorToken`) reads its own secret, raw,
/// and nothing else of the hub.
#[tokio::test]
async fn a_step_token_reads_only_its_own_secret() {
    use oih_http::step_token::{StepGrant, StepTokens};

    const KEY: &str = "e2e-step-token-key-0123456789abcdef";
    let dir = tempfile::tempdir().expect("tempdir");
    let (_running, hub) = Hub::start_with(dir.path(), &[("ORCHESTRATOR_TOKEN_SECRET", KEY)]).await;
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
