//! Health endpoints for load balancers and orchestrators: `GET /health/live` (the process
//! answers) and `GET /health/ready` (and can reach its database).

use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::auth::LOCKOUT_WINDOW;
use crate::http::state::AppState;
use crate::repeated;

pub const LIVE: &str = "/health/live";
pub const READY: &str = "/health/ready";

/// How often the monitor checks the database, and so how soon an outage and the recovery
/// show in the log.
const MONITOR_INTERVAL: Duration = Duration::from_secs(2);

/// The store's upkeep runs every this many checks: half a minute.
const HOUSEKEEPING_EVERY: u32 = 15;

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
/// Between checks it tells the counts of repeated conditions (`repeated`), and now and then
/// runs the store's upkeep: password checks older than the lockout window are forgotten, so
/// that their table stays as small as the guesses of one window, absences that ended a day
/// ago are deleted, and changes older than the history's retention.
/// How long an absence is kept after it ended: a day, so that nobody reading the list of a
/// user's absences just then sees one vanish before it was due.
const ENDED_ABSENCES_KEPT_MILLIS: i64 = DAY_MILLIS;

const DAY_MILLIS: i64 = 24 * 3_600_000;

pub async fn monitor(state: AppState) {
    let store = state.store();
    let clock = state.auth().clock();
    let mut reachable = true;
    for tick in 1u32.. {
        tokio::time::sleep(MONITOR_INTERVAL).await;
        repeated::flush_all();
        if tick % HOUSEKEEPING_EVERY == 0 {
            let window = i64::try_from(LOCKOUT_WINDOW.as_millis()).unwrap_or(i64::MAX);
            let now = clock.now_millis();
            let history = i64::from(state.settings().history_days) * DAY_MILLIS;
            if let Err(error) = store
                .housekeeping(
                    now - window,
                    now - ENDED_ABSENCES_KEPT_MILLIS,
                    now - history,
                )
                .await
            {
                tracing::warn!(%error, "the store's upkeep failed; will try again");
            }
        }
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
