//! `page[size]`/`page[number]`, `filter[...]` and `sort` through a real route.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use oih_http::{ApiError, App, ErrorShape, ListQuery, Page, ServiceModule, Sort};
use serde_json::json;

use crate::{get as get_req, send};

async fn list(query: ListQuery) -> Result<Page<u64>, ApiError> {
    let sort = query.sort_by(&["createdAt", "name"], Sort::asc("createdAt"))?;
    let total = 25;
    let items: Vec<u64> = (query.page.skip()..total)
        .take(usize::try_from(query.page.limit()).unwrap_or(usize::MAX))
        .collect();
    let _ = (sort, query.filter("status"));
    Ok(Page::new(items, &query.page, total))
}

fn app() -> Router {
    App::new()
        .module(ServiceModule::new(
            "paging-test",
            ErrorShape::Errors,
            Router::new().route("/items", get(list)),
        ))
        .build()
        .router
}

#[tokio::test]
async fn defaults_and_meta() {
    let (status, _, body) = send(&app(), get_req("/items")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["meta"],
        json!({"page":1,"perPage":10,"total":25,"totalPages":3})
    );
    assert_eq!(body["data"].as_array().expect("data").len(), 10);
}

#[tokio::test]
async fn explicit_page() {
    let (status, _, body) = send(
        &app(),
        get_req("/items?page%5Bsize%5D=4&page[number]=7&sort=-name"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"], json!([24]));
    assert_eq!(
        body["meta"],
        json!({"page":7,"perPage":4,"total":25,"totalPages":7})
    );
}

#[tokio::test]
async fn invalid_values_are_400() {
    let cases = [
        ("/items?page[size]=0", "Invalid page[size] parameter"),
        ("/items?page[size]=ten", "Invalid page[size] parameter"),
        ("/items?page[number]=-2", "Invalid page[number] parameter"),
        ("/items?sort=-password", "Invalid sort parameter"),
    ];
    for (uri, message) in cases {
        let (status, _, body) = send(&app(), get_req(uri)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(
            body,
            json!({"errors":[{"message":message,"code":400}]}),
            "{uri}"
        );
    }
}
