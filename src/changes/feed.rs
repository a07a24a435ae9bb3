//! The change feed: one task per node reads new changes from the change log, in revision
//! order, into a bounded ring of events ready to send, and wakes every open stream; each
//! stream sends what its filter lets through from the ring, or, when it is further behind than
//! the ring reaches, from the history itself.
//!
//! The change log is the truth and everything else a wake-up: a Set on this node wakes the
//! reader at once, PostgreSQL's `NOTIFY` from other nodes does too (`listen.rs`), and it
//! looks anyway every [`LOOK_INTERVAL`], so a lost wake-up delays a change and never loses it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, watch};

use crate::domain::{AssociateId, Change};
use crate::repeated;
use crate::store::{HistoryQuery, Store};

/// How often the reader looks at the change log without a wake-up: what a change committed by
/// another process (the command line, a node whose notification was lost) may wait at most.
pub const LOOK_INTERVAL: Duration = Duration::from_millis(500);

/// Events the ring keeps at most, and their bytes: a stream further behind reads the history.
const RING_EVENTS: usize = 16_384;
const RING_BYTES: usize = 8 * 1024 * 1024;

/// Changes the reader reads from the log at a time.
const READ_STEP: usize = 1000;

/// One change, ready to send.
#[derive(Clone, Debug)]
pub struct Event {
    pub revision: i64,
    pub associate_id: AssociateId,
    /// `id: 4712\nevent: change\ndata: {...}\n\n`, shared by every stream that sends it.
    pub bytes: Bytes,
}

impl Event {
    pub fn of(change: &Change, json: &str) -> Self {
        Self {
            revision: change.revision,
            associate_id: change.associate_id,
            bytes: Bytes::from(format!(
                "id: {}\nevent: change\ndata: {json}\n\n",
                change.revision
            )),
        }
    }
}

/// The newest changes, contiguous: every change after `after` up to the newest read.
pub struct Ring {
    events: VecDeque<Event>,
    bytes: usize,
    /// The ring holds every change numbered after this revision.
    after: i64,
    /// The newest revision read: the ring holds every change up to it.
    reached: i64,
}

impl Default for Ring {
    /// Not started: `reached` is -1 until the reader starts it at the newest change.
    fn default() -> Self {
        Self {
            events: VecDeque::new(),
            bytes: 0,
            after: -1,
            reached: -1,
        }
    }
}

impl Ring {
    /// Whether a stream that has seen up to `cursor` can go on from the ring.
    pub fn covers(&self, cursor: i64) -> bool {
        cursor >= self.after
    }

    /// The events after `cursor`, oldest first.
    pub fn after(&self, cursor: i64) -> impl Iterator<Item = &Event> {
        let start = self.events.partition_point(|e| e.revision <= cursor);
        self.events.range(start..)
    }

    pub fn reached(&self) -> i64 {
        self.reached
    }

    fn push(&mut self, event: Event) {
        self.bytes += event.bytes.len();
        self.events.push_back(event);
        while self.events.len() > RING_EVENTS || self.bytes > RING_BYTES {
            let Some(oldest) = self.events.pop_front() else {
                break;
            };
            self.bytes -= oldest.bytes.len();
            self.after = oldest.revision;
        }
    }

    /// Starts afresh after `revision`: what came before is for the history to answer.
    fn restart(&mut self, revision: i64) {
        self.events.clear();
        self.bytes = 0;
        self.after = revision;
        self.reached = revision;
    }
}

/// A stream counted as open ([`Feed::open_stream`]).
pub struct OpenStream(Arc<Inner>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The node's feed; cheap to clone.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    ring: RwLock<Ring>,
    /// Wakes the reader.
    wake: Notify,
    /// Tells the other nodes (PostgreSQL's `NOTIFY`) that this one made changes.
    changed_here: Notify,
    /// The newest revision in the ring, for streams to wait on.
    reached: watch::Sender<i64>,
    /// Set when the server shuts down: streams end.
    closed: watch::Sender<bool>,
    /// Streams open now.
    streams: AtomicUsize,
    /// How the change JSON is written (`http::presence::changes::change_json`).
    render: fn(&Change) -> String,
}

impl Feed {
    pub fn new(store: Store, render: fn(&Change) -> String) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                ring: RwLock::new(Ring::default()),
                wake: Notify::new(),
                changed_here: Notify::new(),
                reached: watch::channel(-1).0,
                closed: watch::channel(false).0,
                streams: AtomicUsize::new(0),
                render,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn render(&self, change: &Change) -> String {
        (self.inner.render)(change)
    }

    /// Tells the reader the log may have grown.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// After a change committed on this node: wakes the reader, and the other nodes' readers.
    pub fn changed_here(&self) {
        self.wake();
        self.inner.changed_here.notify_one();
    }

    pub fn ring(&self) -> RwLockReadGuard<'_, Ring> {
        self.inner
            .ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes as the ring reaches them (`-1` until the reader has started).
    pub fn watch(&self) -> watch::Receiver<i64> {
        self.inner.reached.subscribe()
    }

