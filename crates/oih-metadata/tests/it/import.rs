//! `POST /api/v1/domains/{id}/schemas/import`: archives, limits and bad input. A failed import
//! creates nothing.

use axum::http::StatusCode;
use serde_json::json;

use crate::engines;
use crate::support::{Hub, message, schema_id, schema_path, tgz_of, zip_of};

engines!(
    zip_import_resolves_relative_refs,
    tgz_import,
    missing_or_unsupported_file_is_refused,
    unsafe_paths_are_refused,
    oversize_archive_is_refused,
    bad_files_abort_the_whole_import,
    cyclic_refs_in_an_archive_are_refused,
    import_permissions,
);

const SHARED: &[u8] =
    br#"{"$schema": "http://json-schema.org/draft-07/schema#", "$id": "https://github.com/x/shared.json", "definitions": {"S": {"type": "string"}}}"#;
const USES_SHARED: &[u8] = br#"{"$id": "https://github.com/x/a/uses.json", "type": "object", "properties": {"s": {"$ref": "../shared.json#/definitions/S"}}}"#;

async fn count(hub: &Hub, domain: &str) -> u64 {
    let (_, list) = hub
        .get(&format!("/api/v1/domains/{domain}/schemas"), "admin")
        .await;
    list["meta"]["total"].as_u64().expect("total")
}

async fn zip_import_resolves_relative_refs(mut hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let zip = zip_of(&[
        ("shared.json", SHARED),
        ("a/uses.json", USES_SHARED),
        ("a/readme.txt", b"not a schema"),
    ]);
    let (status, body) = hub.upload(&d, "user1", "archive", "models.zip", &zip).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().expect("created").len(), 2);
    hub.expect_event("metadata.schema.created").await;
    let (status, uses) = hub.get(&schema_path(&d, "a/uses.json"), "user3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(uses["data"]["value"]["$id"], schema_id(&d, "a/uses.json"));
    assert_eq!(
        uses["data"]["value"]["properties"]["s"]["$ref"],
        format!("{}#/definitions/S", schema_id(&d, "shared.json"))
    );
    assert_eq!(
        uses["data"]["refs"],
        json!([schema_path(&d, "shared.json")])
    );
    assert_eq!(
        uses["data"]["owners"],
        json!([{"id": "u1", "type": "USER"}])
    );
    let url = format!("{}/validate", schema_path(&d, "a/uses.json"));
    let (_, res) = hub.post(&url, "user1", json!({"s": 1})).await;
    assert_eq!(res["data"]["errors"][0]["instancePath"], "/s", "{res}");
    // Importing the same set again collides with what exists: nothing is added.
    let (status, body) = hub.upload(&d, "user1", "archive", "models.zip", &zip).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("already exists"), "{body}");
    assert_eq!(count(&hub, &d).await, 2);
}

async fn tgz_import(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let tgz = tgz_of(&[("./shared.json", SHARED), ("./a/uses.json", USES_SHARED)]);
    for name in ["models.tgz", "models.tar.gz"] {
        let d = if name == "models.tgz" {
            d.clone()
        } else {
            hub.domain("user1", "d2").await
        };
        let (status, body) = hub.upload(&d, "user1", "archive", name, &tgz).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(count(&hub, &d).await, 2);
    }
}

async fn missing_or_unsupported_file_is_refused(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let zip = zip_of(&[("shared.json", SHARED)]);
    let (status, body) = hub.upload(&d, "user1", "file", "models.zip", &zip).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&body), "No file submitted");
    let (status, body) = hub
        .post(
            &format!("/api/v1/domains/{d}/schemas/import"),
            "user1",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = hub.upload(&d, "user1", "archive", "models.rar", &zip).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message(&body).starts_with("Unsupported archive type"),
        "{body}"
    );
    let (status, body) = hub
        .upload(&d, "user1", "archive", "models.zip", b"PK not really a zip")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message(&body).starts_with("Archive could not be read"),
        "{body}"
    );
    let (status, body) = hub
        .upload(
            &d,
            "user1",
            "archive",
            "empty.zip",
            &zip_of(&[("a.txt", b"x")]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&body), "Archive contains no .json files");
}

