//! `GET /presence/v1/changes/stream`: every change as a Server-Sent Event, in revision order,
//! resumable after `Last-Event-ID` (or `?after=`) with nothing lost and nothing repeated,
//! optionally for some associates only (`?associate=1,2`), with a comment every
//! [`KEEP_ALIVE`] so that proxies keep it open, and `event: reset` when the cursor is older
//! than the history keeps (the stream then goes on from the newest change). A stream from now
//! starts with its position, an `id:` line alone.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use hyper::body::Frame;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::as_caller;
use super::changes::{associate, revision};
use super::query::Query;
use super::wire::invalid;
use crate::changes::feed::{Event, Feed, OpenStream};
use crate::domain::AssociateId;
use crate::http::connection::Streaming;
use crate::http::error::{ApiError, Unavailability};
use crate::http::state::AppState;
use crate::store::{HistoryQuery, StoreError};

/// How often an idle stream sends a comment line.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How long a stream lasts: then it ends, and the client (as `EventSource` does by itself)
/// connects again after its last id, with its credentials checked again: a user removed or a
/// token revoked meanwhile stops receiving changes.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// Associates one stream may filter by at most.
const MAX_ASSOCIATES: usize = 1000;

/// Changes read from the history at a time by a stream behind the feed's ring.
const HISTORY_STEP: usize = 500;

#[utoipa::path(get, path = "/presence/v1/changes/stream", tag = "presence", operation_id = "changeStream",
    params(("after" = Option<i64>, Query, minimum = 0, description = "Changes numbered after this revision; `Last-Event-ID` takes precedence; none: from now"),
        ("associate" = Option<String>, Query, description = "Comma-separated associate ids: their changes only")),
    responses((status = 200, description = "`text/event-stream`: `id:` the revision, `event: change`, `data:` the change as `/presence/v1/changes` gives it. A stream from now starts with its position, an `id:` line alone (no event); `event: reset` when the cursor is older than what is kept"),
        super::openapi::Refusals))]
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
        // Counted as open before the reader is woken, which reads only while a stream is.
        let limit = state.settings().limits.streams_allowed();
        let open = feed
            .open_stream(limit)
            .ok_or(ApiError::Unavailable(Unavailability::Busy))?;
        let mut body = EventBody::new(feed.clone(), cursor, associates, open);
        if after.is_none() {
            body.ready.push_back(position(cursor));
        }
        feed.wake();
        let mut response = Response::new(axum::body::Body::new(body));
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

/// A page of the history, as a stream behind the ring reads it.
type Reading = Result<Read, StoreError>;

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

/// Tells a client that started from now where it starts: an `id:` without data is no event,
/// but `EventSource` (and any client that follows the format) takes it as its last id, so that
/// a connection lost before the first change resumes from here rather than from a later now.
fn position(cursor: i64) -> Bytes {
    Bytes::from(format!("id: {cursor}\n\n"))
}

/// Tells a client its cursor is older than the history keeps; it resumes after `latest`.
fn reset(latest: i64) -> Bytes {
    Bytes::from(format!(
        "id: {latest}\nevent: reset\ndata: {{\"reason\":\"The changes after your cursor are no longer kept\",\"next\":{latest}}}\n\n"
    ))
}

/// The response body, polled by the connection itself: no task or queue of its own per
/// stream, so that a change reaching ten thousand streams costs ten thousand polls and writes,
/// and little more.
///
/// Each poll answers, in turn: the next event gathered already; the end, once the server shuts
/// down; the history's next page, while the stream is behind the feed's ring; what the ring
/// holds after the cursor (through the filter); a keep-alive comment once the stream has been
/// silent for [`KEEP_ALIVE`]; else it waits for the ring to grow.
struct EventBody {
    feed: Feed,
    /// The newest revision the stream has passed on (or skipped, through its filter).
    cursor: i64,
    /// Sorted; empty for every associate.
    associates: Vec<AssociateId>,
    /// Events gathered and not yet sent.
    ready: VecDeque<Bytes>,
    reached: watch::Receiver<i64>,
    closing: watch::Receiver<bool>,
    /// Counts the stream as open while it is.
    _open: OpenStream,
    /// When the stream ends, for the client to connect again (and be authenticated again).
    ends_at: Instant,
    /// A page of the history being read, while the stream is behind the ring.
    reading: Option<Pin<Box<dyn Future<Output = Reading> + Send>>>,
    /// The wait for the ring to grow (or the server to shut down).
    waiting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// When the last bytes were sent; the keep-alive timer is moved on from it only when it
    /// fires, not at every event.
    last_sent: Instant,
    keep_alive: Pin<Box<Sleep>>,
}

