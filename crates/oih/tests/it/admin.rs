//! The maintenance commands against a real data directory: `oih secrets …`, `oih metadata import`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `oih <args>` with a clean environment for the settings these commands read.
fn oih(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oih"));
    cmd.args(args);
    for var in [
        "OIH_MASTER_KEY",
        "CRYPTO_KEY",
        "OIH_MASTER_KEY_FILE",
        "OIH_DATABASE_URL",
        "OIH_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run oih")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One secret as OIH's secret-service stored it: `createCipher('aes-256-cbc', 'oih-crypto-key')`
/// of "bob" and "hunter2" (latin1), produced with Node 20 (see crates/oih-secrets/tests/it/legacy.rs).
fn oih_export() -> String {
    let latin1 = |hex: &str| -> String {
        (0..hex.len())
            .step_by(2)
            .map(|i| char::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_default()))
            .collect()
    };
    serde_json::json!({
        "_id": {"$oid": "5f6a7b8c9d0e1f2a3b4c5d01"}, "type": "SIMPLE", "name": "db",
        "owners": [{"id": "u1", "type": "USER"}],
        "value": {"username": latin1("0855abfa58ea306ceb34d4976ec75d0e"), "passphrase": latin1("4e9e8dd74f6b026d1736086bcf35f361")},
        "encryptedFields": ["username", "passphrase"]
    })
    .to_string()
}

#[test]
fn secrets_import_from_oih_then_reencrypt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let export = dir.path().join("secrets.json");
    std::fs::write(&export, oih_export()).expect("write export");
    let data_arg = data.to_str().expect("utf8 path");
    let export_arg = export.to_str().expect("utf8 path");
    let key = [("CRYPTO_KEY", "oih-crypto-key")];

    let first = oih(
        &[
            "secrets",
            "import-oih",
            "--secrets",
            export_arg,
            "--data-dir",
            data_arg,
        ],
        &key,
    );
    assert!(first.status.success(), "{first:?}");
    assert!(
        stdout(&first).contains("secrets: 1 imported, 0 already present, 0 failed"),
        "{}",
        stdout(&first)
    );

    let again = oih(
        &[
            "secrets",
            "import-oih",
            "--secrets",
            export_arg,
            "--data-dir",
            data_arg,
        ],
        &key,
    );
    assert!(again.status.success(), "{again:?}");
    assert!(
        stdout(&again).contains("secrets: 0 imported, 1 already present"),
        "{}",
        stdout(&again)
    );

    let reencrypted = oih(
        &[
            "secrets",
            "reencrypt",
            "--rotate-data-keys",
            "--data-dir",
            data_arg,
        ],
        &key,
    );
    assert!(reencrypted.status.success(), "{reencrypted:?}");
    assert!(
        stdout(&reencrypted).contains("re-encrypted 1 secrets"),
        "{}",
        stdout(&reencrypted)
    );

    // Another master key cannot open the store: the command fails instead of corrupting it.
    let wrong = oih(
        &["secrets", "reencrypt", "--data-dir", data_arg],
        &[("OIH_MASTER_KEY", "not-the-key-at-all")],
    );
    assert!(
        !wrong.status.success(),
        "a wrong master key must be refused"
    );
}

#[test]
fn secrets_import_needs_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = oih(
        &[
            "secrets",
            "import-oih",
            "--data-dir",
            dir.path().to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(!out.status.success());
}

/// OIH's dev schema archive and its standard models, or None (with the reason printed).
fn shared_data() -> Option<(PathBuf, PathBuf)> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
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

/// `oih metadata import <path> --domain oih-standard`; returns stdout after checking success.
fn import(path: &Path, data: &Path) -> String {
    let args = [
        "metadata",
        "import",
        path.to_str().expect("utf8 path"),
        "--domain",
        "oih-standard",
        "--data-dir",
        data.to_str().expect("utf8 path"),
    ];
    let out = oih(&args, &[]);
    assert!(out.status.success(), "{out:?}");
    stdout(&out)
}

fn imported_count(text: &str) -> usize {
    text.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("imported <n> schemas")
}

#[test]
fn metadata_import_of_the_oih_archive_then_the_standard_models() {
    let Some((archive, models)) = shared_data() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // The archive holds oih-data-record.json, which the standard models reference: as in
    // OIH's own setup, it goes in first.
    let first = import(&archive, &data);
    assert!(first.contains("into domain oih-standard"), "{first}");
    assert!(imported_count(&first) >= 10, "{first}");
    let second = import(&models, &data);
    assert!(
        imported_count(&second) >= 10,
        "the standard models hold more than ten schemas: {second}"
    );
    assert!(second.contains("personV2"), "{second}");
}
