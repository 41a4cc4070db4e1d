//! The WebSocket protocol: every frame a client may send and every frame the server sends.
//!
//! Frames are JSON text, each an object with a `type`. Reading this file tells the whole
//! protocol; docs/api.md describes it for client authors.

use std::collections::HashMap;

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};

use crate::domain::{
    Emoji, Message, MessageId, Presence, PresenceStatus, Receipt, Room, RoomId, User, UserId,
};
use crate::domain::{RoomCursor, Unread};
use crate::store::Changed;

/// Close codes the server uses, beside the standard ones.
pub mod close_code {
    /// This server is shutting down (a restart, or a node leaving the cluster): reconnect
    /// now, to another node if there is one, and `sync`.
    pub const RESTARTING: u16 = 1012;
    /// A frame was larger than 64 KiB.
    pub const TOO_BIG: u16 = 1009;
    /// The server failed; reconnect.
    pub const INTERNAL: u16 = 1011;
    /// The server cannot serve this connection for now (its database is unreachable);
    /// reconnect with backoff.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The client did not keep up with its events; reconnect and `sync`.
    pub const TOO_SLOW: u16 = 4000;
    /// The session ended (logout or expiry); sign in again.
    pub const SESSION_ENDED: u16 = 4001;
    /// Nothing was heard from the client for too long.
    pub const HEARTBEAT_TIMEOUT: u16 = 4002;
}

/// The largest frame a client may send.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// A frame from the client. Frames that change something may carry a `client_id`, which
/// an `error` about them echoes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Post a message. `client_id` makes retries safe: the same id from the same user in
    /// the same room is stored once. `reply_to` names a message of the same room.
    Send {
        room_id: String,
        #[serde(default)]
        body: String,
        client_id: String,
        #[serde(default)]
        reply_to: Option<String>,
        /// Ids of files uploaded with `POST /media`, to send with the message.
        #[serde(default)]
        attachments: Vec<String>,
    },
    /// Replace the body of one's own message.
    Edit { room_id: String, message_id: String, body: String },
    /// Delete a message (one's own, or any in a room one owns, DMs aside).
    Delete { room_id: String, message_id: String },
    /// Add a reaction, or remove it with `"remove": true`.
    React {
        room_id: String,
        message_id: String,
        emoji: String,
        #[serde(default)]
        remove: bool,
    },
    /// Everything up to `seq` is read (and so delivered).
    Read { room_id: String, seq: i64 },
    /// Everything up to `seq` has reached this client.
    Delivered { room_id: String, seq: i64 },
    /// The user is typing in a room; repeat every few seconds while they are.
    Typing { room_id: String },
    /// The user is at the keyboard (`online`) or not (`away`) on this connection.
    Presence { status: ClientPresence },
    /// Fill in, per room, everything after the given seq up to the `last_seq` that `ready`
    /// (or `room.added`) reported. Answered with those events in order, then `sync.done`.
    Sync {
        since: HashMap<String, i64>,
        #[serde(default)]
        id: Option<String>,
    },
    /// Answered with `pong`, echoing `id`.
    Ping {
        #[serde(default)]
        id: Option<serde_json::Value>,
    },
}

/// A user who is around, in a presence snapshot.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PresentUser {
    pub user_id: UserId,
    pub status: PresenceStatus,
}

/// What a connection says of its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientPresence {
    Online,
    Away,
}

/// The first look at a frame, to tell which `type` it claims and which `client_id` an
/// error should name, before the frame is parsed in full.
#[derive(Deserialize)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: Option<serde_json::Value>,
    pub client_id: Option<serde_json::Value>,
}

impl Envelope {
    pub fn client_id(&self) -> Option<String> {
        match &self.client_id {
            Some(serde_json::Value::String(id)) => Some(id.clone()),
            _ => None,
        }
    }
}

/// The types a client may send, for the `unknown_type` error.
pub const CLIENT_TYPES: [&str; 10] =
    ["send", "edit", "delete", "react", "read", "delivered", "typing", "presence", "sync", "ping"];

