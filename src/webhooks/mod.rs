//! Webhooks: every change the history shows, POSTed as its JSON to the URLs administrators
//! add, signed the Standard Webhooks way (`signature.rs`), to public addresses only unless
//! allowed (`target.rs`), one POST at a time (`send.rs`).
//!
//! The database decides who delivers what. Each node runs one [`Deliverer`]; every
//! [`LOOK_INTERVAL`] it asks, by a read that costs little, whether any webhook is behind and
//! due ([`Store::webhooks_due`]), and only then claims those, by a lease in the webhook's row
//! ([`Store::claim_webhooks`]). (It also looks whenever the node's change feed reads a new
//! change, but the feed reads only while a change stream is open on the node: mostly, a
//! change waits for the next look.) It delivers each webhook in a task of its own: the changes
//! after `delivered_through`, in revision order, one after another, in batches of up to
//! [`BATCH`]. After each batch it stores how far it got and renews the lease, in one
//! transaction that holds only while the lease is still its own and has not ended
//! ([`Store::store_webhook_progress`]). A POST starts only while the lease has
//! [`REQUEST_TIMEOUT`] left to run, by the node's own steady clock counted from before the
//! lease was taken, so that every POST ends before another node may take the webhook over;
//! on PostgreSQL the leases themselves go by the database's clock, which all nodes share. So:
//!
//! - a change is delivered at least once: `delivered_through` moves past it only after a 2xx
//!   (or once it is given up); a node that stops mid-batch, or loses its lease while a
//!   receiver is slow, has stored nothing of that batch, and whoever goes on sends it again,
//!   with the same `webhook-id` (`{webhookId}-{revision}`), which receivers deduplicate by;
//! - in order: a webhook is delivered by one task of one node at a time, and a change that
//!   fails stops its batch; the next attempt starts again at it;
//! - a restart resumes: the position is in the database, and a node that stops starts no
//!   more POSTs, waits for those in flight, stores how far they got, and only then gives up
//!   its leases ([`Deliverer::stop`]), so another (or the same, started again) goes on at
//!   once, after it; one that dies holds them until they end, [`LEASE`] at most.
//!
//! A change that fails is tried again after 0.5 s, 1 s, 2 s, ... (doubling, at most an hour
//! apart) until it has failed for a day ([`GIVE_UP_AFTER`]); then it is given up (recorded
//! as `gaveUp`) and the next change is tried. A receiver that is down for days thus misses
//! about one change a day, and gets the rest, in order, when it is back.

mod send;
pub mod signature;
pub mod target;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::clock::Clock;
use crate::domain::{AssociateId, Change};
use crate::metrics;
use crate::repeated;
use crate::store::{
    ClaimedWebhook, Delivery, DeliveryOutcome, HistoryQuery, MAX_WEBHOOKS, NewWebhook, Store,
    StoreError, WebhookClaim, WebhookProgress,
};

pub use self::send::{CONNECT_TIMEOUT, REQUEST_TIMEOUT};

/// How often a node looks for webhooks to deliver without a wake-up from the feed.
pub const LOOK_INTERVAL: Duration = Duration::from_millis(250);

/// How long a claim holds: renewed with every batch, which ends well within it (a batch
/// starts no request after [`BATCH_TIME`], and a request ends within [`REQUEST_TIMEOUT`]).
pub const LEASE: Duration = Duration::from_secs(30);

/// How long a stopping node waits for the POSTs in flight: one request's time, and a moment
/// to store how far they got. After it, its leases are left to end by themselves.
const STOP_TIMEOUT: Duration = REQUEST_TIMEOUT.saturating_add(Duration::from_secs(3));

/// How long a stopping node tries to give up its leases.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Changes delivered one after another before the progress is stored.
pub const BATCH: usize = 100;

/// A batch starts no delivery after this, so that its progress is stored often.
const BATCH_TIME: Duration = Duration::from_secs(1);

/// Webhooks one node delivers at once, each on a blocking thread while it sends.
const AT_ONCE: usize = 16;

/// The wait before the first retry of a change, doubled with each failure, up to
/// [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

