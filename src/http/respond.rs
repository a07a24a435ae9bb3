//! The response middleware: picks the response format once per request and writes every
//! error in it, so that handlers only say which error happened. The two operations, which
//! run without the router, write their errors with [`error_response`].

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{ALLOW, CONNECTION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::session;
use super::error::ApiError;
use super::negotiate::ResponseFormat;
use super::state::AppState;

/// The request's path as the client sent it, before case normalisation: the `ErrorSource` of
/// error bodies.
#[derive(Clone, Debug)]
pub struct ClientUri(pub Uri);

impl ClientUri {
    /// The URI the client sent, from a request's URI and extensions.
    pub fn of<'a>(uri: &'a Uri, extensions: &'a axum::http::Extensions) -> &'a Uri {
        extensions
            .get::<ClientUri>()
            .map_or(uri, |ClientUri(sent)| sent)
    }
}

pub async fn respond(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let format = ResponseFormat::from_headers(request.headers());
    let source = ClientUri::of(request.uri(), request.extensions()).clone();
    let sign_in = request
        .uri()
        .path()
        .strip_prefix(state.settings().base_path.as_str())
        == Some(super::login::LOGIN);
    let from_page = sign_in || from_a_page(request.headers());
    let mut response = crate::store::one_request(next.run(request)).await;
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        write_error(&state, format, source.path(), error, &mut response);
        if from_page {
            without_basic_challenge(&mut response);
        }
    }
    response
}

/// Whether a page's script made the request, signed in with a session: it sends the XSRF
/// header (empty, even, once the session's cookies are gone) or the session cookie, and no
/// `Authorization`. Clients of the WebAPI send neither; one that sends `Authorization` keeps
/// every challenge, whatever cookies it also carries.
pub fn from_a_page(headers: &HeaderMap) -> bool {
    !headers.contains_key(axum::http::header::AUTHORIZATION)
        && (headers.contains_key(session::XSRF_HEADER)
            || session::session_cookie(headers).is_some())
}

/// Drops the `Basic` challenge from a 401 that a page's script, or the sign-in, gets: a
/// browser answers that challenge by putting up its own password dialog over the page (and,
/// headless, by never finishing the request), where the page should say what went wrong.
/// The other schemes' challenges stay; browsers do not act on them.
pub fn without_basic_challenge(response: &mut Response) {
    let headers = response.headers_mut();
    let kept: Vec<HeaderValue> = headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter(|challenge| {
            !challenge
                .as_bytes()
                .get(..6)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"basic "))
        })
        .cloned()
        .collect();
    headers.remove(WWW_AUTHENTICATE);
    for challenge in kept {
        headers.append(WWW_AUTHENTICATE, challenge);
    }
}

/// The response for an error met by a handler that writes its own errors, the way the
/// middleware writes the others.
pub fn error_response(
    state: &AppState,
    format: ResponseFormat,
    source: &str,
    error: ApiError,
) -> Response {
    let mut response = error.status().into_response();
    write_error(state, format, source, error, &mut response);
    response
}

/// Gives an error's response its body in `format`, and the headers that belong to the error.
fn write_error(
    state: &AppState,
    format: ResponseFormat,
    source: &str,
    error: ApiError,
    response: &mut Response,
) {
    if error == ApiError::Internal {
        // The cause was logged where it happened (once, then counted); this says where.
        tracing::debug!(path = source, "request failed");
    }
    let presence_api =
        super::presence::problem::is_presence_path(&state.settings().base_path, source);
    let headers = response.headers_mut();
    if presence_api {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(super::presence::problem::PROBLEM_JSON),
        );
    } else {
        headers.insert(CONTENT_TYPE, format.content_type());
    }
    match error {
        ApiError::Unauthorized => {
            for challenge in state.challenges() {
                headers.append(WWW_AUTHENTICATE, challenge.clone());
            }
        }
        ApiError::MethodNotAllowed { allow } => {
            headers.insert(ALLOW, HeaderValue::from_static(allow));
        }
        ApiError::Unavailable(_) => {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    *response.body_mut() = Body::from(if presence_api {
        super::presence::problem::body(&error)
    } else {
        error.body(format, source)
    });
}

/// Marks a response as the connection's last: hyper closes it once the response is written.
pub fn close_after(response: &mut Response) {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
}
