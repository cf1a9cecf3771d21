//! OIH's `test/test.js` cases, plus validation, permissions and tenant isolation on every
//! endpoint.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{Hub, OTHER_TENANT, TENANT, messages};

crate::engines!(
    the_api_is_documented,
    oih_log_operations,
    newest_first_and_total_counts_matches,
    every_endpoint_needs_a_token,
    every_endpoint_needs_its_permission,
    pushed_entries_are_validated,
    bad_input_is_400_and_changes_nothing,
    tenants_are_isolated,
    callers_without_tenant_see_only_their_own_entries
);

fn log1() -> Value {
    json!({"headers": {"name": "iam.user.created", "serviceName": "iam", "createdAt": "1563959057790"},
           "payload": {"id": "abcdef12345", "username": "test@org.de"}})
}

fn log2() -> Value {
    json!({"headers": {"name": "flowrepo.flow.created", "serviceName": "flow-repository",
                       "createdAt": "1563959094720"},
           "payload": {"flowId": "dhi38fj3oz9fj3", "tenant": TENANT}})
}

fn log3() -> Value {
    json!({"headers": {"name": "flowrepo.flow.started", "serviceName": "flow-repository",
                       "createdAt": "1563994057792"},
           "payload": {"user": "abcdef12345", "flowId": "dhi38fj3oz9fj3"}})
}

async fn seeded(hub: &Hub) {
    for body in [log1(), log2(), log3()] {
        hub.push(body).await;
    }
}

async fn count(hub: &Hub) -> u64 {
    let (_, body) = hub.get("/logs", "adminToken").await;
    body["meta"]["total"].as_u64().expect("total")
}

async fn the_api_is_documented(hub: Hub) {
    let (status, doc) = hub
        .call("GET", "/api-docs/audit-log/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/logs",
        "/logs/verify",
        "/logs/retention",
        "/logs/retention/{tenantId}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} undocumented");
    }
    hub.shutdown().await;
}

async fn oih_log_operations(hub: Hub) {
    let (status, created) = hub.post("/logs", "adminToken", log3()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["headers"]["createdAt"], "2019-07-24T18:47:37.792Z");
    assert_eq!(created["payload"], log3()["payload"]);
    assert_eq!(created["chain"]["seq"], 1);
    hub.push(log1()).await;
    hub.push(log2()).await;

    let (status, all) = hub
        .get("/logs?page[size]=5&page[number]=1", "adminToken")
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["data"].as_array().map(Vec::len), Some(3));
    assert!(all["data"][0]["_id"].is_string());
    assert_eq!(
        all["meta"],
        json!({"page": 1, "perPage": 5, "total": 3, "totalPages": 1})
    );

    let (_, mine) = hub.get("/logs?page[size]=5", "userToken").await;
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine["data"][0]["payload"]["tenant"], TENANT);

    for (filter, expected) in [
        ("filter[service]=iam", "iam"),
        ("filter[tenant]=TestTenant", "flow-repository"),
        ("filter[name]=iam.user.created", "iam"),
    ] {
        let (_, found) = hub.get(&format!("/logs?{filter}"), "adminToken").await;
        assert_eq!(found["data"].as_array().map(Vec::len), Some(1), "{filter}");
        assert_eq!(found["data"][0]["headers"]["serviceName"], expected);
        assert_eq!(found["meta"]["total"], 1, "{filter}");
    }
    let (_, none) = hub
        .get("/logs?filter[keks]=Schokorosine", "adminToken")
        .await;
    assert_eq!(none["data"], json!([]));
    assert_eq!(none["meta"]["total"], 0);
    hub.shutdown().await;
}