/// How long a change is retried before it is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait after a change's `failures`th failure.
fn backoff(failures: i32) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    FIRST_WAIT.saturating_mul(1 << doublings).min(LONGEST_WAIT)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The `webhook-id` of a change sent to a webhook: the same for every attempt, on every node.
pub fn message_id(webhook_id: i64, revision: i64) -> String {
    format!("{webhook_id}-{revision}")
}

/// Associates one webhook's filter names at most.
pub const MAX_ASSOCIATES: usize = 1000;

/// Why a webhook cannot be added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadWebhook {
    #[error(transparent)]
    Url(#[from] target::BadUrl),
    #[error("associate ids are positive; {0} is not")]
    Associate(i64),
    #[error("the associates name none; leave them out for everyone's changes")]
    NoAssociates,
    #[error("a webhook names at most {MAX_ASSOCIATES} associates")]
    TooManyAssociates,
}

/// A webhook to add, checked, with a new key; and its secret as shown once (`whsec_...`).
/// The filter is kept sorted, each associate once.
pub fn new_webhook(
    url: &str,
    associates: Option<Vec<i64>>,
    at: i64,
) -> Result<(NewWebhook, String), BadWebhook> {
    target::check_url(url)?;
    let associates = associates
        .map(|ids| {
            if ids.is_empty() {
                return Err(BadWebhook::NoAssociates);
            }
            if ids.len() > MAX_ASSOCIATES {
                return Err(BadWebhook::TooManyAssociates);
            }
            let mut checked = ids
                .into_iter()
                .map(|id| {
                    i32::try_from(id)
                        .ok()
                        .filter(|id| *id > 0)
                        .map(AssociateId::new)
                        .ok_or(BadWebhook::Associate(id))
                })
                .collect::<Result<Vec<_>, _>>()?;
            checked.sort_unstable();
            checked.dedup();
            Ok(checked)
        })
        .transpose()?;
    let key = signature::new_key();
    let secret = signature::secret_text(&key);
    Ok((
        NewWebhook {
            url: url.to_owned(),
            secret: key,
            associates,
            at,
        },
        secret,
    ))
}

/// The node's deliveries; cheap to clone.
#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Clock,
    allow_private: bool,
    /// How a change is written (`http::presence::change_json`), as the feed writes it.
    render: fn(&Change) -> String,
    /// This node in the leases: random, new with every start.
    node: String,
    /// One client per webhook, kept so that its connection is used again.
    agents: Mutex<HashMap<i64, ureq::Agent>>,
    /// Each webhook this node delivers: revisions behind, and whether it is failing, for the
    /// metrics.
    state: Mutex<HashMap<i64, (i64, bool)>>,
    /// Set when the node stops: no POST starts after it, nor any claim.
    stopping: watch::Sender<bool>,
}

/// What a webhook's task does after a batch.
enum Next {
    More,
    Done,
}

