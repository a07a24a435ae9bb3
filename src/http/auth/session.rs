//! Browser sessions: a ticket in an HttpOnly cookie, and a token scripts can read that must
//! come back in the `X-XSRF-TOKEN` header, so that another site cannot make the browser call
//! on the user's behalf.

use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tracing::debug;

use super::{Identity, found};
use crate::clock::Clock;
use crate::http::error::ApiError;
use crate::secret::constant_time_eq;
use crate::store::Store;
use crate::tickets::{self, TICKET_LIFETIME};

/// The cookie that carries the session's ticket; scripts cannot read it.
pub const SESSION_COOKIE: &str = "SO-Session";
/// The cookie scripts read to fill in the header, as Angular and SuperOffice's clients do.
pub const XSRF_COOKIE: &str = "XSRF-TOKEN";
pub const XSRF_HEADER: &str = "X-XSRF-TOKEN";

/// The XSRF token of a session: derived from its ticket, so it needs no storage and is
/// worthless with any other session.
pub fn xsrf_token(ticket: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"presence xsrf token\0")
        .chain_update(ticket.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(digest)
}

/// The cookies that start a session.
pub fn session_cookies(ticket: &str, path: &str, secure: bool) -> [HeaderValue; 2] {
    let max_age = TICKET_LIFETIME.as_secs();
    let secure = if secure { "; Secure" } else { "" };
    let session = format!(
        "{SESSION_COOKIE}={ticket}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    let xsrf = format!(
        "{XSRF_COOKIE}={}; Path={path}; Max-Age={max_age}; SameSite=Strict{secure}",
        xsrf_token(ticket)
    );
    [session, xsrf].map(|c| HeaderValue::from_str(&c).expect("cookie text is ASCII"))
}

/// The cookies that end a session.
pub fn clearing_cookies(path: &str, secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    [SESSION_COOKIE, XSRF_COOKIE].map(|name| {
        HeaderValue::from_str(&format!(
            "{name}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
        ))
        .expect("cookie text is ASCII")
    })
}

/// The session ticket a request's cookie carries, unchecked: for a page, which a browser
/// requests without the XSRF header, and which shows nothing of the user's by itself.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// A request's session ticket, once the XSRF and origin checks have passed. `https`: whether
/// clients reach the server over HTTPS (the cookies are `Secure`).
pub fn session_ticket(headers: &HeaderMap, https: bool) -> Result<String, ApiError> {
    let Some(ticket) = cookie(headers, SESSION_COOKIE) else {
        debug!("no Authorization header and no session cookie");
        return Err(ApiError::Unauthorized);
    };
    ensure_same_origin(headers, https)?;
    let header = headers.get(XSRF_HEADER).map(HeaderValue::as_bytes);
    let cookie_token = cookie(headers, XSRF_COOKIE);
    let expected = xsrf_token(&ticket);
    let matches = match (header, cookie_token) {
        (Some(header), Some(cookie_token)) => {
            // Both comparisons run, so timing does not tell which one failed.
            constant_time_eq(header, cookie_token.as_bytes())
                & constant_time_eq(header, expected.as_bytes())
        }
        _ => false,
    };
    if !matches {
        debug!("the XSRF token is missing or does not match");
        return Err(ApiError::Unauthorized);
    }
    Ok(ticket)
}

pub async fn authenticate(
    store: &Store,
    clock: &Clock,
    headers: &HeaderMap,
    https: bool,
) -> Result<Identity, ApiError> {
    let ticket = session_ticket(headers, https)?;
    let owner = tickets::check_ticket(store, clock, &ticket).await?;
    found(owner, "the session has ended")
}

/// Refuses a request that a page of another origin made: browsers send `Origin` with every
/// cross-origin POST. A request without it (same-origin navigation, or not a browser) passes.
/// The origin is the scheme and the host: a page served over plain HTTP is another origin than
/// the same host over HTTPS, and may have been written by anyone on the network path. The
/// server's own scheme is `https` when `https` (its cookies are `Secure`), else `http`.
pub fn ensure_same_origin(headers: &HeaderMap, https: bool) -> Result<(), ApiError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let scheme = if https { "https" } else { "http" };
    let host = headers.get(HOST).map(HeaderValue::as_bytes);
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .filter(|(origin_scheme, _)| origin_scheme.eq_ignore_ascii_case(scheme))
        .map(|(_, host)| host.trim_end_matches('/').as_bytes());
    match (origin_host, host) {
        (Some(origin_host), Some(host)) if origin_host.eq_ignore_ascii_case(host) => Ok(()),
        _ => {
            debug!(?origin, "a cookie request from a foreign origin");
            Err(ApiError::Unauthorized)
        }
    }
}

/// The value of a cookie, from every `Cookie` header.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_xsrf_token_must_match_cookie_and_session() {
        let ticket = "7T:abc";
        let token = xsrf_token(ticket);
        let cookies = format!("{SESSION_COOKIE}={ticket}; {XSRF_COOKIE}={token}");
        let ok = headers(&[("cookie", &cookies), (XSRF_HEADER, &token)]);
        assert_eq!(session_ticket(&ok, false).unwrap(), ticket);
        let missing = headers(&[("cookie", &cookies)]);
        assert!(session_ticket(&missing, false).is_err());
        let wrong = headers(&[("cookie", &cookies), (XSRF_HEADER, "x")]);
        assert!(session_ticket(&wrong, false).is_err());
        // A token that matches its own cookie but belongs to another session.
        let other = xsrf_token("7T:other");
        let forged = format!("{SESSION_COOKIE}={ticket}; {XSRF_COOKIE}={other}");
        let forged = headers(&[("cookie", &forged), (XSRF_HEADER, &other)]);
        assert!(session_ticket(&forged, false).is_err());
    }

    #[test]
    fn foreign_origins_are_refused() {
        let same = headers(&[
            ("host", "example.com:8080"),
            ("origin", "https://example.com:8080"),
        ]);
        assert!(ensure_same_origin(&same, true).is_ok());
        let foreign = headers(&[
            ("host", "example.com:8080"),
            ("origin", "https://evil.example"),
        ]);
        assert!(ensure_same_origin(&foreign, true).is_err());
        let opaque = headers(&[("host", "example.com"), ("origin", "null")]);
        assert!(ensure_same_origin(&opaque, true).is_err());
        assert!(ensure_same_origin(&headers(&[("host", "example.com")]), true).is_ok());
    }

    #[test]
    fn the_same_host_over_another_scheme_is_another_origin() {
        let plain = headers(&[("host", "example.com"), ("origin", "http://example.com")]);
        let secure = headers(&[("host", "example.com"), ("origin", "HTTPS://example.com")]);
        assert!(ensure_same_origin(&plain, false).is_ok());
        assert!(ensure_same_origin(&plain, true).is_err());
        assert!(ensure_same_origin(&secure, true).is_ok());
        assert!(ensure_same_origin(&secure, false).is_err());
    }
}
