//! Webhooks as stored: the receivers administrators add, how far each has been delivered,
//! which node delivers it (a lease), and its latest attempts. What is sent and when is
//! `crate::webhooks`'s concern; this is what both backends keep for it.

use std::fmt;
use std::time::Duration;

use super::{Store, StoreError, on_backend};
use crate::domain::AssociateId;

/// Webhooks a database holds at most: each costs every node a delivery task while it has
/// changes to send, and a lease to renew.
pub const MAX_WEBHOOKS: usize = 100;

/// Attempts kept per webhook for `webhook deliveries`; older ones are deleted as new ones come.
pub const KEPT_DELIVERIES: i64 = 100;

/// A webhook to add; the caller has checked its URL's form.
#[derive(Clone)]
pub struct NewWebhook {
    pub url: String,
    /// The signing key's bytes.
    pub secret: Vec<u8>,
    /// Only these associates' changes; `None`: everyone's.
    pub associates: Option<Vec<AssociateId>>,
    /// Now (Unix milliseconds).
    pub at: i64,
}

/// Without the key, so that a log line or a panic cannot show it.
impl fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewWebhook")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("associates", &self.associates)
            .field("at", &self.at)
            .finish()
    }
}

/// A webhook as an administrator sees it: everything but its secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub associates: Option<Vec<AssociateId>>,
    pub created_at: i64,
    /// Every change up to this revision was delivered, filtered out or given up.
    pub delivered_through: i64,
    /// Failed attempts at the change after `delivered_through`.
    pub attempts: i32,
    /// When the first of them was made (Unix milliseconds); `None` while none failed.
    pub failing_since: Option<i64>,
    /// When the next attempt may be made (Unix milliseconds).
    pub next_attempt_at: i64,
}

/// What [`Store::add_webhook`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookAdded {
    Added(Webhook),
    /// [`MAX_WEBHOOKS`] exist already; nothing was stored.
    TooMany,
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Anything else; the change is tried again later.
    Failed,
    /// It failed, and the change had been failing for a day: it is skipped.
    GaveUp,
    /// The history no longer held the changes after `delivered_through` (past its
    /// retention): they are skipped. `revision` is the first one that could be read again.
    Expired,
}

impl DeliveryOutcome {
    pub fn name(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::GaveUp => "gaveUp",
            Self::Expired => "expired",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Delivered, Self::Failed, Self::GaveUp, Self::Expired]
            .into_iter()
            .find(|outcome| outcome.name() == name)
    }
}

/// One attempt to deliver one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub revision: i64,
    /// 1 for the change's first attempt.
    pub attempt: i32,
    /// When it was made (Unix milliseconds).
    pub at: i64,
    pub outcome: DeliveryOutcome,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// What went wrong, when something did (never the receiver's body).
    pub error: Option<String>,
}

/// What a node asks for when it looks for webhooks to deliver.
#[derive(Clone, Debug)]
pub struct WebhookClaim {
    /// The node, as the lease names it.
    pub owner: String,
    /// The node's time (Unix milliseconds): whether a webhook's next attempt is due. On
    /// SQLite also the leases' time; PostgreSQL's leases go by the database's clock, so that
    /// a node whose clock runs ahead cannot take a lease another node still holds.
    pub now: i64,
    /// How long the lease holds.
    pub lease: Duration,
    /// The newest revision: only webhooks behind it are claimed.
    pub latest: i64,
    /// Webhooks this node is delivering already, left out.
    pub busy: Vec<i64>,
    pub limit: usize,
}

/// A webhook a node now holds the lease of, with what it needs to deliver it.
#[derive(Clone)]
pub struct ClaimedWebhook {
    pub id: i64,
    pub url: String,
    pub secret: Vec<u8>,
    pub associates: Option<Vec<AssociateId>>,
    pub delivered_through: i64,
    pub attempts: i32,
    pub failing_since: Option<i64>,
}

/// Without the key, so that a log line or a panic cannot show it.
impl fmt::Debug for ClaimedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimedWebhook")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("associates", &self.associates)
            .field("delivered_through", &self.delivered_through)
            .field("attempts", &self.attempts)
            .field("failing_since", &self.failing_since)
            .finish()
    }
}

/// How far a node got with a webhook, stored only while it still holds the lease.
#[derive(Clone, Debug)]
pub struct WebhookProgress {
    pub id: i64,
    pub owner: String,
    pub delivered_through: i64,
    pub attempts: i32,
    pub failing_since: Option<i64>,
    pub next_attempt_at: i64,
    /// The node's time (Unix milliseconds), for the lease on SQLite (as in [`WebhookClaim`]).
    pub now: i64,
    /// The lease renewed for this long.
    pub lease: Duration,
    /// The attempts made, oldest first.
    pub deliveries: Vec<Delivery>,
}

