//! The HTTP API under `/api/v1`, plus `/healthz`, `/readyz` and (unless it has a listener of
//! its own) `/metrics`: routers per feature, merged here.
//!
//! Handlers only translate: they extract and authenticate, call the application, and turn
//! its answer or error into JSON. Every error, including unknown routes, wrong methods and
//! malformed bodies, is answered in the shape documented in docs/api.md.

mod accounts;
mod admin;
mod blocks;
mod error;
pub(crate) mod extract;
mod health;
pub mod listener;
mod media;
mod messages;
pub mod metrics;
pub mod openapi;
mod rooms;
mod search;
mod sso;
mod web;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::Response;
use axum::{BoxError, Extension, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;
use utoipa_axum::router::OpenApiRouter;

use crate::app::App;
use crate::error::Error;
use listener::Capacity;

/// The largest request body: a message of 4,000 characters fits several times over.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest a request may take, body included; every request but an upload is small and
/// quick.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a request body may go without sending anything.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Every route; readiness also looks at `capacity`, the connections the listener holds.
/// With `metrics`, `/metrics` is among them; without, it is served elsewhere (or nowhere).
pub fn router(app: App, capacity: Arc<Capacity>, metrics: Option<PrometheusHandle>) -> Router {
    let (described, description) =
        described_routes(app.settings().max_upload_bytes).split_for_parts();
    let described = described.layer(Extension(openapi::Described::new(
        &openapi::finish(description),
        &crate::realtime::protocol::schema(),
    )));
    let policy = content_security_policy(&app.settings().public_origin);
    let always = |name, value| SetResponseHeaderLayer::if_not_present(name, value);
    let mut router = Router::new().merge(described).merge(web::routes()).layer(Extension(capacity));
    if let Some(handle) = metrics {
        router = router.merge(metrics::routes(handle));
    }
    router
        // Every route (the nested API's included) notes its template for the request
        // counts; the fallbacks below are not routes, and count as unmatched.
        .route_layer(middleware::from_fn(metrics::note_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Headers every response carries: the policy above; nothing sniffed as another type;
        // no URL leaking to other sites through the Referer header; no framing.
        .layer(always(header::CONTENT_SECURITY_POLICY, policy))
        .layer(always(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(always(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(always(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::info_span!(
                        "http",
                        method = %request.method(),
                        path = %request.uri().path(),
                        user_id = tracing::field::Empty,
                    )
                })
                .on_request(())
                .on_response(|response: &Response, latency: Duration, _: &Span| {
                    tracing::info!(
                        status = response.status().as_u16(),
                        duration_ms = latency.as_micros() as f64 / 1000.0,
                        "request"
                    );
                })
                .on_failure(()),
        )
        .layer(middleware::from_fn(metrics::count_requests))
        .with_state(app)
}

/// Every route of the API and health, each with its description (src/http/openapi.rs): a
/// new endpoint is added to its feature's `routes()` with `routes!`, beside its
/// `#[utoipa::path]`.
fn described_routes(max_upload_bytes: u64) -> OpenApiRouter<App> {
    // Every request but an upload must be answered within REQUEST_TIMEOUT.
    let quick = OpenApiRouter::new()
        .merge(accounts::routes())
        .merge(admin::routes())
        .merge(blocks::routes())
        .merge(rooms::routes())
        .merge(messages::routes())
        .merge(search::routes())
        .merge(sso::routes())
        .merge(media::routes())
        .merge(ws::routes())
        .merge(openapi::routes())
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async { Error::Timeout }))
                .timeout(REQUEST_TIMEOUT),
        );
    let api = quick.merge(media::upload_routes(max_upload_bytes)).fallback(not_found);
    OpenApiRouter::with_openapi(openapi::base()).nest("/api/v1", api).merge(health::routes())
}

/// The API's description, as `/api/v1/openapi.json` serves it.
pub fn description() -> serde_json::Value {
    openapi::finish(described_routes(u64::MAX).into_openapi())
}

/// The Content-Security-Policy of every response: the page runs only its own scripts and
/// styles, talks only to its own origin and WebSocket, and is never framed.
fn content_security_policy(public_origin: &str) -> HeaderValue {
    let websocket_origin = public_origin.replacen("http", "ws", 1);
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         media-src 'self' blob:; connect-src 'self' {websocket_origin}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    // The origin was checked to be a plain scheme://host[:port] when the settings were made.
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"))
}

async fn not_found() -> Error {
    Error::NotFound("Route")
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}
