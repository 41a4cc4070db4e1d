//! Read and delivered markers.

use rusqlite::{Connection, OptionalExtension};

use super::super::writer::{ApplyError, Operation};
use super::{execute, refused, unread_of};
use crate::domain::{Receipt, RoomId, RoomKind, Unread, UserId};
use crate::store::rules::Markers;
use crate::store::{Change, StoreError};

pub(in crate::store::sqlite) struct MarkRead {
    pub room: RoomId,
    pub user: UserId,
    pub read: Option<i64>,
    pub delivered: Option<i64>,
}

impl Operation for MarkRead {
    /// The member's counts if their read marker moved.
    type Output = Option<Unread>;

    fn apply(
        &mut self,
        db: &Connection,
        changes: &mut Vec<Change>,
    ) -> Result<Option<Unread>, ApplyError> {
        let before: Option<(i64, i64, i64, String)> = db
            .prepare_cached(
                "SELECT m.last_read_seq, m.delivered_seq, r.last_seq, r.kind FROM memberships m
                 JOIN rooms r ON r.id = m.room_id WHERE m.room_id = ?1 AND m.user_id = ?2",
            )?
            .query_row([self.room.as_i64(), self.user.as_i64()], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .optional()?;
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
        execute(
            db,
            "UPDATE memberships SET last_read_seq = ?1, delivered_seq = ?2
             WHERE room_id = ?3 AND user_id = ?4",
            [read, delivered, self.room.as_i64(), self.user.as_i64()],
        )?;
        let unread =
            if read > read_before { Some(unread_of(db, self.room, self.user)?) } else { None };
        let receipt = Receipt { user_id: self.user, read_seq: read, delivered_seq: delivered };
        changes.push(Change::MarkersMoved { room_id: self.room, receipt, unread });
        Ok(unread)
    }
}
