//! The application: its shared state, its router, the service in front of the router that
//! answers the two operations' documented addresses itself, and a `serve` that tests can drive
//! on any listener.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, TRANSFER_ENCODING};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::config::{HttpSettings, Limits};
use crate::http::agents::user::{self, Operation};
use crate::http::auth::Authenticator;
use crate::http::body::RequestBody;
use crate::http::connection::{Answering, ConnectionTimeouts, TimedStream};
use crate::http::error::{ApiError, Unavailability};
use crate::http::health;
use crate::http::login;
use crate::http::negotiate::ResponseFormat;
use crate::http::respond::{self, ClientUri};
use crate::repeated;
use crate::store::Store;

/// What every request can reach. Cheap to clone: one reference count.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    settings: HttpSettings,
    auth: Authenticator,
}

impl AppState {
    pub fn new(store: Store, settings: HttpSettings, auth: Authenticator) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                settings,
                auth,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.inner.settings
    }

    pub fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    /// The `WWW-Authenticate` headers of every 401.
    pub fn challenges(&self) -> &[HeaderValue] {
        self.inner.auth.challenges()
    }
}

/// The routes, on lower-case paths: [`Service`] lower-cases every request path first, because
/// SuperOffice's addresses match in any case.
pub fn router(state: AppState) -> Router {
    let get_user_presence_status = get(user::describe_get_user_presence_status)
        .post(|State(state): State<AppState>, request: Request| {
            user::call(state, Operation::GetUserPresenceStatus, request)
        })
        .fallback(method_not_allowed);
    let set_user_presence_status = get(user::describe_set_user_presence_status)
        .post(|State(state): State<AppState>, request: Request| {
            user::call(state, Operation::SetUserPresenceStatus, request)
        })
        .fallback(method_not_allowed);
    let operations = Router::new()
        .route(user::GET_USER_PRESENCE_STATUS, get_user_presence_status)
        .route(user::SET_USER_PRESENCE_STATUS, set_user_presence_status)
        .route(
            login::LOGIN,
            get(login::sign_in_page)
                .post(login::sign_in)
                .fallback(method_not_allowed),
        )
        .route(
            login::LOGOUT,
            axum::routing::post(login::sign_out).fallback(only_post),
        )
        .route(health::LIVE, get(health::live).fallback(only_get))
        .route(health::READY, get(health::ready).fallback(only_get));
    let base_path = &state.settings().base_path;
    let routes = if base_path.is_empty() {
        operations
    } else {
        Router::new().nest(base_path, operations)
    };
    routes
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            respond::respond,
        ))
        .with_state(state)
}

/// What [`serve`] runs for every request. A POST to either operation's documented address,
/// nearly every request a client makes, goes straight to [`user::call`]; everything else goes
/// through the [`router`], after its path is lower-cased. Skipping the router, its middleware
/// and the path rewrite for the common case is the largest saving measured on a Get
/// (BENCHMARKS.md); the router calls the same [`user::call`], so the two ways in answer alike.
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
    pub fn new(state: AppState) -> Self {
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
                router: router(state.clone()),
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
                close_after(&mut response);
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
                    close_after(&mut response);
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

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed { allow: "GET, POST" }
}

async fn only_post() -> ApiError {
    ApiError::MethodNotAllowed { allow: "POST" }
}

async fn only_get() -> ApiError {
    ApiError::MethodNotAllowed { allow: "GET" }
}

/// Serves the application on a bound listener until `shutdown` completes, then stops
/// accepting, lets the requests in flight finish within the shutdown timeout, and closes the
/// connections still open after it.
///
/// Each connection is served by hyper's HTTP/1 server directly, as `axum::serve` would with
/// the crate's features, minus its conversions between service types: [`Service`] answers
/// hyper's requests itself. At most `max_connections` are open at once: at the limit the
/// server accepts no more (the kernel queues them) until one closes, and goes on serving the
/// ones it has.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.settings().limits;
    let monitor = tokio::spawn(health::monitor(state.clone()));
    let service = Service::new(state);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                repeated::CONNECTION_LIMIT.report(|unlogged| {
                    tracing::warn!(
                        limit = limits.max_connections,
                        unlogged,
                        "at the connection limit: accepting no more until one closes"
                    );
                });
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                refused(error).await;
                continue;
            }
        };
        let connection = serve_connection(stream, service.clone(), limits, &graceful);
        connections.spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "the shutdown timeout passed: closing the connections still open"
        );
    }
    connections.shutdown().await;
    monitor.abort();
    Ok(())
}

/// One connection, with its timeouts (`http/connection.rs`), shut down gracefully with the
/// others.
fn serve_connection(
    stream: tokio::net::TcpStream,
    service: Service,
    limits: Limits,
    graceful: &GracefulShutdown,
) -> impl Future<Output = hyper::Result<()>> + Send + 'static {
    let answering = Answering::default();
    let timeouts = ConnectionTimeouts {
        header_read: limits.header_read_timeout,
        keep_alive: limits.keep_alive_timeout,
    };
    let stream = TimedStream::new(stream, timeouts, answering.clone());
    let connection = http1::Builder::new().serve_connection(
        TokioIo::new(stream),
        service_fn(move |request: hyper::Request<Incoming>| {
            let answering = answering.begin();
            let answer = service.clone().answer(request);
            async move {
                let response = answer.await;
                drop(answering);
                Ok::<_, Infallible>(response)
            }
        }),
    );
    graceful.watch(connection)
}

/// Waits out a failed `accept`. A connection that failed before it was accepted concerns only
/// its client; anything else (out of file descriptors, say) is logged once and then counted,
/// and the next attempt waits a moment, so that the loop neither spins nor stops while it
/// lasts: the connections already open go on being served meanwhile.
async fn refused(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    repeated::ACCEPT_FAILED.report(|unlogged| {
        tracing::error!(%error, unlogged, "accepting a connection failed");
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
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
        close_after(&mut response);
    }
    response
}

/// Marks a response as the connection's last: hyper closes it once the response is written.
pub fn close_after(response: &mut Response) {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
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
