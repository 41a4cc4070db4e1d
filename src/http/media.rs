//! Files over HTTP: uploading (multipart, streamed), downloading (with byte ranges, so that
//! sound and video can seek), thumbnails, and avatars.

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::ReaderStream;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Auth, PathParams, QueryParams};
use crate::app::{AVATAR_LIMIT, App, Download, MAX_AVATAR_BYTES};
use crate::domain::{Attachment, MediaKind, User, ValidationError};
use crate::error::{Error, Result, SizeLimit};
use crate::media::blobs::BlobReader;

/// Routes that take uploads: their own body limit, and no overall request timeout (a large
/// file on a slow line takes long; the idle timeout on the body still applies).
pub fn upload_routes(max_upload_bytes: u64) -> OpenApiRouter<App> {
    let limit = usize::try_from(max_upload_bytes).unwrap_or(usize::MAX).saturating_add(64 * 1024);
    let avatar_limit = DefaultBodyLimit::max(MAX_AVATAR_BYTES + 64 * 1024);
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::max(limit))
        .merge(OpenApiRouter::new().routes(routes!(set_avatar, remove_avatar)).layer(avatar_limit))
}

pub fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(download))
        .routes(routes!(thumbnail))
        .routes(routes!(avatar))
}

/// The multipart body of an upload: one field, `file`. Only described, never built: the
/// handlers read the fields as they stream in.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the multipart form; the handlers stream its fields")]
struct FileUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UploadQuery {
    /// How long a recording lasts, as the client measured it.
    duration_ms: Option<u64>,
}

/// 201 with the file as a message would carry it. The multipart body has one field, `file`.
/// A file over the limit gets a 413 that names the limit.
#[utoipa::path(
    post,
    path = "/media",
    tag = "media",
    params(UploadQuery),
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored; send its id with a message.", body = Attachment),
        (status = 400, description = "`invalid_upload`: not a multipart body; `upload_failed`: the body broke off or is malformed."),
        (status = 413, description = "`payload_too_large`: over the upload limit, which the message names."),
        (status = 422, description = "`missing_file`, `empty_file`."),
    ),
)]
async fn upload(
    State(app): State<App>,
    auth: Auth,
    QueryParams(query): QueryParams<UploadQuery>,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<Attachment>)> {
    let limit = app.upload_limit();
    let mut multipart =
        multipart.map_err(|e| Error::bad_request("invalid_upload", e.body_text()))?;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error(limit))? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_owned();
        let chunks = field.map_err(multipart_error(limit));
        let attachment = app.upload(auth.session.user.id, &name, query.duration_ms, chunks).await?;
        return Ok((StatusCode::CREATED, Json(attachment)));
    }
    Err(ValidationError::new(
        "file",
        "missing_file",
        "Send the file in a multipart field named \"file\".",
    )
    .into())
}

/// What a broken multipart body means: over the route's body limit, a 413 naming
/// `limit` (the body limit is the file's plus room for the framing); cut off or
/// malformed, a 400.
fn multipart_error(limit: SizeLimit) -> impl Fn(MultipartError) -> Error {
    move |error| {
        if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
            limit.exceeded()
        } else {
            Error::bad_request(
                "upload_failed",
                format!("The upload broke off: {}", error.body_text()),
            )
        }
    }
}

/// A file, or the byte range asked for (`Range: bytes=start-[end]`). Pictures, video and
/// sound are served inline with their type; anything else as a download.
#[utoipa::path(
    get,
    path = "/media/{media_id}",
    tag = "media",
    params(("media_id" = String, Path, description = "A file's id (26 characters).")),
    responses(
        (status = 200, description = "The file's bytes."),
        (status = 206, description = "The range's bytes."),
        (status = 416, description = "The range starts past the end."),
    ),
)]
async fn download(
    State(app): State<App>,
    auth: Auth,
    PathParams(media_id): PathParams<String>,
    headers: HeaderMap,
) -> Result<Response> {
    serve(&app, auth, &media_id, &headers).await
}

/// A picture's thumbnail: small, so sent whole, typed from its own bytes.
#[utoipa::path(
    get,
    path = "/media/{media_id}/thumbnail",
    tag = "media",
    params(("media_id" = String, Path, description = "A file's id (26 characters).")),
    responses((status = 200, description = "A JPEG or PNG, at most 320 pixels a side.")),
)]
async fn thumbnail(
    State(app): State<App>,
    auth: Auth,
    PathParams(media_id): PathParams<String>,
) -> Result<Response> {
    let Download { blob, .. } = app.download(auth.session.user.id, &media_id, true, 0).await?;
    small_picture(blob).await
}

