//! Read and delivered markers.

use async_trait::async_trait;
use sqlx::PgPool;

use super::super::gate::Gate;
use super::super::unread_of;
use super::super::writes::{Done, Failed, Tx, Write};
use super::refused;
use crate::domain::{Receipt, RoomId, RoomKind, Unread, UserId};
use crate::store::rules::Markers;
use crate::store::{Change, StoreError, StoreResult};

pub(in crate::store::postgres) struct MarkRead {
    room: RoomId,
    user: UserId,
    read: Option<i64>,
    delivered: Option<i64>,
    /// The markers as committed, for the announcement.
    moved: Option<(Markers, bool)>,
}

impl MarkRead {
    pub fn new(room: RoomId, user: UserId, read: Option<i64>, delivered: Option<i64>) -> Self {
        Self { room, user, read, delivered, moved: None }
    }
}

#[async_trait]
impl Write for MarkRead {
    /// The member's counts if their read marker moved.
    type Output = Option<Unread>;

    /// Markers move often (every member of a busy room, after every message), so their
    /// transactions take no turn: the member's row lock orders two moves of the same
    /// markers, and the rule moves them only forward whatever the order.
    fn gate(&self) -> Gate {
        Gate::Free
    }

    /// The counts are announced in the room's turn, after the commit, as they are then:
    /// no message of the room can be between its commit and its announcement meanwhile,
    /// so the counts never disagree with the messages announced before them.
    fn announce_gate(&self) -> Gate {
        Gate::Room(self.room)
    }

    async fn apply(
        &mut self,
        tx: &mut Tx,
        _: &mut Vec<Change>,
    ) -> Result<Done<Option<Unread>>, Failed> {
        let before: Option<(i64, i64, i64, String)> = sqlx::query_as(
            "SELECT m.last_read_seq, m.delivered_seq, r.last_seq, r.kind FROM memberships m
             JOIN rooms r ON r.id = m.room_id WHERE m.room_id = $1 AND m.user_id = $2
             FOR UPDATE OF m",
        )
        .bind(self.room.as_i64())
        .bind(self.user.as_i64())
        .fetch_optional(tx.db())
        .await?;
        let Some((read_before, delivered_before, last_seq, kind)) = before else {
            return Err(refused(StoreError::NotMember));
        };
        let kind = RoomKind::from_stored(&kind)
            .ok_or_else(|| refused(StoreError::Corrupt(format!("room kind {kind:?}"))))?;
        let before = Markers { read: read_before, delivered: delivered_before };
        let after = before.advance(kind, last_seq, self.read, self.delivered);
        if after == before {
            self.moved = None;
            return Ok(Done::Rollback(None));
        }
        sqlx::query(
            "UPDATE memberships SET last_read_seq = $1, delivered_seq = $2
             WHERE room_id = $3 AND user_id = $4",
        )
        .bind(after.read)
        .bind(after.delivered)
        .bind(self.room.as_i64())
        .bind(self.user.as_i64())
        .execute(tx.db())
        .await?;
        self.moved = Some((after, after.read > before.read));
        Ok(Done::Commit(None))
    }

    async fn after_commit(
        &mut self,
        pool: &PgPool,
        output: &mut Option<Unread>,
        changes: &mut Vec<Change>,
    ) -> StoreResult<()> {
        let Some((markers, read_moved)) = self.moved else { return Ok(()) };
        let counted = if read_moved { counts(pool, self.room, self.user).await } else { Ok(None) };
        // The move is committed: it is announced even if its counts could not be read.
        let unread = counted.as_ref().ok().copied().flatten();
        let receipt = Receipt {
            user_id: self.user,
            read_seq: markers.read,
            delivered_seq: markers.delivered,
        };
        changes.push(Change::MarkersMoved { room_id: self.room, receipt, unread });
        *output = unread;
        counted.map(|_| ())
    }
}

/// A member's counts as they are now; `None` for one who left meanwhile.
async fn counts(pool: &PgPool, room: RoomId, user: UserId) -> StoreResult<Option<Unread>> {
    let mut db = pool.acquire().await?;
    Ok(unread_of(&mut db, room, user).await?)
}