/// A frame from the server. Frames with a `seq` belong to a room's ordered stream; the
/// others (typing, presence, receipts, counts) are state of the moment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum ServerFrame<'a> {
    /// The first frame: who you are and, per room, the seq after which live events start,
    /// with your read marker and counts; and the counts added up over your rooms.
    #[serde(rename = "ready")]
    Ready {
        user: &'a User,
        rooms: &'a [RoomCursor],
        /// Unread messages in all your rooms.
        total_unread: i64,
        /// Of those, the ones that mention you.
        total_mentions: i64,
        heartbeat_interval_ms: u64,
    },
    /// A message in a room you are a member of.
    #[serde(rename = "message.created")]
    MessageCreated { room_id: RoomId, seq: i64, message: &'a Message },
    /// A message changed (edited; or, when catching up, anything about it): here it is whole.
    #[serde(rename = "message.updated")]
    MessageUpdated { room_id: RoomId, seq: i64, message: &'a Message },
    /// A message was deleted; `message` is its tombstone.
    #[serde(rename = "message.deleted")]
    MessageDeleted { room_id: RoomId, seq: i64, message: &'a Message },
    #[serde(rename = "reaction.added")]
    ReactionAdded {
        room_id: RoomId,
        seq: i64,
        message_id: MessageId,
        emoji: &'a Emoji,
        user_id: UserId,
    },
    #[serde(rename = "reaction.removed")]
    ReactionRemoved {
        room_id: RoomId,
        seq: i64,
        message_id: MessageId,
        emoji: &'a Emoji,
        user_id: UserId,
    },
    /// Your `send` is stored (now, or before if it was a retry).
    #[serde(rename = "message.ack")]
    MessageAck { client_id: &'a str, message: &'a Message },
    /// Someone mentioned you.
    #[serde(rename = "mention")]
    Mention { room_id: RoomId, message: &'a Message },
    /// Someone else is typing in a room; it lapses after 6 s without another, or when they
    /// send a message.
    #[serde(rename = "typing")]
    Typing { room_id: RoomId, user_id: UserId },
    /// A user you share a room with came, went, or stepped away.
    #[serde(rename = "presence")]
    Presence {
        user_id: UserId,
        #[serde(flatten)]
        presence: Presence,
    },
    /// Who is around now, among those you share rooms with (after `ready`) or in one room
    /// (after `room.added`): everyone not listed is offline.
    #[serde(rename = "presence.snapshot")]
    PresenceSnapshot {
        #[serde(skip_serializing_if = "Option::is_none")]
        room_id: Option<RoomId>,
        users: &'a [PresentUser],
    },
    /// Members' read and delivered markers in a room: every member's when catching up,
    /// those that moved (gathered over half a second) when live. Markers only rise: keep
    /// the highest seen.
    #[serde(rename = "receipts")]
    Receipts { room_id: RoomId, receipts: &'a [Receipt] },
    /// Your read marker and counts in a room changed (on any of your connections).
    #[serde(rename = "unread")]
    Unread {
        room_id: RoomId,
        #[serde(flatten)]
        unread: Unread,
    },
    /// Someone joined or was added to one of your rooms (not sent to them: they get
    /// `room.added`). Not part of the room's seq'd events: a client that was away reads
    /// the member list again.
    #[serde(rename = "member.joined")]
    MemberJoined { room_id: RoomId, user_id: UserId },
    /// Someone left or was removed from one of your rooms (not sent to them: they get
    /// `room.removed`).
    #[serde(rename = "member.left")]
    MemberLeft { room_id: RoomId, user_id: UserId },
    /// A user you share a room with (or you) changed their profile.
    #[serde(rename = "user.updated")]
    UserUpdated { user: &'a User },
    /// You joined or were added to a room; its live events start after `last_seq`.
    #[serde(rename = "room.added")]
    RoomAdded { room_id: RoomId, last_seq: i64, room: &'a Room },
    /// You left or were removed from a room; its events stop.
    #[serde(rename = "room.removed")]
    RoomRemoved { room_id: RoomId },
    /// Everything a `sync` asked for has been sent.
    #[serde(rename = "sync.done")]
    SyncDone {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
    },
    #[serde(rename = "pong")]
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a serde_json::Value>,
    },
    /// A frame was refused; the connection stays open.
    #[serde(rename = "error")]
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        room_id: Option<&'a str>,
        /// For `rate_limited`: seconds to wait before trying again.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
}

impl ServerFrame<'_> {
    /// The frame as the text sent on the wire.
    pub fn to_text(&self) -> Utf8Bytes {
        let json = serde_json::to_string(self)
            .expect("server frames hold only strings, numbers and structs with string keys");
        Utf8Bytes::from(json)
    }
}

/// The `message.created` frame of a stored message, broadcast once to every member.
pub fn message_created_frame(message: &Message) -> Utf8Bytes {
    ServerFrame::MessageCreated { room_id: message.room_id, seq: message.seq, message }.to_text()
}

/// The frame that brings a client that saw everything up to `since` up to date, as of
/// `up_to`, on a message that changed in between: created if it is new to the client,
/// deleted if it is a tombstone, updated otherwise. Used by `sync` and by gap filling.
///
/// The message is sent as it is now, which may include changes after `up_to` (those also
/// arrive live, and applying them twice changes nothing); its `seq` is that of its latest
/// change, but never past `up_to`, so that a client tracking the highest seq it has seen
/// never skips an event it has not.
pub fn catch_up_frame(since: i64, up_to: i64, changed: &Changed) -> Utf8Bytes {
    let message = &changed.message;
    let (room_id, seq) = (message.room_id, changed.changed_seq.min(up_to));
    let frame = if message.deleted {
        ServerFrame::MessageDeleted { room_id, seq, message }
    } else if message.seq > since {
        ServerFrame::MessageCreated { room_id, seq, message }
    } else {
        ServerFrame::MessageUpdated { room_id, seq, message }
    };
    frame.to_text()
}

/// Every frame as a JSON Schema (2020-12), derived from the types above and served at
/// `/api/v1/ws-schema.json`: `$defs.ClientFrame` is any frame a client may send,
/// `$defs.ServerFrame` any the server sends, each a `oneOf` by `type`.
pub fn schema() -> serde_json::Value {
    use utoipa::{PartialSchema, ToSchema};
    let mut schemas = Vec::new();
    ClientFrame::schemas(&mut schemas);
    ServerFrame::schemas(&mut schemas);
    schemas.push((ClientFrame::name().into_owned(), ClientFrame::schema()));
    schemas.push((ServerFrame::name().into_owned(), ServerFrame::schema()));
    let definitions: serde_json::Map<String, serde_json::Value> = schemas
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or_default()))
        .collect();
    // utoipa writes references for an OpenAPI document; here they point into `$defs`.
    let text = serde_json::Value::Object(definitions)
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Confab WebSocket frames",
        "description": "Frames are JSON text, one object each, with a `type`. ClientFrame: \
            what a client may send; ServerFrame: what the server sends. docs/api.md tells \
            when each is sent.",
        "anyOf": [{ "$ref": "#/$defs/ClientFrame" }, { "$ref": "#/$defs/ServerFrame" }],
        "$defs": serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse() {
        let send: ClientFrame =
            serde_json::from_str(r#"{"type":"send","room_id":"r","body":"hi","client_id":"c1"}"#)
                .expect("valid send");
        assert!(matches!(send, ClientFrame::Send { .. }));
        let sync: ClientFrame =
            serde_json::from_str(r#"{"type":"sync","since":{"abc":5}}"#).expect("valid sync");
        assert!(matches!(sync, ClientFrame::Sync { since, id: None } if since["abc"] == 5));
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"shout"}"#).is_err());
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"send","room_id":"r"}"#).is_err());
    }

    #[test]
    fn server_frames_carry_their_type() {
        let text = ServerFrame::SyncDone { id: Some("s1") }.to_text();
        assert_eq!(text.as_str(), r#"{"type":"sync.done","id":"s1"}"#);
    }
}
