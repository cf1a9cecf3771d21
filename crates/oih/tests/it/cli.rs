//! `oih serve --help` documents every flag with its environment variable.

use std::process::Command;

#[test]
fn serve_help_names_every_env_var() {
    let out = Command::new(env!("CARGO_BIN_EXE_oih"))
        .args(["serve", "--help"])
        .output()
        .expect("run oih");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "OIH_LISTEN",
        "PORT",
        "OIH_DATA_DIR",
        "OIH_DATABASE_URL",
        "OIH_AMQP_URL",
        "RABBITMQ_URI",
        "OIH_ONLY",
        "OIH_BODY_LIMIT",
        "OIH_LOG_FORMAT",
        "OIH_SHUTDOWN_GRACE",
        "RUST_LOG",
        "flow-repository",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[test]
fn unknown_service_is_rejected() {
    let out = Command::new(env!("CARGO_BIN_EXE_oih"))
        .args(["serve", "--only", "flows"])
        .output()
        .expect("run oih");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("flow-repository"),
        "lists the valid names: {err}"
    );
}
