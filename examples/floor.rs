//! The load test's floor: the least an axum server can do to answer the presence operations.
//!
//! It answers `POST` on both operations' addresses with the bytes `presence` answers for a
//! present user, `{"Status":"StatusNormal","Message":null}`, with no authentication, storage,
//! body decoding or negotiation, on the same runtime (tokio, multi-threaded) and the same axum
//! features (http1, tokio). `benches/load/run.sh` measures `presence` as a ratio to it: what is
//! left between the two is the cost of the service's own work.
//!
//! For the presence API's batch read (`benches/load/presence_api.sh`) it answers
//! `GET /presence/v1/users` with one fixed body of as many presences as a batch asks for
//! (`BATCH`), made once at start, of the size and shape `presence` answers.
//!
//! ```text
//! cargo run --release --example floor -- 127.0.0.1:8081
//! ```

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};

const BODY: &[u8] = br#"{"Status":"StatusNormal","Message":null}"#;
const CONTENT_TYPE_JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

async fn answer() -> impl IntoResponse {
    ([(CONTENT_TYPE, CONTENT_TYPE_JSON)], BODY)
}

/// Presences in the batch body: as many as the load script asks for.
const BATCH: i32 = 1000;

/// A batch read's answer for associates 1 to [`BATCH`], all present.
fn batch_body() -> bytes::Bytes {
    let items: Vec<String> = (1..=BATCH)
        .map(|id| {
            format!(
                r#"{{"associateId":{id},"login":"u{id}","status":"StatusNormal","message":null,"until":null,"absence":null,"available":true,"revision":{id},"changedAt":"2026-12-02T14:00:00.000Z"}}"#
            )
        })
        .collect();
    format!(r#"{{"items":[{}],"missing":[]}}"#, items.join(",")).into()
}

fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    // The same runtime `presence` builds: one worker per core the process may run on.
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let batch = batch_body();
        let app = Router::new()
            .route("/api/v1/Agents/User/GetUserPresenceStatus", post(answer))
            .route("/api/v1/Agents/User/SetUserPresenceStatus", post(answer))
            .route(
                "/presence/v1/users",
                get(move || async move { ([(CONTENT_TYPE, CONTENT_TYPE_JSON)], batch) }),
            );
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        eprintln!("floor listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await
    })
}
