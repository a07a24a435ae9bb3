//! Health endpoints for load balancers and orchestrators: `GET /health/live` (the process
//! answers) and `GET /health/ready` (and can reach its database).

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::store::Store;

pub const LIVE: &str = "/health/live";
pub const READY: &str = "/health/ready";

/// How often the monitor checks the database, and so how soon an outage and the recovery
/// show in the log.
const MONITOR_INTERVAL: Duration = Duration::from_secs(2);

pub async fn live() -> Response {
    text(StatusCode::OK, "live\n")
}

pub async fn ready(State(state): State<AppState>) -> Response {
    match state.store().ping().await {
        Ok(()) => text(StatusCode::OK, "ready\n"),
        Err(error) => {
            tracing::debug!(%error, "not ready");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable\n",
            )
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Checks the database every few seconds for as long as the server runs, and logs when it
/// becomes unreachable and when it is back: once per change, not once per failed request.
pub async fn monitor(store: Store) {
    let mut reachable = true;
    loop {
        tokio::time::sleep(MONITOR_INTERVAL).await;
        match (store.ping().await, reachable) {
            (Err(error), true) => {
                tracing::error!(%error, "the database is unreachable: answering 503 until it is back");
                reachable = false;
            }
            (Ok(()), false) => {
                tracing::info!("the database is reachable again");
                reachable = true;
            }
            _ => {}
        }
    }
}
