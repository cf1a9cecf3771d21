//! Authentication and authorisation over IAM's whole route list, table-driven: every route
//! refuses a request without a token and with an expired token (401), and a plain user
//! without the route's permission (403, changing nothing). The same list is checked against
//! the OpenAPI document. Then the bad-input cases of single routes.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{TestIam, boot, config, start};

/// What a plain user (a tenant member without roles or permissions) gets.
#[derive(Clone, Copy)]
enum Plain {
    /// The route needs no permission (or is the caller's own: `/users/me`, `/logout`).
    Allowed,
    /// 403 with this message.
    Refused(&'static str),
}

const MISSING: Plain = Plain::Refused("MISSING_PERMISSION");
const ADMIN_ONLY: Plain = Plain::Refused("FORBIDDEN");

/// Every authenticated route, as the OpenAPI document names it. `{id}` is the resource of
/// the path's collection, `{user_id}` an account.
const ROUTES: &[(Method, &str, Plain)] = &[
    (Method::POST, "/logout", Plain::Allowed),
    (Method::GET, "/api/v1/users", ADMIN_ONLY),
    (Method::POST, "/api/v1/users", MISSING),
    (Method::GET, "/api/v1/users/me", Plain::Allowed),
    (Method::PATCH, "/api/v1/users/me", Plain::Allowed),
    (Method::GET, "/api/v1/users/{id}", MISSING),
    (Method::PATCH, "/api/v1/users/{id}", MISSING),
    (Method::PUT, "/api/v1/users/{id}", MISSING),
    (Method::DELETE, "/api/v1/users/{id}", MISSING),
    (Method::GET, "/api/v1/tenants", ADMIN_ONLY),
    (Method::POST, "/api/v1/tenants", MISSING),
    (Method::GET, "/api/v1/tenants/{id}", MISSING),
    (Method::PUT, "/api/v1/tenants/{id}", MISSING),
    (Method::PATCH, "/api/v1/tenants/{id}", MISSING),
    (Method::DELETE, "/api/v1/tenants/{id}", MISSING),
    (Method::GET, "/api/v1/tenants/{id}/profile", MISSING),
    (Method::GET, "/api/v1/tenants/{id}/users", MISSING),
    (
        Method::DELETE,
        "/api/v1/tenants/{id}/user/{user_id}",
        MISSING,
    ),
    (Method::GET, "/api/v1/tenants/{id}/key", MISSING),
    (Method::POST, "/api/v1/tenants/{id}/key", MISSING),
    (Method::DELETE, "/api/v1/tenants/{id}/key", MISSING),
    (Method::GET, "/api/v1/tokens", ADMIN_ONLY),
    (Method::POST, "/api/v1/tokens", MISSING),
    (Method::POST, "/api/v1/tokens/introspect", MISSING),
    (Method::GET, "/api/v1/tokens/refresh", Plain::Allowed),
    (Method::GET, "/api/v1/tokens/{id}", ADMIN_ONLY),
    (Method::DELETE, "/api/v1/tokens/{id}", MISSING),
    (Method::GET, "/api/v1/roles", MISSING),
    (Method::POST, "/api/v1/roles", MISSING),
    (Method::GET, "/api/v1/roles/{id}", MISSING),
    (Method::PATCH, "/api/v1/roles/{id}", MISSING),
    (Method::DELETE, "/api/v1/roles/{id}", MISSING),
    (Method::GET, "/api/v1/permissions", Plain::Allowed),
    (Method::GET, "/api/v1/oidc/clients", ADMIN_ONLY),
    (Method::POST, "/api/v1/oidc/clients", ADMIN_ONLY),
    (Method::DELETE, "/api/v1/oidc/clients/{id}", ADMIN_ONLY),
];

/// Routes that take no token.
const PUBLIC: &[(Method, &str)] = &[
    (Method::POST, "/login"),
    (Method::GET, "/.well-known/jwks.json"),
    (Method::GET, "/.well-known/openid-configuration"),
    (Method::GET, "/op/certs"),
    (Method::GET, "/op/auth"),
    (Method::POST, "/op/auth"),
    (Method::POST, "/op/token"),
    (Method::GET, "/op/me"),
    (Method::POST, "/op/me"),
];

/// The ids the routes are called with: one of each kind, all in the plain user's tenant.
struct Ids {
    tenant: String,
    user: String,
    role: String,
    token: String,
    client: String,
}

impl Ids {
    fn path(&self, template: &str) -> String {
        let collection_id = if template.starts_with("/api/v1/users/") {
            &self.user
        } else if template.starts_with("/api/v1/tenants/") {
            &self.tenant
        } else if template.starts_with("/api/v1/roles/") {
            &self.role
        } else if template.starts_with("/api/v1/tokens/") {
            &self.token
        } else {
            &self.client
        };
        template
            .replace("{user_id}", &self.user)
            .replace("{id}", collection_id)
    }
}

/// IAM with the OpenID Connect provider (so its admin routes are mounted), a tenant with a
/// tenant admin and a plain user, a role, a token, a key and a client.
async fn world() -> (TestIam, crate::TenantFixture, Ids) {
    let mut cfg = config();
    cfg.oidc_enabled = true;
    let mut t = boot(cfg).await;
    t.admin = t.login(crate::ADMIN, crate::ADMIN_PASSWORD).await;
    let fx = t.tenant_with_users("a").await;
    let (status, role) = t
        .post("/api/v1/roles", &fx.admin, json!({"name": "editors"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{role}");
    let (status, token) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": fx.user_id, "new": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{token}");
    let key_uri = format!("/api/v1/tenants/{}/key", fx.tenant);
    let (status, _) = t
        .post(&key_uri, &t.service_token, json!({"value": "k"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, client) = t
        .post(
            "/api/v1/oidc/clients",
            &t.admin,
            json!({"name": "rp", "redirectUris": ["https://rp.test/cb"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let ids = Ids {
        tenant: fx.tenant.clone(),
        user: fx.user_id.clone(),
        role: role["_id"].as_str().expect("id").to_owned(),
        token: token["id"].as_str().expect("id").to_owned(),
        client: client["clientId"].as_str().expect("id").to_owned(),
    };
    (t, fx, ids)
}

/// Everything the routes could change, as the admin sees it.
async fn snapshot(t: &TestIam, ids: &Ids) -> Vec<Value> {
    let mut out = Vec::new();
    for uri in [
        "/api/v1/users".to_owned(),
        "/api/v1/tenants".to_owned(),
        "/api/v1/tokens".to_owned(),
        "/api/v1/roles".to_owned(),
        "/api/v1/oidc/clients".to_owned(),
        format!("/api/v1/tenants/{}/key", ids.tenant),
        format!("/api/v1/tokens/{}", ids.token),
        format!("/api/v1/roles/{}", ids.role),
    ] {
        let (status, body) = t.get(&uri, &t.service_token).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        out.push(body);
    }
    out
}

/// A body for the methods that take one: valid JSON, so that what is refused is the caller.
fn body_for(method: &Method) -> Option<Value> {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}))
}

#[tokio::test]
async fn every_route_refuses_missing_and_expired_tokens_and_missing_permissions() {
    let (t, fx, ids) = world().await;
    let (status, expired) = t
        .post(
            "/api/v1/tokens",
            &t.admin,
            json!({"accountId": fx.admin_id, "expiresIn": "1ms", "new": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let expired = expired["token"].as_str().expect("token").to_owned();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = snapshot(&t, &ids).await;

    for (method, template, plain) in ROUTES {
        let uri = ids.path(template);
        let (status, body) = t.call(method.clone(), &uri, None, body_for(method)).await;
        assert_eq!(
            (status, body),
            (StatusCode::UNAUTHORIZED, json!({"message": ""})),
            "{method} {uri} without a token"
        );
        let (status, body) = t
            .call(method.clone(), &uri, Some(&expired), body_for(method))
            .await;
        assert_eq!(
            (status, body),
            (
                StatusCode::UNAUTHORIZED,
                json!({"message": "VALIDATION_ERROR"})
            ),
            "{method} {uri} with an expired token"
        );
        if let Plain::Refused(message) = plain {
            let (status, body) = t
                .call(method.clone(), &uri, Some(&fx.user), body_for(method))
                .await;
            assert_eq!(
                (status, body),
                (StatusCode::FORBIDDEN, json!({"message": message})),
                "{method} {uri} as a plain user"
            );
        }
    }
    assert_eq!(
        snapshot(&t, &ids).await,
        before,
        "a refused request changed something"
    );
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let (t, _, _) = world().await;
    let (status, doc) = t
        .call(Method::GET, "/api-docs/iam/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["info"]["title"], "iam");
    let routes = ROUTES
        .iter()
        .map(|(m, p, _)| (m, *p))
        .chain(PUBLIC.iter().map(|(m, p)| (m, *p)));
    let mut listed = 0;
    for (method, path) in routes {
        let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
        assert!(
            op["responses"].is_object(),
            "{method} {path} is not documented"
        );
        listed += 1;
    }
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let documented: usize = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .filter_map(Value::as_object)
        .map(|ops| ops.keys().filter(|k| methods.contains(&k.as_str())).count())
        .sum();
    assert_eq!(
        documented, listed,
        "the document lists a route that is not mounted"
    );

    // Without the provider, its routes are neither mounted nor documented.
    let plain = start().await;
    let (_, doc) = plain
        .call(Method::GET, "/api-docs/iam/openapi.json", None, None)
        .await;
    assert!(doc["paths"]["/api/v1/users/{id}"]["patch"].is_object());
    assert!(doc["paths"].get("/op/token").is_none());
    assert!(doc["paths"].get("/api/v1/oidc/clients").is_none());
}

#[tokio::test]
async fn bad_input_on_users() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let uri = format!("/api/v1/users/{}", a.user_id);
    let (_, before) = t.get(&uri, &t.admin).await;
    let invalid = (StatusCode::BAD_REQUEST, json!({"message": "INPUT_INVALID"}));
    for method in [Method::PATCH, Method::PUT] {
        for body in [
            json!({"status": "SLEEPING"}),
            json!({"status": 1}),
            json!({"password": 5}),
            json!({"username": "not-an-email"}),
            json!(["status"]),
        ] {
            let got = t
                .call(method.clone(), &uri, Some(&t.admin), Some(body.clone()))
                .await;
            assert_eq!(got, invalid, "{method} {body}");
        }
        let got = t
            .call(
                method.clone(),
                "/api/v1/users/123",
                Some(&t.admin),
                Some(json!({"firstname": "x"})),
            )
            .await;
        assert_eq!(got, invalid, "{method} malformed id");
        let unknown = format!("/api/v1/users/{}", oih_core::ObjectId::new());
        let got = t
            .call(
                method.clone(),
                &unknown,
                Some(&t.admin),
                Some(json!({"firstname": "x"})),
            )
            .await;
        assert_eq!(
            got,
            (StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
            "{method} unknown id"
        );
    }
    assert_eq!(t.get(&uri, &t.admin).await.1, before, "unchanged");

    let (_, me_before) = t.get("/api/v1/users/me", &a.user).await;
    for body in [json!(["firstname"]), json!({"firstname": 5}), json!("x")] {
        let got = t.patch("/api/v1/users/me", &a.user, body.clone()).await;
        assert_eq!(got, invalid, "PATCH /users/me {body}");
    }
    assert_eq!(t.get("/api/v1/users/me", &a.user).await.1, me_before);

    assert_eq!(t.delete("/api/v1/users/123", &t.admin).await, invalid);
    assert_eq!(t.get(&uri, &t.admin).await.0, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_on_tenants() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let uri = format!("/api/v1/tenants/{}", a.tenant);
    let (_, before) = t.get(&uri, &t.admin).await;
    for method in [Method::PUT, Method::PATCH] {
        for token in [&t.admin, &a.admin] {
            for name in [json!(""), json!("   "), json!(5)] {
                let got = t
                    .call(
                        method.clone(),
                        &uri,
                        Some(token),
                        Some(json!({"name": name})),
                    )
                    .await;
                assert_eq!(
                    got,
                    (StatusCode::BAD_REQUEST, json!({"message": "Bad Request"})),
                    "{method} name {name}"
                );
            }
        }
    }
    assert_eq!(t.get(&uri, &t.admin).await.1, before, "unchanged");

    let users = format!("{uri}/users");
    assert_eq!(
        t.get(&users, &a.user).await,
        (
            StatusCode::FORBIDDEN,
            json!({"message": "MISSING_PERMISSION"})
        )
    );
    let invalid = (StatusCode::BAD_REQUEST, json!({"message": "INPUT_INVALID"}));
    assert_eq!(t.get("/api/v1/tenants/xyz/users", &t.admin).await, invalid);
    assert_eq!(t.delete("/api/v1/tenants/xyz", &t.admin).await, invalid);
    let (_, tenants) = t.get("/api/v1/tenants", &t.admin).await;
    assert_eq!(tenants.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn bad_input_on_tokens() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let (_, login) = t
        .call(
            Method::POST,
            "/login",
            None,
            Some(json!({"username": "user@a.test", "password": "pw"})),
        )
        .await;
    let id = login["id"].as_str().expect("id");
    let session = login["token"].as_str().expect("token");
    let uri = format!("/api/v1/tokens/{id}");
    for who in [&a.user, &a.admin] {
        assert_eq!(
            t.delete(&uri, who).await,
            (
                StatusCode::FORBIDDEN,
                json!({"message": "MISSING_PERMISSION"})
            )
        );
    }
    assert_eq!(t.get("/api/v1/users/me", session).await.0, StatusCode::OK);
    assert_eq!(t.get(&uri, &t.admin).await.0, StatusCode::OK);
    assert_eq!(
        t.get("/api/v1/tokens/abc", &t.admin).await,
        (StatusCode::BAD_REQUEST, json!({"message": "INPUT_INVALID"}))
    );
    assert_eq!(
        t.delete("/api/v1/tokens/abc", &t.admin).await,
        (StatusCode::BAD_REQUEST, json!({"message": "INPUT_INVALID"}))
    );
}

#[tokio::test]
async fn bad_input_on_roles() {
    let t = start().await;
    let a = t.tenant_with_users("a").await;
    let (_, role) = t
        .post(
            "/api/v1/roles",
            &a.admin,
            json!({"name": "editors", "permissions": ["tenant.flows.read"]}),
        )
        .await;
    let uri = format!("/api/v1/roles/{}", role["_id"].as_str().expect("id"));
    let missing = (
        StatusCode::FORBIDDEN,
        json!({"message": "MISSING_PERMISSION"}),
    );
    assert_eq!(t.get("/api/v1/roles", &a.user).await, missing);
    let invalid = (StatusCode::BAD_REQUEST, json!({"message": "INPUT_INVALID"}));
    for body in [
        json!({"name": ""}),
        json!({"name": 3}),
        json!({"description": 3}),
        json!({"permissions": "tenant.all"}),
        json!(["name"]),
    ] {
        assert_eq!(
            t.patch(&uri, &a.admin, body.clone()).await,
            invalid,
            "{body}"
        );
    }
    assert_eq!(
        t.patch(&uri, &a.user, json!({"name": "mine"})).await,
        missing
    );
    let (_, after) = t.get(&uri, &a.admin).await;
    assert_eq!(after, role, "unchanged");

    assert_eq!(t.delete(&uri, &a.user).await, missing);
    assert_eq!(t.delete("/api/v1/roles/nope", &a.admin).await, invalid);
    let unknown = format!("/api/v1/roles/{}", oih_core::ObjectId::new());
    assert_eq!(
        t.delete(&unknown, &a.admin).await,
        (StatusCode::NOT_FOUND, json!({"message": "FORBIDDEN"}))
    );
    assert_eq!(t.get(&uri, &a.admin).await, (StatusCode::OK, role));
}

/// A tenant admin of `b` against tenant `a`'s key, tokens and the OIDC clients: refused, and
/// nothing of `a` changes.
#[tokio::test]
async fn tenant_admins_cannot_reach_keys_tokens_or_clients_of_another_tenant() {
    let (t, a, ids) = world().await;
    let b = t.tenant_with_users("b").await;
    let before = snapshot(&t, &ids).await;
    let missing = (
        StatusCode::FORBIDDEN,
        json!({"message": "MISSING_PERMISSION"}),
    );
    let admin_only = (StatusCode::FORBIDDEN, json!({"message": "FORBIDDEN"}));

    let key = format!("/api/v1/tenants/{}/key", a.tenant);
    assert_eq!(t.get(&key, &b.admin).await, missing);
    assert_eq!(
        t.post(&key, &b.admin, json!({"value": "mine"})).await,
        missing
    );
    assert_eq!(t.delete(&key, &b.admin).await, missing);

    let token = format!("/api/v1/tokens/{}", ids.token);
    assert_eq!(t.get("/api/v1/tokens", &b.admin).await, admin_only);
    assert_eq!(
        t.get(&format!("/api/v1/tokens?accountId={}", a.user_id), &b.admin)
            .await,
        admin_only
    );
    assert_eq!(t.get(&token, &b.admin).await, admin_only);
    assert_eq!(t.delete(&token, &b.admin).await, missing);
    assert_eq!(
        t.post("/api/v1/tokens", &b.admin, json!({"accountId": a.user_id}))
            .await,
        missing
    );
    assert_eq!(
        t.post(
            "/api/v1/tokens/introspect",
            &b.admin,
            json!({"token": a.user})
        )
        .await,
        missing
    );

    assert_eq!(t.get("/api/v1/oidc/clients", &b.admin).await, admin_only);
    assert_eq!(
        t.delete(&format!("/api/v1/oidc/clients/{}", ids.client), &b.admin)
            .await,
        admin_only
    );
    assert_eq!(
        t.post(
            "/api/v1/oidc/clients",
            &b.admin,
            json!({"name": "x", "redirectUris": ["https://x.test/cb"]})
        )
        .await,
        admin_only
    );

    assert_eq!(snapshot(&t, &ids).await, before, "tenant a changed");
    assert_eq!(t.get("/api/v1/users/me", &a.user).await.0, StatusCode::OK);
}
