//! Webhooks on PostgreSQL: several nodes claim them, each webhook by one at a time: the claim
//! locks the rows it takes (`FOR UPDATE SKIP LOCKED`), and a row another node's claim has
//! just leased fails the lease condition when it is checked again. Leases go by the database's
//! clock ([`DB_NOW`]), the one clock every node shares.

use tokio_postgres::Row;

use super::{PostgresStore, classify};
use crate::store::StoreError;
use crate::store::webhooks::{
    ClaimedWebhook, Delivery, KEPT_DELIVERIES, MAX_WEBHOOKS, NewWebhook, Webhook, WebhookAdded,
    WebhookClaim, WebhookProgress, associates_column, associates_from_column, lease_millis,
    outcome_from_column,
};

/// The database's time, Unix milliseconds, as the leases count it: the moment the statement
/// reads it, not its transaction's start.
const DB_NOW: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// Serialises adding webhooks across nodes, so that two added at once cannot both pass the
/// count: any constant will do, as long as it is ours.
const ADD_LOCK: i64 = 0x7765_6268_6f6f_6b73; // "webhooks"

const WEBHOOK_COLUMNS: &str = "id, url, associates, created_at, delivered_through, attempts, \
                               failing_since, next_attempt_at";

fn webhook_from_row(row: &Row) -> Result<Webhook, StoreError> {
    Ok(Webhook {
        id: row.get(0),
        url: row.get(1),
        associates: associates_from_column(row.get(2))?,
        created_at: row.get(3),
        delivered_through: row.get(4),
        attempts: row.get(5),
        failing_since: row.get(6),
        next_attempt_at: row.get(7),
    })
}

