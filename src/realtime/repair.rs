//! Making good what the bus between nodes drops. Redis pub/sub delivers at most once: an
//! event published while a node is cut off, or dropped on the way, never reaches it. The
//! store is the source of truth, so each node checks its view against it, for what its
//! own connections follow only, and repairs the difference:
//!
//! - room streams: every [`HEAD_INTERVAL`], the last seq of each room followed here is
//!   read; a room whose head stayed above what this node dispatched for a whole interval
//!   lost an event, and its connections read what they lack from the store. A lost event
//!   is repaired within two intervals even if the room goes quiet; one followed by a later
//!   event is repaired at once, by the connections' own gap filling.
//! - memberships and sessions: every [`RECONCILE_INTERVAL`], the memberships of this
//!   node's users and the sessions of its connections are read; a subscription the store
//!   does not back is dropped (an ex-member hears nothing more of the room), one it backs
//!   is added, and a connection whose session has ended is closed.
//!
//! When the node's subscription to the bus is made again after an outage, everything is
//! checked at once. Only nodes on a shared bus run this: a local bus loses nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::bus::RedisBus;
use crate::domain::{RoomId, Timestamp};
use crate::store::StoreError;

/// How often the heads of the rooms followed here are checked.
pub const HEAD_INTERVAL: Duration = Duration::from_secs(1);
/// How often memberships and sessions are checked.
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(5);
/// Ids per query.
const CHUNK: usize = 1000;

/// Checks this node against the store until `stop`.
pub async fn run(app: App, bus: Arc<RedisBus>, stop: CancellationToken) {
    let mut heads = tokio::time::interval(HEAD_INTERVAL);
    let mut reconcile = tokio::time::interval(RECONCILE_INTERVAL);
    let mut suspects = HashMap::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = bus.rejoined() => {
                repair_heads(&app, &mut suspects, true).await;
                reconcile_connections(&app).await;
            }
            _ = heads.tick() => repair_heads(&app, &mut suspects, false).await,
            _ = reconcile.tick() => reconcile_connections(&app).await,
        }
    }
}

/// Repairs the rooms whose head the store has beyond what this node dispatched: at once,
/// or if it was so at the previous check already (`suspects`: each room's head then), so
/// that an event on its way is not mistaken for a lost one.
async fn repair_heads(app: &App, suspects: &mut HashMap<RoomId, i64>, at_once: bool) {
    let followed = app.hub().followed_rooms();
    let seen: HashMap<RoomId, i64> = followed.iter().copied().collect();
    let mut next = HashMap::new();
    let mut repaired = 0;
    for chunk in followed.chunks(CHUNK) {
        let rooms: Vec<RoomId> = chunk.iter().map(|(room, _)| *room).collect();
        let heads = match app.store().room_heads(&rooms).await {
            Ok(heads) => heads,
            Err(error) => return failed("room heads", &error),
        };
        for (room, head) in heads {
            let seen = seen.get(&room).copied().unwrap_or(0);
            if head <= seen {
                continue;
            }
            if at_once || suspects.get(&room).is_some_and(|earlier| *earlier > seen) {
                app.hub().repair_room(room, head);
                repaired += 1;
            } else {
                next.insert(room, head);
            }
        }
    }
    *suspects = next;
    if repaired > 0 {
        // Also a room newly followed here, whose connections have what they need already.
        tracing::debug!(
            rooms = repaired,
            "rooms whose connections checked the store for lost events"
        );
    }
}

/// Makes this node's subscriptions agree with the stored memberships, and closes the
/// connections of sessions that have ended.
async fn reconcile_connections(app: &App) {
    let hub = app.hub();
    let (mut joined, mut left, mut closed) = (0, 0, 0);
    for counts in hub.membership_counts().chunks(CHUNK) {
        let users: Vec<_> = counts.iter().map(|(user, _)| *user).collect();
        match app.store().memberships(&users).await {
            Ok(memberships) => {
                let (added, removed) = hub.reconcile_memberships(counts, &memberships);
                joined += added;
                left += removed;
            }
            Err(error) => return failed("memberships", &error),
        }
    }
    for sessions in hub.sessions().chunks(CHUNK) {
        match app.store().live_sessions(sessions, Timestamp::now()).await {
            Ok(live) => closed += hub.end_sessions_not_in(sessions, &live),
            Err(error) => return failed("sessions", &error),
        }
    }
    if joined + left + closed > 0 {
        tracing::info!(joined, left, closed, "repaired subscriptions and sessions the bus lost");
    }
}

fn failed(what: &str, error: &StoreError) {
    // A database outage is reported by every request and by readiness already.
    if matches!(error, StoreError::Unavailable(_) | StoreError::Closed) {
        tracing::debug!(%error, "could not check {what} against the store");
    } else {
        tracing::warn!(%error, "could not check {what} against the store");
    }
}
