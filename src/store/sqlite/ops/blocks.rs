//! Blocks: one user no longer hearing from another. A block hides the pair's DM from the
//! blocker, announced like the blocker leaving it, and unblocking brings it back,
//! announced like joining it again; the rows of the DM never change.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::super::writer::{ApplyError, Operation};
use super::dm_of;
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

#[async_trait]
impl Operation for SetBlock {
    type Output = bool;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<bool, ApplyError> {
        let done = if self.blocking {
            sqlx::query(
                "INSERT INTO blocks (blocker, blocked, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (blocker, blocked) DO NOTHING",
            )
            .bind(self.blocker.as_i64())
            .bind(self.blocked.as_i64())
            .bind(self.now.as_millis())
            .execute(&mut *db)
            .await?
        } else {
            sqlx::query("DELETE FROM blocks WHERE blocker = ?1 AND blocked = ?2")
                .bind(self.blocker.as_i64())
                .bind(self.blocked.as_i64())
                .execute(&mut *db)
                .await?
        };
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(room_id) = dm_of(db, self.blocker, self.blocked).await? {
            changes.push(crate::store::block_change(self.blocking, room_id, self.blocker));
        }
        Ok(true)
    }
}
