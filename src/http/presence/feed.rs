//! `GET /presence/v1/changes/stream`: every change as a Server-Sent Event, in revision order,
//! resumable after `Last-Event-ID` (or `?after=`) with nothing lost and nothing repeated,
//! optionally for some associates only (`?associate=1,2`), with a comment every
//! [`KEEP_ALIVE`] so that proxies keep it open, and `event: reset` when the cursor is older
//! than the history keeps (the stream then goes on from the newest change).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::as_caller;
use super::changes::{associate, revision};
use super::query::Query;
use super::wire::invalid;
use crate::changes::feed::{Event, Feed};
use crate::domain::AssociateId;
use crate::http::connection::Streaming;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::{HistoryQuery, StoreError};

/// How often an idle stream sends a comment line.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Associates one stream may filter by at most.
const MAX_ASSOCIATES: usize = 1000;

/// Events waiting to be written to one stream at most: a client that reads slowly holds its
/// stream's task, not the server's memory.
const QUEUE: usize = 16;

/// Changes read from the history at a time by a stream behind the feed's ring.
const HISTORY_STEP: usize = 500;

#[utoipa::path(get, path = "/presence/v1/changes/stream", tag = "presence",
    params(("after" = Option<i64>, Query, description = "Changes numbered after this revision; `Last-Event-ID` takes precedence; none: from now"),
        ("associate" = Option<String>, Query, description = "Comma-separated associate ids: their changes only")),
    responses((status = 200, description = "`text/event-stream`: `id:` the revision, `event: change`, `data:` the change as `/presence/v1/changes` gives it")))]
pub(super) async fn stream(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (state, headers) = (&state, &headers);
    as_caller(state, headers, |_caller| async move {
        let query = Query::of(uri.query())?;
        query.only(&["after", "associate"])?;
        let last_event_id = headers
            .get("last-event-id")
            .map(|value| {
                value
                    .to_str()
                    .map_err(|_| invalid("Last-Event-ID", "not a revision".into()))
                    .and_then(|text| revision(text.trim(), "Last-Event-ID"))
            })
            .transpose()?;
        let after = match last_event_id {
            Some(after) => Some(after),
            None => query
                .get("after")
                .map(|t| revision(t, "after"))
                .transpose()?,
        };
        let associates = query
            .get("associate")
            .map(associates)
            .transpose()?
            .unwrap_or_default();
        let feed = state.feed().clone();
        let cursor = match after {
            Some(after) => after,
            None => feed.store().latest_revision().await?,
        };
        let (events, received) = mpsc::channel(QUEUE);
        // Counted as open before the reader is woken, which reads only while a stream is.
        let closing = feed.closing();
        tokio::spawn(send_changes(
            feed.clone(),
            cursor,
            associates,
            events,
            closing,
        ));
        feed.wake();
        let mut response = Response::new(axum::body::Body::new(EventBody(received)));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // nginx would otherwise hold events back to fill its buffer.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        response.extensions_mut().insert(Streaming);
        *response.status_mut() = StatusCode::OK;
        Ok(response)
    })
    .await
}

fn associates(text: &str) -> Result<Vec<AssociateId>, ApiError> {
    let mut ids = text
        .split(',')
        .map(associate)
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() > MAX_ASSOCIATES {
        return Err(invalid(
            "associate",
            format!("At most {MAX_ASSOCIATES} associates"),
        ));
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// The stream's task: sends every change after `cursor` that passes the filter, then waits for
/// more, until the client leaves or the server shuts down.
async fn send_changes(
    feed: Feed,
    mut cursor: i64,
    associates: Vec<AssociateId>,
    events: mpsc::Sender<Bytes>,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    let passes = |id: AssociateId| associates.is_empty() || associates.binary_search(&id).is_ok();
    let mut reached = feed.watch();
    loop {
        if *closing.borrow() {
            return;
        }
        // What to send now, gathered before any await: the ring is not held across one.
        let (ready, ring_reached, behind) = {
            let ring = feed.ring();
            let ring_reached = ring.reached();
            if ring_reached >= 0 && ring.covers(cursor) {
                let ready: Vec<Bytes> = ring
                    .after(cursor)
                    .filter(|e| passes(e.associate_id))
                    .map(|e| e.bytes.clone())
                    .collect();
                (ready, ring_reached, false)
            } else {
                (Vec::new(), ring_reached, ring_reached >= 0)
            }
        };
        let sent = if behind {
            match from_history(&feed, cursor, &associates).await {
                Ok(Read::Changes(batch, next)) => {
                    cursor = next;
                    batch
                }
                Ok(Read::Reset) => {
                    cursor = ring_reached;
                    vec![reset(ring_reached)]
                }
                Err(error) => {
                    tracing::debug!(%error, "a stream could not read the history");
                    tokio::time::sleep(crate::changes::feed::LOOK_INTERVAL).await;
                    continue;
                }
            }
        } else {
            cursor = cursor.max(ring_reached);
            ready
        };
        for bytes in sent {
            if events.send(bytes).await.is_err() {
                return;
            }
        }
        if behind {
            continue;
        }
        if cursor >= *reached.borrow_and_update() {
            tokio::select! {
                changed = reached.changed() => if changed.is_err() { return },
                _ = closing.changed() => return,
                () = events.closed() => return,
                () = tokio::time::sleep(KEEP_ALIVE) => {
                    if events.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

enum Read {
    /// Events to send, and the revision they reach.
    Changes(Vec<Bytes>, i64),
    /// The cursor is older than the history keeps.
    Reset,
}

/// Changes after `cursor` read from the history, for a stream behind the ring.
async fn from_history(
    feed: &Feed,
    cursor: i64,
    associates: &[AssociateId],
) -> Result<Read, StoreError> {
    let page = feed
        .store()
        .history(HistoryQuery {
            after: Some(cursor),
            associate: match associates {
                [one] => Some(*one),
                _ => None,
            },
            since: None,
            limit: HISTORY_STEP,
        })
        .await?;
    if page.expired {
        return Ok(Read::Reset);
    }
    let batch = page
        .changes
        .iter()
        .filter(|c| associates.is_empty() || associates.binary_search(&c.associate_id).is_ok())
        .map(|change| Event::of(change, &feed.render(change)).bytes)
        .collect();
    Ok(Read::Changes(batch, page.reached))
}

/// Tells a client its cursor is older than the history keeps; it resumes after `latest`.
fn reset(latest: i64) -> Bytes {
    Bytes::from(format!(
        "id: {latest}\nevent: reset\ndata: {{\"reason\":\"The changes after your cursor are no longer kept\",\"next\":{latest}}}\n\n"
    ))
}

/// The response body: the events the stream's task sends, as they come.
struct EventBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|event| event.map(|bytes| Ok(Frame::data(bytes))))
    }
}
