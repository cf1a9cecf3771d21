//! First start: the admin account (configured or generated password), the service account,
//! and what a second start on the same store does.

use axum::http::{Method, StatusCode};
use oih_iam::Secret;
use serde_json::{Value, json};

use crate::{ADMIN, boot, boot_on, config};

async fn login_status(t: &crate::TestIam, username: &str, password: &str) -> StatusCode {
    t.call(
        Method::POST,
        "/login",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
    .0
}

/// Accounts named `username`, as the admin sees them.
async fn accounts_named(t: &crate::TestIam, admin: &str, username: &str) -> usize {
    let (status, list) = t
        .get(&format!("/api/v1/users?username={username}"), admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn the_generated_password_works_and_a_second_start_changes_nothing() {
    let mut cfg = config();
    cfg.admin_password = None;
    let first = boot(cfg.clone()).await;
    let password = first
        .generated_admin_password
        .as_ref()
        .expect("generated and printed on the first start")
        .expose()
        .to_owned();
    assert_eq!(password.len(), 16, "12 random bytes in base64, as OIH");
    let admin = first.login(ADMIN, &password).await;
    let (_, me) = first.get("/api/v1/users/me", &admin).await;
    assert_eq!(me["permissions"], json!(["all"]));

    let second = boot_on(cfg, Some(first.docs.clone())).await;
    assert!(
        second.generated_admin_password.is_none(),
        "printed once: nothing is generated on the next start"
    );
    assert_eq!(
        second.service_token, first.service_token,
        "the same service account token"
    );
    let admin = second.login(ADMIN, &password).await;
    assert_eq!(accounts_named(&second, &admin, ADMIN).await, 1);
    assert_eq!(
        accounts_named(&second, &admin, "service-iam@example.com").await,
        1
    );
    let (_, all) = second.get("/api/v1/users", &admin).await;
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    // The roles were seeded once too.
    let (_, roles) = second.get("/api/v1/roles", &admin).await;
    let admin_roles = roles
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["name"] == "ADMIN")
        .count();
    assert_eq!(admin_roles, 1, "{roles}");
}

#[tokio::test]
async fn a_configured_password_is_used_and_not_generated() {
    let t = boot(config()).await;
    assert!(t.generated_admin_password.is_none());
    assert_eq!(
        login_status(&t, ADMIN, crate::ADMIN_PASSWORD).await,
        StatusCode::OK
    );
}

/// `IAM_ADMIN_USERNAME` / `IAM_ADMIN_PASSWORD` fill these two fields (the environment names
/// are checked in `config.rs`); OIH's `IAM_ACC_ADMIN_*` win when both are set.
#[tokio::test]
async fn the_short_admin_variables_create_the_admin() {
    let mut cfg = config();
    cfg.admin_username = "admin@example.com".into(); // the default: not set by the operator
    cfg.admin_password = None;
    cfg.admin_username_alias = Some("Ops@Example.com".into());
    cfg.admin_password_alias = Some(Secret::new("from-env"));
    let t = boot(cfg).await;
    assert!(t.generated_admin_password.is_none());
    assert_eq!(
        login_status(&t, "ops@example.com", "from-env").await,
        StatusCode::OK
    );
    assert_eq!(
        login_status(&t, ADMIN, "from-env").await,
        StatusCode::UNAUTHORIZED
    );
    let token = t.login("ops@example.com", "from-env").await;
    let (_, me): (StatusCode, Value) = t.get("/api/v1/users/me", &token).await;
    assert_eq!(me["permissions"], json!(["all"]));
}
