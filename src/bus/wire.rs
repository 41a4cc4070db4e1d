//! How bus events travel between nodes: a small JSON header naming the event, its sender
//! and its addressees, then a newline, then the frame's bytes exactly as clients receive
//! them. The frame is never parsed or re-encoded on the way: the node that published it
//! serialized it once, and every node hands the same bytes to its connections.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{BusEvent, NodeId};
use crate::domain::{PresenceStatus, RoomId, SessionId, Timestamp, UserId};

/// What nodes say to each other.
#[derive(Debug, Clone)]
pub enum Envelope {
    /// An event for every hub.
    Event(BusEvent),
    /// "I am alive": sent every few seconds, so that a node that dies silently is noticed
    /// and its users' presence taken back.
    Alive,
    /// "I have (re)joined the bus and may have missed things": every node answers by
    /// publishing again what it knows that is not stored (its users' presence).
    Hello,
}

#[derive(Serialize, Deserialize)]
struct Header {
    /// The sending node.
    node: u64,
    /// When it was sent, in microseconds since the Unix epoch by the sender's clock: what
    /// the bus lag is measured from. Absent from nodes older than it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<u64>,
    #[serde(flatten)]
    kind: Kind,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum Kind {
    Room {
        room: RoomId,
        seq: i64,
    },
    RoomMoment {
        room: RoomId,
        except: Option<UserId>,
    },
    User {
        user: UserId,
    },
    Presence {
        user: UserId,
        version: u64,
        status: PresenceStatus,
        rooms: Vec<RoomId>,
        last_seen_ms: Option<i64>,
    },
    Joined {
        user: UserId,
        room: RoomId,
    },
    Left {
        user: UserId,
        room: RoomId,
    },
    Profile {
        user: UserId,
        rooms: Vec<RoomId>,
    },
    SessionEnded {
        user: UserId,
        session: SessionId,
    },
    Alive,
    Hello,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("no header line")]
    NoHeader,
    #[error("bad header: {0}")]
    Header(#[from] serde_json::Error),
    #[error("the frame is not UTF-8")]
    Frame,
    #[error("a {0} event without a frame")]
    MissingFrame(&'static str),
}

/// The bytes that carry `envelope` from `node`.
pub fn encode(node: NodeId, envelope: &Envelope) -> Vec<u8> {
    let (kind, frame) = match envelope {
        Envelope::Alive => (Kind::Alive, None),
        Envelope::Hello => (Kind::Hello, None),
        Envelope::Event(event) => split(event),
    };
    let header = Header { node: node.0, at: Some(micros_since_epoch(SystemTime::now())), kind };
    // A header of ids and numbers always serializes; the fallback is never sent.
    let mut bytes = serde_json::to_vec(&header).unwrap_or_default();
    bytes.push(b'\n');
    if let Some(frame) = frame {
        bytes.extend_from_slice(frame.as_bytes());
    }
    bytes
}

fn split(event: &BusEvent) -> (Kind, Option<&Utf8Bytes>) {
    match event {
        BusEvent::Room { room_id, seq, frame } => {
            (Kind::Room { room: *room_id, seq: *seq }, Some(frame))
        }
        BusEvent::RoomMoment { room_id, except, frame } => {
            (Kind::RoomMoment { room: *room_id, except: *except }, Some(frame))
        }
        BusEvent::User { user_id, frame } => (Kind::User { user: *user_id }, Some(frame)),
        BusEvent::Presence { node: _, user_id, version, status, rooms, last_seen_at } => (
            Kind::Presence {
                user: *user_id,
                version: *version,
                status: *status,
                rooms: rooms.clone(),
                last_seen_ms: last_seen_at.map(Timestamp::as_millis),
            },
            None,
        ),
        BusEvent::Joined { user_id, room_id } => {
            (Kind::Joined { user: *user_id, room: *room_id }, None)
        }
        BusEvent::Left { user_id, room_id } => {
            (Kind::Left { user: *user_id, room: *room_id }, None)
        }
        BusEvent::Profile { user_id, rooms, frame } => {
            (Kind::Profile { user: *user_id, rooms: rooms.clone() }, Some(frame))
        }
        BusEvent::SessionEnded { user_id, session_id } => {
            (Kind::SessionEnded { user: *user_id, session: *session_id }, None)
        }
    }
}

/// What a bus message carries.
#[derive(Debug)]
pub struct Received {
    /// The node that sent it.
    pub from: NodeId,
    /// When the sender sent it (by its clock), if it said.
    pub sent_at: Option<SystemTime>,
    pub envelope: Envelope,
}

impl Received {
    /// How long it took to arrive, by the sender's clock and this node's: exact for a
    /// node's own messages, off by the clocks' difference for another's.
    pub fn lag(&self) -> Option<Duration> {
        let sent_at = self.sent_at?;
        Some(SystemTime::now().duration_since(sent_at).unwrap_or_default())
    }
}

fn micros_since_epoch(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// What `bytes` carry.
pub fn decode(bytes: Bytes) -> Result<Received, WireError> {
    let newline = bytes.iter().position(|b| *b == b'\n').ok_or(WireError::NoHeader)?;
    let header: Header = serde_json::from_slice(&bytes[..newline])?;
    let rest = bytes.slice(newline + 1..);
    let frame = |kind: &'static str| -> Result<Utf8Bytes, WireError> {
        if rest.is_empty() {
            return Err(WireError::MissingFrame(kind));
        }
        let text = String::from_utf8(rest.to_vec()).map_err(|_| WireError::Frame)?;
        Ok(Utf8Bytes::from(text))
    };
    let node = NodeId(header.node);
    let sent_at = header.at.map(|micros| UNIX_EPOCH + Duration::from_micros(micros));
    let received = |envelope| Received { from: node, sent_at, envelope };
    let event = match header.kind {
        Kind::Alive => return Ok(received(Envelope::Alive)),
        Kind::Hello => return Ok(received(Envelope::Hello)),
        Kind::Room { room, seq } => BusEvent::Room { room_id: room, seq, frame: frame("room")? },
        Kind::RoomMoment { room, except } => {
            BusEvent::RoomMoment { room_id: room, except, frame: frame("room moment")? }
        }
        Kind::User { user } => BusEvent::User { user_id: user, frame: frame("user")? },
        Kind::Presence { user, version, status, rooms, last_seen_ms } => BusEvent::Presence {
            node,
            user_id: user,
            version,
            status,
            rooms,
            last_seen_at: last_seen_ms.map(Timestamp::from_millis),
        },
        Kind::Joined { user, room } => BusEvent::Joined { user_id: user, room_id: room },
        Kind::Left { user, room } => BusEvent::Left { user_id: user, room_id: room },
        Kind::Profile { user, rooms } => {
            BusEvent::Profile { user_id: user, rooms, frame: frame("profile")? }
        }
        Kind::SessionEnded { user, session } => {
            BusEvent::SessionEnded { user_id: user, session_id: session }
        }
    };
    Ok(received(Envelope::Event(event)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(event: BusEvent) -> BusEvent {
        let node = NodeId(42);
        let bytes = encode(node, &Envelope::Event(event));
        match decode(Bytes::from(bytes)).expect("decodes") {
            Received { from, envelope: Envelope::Event(event), .. } if from == node => event,
            other => panic!("not the event sent: {other:?}"),
        }
    }

    #[test]
    fn a_frame_travels_byte_for_byte() {
        let room = RoomId::generate();
        let frame = Utf8Bytes::from("{\"type\":\"message.created\",\"body\":\"line\\nnext ✓\"}");
        match round_trip(BusEvent::Room { room_id: room, seq: 7, frame: frame.clone() }) {
            BusEvent::Room { room_id, seq: 7, frame: got } if room_id == room => {
                assert_eq!(got.as_str(), frame.as_str());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn presence_carries_its_sender_and_version() {
        let (user, room) = (UserId::generate(), RoomId::generate());
        let event = BusEvent::Presence {
            node: NodeId(1),
            user_id: user,
            version: 9,
            status: PresenceStatus::Away,
            rooms: vec![room],
            last_seen_at: Some(Timestamp::from_millis(1_700_000_000_123)),
        };
        match round_trip(event) {
            BusEvent::Presence { node, version: 9, status, rooms, last_seen_at, .. } => {
                assert_eq!(node, NodeId(42), "the envelope's sender is the node");
                assert_eq!(status, PresenceStatus::Away);
                assert_eq!(rooms, vec![room]);
                assert_eq!(last_seen_at.map(Timestamp::as_millis), Some(1_700_000_000_123));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"{}",
            b"{\"node\":1,\"k\":\"room\"}\n",
            b"\xff\n",
            b"{\"node\":1,\"k\":\"user\",\"user\":\"aaaaaaaaaaaaa\"}\n",
        ] {
            assert!(decode(Bytes::copy_from_slice(bytes)).is_err(), "{bytes:?}");
        }
        let received = decode(Bytes::from(encode(NodeId(3), &Envelope::Hello))).expect("hello");
        assert_eq!(received.from, NodeId(3));
        assert!(matches!(received.envelope, Envelope::Hello));
    }

    #[test]
    fn a_message_says_when_it_was_sent_and_an_older_node_need_not() {
        let before = SystemTime::now();
        let received = decode(Bytes::from(encode(NodeId(3), &Envelope::Alive))).expect("alive");
        let sent_at = received.sent_at.expect("the time it was sent");
        // Microseconds: the time read back is at most a microsecond before the one taken.
        assert!(sent_at + Duration::from_micros(1) >= before, "{sent_at:?} {before:?}");
        assert!(received.lag().is_some());
        let old = decode(Bytes::from_static(b"{\"node\":4,\"k\":\"alive\"}\n")).expect("old");
        assert_eq!(old.from, NodeId(4));
        assert!(old.sent_at.is_none() && old.lag().is_none());
    }
}
