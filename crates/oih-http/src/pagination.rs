//! OIH's list conventions: `page[size]`/`page[number]`, `filter[<field>]`, `sort=field` /
//! `sort=-field`, `search` (qs-style keys; data-services.md §0.3, §1.5), and the response
//! envelopes `{data, meta:{page, perPage, total, totalPages}}`, `{data, meta:{}}`, `{data}`.
//!
//! Unlike OIH (where `parseInt` of garbage gave NaN and a 500), a page size or number that is
//! not a positive integer is a 400.

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiError;

pub const DEFAULT_PAGE_SIZE: u64 = 10;

/// Which page of a list the caller wants (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub size: u64,
    pub number: u64,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            size: DEFAULT_PAGE_SIZE,
            number: 1,
        }
    }
}

impl PageRequest {
    /// Parses the raw `page[size]` and `page[number]` values; absent means the default.
    pub fn parse(size: Option<&str>, number: Option<&str>) -> Result<Self, ApiError> {
        let default = Self::default();
        Ok(Self {
            size: positive(size, "page[size]")?.unwrap_or(default.size),
            number: positive(number, "page[number]")?.unwrap_or(default.number),
        })
    }

    /// How many items precede this page.
    pub fn skip(&self) -> u64 {
        self.number.saturating_sub(1).saturating_mul(self.size)
    }

    pub fn limit(&self) -> u64 {
        self.size
    }
}

fn positive(raw: Option<&str>, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(Some(n)),
        _ => Err(ApiError::BadRequest(format!("Invalid {name} parameter"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortOrder {
    Asc,
    Desc,
}

/// `sort=field` (ascending) or `sort=-field` (descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub field: String,
    pub order: SortOrder,
}

impl Sort {
    pub fn asc(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            order: SortOrder::Asc,
        }
    }

    pub fn desc(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            order: SortOrder::Desc,
        }
    }

    pub fn parse(raw: &str) -> Self {
        match raw.strip_prefix('-') {
            Some(field) => Self::desc(field),
            None => Self::asc(raw),
        }
    }
}

/// A list request's query string, decoded. Keys are matched after percent-decoding, so
/// `page%5Bsize%5D=5` and `page[size]=5` are the same. When a key repeats, the last value wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub page: PageRequest,
    /// `filter[<name>]=<value>`, keyed by `<name>`.
    pub filters: BTreeMap<String, String>,
    /// The raw `sort` value; see [`ListQuery::sort_by`].
    pub sort: Option<String>,
    pub search: Option<String>,
    /// Every parameter in order, for service-specific keys.
    pub params: Vec<(String, String)>,
}

impl ListQuery {
    /// Parses a raw (still percent-encoded) query string.
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let params = decode(query.unwrap_or(""))?;
        let last = |key: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let page = PageRequest::parse(last("page[size]"), last("page[number]"))?;
        let sort = last("sort").map(str::to_owned);
        let search = last("search").map(str::to_owned);
        let mut filters = BTreeMap::new();
        for (key, value) in &params {
            if let Some(name) = key
                .strip_prefix("filter[")
                .and_then(|rest| rest.strip_suffix(']'))
            {
                filters.insert(name.to_owned(), value.clone());
            }
        }
        Ok(Self {
            page,
            filters,
            sort,
            search,
            params,
        })
    }

    pub fn filter(&self, name: &str) -> Option<&str> {
        self.filters.get(name).map(String::as_str)
    }

    /// The last value of any parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The requested sort if its field is one of `allowed`, `default` when none was asked
    /// for, else 400 `Invalid sort parameter` (flow-repository's message).
    pub fn sort_by(&self, allowed: &[&str], default: Sort) -> Result<Sort, ApiError> {
        let Some(raw) = self.sort.as_deref() else {
            return Ok(default);
        };
        let sort = Sort::parse(raw);
        if allowed.contains(&sort.field.as_str()) {
            Ok(sort)
        } else {
            Err(ApiError::bad_request("Invalid sort parameter"))
        }
    }
}