/// Webhooks.
impl Store {
    /// Adds a webhook that gets the changes made from now on: it starts at the newest
    /// revision.
    pub async fn add_webhook(&self, webhook: NewWebhook) -> Result<WebhookAdded, StoreError> {
        let latest = self.latest_revision().await?;
        on_backend!(self, add_webhook(webhook, latest))
    }

    /// Every webhook, by id.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        on_backend!(self, list_webhooks())
    }

    /// Removes a webhook and its attempts; says whether there was one of that id. A delivery
    /// in flight may still arrive.
    pub async fn remove_webhook(&self, id: i64) -> Result<bool, StoreError> {
        on_backend!(self, remove_webhook(id))
    }

    /// A webhook's latest attempts, newest first (at most [`KEPT_DELIVERIES`]); `None` when
    /// there is no webhook of that id.
    pub async fn webhook_deliveries(&self, id: i64) -> Result<Option<Vec<Delivery>>, StoreError> {
        on_backend!(self, webhook_deliveries(id))
    }

    /// Whether a webhook may have changes to deliver, be due (its next attempt's time has
    /// come, by `now`, the node's time) and be free for `owner`, `busy` left out: a read that
    /// numbers no change, cheap enough to ask before every look. It may say yes when a claim
    /// then finds nothing, never no when a change committed before it waits.
    pub async fn webhooks_due(
        &self,
        owner: String,
        now: i64,
        busy: Vec<i64>,
    ) -> Result<bool, StoreError> {
        on_backend!(self, webhooks_due(owner, now, busy))
    }

    /// Takes the lease of the webhooks that have changes to deliver and are due (their next
    /// attempt's time has come), and that no other node holds: at most `limit`. Atomic across
    /// nodes: a webhook is claimed by one node at a time.
    pub async fn claim_webhooks(
        &self,
        claim: WebhookClaim,
    ) -> Result<Vec<ClaimedWebhook>, StoreError> {
        on_backend!(self, claim_webhooks(claim))
    }

    /// Stores how far a delivery got, renews its lease and records its attempts (keeping the
    /// newest [`KEPT_DELIVERIES`]), in one transaction, if the node still holds the lease and
    /// it has not ended; says whether it did. A node that lost it stores nothing: another delivers from where
    /// the last progress stored left off.
    pub async fn store_webhook_progress(
        &self,
        progress: WebhookProgress,
    ) -> Result<bool, StoreError> {
        on_backend!(self, store_webhook_progress(progress))
    }

    /// Gives up the leases a node holds: it is stopping, and another may go on at once.
    pub async fn release_webhooks(&self, owner: String) -> Result<(), StoreError> {
        on_backend!(self, release_webhooks(owner))
    }
}

pub(super) fn lease_millis(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// The `associates` column: a JSON array, or NULL for everyone.
pub(super) fn associates_column(associates: Option<&[AssociateId]>) -> Option<String> {
    associates.map(|ids| {
        serde_json::to_string(&ids.iter().map(|id| id.get()).collect::<Vec<_>>())
            .expect("integers serialize")
    })
}

pub(super) fn associates_from_column(
    text: Option<String>,
) -> Result<Option<Vec<AssociateId>>, StoreError> {
    text.map(|text| {
        serde_json::from_str::<Vec<i32>>(&text)
            .map(|ids| ids.into_iter().map(AssociateId::new).collect())
            .map_err(|e| StoreError::Corrupt(format!("webhook associates {text:?}: {e}")))
    })
    .transpose()
}

pub(super) fn outcome_from_column(name: &str) -> Result<DeliveryOutcome, StoreError> {
    DeliveryOutcome::from_name(name)
        .ok_or_else(|| StoreError::Corrupt(format!("delivery outcome {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_the_key_out() {
        let key = vec![0xab; 24];
        let new = NewWebhook {
            url: "https://example.com/".into(),
            secret: key.clone(),
            associates: None,
            at: 0,
        };
        let claimed = ClaimedWebhook {
            id: 1,
            url: "https://example.com/".into(),
            secret: key,
            associates: None,
            delivered_through: 0,
            attempts: 0,
            failing_since: None,
        };
        for shown in [format!("{new:?}"), format!("{claimed:?}")] {
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(!shown.contains("171"), "{shown}");
            assert!(!shown.to_lowercase().contains("ab, ab"), "{shown}");
        }
    }
}
