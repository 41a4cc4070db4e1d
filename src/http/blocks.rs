//! Blocks over HTTP: the users the caller blocks, blocking and unblocking one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Auth, PathParams};
use crate::app::App;
use crate::domain::User;
use crate::error::Result;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(blocked_users)).routes(routes!(block, unblock))
}

#[derive(Serialize, ToSchema)]
#[schema(as = BlockedUsers)]
struct Users {
    users: Vec<User>,
}

/// The people the signed-in user blocks.
#[utoipa::path(
    get,
    path = "/me/blocks",
    tag = "blocks",
    responses((status = 200, description = "Whom you block.", body = Users)),
)]
async fn blocked_users(State(app): State<App>, auth: Auth) -> Result<Json<Users>> {
    Ok(Json(Users { users: app.blocked_users(auth.session.user.id).await? }))
}

/// Blocks a user: no DM from them, no adding you to rooms.
#[utoipa::path(
    put,
    path = "/me/blocks/{user_id}",
    tag = "blocks",
    params(("user_id" = String, Path, description = "A user's id.")),
    responses(
        (status = 204, description = "Blocked (or already)."),
        (status = 422, description = "`cannot_block_self`."),
    ),
)]
async fn block(
    State(app): State<App>,
    auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<StatusCode> {
    app.block(auth.session.user.id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Unblocks a user.
#[utoipa::path(
    delete,
    path = "/me/blocks/{user_id}",
    tag = "blocks",
    params(("user_id" = String, Path, description = "A user's id.")),
    responses(
        (status = 204, description = "Unblocked (or was not blocked)."),
        (status = 422, description = "`cannot_block_self`."),
    ),
)]
async fn unblock(
    State(app): State<App>,
    auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<StatusCode> {
    app.unblock(auth.session.user.id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
