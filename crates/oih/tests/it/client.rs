//! The client commands (`oih login`, `iam`, `flow`, `component`) against a real hub.

use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::support::{start, wait_healthy};

const ADMIN: &str = "admin@example.com";
const ADMIN_PASSWORD: &str = "client-test-admin-pw";

/// Runs `oih <args>` with the hub URL in OIH_URL (and no token from the environment).
fn oih(base: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oih"))
        .args(args)
        .env("OIH_URL", base)
        .env_remove("OIH_TOKEN")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run oih")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `oih <args>` must succeed; returns its stdout.
fn ok(base: &str, args: &[&str]) -> String {
    let out = oih(base, args);
    assert!(
        out.status.success(),
        "oih {args:?} failed: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    stdout(&out)
}

/// `oih <args>` must fail; returns its stderr.
fn fails(base: &str, args: &[&str]) -> String {
    let out = oih(base, args);
    assert!(
        !out.status.success(),
        "oih {args:?} succeeded: {}",
        stdout(&out)
    );
    stderr(&out)
}

fn json_out(base: &str, args: &[&str]) -> Value {
    let out = ok(base, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

#[tokio::test]
async fn client_commands_drive_a_running_hub() {
    let data = tempfile::tempdir().expect("tempdir");
    let (_running, base) = start(
        data.path(),
        &[
            ("IAM_ACC_ADMIN_USERNAME", ADMIN),
            ("IAM_ACC_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    );
    wait_healthy(&base).await;
    let base = base.as_str();

    // login prints the token alone.
    let token = ok(
        base,
        &["login", "--username", ADMIN, "--password", ADMIN_PASSWORD],
    )
    .trim()
    .to_owned();
    assert!(!token.is_empty() && !token.contains(char::is_whitespace));
    let wrong = fails(base, &["login", "--username", ADMIN, "--password", "nope"]);
    assert!(wrong.contains("401"), "{wrong}");
    let t = token.as_str();

    // Builtin components are listed; their ids feed the flow.
    let table = ok(base, &["component", "list", "--token", t]);
    let header = table.lines().next().expect("header");
    assert!(
        header.starts_with("ID") && header.contains("NAME"),
        "{table}"
    );
    assert!(table.contains("builtin:jsonata"), "{table}");
    let components = json_out(base, &["component", "list", "--token", t, "-o", "json"]);
    let jsonata = components
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["distribution"]["name"] == "jsonata")
        .unwrap_or_else(|| panic!("no jsonata in {components}"));
    let jsonata_id = jsonata["id"].as_str().expect("id");

    // flow apply without an id creates.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("flow.json");
    let mut flow = json!({
        "name": "client test flow",
        "graph": {
            "nodes": [{"id": "step_1", "componentId": jsonata_id, "function": "transform",
                       "fields": {"expression": "$"}}],
            "edges": []
        }
    });
    std::fs::write(&file, flow.to_string()).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let flow_id = ok(base, &["flow", "apply", "-f", path, "--token", t])
        .trim()
        .to_owned();
    assert_eq!(flow_id.len(), 24, "{flow_id}");
    let f = flow_id.as_str();

    let table = ok(base, &["flow", "list", "--token", t]);
    let row = table
        .lines()
        .find(|l| l.starts_with(f))
        .unwrap_or_else(|| panic!("{f} not in\n{table}"));
    assert!(
        row.contains("client test flow") && row.contains("inactive"),
        "{row}"
    );
    let flows = json_out(base, &["flow", "list", "--token", t, "--output", "json"]);
    assert!(
        flows
            .as_array()
            .expect("array")
            .iter()
            .any(|x| x["id"] == f),
        "{flows}"
    );

    // With its id and a new name, apply updates the same flow.
    flow["id"] = json!(f);
    flow["name"] = json!("renamed flow");
    std::fs::write(&file, flow.to_string()).expect("write");
    let out = oih(base, &["flow", "apply", "-f", path, "--token", t]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), f);
    assert!(stderr(&out).contains("updated"), "{}", stderr(&out));
    // An unknown id creates a new flow.
    flow["id"] = json!("0123456789abcdef01234567");
    std::fs::write(&file, flow.to_string()).expect("write");
    let other = ok(base, &["flow", "apply", "-f", path, "--token", t]);
    assert_ne!(other.trim(), f);

    let shown = ok(base, &["flow", "get", f, "--token", t]);
    assert!(shown.contains(&format!("id: {f}\n")), "{shown}");
    assert!(shown.contains("name: renamed flow\n"), "{shown}");
    assert!(shown.contains("status: inactive\n"), "{shown}");
    let got = json_out(base, &["flow", "get", f, "--token", t, "-o", "json"]);
    assert_eq!(got["name"], "renamed flow");
    assert_eq!(got["graph"]["nodes"][0]["componentId"], jsonata_id);

    // start is accepted. What follows depends on the orchestrator, so stop may be accepted
    // or refused with the API's 409; stopping a flow that never started is always refused.
    let started = ok(base, &["flow", "start", f, "--token", t]);
    assert!(started.contains(&format!("id: {f}\n")), "{started}");
    assert!(started.contains("status: starting\n"), "{started}");
    let out = oih(base, &["flow", "stop", f, "--token", t]);
    if out.status.success() {
        assert!(
            stdout(&out).contains("status: stopping"),
            "{}",
            stdout(&out)
        );
    } else {
        let err = stderr(&out);
        assert!(
            err.starts_with("error: Flow ") && err.contains("409"),
            "{err}"
        );
    }
    let refused = fails(base, &["flow", "stop", other.trim(), "--token", t]);
    assert_eq!(
        refused.trim(),
        "error: Flow is already inactive (409 Conflict)",
        "{refused}"
    );

    // component apply creates, then updates with the id.
    let file = dir.path().join("component.json");
    let mut component = json!({
        "name": "client test component",
        "distribution": {"type": "docker", "image": "example/component:1"}
    });
    std::fs::write(&file, component.to_string()).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let component_id = ok(base, &["component", "apply", "-f", path, "--token", t])
        .trim()
        .to_owned();
    assert_eq!(component_id.len(), 24, "{component_id}");
    component["id"] = json!(component_id);
    component["description"] = json!("now described");
    std::fs::write(&file, component.to_string()).expect("write");
    let saved = json_out(
        base,
        &["component", "apply", "-f", path, "--token", t, "-o", "json"],
    );
    assert_eq!(saved["id"], json!(component_id));
    assert_eq!(saved["description"], "now described");
    let table = ok(base, &["component", "list", "--token", t]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&component_id) && l.contains("docker:example/component:1")),
        "{table}"
    );

    // iam: a new account can log in, and gets a token minted by the admin.
    let user_id = ok(
        base,
        &[
            "iam",
            "create-user",
            "--username",
            "someone@example.com",
            "--password",
            "someone-pw",
            "--firstname",
            "Some",
            "--lastname",
            "One",
            "--token",
            t,
        ],
    )
    .trim()
    .to_owned();
    assert_eq!(user_id.len(), 24, "{user_id}");
    let user_token = ok(
        base,
        &[
            "login",
            "--username",
            "someone@example.com",
            "--password",
            "someone-pw",
        ],
    );
    assert!(!user_token.trim().is_empty());
    let minted = ok(
        base,
        &[
            "iam",
            "create-token",
            "--account-id",
            &user_id,
            "--expires-in",
            "1h",
            "--token",
            t,
        ],
    );
    assert!(!minted.trim().is_empty());
    let persistent = json_out(
        base,
        &[
            "iam",
            "create-token",
            "--account-id",
            &user_id,
            "--expires-in",
            "-1",
            "--token",
            t,
            "-o",
            "json",
        ],
    );
    assert!(persistent["token"].is_string(), "{persistent}");

    // Errors: a wrong token, a missing token, an unreachable hub.
    let denied = fails(base, &["flow", "list", "--token", "not-a-token"]);
    assert!(denied.contains("401"), "{denied}");
    assert!(denied.starts_with("error: "), "{denied}");
    let missing = fails(base, &["flow", "list"]);
    assert!(missing.contains("OIH_TOKEN"), "{missing}");
    let down = fails(
        base,
        &["flow", "list", "--token", t, "--url", "http://127.0.0.1:1"],
    );
    assert!(
        down.contains("cannot connect to the hub at http://127.0.0.1:1"),
        "{down}"
    );
}
