//! The WebSocket endpoint: checks the origin and the session, then hands the upgraded
//! socket to a connection task.

use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::FutureExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{TokenSource, bad_origin, origin_allowed, session_token};
use crate::app::App;
use crate::error::{Error, Result};
use crate::realtime::connection;
use crate::realtime::protocol::MAX_CLIENT_FRAME;

/// tungstenite's default read buffer is 128 KiB per connection, allocated up front; client
/// frames are small, and a larger one grows the buffer while it is read. Every idle
/// connection holds this much: 1 KiB instead of 4 KiB took an idle connection from 9.5 KB
/// to 6.8 KB of server memory (BENCHMARKS.md). A rare long frame takes a few more reads.
const READ_BUFFER: usize = 1024;
/// Frames are gathered up to this size before a write; `flush` writes the rest.
const WRITE_BUFFER: usize = 16 * 1024;
/// The most a connection's write buffer may hold when the socket does not drain; past it
/// writes fail and the connection closes, so memory per connection stays bounded.
const MAX_WRITE_BUFFER: usize = 512 * 1024;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

/// Browsers always send Origin with a WebSocket upgrade, and it must be ours (otherwise
/// any page could open a socket with the visitor's cookie). Clients without an Origin are
/// not browsers and must authenticate with a bearer token.
/// The WebSocket: live events, sending, catching up. Its frames are described in
/// `/api/v1/ws-schema.json` and docs/api.md. Authenticate with the bearer token, or (browsers)
/// the cookie with Confab's own Origin.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "realtime",
    responses(
        (status = 101, description = "Upgraded: frames follow."),
        (status = 400, description = "`websocket_required`: not a WebSocket upgrade."),
        (status = 403, description = "`bad_origin`: an Origin other than Confab's."),
        (status = 429, description = "`rate_limited`: the user holds as many sockets as they may."),
    ),
)]
async fn upgrade(
    State(app): State<App>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    if !origin_allowed(&headers, &app) {
        return Err(bad_origin());
    }
    let (token, source) = session_token(&headers).ok_or(Error::Unauthenticated)?;
    if source == TokenSource::Cookie && !headers.contains_key(axum::http::header::ORIGIN) {
        return Err(Error::Unauthenticated);
    }
    let session = app.authenticate(&token).await?;
    tracing::Span::current().record("user_id", tracing::field::display(session.user.id));
    let upgrade = upgrade.map_err(|rejection| {
        Error::bad_request(
            "websocket_required",
            format!("This endpoint takes a WebSocket upgrade: {rejection}."),
        )
    })?;
    // Counted from here until the connection ends, however it ends.
    let slot = app.limiter().open_socket(session.user.id).await?;
    let tasks = app.connections().clone();
    // Boxed: the upgrade's future keeps what this closure holds for the connection's life.
    let session = Box::new(session);
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| {
            // Set up before the task's future, and not awaited from an async block of ours
            // (which would hold it twice: once as taken, once as awaited), so the task holds
            // the connection once.
            let serving = connection::serve(app, socket, *session);
            tasks.track_future(serving.map(move |()| drop(slot)))
        }))
}
