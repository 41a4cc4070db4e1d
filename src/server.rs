//! Assembling and running the server: open the store, build the hub, bus and app, serve
//! HTTP and WebSocket on a listener the caller provides, and shut down when told.
//!
//! The listener and the shutdown signal come from outside, so tests bind port 0 and stop
//! servers at will, and `main` wires them to the configured address and to Ctrl-C.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::app::events::change_sink;
use crate::app::receipts::ReceiptBatcher;
use crate::bus::{Bus, LocalBus, RedisBus};
use crate::config::{Settings, redact};
use crate::domain::Timestamp;
use crate::media::blobs::LocalBlobs;
use crate::realtime::Hub;
use crate::store::StoreError;

/// How long shutdown waits for requests in progress, then for WebSocket connections to send
/// their close frames.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("could not open {database}: {error}")]
    Store { database: String, error: StoreError },
    #[error("could not use the bus {0}: {1}")]
    Redis(String, redis::RedisError),
    #[error("could not start: {0}")]
    Start(#[from] crate::error::Error),
    #[error("the server failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// Serves on `listener` until `shutdown` is cancelled, then closes every WebSocket with
/// "restarting: reconnect now" (1012) and returns once they are closed.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| ServerError::DataDir {
        path: settings.data_dir.display().to_string(),
        source,
    })?;
    let hub = Arc::new(Hub::new());
    // The bus outlives the store, so that the writes the store finishes at shutdown are
    // still published.
    let bus_tasks = TaskTracker::new();
    let bus_stop = CancellationToken::new();
    let redis = match &settings.redis_url {
        Some(url) => Some(
            RedisBus::start(url, hub.clone(), &bus_tasks, bus_stop.clone())
                .map_err(|error| ServerError::Redis(redact(url), error))?,
        ),
        None => None,
    };
    let bus: Arc<dyn Bus> = match &redis {
        Some(redis) => redis.clone(),
        None => Arc::new(LocalBus::new(hub.clone())),
    };
    let receipts = ReceiptBatcher::new();
    let sink = change_sink(bus.clone(), hub.clone(), receipts.clone());
    let store = crate::store::open(&settings.database, &settings.data_dir, sink)
        .await
        .map_err(|error| ServerError::Store { database: settings.database.redacted(), error })?;
    let blobs = LocalBlobs::open(settings.data_dir.join("media")).map_err(|source| {
        ServerError::DataDir { path: settings.data_dir.join("media").display().to_string(), source }
    })?;
    let app =
        App::new(store.clone(), Arc::new(blobs), bus.clone(), hub, settings, shutdown.clone())?;

    let housekeeping = tokio::spawn(housekeeping(app.clone(), shutdown.clone()));
    if let Some(redis) = redis {
        tracing::info!(node = %app.hub().node(), "joining other nodes through redis");
        bus_tasks.spawn(crate::realtime::repair::run(app.clone(), redis, shutdown.clone()));
    }
    let receipts = tokio::spawn(receipts.run(bus, shutdown.clone()));
    let address = listener.local_addr()?;
    tracing::info!(%address, public_origin = %app.settings().public_origin, "confab listening");

    let service =
        crate::http::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    // tungstenite may write a frame's header and payload separately; with Nagle's
    // algorithm the second write waits for the peer's delayed ACK (~40 ms on loopback).
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
    });
    let serving = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
    // Graceful shutdown waits for requests in progress; a client that stalls must not keep
    // the server from stopping.
    let stalled = async {
        shutdown.cancelled().await;
        tokio::time::sleep(CLOSE_GRACE).await;
    };
    tokio::select! {
        served = serving => served?,
        () = stalled => tracing::warn!("requests still in progress at shutdown were dropped"),
    }

    // axum's graceful shutdown does not reach upgraded WebSockets; they watch the same
    // signal and close themselves. Wait for them, but not forever.
    app.connections().close();
    if tokio::time::timeout(CLOSE_GRACE, app.connections().wait()).await.is_err() {
        tracing::warn!("some WebSocket connections did not close in time");
    }
    housekeeping.abort();
    receipts.abort();
    // Writes already taken are finished and announced; none are taken after this.
    store.close().await;
    bus_stop.cancel();
    bus_tasks.close();
    bus_tasks.wait().await;
    tracing::info!("confab stopped");
    Ok(())
}

/// Periodic sweeping: expired sessions from the database, old failures from the login
/// throttle, uploads never attached to a message.
async fn housekeeping(app: App, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(app.settings().housekeeping_interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        match app.store().delete_expired_sessions(Timestamp::now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired sessions removed"),
            Err(error) => tracing::warn!(%error, "could not remove expired sessions"),
        }
        app.throttle().prune(Instant::now());
        match app.remove_unattached_uploads().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "unattached uploads removed"),
            Err(error) => tracing::warn!(%error, "could not remove unattached uploads"),
        }
    }
}
