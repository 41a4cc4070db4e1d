//! What the connection does with the client's frames.
//!
//! Frames that write (`send`, `edit`, `delete`, `react`, `read`, `delivered`) become
//! requests that run beside the connection's loop, so a slow write never stops it from
//! reading, writing or answering pings; at most `MAX_REQUESTS_IN_FLIGHT` run at once, after
//! which the connection stops reading until some finish. Their outcome is an ack (for
//! `send`), nothing (the room's own event confirms an edit, a delete or a reaction; the
//! `unread` event confirms a read), or an error frame echoing the frame's `client_id`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::Message as WsMessage;
use tokio::time::Instant;

use super::{Closing, Connection, Cursor};
use crate::app::Draft;
use crate::domain::{Message, RoomId};
use crate::error::Error;
use crate::realtime::PeerPresence;
use crate::realtime::protocol::{
    CLIENT_TYPES, ClientFrame, ClientPresence, Envelope, ServerFrame, close_code,
};
use crate::realtime::sync::{SyncRange, SyncRequest, TooManySyncs};
use crate::store::order;

/// Requests a connection may have in flight before the server stops reading its frames;
/// the client then feels backpressure instead of the server buffering without bound.
pub(super) const MAX_REQUESTS_IN_FLIGHT: usize = 32;
/// The least time between two `typing` announcements of one connection in one room; more
/// frequent ones are dropped.
const TYPING_PACE: Duration = Duration::from_secs(2);

/// How a request ended.
pub(super) struct Outcome {
    /// The frame's `client_id`, for the ack or the error.
    client_id: Option<String>,
    result: Result<Option<Message>, Error>,
}