/// A tar header whose name is written raw, as a hostile archive would (the builder refuses
/// `..`).
fn raw_tgz(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.append(&header, content).expect("append");
    tar.into_inner().expect("tar").finish().expect("gzip")
}

async fn unsafe_paths_are_refused(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    for name in [
        "../evil.json",
        "a/../../evil.json",
        "/etc/evil.json",
        "..\\evil.json",
    ] {
        let zip = zip_of(&[("ok.json", SHARED), (name, SHARED)]);
        let (status, body) = hub.upload(&d, "user1", "archive", "x.zip", &zip).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(
            message(&body),
            format!("Archive entry {name} has an unsafe path")
        );
    }
    let (status, body) = hub
        .upload(
            &d,
            "user1",
            "archive",
            "x.tgz",
            &raw_tgz("../evil.json", SHARED),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("unsafe path"), "{body}");
    // A relative `$ref` climbing out of the archive.
    let climbing = br##"{"$id": "#?c", "$ref": "../../outside.json"}"##;
    let zip = zip_of(&[("a/c.json", climbing.as_slice())]);
    let (status, body) = hub.upload(&d, "user1", "archive", "x.zip", &zip).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message(&body).contains("points outside the archive"),
        "{body}"
    );
    assert_eq!(count(&hub, &d).await, 0);
}

async fn oversize_archive_is_refused(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    // The test configuration caps archives at 256 KiB.
    let big = vec![b' '; 300 * 1024];
    let zip = zip_of(&[("big.json", &big)]);
    let (status, body) = hub.upload(&d, "user1", "archive", "big.zip", &zip).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(
        message(&body).starts_with("Archive is larger than"),
        "{body}"
    );
    assert_eq!(count(&hub, &d).await, 0);
}

async fn bad_files_abort_the_whole_import(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "z-bad.json",
            b"this is not json",
            "z-bad.json is not valid JSON",
        ),
        (
            "z-bad.json",
            br#"{"type": 12}"#,
            "Validation failed for z-bad.json",
        ),
        (
            "z-bad.json",
            br#"[1, 2]"#,
            "Validation failed for z-bad.json",
        ),
        (
            "z-bad.json",
            br#"{"$ref": "missing.json"}"#,
            "could not be resolved",
        ),
    ];
    for (name, content, expected) in cases {
        let zip = zip_of(&[("shared.json", SHARED), (name, content)]);
        let (status, body) = hub.upload(&d, "user1", "archive", "x.zip", &zip).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expected}");
        assert!(message(&body).contains(expected), "{expected}: {body}");
        assert_eq!(count(&hub, &d).await, 0, "nothing created");
    }
}

async fn cyclic_refs_in_an_archive_are_refused(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let zip = zip_of(&[
        (
            "a.json",
            br#"{"properties": {"b": {"$ref": "b.json"}}}"#.as_slice(),
        ),
        (
            "b.json",
            br#"{"properties": {"c": {"$ref": "sub/c.json"}}}"#.as_slice(),
        ),
        (
            "sub/c.json",
            br#"{"items": {"$ref": "../a.json"}}"#.as_slice(),
        ),
    ]);
    let (status, body) = hub.upload(&d, "user1", "archive", "x.zip", &zip).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).starts_with("Cyclic $ref"), "{body}");
    assert_eq!(count(&hub, &d).await, 0);
}

async fn import_permissions(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let zip = zip_of(&[("shared.json", SHARED)]);
    // OIH's 'not.defined': only owners, tenant admins of the tenant and admins.
    for (token, expected) in [
        ("user3", StatusCode::FORBIDDEN),
        ("other", StatusCode::FORBIDDEN),
        ("otherAdmin", StatusCode::FORBIDDEN),
    ] {
        let (status, _) = hub.upload(&d, token, "archive", "x.zip", &zip).await;
        assert_eq!(status, expected, "{token}");
    }
    let (status, _) = hub.upload(&d, "user2", "archive", "x.zip", &zip).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = hub
        .upload(
            "000000000000000000000000",
            "admin",
            "archive",
            "x.zip",
            &zip,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
