//! Rooms over HTTP: the caller's rooms, the public directory, creating, joining, leaving,
//! membership, and direct messages.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};

use super::extract::{Auth, JsonBody, PathParams, QueryParams};
use crate::app::App;
use crate::domain::{Member, PresenceStatus, Room};
use crate::error::Result;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/rooms", get(my_rooms).post(create_room))
        .route("/rooms/public", get(public_rooms))
        .route("/rooms/{room_id}", get(room))
        .route("/rooms/{room_id}/join", post(join))
        .route("/rooms/{room_id}/leave", post(leave))
        .route("/rooms/{room_id}/members", get(members).post(add_member))
        .route("/rooms/{room_id}/members/{user_id}", delete(remove_member))
        .route("/dm/{user_id}", post(open_dm))
}

#[derive(Serialize)]
struct Rooms {
    rooms: Vec<Room>,
}

#[derive(Deserialize)]
struct CreateRoom {
    name: String,
    kind: String,
    #[serde(default)]
    member_ids: Vec<String>,
}

#[derive(Deserialize)]
struct Directory {
    #[serde(default)]
    q: String,
    limit: Option<u32>,
}

#[derive(Deserialize)]
struct AddMember {
    user_id: String,
}

#[derive(Serialize)]
struct Members {
    members: Vec<Member>,
    /// Members online or away now.
    online_count: usize,
}

async fn my_rooms(State(app): State<App>, auth: Auth) -> Result<Json<Rooms>> {
    Ok(Json(Rooms { rooms: app.rooms(auth.session.user.id).await? }))
}

async fn public_rooms(
    State(app): State<App>,
    auth: Auth,
    QueryParams(query): QueryParams<Directory>,
) -> Result<Json<Rooms>> {
    let rooms = app.public_rooms(auth.session.user.id, &query.q, query.limit).await?;
    Ok(Json(Rooms { rooms }))
}

async fn create_room(
    State(app): State<App>,
    auth: Auth,
    JsonBody(request): JsonBody<CreateRoom>,
) -> Result<(StatusCode, Json<Room>)> {
    let room = app
        .create_room(&auth.session.user, &request.name, &request.kind, &request.member_ids)
        .await?;
    Ok((StatusCode::CREATED, Json(room)))
}

async fn room(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
) -> Result<Json<Room>> {
    Ok(Json(app.room(auth.session.user.id, &room_id).await?))
}

async fn join(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
) -> Result<Json<Room>> {
    Ok(Json(app.join(auth.session.user.id, &room_id).await?))
}

async fn leave(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
) -> Result<StatusCode> {
    app.leave(auth.session.user.id, &room_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn members(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
) -> Result<Json<Members>> {
    let members = app.members(auth.session.user.id, &room_id).await?;
    let online_count =
        members.iter().filter(|m| m.presence.status != PresenceStatus::Offline).count();
    Ok(Json(Members { members, online_count }))
}

async fn add_member(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
    JsonBody(request): JsonBody<AddMember>,
) -> Result<Json<Room>> {
    Ok(Json(app.add_member(auth.session.user.id, &room_id, &request.user_id).await?))
}

async fn remove_member(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, user_id)): PathParams<(String, String)>,
) -> Result<StatusCode> {
    app.remove_member(auth.session.user.id, &room_id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn open_dm(
    State(app): State<App>,
    auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<(StatusCode, Json<Room>)> {
    let (room, created) = app.open_dm(auth.session.user.id, &user_id).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(room)))
}