impl EventBody {
    fn new(feed: Feed, cursor: i64, associates: Vec<AssociateId>, open: OpenStream) -> Self {
        let reached = feed.watch();
        let closing = feed.closing();
        let now = Instant::now();
        Self {
            _open: open,
            ends_at: now + MAX_LIFETIME,
            feed,
            cursor,
            associates,
            ready: VecDeque::new(),
            reached,
            closing,
            reading: None,
            waiting: None,
            last_sent: now,
            keep_alive: Box::pin(tokio::time::sleep_until(now + KEEP_ALIVE)),
        }
    }

    /// Gathers what the ring holds after the cursor; false when the stream is behind the ring
    /// (or the ring has not started).
    fn gather_from_ring(&mut self) -> bool {
        let ring = self.feed.ring();
        let reached = ring.reached();
        if reached < 0 || !ring.covers(self.cursor) {
            return false;
        }
        let associates = &self.associates;
        self.ready.extend(
            ring.after(self.cursor)
                .filter(|e| {
                    associates.is_empty() || associates.binary_search(&e.associate_id).is_ok()
                })
                .map(|e| e.bytes.clone()),
        );
        self.cursor = self.cursor.max(reached);
        true
    }

    fn send(&mut self, bytes: Bytes) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.last_sent = Instant::now();
        Poll::Ready(Some(Ok(Frame::data(bytes))))
    }
}

impl hyper::body::Body for EventBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if *this.closing.borrow() || this.last_sent >= this.ends_at {
                return Poll::Ready(None);
            }
            if let Some(bytes) = this.ready.pop_front() {
                return this.send(bytes);
            }
            if let Some(reading) = &mut this.reading {
                let read = ready!(reading.as_mut().poll(cx));
                this.reading = None;
                match read {
                    Ok(Read::Changes(batch, next)) => {
                        this.ready.extend(batch);
                        this.cursor = next;
                    }
                    Ok(Read::Reset) => {
                        let newest = this.feed.ring().reached();
                        this.cursor = newest;
                        this.ready.push_back(reset(newest));
                    }
                    Err(error) => {
                        tracing::debug!(%error, "a stream could not read the history");
                        // Tried again once the ring next grows.
                        this.waiting = Some(wait_for_change(this));
                    }
                }
                continue;
            }
            if this.waiting.is_none() {
                let seen = *this.reached.borrow_and_update();
                if this.gather_from_ring() {
                    if !this.ready.is_empty() {
                        continue;
                    }
                } else if seen >= 0 {
                    let (feed, cursor) = (this.feed.clone(), this.cursor);
                    let associates = this.associates.clone();
                    this.reading = Some(Box::pin(async move {
                        from_history(&feed, cursor, &associates).await
                    }));
                    continue;
                }
                this.waiting = Some(wait_for_change(this));
            }
            if let Some(waiting) = &mut this.waiting
                && waiting.as_mut().poll(cx).is_ready()
            {
                this.waiting = None;
                continue;
            }
            if this.keep_alive.as_mut().poll(cx).is_ready() {
                let (due, now) = (this.last_sent + KEEP_ALIVE, Instant::now());
                if now >= due {
                    this.keep_alive.as_mut().reset(now + KEEP_ALIVE);
                    return this.send(Bytes::from_static(b": keep-alive\n\n"));
                }
                this.keep_alive.as_mut().reset(due);
                continue;
            }
            return Poll::Pending;
        }
    }
}

/// Resolves when the ring next grows or the server shuts down.
fn wait_for_change(body: &EventBody) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    let (mut reached, mut closing) = (body.reached.clone(), body.closing.clone());
    Box::pin(async move {
        tokio::select! {
            _ = reached.changed() => {}
            _ = closing.changed() => {}
        }
    })
}
