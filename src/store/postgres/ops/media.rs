//! Uploaded files.

use async_trait::async_trait;

use super::super::gate::Gate;
use super::super::writes::{Done, Failed, Tx, Write};
use crate::domain::{MediaId, Timestamp};
use crate::store::{Change, NewMedia};

pub(in crate::store::postgres) struct CreateMedia(pub NewMedia);

#[async_trait]
impl Write for CreateMedia {
    type Output = ();

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(&mut self, tx: &mut Tx, _: &mut Vec<Change>) -> Result<Done<()>, Failed> {
        let media = &self.0;
        sqlx::query(
            "INSERT INTO media (id, uploader_id, kind, mime, name, size, width, height,
                                duration_ms, has_thumbnail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(media.id.as_str())
        .bind(media.uploader.as_i64())
        .bind(media.kind.as_str())
        .bind(&media.mime)
        .bind(&media.name)
        .bind(i64::try_from(media.size).unwrap_or(i64::MAX))
        .bind(media.width.map(i64::from))
        .bind(media.height.map(i64::from))
        .bind(media.duration_ms.and_then(|d| i64::try_from(d).ok()))
        .bind(media.has_thumbnail)
        .bind(media.created_at.as_millis())
        .execute(tx.db())
        .await?;
        Ok(Done::Commit(()))
    }
}

/// Forgets files never attached that were uploaded before a time.
pub(in crate::store::postgres) struct DeleteUnattachedMedia(pub Timestamp);

#[async_trait]
impl Write for DeleteUnattachedMedia {
    type Output = Vec<MediaId>;

    fn gate(&self) -> Gate {
        Gate::Free
    }

    async fn apply(
        &mut self,
        tx: &mut Tx,
        _: &mut Vec<Change>,
    ) -> Result<Done<Vec<MediaId>>, Failed> {
        let ids: Vec<String> = sqlx::query_scalar(
            "DELETE FROM media WHERE message_id IS NULL AND created_at < $1 RETURNING id",
        )
        .bind(self.0.as_millis())
        .fetch_all(tx.db())
        .await?;
        Ok(Done::Commit(ids.into_iter().map(MediaId::from_trusted).collect()))
    }
}
