//! Search over HTTP.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::get;

use super::extract::{Auth, QueryParams};
use crate::app::{App, SearchPage, SearchParams};
use crate::error::Result;

pub fn routes() -> Router<App> {
    Router::new().route("/search", get(search))
}

async fn search(
    State(app): State<App>,
    auth: Auth,
    QueryParams(params): QueryParams<SearchParams>,
) -> Result<Json<SearchPage>> {
    Ok(Json(app.search(auth.session.user.id, &params).await?))
}
