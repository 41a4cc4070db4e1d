//! The control socket: how `confab admin` reaches a server running on the same machine.
//!
//! The embedded database serves one process, which holds its data directory's lock, so a
//! command run beside a running server cannot open the store; and even where it could (a
//! PostgreSQL node without Redis), what it changed would not reach the server's
//! connections. So a server without a shared bus listens on a Unix socket in its data
//! directory (`admin.sock`, the owner's alone, like everything there), and `confab admin`
//! hands it the command: the server runs it as any of its own requests, and its own bus
//! announces what changed, which closes a deactivated user's sockets at once. Only when
//! nobody answers there does the command open the store itself (`cli`).
//!
//! The exchange is one JSON line each way: a [`ControlRequest`], then a
//! [`ControlResponse`]. Nothing else is served here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::app::admin::{AdminCommand, AdminOutcome};

/// The socket's file name in the data directory.
pub const SOCKET_FILE: &str = "admin.sock";

/// The largest request line taken: a command is a few names.
const MAX_REQUEST: u64 = 64 * 1024;

/// How long a connection may take to send its request, and a command to run.
const PATIENCE: Duration = Duration::from_secs(30);

/// The socket of the server whose data directory is `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// What `confab admin` asks a running server.
#[derive(Debug, Serialize, Deserialize)]
pub struct ControlRequest {
    /// The operating-system user who ran the command, for the log and the audit table.
    pub os_user: String,
    pub command: AdminCommand,
}

/// What the server answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlResponse {
    Ok(AdminOutcome),
    /// The command was refused or failed: the error's stable code and sentence.
    Error {
        code: String,
        message: String,
    },
}

#[cfg(unix)]
pub use unix::{request, serve};

#[cfg(unix)]
mod unix {
    use std::path::{Path, PathBuf};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{UnixListener, UnixStream};
    use tokio_util::sync::CancellationToken;

    use super::{ControlRequest, ControlResponse, MAX_REQUEST, PATIENCE};
    use crate::app::App;
    use crate::app::admin::Actor;

    /// Listens on `path` (replacing a socket a stopped server left there) and serves
    /// commands until `shutdown`, then removes the socket. The caller holds the data
    /// directory (the embedded database's lock), so no other server's socket is replaced.
    pub fn serve(
        app: App,
        path: PathBuf,
        shutdown: CancellationToken,
    ) -> std::io::Result<tokio::task::JoinHandle<()>> {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let listener = UnixListener::bind(&path)?;
        crate::private::narrow(&path, crate::private::FILE_MODE)?;
        tracing::debug!(path = %path.display(), "control socket listening");
        Ok(tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    () = shutdown.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(error) => {
                            tracing::warn!(%error, "control socket: accept failed");
                            continue;
                        }
                    },
                };
                let app = app.clone();
                tokio::spawn(async move {
                    if let Err(error) = answer(app, stream).await {
                        tracing::warn!(%error, "control socket: a command failed to arrive");
                    }
                });
            }
            let _ = std::fs::remove_file(&path);
        }))
    }

    async fn answer(app: App, stream: UnixStream) -> std::io::Result<()> {
        // The socket is the server's user's alone; the peer's uid says who of them asked.
        let uid = stream.peer_cred().ok().map(|cred| cred.uid());
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        let mut reader = BufReader::new(read.take(MAX_REQUEST));
        tokio::time::timeout(PATIENCE, reader.read_line(&mut line))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        let response = match serde_json::from_str::<ControlRequest>(&line) {
            Ok(request) => {
                let os_user = match uid {
                    Some(uid) => format!("{} (uid {uid})", request.os_user),
                    None => request.os_user,
                };
                let actor = Actor::Cli { os_user };
                match app.admin_command(&actor, request.command).await {
                    Ok(outcome) => ControlResponse::Ok(outcome),
                    Err(error) => {
                        if let crate::error::Error::Internal(cause) = &error {
                            tracing::error!(error = %cause, "control socket: a command failed");
                        }
                        ControlResponse::Error {
                            code: error.code().to_owned(),
                            message: error.public_message(),
                        }
                    }
                }
            }
            Err(error) => ControlResponse::Error {
                code: "bad_request".to_owned(),
                message: format!("The command could not be read: {error}"),
            },
        };
        let mut bytes = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        write.write_all(&bytes).await?;
        write.shutdown().await
    }

    /// Asks the server listening on `path`; `None` when no server listens there (no
    /// socket, or one a stopped server left behind).
    pub async fn request(
        path: &Path,
        request: &ControlRequest,
    ) -> std::io::Result<Option<ControlResponse>> {
        let mut stream = match UnixStream::connect(path).await {
            Ok(stream) => stream,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(error),
        };
        let mut bytes = serde_json::to_vec(request).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        stream.write_all(&bytes).await?;
        let mut line = String::new();
        tokio::time::timeout(PATIENCE, BufReader::new(stream).read_line(&mut line))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        serde_json::from_str(&line).map(Some).map_err(std::io::Error::other)
    }
}

#[cfg(not(unix))]
pub use elsewhere::{request, serve};

/// Without Unix sockets there is no control socket: `confab admin` opens the store itself.
#[cfg(not(unix))]
mod elsewhere {
    use std::path::{Path, PathBuf};

    use tokio_util::sync::CancellationToken;

    use super::{ControlRequest, ControlResponse};
    use crate::app::App;

    pub fn serve(
        _app: App,
        _path: PathBuf,
        _shutdown: CancellationToken,
    ) -> std::io::Result<tokio::task::JoinHandle<()>> {
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }

    pub async fn request(
        _path: &Path,
        _request: &ControlRequest,
    ) -> std::io::Result<Option<ControlResponse>> {
        Ok(None)
    }
}
