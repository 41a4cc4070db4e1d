//! Receipts, gathered per room and sent at most twice a second.
//!
//! In a busy room every member moves their read marker every few seconds. Sending each move
//! to every member would cost members² frames; instead the moves of each room are merged
//! (the highest markers win) and sent as one `receipts` frame per room and interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusEvent};
use crate::domain::{Receipt, RoomId, UserId};
use crate::realtime::protocol::ServerFrame;

/// How often gathered receipts leave.
const INTERVAL: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct ReceiptBatcher {
    pending: Mutex<HashMap<RoomId, HashMap<UserId, Receipt>>>,
}

impl ReceiptBatcher {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Adds a member's new markers; called by the store's change sink, so it never waits.
    pub fn add(&self, room_id: RoomId, receipt: Receipt) {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = pending.entry(room_id).or_default().entry(receipt.user_id).or_insert(receipt);
        entry.read_seq = entry.read_seq.max(receipt.read_seq);
        entry.delivered_seq = entry.delivered_seq.max(receipt.delivered_seq);
    }

    /// Sends what was gathered, every interval, until shutdown.
    pub async fn run(self: Arc<Self>, bus: Arc<dyn Bus>, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return self.flush(bus.as_ref()),
                _ = interval.tick() => self.flush(bus.as_ref()),
            }
        }
    }

    fn flush(&self, bus: &dyn Bus) {
        let gathered = std::mem::take(
            &mut *self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for (room_id, receipts) in gathered {
            let receipts: Vec<Receipt> = receipts.into_values().collect();
            let frame = ServerFrame::Receipts { room_id, receipts: &receipts }.to_text();
            bus.publish(BusEvent::RoomMoment { room_id, except: None, frame });
        }
    }
}
