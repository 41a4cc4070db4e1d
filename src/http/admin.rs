//! Administration over HTTP, for the web client's administrators: the accounts list,
//! deactivating and reactivating, deleting messages of public rooms. Everyone else gets
//! 403 `not_admin`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use super::extract::{Auth, PathParams, QueryParams};
use crate::app::App;
use crate::app::admin::{AccountView, AdminOutcome};
use crate::domain::{Message, Timestamp};
use crate::error::{Error, Result};
use crate::store::AccountChange;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/admin/users", get(users))
        .route("/admin/users/{user_id}/deactivate", post(deactivate))
        .route("/admin/users/{user_id}/reactivate", post(reactivate))
        .route("/admin/rooms/{room_id}/messages/{message_id}", delete(delete_message))
}

#[derive(Deserialize)]
struct UsersQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct UsersPage {
    users: Vec<AccountView>,
    /// The `after` of the next page; null on the last.
    next: Option<String>,
}

#[derive(Serialize)]
struct AccountResponse {
    user: AccountView,
    /// Sessions the change ended.
    sessions_ended: u64,
}

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

async fn deactivate(
    State(app): State<App>,
    auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<Json<AccountResponse>> {
    change(&app, &auth, &user_id, AccountChange::Deactivate { at: Timestamp::now() }).await
}

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

/// 200 with the tombstone.
async fn delete_message(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, message_id)): PathParams<(String, String)>,
) -> Result<Json<Message>> {
    let actor = app.administrator(&auth.session)?;
    Ok(Json(app.admin_delete_message(&actor, &auth.session, &room_id, &message_id).await?))
}