fn decode(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    // axum's Query (serde_urlencoded) does the percent- and `+`-decoding.
    let uri = format!("/?{query}")
        .parse::<axum::http::Uri>()
        .map_err(|_| ApiError::bad_request("Invalid query string"))?;
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|_| ApiError::bad_request("Invalid query string"))
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Self::parse(parts.uri.query())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ListQuery::parse(parts.uri.query())?.page)
    }
}

/// Pagination facts of a list answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    pub page: u64,
    pub per_page: u64,
    pub total: u64,
    pub total_pages: u64,
}

impl PageMeta {
    pub fn new(request: &PageRequest, total: u64) -> Self {
        Self {
            page: request.number,
            per_page: request.size,
            total,
            total_pages: total.div_ceil(request.size.max(1)),
        }
    }
}

/// `{data: [...], meta: {page, perPage, total, totalPages}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

impl<T> Page<T> {
    pub fn new(data: Vec<T>, request: &PageRequest, total: u64) -> Self {
        Self {
            data,
            meta: PageMeta::new(request, total),
        }
    }
}

/// The empty `meta: {}` of OIH's single-item answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EmptyMeta {}

/// `{data: ..., meta: {}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DataMeta<T> {
    pub data: T,
    #[serde(default)]
    pub meta: EmptyMeta,
}

impl<T> DataMeta<T> {
    pub fn new(data: T) -> Self {
        Self {
            data,
            meta: EmptyMeta {},
        }
    }
}

/// `{data: ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

impl<T> Data<T> {
    pub fn new(data: T) -> Self {
        Self { data }
    }
}

macro_rules! json_response {
    ($($ty:ident),*) => {$(
        impl<T: Serialize> IntoResponse for $ty<T> {
            fn into_response(self) -> Response {
                axum::Json(self).into_response()
            }
        }
    )*};
}
json_response!(Page, DataMeta, Data);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let q = ListQuery::parse(None).expect("parse");
        assert_eq!(
            q.page,
            PageRequest {
                size: 10,
                number: 1
            }
        );
        assert_eq!(q.page.skip(), 0);
        assert!(q.filters.is_empty());
    }

    #[test]
    fn brackets_encoded_or_not() {
        let q = ListQuery::parse(Some(
            "page%5Bsize%5D=5&page[number]=3&filter[status]=active&filter%5Btype%5D=ordinary&sort=-name&search=a+b%21",
        ))
        .expect("parse");
        assert_eq!(q.page, PageRequest { size: 5, number: 3 });
        assert_eq!(q.page.skip(), 10);
        assert_eq!(q.filter("status"), Some("active"));
        assert_eq!(q.filter("type"), Some("ordinary"));
        assert_eq!(q.search.as_deref(), Some("a b!"));
        assert_eq!(
            q.sort_by(&["name"], Sort::asc("createdAt")).expect("sort"),
            Sort::desc("name")
        );
    }

    #[test]
    fn invalid_pages_are_400() {
        for bad in [
            "page[size]=0",
            "page[size]=-1",
            "page[size]=abc",
            "page[number]=0",
            "page[number]=1.5",
        ] {
            let err = ListQuery::parse(Some(bad)).expect_err(bad);
            assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn sort_validation() {
        let q = ListQuery::parse(Some("sort=password")).expect("parse");
        assert!(q.sort_by(&["name"], Sort::asc("createdAt")).is_err());
        let q = ListQuery::parse(None).expect("parse");
        assert_eq!(
            q.sort_by(&["name"], Sort::asc("createdAt"))
                .expect("default"),
            Sort::asc("createdAt")
        );
    }

    #[test]
    fn meta() {
        let req = PageRequest {
            size: 10,
            number: 2,
        };
        assert_eq!(
            serde_json::to_value(Page::new(vec![1], &req, 21)).expect("json"),
            serde_json::json!({"data":[1],"meta":{"page":2,"perPage":10,"total":21,"totalPages":3}})
        );
        assert_eq!(
            serde_json::to_value(DataMeta::new(1)).expect("json"),
            serde_json::json!({"data":1,"meta":{}})
        );
    }
}
