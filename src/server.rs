//! Assembling and running the server: open the store, build the hub, bus and app, serve
//! HTTP and WebSocket on a listener the caller provides, and shut down when told.
//!
//! The listener and the shutdown signal come from outside, so tests bind port 0 and stop
//! servers at will, and `main` wires them to the configured address and to Ctrl-C.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::app::events::change_sink;
use crate::app::receipts::ReceiptBatcher;
use crate::app::{App, SEARCH_CURSOR_SECRET, ServerKeys};
use crate::auth::{DEVICE_KEY_SECRET, DeviceKeys};
use crate::bus::{Bus, LocalBus, RedisBus};
use crate::config::{Settings, redact};
use crate::domain::Timestamp;
use crate::http::listener::{Capacity, Listener};
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
    #[error("could not serve metrics on {address}: {source}")]
    Metrics { address: std::net::SocketAddr, source: std::io::Error },
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
    crate::private::dir(&settings.data_dir).map_err(|source| ServerError::DataDir {
        path: settings.data_dir.display().to_string(),
        source,
    })?;
    // The recorder first, so that everything the server does counts; and the metrics
    // listener before anything that would need closing if it cannot be had.
    let metrics = crate::metrics::install();
    let metrics_listener = match settings.metrics_addr {
        Some(address) => {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| ServerError::Metrics { address, source })?;
            tracing::info!(%address, "metrics listening");
            Some(listener)
        }
        None => None,
    };
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
    let store =
        crate::store::open(&settings.database, &settings.data_dir, settings.database_wait, sink)
            .await
            .map_err(|error| ServerError::Store {
                database: settings.database.redacted(),
                error,
            })?;
    let blobs = LocalBlobs::open(settings.data_dir.join("media")).map_err(|source| {
        ServerError::DataDir { path: settings.data_dir.join("media").display().to_string(), source }
    })?;
    let secret = async |name, candidate| {
        store
            .secret(name, candidate)
            .await
            .map_err(|error| ServerError::Store { database: settings.database.redacted(), error })
    };
    let keys = ServerKeys {
        device: secret(DEVICE_KEY_SECRET, DeviceKeys::generate_key()).await?,
        search_cursor: secret(SEARCH_CURSOR_SECRET, rand::random::<[u8; 32]>().to_vec()).await?,
    };
    let app = App::new(
        store.clone(),
        Arc::new(blobs),
        bus.clone(),
        hub,
        settings,
        &keys,
        shutdown.clone(),
    )?;

    // An identity provider's mistake shows in the log at start, not at a first sign-in.
    let warming = app.clone();
    tokio::spawn(async move { warming.oidc().warm_up().await });
    let housekeeping = tokio::spawn(housekeeping(app.clone(), shutdown.clone()));
    let tending = tokio::spawn(tend_limits(app.clone(), shutdown.clone()));
    if let Some(redis) = redis {
        tracing::info!(node = %app.hub().node(), "joining other nodes through redis");
        bus_tasks.spawn(crate::realtime::repair::run(app.clone(), redis, shutdown.clone()));
    }
    // `confab admin` beside this server hands it commands here; with Redis, it publishes
    // on the bus like a node instead (`cli`).
    let control = match &app.settings().redis_url {
        Some(_) => None,
        None => {
            let path = crate::control::socket_path(&app.settings().data_dir);
            match crate::control::serve(app.clone(), path, shutdown.clone()) {
                Ok(task) => Some(task),
                Err(error) => {
                    tracing::warn!(%error, "no control socket: `confab admin` cannot reach this server");
                    None
                }
            }
        }
    };
    let receipts = tokio::spawn(receipts.run(bus, shutdown.clone()));
    let settings = app.settings();
    let capacity = Capacity::new(&settings.connection_limits, settings.trusted_proxies.clone());
    tracing::info!(
        address = %listener.local_addr()?,
        public_origin = %settings.public_origin,
        max_connections = capacity.total(),
        "confab listening"
    );
    let upkeep = tokio::spawn(keep_metrics(metrics.clone(), shutdown.clone()));
    let (public_metrics, metrics_server) = match metrics_listener {
        None => (Some(metrics), None),
        Some(listener) => {
            let router = crate::http::metrics::routes(metrics);
            let shutdown = shutdown.clone();
            let serving = axum::serve(listener, router)
                .with_graceful_shutdown(async move { shutdown.cancelled().await });
            (None, Some(tokio::spawn(serving.into_future())))
        }
    };
    let router = crate::http::router(app.clone(), capacity.clone(), public_metrics);
    serve(Listener::new(listener, capacity), router, app.settings(), &shutdown).await;
    upkeep.abort();
    if let Some(metrics_server) = metrics_server
        && let Ok(Ok(Err(error))) = tokio::time::timeout(CLOSE_GRACE, metrics_server).await
    {
        tracing::warn!(%error, "the metrics listener failed");
    }

    // Graceful shutdown does not reach upgraded WebSockets; they watch the same signal and
    // close themselves. Wait for them, but not forever.
    app.connections().close();
    if tokio::time::timeout(CLOSE_GRACE, app.connections().wait()).await.is_err() {
        tracing::warn!("some WebSocket connections did not close in time");
    }
    housekeeping.abort();
    tending.abort();
    if let Some(control) = control {
        let _ = tokio::time::timeout(CLOSE_GRACE, control).await;
    }
    app.limiter().leave().await;
    receipts.abort();
    // Writes already taken are finished and announced; none are taken after this.
    store.close().await;
    bus_stop.cancel();
    bus_tasks.close();
    bus_tasks.wait().await;
    tracing::info!("confab stopped");
    Ok(())
}

/// Serves HTTP/1.1 on every connection `listener` lets in until `shutdown`, then lets the
/// requests in progress finish (for at most CLOSE_GRACE) and closes idle connections.
///
/// A connection that has not finished sending a request's headers within the header
/// timeout is closed; the same deadline closes a keep-alive connection left idle that long.
async fn serve(
    mut listener: Listener,
    router: axum::Router,
    settings: &Settings,
    shutdown: &CancellationToken,
) {
    let mut http = Builder::new(TokioExecutor::new()).http1_only();
    http.http1().timer(TokioTimer::new()).header_read_timeout(settings.header_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (io, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = http
            .serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    // No new connections from here on.
    drop(listener);
    if tokio::time::timeout(CLOSE_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in progress at shutdown were dropped");
    }
}

/// Every few seconds: full rate buckets forgotten, and this node's share of the
/// cluster's socket counts kept alive.
async fn tend_limits(app: App, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(LIMITS_TENDING);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => app.limiter().tend().await,
        }
    }
}

/// Every few seconds, the recorder's upkeep: histograms' samples folded into their
/// buckets even while nobody scrapes, so their memory stays bounded.
async fn keep_metrics(metrics: PrometheusHandle, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(METRICS_UPKEEP);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => metrics.run_upkeep(),
        }
    }
}

const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// How often the limits are tended: well within the node lease of the socket counts.
const LIMITS_TENDING: Duration = Duration::from_secs(5);

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