impl Connection {
    pub(super) fn on_incoming(
        &mut self,
        incoming: Option<Result<WsMessage, axum::Error>>,
    ) -> Result<(), Closing> {
        self.last_heard = Instant::now();
        match incoming {
            Some(Ok(WsMessage::Text(text))) => {
                self.on_text(&text);
                Ok(())
            }
            Some(Ok(WsMessage::Binary(_))) => {
                self.push_error("unsupported_frame", "Frames must be JSON text, not binary.");
                Ok(())
            }
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => Ok(()),
            Some(Ok(WsMessage::Close(frame))) => {
                // The reply to the client's close is queued inside the socket; `close`
                // flushes it.
                let code = frame.map_or(1005, |f| f.code);
                Err(Closing { code, reason: "closed by client", send_frame: false })
            }
            Some(Err(error)) if is_message_too_big(&error) => {
                Err(Closing::send(close_code::TOO_BIG, "frame larger than 64 KiB"))
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "websocket read failed");
                Err(Closing::lost())
            }
            None => Err(Closing::lost()),
        }
    }

    fn on_text(&mut self, text: &str) {
        let Ok(envelope) = serde_json::from_str::<Envelope>(text) else {
            return self.push_error("invalid_json", "Frames must be JSON objects.");
        };
        let client_id = envelope.client_id();
        let known = matches!(&envelope.kind, Some(serde_json::Value::String(kind)) if CLIENT_TYPES.contains(&kind.as_str()));
        if !known {
            let message =
                format!("Unknown frame type; expected one of {}.", CLIENT_TYPES.join(", "));
            return self.push_error_for(client_id.as_deref(), "unknown_type", &message);
        }
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(error) => {
                let message = format!("Invalid frame: {error}.");
                return self.push_error_for(client_id.as_deref(), "invalid_frame", &message);
            }
        };
        let app = self.app.clone();
        let user = self.user.id;
        match frame {
            ClientFrame::Send { room_id, body, client_id, reply_to, attachments } => {
                let (done, next) = tokio::sync::oneshot::channel::<()>();
                // Forget the sends that are over (a client may name any number of rooms).
                if self.sends.len() >= MAX_REQUESTS_IN_FLIGHT {
                    self.sends.retain(|_, end| {
                        matches!(
                            end.try_recv(),
                            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
                        )
                    });
                }
                let previous = self.sends.insert(room_id.clone(), next);
                self.request(Some(client_id.clone()), async move {
                    // Placed, done or dropped, the previous send to this room is out of the
                    // way (`store::order`).
                    if let Some(previous) = previous {
                        let _ = previous.await;
                    }
                    let draft = Draft {
                        body: &body,
                        client_id: Some(&client_id),
                        reply_to: reply_to.as_deref(),
                        attachments: &attachments,
                    };
                    order::placing(done, app.send_message(user, &room_id, draft))
                        .await
                        .map(|(message, _)| Some(message))
                });
            }
            ClientFrame::Edit { room_id, message_id, body } => self
                .request(client_id, async move {
                    app.edit_message(user, &room_id, &message_id, &body).await.map(|_| None)
                }),
            ClientFrame::Delete { room_id, message_id } => self.request(client_id, async move {
                app.delete_message(user, &room_id, &message_id).await.map(|_| None)
            }),
            ClientFrame::React { room_id, message_id, emoji, remove } => {
                self.request(client_id, async move {
                    app.react(user, &room_id, &message_id, &emoji, !remove).await.map(|_| None)
                });
            }
            ClientFrame::Read { room_id, seq } => self.request(client_id, async move {
                app.mark_read(user, &room_id, Some(seq), None).await.map(|_| None)
            }),
            ClientFrame::Delivered { room_id, seq } => self.request(client_id, async move {
                app.mark_read(user, &room_id, None, Some(seq)).await.map(|_| None)
            }),
            ClientFrame::Typing { room_id } => self.on_typing(&room_id, client_id.as_deref()),
            ClientFrame::Presence { status } => {
                let presence = match status {
                    ClientPresence::Online => PeerPresence::Online,
                    ClientPresence::Away => PeerPresence::Away,
                };
                self.set_presence(presence);
            }
            ClientFrame::Sync { since, id } => self.on_sync_request(since, id, client_id),
            ClientFrame::Ping { id } => self.push(ServerFrame::Pong { id: id.as_ref() }),
        }
    }

    fn request(
        &mut self,
        client_id: Option<String>,
        work: impl Future<Output = Result<Option<Message>, Error>> + Send + 'static,
    ) {
        let requests = self.requests.get_or_insert_with(Default::default);
        requests.push(Box::pin(async move { Outcome { client_id, result: work.await } }));
    }

    pub(super) fn on_outcome(&mut self, outcome: Outcome) {
        match (outcome.result, &outcome.client_id) {
            (Ok(Some(message)), Some(client_id)) => {
                self.push(ServerFrame::MessageAck { client_id, message: &message });
            }
            (Ok(_), _) => {}
            (Err(error), client_id) => {
                if let Error::Internal(cause) = &error {
                    tracing::error!(error = %cause, "a request failed");
                }
                self.push(ServerFrame::Error {
                    code: error.code(),
                    message: &error.public_message(),
                    client_id: client_id.as_deref(),
                    room_id: None,
                    retry_after: error.retry_after(),
                });
            }
        }
    }

    /// Relays `typing` to the room's other members, at most once per `TYPING_PACE`.
    fn on_typing(&mut self, room: &str, client_id: Option<&str>) {
        let Some(room_id) = self.followed_room(room) else {
            return self.push_error_for(client_id, "not_found", "Room not found.");
        };
        let now = Instant::now();
        let due = self.typing_sent.get(&room_id).is_none_or(|sent| now >= *sent + TYPING_PACE);
        if due {
            self.typing_sent.insert(room_id, now);
            let (app, user) = (self.app.clone(), self.user.id);
            // Only a client that asked (a `client_id`) hears of a refusal; otherwise a
            // notice past the user's typing rate is dropped: nobody misses it.
            let answered = client_id.is_some();
            self.request(client_id.map(str::to_owned), async move {
                match app.typing(user, room_id).await {
                    Err(error) if !answered => {
                        tracing::debug!(%error, "a typing notice was not relayed");
                        Ok(None)
                    }
                    done => done.map(|()| None),
                }
            });
        }
    }

    /// Plans a `sync` from the cursors as they are now: per room, from the client's last
    /// seen seq up to where the live stream starts. Errors about it, now or when it fails
    /// later, echo the frame's `client_id`.
    fn on_sync_request(
        &mut self,
        since: HashMap<String, i64>,
        id: Option<String>,
        client_id: Option<String>,
    ) {
        let mut planned: HashMap<RoomId, SyncRange> = HashMap::with_capacity(since.len());
        for (room, seen) in since {
            let Some(room_id) = self.followed_room(&room) else {
                self.push(ServerFrame::Error {
                    code: "not_found",
                    message: "Room not found.",
                    client_id: client_id.as_deref(),
                    room_id: Some(&room),
                    retry_after: None,
                });
                continue;
            };
            let live_from = self.cursors.get(&room_id).map_or(0, |c: &Cursor| c.live_from);
            // Ids parse regardless of case: one room may be named twice. Sync it once,
            // from the earliest seq asked.
            let since = seen.clamp(0, live_from);
            let range =
                planned.entry(room_id).or_insert(SyncRange { room_id, since, up_to: live_from });
            range.since = range.since.min(since);
        }
        let ranges = planned.into_values().collect();
        let request = SyncRequest { id, client_id, ranges };
        match self.syncs.request(request) {
            Ok(()) => metrics::counter!(crate::metrics::SYNCS).increment(1),
            Err(TooManySyncs(refused)) => {
                self.push_error_for(
                    refused.client_id.as_deref(),
                    "too_many_syncs",
                    "Wait for sync.done before sending another sync.",
                );
            }
        }
    }

    /// A room id from the client, if it names a room this connection follows.
    fn followed_room(&self, room: &str) -> Option<RoomId> {
        room.parse::<RoomId>().ok().filter(|room_id| self.cursors.contains_key(room_id))
    }

    pub(super) fn push_error(&mut self, code: &str, message: &str) {
        self.push_error_for(None, code, message);
    }

    pub(super) fn push_error_for(&mut self, client_id: Option<&str>, code: &str, message: &str) {
        self.push(ServerFrame::Error {
            code,
            message,
            client_id,
            room_id: None,
            retry_after: None,
        });
    }
}

impl Connection {
    /// Sets what this connection says of its user, and announces the user's presence if
    /// that changes it.
    pub(super) fn set_presence(&mut self, presence: PeerPresence) {
        if let Some(change) = self.app.hub().set_presence(&self.peer, presence) {
            self.app.announce_presence(self.user.id, change, self.peer.rooms());
        }
    }
}

/// Whether a read failed because the client sent a frame over the size limit.
fn is_message_too_big(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(tungstenite::Error::Capacity(_)) = current.downcast_ref::<tungstenite::Error>()
        {
            return true;
        }
        source = current.source();
    }
    false
}
