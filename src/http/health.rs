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
use serde_json::{Value, json};

use crate::app::App;
use crate::http::listener::Capacity;

pub async fn healthz(State(app): State<App>) -> Json<Value> {
    Json(json!({ "status": "ok", "connections": app.hub().connection_count() }))
}

/// How long readiness waits for the database: a balancer polls often, and a database that
/// takes longer than this to say `SELECT 1` is not ready to serve anyone.
const READY_PATIENCE: Duration = Duration::from_secs(3);

pub async fn readyz(
    State(app): State<App>,
    Extension(capacity): Extension<Arc<Capacity>>,
) -> (StatusCode, Json<Value>) {
    if let Some(full) = capacity.full() {
        let body = json!({ "status": "unavailable", "full": full.as_str() });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    }
    if !app.bus().connected() {
        return unavailable("redis");
    }
    match tokio::time::timeout(READY_PATIENCE, app.store().ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
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
fn unavailable(what: &str) -> (StatusCode, Json<Value>) {
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable", "unreachable": what })))
}
