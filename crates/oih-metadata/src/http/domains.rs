//! `GET/POST /api/v1/domains`, `GET/PUT/DELETE /api/v1/domains/{id}`.

use axum::extract::State;
use axum::http::Uri;
use oih_http::{ApiError, Auth, Data, Path, require};
use serde_json::{Value, json};

use super::{AppState, Body, Guard, list_body, log_unpublished, page_of};
use crate::access::CRUD;
use crate::events::{DOMAIN_CREATED, DOMAIN_MODIFIED};
use crate::model::{DomainInput, user_owner};

fn input(body: Body, is_admin: bool) -> Result<DomainInput, ApiError> {
    let mut input = DomainInput::parse(&body?.0).map_err(ApiError::BadRequest)?;
    // Only admins publish domains to everyone.
    input.public = input.public && is_admin;
    Ok(input)
}

/// `GET /domains`: the caller's tenant's domains, public ones and those it owns.
#[utoipa::path(get, path = "/api/v1/domains", tag = "domains",
    params(
        ("page[size]" = Option<u64>, Query, description = "Page size (default 10)"),
        ("page[number]" = Option<u64>, Query, description = "Page number, from 1"),
    ),
    responses((status = 200, description = "`{data: [Domain], meta: {page, perPage, total, totalPages}}`")))]
pub(super) async fn list(
    State(st): State<AppState>,
    Auth(who): Auth,
    uri: Uri,
) -> Result<axum::Json<Value>, ApiError> {
    let page = page_of(uri.query())?;
    let listed = st
        .store
        .visible_domains(&who, page.skip(), page.limit())
        .await?;
    let data = listed.items.iter().map(|d| d.to_json()).collect();
    Ok(axum::Json(list_body(data, &page, listed.total)))
}

/// `POST /domains`: the caller owns the new domain, in its tenant.
#[utoipa::path(post, path = "/api/v1/domains", tag = "domains",
    responses(
        (status = 200, description = "`{data: Domain}`; `public` only for admins"),
        (status = 403, description = "`MISSING_PERMISSION` (`metadata.domains.crud`)"),
    ))]
pub(super) async fn create(
    State(st): State<AppState>,
    Auth(who): Auth,
    body: Body,
) -> Result<Data<Value>, ApiError> {
    require(&who, &[CRUD])?;
    let input = input(body, who.is_admin())?;
    let domain = st
        .store
        .create_domain(input, vec![user_owner(&who.sub)], who.tenant.clone())
        .await?;
    log_unpublished(
        DOMAIN_CREATED,
        st.events.domain(DOMAIN_CREATED, &domain.id).await,
    );
    Ok(Data::new(domain.to_json()))
}

/// `GET /domains/{id}`.
#[utoipa::path(get, path = "/api/v1/domains/{id}", tag = "domains",
    responses((status = 200, description = "`{data: Domain}`"), (status = 403), (status = 404)))]
pub(super) async fn read(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<Data<Value>, ApiError> {
    let domain = st.domain(&who, &id, Guard::Read).await?;
    Ok(Data::new(domain.to_json()))
}

/// `PUT /domains/{id}`: name, description and (admins only) `public`. Owners and tenant stay.
#[utoipa::path(put, path = "/api/v1/domains/{id}", tag = "domains",
    responses((status = 200, description = "`{data: Domain}`"), (status = 400), (status = 403), (status = 404)))]
pub(super) async fn update(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
    body: Body,
) -> Result<Data<Value>, ApiError> {
    let domain = st.domain(&who, &id, Guard::OwnerOr(&[CRUD])).await?;
    let input = input(body, who.is_admin())?;
    let updated = st.store.update_domain(&domain, input).await?;
    log_unpublished(
        DOMAIN_MODIFIED,
        st.events.domain(DOMAIN_MODIFIED, &updated.id).await,
    );
    Ok(Data::new(updated.to_json()))
}

/// `DELETE /domains/{id}`: the domain and its schemas; refused while schemas of other domains
/// reference them. OIH's `200 {}`.
#[utoipa::path(delete, path = "/api/v1/domains/{id}", tag = "domains",
    responses((status = 200, description = "`{}`"), (status = 400, description = "Referenced from another domain"), (status = 403), (status = 404)))]
pub(super) async fn remove(
    State(st): State<AppState>,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let domain = st.domain(&who, &id, Guard::OwnerOr(&[])).await?;
    let uris = st.store.schema_uris_in_domain(&domain.id).await?;
    let outside = st.store.referrers(&uris, Some(&domain.id)).await?;
    if !outside.is_empty() {
        let names: Vec<&str> = outside.iter().map(|s| s.uri.as_str()).collect();
        return Err(ApiError::bad_request(format!(
            "Schemas of domain {} referenced by {}",
            domain.id,
            names.join(",")
        )));
    }
    st.store.delete_domain(&domain.id).await?;
    st.validators.invalidate(&uris);
    log_unpublished(
        crate::events::DOMAIN_DELETED,
        st.events.domain_deleted(&domain.id).await,
    );
    Ok(axum::Json(json!({})))
}
