//! Extractors: JSON bodies and query strings whose rejections are our JSON errors, the
//! signed-in session, and the client's address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use ipnet::IpNet;

use crate::app::{App, Session};
use crate::error::Error;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "confab_session";
/// The device cookie (`auth::device`): this browser signed in to an account before.
pub const DEVICE_COOKIE: &str = "confab_device";

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
    bearer.or_else(|| cookie(headers, SESSION_COOKIE).map(|value| (value, TokenSource::Cookie)))
}

/// The value of the cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.to_owned())
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

/// The signed-in caller, if the request carries a valid session; a request without one,
/// or with one that has ended, is anonymous rather than refused.
impl OptionalFromRequestParts<App> for Auth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Option<Self>, Error> {
        match <Auth as FromRequestParts<App>>::from_request_parts(parts, app).await {
            Ok(auth) => Ok(Some(auth)),
            Err(Error::Unauthenticated) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// The client's address: the far end of the TCP connection, or, when that is a trusted
/// proxy (`CONFAB_TRUSTED_PROXIES`), the address the proxies say they forwarded for.
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<App> for ClientAddr {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Error> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
            // On a dual-stack listener an IPv4 peer arrives as ::ffff:a.b.c.d.
            .to_canonical();
        Ok(Self(client_address(peer, &parts.headers, &app.settings().trusted_proxies)))
    }
}

/// Who the client is, seen from `peer`: `X-Forwarded-For` is believed only as far as it
/// was written by trusted proxies. Read from the right (the hop nearest to us), each
/// address a trusted proxy vouches for is the next hop; the first that is not itself a
/// trusted proxy is the client. Anything further left was written by the client, and
/// could say anything.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(&peer, trusted) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>().map(|address| address.to_canonical()) {
            Ok(address) => {
                client = address;
                if !is_trusted(&address, trusted) {
                    break;
                }
            }
            // A hop we cannot read ends what we can believe: the last address vouched for
            // stands.
            Err(_) => break,
        }
    }
    client
}

/// Whether `address` is one of the proxies in `trusted` (`--trusted-proxies`).
pub fn is_trusted(address: &IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(address))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> =
            ["10.0.0.0/8", "127.0.0.1/32"].map(|n| n.parse().expect("net")).to_vec();
        let ip = |text: &str| text.parse::<IpAddr>().expect("ip");
        let mut headers = HeaderMap::new();
        headers
            .insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.9, 10.1.2.3"));
        // From a trusted proxy: the nearest untrusted hop, not what the client wrote.
        assert_eq!(client_address(ip("127.0.0.1"), &headers, &trusted), ip("203.0.113.9"));
        // From anyone else: the header is the client's own words.
        assert_eq!(client_address(ip("198.51.100.7"), &headers, &trusted), ip("198.51.100.7"));
        assert_eq!(client_address(ip("127.0.0.1"), &headers, &[]), ip("127.0.0.1"));
        // Every hop a trusted proxy: the farthest stands; garbage ends the belief.
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.9.9.9"));
        assert_eq!(client_address(ip("10.0.0.1"), &headers, &trusted), ip("10.9.9.9"));
        headers.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, junk"));
        assert_eq!(client_address(ip("10.0.0.1"), &headers, &trusted), ip("10.0.0.1"));
        headers.remove("x-forwarded-for");
        assert_eq!(client_address(ip("10.0.0.1"), &headers, &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn bearer_wins_over_cookie() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=b; confab_session=from-cookie"));
        assert_eq!(session_token(&headers), Some(("from-cookie".into(), TokenSource::Cookie)));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer from-header"));
        assert_eq!(session_token(&headers), Some(("from-header".into(), TokenSource::Bearer)));
    }
}
