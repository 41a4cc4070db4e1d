//! `GET /metrics` in Prometheus's text format, and the counting of every HTTP request by
//! its route's template (`/api/v1/users/{user_id}`), never its raw path: a path holds ids,
//! and a label per id would grow without bound and leak them to whoever reads metrics.
//!
//! Routing happens inside the router, after the outer layers have seen the request, so the
//! layer on the matched route ([`note_route`]) puts the route's template on the response,
//! where the outer layer ([`count_requests`]) reads it. A request no route matched is
//! `unmatched`.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::metrics::{HTTP_DURATION, HTTP_REQUESTS};

/// The route label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

/// `/metrics` alone, for the separate metrics listener or to merge into the main router.
pub fn routes<S: Clone + Send + Sync + 'static>(handle: PrometheusHandle) -> Router<S> {
    Router::new().route("/metrics", get(move || render(handle.clone())))
}

/// Every metric, in Prometheus's text format (docs/operations.md says what each means).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Every metric of this node, in Prometheus's text format (version 0.0.4).", content_type = "text/plain", body = String),
        (status = 404, description = "`not_found`: this node serves its metrics on an address of their own (`CONFAB_METRICS_ADDR`)."),
    ),
)]
pub(super) async fn render(handle: PrometheusHandle) -> Response {
    // Rendering reads every metric; a scrape every few seconds is cheap enough to run on
    // the async threads.
    let body = handle.render();
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
        .into_response()
}

/// The outer layer: counts and times every request, labelled by the route it matched.
pub async fn count_requests(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |path| path.as_str().to_owned());
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method).record(elapsed);
    response
}

/// The layer on every route: notes the route's template for [`count_requests`].
pub async fn note_route(request: Request, next: Next) -> Response {
    // A nested router's fallback is a catch-all route of axum's own making: not a route
    // of ours, and its template names axum's internals.
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .filter(|path| !path.as_str().contains("__private__axum"))
        .cloned();
    let mut response = next.run(request).await;
    if let Some(path) = path {
        response.extensions_mut().insert(path);
    }
    response
}

/// The method as a static label; a method of no route's is `other`, so that a client
/// cannot make labels up.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
