//! Blocks: one user no longer hearing from another. A block hides the pair's DM from the
//! blocker, announced like the blocker leaving it, and unblocking brings it back,
//! announced like joining it again; the rows of the DM never change.
//!
//! Both lock the pair's user rows (as a DM's creation does) and then the DM's room row (as
//! every write to the room does), so the announcement takes its place among the room's
//! changes: a message checked before the block commits first, one after it is refused.

use async_trait::async_trait;

use super::super::gate::Gate;
use super::super::writes::{Done, Failed, Tx, Write};
use super::{dm_of, lock_pair, lock_room};
use crate::domain::{RoomId, Timestamp, UserId};
use crate::store::Change;

/// Blocks (`blocking`) or unblocks: false if it already was so.
pub(in crate::store::postgres) struct SetBlock {
    pub blocker: UserId,
    pub blocked: UserId,
    /// True to block, false to unblock.
    pub blocking: bool,
    /// Their DM as read before the write, for its turn.
    pub dm: Option<RoomId>,
    /// When a block is made (an unblock leaves no trace to date).
    pub now: Timestamp,
}

#[async_trait]
impl Write for SetBlock {
    type Output = bool;

    fn gate(&self) -> Gate {
        self.dm.map_or(Gate::Free, Gate::Room)
    }

    async fn apply(
        &mut self,
        tx: &mut Tx,
        changes: &mut Vec<Change>,
    ) -> Result<Done<bool>, Failed> {
        let dm = lock_dm(tx, self.blocker, self.blocked).await?;
        let done = if self.blocking {
            sqlx::query(
                "INSERT INTO blocks (blocker, blocked, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (blocker, blocked) DO NOTHING",
            )
            .bind(self.blocker.as_i64())
            .bind(self.blocked.as_i64())
            .bind(self.now.as_millis())
            .execute(tx.db())
            .await?
        } else {
            sqlx::query("DELETE FROM blocks WHERE blocker = $1 AND blocked = $2")
                .bind(self.blocker.as_i64())
                .bind(self.blocked.as_i64())
                .execute(tx.db())
                .await?
        };
        if done.rows_affected() == 0 {
            return Ok(Done::Rollback(false));
        }
        if let Some(room_id) = dm {
            changes.push(crate::store::block_change(self.blocking, room_id, self.blocker));
        }
        Ok(Done::Commit(true))
    }
}

/// Locks the pair, then their DM's room if they have one, and returns the DM.
async fn lock_dm(tx: &mut Tx, a: UserId, b: UserId) -> Result<Option<RoomId>, Failed> {
    lock_pair(tx.db(), a, b).await?;
    let dm = dm_of(tx.db(), a, b).await?;
    if let Some(room) = dm {
        lock_room(tx.db(), room).await?;
    }
    Ok(dm)
}