impl PostgresStore {
    pub(in crate::store) async fn add_webhook(
        &self,
        webhook: NewWebhook,
        latest: i64,
    ) -> Result<WebhookAdded, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ADD_LOCK])
            .await
            .map_err(classify)?;
        let count: i64 = tx
            .query_one("SELECT count(*) FROM webhook", &[])
            .await
            .map_err(classify)?
            .get(0);
        if count >= MAX_WEBHOOKS as i64 {
            return Ok(WebhookAdded::TooMany);
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO webhook (url, secret, associates, created_at, delivered_through)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {WEBHOOK_COLUMNS}"
                ),
                &[
                    &webhook.url,
                    &webhook.secret,
                    &associates_column(webhook.associates.as_deref()),
                    &webhook.at,
                    &latest,
                ],
            )
            .await
            .map_err(classify)?;
        let added = webhook_from_row(&row)?;
        tx.commit().await.map_err(classify)?;
        Ok(WebhookAdded::Added(added))
    }

    pub(in crate::store) async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhook ORDER BY id"),
                &[],
            )
            .await
            .map_err(classify)?
            .iter()
            .map(webhook_from_row)
            .collect()
    }

    pub(in crate::store) async fn remove_webhook(&self, id: i64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute("DELETE FROM webhook WHERE id = $1", &[&id])
            .await
            .map_err(classify)?;
        Ok(removed > 0)
    }

    pub(in crate::store) async fn webhook_deliveries(
        &self,
        id: i64,
    ) -> Result<Option<Vec<Delivery>>, StoreError> {
        let client = self.client().await?;
        let exists = client
            .query_opt("SELECT 1 FROM webhook WHERE id = $1", &[&id])
            .await
            .map_err(classify)?
            .is_some();
        if !exists {
            return Ok(None);
        }
        let rows = client
            .query(
                "SELECT revision, attempt, at, outcome, status, error
                 FROM webhook_delivery WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
                &[&id, &KEPT_DELIVERIES],
            )
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(Delivery {
                    revision: row.get(0),
                    attempt: row.get(1),
                    at: row.get(2),
                    outcome: outcome_from_column(row.get(3))?,
                    status: row
                        .get::<_, Option<i32>>(4)
                        .and_then(|status| u16::try_from(status).ok()),
                    error: row.get(5),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Some)
    }

    /// Behind: a numbered change past the webhook's position, or any change not numbered yet
    /// (each found by an index: the revisions' and the unnumbered changes').
    pub(in crate::store) async fn webhooks_due(
        &self,
        owner: String,
        now: i64,
        busy: Vec<i64>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM webhook
                                WHERE (lease_owner = $1 OR lease_until <= {DB_NOW})
                                  AND next_attempt_at <= $2 AND NOT (id = ANY($3))
                                  AND (delivered_through
                                         < (SELECT coalesce(max(revision), 0) FROM user_change)
                                       OR EXISTS (SELECT 1 FROM user_change
                                                  WHERE revision IS NULL)))"
            ))
            .await
            .map_err(classify)?;
        Ok(client
            .query_one(&statement, &[&owner, &now, &busy])
            .await
            .map_err(classify)?
            .get(0))
    }

    pub(in crate::store) async fn claim_webhooks(
        &self,
        claim: WebhookClaim,
    ) -> Result<Vec<ClaimedWebhook>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "UPDATE webhook SET lease_owner = $1, lease_until = {DB_NOW} + $2
                 WHERE id IN (SELECT id FROM webhook
                              WHERE (lease_owner = $1 OR lease_until <= {DB_NOW})
                                AND next_attempt_at <= $3 AND delivered_through < $4
                                AND NOT (id = ANY($5))
                              ORDER BY id LIMIT $6 FOR UPDATE SKIP LOCKED)
                 RETURNING id, url, secret, associates, delivered_through, attempts,
                           failing_since"
            ))
            .await
            .map_err(classify)?;
        let limit = i64::try_from(claim.limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &statement,
                &[
                    &claim.owner,
                    &lease_millis(claim.lease),
                    &claim.now,
                    &claim.latest,
                    &claim.busy,
                    &limit,
                ],
            )
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedWebhook {
                    id: row.get(0),
                    url: row.get(1),
                    secret: row.get(2),
                    associates: associates_from_column(row.get(3))?,
                    delivered_through: row.get(4),
                    attempts: row.get(5),
                    failing_since: row.get(6),
                })
            })
            .collect()
    }

    pub(in crate::store) async fn store_webhook_progress(
        &self,
        progress: WebhookProgress,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let updated = tx
            .execute(
                &format!(
                    "UPDATE webhook SET delivered_through = $3, attempts = $4, failing_since = $5,
                                        next_attempt_at = $6, lease_until = {DB_NOW} + $7
                     WHERE id = $1 AND lease_owner = $2 AND lease_until > {DB_NOW}"
                ),
                &[
                    &progress.id,
                    &progress.owner,
                    &progress.delivered_through,
                    &progress.attempts,
                    &progress.failing_since,
                    &progress.next_attempt_at,
                    &lease_millis(progress.lease),
                ],
            )
            .await
            .map_err(classify)?;
        if updated == 0 {
            return Ok(false);
        }
        if !progress.deliveries.is_empty() {
            let insert = tx
                .prepare_cached(
                    "INSERT INTO webhook_delivery
                         (webhook_id, revision, attempt, at, outcome, status, error)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .await
                .map_err(classify)?;
            for delivery in &progress.deliveries {
                tx.execute(
                    &insert,
                    &[
                        &progress.id,
                        &delivery.revision,
                        &delivery.attempt,
                        &delivery.at,
                        &delivery.outcome.name(),
                        &delivery.status.map(i32::from),
                        &delivery.error,
                    ],
                )
                .await
                .map_err(classify)?;
            }
            tx.execute(
                "DELETE FROM webhook_delivery
                 WHERE webhook_id = $1
                   AND id <= (SELECT id FROM webhook_delivery WHERE webhook_id = $1
                              ORDER BY id DESC LIMIT 1 OFFSET $2)",
                &[&progress.id, &KEPT_DELIVERIES],
            )
            .await
            .map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    pub(in crate::store) async fn release_webhooks(&self, owner: String) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE webhook SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = $1",
                &[&owner],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }
}