impl Deliverer {
    pub fn new(
        store: Store,
        clock: Clock,
        allow_private: bool,
        render: fn(&Change) -> String,
    ) -> Self {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).expect("the operating system's random source failed");
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                allow_private,
                render,
                node: random.iter().map(|b| format!("{b:02x}")).collect(),
                agents: Mutex::default(),
                state: Mutex::default(),
                stopping: watch::Sender::new(false),
            }),
        }
    }

    /// Delivers until [`Deliverer::stop`], then waits for the webhooks' tasks to end. `changes`
    /// wakes it when the feed has read a new change. Dropping the task ends the webhooks'
    /// tasks too, but not a POST in flight on its blocking thread.
    pub async fn run(self, mut changes: watch::Receiver<i64>) {
        let mut interval = tokio::time::interval(LOOK_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = self.inner.stopping.subscribe();
        let mut running = JoinSet::new();
        let mut busy: HashMap<tokio::task::Id, i64> = HashMap::new();
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                Ok(()) = changes.changed() => {}
                Ok(()) = stopping.changed() => {}
                Some(done) = running.join_next_with_id() => {
                    busy.remove(&done.map_or_else(|e| e.id(), |(id, ())| id));
                }
            }
            if self.stopping() {
                break;
            }
            while let Some(done) = running.try_join_next_with_id() {
                busy.remove(&done.map_or_else(|e| e.id(), |(id, ())| id));
            }
            if running.len() >= AT_ONCE {
                continue;
            }
            match self
                .claim(busy.values().copied().collect(), AT_ONCE - running.len())
                .await
            {
                Ok((claimed, latest, lease_ends)) => {
                    for webhook in claimed {
                        let id = webhook.id;
                        let task = running.spawn(self.clone().deliver(webhook, latest, lease_ends));
                        busy.insert(task.id(), id);
                    }
                }
                Err(error) => repeated::WEBHOOKS_FAILED.report(|unlogged| {
                    tracing::warn!(%error, unlogged, "claiming webhooks failed; will try again");
                }),
            }
        }
        // Each ends after the POST it is making, having stored how far it got.
        while running.join_next().await.is_some() {}
    }

    /// Stops the deliveries: no POST starts after this; waits (up to [`STOP_TIMEOUT`]) for
    /// `run`, the task of [`Deliverer::run`], to end, the POSTs in flight with it; and only
    /// then gives up this node's leases, so that another node, or this one started again, goes
    /// on at once, after the last change this one sent. When the wait runs out, a POST may
    /// still be in flight: the leases are kept, and end by themselves.
    pub async fn stop(&self, mut run: JoinHandle<()>) {
        self.inner.stopping.send_replace(true);
        if tokio::time::timeout(STOP_TIMEOUT, &mut run).await.is_err() {
            run.abort();
            tracing::warn!(
                "a webhook's receiver is still answering; its lease ends by itself, \
                 and its delivery goes on then"
            );
            return;
        }
        let release = self.inner.store.release_webhooks(self.inner.node.clone());
        match tokio::time::timeout(RELEASE_TIMEOUT, release).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot give up the webhooks' leases; they end by themselves");
            }
            Err(_) => {
                tracing::warn!(
                    "giving up the webhooks' leases took too long; they end by themselves"
                );
            }
        }
    }

    fn stopping(&self) -> bool {
        *self.inner.stopping.borrow()
    }

    /// The webhooks claimed, the newest revision, and when their leases end by this node's
    /// steady clock: counted from before it asked, so never later than the database's.
    async fn claim(
        &self,
        busy: Vec<i64>,
        limit: usize,
    ) -> Result<(Vec<ClaimedWebhook>, i64, Instant), StoreError> {
        let store = &self.inner.store;
        let now = self.inner.clock.now_millis();
        // Numbering the changes for the newest revision costs PostgreSQL a lock and a write,
        // too much four times a second on every node when no webhook waits.
        if !store
            .webhooks_due(self.inner.node.clone(), now, busy.clone())
            .await?
        {
            return Ok((Vec::new(), 0, Instant::now()));
        }
        let latest = store.latest_revision().await?;
        let asked = Instant::now();
        let claimed = store
            .claim_webhooks(WebhookClaim {
                owner: self.inner.node.clone(),
                now: self.inner.clock.now_millis(),
                lease: LEASE,
                latest,
                busy,
                limit,
            })
            .await?;
        Ok((claimed, latest, asked + LEASE))
    }

    /// Delivers one webhook's changes until it is caught up, waits for a retry, is lost, or
    /// the node stops.
    async fn deliver(self, mut webhook: ClaimedWebhook, latest: i64, mut lease_ends: Instant) {
        loop {
            match self
                .deliver_batch(&mut webhook, latest, &mut lease_ends)
                .await
            {
                Ok(Next::More) if !self.stopping() => {}
                Ok(Next::More | Next::Done) => return,
                Err(error) => {
                    repeated::WEBHOOKS_FAILED.report(|unlogged| {
                        tracing::warn!(%error, unlogged, webhook = webhook.id,
                            "delivering a webhook failed; will try again");
                    });
                    return;
                }
            }
        }
    }

    async fn deliver_batch(
        &self,
        webhook: &mut ClaimedWebhook,
        latest: i64,
        lease_ends: &mut Instant,
    ) -> Result<Next, StoreError> {
        let store = &self.inner.store;
        let page = store
            .history(HistoryQuery {
                after: Some(webhook.delivered_through),
                limit: BATCH,
                ..HistoryQuery::default()
            })
            .await?;
        if page.expired {
            return self.skip_expired(webhook, lease_ends).await;
        }
        let wanted: Vec<(i64, String)> = page
            .changes
            .iter()
            .filter(|change| wants(webhook.associates.as_deref(), change.associate_id))
            .map(|change| (change.revision, (self.inner.render)(change)))
            .collect();
        let full = page.changes.len() >= BATCH;
        let mut progress = WebhookProgress {
            id: webhook.id,
            owner: self.inner.node.clone(),
            delivered_through: webhook.delivered_through,
            attempts: webhook.attempts,
            failing_since: webhook.failing_since,
            next_attempt_at: 0,
            now: 0,
            lease: LEASE,
            deliveries: Vec::new(),
        };
        let wanted_count = wanted.len();
        let attempts = self.send(webhook, wanted, *lease_ends).await?;
        let mut waiting = false;
        for (revision, at, attempt) in attempts.iter().map(|(r, a, t)| (*r, *a, t)) {
            let number = progress.attempts.saturating_add(1);
            let since = progress.failing_since.unwrap_or(at);
            let outcome = if attempt.delivered() {
                DeliveryOutcome::Delivered
            } else if at - since >= millis(GIVE_UP_AFTER) {
                DeliveryOutcome::GaveUp
            } else {
                DeliveryOutcome::Failed
            };
            if outcome == DeliveryOutcome::Failed {
                progress.delivered_through = revision - 1;
                progress.attempts = number;
                progress.failing_since = Some(since);
                progress.next_attempt_at = at + millis(backoff(number));
                waiting = true;
                repeated::WEBHOOK_ATTEMPT_FAILED.report(|unlogged| {
                    tracing::info!(
                        webhook = webhook.id,
                        revision,
                        error = attempt.error.as_deref().unwrap_or(""),
                        unlogged,
                        "a webhook delivery failed; it will be tried again"
                    );
                });
            } else {
                progress.delivered_through = revision;
                progress.attempts = 0;
                progress.failing_since = None;
            }
            metrics::webhook_attempt(outcome.name());
            progress.deliveries.push(Delivery {
                revision,
                attempt: number,
                at,
                outcome,
                status: attempt.status,
                error: attempt.error.clone(),
            });
        }
        let whole_page = !waiting && attempts.len() == wanted_count;
        if whole_page {
            // Past the changes the filter left out after the last one sent, too.
            progress.delivered_through = page.reached.max(progress.delivered_through);
        }
        progress.now = self.inner.clock.now_millis();
        let (through, attempts_now, failing_since) = (
            progress.delivered_through,
            progress.attempts,
            progress.failing_since,
        );
        let asked = Instant::now();
        if !store.store_webhook_progress(progress).await? {
            // Removed, or the lease ended (another node may hold it now): it goes on from
            // what was stored.
            self.forget(webhook.id);
            return Ok(Next::Done);
        }
        *lease_ends = asked + LEASE;
        webhook.delivered_through = through;
        webhook.attempts = attempts_now;
        webhook.failing_since = failing_since;
        self.note(webhook.id, latest.max(page.reached) - through, waiting);
        Ok(if waiting || (whole_page && !full) {
            Next::Done
        } else {
            Next::More
        })
    }

    /// POSTs the changes one after another on a blocking thread, until one fails, the
    /// batch's time is up, the lease would end before another POST could, or the node stops:
    /// each with the moment it was made and what came of it.
    async fn send(
        &self,
        webhook: &ClaimedWebhook,
        changes: Vec<(i64, String)>,
        lease_ends: Instant,
    ) -> Result<Vec<(i64, i64, send::Attempt)>, StoreError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let agent = self.agent(webhook.id);
        let (id, url, key) = (webhook.id, webhook.url.clone(), webhook.secret.clone());
        let clock = self.inner.clock.clone();
        let deliverer = self.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut attempts = Vec::with_capacity(changes.len());
            for (revision, body) in changes {
                if started.elapsed() > BATCH_TIME
                    || !may_start(Instant::now(), lease_ends)
                    || deliverer.stopping()
                {
                    break;
                }
                let at = clock.now_millis();
                let message = message_id(id, revision);
                let timestamp = at.div_euclid(1000);
                let signature = signature::sign(&key, &message, timestamp, body.as_bytes());
                let signed = send::Signed {
                    id: &message,
                    timestamp,
                    signature: &signature,
                };
                let attempt = send::post(&agent, &url, &signed, body.as_bytes());
                let delivered = attempt.delivered();
                attempts.push((revision, at, attempt));
                if !delivered {
                    break;
                }
            }
            attempts
        })
        .await
        .map_err(|_| StoreError::TaskFailed)
    }

    /// The history no longer holds the changes after the webhook's position: it goes on
    /// from the oldest kept, and the gap is recorded.
    async fn skip_expired(
        &self,
        webhook: &mut ClaimedWebhook,
        lease_ends: &mut Instant,
    ) -> Result<Next, StoreError> {
        let oldest = self
            .inner
            .store
            .history(HistoryQuery {
                limit: 1,
                ..HistoryQuery::default()
            })
            .await?;
        let through = oldest
            .changes
            .first()
            .map_or(oldest.reached, |change| change.revision - 1)
            .max(webhook.delivered_through);
        let now = self.inner.clock.now_millis();
        let progress = WebhookProgress {
            id: webhook.id,
            owner: self.inner.node.clone(),
            delivered_through: through,
            attempts: 0,
            failing_since: None,
            next_attempt_at: 0,
            now,
            lease: LEASE,
            deliveries: vec![Delivery {
                revision: through + 1,
                attempt: 1,
                at: now,
                outcome: DeliveryOutcome::Expired,
                status: None,
                error: Some(format!(
                    "the history no longer holds the changes after revision {}: skipped",
                    webhook.delivered_through
                )),
            }],
        };
        metrics::webhook_attempt(DeliveryOutcome::Expired.name());
        let asked = Instant::now();
        if !self.inner.store.store_webhook_progress(progress).await? {
            return Ok(Next::Done);
        }
        *lease_ends = asked + LEASE;
        webhook.delivered_through = through;
        webhook.attempts = 0;
        webhook.failing_since = None;
        Ok(Next::More)
    }

    fn agent(&self, webhook: i64) -> ureq::Agent {
        let mut agents = self
            .inner
            .agents
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Removed webhooks leave theirs behind; past the bound, all go and are made anew.
        if agents.len() >= 2 * MAX_WEBHOOKS {
            agents.clear();
        }
        agents
            .entry(webhook)
            .or_insert_with(|| send::agent(self.inner.allow_private))
            .clone()
    }

    /// Records a webhook's state for the metrics.
    fn note(&self, webhook: i64, backlog: i64, failing: bool) {
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.insert(webhook, (backlog.max(0), failing));
        if state.len() > 2 * MAX_WEBHOOKS {
            state.clear();
        }
        publish(&state);
    }

    fn forget(&self, webhook: i64) {
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.remove(&webhook);
        publish(&state);
        self.inner
            .agents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&webhook);
    }
}

