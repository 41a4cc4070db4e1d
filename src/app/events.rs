//! What the store's committed changes mean to connections: each [`Change`] becomes a bus
//! event. A new message is serialized here, once, into the frame every member's
//! connections send.

use std::sync::Arc;

use crate::bus::{Bus, BusEvent};
use crate::realtime::protocol::message_created_frame;
use crate::store::{Change, ChangeSink};

/// The sink the store announces its changes to: it publishes them on `bus`, in the order
/// the store commits them.
pub fn change_sink(bus: Arc<dyn Bus>) -> ChangeSink {
    Arc::new(move |change: &Change| bus.publish(bus_event(change)))
}

fn bus_event(change: &Change) -> BusEvent {
    match change {
        Change::MessageCreated(message) => BusEvent::Room {
            room_id: message.room_id,
            seq: message.seq,
            frame: message_created_frame(message),
        },
        &Change::MemberAdded { room_id, user_id } => BusEvent::Joined { user_id, room_id },
        &Change::MemberRemoved { room_id, user_id } => BusEvent::Left { user_id, room_id },
        &Change::SessionEnded { session_id, user_id } => {
            BusEvent::SessionEnded { user_id, session_id }
        }
    }
}
