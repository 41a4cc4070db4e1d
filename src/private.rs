//! What the server writes is its own: directories it creates are 0700 and files 0600,
//! whatever the umask, so that other users of the machine read neither the database nor
//! anyone's files. At start the data directory, the media directory and the embedded
//! database's files made by an earlier version are brought down to the same modes.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parent as 0700, and makes `dir` itself 0700 if it
/// existed with a wider mode.
pub fn dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    narrow(dir, DIR_MODE)
}

/// Creates `dir` and any missing parent as 0700 (one that exists keeps its mode: what
/// lies under the data directory is already out of others' reach).
pub async fn dir_async(dir: &Path) -> io::Result<()> {
    tokio::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).await
}

/// Options that create a file as 0600 (an existing file keeps its mode).
pub fn file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// The same, for tokio's files.
pub fn async_file_options() -> tokio::fs::OpenOptions {
    let mut options = tokio::fs::OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Writes `bytes` to a new (or emptied) file at `path`, created 0600.
pub async fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = async_file_options().write(true).create(true).truncate(true).open(path).await?;
    file.write_all(bytes).await?;
    file.flush().await
}

/// Takes away any permission beyond `mode` from `path`, if it exists.
pub fn narrow(path: &Path, mode: u32) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.permissions().mode() & 0o777 & !mode != 0 => {
            std::fs::set_permissions(
                path,
                Permissions::from_mode(metadata.permissions().mode() & mode),
            )
        }
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}