    /// Counts a stream as open until the guard is dropped (the reader reads only while one
    /// is), unless `limit` are open already.
    pub fn open_stream(&self, limit: usize) -> Option<OpenStream> {
        self.inner
            .streams
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |open| {
                (open < limit).then_some(open + 1)
            })
            .ok()?;
        Some(OpenStream(self.inner.clone()))
    }

    /// Whether the server is shutting down, as a receiver streams wait on.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    /// Ends every stream: the server is shutting down.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Streams open now, for the metrics.
    pub fn streams(&self) -> usize {
        self.inner.streams.load(Ordering::Relaxed)
    }

    /// Reads the change log into the ring until the task is dropped, while any stream is
    /// open: with none, it reads nothing (the Sets of a node nobody streams from pay nothing
    /// for the feed), and the first stream to open starts the ring afresh at the newest change.
    pub async fn run(self) {
        // Ends with this task: the listening connection is the feed's.
        let _listening = self
            .inner
            .store
            .notifies_changes()
            .then(|| AbortOnDrop(tokio::spawn(self.clone().listen())));
        let mut started = false;
        loop {
            if self.streams() == 0 {
                started = false;
                self.inner.wake.notified().await;
                continue;
            }
            if !started {
                match self.inner.store.latest_revision().await {
                    Ok(latest) => {
                        self.restart(latest);
                        started = true;
                    }
                    Err(error) => {
                        repeated::FEED_FAILED.report(|unlogged| {
                            tracing::warn!(%error, unlogged, "the change feed cannot start; will try again");
                        });
                        tokio::time::sleep(LOOK_INTERVAL).await;
                        continue;
                    }
                }
            }
            if let Err(error) = self.read_new().await {
                repeated::FEED_FAILED.report(|unlogged| {
                    tracing::warn!(%error, unlogged, "reading the change log failed; will try again");
                });
            }
            let _ = tokio::time::timeout(LOOK_INTERVAL, self.inner.wake.notified()).await;
        }
    }

    /// Wakes the reader whenever the database tells of a change committed by any node
    /// (PostgreSQL's `LISTEN`), reconnecting after a failure.
    async fn listen(self) {
        loop {
            let feed = self.clone();
            let ended = self
                .inner
                .store
                .listen_for_changes(move || feed.wake(), &self.inner.changed_here)
                .await;
            if let Err(error) = ended {
                repeated::FEED_FAILED.report(|unlogged| {
                    tracing::warn!(%error, unlogged, "listening for changes failed; will try again");
                });
            }
            // A change committed meanwhile is found by the reader's own look.
            self.wake();
            tokio::time::sleep(LOOK_INTERVAL).await;
        }
    }

    /// Reads every change after the ring's newest into it.
    async fn read_new(&self) -> Result<(), crate::store::StoreError> {
        loop {
            let reached = self.ring().reached();
            let page = self
                .inner
                .store
                .history(HistoryQuery {
                    after: Some(reached),
                    limit: READ_STEP,
                    ..HistoryQuery::default()
                })
                .await?;
            if page.expired || page.reached < reached {
                // Trimmed past the ring's end, or revisions went back (a database restored
                // from a backup): the ring starts again at the newest change, and streams
                // behind it get `event: reset` from the history.
                let latest = self.inner.store.latest_revision().await?;
                self.restart(latest);
                return Ok(());
            }
            // Written before the lock is taken: streams read the ring meanwhile.
            let events: Vec<Event> = page
                .changes
                .iter()
                .map(|change| Event::of(change, &self.render(change)))
                .collect();
            let now = {
                let mut ring = self
                    .inner
                    .ring
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                for event in events {
                    ring.push(event);
                }
                ring.reached = page.reached.max(reached);
                ring.reached
            };
            if now != reached {
                self.inner.reached.send_replace(now);
            }
            if page.changes.len() < READ_STEP {
                return Ok(());
            }
        }
    }

    fn restart(&self, latest: i64) {
        self.inner
            .ring
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .restart(latest);
        self.inner.reached.send_replace(latest);
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(revision: i64, bytes: usize) -> Event {
        Event {
            revision,
            associate_id: AssociateId::new(1),
            bytes: Bytes::from(vec![b'x'; bytes]),
        }
    }

    #[test]
    fn the_ring_answers_what_follows_a_cursor_and_forgets_its_oldest_past_its_bounds() {
        let mut ring = Ring::default();
        ring.restart(10);
        for revision in [11, 13, 14] {
            ring.push(event(revision, 10));
        }
        let after =
            |ring: &Ring, cursor| ring.after(cursor).map(|e| e.revision).collect::<Vec<_>>();
        assert_eq!(after(&ring, 10), [11, 13, 14]);
        assert_eq!(after(&ring, 12), [13, 14]);
        assert_eq!(after(&ring, 14), Vec::<i64>::new());
        assert!(ring.covers(10));
        assert!(!ring.covers(9));
        // Past the bytes bound, the oldest go, and the ring covers only what follows them.
        ring.push(event(15, RING_BYTES));
        assert_eq!(after(&ring, 0), [15]);
        assert!(!ring.covers(13));
        assert!(ring.covers(14));
    }
}
