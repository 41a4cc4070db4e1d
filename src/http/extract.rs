//! Extractors: JSON bodies and query strings whose rejections are our JSON errors, the
//! signed-in session, and the client's address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use crate::app::{App, Session};
use crate::error::Error;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "confab_session";

/// A JSON request body; malformed bodies are answered with our error shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct JsonBody<T>(pub T);

/// A query string; malformed ones are answered with our error shape.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct QueryParams<T>(pub T);

/// Path parameters. Our ids are plain ASCII, so a parameter that does not even decode
/// (invalid UTF-8, say) names nothing that exists: 404.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct PathParams<T>(pub T);

/// Where a request's session token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Bearer,
    Cookie,
}

/// The session token of a request: the bearer header first, then the cookie.
pub fn session_token(headers: &HeaderMap) -> Option<(String, TokenSource)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|token| (token.trim().to_owned(), TokenSource::Bearer));
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| (value.to_owned(), TokenSource::Cookie))
    })
}

/// Whether the request's Origin header, if it has one, is ours.
pub fn origin_allowed(headers: &HeaderMap, app: &App) -> bool {
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => origin
            .to_str()
            .is_ok_and(|origin| origin.eq_ignore_ascii_case(&app.settings().public_origin)),
    }
}

pub fn bad_origin() -> Error {
    Error::forbidden("bad_origin", "Requests from this origin are not allowed.")
}

/// The signed-in caller. Cookie-authenticated requests that change something must come
/// from our own origin (a second line of defence against cross-site requests, beside the
/// SameSite cookie).
pub struct Auth {
    pub session: Session,
    pub token: String,
}

impl FromRequestParts<App> for Auth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Error> {
        let (token, source) = session_token(&parts.headers).ok_or(Error::Unauthenticated)?;
        if source == TokenSource::Cookie
            && !parts.method.is_safe()
            && !origin_allowed(&parts.headers, app)
        {
            return Err(bad_origin());
        }
        let session = app.authenticate(&token).await?;
        tracing::Span::current().record("user_id", tracing::field::display(session.user.id));
        Ok(Self { session, token })
    }
}

/// The address of the client's end of the TCP connection.
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        Ok(Self(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_wins_over_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=b; confab_session=from-cookie"));
        assert_eq!(session_token(&headers), Some(("from-cookie".into(), TokenSource::Cookie)));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer from-header"));
        assert_eq!(session_token(&headers), Some(("from-header".into(), TokenSource::Bearer)));
    }
}
