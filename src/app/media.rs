//! Uploads, downloads and avatars.
//!
//! An upload is streamed to a staging file as it arrives, never held whole in memory, and
//! cut off with 413 as soon as it passes the size limit. Its type is sniffed from its first
//! bytes; a picture is then checked by decoding it (a file that only looks like one is a
//! plain file), gets a thumbnail, and loses its location data if it is a JPEG. A file
//! belongs to its uploader until a message carries it, then to that message's room: only
//! the room's members may download it, and to anyone else it does not exist.
//!
//! Picture work (reading a picture whole, decoding it, making its thumbnail or avatar)
//! runs on the blocking pool, at most one job per core at once: each may take hundreds of
//! megabytes, so a burst of uploads queues instead of exhausting memory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::App;
use crate::domain::{Attachment, MediaId, MediaKind, Timestamp, User, UserId};
use crate::error::{Error, Result, SizeLimit};
use crate::media::blobs::BlobReader;
use crate::media::{SNIFF_BYTES, Sniffed, images, safe_file_name, sniff};
use crate::store::{MediaRecord, NewMedia, ProfileChange};

/// The largest picture accepted as an avatar.
pub const MAX_AVATAR_BYTES: usize = 10 * 1024 * 1024;
/// The same, as a 413 names it.
pub const AVATAR_LIMIT: SizeLimit = SizeLimit { what: "Avatars", bytes: MAX_AVATAR_BYTES as u64 };

/// Permits for picture work, one per core. The cores are the process's, shared by every
/// `App` it runs (tests run many), so the bound is the process's too.
static PICTURE_WORK: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Arc::new(Semaphore::new(cores))
});

/// Runs picture work on the blocking pool once a permit is free. The permit moves into the
/// job: if the request is abandoned, the work still runs to its end, and it keeps counting
/// against the bound until then.
async fn picture_work<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let permit = PICTURE_WORK.clone().acquire_owned().await.map_err(|_| Error::Unavailable)?;
    let job = move || {
        let _permit = permit;
        work()
    };
    tokio::task::spawn_blocking(job).await.map_err(Error::internal)
}

/// A file as it is served: its record and its bytes from some offset.
pub struct Download {
    pub record: MediaRecord,
    pub blob: BlobReader,
}

/// A staging file that removes itself unless kept.
struct Staged(Option<PathBuf>);

impl Staged {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn kept(mut self) {
        self.0 = None;
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl App {
    /// The largest upload, as a 413 names it.
    pub fn upload_limit(&self) -> SizeLimit {
        SizeLimit { what: "Files", bytes: self.settings().max_upload_bytes }
    }

    /// Receives an upload. `duration_ms` is what the client measured of a recording (the
    /// server does not parse media to find it); it is kept for sound and video only.
    /// The chunks' errors are the caller's to word: a body cut off by the transport's own
    /// size limit is a 413 like ours, a broken one a 400.
    pub async fn upload(
        &self,
        uploader: UserId,
        name: &str,
        duration_ms: Option<u64>,
        mut chunks: impl Stream<Item = Result<Bytes>> + Unpin,
    ) -> Result<Attachment> {
        let id = MediaId::generate();
        let staged = Staged(Some(self.blobs().staging().join(id.as_str())));
        let mut file = tokio::fs::File::create(staged.path()).await.map_err(Error::internal)?;
        let limit = self.settings().max_upload_bytes;
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(self.upload_limit().exceeded());
            }
            if head.len() < SNIFF_BYTES {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            file.write_all(&chunk).await.map_err(Error::internal)?;
        }
        file.flush().await.map_err(Error::internal)?;
        drop(file);
        if size == 0 {
            return Err(crate::domain::ValidationError::new(
                "file",
                "empty_file",
                "The file is empty.",
            )
            .into());
        }

        let mut sniffed = sniff(&head);
        let mut picture = None;
        if sniffed.kind == MediaKind::Image {
            match self.prepare_picture(staged.path(), sniffed).await? {
                Some(prepared) => {
                    size = prepared.0;
                    picture = Some(prepared.1);
                }
                // It only looked like a picture.
                None => {
                    sniffed = Sniffed { kind: MediaKind::File, mime: "application/octet-stream" }
                }
            }
        }
        let duration_ms = duration_ms
            .filter(|_| matches!(sniffed.kind, MediaKind::Audio | MediaKind::Video))
            .map(|ms| ms.min(24 * 3600 * 1000));

        if let Some(picture) = &picture {
            self.blobs()
                .put(&thumbnail_key(&id), &picture.thumbnail)
                .await
                .map_err(Error::internal)?;
        }
        self.blobs().keep(id.as_str(), staged.path()).await.map_err(Error::internal)?;
        staged.kept();
        let media = NewMedia {
            id: id.clone(),
            uploader,
            kind: sniffed.kind,
            mime: sniffed.mime.to_owned(),
            name: safe_file_name(name, sniffed),
            size,
            width: picture.as_ref().map(|p| p.width),
            height: picture.as_ref().map(|p| p.height),
            duration_ms,
            has_thumbnail: picture.is_some(),
            created_at: Timestamp::now(),
        };
        let view = Attachment {
            id,
            kind: media.kind,
            mime: media.mime.clone(),
            name: media.name.clone(),
            size: media.size,
            width: media.width,
            height: media.height,
            duration_ms: media.duration_ms,
            has_thumbnail: media.has_thumbnail,
        };
        self.store().create_media(media).await?;
        Ok(view)
    }

