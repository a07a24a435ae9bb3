//! The application, composed: the router over the wire modules, and a `serve` that tests can
//! drive on any listener, which runs every connection through the service in front of the
//! router (`http::service`) with its timeouts (`http::connection`).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::routing::get;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::changes;
use crate::config::Limits;
use crate::http::agents::user::{self, Operation};
use crate::http::board;
use crate::http::connection::{
    Answering, ConnectionTimeouts, Streaming, StreamingBody, TimedStream,
};
use crate::http::error::ApiError;
use crate::http::health;
use crate::http::login;
use crate::http::metrics;
use crate::http::presence;
use crate::http::respond;
use crate::http::service::Service;
use crate::http::state::AppState;
use crate::repeated;
use crate::webhooks::Deliverer;

/// The routes, on lower-case paths: [`Service`] lower-cases every request path first, because
/// SuperOffice's addresses match in any case.
pub fn router(state: AppState) -> Router {
    let get_user_presence_status = get(user::describe_get_user_presence_status)
        .post(|State(state): State<AppState>, request: Request| {
            user::route(state, Operation::GetUserPresenceStatus, request)
        })
        .fallback(method_not_allowed);
    let set_user_presence_status = get(user::describe_set_user_presence_status)
        .post(|State(state): State<AppState>, request: Request| {
            user::route(state, Operation::SetUserPresenceStatus, request)
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
        .route(board::BOARD, get(board::page).fallback(only_get))
        .route(board::ASSET, get(board::asset).fallback(only_get))
        .route(health::LIVE, get(health::live).fallback(only_get))
        .route(health::READY, get(health::ready).fallback(only_get))
        .route(metrics::METRICS, get(metrics::metrics).fallback(only_get))
        .merge(presence::routes());
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
    let feed = tokio::spawn(state.feed().clone().run());
    let timers = tokio::spawn(changes::timers::run(
        state.store().clone(),
        state.auth().clock().clone(),
        state.feed().clone(),
    ));
    let deliverer = Deliverer::new(
        state.store().clone(),
        state.auth().clock().clone(),
        state.settings().allow_private_webhooks,
        presence::change_json,
    );
    let webhooks = tokio::spawn(deliverer.clone().run(state.feed().watch()));
    let service = Service::new(state.clone(), router(state.clone()));
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
    // Change streams never end by themselves: they end now, so that their connections close
    // with the others.
    state.feed().close();
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
    feed.abort();
    timers.abort();
    deliverer.stop(webhooks).await;
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
            // Boxed: hyper keeps room for one request's future in each connection for as long
            // as it is open, and the answer's future takes kilobytes; boxed, that room is a
            // pointer, and the answer's memory is returned as soon as the answer is made (a
            // change stream's connection, or an idle keep-alive one, holds none of it).
            let answer = Box::pin(service.clone().answer(request));
            async move {
                let response = answer.await;
                if response.extensions().get::<Streaming>().is_some() {
                    let response = response.map(|body| {
                        axum::body::Body::new(StreamingBody {
                            body,
                            _answering: answering,
                        })
                    });
                    return Ok::<_, Infallible>(response);
                }
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
