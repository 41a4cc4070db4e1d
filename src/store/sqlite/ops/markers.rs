//! Read and delivered markers.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::super::writer::{ApplyError, Operation};
use super::{refused, unread_of};
use crate::domain::{Receipt, RoomId, RoomKind, Unread, UserId};
use crate::store::rules::Markers;
use crate::store::{Change, StoreError};

pub(in crate::store::sqlite) struct MarkRead {
    pub room: RoomId,
    pub user: UserId,
    pub read: Option<i64>,
    pub delivered: Option<i64>,
}

#[async_trait]
impl Operation for MarkRead {
    /// The member's counts if their read marker moved.
    type Output = Option<Unread>;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        changes: &mut Vec<Change>,
    ) -> Result<Option<Unread>, ApplyError> {
        let before: Option<(i64, i64, i64, String)> = sqlx::query_as(
            "SELECT m.last_read_seq, m.delivered_seq, r.last_seq, r.kind FROM memberships m
             JOIN rooms r ON r.id = m.room_id WHERE m.room_id = ?1 AND m.user_id = ?2",
        )
        .bind(self.room.as_i64())
        .bind(self.user.as_i64())
        .fetch_optional(&mut *db)
        .await?;
        let Some((read_before, delivered_before, last_seq, kind)) = before else {
            return Err(refused(StoreError::NotMember));
        };
        let kind = RoomKind::from_stored(&kind)
            .ok_or_else(|| ApplyError::Batch(StoreError::Corrupt(format!("room kind {kind:?}"))))?;
        let before = Markers { read: read_before, delivered: delivered_before };
        let Markers { read, delivered } = before.advance(kind, last_seq, self.read, self.delivered);
        if read == read_before && delivered == delivered_before {
            return Ok(None);
        }
        sqlx::query(
            "UPDATE memberships SET last_read_seq = ?1, delivered_seq = ?2
             WHERE room_id = ?3 AND user_id = ?4",
        )
        .bind(read)
        .bind(delivered)
        .bind(self.room.as_i64())
        .bind(self.user.as_i64())
        .execute(&mut *db)
        .await?;
        let unread = if read > read_before {
            Some(unread_of(db, self.room, self.user).await?)
        } else {
            None
        };
        let receipt = Receipt { user_id: self.user, read_seq: read, delivered_seq: delivered };
        changes.push(Change::MarkersMoved { room_id: self.room, receipt, unread });
        Ok(unread)
    }
}
