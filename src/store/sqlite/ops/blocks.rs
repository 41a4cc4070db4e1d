//! Blocks: one user no longer hearing from another. A block hides the pair's DM from the
//! blocker, announced like the blocker leaving it, and unblocking brings it back,
//! announced like joining it again; the rows of the DM never change.

use rusqlite::Connection;

use super::super::writer::{ApplyError, Operation};
use super::{dm_of, execute};
use crate::domain::{Timestamp, UserId};
use crate::store::Change;

/// Blocks (`blocking`) or unblocks: false if it already was so.
pub(in crate::store::sqlite) struct SetBlock {
    pub blocker: UserId,
    pub blocked: UserId,
    /// True to block, false to unblock.
    pub blocking: bool,
    /// When a block is made (an unblock leaves no trace to date).
    pub now: Timestamp,
}

impl Operation for SetBlock {
    type Output = bool;

    fn apply(&mut self, db: &Connection, changes: &mut Vec<Change>) -> Result<bool, ApplyError> {
        let (blocker, blocked) = (self.blocker.as_i64(), self.blocked.as_i64());
        let done = if self.blocking {
            execute(
                db,
                "INSERT INTO blocks (blocker, blocked, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (blocker, blocked) DO NOTHING",
                [blocker, blocked, self.now.as_millis()],
            )?
        } else {
            execute(
                db,
                "DELETE FROM blocks WHERE blocker = ?1 AND blocked = ?2",
                [blocker, blocked],
            )?
        };
        if done == 0 {
            return Ok(false);
        }
        if let Some(room_id) = dm_of(db, self.blocker, self.blocked)? {
            changes.push(crate::store::block_change(self.blocking, room_id, self.blocker));
        }
        Ok(true)
    }
}
