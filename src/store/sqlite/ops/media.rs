//! Uploaded files.

use rusqlite::{Connection, params};

use super::super::writer::{ApplyError, Operation};
use super::{column, execute};
use crate::domain::{MediaId, Timestamp};
use crate::store::{Change, NewMedia};

pub(in crate::store::sqlite) struct CreateMedia(pub NewMedia);

impl Operation for CreateMedia {
    type Output = ();

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<(), ApplyError> {
        let media = &self.0;
        execute(
            db,
            "INSERT INTO media (id, uploader_id, kind, mime, name, size, width, height,
                                duration_ms, has_thumbnail, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                media.id.as_str(),
                media.uploader.as_i64(),
                media.kind.as_str(),
                media.mime,
                media.name,
                i64::try_from(media.size).unwrap_or(i64::MAX),
                media.width,
                media.height,
                media.duration_ms.and_then(|d| i64::try_from(d).ok()),
                media.has_thumbnail,
                media.created_at.as_millis(),
            ],
        )?;
        Ok(())
    }
}

/// Forgets files never attached that were uploaded before a time.
pub(in crate::store::sqlite) struct DeleteUnattachedMedia(pub Timestamp);

impl Operation for DeleteUnattachedMedia {
    type Output = Vec<MediaId>;

    fn apply(&mut self, db: &Connection, _: &mut Vec<Change>) -> Result<Vec<MediaId>, ApplyError> {
        let ids: Vec<String> = column(
            db,
            "DELETE FROM media WHERE message_id IS NULL AND created_at < ?1 RETURNING id",
            [self.0.as_millis()],
        )?;
        Ok(ids.into_iter().map(MediaId::from_trusted).collect())
    }
}
