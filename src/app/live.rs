//! What is live but never stored: presence and typing. Both are announced on the bus
//! straight away; neither takes a seq.

use crate::bus::BusEvent;
use crate::domain::{PresenceStatus, RoomId, Timestamp, UserId};
use crate::error::Result;
use crate::limits::Action;
use crate::realtime::PresenceChange;
use crate::realtime::protocol::ServerFrame;

use super::App;

impl App {
    /// Announces a user's presence change to everyone sharing one of `rooms` with them.
    /// Going offline also records when they were last seen.
    pub fn announce_presence(&self, user_id: UserId, change: PresenceChange, rooms: Vec<RoomId>) {
        let last_seen_at = (change.status == PresenceStatus::Offline).then(Timestamp::now);
        if let Some(at) = last_seen_at {
            let store = self.store().clone();
            // Tracked with the connections, so that shutdown waits for it.
            self.connections().spawn(async move {
                if let Err(error) = store.touch_last_seen(user_id, at).await {
                    tracing::warn!(%error, %user_id, "could not record when a user was last seen");
                }
            });
        }
        self.bus().publish(BusEvent::Presence {
            node: self.hub().node(),
            user_id,
            version: change.version,
            status: change.status,
            rooms,
            last_seen_at,
        });
    }

    /// Tells a room's other members that `user_id` is typing there, within the user's
    /// typing rate over all their connections. The caller checks membership and paces
    /// each connection's announcements.
    pub async fn typing(&self, user_id: UserId, room_id: RoomId) -> Result<()> {
        self.limit(Action::Typing, user_id).await?;
        let frame = ServerFrame::Typing { room_id, user_id }.to_text();
        self.bus().publish(BusEvent::RoomMoment { room_id, except: Some(user_id), frame });
        Ok(())
    }
}
