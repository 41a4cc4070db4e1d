//! Rooms over HTTP: the caller's rooms, the public directory, creating, joining, leaving,
//! membership, and direct messages.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Auth, JsonBody, PathParams, QueryParams};
use crate::app::App;
use crate::domain::{Member, PresenceStatus, Room};
use crate::error::Result;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(my_rooms, create_room))
        .routes(routes!(public_rooms))
        .routes(routes!(room))
        .routes(routes!(join))
        .routes(routes!(leave))
        .routes(routes!(members, add_member))
        .routes(routes!(remove_member))
        .routes(routes!(open_dm))
}

#[derive(Serialize, ToSchema)]
struct Rooms {
    rooms: Vec<Room>,
}

#[derive(Deserialize, ToSchema)]
struct CreateRoom {
    /// 1–64 characters.
    name: String,
    /// `public` or `private` (DMs are opened with `POST /dm/{user_id}`).
    kind: String,
    /// People to add at once.
    #[serde(default)]
    member_ids: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Directory {
    /// The start of a room's name; every public room when empty.
    #[serde(default)]
    q: String,
    /// 1 to 200; 100 when absent.
    limit: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
struct AddMember {
    user_id: String,
}

#[derive(Serialize, ToSchema)]
struct Members {
    members: Vec<Member>,
    /// Members online or away now.
    online_count: usize,
}

/// The signed-in user's rooms.
#[utoipa::path(
    get,
    path = "/rooms",
    tag = "rooms",
    responses((status = 200, description = "Your rooms.", body = Rooms)),
)]
async fn my_rooms(State(app): State<App>, auth: Auth) -> Result<Json<Rooms>> {
    Ok(Json(Rooms { rooms: app.rooms(auth.session.user.id).await? }))
}

/// The directory of public rooms.
#[utoipa::path(
    get,
    path = "/rooms/public",
    tag = "rooms",
    params(Directory),
    responses(
        (status = 200, description = "Public rooms whose names start so.", body = Rooms),
        (status = 422, description = "`invalid_limit`."),
    ),
)]
async fn public_rooms(
    State(app): State<App>,
    auth: Auth,
    QueryParams(query): QueryParams<Directory>,
) -> Result<Json<Rooms>> {
    let rooms = app.public_rooms(auth.session.user.id, &query.q, query.limit).await?;
    Ok(Json(Rooms { rooms }))
}

/// Creates a public room or a private group, owned by the caller.
#[utoipa::path(
    post,
    path = "/rooms",
    tag = "rooms",
    request_body = CreateRoom,
    responses(
        (status = 201, description = "The new room.", body = Room),
        (status = 403, description = "`blocked`: someone to add blocks you."),
        (status = 409, description = "`room_name_taken`: a public room by that name (or a look-alike) exists; `user_deactivated`: `member_ids` names a deactivated account."),
        (status = 422, description = "`invalid_room_name`, `invalid_room_kind`, `unknown_user`, `too_many_members`."),
    ),
)]
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

/// One room, as the caller sees it.
#[utoipa::path(
    get,
    path = "/rooms/{room_id}",
    tag = "rooms",
    params(("room_id" = String, Path, description = "A room's id.")),
    responses((status = 200, description = "The room.", body = Room)),
)]
async fn room(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
) -> Result<Json<Room>> {
    Ok(Json(app.room(auth.session.user.id, &room_id).await?))
}

/// Joins a public room.
#[utoipa::path(
    post,
    path = "/rooms/{room_id}/join",
    tag = "rooms",
    params(("room_id" = String, Path, description = "A room's id.")),
    responses(
        (status = 200, description = "The room, joined.", body = Room),
        (status = 409, description = "`dm_members_fixed`: a DM cannot be joined."),
    ),
)]
async fn join(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
) -> Result<Json<Room>> {
    Ok(Json(app.join(auth.session.user.id, &room_id).await?))
}

/// Leaves a room (a DM cannot be left).
#[utoipa::path(
    post,
    path = "/rooms/{room_id}/leave",
    tag = "rooms",
    params(("room_id" = String, Path, description = "A room's id.")),
    responses(
        (status = 204, description = "Left."),
        (status = 403, description = "`not_member`: a public room you have not joined."),
        (status = 409, description = "`dm_members_fixed`."),
    ),
)]
async fn leave(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
) -> Result<StatusCode> {
    app.leave(auth.session.user.id, &room_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A room's members, with their presence.
#[utoipa::path(
    get,
    path = "/rooms/{room_id}/members",
    tag = "rooms",
    params(("room_id" = String, Path, description = "A room's id.")),
    responses(
        (status = 200, description = "The members.", body = Members),
        (status = 403, description = "`not_member`: a public room you have not joined."),
    ),
)]
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

/// Adds someone to a room the caller is in.
#[utoipa::path(
    post,
    path = "/rooms/{room_id}/members",
    tag = "rooms",
    params(("room_id" = String, Path, description = "A room's id.")),
    request_body = AddMember,
    responses(
        (status = 200, description = "The room.", body = Room),
        (status = 403, description = "`blocked`: they block you."),
        (status = 409, description = "`dm_members_fixed`, `user_deactivated`."),
        (status = 422, description = "`unknown_user`, `too_many_members`."),
    ),
)]
async fn add_member(
    State(app): State<App>,
    auth: Auth,
    PathParams(room_id): PathParams<String>,
    JsonBody(request): JsonBody<AddMember>,
) -> Result<Json<Room>> {
    Ok(Json(app.add_member(auth.session.user.id, &room_id, &request.user_id).await?))
}

/// Removes a member (the owner only).
#[utoipa::path(
    delete,
    path = "/rooms/{room_id}/members/{user_id}",
    tag = "rooms",
    params(("room_id" = String, Path, description = "A room's id."), ("user_id" = String, Path, description = "A member's id.")),
    responses(
        (status = 204, description = "Removed."),
        (status = 403, description = "`not_owner`."),
        (status = 409, description = "`dm_members_fixed`."),
    ),
)]
async fn remove_member(
    State(app): State<App>,
    auth: Auth,
    PathParams((room_id, user_id)): PathParams<(String, String)>,
) -> Result<StatusCode> {
    app.remove_member(auth.session.user.id, &room_id, &user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Opens the direct conversation with a user, or finds the one there is.
#[utoipa::path(
    post,
    path = "/dm/{user_id}",
    tag = "rooms",
    params(("user_id" = String, Path, description = "A user's id.")),
    responses(
        (status = 200, description = "The DM there was.", body = Room),
        (status = 201, description = "A new DM.", body = Room),
        (status = 403, description = "`blocked`: they block you; `blocking`: you block them."),
        (status = 409, description = "`user_deactivated`: their account is deactivated."),
    ),
)]
async fn open_dm(
    State(app): State<App>,
    auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<(StatusCode, Json<Room>)> {
    let (room, created) = app.open_dm(auth.session.user.id, &user_id).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(room)))
}
