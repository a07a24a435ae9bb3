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
//! For the change streams (`benches/load/streams.sh --floor`) it answers
//! `GET /presence/v1/changes/stream` with a stream that sends one fixed event, of the size and
//! shape `presence` sends, each time a Set arrives, numbered by a counter that
//! `GET /presence/v1/users/{id}` answers as its `revision`: one wake and one write per stream
//! and change, with no history, feed, ring or authentication behind it.
//!
//! ```text
//! cargo run --release --example floor -- 127.0.0.1:8081
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::watch;

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

/// The streams' side: the last change's number, and its event, sent to every stream.
#[derive(Clone)]
struct Changes {
    revision: Arc<AtomicI64>,
    events: watch::Sender<Bytes>,
}

impl Changes {
    fn new() -> Self {
        Self {
            revision: Arc::new(AtomicI64::new(0)),
            events: watch::Sender::new(Bytes::new()),
        }
    }

    /// A Set: the next change, of the size of `presence`'s, to every stream.
    fn change(&self) {
        let revision = self.revision.fetch_add(1, Ordering::SeqCst) + 1;
        let event = format!(
            "id: {revision}\nevent: change\ndata: {{\"revision\":{revision},\"at\":\"2026-12-03T14:00:00.000Z\",\"associateId\":1,\"kind\":\"status\",\"from\":{{\"status\":\"StatusNormal\",\"message\":null,\"until\":null}},\"to\":{{\"status\":\"StatusNotAvailable\",\"message\":\"floor\",\"until\":null}},\"absence\":null,\"by\":{{\"kind\":\"user\",\"associateId\":1}},\"via\":{{\"scheme\":\"basic\",\"application\":null}}}}\n\n"
        );
        self.events.send_replace(Bytes::from(event));
    }
}

type Waiting = Pin<Box<dyn Future<Output = (watch::Receiver<Bytes>, bool)> + Send>>;

/// A stream's body: each change's event once it is sent, as `presence`'s stream waits on its
/// feed.
struct Events {
    waiting: Waiting,
}

fn wait(mut events: watch::Receiver<Bytes>) -> Waiting {
    Box::pin(async move {
        let open = events.changed().await.is_ok();
        (events, open)
    })
}

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let (mut events, open) = std::task::ready!(self.waiting.as_mut().poll(cx));
        if !open {
            return Poll::Ready(None);
        }
        let event = events.borrow_and_update().clone();
        self.waiting = wait(events);
        Poll::Ready(Some(Ok(Frame::data(event))))
    }
}

async fn stream(State(changes): State<Changes>) -> impl IntoResponse {
    let mut events = changes.events.subscribe();
    events.mark_unchanged();
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::new(Events {
            waiting: wait(events),
        }),
    )
}

async fn set(State(changes): State<Changes>) -> impl IntoResponse {
    changes.change();
    ([(CONTENT_TYPE, CONTENT_TYPE_JSON)], BODY)
}

async fn revision(State(changes): State<Changes>) -> impl IntoResponse {
    let revision = changes.revision.load(Ordering::SeqCst);
    (
        [(CONTENT_TYPE, CONTENT_TYPE_JSON)],
        format!(r#"{{"associateId":1,"revision":{revision}}}"#),
    )
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
            .route("/api/v1/Agents/User/SetUserPresenceStatus", post(set))
            .route(
                "/presence/v1/users",
                get(move || async move { ([(CONTENT_TYPE, CONTENT_TYPE_JSON)], batch) }),
            )
            .route("/presence/v1/users/{id}", get(revision))
            .route("/presence/v1/changes/stream", get(stream))
            .with_state(Changes::new());
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        eprintln!("floor listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await
    })
}
