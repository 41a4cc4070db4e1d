//! Uploads, downloads and avatars.
//!
//! An upload is streamed to a staging file as it arrives, never held whole in memory, and
//! cut off with 413 as soon as it passes the size limit. Its type is sniffed from its first
//! bytes; a picture is then checked by decoding it (a file that only looks like one is a
//! plain file), gets a thumbnail, and loses its location and camera metadata
//! (`media/metadata.rs`). A file belongs to its uploader until a message carries it, then
//! to that message's room: only the room's members may download it, and to anyone else it
//! does not exist.
//!
//! An avatar arrives the same way, into a staging file; nothing large is held while a
//! request waits. Picture work (reading a picture whole, decoding it, making its thumbnail
//! or avatar) runs on threads of its own, one per core (`media/workers.rs`), and only once
//! the memory its decode takes (read from the picture's header) fits in a budget shared by
//! every job: a burst of uploads, however many in parallel, queues instead of exhausting
//! memory.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use super::App;
use crate::domain::{Attachment, MediaId, MediaKind, Timestamp, User, UserId};
use crate::error::{Error, Result, SizeLimit};
use crate::limits::Action;
use crate::media::blobs::BlobReader;
use crate::media::{SNIFF_BYTES, Sniffed, images, metadata, safe_file_name, sniff, workers};
use crate::store::{MediaRecord, NewMedia, ProfileChange};

/// The largest picture accepted as an avatar.
pub const MAX_AVATAR_BYTES: usize = 10 * 1024 * 1024;
/// The same, as a 413 names it.
pub const AVATAR_LIMIT: SizeLimit = SizeLimit { what: "Avatars", bytes: MAX_AVATAR_BYTES as u64 };

/// Memory for picture work, in MiB: the decodes in progress together take at most this
/// much (two of the largest pictures, 64 megapixels each), whatever the number of cores.
const PICTURE_MEMORY_MIB: u32 = 2 * (images::MAX_DECODE_BYTES >> 20) as u32;
static PICTURE_MEMORY: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(PICTURE_MEMORY_MIB as usize)));

