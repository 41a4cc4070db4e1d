//! Administration over HTTP, for the web client's administrators: the accounts list,
//! deactivating and reactivating, deleting messages of public rooms. Everyone else gets
//! 403 `not_admin`.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Auth, PathParams, QueryParams};
use crate::app::App;
use crate::app::admin::{AccountView, AdminOutcome};
use crate::domain::{Message, Timestamp};
use crate::error::{Error, Result};
use crate::store::AccountChange;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(users))
        .routes(routes!(deactivate))
        .routes(routes!(reactivate))
        .routes(routes!(delete_message))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UsersQuery {
    /// The start of a username or display name (any case); everyone when empty.
    #[serde(default)]
    q: String,
    /// The username after which the page starts (the previous page's `next`).
    after: Option<String>,
    /// 1 to 200; 50 when absent.
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = AccountsPage)]
struct UsersPage {
    users: Vec<AccountView>,
    /// The `after` of the next page; null on the last.
    next: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct AccountResponse {
    user: AccountView,
    /// Sessions the change ended.
    sessions_ended: u64,
}

/// The accounts, a page at a time, by username (administrators only).
#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "administration",
    params(UsersQuery),
    responses(
        (status = 200, description = "A page of accounts.", body = UsersPage),
        (status = 403, description = "`not_admin`."),
        (status = 422, description = "`invalid_limit`."),
    ),
)]
async fn users(
    State(app): State<App>,
    auth: Auth,
    QueryParams(query): QueryParams<UsersQuery>,
) -> Result<Json<UsersPage>> {
    app.administrator(&auth.session)?;
    match app.accounts(&query.q, query.after.as_deref(), query.limit).await? {
        AdminOutcome::Accounts { users, next } => Ok(Json(UsersPage { users, next })),
        AdminOutcome::Account { .. } => Err(Error::internal("a list answered with one account")),
    }
}

/// Deactivates an account: its sessions end at once on every node, and it cannot sign in
/// until reactivated (administrators only).
#[utoipa::path(
    post,
    path = "/admin/users/{user_id}/deactivate",
    tag = "administration",
    params(("user_id" = String, Path, description = "A user's id.")),
    responses(
        (status = 200, description = "The account, and the sessions ended.", body = AccountResponse),
        (status = 403, description = "`not_admin`."),
        (status = 409, description = "`cannot_deactivate_self`."),
    ),
)]
async fn deactivate(
    State(app): State<App>,
    auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<Json<AccountResponse>> {
    change(&app, &auth, &user_id, AccountChange::Deactivate { at: Timestamp::now() }).await
}

/// Reactivates an account (administrators only).
#[utoipa::path(
    post,
    path = "/admin/users/{user_id}/reactivate",
    tag = "administration",
    params(("user_id" = String, Path, description = "A user's id.")),
    responses(
        (status = 200, description = "The account.", body = AccountResponse),
        (status = 403, description = "`not_admin`."),
    ),
)]
async fn reactivate(
    State(app): State<App>,
    auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<Json<AccountResponse>> {
    change(&app, &auth, &user_id, AccountChange::Reactivate).await
}

async fn change(
    app: &App,
    auth: &Auth,
    user_id: &str,
    change: AccountChange,
) -> Result<Json<AccountResponse>> {
    let actor = app.administrator(&auth.session)?;
    match app.admin_change(&actor, user_id, change).await? {
        AdminOutcome::Account { account, sessions_ended, .. } => {
            Ok(Json(AccountResponse { user: account, sessions_ended }))
        }
        AdminOutcome::Accounts { .. } => Err(Error::internal("a change answered with a list")),
    }
}

/// Deletes any message of a public room, member or not (administrators only); a private
/// room or DM the caller is not in does not exist for them.
#[utoipa::path(
    delete,
    path = "/admin/rooms/{room_id}/messages/{message_id}",
    tag = "administration",
    params(("room_id" = String, Path, description = "A room's id."), ("message_id" = String, Path, description = "A message's id.")),
    responses(
        (status = 200, description = "The tombstone.", body = Message),
        (status = 403, description = "`not_admin`, `not_member`, `not_author`."),
        (status = 409, description = "`message_deleted`."),
    ),
)]
async fn delete_message(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, message_id)): PathParams<(String, String)>,
) -> Result<Json<Message>> {
    let actor = app.administrator(&auth.session)?;
    Ok(Json(app.admin_delete_message(&actor, &auth.session, &room_id, &message_id).await?))
}
