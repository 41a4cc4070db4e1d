//! What the store's committed changes mean to connections: each [`Change`] becomes one or
//! more bus events. Every frame is serialized here, once, whatever the number of
//! connections it reaches.

use std::sync::Arc;

use super::receipts::ReceiptBatcher;
use crate::bus::{Bus, BusEvent};
use crate::domain::{Presence, PresenceStatus};
use crate::realtime::Hub;
use crate::realtime::protocol::{ServerFrame, message_created_frame};
use crate::store::{Change, ChangeSink};

/// The sink the store announces its changes to: it publishes them on `bus`, in the order
/// the store commits them (receipts go through `receipts`, which gathers them per room).
pub fn change_sink(bus: Arc<dyn Bus>, hub: Arc<Hub>, receipts: Arc<ReceiptBatcher>) -> ChangeSink {
    Arc::new(move |change: &Change| publish(bus.as_ref(), &hub, &receipts, change))
}

fn publish(bus: &dyn Bus, hub: &Hub, receipts: &ReceiptBatcher, change: &Change) {
    match change {
        Change::MessageCreated(message) => {
            // Counted here, where each committed message is announced exactly once, on
            // either store, whichever way it was sent.
            let kind = crate::metrics::message_kind(message.attachments.len());
            metrics::counter!(crate::metrics::MESSAGES_STORED, "kind" => kind).increment(1);
            bus.publish(BusEvent::Room {
                room_id: message.room_id,
                seq: message.seq,
                frame: message_created_frame(message),
            });
        }
        Change::MessageEdited { seq, message } => {
            let room_id = message.room_id;
            let frame = ServerFrame::MessageUpdated { room_id, seq: *seq, message }.to_text();
            bus.publish(BusEvent::Room { room_id, seq: *seq, frame });
        }
        Change::MessageDeleted { seq, message } => {
            let room_id = message.room_id;
            let frame = ServerFrame::MessageDeleted { room_id, seq: *seq, message }.to_text();
            bus.publish(BusEvent::Room { room_id, seq: *seq, frame });
        }
        Change::ReactionChanged { room_id, seq, message_id, emoji, user_id, added } => {
            let (room_id, seq, message_id, user_id) = (*room_id, *seq, *message_id, *user_id);
            let frame = if *added {
                ServerFrame::ReactionAdded { room_id, seq, message_id, emoji, user_id }
            } else {
                ServerFrame::ReactionRemoved { room_id, seq, message_id, emoji, user_id }
            };
            bus.publish(BusEvent::Room { room_id, seq, frame: frame.to_text() });
        }
        Change::Mentioned { user_id, message } => {
            let frame = ServerFrame::Mention { room_id: message.room_id, message }.to_text();
            bus.publish(BusEvent::User { user_id: *user_id, frame });
        }
        Change::MarkersMoved { room_id, receipt, unread } => {
            if let Some(unread) = unread {
                let counts = ServerFrame::Unread { room_id: *room_id, unread: *unread }.to_text();
                bus.publish(BusEvent::User { user_id: receipt.user_id, frame: counts });
            }
            receipts.add(*room_id, *receipt);
        }
        &Change::MemberAdded { room_id, user_id } => {
            bus.publish(BusEvent::Joined { user_id, room_id });
            // The others' member lists and counts follow.
            let frame = ServerFrame::MemberJoined { room_id, user_id }.to_text();
            bus.publish(BusEvent::RoomMoment { room_id, except: Some(user_id), frame });
            // The room's members now share a room with this user: tell them whether the
            // user is around (they learn nothing else until the user's presence changes).
            let status = hub.presence_of(user_id);
            if status != PresenceStatus::Offline {
                let presence = Presence { status, last_seen_at: None };
                let frame = ServerFrame::Presence { user_id, presence }.to_text();
                bus.publish(BusEvent::RoomMoment { room_id, except: Some(user_id), frame });
            }
        }
        &Change::MemberRemoved { room_id, user_id } => {
            bus.publish(BusEvent::Left { user_id, room_id });
            let frame = ServerFrame::MemberLeft { room_id, user_id }.to_text();
            bus.publish(BusEvent::RoomMoment { room_id, except: Some(user_id), frame });
        }
        &Change::DmHidden { room_id, user_id, hidden: true } => {
            bus.publish(BusEvent::Left { user_id, room_id });
        }
        &Change::DmHidden { room_id, user_id, hidden: false } => {
            bus.publish(BusEvent::Joined { user_id, room_id });
        }
        Change::ProfileChanged { user, rooms } => {
            let frame = ServerFrame::UserUpdated { user }.to_text();
            bus.publish(BusEvent::Profile { user_id: user.id, rooms: rooms.clone(), frame });
        }
        &Change::SessionEnded { session_id, user_id } => {
            bus.publish(BusEvent::SessionEnded { user_id, session_id });
        }
    }
}
