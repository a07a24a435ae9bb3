//! The service in front of the router: the limits every request is held to (how many at once,
//! how long, which transfer codings), and the short way to the two operations.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::TRANSFER_ENCODING;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::http::agents::user::{self, Operation};
use crate::http::body::RequestBody;
use crate::http::error::{ApiError, Unavailability};
use crate::http::negotiate::ResponseFormat;
use crate::http::respond::{self, ClientUri};
use crate::http::state::AppState;
use crate::repeated;

/// What the server runs for every request. A POST to either operation's documented address,
/// nearly every request a client makes, goes straight to [`user::call`]; everything else goes
/// through the router (`app::router`), after its path is lower-cased. The common case thus
/// skips the router, its middleware and the path rewrite; the router calls the same
/// [`user::call`], so the two ways in answer alike.
#[derive(Clone)]
pub struct Service {
    inner: Arc<ServiceInner>,
}

struct ServiceInner {
    state: AppState,
    router: Router,
    /// The documented addresses under the base path, with the operation at each.
    documented: [(String, Operation); 2],
    /// One permit per request being answered; a request that finds none is a 503.
    requests: Semaphore,
}

impl Service {
    /// `router` answers every request that is not a POST to a documented address.
    pub fn new(state: AppState, router: Router) -> Self {
        let base_path = &state.settings().base_path;
        let documented = [
            (
                format!(
                    "{base_path}{}",
                    user::GET_USER_PRESENCE_STATUS_AS_DOCUMENTED
                ),
                Operation::GetUserPresenceStatus,
            ),
            (
                format!(
                    "{base_path}{}",
                    user::SET_USER_PRESENCE_STATUS_AS_DOCUMENTED
                ),
                Operation::SetUserPresenceStatus,
            ),
        ];
        let max_requests = state.settings().limits.max_requests;
        Self {
            inner: Arc::new(ServiceInner {
                router,
                state,
                documented,
                requests: Semaphore::new(max_requests),
            }),
        }
    }

    /// Answers one request, within the limits: at most so many at once (else a 503), and
    /// within the request timeout, the body's arrival included (else a 408).
    pub async fn answer(self, request: hyper::Request<impl RequestBody + 'static>) -> Response {
        let state = &self.inner.state;
        if let Some(coding) = unsupported_transfer_coding(request.headers()) {
            return refusal(state, &request, ApiError::NotImplemented(coding));
        }
        let Ok(_permit) = self.inner.requests.try_acquire() else {
            repeated::OVERLOADED.report(|unlogged| {
                tracing::warn!(
                    unlogged,
                    "a request was refused: too many are being answered"
                );
            });
            return refusal(state, &request, ApiError::Unavailable(Unavailability::Busy));
        };
        let timeout = state.settings().limits.request_timeout;
        let format = ResponseFormat::from_headers(request.headers());
        let uri = request.uri().clone();
        match tokio::time::timeout(timeout, self.dispatch(request)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::debug!(path = uri.path(), "the request timed out");
                let mut response =
                    respond::error_response(state, format, uri.path(), ApiError::RequestTimeout);
                respond::close_after(&mut response);
                response
            }
        }
    }

    async fn dispatch(&self, request: hyper::Request<impl RequestBody + 'static>) -> Response {
        match self.direct(&request) {
            Some(operation) => user::call(self.inner.state.clone(), operation, request).await,
            None => {
                // The other addresses read their bodies as they please: whatever one leaves
                // unread, the connection is closed after the answer rather than left for the
                // client to send its next request on while hyper drops the rest.
                let (request, read) = Tracked::wrap(request);
                let answered = self
                    .inner
                    .router
                    .clone()
                    .oneshot(case_insensitive_path(request.map(Body::new)))
                    .await;
                let mut response = match answered {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                if !read.load(Ordering::Relaxed) {
                    respond::close_after(&mut response);
                }
                response
            }
        }
    }

    /// The operation a request calls directly, if it is a POST to a documented address.
    fn direct<B>(&self, request: &hyper::Request<B>) -> Option<Operation> {
        if request.method() != Method::POST {
            return None;
        }
        let path = request.uri().path();
        self.inner
            .documented
            .iter()
            .find(|(documented, _)| documented == path)
            .map(|&(_, operation)| operation)
    }
}

/// The answer to a request refused before it was dispatched: the error in the caller's format,
/// and, if the request has a body (left unread), the connection closed after it.
fn refusal<B: RequestBody>(
    state: &AppState,
    request: &hyper::Request<B>,
    error: ApiError,
) -> Response {
    let format = ResponseFormat::from_headers(request.headers());
    let mut response = respond::error_response(state, format, request.uri().path(), error);
    if !request.body().is_end_stream() {
        respond::close_after(&mut response);
    }
    response
}

/// The transfer codings of a request other than the one hyper decodes (`chunked`): hyper would
/// pass such a body on still encoded, so the request is refused with a 501 rather than read as
/// if it were not.
fn unsupported_transfer_coding(headers: &HeaderMap) -> Option<String> {
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter().peekable();
    codings.peek()?;
    let unsupported: Vec<&str> = codings
        .flat_map(|value| value.to_str().unwrap_or("?").split(','))
        .map(str::trim)
        .filter(|coding| !coding.eq_ignore_ascii_case("chunked"))
        .collect();
    (!unsupported.is_empty()).then(|| unsupported.join(", "))
}

/// A request body that says whether it was read to its end. Boxed, as the router's bodies
/// are: this is not the documented addresses' way.
struct Tracked<B> {
    inner: Pin<Box<B>>,
    read: Arc<AtomicBool>,
}

impl<B: RequestBody> Tracked<B> {
    fn wrap(request: hyper::Request<B>) -> (hyper::Request<Self>, Arc<AtomicBool>) {
        let read = Arc::new(AtomicBool::new(request.body().is_end_stream()));
        let tracked = request.map(|inner| Self {
            inner: Box::pin(inner),
            read: read.clone(),
        });
        (tracked, read)
    }
}

impl<B: RequestBody> hyper::body::Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = self.inner.as_mut().poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Relaxed);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Lower-cases the path (ASP.NET routes match in any case) and drops a trailing slash; the
/// query, which carries `$select` values, is kept as sent.
fn case_insensitive_path(mut request: Request) -> Request {
    let path = request.uri().path();
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    if trimmed.len() == path.len() && !path.bytes().any(|b| b.is_ascii_uppercase()) {
        return request;
    }
    let mut canonical = trimmed.to_ascii_lowercase();
    if canonical.is_empty() {
        canonical.push('/');
    }
    if let Some(query) = request.uri().query() {
        canonical.push('?');
        canonical.push_str(query);
    }
    let original = request.uri().clone();
    let mut parts = original.clone().into_parts();
    // Lower-casing ASCII letters and trimming slashes keeps a valid path valid.
    parts.path_and_query = canonical.parse().ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        *request.uri_mut() = uri;
        request.extensions_mut().insert(ClientUri(original));
    }
    request
}
