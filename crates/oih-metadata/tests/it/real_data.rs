//! OIH's own data: the archive its development setup imports, and its standard data models.
//! Skipped (with the reason printed) when `../shared/data` is absent.

use std::path::Path;

use axum::http::StatusCode;
use oih_metadata::import_dir_or_archive;
use serde_json::json;

use crate::engines;
use crate::support::{Hub, config, schema_path, shared_data};

engines!(
    dev_archive_imports_over_http,
    standard_models_import_with_the_library
);

async fn dev_archive_imports_over_http(hub: Hub) {
    let Some(data) = shared_data() else { return };
    let bytes = std::fs::read(data.join("oih-dev-schemas.zip")).expect("read archive");
    let d = hub.domain("user1", "dev").await;
    let (status, body) = hub
        .upload(&d, "user1", "archive", "schemas.zip", &bytes)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().expect("created").len(), 20);
    let (_, person) = hub
        .get(&schema_path(&d, "addresses/personV2.json"), "user1")
        .await;
    let refs = person["data"]["refs"].as_array().expect("refs");
    assert!(
        refs.contains(&json!(schema_path(&d, "oih-data-record.json"))),
        "{refs:?}"
    );
    let url = format!("{}/validate", schema_path(&d, "addresses/personV2.json"));
    let person = json!({
        "firstName": "Max",
        "lastName": "Schneider",
        "oihApplicationRecords": [{"applicationUid": "crm", "recordUid": "1"}]
    });
    let (status, ok) = hub.post(&url, "user1", person).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ok["data"]["valid"], true, "{ok}");
    // The required record (from oih-data-record.json) is missing and the name is no string.
    let (_, bad) = hub.post(&url, "user1", json!({"firstName": 5})).await;
    let errors = bad["data"]["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{bad}");
    assert!(
        errors.iter().any(|e| e["instancePath"] == "/firstName"),
        "{bad}"
    );
    // The shared record is referenced by many schemas: it cannot go.
    let (status, _) = hub
        .delete(&schema_path(&d, "oih-data-record.json"), "user1")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// The CLI path: the dev archive first, then the standard models directory into the same
/// domain; the models' `../oih-data-record.json` resolves against the stored archive schemas.
async fn standard_models_import_with_the_library(hub: Hub) {
    let Some(data) = shared_data() else { return };
    let config = config();
    let archive = import_dir_or_archive(
        hub.docs.clone(),
        &config,
        &data.join("oih-dev-schemas.zip"),
        "standard",
    )
    .await
    .expect("archive import");
    assert_eq!(archive.schemas.len(), 20);
    let models = import_dir_or_archive(
        hub.docs.clone(),
        &config,
        &data.join("oih-models"),
        "standard",
    )
    .await
    .expect("directory import");
    assert_eq!(models.domain_id, archive.domain_id);
    let expected = count_json(&data.join("oih-models"));
    assert_eq!(models.schemas.len(), expected);
    // The domain is public: any user reads the models.
    let d = &models.domain_id;
    let (status, product) = hub
        .get(&schema_path(d, "Products/product.json"), "other")
        .await;
    assert_eq!(status, StatusCode::OK, "{product}");
    let (_, list) = hub
        .get(&format!("/api/v1/domains/{d}/schemas"), "admin")
        .await;
    assert_eq!(list["meta"]["total"], 20 + expected as u64);
    // A second import of the same directory changes nothing.
    let again = import_dir_or_archive(
        hub.docs.clone(),
        &config,
        &data.join("oih-models"),
        "standard",
    )
    .await;
    assert!(again.is_err());
}

fn count_json(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .map(|p| {
            if p.is_dir() {
                count_json(&p)
            } else {
                usize::from(p.extension().is_some_and(|e| e == "json"))
            }
        })
        .sum()
}