async fn newest_first_and_total_counts_matches(hub: Hub) {
    seeded(&hub).await;
    for n in 0..12 {
        hub.push(json!({"headers": {"name": "x.made", "serviceName": "test", "createdAt": 1_700_000_000_000_i64 + n},
                        "payload": {"n": n}}))
            .await;
    }
    let (_, page) = hub
        .get(
            "/logs?filter[name]=x.made&page[size]=5&page[number]=2",
            "adminToken",
        )
        .await;
    let ns: Vec<i64> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| e["payload"]["n"].as_i64().expect("n"))
        .collect();
    assert_eq!(ns, [6, 5, 4, 3, 2]);
    assert_eq!(
        page["meta"],
        json!({"page": 2, "perPage": 5, "total": 12, "totalPages": 3})
    );
    // A numeric payload value matches its text in the query.
    let (_, one) = hub.get("/logs?filter[n]=7", "adminToken").await;
    assert_eq!(one["meta"]["total"], 1);
    hub.shutdown().await;
}

async fn every_endpoint_needs_a_token(hub: Hub) {
    for (method, uri, body) in [
        ("GET", "/logs", None),
        ("POST", "/logs", Some(log1())),
        ("GET", "/logs/verify", None),
    ] {
        let (status, res) = hub.call(method, uri, None, body.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        assert_eq!(messages(&res), ["Missing authorization header."]);
        assert_eq!(res["errors"][0]["code"], 401);
        let (status, _) = hub.call(method, uri, Some("notAToken"), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
    }
    assert_eq!(count(&hub).await, 0);
    hub.shutdown().await;
}

async fn every_endpoint_needs_its_permission(hub: Hub) {
    // `tenant.all` does not cover `logs.*`, as in OIH.
    for token in ["unpermitToken", "tenantAdminToken"] {
        for (method, uri, body) in [
            ("GET", "/logs", None),
            ("POST", "/logs", Some(log1())),
            ("GET", "/logs/verify", None),
        ] {
            let (status, res) = hub.call(method, uri, Some(token), body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{token} {method} {uri}");
            assert_eq!(messages(&res), ["MISSING_PERMISSION"]);
            assert_eq!(res["errors"][0]["code"], 403);
        }
    }
    let (status, res) = hub.post("/logs", "readToken", log2()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{res}");
    assert_eq!(res["errors"][0]["details"], "[\"logs.push\"]");
    // The permission is checked before the body is looked at.
    let (status, _) = hub.post("/logs", "readToken", json!("garbage")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(count(&hub).await, 0);
    hub.shutdown().await;
}

async fn pushed_entries_are_validated(hub: Hub) {
    let cases = [
        (
            json!([]),
            vec!["Messageformat is not valid: body must be an object"],
        ),
        (
            json!({}),
            vec!["Messageformat is not valid: headers is required"],
        ),
        (
            json!({"headers": {"name": "", "serviceName": 3}, "payload": "text"}),
            vec![
                "Messageformat is not valid: headers.name must not be empty",
                "Messageformat is not valid: headers.serviceName must be a string",
                "Messageformat is not valid: payload must be an object",
            ],
        ),
        (
            json!({"headers": {"name": "a", "serviceName": "b", "createdAt": "soon"}}),
            vec![
                "Messageformat is not valid: headers.createdAt must be a date (ISO 8601 or milliseconds since the epoch)",
            ],
        ),
        (
            json!({"headers": {"name": "a", "serviceName": "b"}, "payload": {"k": "nul\u{0}"}}),
            vec!["Messageformat is not valid: payload must not contain NUL characters"],
        ),
    ];
    for (body, expected) in cases {
        let (status, res) = hub.post("/logs", "adminToken", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {res}");
        assert_eq!(messages(&res), expected, "{body}");
        assert_eq!(res["errors"][0]["code"], 400);
    }
    // Missing payload and createdAt are fine; unknown keys are dropped, as in OIH.
    let (status, res) = hub
        .post(
            "/logs",
            "adminToken",
            json!({"headers": {"name": "a", "serviceName": "b", "x": 1}, "y": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{res}");
    assert_eq!(res["payload"], json!({}));
    assert!(res["headers"]["createdAt"].is_string());
    assert!(res.get("y").is_none() && res["headers"].get("x").is_none());
    assert_eq!(count(&hub).await, 1);
    hub.shutdown().await;
}

async fn bad_input_is_400_and_changes_nothing(hub: Hub) {
    let malformed = Request::post("/logs")
        .header("authorization", "Bearer adminToken")
        .header("content-type", "application/json")
        .body(Body::from("{\"headers\": "))
        .expect("request");
    let (status, res) = hub.send(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{res}");
    assert_eq!(res["errors"][0]["code"], 400);

    let text = Request::post("/logs")
        .header("authorization", "Bearer adminToken")
        .header("content-type", "text/plain")
        .body(Body::from(log1().to_string()))
        .expect("request");
    let (status, _) = hub.send(text).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = json!({"headers": {"name": "a", "serviceName": "b"},
                      "payload": {"blob": "x".repeat(11 * 1024 * 1024)}});
    let (status, _) = hub.post("/logs", "adminToken", huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    for uri in [
        "/logs?page[size]=0",
        "/logs?page[number]=abc",
        "/logs?filter[a%20b]=1",
        "/logs?filter[]=1",
    ] {
        let (status, res) = hub.get(uri, "adminToken").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {res}");
        assert_eq!(res["errors"][0]["code"], 400);
    }
    assert_eq!(count(&hub).await, 0);
    hub.shutdown().await;
}

async fn tenants_are_isolated(hub: Hub) {
    seeded(&hub).await;
    // Another tenant sees none of TestTenant's entries, even when filtering for them.
    let (_, theirs) = hub
        .get("/logs?filter[tenant]=TestTenant", "otherToken")
        .await;
    assert_eq!(theirs["data"], json!([]));
    assert_eq!(theirs["meta"]["total"], 0);
    // Nor can it push into TestTenant's chain.
    let (status, res) = hub.post("/logs", "otherToken", log2()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{res}");
    let (_, mine) = hub.get("/logs", "userToken").await;
    assert_eq!(mine["meta"]["total"], 1);
    // Its own push lands in its own chain (the tenant is filled in).
    let (status, own) = hub
        .post(
            "/logs",
            "otherToken",
            json!({"headers": {"name": "x.done", "serviceName": "client"}, "payload": {"a": 1}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{own}");
    assert_eq!(own["payload"]["tenant"], OTHER_TENANT);
    assert_eq!(own["chain"]["tenant"], OTHER_TENANT);
    let (_, theirs) = hub.get("/logs", "otherToken").await;
    assert_eq!(theirs["meta"]["total"], 1);
    // Verification: only the caller's chain, never another tenant's.
    let (status, verified) = hub
        .get("/logs/verify?filter[tenant]=TestTenant", "otherToken")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verified["data"], json!([]));
    let (_, verified) = hub.get("/logs/verify", "otherToken").await;
    assert_eq!(verified["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(verified["data"][0]["tenant"], OTHER_TENANT);
    assert_eq!(verified["data"][0]["valid"], true);
    assert_eq!(count(&hub).await, 4);
    hub.shutdown().await;
}

async fn callers_without_tenant_see_only_their_own_entries(hub: Hub) {
    seeded(&hub).await;
    hub.push(json!({"headers": {"name": "x", "serviceName": "y"}, "payload": {"user": "loneId"}}))
        .await;
    // OIH matched `payload.tenant: undefined`, i.e. every entry without tenant.
    let (_, seen) = hub.get("/logs", "noTenantToken").await;
    assert_eq!(seen["meta"]["total"], 1, "{seen}");
    assert_eq!(seen["data"][0]["payload"]["user"], "loneId");
    let (_, verified) = hub.get("/logs/verify", "noTenantToken").await;
    assert_eq!(verified["data"], json!([]));
    hub.shutdown().await;
}