/// Runs picture work on the picture in `path` on a picture thread (one per core) once its
/// share of the memory budget is free; `None` if the picture's header cannot be read (or
/// promises a picture too large to decode). The memory's permits move into the job: if the
/// request is abandoned, the work still runs to its end, and counts until then.
async fn picture_work<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce(Vec<u8>) -> T + Send + 'static,
) -> Result<Option<T>> {
    let lost = || Error::internal(std::io::Error::other("picture work failed"));
    let header_path = path.to_owned();
    let decoded =
        workers::run(move || images::decoded_size(&header_path)).await.ok_or_else(lost)?;
    let Ok(decoded) = decoded else { return Ok(None) };
    let file = tokio::fs::metadata(path).await.map_err(Error::internal)?.len();
    // The file is read whole beside its decode.
    let mib = (decoded + file).div_ceil(1 << 20).clamp(1, u64::from(PICTURE_MEMORY_MIB)) as u32;
    let memory =
        PICTURE_MEMORY.clone().acquire_many_owned(mib).await.map_err(|_| Error::Unavailable)?;
    let path = path.to_owned();
    let job = move || -> std::io::Result<T> {
        let _memory = memory;
        Ok(work(std::fs::read(&path)?))
    };
    let done = workers::run(job).await.ok_or_else(lost)?;
    done.map(Some).map_err(Error::internal)
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
        chunks: impl Stream<Item = Result<Bytes>> + Unpin,
    ) -> Result<Attachment> {
        self.limit(Action::Upload, uploader).await?;
        let id = MediaId::generate();
        let (staged, mut size, head) = self.stage(id.as_str(), chunks, self.upload_limit()).await?;
        // Counted once received: a body's length is only known then. Refused, the staged
        // file goes.
        self.limit_by(Action::UploadBytes, uploader, size).await?;
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
        metrics::counter!(crate::metrics::UPLOADS).increment(1);
        metrics::counter!(crate::metrics::UPLOAD_BYTES).increment(view.size);
        Ok(view)
    }

    /// Writes `chunks` to a staging file named `name`, refused with 413 as soon as they pass
    /// `limit` and with 422 if there are none. Returns the file (removed unless kept), its
    /// size and its first bytes, to sniff its type from.
    async fn stage(
        &self,
        name: &str,
        mut chunks: impl Stream<Item = Result<Bytes>> + Unpin,
        limit: SizeLimit,
    ) -> Result<(Staged, u64, Vec<u8>)> {
        let staged = Staged(Some(self.blobs().staging().join(name)));
        let mut file = crate::private::async_file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(staged.path())
            .await
            .map_err(Error::internal)?;
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > limit.bytes {
                return Err(limit.exceeded());
            }
            if head.len() < SNIFF_BYTES {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            file.write_all(&chunk).await.map_err(Error::internal)?;
        }
        file.flush().await.map_err(Error::internal)?;
        if size == 0 {
            return Err(crate::domain::ValidationError::new(
                "file",
                "empty_file",
                "The file is empty.",
            )
            .into());
        }
        Ok((staged, size, head))
    }

    /// Decodes a picture (removing its metadata first, in place) and makes its thumbnail.
    /// Returns its new size and what it is, or `None` if it does not decode.
    async fn prepare_picture(
        &self,
        path: &Path,
        sniffed: Sniffed,
    ) -> Result<Option<(u64, images::Picture)>> {
        let target = path.to_owned();
        let work = move |mut bytes: Vec<u8>| -> std::io::Result<Option<(u64, images::Picture)>> {
            let Some(cleaned) = metadata::strip(sniffed.mime, &bytes) else { return Ok(None) };
            if let Cow::Owned(cleaned) = cleaned
                && cleaned != bytes
            {
                std::fs::write(&target, &cleaned)?;
                bytes = cleaned;
            }
            Ok(images::inspect(&bytes).ok().map(|picture| (bytes.len() as u64, picture)))
        };
        match picture_work(path, work).await? {
            Some(done) => done.map_err(Error::internal),
            None => Ok(None),
        }
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

    /// Sets the caller's avatar from a picture, which arrives in `chunks` (refused with
    /// 413 past [`AVATAR_LIMIT`]): cropped to a centred square, scaled down.
    pub async fn set_avatar(
        &self,
        user: UserId,
        chunks: impl Stream<Item = Result<Bytes>> + Unpin,
    ) -> Result<User> {
        self.limit(Action::Upload, user).await?;
        let name = format!("avatar-{}", MediaId::generate());
        let (staged, size, _) = self.stage(&name, chunks, AVATAR_LIMIT).await?;
        self.limit_by(Action::UploadBytes, user, size).await?;
        let made = picture_work(staged.path(), |bytes| images::avatar(&bytes)).await?;
        drop(staged);
        let square = made.and_then(Result::ok).ok_or_else(|| {
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

    /// A PNG's header alone, claiming `width` × `height` grey pixels: what the budget
    /// reads, without the pixels.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let chunk = crate::media::metadata::png_chunk;
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit grey, no interlace
        [
            b"\x89PNG\r\n\x1a\n".to_vec(),
            chunk(b"IHDR", &ihdr),
            chunk(b"IDAT", &[]),
            chunk(b"IEND", &[]),
        ]
        .concat()
    }

    /// Runs `count` jobs on a picture of `width` × `height` at once; returns the most that
    /// ran together.
    async fn most_at_once(width: u32, height: u32, count: usize) -> usize {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("picture.png");
        std::fs::write(&path, png_header(width, height)).expect("write");
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..count)
            .map(|_| {
                let (running, most, path) = (running.clone(), most.clone(), path.clone());
                tokio::spawn(async move {
                    picture_work(&path, move |_| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for job in jobs {
            let done = job.await.expect("the task ends").expect("the job runs");
            assert!(done.is_some(), "the header was read");
        }
        most.load(Ordering::SeqCst)
    }

    // One test, so that its two parts do not share the process's budget at once.
    #[tokio::test]
    async fn picture_work_runs_one_job_per_core_and_within_the_memory_budget() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let most = most_at_once(100, 100, cores * 3).await;
        assert!((1..=cores).contains(&most), "{most} small jobs at once on {cores} cores");
        // 12,000 × 12,000 grey is 138 MiB to decode: three fit in the budget of 512 (on
        // fewer cores, the cores are the bound).
        let most = most_at_once(12_000, 12_000, 8).await;
        assert!((1..=3).contains(&most), "{most} large jobs at once");
        let missing = picture_work(Path::new("/nonexistent/picture.png"), |_| ()).await;
        assert!(matches!(missing, Ok(None)), "an unreadable picture is none");
    }
}
