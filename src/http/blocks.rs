//! Blocks over HTTP: the users the caller blocks, blocking and unblocking one.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde::Serialize;

use super::extract::{Auth, PathParams};
use crate::app::App;
use crate::domain::User;
use crate::error::Result;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/me/blocks", get(blocked_users))
        .route("/me/blocks/{user_id}", put(block).delete(unblock))
}

#[derive(Serialize)]
struct Users {
    users: Vec<User>,
}

async fn blocked_users(State(app): State<App>, auth: Auth) -> Result<Json<Users>> {
    Ok(Json(Users { users: app.blocked_users(auth.session.user.id).await? }))
}

async fn block(
    State(app): State<App>,
    auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<StatusCode> {
    app.block(auth.session.user.id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unblock(
    State(app): State<App>,
    auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<StatusCode> {
    app.unblock(auth.session.user.id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
