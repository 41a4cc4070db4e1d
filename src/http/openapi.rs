//! The API's OpenAPI 3.1 description, made from the code and served at
//! `/api/v1/openapi.json`.
//!
//! Each handler carries its own description (`#[utoipa::path]`: method, path, parameters,
//! body, answers and the error codes of each), its schemas are derived from the serde types
//! it takes and returns, and each feature's router registers handler and description in one
//! call (`utoipa_axum::routes!`), so that an endpoint cannot be served without being
//! described. What every endpoint shares is added here, once, by [`finish`]:
//!
//! - An endpoint needs a session unless its `#[utoipa::path]` says `security(())`; those
//!   that need one answer 401 `unauthenticated`, and those that change something 403
//!   `bad_origin` (a cookie from another site's page).
//! - Endpoints that take JSON answer 400 and 413 for bodies that are not JSON, do not fit
//!   or are too large; those with a query string 400 `invalid_query`; those with path
//!   parameters 404 `not_found` (a malformed id names nothing).
//! - Every endpoint may answer 408, 429 (the listener's per-address limit, besides the
//!   rate limits), 500 and 503.
//! - Every error answer's body is [`ErrorBody`](super::error::ErrorBody), with `code`
//!   narrowed to the codes the answer's description names in backticks: a description
//!   reads "`username_taken`", and the schema allows exactly those codes.
//!
//! The API tests check every answer they see against this description, and Schemathesis
//! explores the endpoints from it (tests/api/openapi.rs), so that it cannot drift.

use axum::Extension;
use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use crate::app::App;

/// The descriptions as served, serialized once at start.
#[derive(Clone)]
pub struct Described {
    openapi: Bytes,
    websocket: Bytes,
}

impl Described {
    pub fn new(openapi: &Value, websocket: &Value) -> Self {
        Self {
            openapi: Bytes::from(openapi.to_string()),
            websocket: Bytes::from(websocket.to_string()),
        }
    }
}

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(openapi_json)).routes(routes!(websocket_schema))
}

/// This description.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "description",
    security(()),
    responses((status = 200, description = "This description (OpenAPI 3.1).", body = Object)),
)]
async fn openapi_json(Extension(described): Extension<Described>) -> Response {
    json_file(described.openapi)
}

/// The WebSocket's frames, each a JSON Schema (2020-12): `client` frames the server takes,
/// `server` frames it sends.
#[utoipa::path(
    get,
    path = "/ws-schema.json",
    tag = "description",
    security(()),
    responses((status = 200, description = "A JSON Schema of every WebSocket frame.", body = Object)),
)]
async fn websocket_schema(Extension(described): Extension<Described>) -> Response {
    json_file(described.websocket)
}

fn json_file(bytes: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Confab API",
        description = "Confab's HTTP API. The concepts (ids, times, the unread rule, rate \
            limits) and the WebSocket protocol are in docs/api.md; the WebSocket's frames are \
            described as JSON Schemas at /api/v1/ws-schema.json. Every error is \
            `{\"error\": {\"code\", \"message\", \"field\"?, \"retry_after\"?}}`; each answer \
            below lists the codes it may carry. Prometheus metrics are at /metrics (text \
            format; see docs/deploy.md).",
        license(name = "MIT OR Apache-2.0"),
    ),
    // `/metrics` is served on the API's address or on one of its own (`CONFAB_METRICS_ADDR`),
    // so it is routed apart from the described routes and listed here.
    paths(super::metrics::render),
    components(schemas(ErrorBody)),
    tags(
        (name = "accounts", description = "Registering, signing in and out, profiles, finding people."),
        (name = "sso", description = "Signing in with an identity provider (OpenID Connect)."),
        (name = "blocks", description = "The people a user blocks."),
        (name = "rooms", description = "Rooms, groups, direct messages and their members."),
        (name = "messages", description = "History, sending, editing, deleting, reactions, read markers."),
        (name = "media", description = "Uploading and downloading files, avatars."),
        (name = "search", description = "Searching messages."),
        (name = "administration", description = "Accounts and public rooms' messages, for administrators."),
        (name = "realtime", description = "The WebSocket (its frames: /api/v1/ws-schema.json)."),
        (name = "health", description = "Liveness and readiness, for load balancers; metrics, for Prometheus."),
        (name = "description", description = "This description and the WebSocket's."),
    ),
)]
struct ApiDoc;

