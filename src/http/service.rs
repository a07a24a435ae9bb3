//! The service in front of the router: the limits every request is held to (how many at once,
//! how long, which transfer codings), and the short way to the two operations.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::header::TRANSFER_ENCODING;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::http::access::{self, Associate};
use crate::http::agents::user;
use crate::http::body::{RequestBody, collect_body};
use crate::http::error::{ApiError, Unavailability};
use crate::http::health;
use crate::http::login;
use crate::http::metrics::METRICS;
use crate::http::negotiate::ResponseFormat;
use crate::http::respond::{self, ClientUri};
use crate::http::state::AppState;
use crate::metrics::{self, Operation};
use crate::repeated;

/// How far off a request's deadline is when its timeout cannot be added to the time: thirty
/// years, as tokio's `timeout` takes it then.
const NO_DEADLINE: Duration = Duration::from_secs(86_400 * 365 * 30);

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
    documented: [(String, user::Operation); 2],
    /// Every address under the base path, with what a request to it is called in the metrics
    /// and the log: by any method but POST, and by POST (an operation's address describes the
    /// operation unless POSTed to).
    addresses: Vec<(String, Operation, Operation)>,
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
                user::Operation::GetUserPresenceStatus,
            ),
            (
                format!(
                    "{base_path}{}",
                    user::SET_USER_PRESENCE_STATUS_AS_DOCUMENTED
                ),
                user::Operation::SetUserPresenceStatus,
            ),
        ];
        let addresses = [
            (
                user::GET_USER_PRESENCE_STATUS,
                Operation::Describe,
                Operation::GetUserPresenceStatus,
            ),
            (
                user::SET_USER_PRESENCE_STATUS,
                Operation::Describe,
                Operation::SetUserPresenceStatus,
            ),
            (login::LOGIN, Operation::SignIn, Operation::SignIn),
            (login::LOGOUT, Operation::SignOut, Operation::SignOut),
            (health::LIVE, Operation::Health, Operation::Health),
            (health::READY, Operation::Health, Operation::Health),
            (METRICS, Operation::Metrics, Operation::Metrics),
        ]
        .into_iter()
        .map(|(path, other, post)| (format!("{base_path}{path}"), other, post))
        .collect();
        let max_requests = state.settings().limits.max_requests;
        Self {
            inner: Arc::new(ServiceInner {
                router,
                state,
                documented,
                addresses,
                requests: Semaphore::new(max_requests),
            }),
        }
    }

    /// Answers one request within the request timeout, the body's arrival included (else a
    /// 408).
    ///
    /// The body is read first, whole (up to the body limit), before anything else: whatever
    /// turns out wrong with the request (a 401, a 503), a kept-alive client still sending its
    /// body finds its connection open for the next request, where hyper would close it under
    /// that request had the body been left unread; and a client sending slowly waits on its own
    /// connection without holding a place among the requests answered at once. A body that
    /// cannot be read whole (too large) is answered with the connection closed.
    ///
    /// Every answer carries the request's id (`X-Request-Id`), and is counted in the metrics
    /// and told in the access log (`http/access.rs`).
    ///
    /// One level, with the request's parts lent to what answers it rather than moved: hyper
    /// keeps this future for every request, and each level of `async fn` holding the parts
    /// again, or a copy of the URI for the log or a timeout, made it larger and each request
    /// cost more instructions (BENCHMARKS.md, 2026-12-04).
    pub async fn answer(self, request: hyper::Request<impl RequestBody + 'static>) -> Response {
        // tokio's clock, which a test may pause; the same reading also gives the deadline.
        let started = Instant::now();
        let state = &self.inner.state;
        let settings = state.settings();
        let request_id = access::request_id(request.headers());
        let operation = self.operation(request.method(), request.uri().path());
        let format = ResponseFormat::from_headers(request.headers());
        let (mut parts, body) = request.into_parts();
        // A timeout too long to add (`Duration::MAX`, say) is no timeout, as for tokio's own.
        let deadline = started
            .checked_add(settings.limits.request_timeout)
            .unwrap_or_else(|| started + NO_DEADLINE);
        let answered = tokio::time::timeout_at(deadline, async {
            let body = collect_body(&parts.headers, body, settings.body_limit).await;
            let read_whole = body.is_ok();
            let mut response = self.answer_read(operation, format, &mut parts, body).await;
            if !read_whole {
                respond::close_after(&mut response);
            }
            response
        })
        .await;
        let mut response = answered.unwrap_or_else(|_| {
            tracing::debug!(path = parts.uri.path(), "the request timed out");
            let mut response =
                respond::error_response(state, format, parts.uri.path(), ApiError::RequestTimeout);
            respond::close_after(&mut response);
            response
        });
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        metrics::request(operation, status, elapsed);
        if access::is_on() {
            access::Entry {
                request_id: &request_id,
                operation,
                method: parts.method.as_str(),
                path: parts.uri.path(),
                status,
                elapsed,
                associate: response.extensions_mut().remove::<Associate>(),
            }
            .log();
        }
        response
            .headers_mut()
            .insert(access::REQUEST_ID, request_id);
        response
    }

    /// Answers a request whose body was read: at most `max_requests` at once (else a 503).
    /// A request for the router takes the headers and extensions out of `parts`; the method
    /// and the URI stay, for the timeout's answer and the log.
    async fn answer_read(
        &self,
        operation: Operation,
        format: ResponseFormat,
        parts: &mut Parts,
        body: Result<Bytes, ApiError>,
    ) -> Response {
        let state = &self.inner.state;
        let refused = |parts: &Parts, error| {
            let source = ClientUri::of(&parts.uri, &parts.extensions).path();
            respond::error_response(state, format, source, error)
        };
        if let Some(coding) = unsupported_transfer_coding(&parts.headers) {
            return refused(parts, ApiError::NotImplemented(coding));
        }
        let _permit = if is_unlimited(&parts.method, operation) {
            None
        } else {
            match self.inner.requests.try_acquire() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    repeated::OVERLOADED.report(|unlogged| {
                        tracing::warn!(
                            unlogged,
                            "a request was refused: too many are being answered"
                        );
                    });
                    return refused(parts, ApiError::Unavailable(Unavailability::Busy));
                }
            }
        };
        match self.direct(parts) {
            Some(operation) => {
                user::call(self.inner.state.clone(), operation, format, parts, body).await
            }
            None => {
                let body = match body {
                    Ok(bytes) => Body::from(bytes),
                    Err(error) => return refused(parts, error),
                };
                let request = Request::from_parts(taken(parts), body);
                let answered = self
                    .inner
                    .router
                    .clone()
                    .oneshot(case_insensitive_path(request))
                    .await;
                match answered {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        }
    }

    /// What the metrics and the log call a request.
    fn operation(&self, method: &Method, path: &str) -> Operation {
        // Nearly every request: a POST to an operation, spelt as documented.
        if let Some(operation) = self.direct_at(method, path) {
            return operation.into();
        }
        let path = match path.strip_suffix('/') {
            Some(trimmed) if !trimmed.is_empty() => trimmed,
            _ => path,
        };
        let listed = self
            .inner
            .addresses
            .iter()
            .find(|(at, _, _)| at.eq_ignore_ascii_case(path))
            .map(|&(_, other, post)| if *method == Method::POST { post } else { other });
        if let Some(operation) = listed {
            return operation;
        }
        if crate::http::presence::problem::is_presence_path(
            &self.inner.state.settings().base_path,
            path,
        ) {
            return if *method == Method::GET || *method == Method::HEAD {
                Operation::PresenceRead
            } else {
                Operation::PresenceWrite
            };
        }
        Operation::Other
    }

    /// The operation a request calls directly, if it is a POST to a documented address.
    fn direct(&self, parts: &Parts) -> Option<user::Operation> {
        self.direct_at(&parts.method, parts.uri.path())
    }

    fn direct_at(&self, method: &Method, path: &str) -> Option<user::Operation> {
        if *method != Method::POST {
            return None;
        }
        self.inner
            .documented
            .iter()
            .find(|(documented, _)| documented == path)
            .map(|&(_, operation)| operation)
    }
}

/// Whether a request is answered whatever the load: the health checks and the metrics, so
/// that an overloaded node is not taken for a dead one, and its metrics show why.
fn is_unlimited(method: &Method, operation: Operation) -> bool {
    *method == Method::GET && matches!(operation, Operation::Health | Operation::Metrics)
}

/// The transfer codings of a request other than the one hyper decodes (`chunked`): hyper would
/// pass such a body on still encoded, so the request is refused with a 501 rather than read as
/// if it were not. (A request whose last coding is not `chunked` has no length to read it by:
/// hyper refuses it with a 400 and closes the connection, as RFC 9112 requires.)
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

/// The parts of a request, for the router: the headers and extensions taken out of `parts`,
/// the method and the URI copied.
fn taken(parts: &mut Parts) -> Parts {
    let (mut taken, ()) = Request::new(()).into_parts();
    taken.method = parts.method.clone();
    taken.uri = parts.uri.clone();
    taken.version = parts.version;
    taken.headers = std::mem::take(&mut parts.headers);
    taken.extensions = std::mem::take(&mut parts.extensions);
    taken
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
