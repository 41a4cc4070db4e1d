//! Messages over HTTP: history by seq, sending, editing, deleting, reactions, and reading.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Auth, JsonBody, PathParams, QueryParams};
use crate::app::{App, Draft, HistoryQuery};
use crate::domain::Unread;
use crate::domain::{Message, Receipt};
use crate::error::Result;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(history, send))
        .routes(routes!(edit, delete))
        .routes(routes!(add_reaction, remove_reaction))
        .routes(routes!(read))
        .routes(routes!(receipts))
}

/// A page of history, oldest first.
#[derive(Serialize, ToSchema)]
struct History {
    messages: Vec<Message>,
    /// More messages lie beyond this page, in the direction read.
    has_more: bool,
}

#[derive(Deserialize, ToSchema)]
struct SendRequest {
    /// 1–4,000 characters; may be empty when there are attachments.
    #[serde(default)]
    body: String,
    /// The idempotency key: a retry with the same one is stored once.
    client_id: Option<String>,
    /// The id of a message of the same room this one answers.
    reply_to: Option<String>,
    /// Ids of files uploaded with `POST /media` (at most 10).
    #[serde(default)]
    attachments: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
struct EditRequest {
    body: String,
}

#[derive(Deserialize, ToSchema)]
struct ReadRequest {
    /// Everything up to this seq is read.
    seq: i64,
}

#[derive(Serialize, ToSchema)]
struct Receipts {
    receipts: Vec<Receipt>,
}

/// A page of a room's history by seq: the newest, or `before`/`after` a seq.
#[utoipa::path(
    get,
    path = "/rooms/{room_id}/messages",
    tag = "messages",
    params(("room_id" = String, Path, description = "A room's id."), HistoryQuery),
    responses(
        (status = 200, description = "Messages, oldest first.", body = History),
        (status = 422, description = "`invalid_limit`, `invalid_seq`."),
    ),
)]
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
#[utoipa::path(
    post,
    path = "/rooms/{room_id}/messages",
    tag = "messages",
    params(("room_id" = String, Path, description = "A room's id.")),
    request_body = SendRequest,
    responses(
        (status = 200, description = "Stored before under this `client_id`: the stored message.", body = Message),
        (status = 201, description = "Stored.", body = Message),
        (status = 403, description = "`not_member`: a public room you have not joined; `blocked`: the other member of the DM blocks you."),
        (status = 409, description = "`message_deleted`: `reply_to` names a deleted message."),
        (status = 422, description = "`empty_body`, `body_too_long`, `invalid_body`, `invalid_client_id`, `unknown_message`, `unknown_attachment`, `too_many_attachments`."),
    ),
)]
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

/// Replaces the body of one's own message.
#[utoipa::path(
    patch,
    path = "/rooms/{room_id}/messages/{message_id}",
    tag = "messages",
    params(("room_id" = String, Path, description = "A room's id."), ("message_id" = String, Path, description = "A message's id.")),
    request_body = EditRequest,
    responses(
        (status = 200, description = "The message, edited.", body = Message),
        (status = 403, description = "`not_member`, `not_author`."),
        (status = 409, description = "`message_deleted`."),
        (status = 422, description = "`empty_body`, `body_too_long`, `invalid_body`."),
    ),
)]
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
#[utoipa::path(
    delete,
    path = "/rooms/{room_id}/messages/{message_id}",
    tag = "messages",
    params(("room_id" = String, Path, description = "A room's id."), ("message_id" = String, Path, description = "A message's id.")),
    responses(
        (status = 200, description = "The tombstone.", body = Message),
        (status = 403, description = "`not_member`, `not_author`."),
        (status = 409, description = "`message_deleted`."),
    ),
)]
async fn delete(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, message_id)): PathParams<(String, String)>,
) -> Result<Json<Message>> {
    Ok(Json(app.delete_message(auth.session.user.id, &room_id, &message_id).await?))
}

/// Adds the caller's reaction (nothing changes if it is there).
#[utoipa::path(
    put,
    path = "/rooms/{room_id}/messages/{message_id}/reactions/{emoji}",
    tag = "messages",
    params(("room_id" = String, Path, description = "A room's id."), ("message_id" = String, Path, description = "A message's id."), ("emoji" = String, Path, description = "The emoji (percent-encoded), or a short code such as `:shipit:`.")),
    responses(
        (status = 200, description = "The message.", body = Message),
        (status = 403, description = "`not_member`."),
        (status = 409, description = "`message_deleted`."),
        (status = 422, description = "`invalid_emoji`, `too_many_reactions`."),
    ),
)]
async fn add_reaction(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, message_id, emoji)): PathParams<(String, String, String)>,
) -> Result<Json<Message>> {
    let user = auth.session.user.id;
    Ok(Json(app.react(user, &room_id, &message_id, &emoji, true).await?))
}

/// Removes the caller's reaction (nothing changes if it is not there).
#[utoipa::path(
    delete,
    path = "/rooms/{room_id}/messages/{message_id}/reactions/{emoji}",
    tag = "messages",
    params(("room_id" = String, Path, description = "A room's id."), ("message_id" = String, Path, description = "A message's id."), ("emoji" = String, Path, description = "The emoji (percent-encoded), or a short code such as `:shipit:`.")),
    responses(
        (status = 200, description = "The message.", body = Message),
        (status = 403, description = "`not_member`."),
        (status = 409, description = "`message_deleted`."),
        (status = 422, description = "`invalid_emoji`."),
    ),
)]
async fn remove_reaction(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, message_id, emoji)): PathParams<(String, String, String)>,
) -> Result<Json<Message>> {
    let user = auth.session.user.id;
    Ok(Json(app.react(user, &room_id, &message_id, &emoji, false).await?))
}

/// Marks the room read up to `seq`; answers with the caller's counts.
#[utoipa::path(
    post,
    path = "/rooms/{room_id}/read",
    tag = "messages",
    params(("room_id" = String, Path, description = "A room's id.")),
    request_body = ReadRequest,
    responses(
        (status = 200, description = "Your marker and counts.", body = Unread),
        (status = 403, description = "`not_member`."),
        (status = 422, description = "`invalid_seq`."),
    ),
)]
async fn read(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
    JsonBody(request): JsonBody<ReadRequest>,
) -> Result<Json<Unread>> {
    Ok(Json(app.mark_read(auth.session.user.id, &room_id, Some(request.seq), None).await?))
}

/// Every member's read and delivered markers.
#[utoipa::path(
    get,
    path = "/rooms/{room_id}/receipts",
    tag = "messages",
    params(("room_id" = String, Path, description = "A room's id.")),
    responses(
        (status = 200, description = "The markers.", body = Receipts),
        (status = 403, description = "`not_member`."),
    ),
)]
async fn receipts(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
) -> Result<Json<Receipts>> {
    Ok(Json(Receipts { receipts: app.receipts(auth.session.user.id, &room_id).await? }))
}