/// Serves a file, or the byte range asked for. Pictures, video and sound are shown inline
/// with their sniffed type; anything else is a download, typed as plain bytes.
async fn serve(app: &App, auth: Auth, media_id: &str, headers: &HeaderMap) -> Result<Response> {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(parse_range);
    let offset = range.map_or(0, |(start, _)| start);
    let Download { record, blob } =
        app.download(auth.session.user.id, media_id, false, offset).await?;
    let size = blob.size;
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, size),
        Some((start, _)) if start >= size => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_RANGE, header_value(&format!("bytes */{size}")));
            return Ok(response);
        }
        // The last byte asked for may be any number, `u64::MAX` too: past the end is the end.
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            start,
            end.map_or(size, |last| last.saturating_add(1).min(size)),
        ),
    };
    let mut response = Response::new(stream(blob, end - start));
    *response.status_mut() = status;
    let out = response.headers_mut();
    let (mime, disposition) = match record.kind {
        MediaKind::File => ("application/octet-stream", "attachment"),
        _ => (record.mime.as_str(), "inline"),
    };
    out.insert(header::CONTENT_TYPE, header_value(mime));
    out.insert(
        header::CONTENT_DISPOSITION,
        header_value(&content_disposition(disposition, &record.name)),
    );
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // A file never changes under its id; only members may fetch it, so only the browser
    // keeps it.
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        out.insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{}/{size}", end - 1)),
        );
    }
    Ok(response)
}

/// A user's picture.
#[utoipa::path(
    get,
    path = "/users/{user_id}/avatar",
    tag = "media",
    params(
        ("user_id" = String, Path, description = "A user's id."),
        ("v" = Option<String>, Query, description = "The picture's version, as `avatar_url` gives it: only for caching."),
    ),
    responses((status = 200, description = "A square JPEG or PNG.")),
)]
async fn avatar(
    State(app): State<App>,
    _auth: Auth,
    PathParams(user_id): PathParams<String>,
) -> Result<Response> {
    small_picture(app.avatar(&user_id).await?).await
}

/// A picture we made (a thumbnail or an avatar, JPEG or PNG), read whole and typed from
/// its bytes.
async fn small_picture(blob: BlobReader) -> Result<Response> {
    let mut bytes = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
    let mut reader = blob.reader;
    reader.read_to_end(&mut bytes).await.map_err(Error::internal)?;
    let mime = crate::media::sniff(&bytes).mime;
    Ok((
        [
            (header::CONTENT_TYPE, header_value(mime)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=31536000, immutable"),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// A picture over `AVATAR_LIMIT` gets a 413 that names the limit.
#[utoipa::path(
    put,
    path = "/me/avatar",
    tag = "media",
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "You, with the new picture.", body = User),
        (status = 400, description = "`invalid_upload`: not a multipart body; `upload_failed`: the body broke off or is malformed."),
        (status = 413, description = "`payload_too_large`: over 10 MB."),
        (status = 422, description = "`missing_file`, `empty_file`, `invalid_image`."),
    ),
)]
async fn set_avatar(
    State(app): State<App>,
    auth: Auth,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Result<Json<User>> {
    let mut multipart =
        multipart.map_err(|e| Error::bad_request("invalid_upload", e.body_text()))?;
    while let Some(field) = multipart.next_field().await.map_err(multipart_error(AVATAR_LIMIT))? {
        if field.name() == Some("file") {
            let chunks = field.map_err(multipart_error(AVATAR_LIMIT));
            return Ok(Json(app.set_avatar(auth.session.user.id, chunks).await?));
        }
    }
    Err(ValidationError::new(
        "file",
        "missing_file",
        "Send the picture in a multipart field named \"file\".",
    )
    .into())
}

/// Removes the signed-in user's picture.
#[utoipa::path(
    delete,
    path = "/me/avatar",
    tag = "media",
    responses((status = 200, description = "You, without a picture.", body = User)),
)]
async fn remove_avatar(State(app): State<App>, auth: Auth) -> Result<Json<User>> {
    Ok(Json(app.remove_avatar(auth.session.user.id).await?))
}

fn stream(blob: BlobReader, length: u64) -> Body {
    let reader: Box<dyn AsyncRead + Send + Unpin> = Box::new(blob.reader.take(length));
    Body::from_stream(ReaderStream::new(reader))
}

/// A single range `bytes=start-` or `bytes=start-end`; anything else is ignored (the whole
/// file is sent), as HTTP allows.
fn parse_range(value: &str) -> Option<(u64, Option<u64>)> {
    let (start, end) = value.strip_prefix("bytes=")?.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => None,
        end => Some(end.parse().ok()?),
    };
    match end {
        Some(end) if end < start => None,
        _ => Some((start, end)),
    }
}

/// `inline` or `attachment`, with the file name: plain when it is plain ASCII, and in
/// RFC 5987 form for the rest.
fn content_disposition(disposition: &str, name: &str) -> String {
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' }).collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{disposition}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("bytes=0-"), Some((0, None)));
        assert_eq!(parse_range("bytes=10-19"), Some((10, Some(19))));
        assert_eq!(parse_range("bytes=19-10"), None);
        assert_eq!(parse_range("bytes=-5"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=0-18446744073709551615"), Some((0, Some(u64::MAX))));
        assert_eq!(parse_range("bytes=0-18446744073709551616"), None, "past u64");
    }

    #[test]
    fn file_names_are_quoted_safely() {
        assert_eq!(
            content_disposition("attachment", "résumé v2.pdf"),
            "attachment; filename=\"r_sum_ v2.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20v2.pdf"
        );
    }
}
