//! Uploaded files.

use async_trait::async_trait;
use sqlx::SqliteConnection;

use super::super::writer::{ApplyError, Operation};
use crate::domain::{MediaId, Timestamp};
use crate::store::{Change, NewMedia};

pub(in crate::store::sqlite) struct CreateMedia(pub NewMedia);

#[async_trait]
impl Operation for CreateMedia {
    type Output = ();

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<(), ApplyError> {
        let media = &self.0;
        sqlx::query(
            "INSERT INTO media (id, uploader_id, kind, mime, name, size, width, height,
                                duration_ms, has_thumbnail, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .bind(media.id.as_str())
        .bind(media.uploader.as_i64())
        .bind(media.kind.as_str())
        .bind(&media.mime)
        .bind(&media.name)
        .bind(i64::try_from(media.size).unwrap_or(i64::MAX))
        .bind(media.width)
        .bind(media.height)
        .bind(media.duration_ms.and_then(|d| i64::try_from(d).ok()))
        .bind(media.has_thumbnail)
        .bind(media.created_at.as_millis())
        .execute(&mut *db)
        .await?;
        Ok(())
    }
}

/// Forgets files never attached that were uploaded before a time.
pub(in crate::store::sqlite) struct DeleteUnattachedMedia(pub Timestamp);

#[async_trait]
impl Operation for DeleteUnattachedMedia {
    type Output = Vec<MediaId>;

    async fn apply(
        &mut self,
        db: &mut SqliteConnection,
        _: &mut Vec<Change>,
    ) -> Result<Vec<MediaId>, ApplyError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM media WHERE message_id IS NULL AND created_at < ?1 RETURNING id",
        )
        .bind(self.0.as_millis())
        .fetch_all(&mut *db)
        .await?;
        Ok(ids.into_iter().map(MediaId::from_trusted).collect())
    }
}
