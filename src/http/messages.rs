//! Messages over HTTP: history by seq, and sending.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use super::extract::{Auth, JsonBody, PathParams, QueryParams};
use crate::app::{App, HistoryQuery};
use crate::domain::Message;
use crate::error::Result;

pub fn routes() -> Router<App> {
    Router::new().route("/rooms/{room_id}/messages", get(history).post(send))
}

#[derive(Serialize)]
struct History {
    messages: Vec<Message>,
    has_more: bool,
}

#[derive(Deserialize)]
struct SendRequest {
    body: String,
    client_id: Option<String>,
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
    let (message, created) = app
        .send_message_to(
            auth.session.user.id,
            &room_id,
            &request.body,
            request.client_id.as_deref(),
        )
        .await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(message)))
}
