//! The application: its shared state, its router, the service in front of the router that
//! answers the two operations' documented addresses itself, and a `serve` that tests can drive
//! on any listener.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::get;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::config::HttpSettings;
use crate::http::agents::user::{self, Operation};
use crate::http::auth::Authenticator;
use crate::http::body::RequestBody;
use crate::http::error::ApiError;
use crate::http::health;
use crate::http::login;
use crate::http::respond::{self, ClientUri};
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
        Self {
            inner: Arc::new(ServiceInner {
                router: router(state.clone()),
                state,
                documented,
            }),
        }
    }

    /// Answers one request.
    pub async fn answer(self, request: hyper::Request<impl RequestBody + 'static>) -> Response {
        match self.direct(&request) {
            Some(operation) => user::call(self.inner.state.clone(), operation, request).await,
            None => {
                let answered = self
                    .inner
                    .router
                    .clone()
                    .oneshot(case_insensitive_path(request.map(Body::new)))
                    .await;
                match answered {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
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
/// accepting and lets the requests in flight finish.
///
/// Each connection is served by hyper's HTTP/1 server directly, as `axum::serve` would with
/// the crate's features, minus its conversions between service types: [`Service`] answers
/// hyper's requests itself (BENCHMARKS.md).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let monitor = tokio::spawn(health::monitor(state.store().clone()));
    let service = Service::new(state);
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
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
        let service = service.clone();
        let connection = http1::Builder::new().serve_connection(
            TokioIo::new(stream),
            service_fn(move |request: hyper::Request<Incoming>| {
                let answer = service.clone().answer(request);
                async move { Ok::<_, Infallible>(answer.await) }
            }),
        );
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    monitor.abort();
    Ok(())
}

/// Waits out a failed `accept`. A connection that failed before it was accepted concerns only
/// its client; anything else (too many open files, say) is logged, and the next attempt waits
/// a second so that the loop does not spin while it lasts.
async fn refused(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
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
