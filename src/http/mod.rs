//! The HTTP API under `/api/v1`, plus `/healthz`: routers per feature, merged here.
//!
//! Handlers only translate: they extract and authenticate, call the application, and turn
//! its answer or error into JSON. Every error, including unknown routes, wrong methods and
//! malformed bodies, is answered in the shape documented in docs/api.md.

mod accounts;
mod error;
mod extract;
mod health;
mod messages;
mod rooms;
mod ws;

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request};
use axum::response::Response;
use axum::routing::get;
use axum::{BoxError, Router};
use tower::ServiceBuilder;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::app::App;
use crate::error::Error;

/// The largest request body: a message of 4,000 characters fits several times over.
pub const MAX_BODY: usize = 64 * 1024;
/// The longest a request may take, body included; every request here is small and quick.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a request body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

pub fn router(app: App) -> Router {
    let api = Router::new()
        .merge(accounts::routes())
        .merge(rooms::routes())
        .merge(messages::routes())
        .merge(ws::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api/v1", api)
        .route("/healthz", get(health::healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(RequestBodyTimeoutLayer::new(BODY_TIMEOUT))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async { Error::Timeout }))
                .timeout(REQUEST_TIMEOUT),
        )
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
        .with_state(app)
}

async fn not_found() -> Error {
    Error::NotFound("Route")
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}