fn publish(state: &HashMap<i64, (i64, bool)>) {
    let backlog = state.values().map(|(behind, _)| *behind).sum();
    let failing = state.values().filter(|(_, failing)| *failing).count();
    metrics::webhook_state(backlog, i64::try_from(failing).unwrap_or(i64::MAX));
}

/// Whether a POST started at `now` ends, [`REQUEST_TIMEOUT`] at most later, while the lease
/// still holds.
fn may_start(now: Instant, lease_ends: Instant) -> bool {
    now + REQUEST_TIMEOUT < lease_ends
}

/// Whether a webhook with this filter gets a change of `associate`.
fn wants(associates: Option<&[AssociateId]>, associate: AssociateId) -> bool {
    associates.is_none_or(|ids| ids.contains(&associate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(14), Duration::from_secs(3600));
        assert_eq!(backoff(i32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn no_post_starts_that_could_outlast_the_lease() {
        let now = Instant::now();
        assert!(may_start(now, now + LEASE));
        assert!(may_start(
            now,
            now + REQUEST_TIMEOUT + Duration::from_millis(1)
        ));
        assert!(!may_start(now, now + REQUEST_TIMEOUT));
        assert!(!may_start(now + LEASE, now + LEASE));
    }

    #[test]
    fn a_filter_lets_through_its_associates_and_none_lets_through_all() {
        let (one, two) = (AssociateId::new(1), AssociateId::new(2));
        assert!(wants(None, one));
        assert!(wants(Some(&[one]), one));
        assert!(!wants(Some(&[one]), two));
    }
}
