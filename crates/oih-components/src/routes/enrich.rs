//! `PATCH /components/enrich/{id}`: see [`crate::enrich`].

use axum::extract::State;
use axum::http::StatusCode;
use oih_http::{ApiError, Auth, Path, Query, require};

use super::AppState;
use super::components::{check_write, load};
use crate::enrich::{EnrichError, GithubRepo};
use crate::store::COMPONENTS;

#[derive(Debug, serde::Deserialize)]
pub struct EnrichQuery {
    repository: Option<String>,
    version: Option<String>,
}

pub async fn enrich(
    State(s): State<AppState>,
    Auth(identity): Auth,
    Path(id): Path<String>,
    Query(q): Query<EnrichQuery>,
) -> Result<StatusCode, ApiError> {
    require(&identity, &[&s.config.update_permission])?;
    let mut doc = load(&s, &id, q.version.as_deref()).await?;
    check_write(&s, &identity, &doc)?;
    let url = q
        .repository
        .or_else(|| doc.body.repository.clone())
        .filter(|url| !url.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing Repository URL"))?;
    let repo = GithubRepo::parse(&url).ok_or_else(|| {
        ApiError::bad_request("The repository URL must be https://github.com/<owner>/<repository>")
    })?;
    let enriched = s.fetcher.enrich(&repo).await.map_err(|err| match err {
        EnrichError::Unreachable(_) => ApiError::Other {
            status: StatusCode::BAD_GATEWAY,
            message: err.to_string(),
        },
        other => ApiError::bad_request(other.to_string()),
    })?;
    doc.body.actions = enriched.actions;
    doc.body.triggers = enriched.triggers;
    doc.body.rating = Some(enriched.rating);
    doc.body.repository = Some(url);
    s.repo.update(COMPONENTS, &doc).await?;
    Ok(StatusCode::NO_CONTENT)
}
