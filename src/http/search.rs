//! Search over HTTP.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Auth, QueryParams};
use crate::app::{App, SearchPage, SearchParams};
use crate::error::Result;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(search))
}

/// Messages matching a query in the caller's rooms, newest first.
#[utoipa::path(
    get,
    path = "/search",
    tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "A page of results; `next` goes on.", body = SearchPage),
        (status = 403, description = "`not_member`: `room_id` names a public room you have not joined."),
        (status = 404, description = "`not_found`: `room_id` names no room you may see."),
        (status = 422, description = "`empty_query`, `query_too_long`, `invalid_query_characters`, `invalid_limit`."),
    ),
)]
async fn search(
    State(app): State<App>,
    auth: Auth,
    QueryParams(params): QueryParams<SearchParams>,
) -> Result<Json<SearchPage>> {
    Ok(Json(app.search(auth.session.user.id, &params).await?))
}
