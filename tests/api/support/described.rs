//! The API's description as the tests' oracle: every answer the HTTP helpers see (they
//! send through [`send`]) is checked against `/api/v1/openapi.json` (the description the
//! server serves, made by `confab::http::description`), and every frame a
//! [`super::WsClient`] reads against
//! `/api/v1/ws-schema.json`. An answer whose status the description does not list for its
//! method and path, a body that does not fit the schema listed, or an endpoint that answers
//! without being described fails the test that saw it.
//!
//! Validators are compiled once per process, when first needed, and shared.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An answer of the API, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The body as JSON; a string holding the text when it is not JSON, null when empty.
    pub fn json(&self) -> Value {
        if self.bytes.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&self.bytes).into_owned()))
    }
}

/// Sends a request to the API and checks its answer against the description: what every
/// test helper that talks HTTP to the API goes through.
pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    let (client, request) = request.build_split();
    let request = request.expect("a well-formed request");
    let method = request.method().clone();
    let path = request.url().path().to_owned();
    let response = client.execute(request).await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body read").to_vec();
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let body = json.then(|| serde_json::from_slice::<Value>(&bytes).ok()).flatten();
    check_answer(&method, &path, status, body.as_ref());
    Answer { status, headers, bytes }
}

/// The description, and the validators compiled from it so far.
struct Description {
    openapi: Value,
    /// The path templates (`/api/v1/rooms/{room_id}`), split at slashes.
    templates: Vec<(String, Vec<String>)>,
    /// By JSON pointer into `openapi`.
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    /// Any frame the server sends.
    server_frame: jsonschema::Validator,
}

static DESCRIPTION: LazyLock<Description> = LazyLock::new(Description::load);

impl Description {
    fn load() -> Description {
        let openapi = confab::http::description();
        let templates = openapi["paths"]
            .as_object()
            .expect("the description has paths")
            .keys()
            .map(|path| (path.clone(), segments(path)))
            .collect();
        let mut frames = confab::realtime::protocol::schema();
        frames["$ref"] = json!("#/$defs/ServerFrame");
        let server_frame = validator(&frames);
        Description { openapi, templates, validators: Mutex::new(HashMap::new()), server_frame }
    }

    /// The template a path matches, the one with the most fixed segments when several do
    /// (`/rooms/public` before `/rooms/{room_id}`).
    fn template(&self, path: &str) -> Option<&str> {
        let actual = segments(path);
        self.templates
            .iter()
            .filter(|(_, template)| {
                template.len() == actual.len()
                    && template.iter().zip(&actual).all(|(t, a)| t.starts_with('{') || t == a)
            })
            .max_by_key(|(_, template)| template.iter().filter(|t| !t.starts_with('{')).count())
            .map(|(path, _)| path.as_str())
    }

    /// The validator of the schema at `pointer`, compiled the first time it is asked for.
    fn validator_at(&self, pointer: &str) -> Arc<jsonschema::Validator> {
        let mut validators = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        validators
            .entry(pointer.to_owned())
            .or_insert_with(|| {
                // The whole document is the schema's root, so its `$ref`s resolve within
                // it; the root's own keywords are not schema keywords and mean nothing.
                let mut root = self.openapi.clone();
                root["$ref"] = json!(format!("#{pointer}"));
                Arc::new(validator(&root))
            })
            .clone()
    }
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(schema)
        .unwrap_or_else(|error| panic!("the description's schema compiles: {error}"))
}

fn segments(path: &str) -> Vec<String> {
    path.trim_end_matches('/').split('/').map(str::to_owned).collect()
}

/// `~` and `/` escaped for a JSON pointer, and braces for the URI fragment it goes in.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1").replace('{', "%7B").replace('}', "%7D")
}

/// Checks one answer against the description. `path` is the path as requested (from
/// `/`, a query string allowed); `body` is the body as JSON when the answer's
/// Content-Type says JSON, `None` otherwise.
pub fn check_answer(method: &Method, path: &str, status: StatusCode, body: Option<&Value>) {
    let description = &*DESCRIPTION;
    let path = path.split('?').next().unwrap_or(path);
    let request = format!("{method} {path}");
    let shown = || body.map_or_else(|| "(no JSON body)".to_owned(), Value::to_string);
    let method_name = method.as_str().to_ascii_lowercase();
    let operation = description
        .template(path)
        .map(|template| (template, &description.openapi["paths"][template][&method_name]))
        .filter(|(_, operation)| operation.is_object());
    let Some((template, operation)) = operation else {
        // No such endpoint: only the router's own refusals may answer.
        let code = body.map(|body| &body["error"]["code"]);
        let refused = matches!(
            (status.as_u16(), code.and_then(Value::as_str)),
            (404, Some("not_found")) | (405, Some("method_not_allowed"))
        );
        assert!(
            refused,
            "UNDOCUMENTED ENDPOINT: {request} answered {status} {}, but the OpenAPI \
             description (src/http/openapi.rs) has no `{method_name}` operation for it: add \
             `#[utoipa::path]` to its handler and register it with `routes!`",
            shown()
        );
        return;
    };
    let status_key = status.as_u16().to_string();
    let Some(response) = operation["responses"].get(&status_key) else {
        panic!(
            "UNDOCUMENTED STATUS: {request} (described as {method} {template}) answered \
             {status} {}, but the description lists only {:?}",
            shown(),
            operation["responses"].as_object().map(|r| r.keys().collect::<Vec<_>>())
        );
    };
    let schema = response["content"]["application/json"].get("schema");
    match (schema, body) {
        (Some(_), Some(body)) => {
            let pointer = format!(
                "/paths/{}/{method_name}/responses/{status_key}/content/application~1json/schema",
                escape(template)
            );
            let validator = description.validator_at(&pointer);
            let errors: Vec<String> = validator
                .iter_errors(body)
                .map(|error| format!("at {}: {error}", error.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "ANSWER DOES NOT FIT THE DESCRIPTION: {request} (described as {method} \
                 {template}) answered {status} {body}\n{}",
                errors.join("\n")
            );
        }
        (Some(_), None) if status != StatusCode::NOT_MODIFIED => panic!(
            "ANSWER DOES NOT FIT THE DESCRIPTION: {request} answered {status} without a JSON \
             body, but the description says it has one"
        ),
        (None, Some(body)) => panic!(
            "UNDOCUMENTED BODY: {request} (described as {method} {template}) answered {status} \
             {body}, but the description lists no JSON body for it"
        ),
        _ => {}
    }
}

/// Checks a frame the server sent against the WebSocket's schema.
pub fn check_frame(frame: &Value) {
    let errors: Vec<String> = DESCRIPTION
        .server_frame
        .iter_errors(frame)
        .map(|error| format!("at {}: {error}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "FRAME DOES NOT FIT THE WEBSOCKET SCHEMA (/api/v1/ws-schema.json): {frame}\n{}",
        errors.join("\n")
    );
}
