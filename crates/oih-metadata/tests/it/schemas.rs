//! `/api/v1/domains/{id}/schemas…`: creation, `$id`/`$ref` processing, updates, deletion and
//! validation as a service.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::engines;
use crate::support::{Hub, message, schema_id, schema_path};

engines!(
    create_rewrites_id_and_reads_back,
    id_without_path_is_usable,
    bad_schemas_are_refused,
    refs_resolve_from_the_store_transitively,
    update_keeps_id_and_recomputes_referrers,
    delete_refused_while_referenced,
    cyclic_refs_are_refused,
    list_pages_and_every_uri_reads,
    validate_reports_every_error_and_follows_changes,
);

fn organization() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://github.com/organizationV1.json",
        "title": "Organization",
        "type": "object",
        "definitions": {"name": {"type": "string", "minLength": 1}},
        "properties": {"name": {"$ref": "#/definitions/name"}},
        "required": ["name"]
    })
}

async fn create_rewrites_id_and_reads_back(mut hub: Hub) {
    let d = hub.domain("user1", "d").await;
    // An admin posts into user1's domain: the admin, its creator, owns the schema (OIH wrote
    // the domain's first owner).
    let (status, body) = hub.schema("admin", &d, organization()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let created = &body["data"];
    assert_eq!(created["owners"], json!([{"id": "admin", "type": "USER"}]));
    assert_eq!(created["name"], "Organization");
    assert_eq!(created["uri"], schema_path(&d, "organizationV1.json"));
    assert!(created["value"].is_string(), "value stays JSON text");
    let event = hub.expect_event("metadata.schema.created").await;
    assert_eq!(event["id"], created["id"]);

    let (status, read) = hub
        .get(&schema_path(&d, "organizationV1.json"), "user3")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        read["data"]["value"]["$id"],
        schema_id(&d, "organizationV1.json")
    );
    let req = Request::get(schema_path(&d, "organizationV1.json"))
        .header("authorization", "Bearer user1")
        .header("content-type", "application/schema+json")
        .body(Body::empty())
        .expect("request");
    let (status, raw) = hub.send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(raw["$id"], schema_id(&d, "organizationV1.json"));
    assert_eq!(raw["title"], "Organization");
}