/// The description's start: title, tags and the schemas no handler names.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The methods an OpenAPI path item may hold operations for.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The description as served: the handlers' own, with what every endpoint shares added
/// (see the module's documentation).
pub fn finish(description: utoipa::openapi::OpenApi) -> Value {
    // An OpenAPI document is strings, numbers and maps with string keys: it always
    // serializes.
    let mut document = serde_json::to_value(description).expect("an OpenAPI document is JSON");
    document["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "The `token` that registering or signing in returns."
        },
        "cookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": super::extract::SESSION_COOKIE,
            "description": "The session cookie that registering or signing in sets (browsers). \
                Requests that change something must then carry Confab's own Origin, if any."
        }
    });
    if let Some(paths) = document["paths"].as_object_mut() {
        for item in paths.values_mut() {
            for method in METHODS {
                if let Some(operation) = item.get_mut(method) {
                    add_shared_answers(method, operation);
                    for (status, response) in responses(operation) {
                        describe_error(&status, response);
                    }
                }
            }
        }
    }
    document
}

/// What every endpoint may answer besides its own answers.
fn add_shared_answers(method: &str, operation: &mut Value) {
    let public = operation["security"].as_array().is_some_and(|requirements| {
        requirements.iter().all(|requirement| requirement.as_object().is_some_and(Map::is_empty))
    });
    if let Some(fields) = operation.as_object_mut() {
        if public {
            fields.remove("security");
        } else {
            fields.insert("security".into(), json!([{ "bearer": [] }, { "cookie": [] }]));
        }
    }
    if !public {
        add_code(operation, 401, "unauthenticated", "no session, or one that ended");
        if method != "get" && method != "head" {
            add_code(operation, 403, "bad_origin", "a cookie sent from another site's page");
        }
    }
    if operation["requestBody"]["content"].get("application/json").is_some() {
        add_code(operation, 400, "invalid_json", "the body is not JSON");
        add_code(operation, 400, "invalid_request", "the body does not fit");
        add_code(operation, 400, "invalid_content_type", "not `application/json`");
        add_code(operation, 413, "payload_too_large", "a body over 64 KiB");
    }
    let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
    if parameters.iter().any(|parameter| parameter["in"] == "query") {
        add_code(operation, 400, "invalid_query", "a query parameter of the wrong type");
    }
    if parameters.iter().any(|parameter| parameter["in"] == "path") {
        add_code(operation, 404, "not_found", "nothing by that id (or a malformed one)");
    }
    add_code(operation, 408, "request_timeout", "the request or its body took too long");
    add_code(
        operation,
        429,
        "rate_limited",
        "too many requests of this kind, or connections from this address; wait Retry-After \
         seconds",
    );
    add_code(operation, 500, "internal", "details are only in the server's log");
    add_code(
        operation,
        503,
        "unavailable",
        "the database is out of reach or the server is stopping; retry after Retry-After seconds",
    );
}

/// Adds `code` to the answers with `status`, with a few words on when.
fn add_code(operation: &mut Value, status: u16, code: &str, when: &str) {
    let response = &mut operation["responses"][status.to_string()];
    let line = format!("`{code}`: {when}.");
    let description = match response["description"].as_str() {
        Some(description) if codes(description).iter().any(|known| known == code) => return,
        Some(description) => format!("{description}\n\n{line}"),
        None => line,
    };
    response["description"] = description.into();
}

/// An operation's answers, by status.
fn responses(operation: &mut Value) -> Vec<(String, &mut Value)> {
    match operation["responses"].as_object_mut() {
        Some(responses) => responses.iter_mut().map(|(status, r)| (status.clone(), r)).collect(),
        None => Vec::new(),
    }
}

/// An error answer's body: the error shape, with `code` one of those its description
/// names. An answer that has a body of its own (readiness's 503) keeps it.
fn describe_error(status: &str, response: &mut Value) {
    let is_error = status.parse::<u16>().is_ok_and(|status| status >= 400);
    if !is_error || response.get("content").is_some() {
        return;
    }
    let codes = codes(response["description"].as_str().unwrap_or_default());
    // An error answer that names no code has no body (a range past the end).
    if codes.is_empty() {
        return;
    }
    response["content"] = json!({
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "allOf": [
                            { "$ref": "#/components/schemas/ErrorDetail" },
                            { "type": "object", "properties": { "code": { "enum": codes } } }
                        ]
                    }
                }
            }
        }
    });
    if status == "429" || status == "503" {
        response["headers"] = json!({
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": { "type": "integer", "minimum": 1 }
            }
        });
    }
}

/// The error codes a description names: the snake_case words in backticks.
pub fn codes(description: &str) -> Vec<String> {
    let mut codes: Vec<String> = description
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .map(str::to_owned)
        .collect();
    codes.dedup();
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_snake_case_words_in_backticks() {
        let description = "`username_taken`: taken.\n\n`invalid_json`: not `application/json`.";
        assert_eq!(codes(description), ["username_taken", "invalid_json"]);
    }
}
