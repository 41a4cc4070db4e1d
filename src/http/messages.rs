//! Messages over HTTP: history by seq, sending, editing, deleting, reactions, and reading.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};

use super::extract::{Auth, JsonBody, PathParams, QueryParams};
use crate::app::{App, Draft, HistoryQuery};
use crate::domain::Unread;
use crate::domain::{Message, Receipt};
use crate::error::Result;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/rooms/{room_id}/messages", get(history).post(send))
        .route("/rooms/{room_id}/messages/{message_id}", axum::routing::patch(edit).delete(delete))
        .route(
            "/rooms/{room_id}/messages/{message_id}/reactions/{emoji}",
            put(add_reaction).delete(remove_reaction),
        )
        .route("/rooms/{room_id}/read", post(read))
        .route("/rooms/{room_id}/receipts", get(receipts))
}

#[derive(Serialize)]
struct History {
    messages: Vec<Message>,
    has_more: bool,
}

#[derive(Deserialize)]
struct SendRequest {
    #[serde(default)]
    body: String,
    client_id: Option<String>,
    reply_to: Option<String>,
    #[serde(default)]
    attachments: Vec<String>,
}

#[derive(Deserialize)]
struct EditRequest {
    body: String,
}

#[derive(Deserialize)]
struct ReadRequest {
    seq: i64,
}

#[derive(Serialize)]
struct Receipts {
    receipts: Vec<Receipt>,
}

async fn history(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Json<History>> {
    let page = app.history(auth.session.user.id, &room_id, &query).await?;
    Ok(Json(History { messages: page.messages, has_more: page.has_more }))
}

/// 201 with the new message, or 200 with the stored one when `client_id` was used before.
async fn send(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
    JsonBody(request): JsonBody<SendRequest>,
) -> Result<(StatusCode, Json<Message>)> {
    let draft = Draft {
        body: &request.body,
        client_id: request.client_id.as_deref(),
        reply_to: request.reply_to.as_deref(),
        attachments: &request.attachments,
    };
    let (message, created) = app.send_message(auth.session.user.id, &room_id, draft).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(message)))
}

async fn edit(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, message_id)): PathParams<(String, String)>,
    JsonBody(request): JsonBody<EditRequest>,
) -> Result<Json<Message>> {
    let user = auth.session.user.id;
    Ok(Json(app.edit_message(user, &room_id, &message_id, &request.body).await?))
}

/// 200 with the tombstone.
async fn delete(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, message_id)): PathParams<(String, String)>,
) -> Result<Json<Message>> {
    Ok(Json(app.delete_message(auth.session.user.id, &room_id, &message_id).await?))
}

async fn add_reaction(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, message_id, emoji)): PathParams<(String, String, String)>,
) -> Result<Json<Message>> {
    let user = auth.session.user.id;
    Ok(Json(app.react(user, &room_id, &message_id, &emoji, true).await?))
}

async fn remove_reaction(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, message_id, emoji)): PathParams<(String, String, String)>,
) -> Result<Json<Message>> {
    let user = auth.session.user.id;
    Ok(Json(app.react(user, &room_id, &message_id, &emoji, false).await?))
}

/// Marks the room read up to `seq`; answers with the caller's counts.
async fn read(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
    JsonBody(request): JsonBody<ReadRequest>,
) -> Result<Json<Unread>> {
    Ok(Json(app.mark_read(auth.session.user.id, &room_id, Some(request.seq), None).await?))
}

async fn receipts(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
) -> Result<Json<Receipts>> {
    Ok(Json(Receipts { receipts: app.receipts(auth.session.user.id, &room_id).await? }))
}