async fn id_without_path_is_usable(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let (status, body) = hub
        .schema("user1", &d, json!({"$id": "#?address", "type": "object"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = hub.get(&schema_path(&d, "address"), "user1").await;
    assert_eq!(status, StatusCode::OK);
    // draft-04 `id`.
    let draft4 = json!({"$schema": "http://json-schema.org/draft-04/schema#", "id": "http://a.b/c/d4.json", "type": "string"});
    let (status, body) = hub.schema("user1", &d, draft4).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, read) = hub.get(&schema_path(&d, "c/d4.json"), "user1").await;
    assert_eq!(read["data"]["value"]["id"], schema_id(&d, "c/d4.json"));
}

async fn bad_schemas_are_refused(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let post = |value: Value| {
        let hub = &hub;
        let d = d.clone();
        async move { hub.schema("user1", &d, value).await }
    };
    let (status, body) = post(json!({"type": "nope", "$id": "#?x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message(&body).starts_with("Validation failed for /temp ["),
        "{body}"
    );
    let (status, body) = post(json!({"type": "object"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("$id"), "{body}");
    let (status, body) = post(json!({"$id": "#?y", "$ref": "other.json"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&body),
        "other.json invalid. No relative refs allowed."
    );
    let (status, body) =
        post(json!({"$id": "#?z", "$schema": "http://json-schema.org/draft-03/schema#"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = post(json!("a string")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(json!("{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A bare schema, not wrapped in `value`.
    let (status, _) = hub
        .post(
            &format!("/api/v1/domains/{d}/schemas"),
            "user1",
            organization(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Duplicate uri.
    assert_eq!(post(organization()).await.0, StatusCode::OK);
    let (status, body) = post(organization()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("already exists"), "{body}");
    // The value as JSON text is accepted, as OIH.
    let text = json!({"$id": "#?text", "type": "object"}).to_string();
    assert_eq!(post(Value::String(text)).await.0, StatusCode::OK);
}

async fn refs_resolve_from_the_store_transitively(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    assert_eq!(
        hub.schema("user1", &d, organization()).await.0,
        StatusCode::OK
    );
    let org = schema_id(&d, "organizationV1.json");
    let person = json!({
        "$id": "https://x.org/person.json",
        "properties": {"employer": {"$ref": org}, "employerName": {"$ref": format!("{org}#/definitions/name")}}
    });
    let (status, body) = hub.schema("user1", &d, person).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["refs"],
        json!([schema_path(&d, "organizationV1.json")])
    );
    let team =
        json!({"$id": "https://x.org/team.json", "items": {"$ref": schema_id(&d, "person.json")}});
    let (status, body) = hub.schema("user1", &d, team).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["data"]["refs"],
        json!([
            schema_path(&d, "person.json"),
            schema_path(&d, "organizationV1.json")
        ])
    );
    // A reference to a schema that does not exist, or to a pointer that does not resolve.
    let missing = json!({"$id": "#?m", "$ref": schema_id(&d, "nope.json")});
    let (status, body) = hub.schema("user1", &d, missing).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("could not be resolved"), "{body}");
    let bad_pointer = json!({"$id": "#?p", "$ref": format!("{org}#/definitions/missing")});
    let (status, body) = hub.schema("user1", &d, bad_pointer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Another tenant cannot reference this private domain's schemas.
    let other = hub.domain("other", "o").await;
    let (status, body) = hub
        .schema("other", &other, json!({"$id": "#?o", "$ref": org}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).contains("access denied"), "{body}");
}

async fn update_keeps_id_and_recomputes_referrers(mut hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let a = json!({"$id": "https://x.org/a.json", "type": "string"});
    let b = json!({"$id": "https://x.org/b.json", "$ref": schema_id(&d, "a.json")});
    let c = json!({"$id": "https://x.org/c.json", "$ref": schema_id(&d, "b.json")});
    for s in [a, b, c] {
        assert_eq!(hub.schema("user1", &d, s).await.0, StatusCode::OK);
    }
    let (_, c_before) = hub.get(&schema_path(&d, "c.json"), "user1").await;
    assert_eq!(c_before["data"]["refs"].as_array().expect("refs").len(), 2);

    // b no longer references a: c's transitive refs follow.
    let b2 = json!({"$id": schema_id(&d, "b.json"), "title": "B2", "type": "integer"});
    let (status, body) = hub
        .put(&schema_path(&d, "b.json"), "user1", json!({"value": b2}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["name"], "B2");
    assert_eq!(body["data"]["refs"], json!([]));
    let event = hub.expect_event("metadata.schema.modified").await;
    assert_eq!(event["uri"], schema_path(&d, "b.json"));
    let (_, c_after) = hub.get(&schema_path(&d, "c.json"), "user1").await;
    assert_eq!(c_after["data"]["refs"], json!([schema_path(&d, "b.json")]));
    assert_eq!(
        hub.delete(&schema_path(&d, "a.json"), "user1").await.0,
        StatusCode::NO_CONTENT
    );

    // A changed `$id` is refused with 400 (OIH: 500).
    let moved = json!({"$id": "https://x.org/elsewhere.json", "type": "integer"});
    let (status, body) = hub
        .put(&schema_path(&d, "b.json"), "user1", json!({"value": moved}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(message(&body), "Schema $id must not be changed");
    // An unknown uri is a 404 (OIH: 500).
    let (status, _) = hub
        .put(
            &schema_path(&d, "none.json"),
            "user1",
            json!({"value": {"$id": "#?none"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Only owners, tenant admins and admins update schemas ('not.defined').
    let (status, _) = hub
        .put(
            &schema_path(&d, "b.json"),
            "user3",
            json!({"value": {"$id": "#?b.json"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let same = json!({"$id": schema_id(&d, "b.json"), "type": "number"});
    let (status, _) = hub
        .put(&schema_path(&d, "b.json"), "user2", json!({"value": same}))
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn delete_refused_while_referenced(mut hub: Hub) {
    let d = hub.domain("user1", "d").await;
    assert_eq!(
        hub.schema("user1", &d, organization()).await.0,
        StatusCode::OK
    );
    let person =
        json!({"$id": "https://x.org/person.json", "$ref": schema_id(&d, "organizationV1.json")});
    assert_eq!(hub.schema("user1", &d, person).await.0, StatusCode::OK);
    for token in ["user1", "admin"] {
        let (status, body) = hub
            .delete(&schema_path(&d, "organizationV1.json"), token)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            message(&body),
            format!(
                "{} referenced by {}",
                schema_path(&d, "organizationV1.json"),
                schema_path(&d, "person.json")
            )
        );
    }
    assert_eq!(
        hub.delete(&schema_path(&d, "person.json"), "user1").await.0,
        StatusCode::NO_CONTENT
    );
    let event = hub.expect_event("metadata.schema.deleted").await;
    assert_eq!(event["schema"], schema_path(&d, "person.json"));
    assert_eq!(
        hub.delete(&schema_path(&d, "organizationV1.json"), "user1")
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    // Gone: 404 (OIH answered 204 for any uri).
    assert_eq!(
        hub.delete(&schema_path(&d, "organizationV1.json"), "user1")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = hub
        .get(&format!("/api/v1/domains/{d}/schemas"), "user1")
        .await;
    assert_eq!(list["meta"]["total"], 0);
}

async fn cyclic_refs_are_refused(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let a = json!({"$id": "https://x.org/a.json", "type": "object"});
    let b = json!({"$id": "https://x.org/b.json", "properties": {"a": {"$ref": schema_id(&d, "a.json")}}});
    assert_eq!(hub.schema("user1", &d, a).await.0, StatusCode::OK);
    assert_eq!(hub.schema("user1", &d, b).await.0, StatusCode::OK);
    let a2 = json!({"$id": schema_id(&d, "a.json"), "properties": {"b": {"$ref": schema_id(&d, "b.json")}}});
    let (status, body) = hub
        .put(&schema_path(&d, "a.json"), "user1", json!({"value": a2}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message(&body).starts_with("Cyclic $ref"), "{body}");
    // A schema may still refer to itself.
    let own = json!({"$id": schema_id(&d, "a.json"), "properties": {"again": {"$ref": schema_id(&d, "a.json")}}});
    let (status, body) = hub
        .put(&schema_path(&d, "a.json"), "user1", json!({"value": own}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn list_pages_and_every_uri_reads(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    for i in 0..12 {
        let s = json!({"$id": format!("https://x.org/s{i}.json"), "type": "object"});
        assert_eq!(hub.schema("user1", &d, s).await.0, StatusCode::OK);
    }
    let (status, page) = hub
        .get(
            &format!("/api/v1/domains/{d}/schemas?page[size]=10"),
            "user3",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["data"].as_array().expect("list").len(), 10);
    assert_eq!(page["meta"]["total"], 12);
    assert_eq!(page["meta"]["totalPages"], 2);
    let (_, second) = hub
        .get(
            &format!("/api/v1/domains/{d}/schemas?page[size]=10&page[number]=2"),
            "user1",
        )
        .await;
    for s in page["data"]
        .as_array()
        .into_iter()
        .chain(second["data"].as_array())
        .flatten()
    {
        let uri = s["uri"].as_str().expect("uri");
        assert_eq!(hub.get(uri, "user1").await.0, StatusCode::OK, "{uri}");
    }
    let (status, _) = hub
        .get(
            &format!("/api/v1/domains/{d}/schemas?page[size]=0"),
            "user1",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn validate_reports_every_error_and_follows_changes(hub: Hub) {
    let d = hub.domain("user1", "d").await;
    let name = json!({"$id": "https://x.org/name.json", "type": "string", "minLength": 2});
    let person = json!({
        "$id": "https://x.org/person.json",
        "type": "object",
        "required": ["name", "age"],
        "properties": {"name": {"$ref": schema_id(&d, "name.json")}, "age": {"type": "integer"}}
    });
    assert_eq!(hub.schema("user1", &d, name).await.0, StatusCode::OK);
    assert_eq!(hub.schema("user1", &d, person).await.0, StatusCode::OK);
    let url = format!("{}/validate", schema_path(&d, "person.json"));
    let (status, ok) = hub
        .post(&url, "user3", json!({"name": "Max", "age": 3}))
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["data"], json!({"valid": true, "errors": []}));
    let (_, bad) = hub
        .post(&url, "user3", json!({"name": "M", "age": "x"}))
        .await;
    assert_eq!(bad["data"]["valid"], false);
    let mut pointers: Vec<&str> = bad["data"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["instancePath"].as_str().expect("pointer"))
        .collect();
    pointers.sort_unstable();
    assert_eq!(pointers, ["/age", "/name"]);

    // The referenced schema changes: the cached validator of person.json is rebuilt.
    let relaxed = json!({"$id": schema_id(&d, "name.json"), "type": "string"});
    let (status, _) = hub
        .put(
            &schema_path(&d, "name.json"),
            "user1",
            json!({"value": relaxed}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, after) = hub
        .post(&url, "user3", json!({"name": "M", "age": 1}))
        .await;
    assert_eq!(after["data"]["valid"], true, "{after}");

    let req = Request::post(&url)
        .header("authorization", "Bearer user1")
        .header("content-type", "application/json")
        .body(Body::from("{broken"))
        .expect("request");
    assert_eq!(hub.send(req).await.0, StatusCode::BAD_REQUEST);
    let (status, _) = hub
        .post(
            &format!("{}/validate", schema_path(&d, "nope.json")),
            "user1",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = hub.post(&url, "other", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