    /// Decodes a picture (removing a JPEG's location data first, in place) and makes its
    /// thumbnail. Returns its new size and what it is, or `None` if it does not decode.
    async fn prepare_picture(
        &self,
        path: &Path,
        sniffed: Sniffed,
    ) -> Result<Option<(u64, images::Picture)>> {
        let path = path.to_owned();
        let work = move || -> std::io::Result<Option<(u64, images::Picture)>> {
            let mut bytes = std::fs::read(&path)?;
            if sniffed.mime == "image/jpeg" {
                let Some(cleaned) = images::strip_jpeg_metadata(&bytes) else { return Ok(None) };
                std::fs::write(&path, &cleaned)?;
                bytes = cleaned;
            }
            Ok(images::inspect(&bytes).ok().map(|picture| (bytes.len() as u64, picture)))
        };
        picture_work(work).await?.map_err(Error::internal)
    }

    /// A file (or its thumbnail) for `viewer`, from byte `offset` on: the uploader's own
    /// unattached file, or an attached one in a room `viewer` is a member of. Anything else
    /// does not exist for them.
    pub async fn download(
        &self,
        viewer: UserId,
        id: &str,
        thumbnail: bool,
        offset: u64,
    ) -> Result<Download> {
        let not_found = || Error::NotFound("File");
        let id = MediaId::parse(id).ok_or_else(not_found)?;
        let record = self.store().media(&id).await?.ok_or_else(not_found)?;
        let allowed = match record.room {
            Some(room) => {
                self.store().room_access(room, viewer).await?.is_some_and(|a| a.role.is_some())
            }
            None => record.uploader == viewer,
        };
        if !allowed || (thumbnail && !record.has_thumbnail) {
            return Err(not_found());
        }
        let key = if thumbnail { thumbnail_key(&id) } else { id.as_str().to_owned() };
        let blob = self.blobs().open(&key, offset).await.map_err(|error| match error.kind() {
            std::io::ErrorKind::NotFound => not_found(),
            _ => Error::internal(error),
        })?;
        Ok(Download { record, blob })
    }

    /// Removes the bytes of files whose records are gone.
    pub(crate) async fn erase_files(&self, ids: &[MediaId]) {
        for id in ids {
            for key in [id.as_str().to_owned(), thumbnail_key(id)] {
                if let Err(error) = self.blobs().delete(&key).await {
                    tracing::warn!(%error, %key, "could not remove a file");
                }
            }
        }
    }

    /// Removes uploads never attached to a message within a day.
    pub async fn remove_unattached_uploads(&self) -> Result<usize> {
        // In milliseconds, not seconds: a TTL under a second must not round to none at all.
        let ttl = i64::try_from(self.settings().unattached_ttl.as_millis()).unwrap_or(i64::MAX);
        let before = Timestamp::from_millis(Timestamp::now().as_millis().saturating_sub(ttl));
        let gone = self.store().delete_unattached_media(before).await?;
        self.erase_files(&gone).await;
        Ok(gone.len())
    }

    /// Changes the caller's display name and bio.
    pub async fn update_profile(
        &self,
        user: UserId,
        display_name: Option<&str>,
        bio: Option<&str>,
    ) -> Result<User> {
        let change = ProfileChange {
            display_name: display_name.map(crate::domain::DisplayName::parse).transpose()?,
            bio: bio.map(crate::domain::Bio::parse).transpose()?,
            avatar: None,
        };
        Ok(self.store().update_profile(user, change).await?.0)
    }

    /// Sets the caller's avatar from a picture: cropped to a centred square, scaled down.
    pub async fn set_avatar(&self, user: UserId, picture: Bytes) -> Result<User> {
        let square = picture_work(move || images::avatar(&picture)).await?.map_err(|_| {
            crate::domain::ValidationError::new(
                "file",
                "invalid_image",
                "That is not a picture Confab can read (PNG, JPEG, GIF or WebP).",
            )
        })?;
        let key = format!("avatar-{}", MediaId::generate());
        self.blobs().put(&key, &square).await.map_err(Error::internal)?;
        let change = ProfileChange { avatar: Some(Some(key)), ..ProfileChange::default() };
        let (user, replaced) = self.store().update_profile(user, change).await?;
        if let Some(old) = replaced {
            let _ = self.blobs().delete(&old).await;
        }
        Ok(user)
    }

    pub async fn remove_avatar(&self, user: UserId) -> Result<User> {
        let change = ProfileChange { avatar: Some(None), ..ProfileChange::default() };
        let (user, replaced) = self.store().update_profile(user, change).await?;
        if let Some(old) = replaced {
            let _ = self.blobs().delete(&old).await;
        }
        Ok(user)
    }

    /// A user's avatar picture.
    pub async fn avatar(&self, user: &str) -> Result<BlobReader> {
        let user = self.user(user).await?;
        let key = self.store().avatar(user.id).await?.ok_or(Error::NotFound("Avatar"))?;
        self.blobs().open(&key, 0).await.map_err(|_| Error::NotFound("Avatar"))
    }
}

fn thumbnail_key(id: &MediaId) -> String {
    format!("{id}.thumb")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn picture_work_runs_at_most_one_job_per_core_at_once() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..cores * 3)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(picture_work(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                }))
            })
            .collect();
        for job in jobs {
            job.await.expect("the task ends").expect("the job runs");
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=cores).contains(&most), "{most} jobs at once on {cores} cores");
    }
}
