//! `oih serve --help` documents every flag with its environment variable.

use std::process::Command;

/// The help text's entries, one per flag: the flag's line and the lines describing it.
fn help_entries(help: &str) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        let starts_flag = line.trim_start().starts_with('-') && (1..=6).contains(&indent);
        if starts_flag {
            entries.push(line.to_owned());
        } else if indent == 0 && !line.is_empty() {
            // A heading ("Options:", a service's section) ends the entry before it.
            entries.push(String::new());
        } else if let Some(entry) = entries.last_mut()
            && !entry.is_empty()
        {
            entry.push('\n');
            entry.push_str(line);
        }
    }
    entries.retain(|e| !e.is_empty());
    entries
}

/// Every flag `oih serve --help` shows names the environment variable that sets it (the
/// unit test `cli::tests::every_serve_flag_has_an_env_var` checks the same on clap's model).
#[test]
fn serve_help_names_every_env_var() {
    let out = Command::new(env!("CARGO_BIN_EXE_oih"))
        .args(["serve", "--help"])
        .output()
        .expect("run oih");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let entries = help_entries(&help);
    assert!(
        entries.len() > 20,
        "only {} flags in:\n{help}",
        entries.len()
    );
    let missing: Vec<&str> = entries
        .iter()
        .filter(|e| !e.contains("[env: "))
        .map(|e| e.lines().next().unwrap_or_default().trim())
        .filter(|flag| !flag.ends_with("--help"))
        .collect();
    assert!(
        missing.is_empty(),
        "flags without an env var: {missing:#?}\nin:\n{help}"
    );
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

/// `oih --help` runs and lists every subcommand with what it does.
#[test]
fn top_level_help_lists_the_subcommands() {
    let out = Command::new(env!("CARGO_BIN_EXE_oih"))
        .arg("--help")
        .output()
        .expect("run oih");
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for command in [
        "serve",
        "secrets",
        "metadata",
        "login",
        "iam",
        "flow",
        "component",
        "help",
    ] {
        assert!(
            listed.contains(&command),
            "{command} missing from {listed:?} in:\n{help}"
        );
    }
    assert!(help.contains("Usage: oih"), "{help}");
    assert!(help.contains("Run the hub"), "describes serve:\n{help}");
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
