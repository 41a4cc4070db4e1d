//! Where uploaded bytes live, behind [`BlobStore`]; the local file system under the data
//! directory by default. An object store slots in beside it.

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncSeekExt};

/// A reader over a stored file, from some offset, with the file's whole size.
pub struct BlobReader {
    pub size: u64,
    pub reader: Box<dyn AsyncRead + Send + Unpin>,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Where uploads are written while they arrive, on the same file system as the store,
    /// so that keeping one is a rename.
    fn staging(&self) -> &Path;
    /// Keeps the finished upload at `file` under `key`.
    async fn keep(&self, key: &str, file: &Path) -> io::Result<()>;
    /// Stores bytes made here (a thumbnail, an avatar) under `key`.
    async fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
    /// Reads what `key` holds, starting `offset` bytes in.
    async fn open(&self, key: &str, offset: u64) -> io::Result<BlobReader>;
    /// Removes what `key` holds; a missing key is not an error.
    async fn delete(&self, key: &str) -> io::Result<()>;
}

/// Files under one directory, spread over subdirectories by the first two characters of
/// their key so that no directory grows huge.
pub struct LocalBlobs {
    root: PathBuf,
    staging: PathBuf,
}

impl LocalBlobs {
    pub fn open(root: PathBuf) -> io::Result<Self> {
        let staging = root.join("staging");
        crate::private::dir(&root)?;
        crate::private::dir(&staging)?;
        // Uploads cut off by a crash are not worth keeping.
        for entry in std::fs::read_dir(&staging)? {
            let _ = std::fs::remove_file(entry?.path());
        }
        Ok(Self { root, staging })
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        let safe = !key.is_empty()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !safe || key.starts_with('.') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a blob key"));
        }
        Ok(self.root.join(&key[..2.min(key.len())]).join(key))
    }
}

#[async_trait]
impl BlobStore for LocalBlobs {
    fn staging(&self) -> &Path {
        &self.staging
    }

    async fn keep(&self, key: &str, file: &Path) -> io::Result<()> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            crate::private::dir_async(dir).await?;
        }
        tokio::fs::rename(file, path).await
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            crate::private::dir_async(dir).await?;
        }
        crate::private::write(&path, bytes).await
    }

    async fn open(&self, key: &str, offset: u64) -> io::Result<BlobReader> {
        let mut file = tokio::fs::File::open(self.path(key)?).await?;
        let size = file.metadata().await?.len();
        file.seek(io::SeekFrom::Start(offset.min(size))).await?;
        Ok(BlobReader { size, reader: Box::new(file) })
    }

    async fn delete(&self, key: &str) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(key)?).await {
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}
