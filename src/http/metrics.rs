//! `GET /metrics`: the counters and gauges of `crate::metrics`, for Prometheus to scrape.
//!
//! Answered without credentials, as the health checks are: it names no associate or login,
//! only counts, and a scraper should not need a Service user's password. Keep the address
//! away from the internet as you would the health checks.

use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use crate::http::state::AppState;

pub const METRICS: &str = "/metrics";

/// OpenMetrics' text format, which Prometheus asks for first and reads natively.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub async fn metrics(State(state): State<AppState>) -> Response {
    let feed = crate::metrics::FeedStats {
        streams: u64::try_from(state.feed().streams()).unwrap_or(u64::MAX),
    };
    let text = crate::metrics::encode(state.store().stats(), feed);
    (
        [(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS))],
        text,
    )
        .into_response()
}
