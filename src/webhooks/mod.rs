//! Webhooks: every change the history shows, POSTed as its JSON to the URLs administrators
//! add, signed the Standard Webhooks way (`signature.rs`), to public addresses only unless
//! allowed (`target.rs`), one POST at a time (`send.rs`).
//!
//! The database decides who delivers what. Each node runs one [`Deliverer`]; every
//! [`LOOK_INTERVAL`], and whenever the change feed reads a new change, it claims the webhooks
//! that are behind and due, by a lease in the webhook's row ([`Store::claim_webhooks`]), and
//! delivers each in a task of its own: the changes after `delivered_through`, in revision
//! order, one after another, in batches of up to [`BATCH`]. After each batch it stores how
//! far it got and renews the lease, in one transaction that holds only while the lease is
//! still its own ([`Store::store_webhook_progress`]). So:
//!
//! - a change is delivered at least once: `delivered_through` moves past it only after a 2xx
//!   (or once it is given up); a node that stops mid-batch, or loses its lease while a
//!   receiver is slow, has stored nothing of that batch, and whoever goes on sends it again,
//!   with the same `webhook-id` (`{webhookId}-{revision}`), which receivers deduplicate by;
//! - in order: a webhook is delivered by one task of one node at a time, and a change that
//!   fails stops its batch; the next attempt starts again at it;
//! - a restart resumes: the position is in the database, and a node that stops gives up its
//!   leases ([`Deliverer::release`]), so another (or the same, started again) goes on at once;
//!   one that dies holds them until they end, [`LEASE`] at most.
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
use tokio::task::JoinSet;

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
            }),
        }
    }

    /// Delivers until the task is dropped, which ends the webhooks' tasks too. `changes`
    /// wakes it when the feed has read a new change.
    pub async fn run(self, mut changes: watch::Receiver<i64>) {
        let mut interval = tokio::time::interval(LOOK_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut running = JoinSet::new();
        let mut busy: HashMap<tokio::task::Id, i64> = HashMap::new();
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                Ok(()) = changes.changed() => {}
                Some(done) = running.join_next_with_id() => {
                    busy.remove(&done.map_or_else(|e| e.id(), |(id, ())| id));
                }
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
                Ok((claimed, latest)) => {
                    for webhook in claimed {
                        let id = webhook.id;
                        let task = running.spawn(self.clone().deliver(webhook, latest));
                        busy.insert(task.id(), id);
                    }
                }
                Err(error) => repeated::WEBHOOKS_FAILED.report(|unlogged| {
                    tracing::warn!(%error, unlogged, "claiming webhooks failed; will try again");
                }),
            }
        }
    }

    /// Gives up this node's leases, so that another node, or this one started again, goes on
    /// at once: called when the server stops, after [`Deliverer::run`] has been dropped.
    pub async fn release(&self) {
        if let Err(error) = self
            .inner
            .store
            .release_webhooks(self.inner.node.clone())
            .await
        {
            tracing::warn!(%error, "cannot give up the webhooks' leases; they end by themselves");
        }
    }

    async fn claim(
        &self,
        busy: Vec<i64>,
        limit: usize,
    ) -> Result<(Vec<ClaimedWebhook>, i64), StoreError> {
        let latest = self.inner.store.latest_revision().await?;
        let now = self.inner.clock.now_millis();
        let claimed = self
            .inner
            .store
            .claim_webhooks(WebhookClaim {
                owner: self.inner.node.clone(),
                now,
                lease_until: now + millis(LEASE),
                latest,
                busy,
                limit,
            })
            .await?;
        Ok((claimed, latest))
    }

    /// Delivers one webhook's changes until it is caught up, waits for a retry, or is lost.
    async fn deliver(self, mut webhook: ClaimedWebhook, latest: i64) {
        loop {
            match self.deliver_batch(&mut webhook, latest).await {
                Ok(Next::More) => {}
                Ok(Next::Done) => return,
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
            return self.skip_expired(webhook).await;
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
            lease_until: 0,
            deliveries: Vec::new(),
        };
        let wanted_count = wanted.len();
        let attempts = self.send(webhook, wanted).await?;
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
        let now = self.inner.clock.now_millis();
        progress.lease_until = now + millis(LEASE);
        let (through, attempts_now, failing_since) = (
            progress.delivered_through,
            progress.attempts,
            progress.failing_since,
        );
        if !store.store_webhook_progress(progress).await? {
            // Removed, or another node holds it now: it goes on from what was stored.
            self.forget(webhook.id);
            return Ok(Next::Done);
        }
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

    /// POSTs the changes one after another on a blocking thread, until one fails or the
    /// batch's time is up: each with the moment it was made and what came of it.
    async fn send(
        &self,
        webhook: &ClaimedWebhook,
        changes: Vec<(i64, String)>,
    ) -> Result<Vec<(i64, i64, send::Attempt)>, StoreError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let agent = self.agent(webhook.id);
        let (id, url, key) = (webhook.id, webhook.url.clone(), webhook.secret.clone());
        let clock = self.inner.clock.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut attempts = Vec::with_capacity(changes.len());
            for (revision, body) in changes {
                if started.elapsed() > BATCH_TIME {
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
    async fn skip_expired(&self, webhook: &mut ClaimedWebhook) -> Result<Next, StoreError> {
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
            lease_until: now + millis(LEASE),
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
        if !self.inner.store.store_webhook_progress(progress).await? {
            return Ok(Next::Done);
        }
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
    fn a_filter_lets_through_its_associates_and_none_lets_through_all() {
        let (one, two) = (AssociateId::new(1), AssociateId::new(2));
        assert!(wants(None, one));
        assert!(wants(Some(&[one]), one));
        assert!(!wants(Some(&[one]), two));
    }
}
