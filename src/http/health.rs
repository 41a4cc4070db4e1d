//! Health for load balancers and service managers. `GET /healthz` (liveness): 200 whenever
//! the process serves, whatever its database does, so that a database outage does not get
//! every node restarted. `GET /readyz` (readiness): 200 when the database answers (and,
//! with several nodes, Redis carries events both ways) and the node has room for more
//! connections, 503 when not, so that a balancer sends requests elsewhere meanwhile.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::App;
use crate::http::listener::Capacity;

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// The process serves.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
    /// WebSocket connections this node holds.
    connections: usize,
}

/// Whether the node may take requests, and if not, why.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    /// What is out of reach: `database` or `redis`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    unreachable: Option<&'static str>,
    /// What is nearly used up: `connections` or `descriptors`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    full: Option<&'static str>,
}

/// Liveness: 200 whenever the process serves, whatever its database does.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    security(()),
    responses((status = 200, description = "Alive.", body = Health)),
)]
async fn healthz(State(app): State<App>) -> Json<Health> {
    Json(Health { status: "ok", connections: app.hub().connection_count() })
}

/// How long readiness waits for the database: a balancer polls often, and a database that
/// takes longer than this to say `SELECT 1` is not ready to serve anyone.
const READY_PATIENCE: Duration = Duration::from_secs(3);

/// Readiness: send this node requests only while it says ready.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready: the database or Redis is out of reach, or the node is nearly full.", body = Readiness),
    ),
)]
async fn readyz(
    State(app): State<App>,
    Extension(capacity): Extension<Arc<Capacity>>,
) -> (StatusCode, Json<Readiness>) {
    if let Some(full) = capacity.full() {
        let body =
            Readiness { status: "unavailable", unreachable: None, full: Some(full.as_str()) };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    if !app.bus().connected() {
        return unavailable("redis");
    }
    match tokio::time::timeout(READY_PATIENCE, app.store().ping()).await {
        Ok(Ok(())) => {
            (StatusCode::OK, Json(Readiness { status: "ready", unreachable: None, full: None }))
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check: the database does not answer");
            unavailable("database")
        }
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer in time");
            unavailable("database")
        }
    }
}

/// Not ready, because `what` (the database, or redis between nodes) is out of reach.
fn unavailable(what: &'static str) -> (StatusCode, Json<Readiness>) {
    let body = Readiness { status: "unavailable", unreachable: Some(what), full: None };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}
