//! The presence board: a page a help desk keeps open, served at `{base}/` to a signed-in
//! browser, with its script, style and texts at `{base}/board/{file}`. Everything is embedded
//! in the binary; the page talks only to this server's presence API and change stream, with
//! the session cookie and its XSRF token like any other browser client.
//!
//! A request to `{base}/` without a session gets the sign-in page; a server that signs no
//! browser in (online, or with passwords or sessions turned off) says how the board is
//! reached instead.

mod assets;
mod texts;

use axum::extract::{OriginalUri, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::sync::LazyLock;

pub use self::assets::asset;
use self::assets::versioned;
use super::auth::session;
use super::error::ApiError;
use super::respond::ClientUri;
use super::state::AppState;
use crate::config::Installation;
use crate::tickets;

pub const BOARD: &str = "/";
pub const ASSET: &str = "/board/{file}";

const BOARD_PAGE: &str = include_str!("board.html");
const SIGN_IN_PAGE: &str = include_str!("sign-in.html");

static BOARD_HTML: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(versioned(BOARD_PAGE)));
static SIGN_IN_HTML: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(versioned(SIGN_IN_PAGE)));

/// `GET {base}/`: the board for a signed-in browser, the sign-in page for any other.
pub async fn page(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    if let Some(redirect) = to_canonical(&request, &state.settings().base_path, "/") {
        return Ok(redirect);
    }
    let auth = state.auth();
    if !signs_in_browsers(&state) {
        let language = texts::choose(request.headers());
        return Ok(html(texts::no_sign_in_page(
            language,
            auth.settings().installation == Installation::Online,
        )));
    }
    let ticket = session::session_cookie(request.headers());
    let signed_in = match ticket {
        Some(ticket) => tickets::check_ticket(state.store(), auth.clock(), &ticket)
            .await?
            .is_some(),
        None => false,
    };
    Ok(if signed_in {
        html(BOARD_HTML.clone())
    } else {
        sign_in_page()
    })
}

/// The sign-in page, also at `GET {base}/login`.
pub fn sign_in_page() -> Response {
    html(SIGN_IN_HTML.clone())
}

/// A redirect to a page's one address, if the request used another. The session's cookies
/// belong to the base path as configured (in lower case), which browsers compare case by
/// case: at `/Cust12345/` they would not be sent. And the pages' addresses are relative:
/// `{base}` without its slash, or `/login/` with one, would resolve them elsewhere.
/// `page` is the page's path under `base`.
pub fn to_canonical(request: &Request, base: &str, page: &str) -> Option<Response> {
    // The path as sent: the service's copy when it changed it (its case, a trailing slash),
    // else the router's from before a base path was taken off it.
    let sent = match request.extensions().get::<ClientUri>() {
        Some(ClientUri(sent)) => sent,
        None => request
            .extensions()
            .get::<OriginalUri>()
            .map_or(request.uri(), |OriginalUri(original)| original),
    };
    let canonical = format!("{base}{page}");
    if sent.path() == canonical {
        return None;
    }
    let mut location = canonical;
    if let Some(query) = sent.query() {
        location.push('?');
        location.push_str(query);
    }
    let location = HeaderValue::from_str(&location).ok()?;
    Some((StatusCode::PERMANENT_REDIRECT, [(LOCATION, location)]).into_response())
}

/// Whether a browser can sign in here: with a password, into a session.
fn signs_in_browsers(state: &AppState) -> bool {
    let auth = state.auth();
    auth.accepts_passwords() && auth.settings().ticket
}

/// A page: never kept by a cache (whether it is the board or the sign-in depends on the
/// session), allowed to run only this server's own script and style, to talk only to this
/// server, and to be framed by no one, so that no other site can trick a user into typing a
/// password into it.
fn html(body: Bytes) -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                     base-uri 'none'",
                ),
            ),
            // For browsers that predate `frame-ancestors`.
            (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        body,
    )
        .into_response()
}
