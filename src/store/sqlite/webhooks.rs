//! Webhooks on SQLite: one writer, so a claim is a plain conditional update; a node (there is
//! one on SQLite, but the command line may run beside it) holds a webhook by its lease all the
//! same.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, in_transaction};
use crate::store::StoreError;
use crate::store::webhooks::{
    ClaimedWebhook, Delivery, KEPT_DELIVERIES, MAX_WEBHOOKS, NewWebhook, Webhook, WebhookAdded,
    WebhookClaim, WebhookProgress, associates_column, associates_from_column, lease_millis,
    outcome_from_column,
};

const WEBHOOK_COLUMNS: &str = "id, url, associates, created_at, delivered_through, attempts, \
                               failing_since, next_attempt_at";

fn webhook_from_row(row: &Row<'_>) -> rusqlite::Result<(Webhook, Option<String>)> {
    Ok((
        Webhook {
            id: row.get(0)?,
            url: row.get(1)?,
            associates: None,
            created_at: row.get(3)?,
            delivered_through: row.get(4)?,
            attempts: row.get(5)?,
            failing_since: row.get(6)?,
            next_attempt_at: row.get(7)?,
        },
        row.get(2)?,
    ))
}

fn with_associates(
    (mut webhook, associates): (Webhook, Option<String>),
) -> Result<Webhook, StoreError> {
    webhook.associates = associates_from_column(associates)?;
    Ok(webhook)
}

impl SqliteStore {
    pub(in crate::store) async fn add_webhook(
        &self,
        webhook: NewWebhook,
        latest: i64,
    ) -> Result<WebhookAdded, StoreError> {
        self.write(move |conn| {
            in_transaction(conn, "BEGIN IMMEDIATE", |tx| {
                let count: i64 = tx.query_row("SELECT count(*) FROM webhook", [], |row| row.get(0))?;
                if count >= MAX_WEBHOOKS as i64 {
                    return Ok(WebhookAdded::TooMany);
                }
                let added = tx
                    .prepare(&format!(
                        "INSERT INTO webhook (url, secret, associates, created_at, delivered_through)
                         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING {WEBHOOK_COLUMNS}"
                    ))?
                    .query_row(
                        params![
                            webhook.url,
                            webhook.secret,
                            associates_column(webhook.associates.as_deref()),
                            webhook.at,
                            latest
                        ],
                        webhook_from_row,
                    )?;
                Ok(WebhookAdded::Added(with_associates(added)?))
            })
        })
        .await
    }

    pub(in crate::store) async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.read(|conn| {
            let rows: Vec<_> = conn
                .prepare(&format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhook ORDER BY id"
                ))?
                .query_map([], webhook_from_row)?
                .collect::<Result<_, _>>()?;
            rows.into_iter().map(with_associates).collect()
        })
        .await
    }

    pub(in crate::store) async fn remove_webhook(&self, id: i64) -> Result<bool, StoreError> {
        self.write(move |conn| Ok(conn.execute("DELETE FROM webhook WHERE id = ?1", [id])? > 0))
            .await
    }

    pub(in crate::store) async fn webhook_deliveries(
        &self,
        id: i64,
    ) -> Result<Option<Vec<Delivery>>, StoreError> {
        self.read(move |conn| {
            in_transaction(conn, "BEGIN", |tx| {
                let exists = tx
                    .query_row("SELECT 1 FROM webhook WHERE id = ?1", [id], |_| Ok(()))
                    .optional()?
                    .is_some();
                if !exists {
                    return Ok(None);
                }
                let deliveries = tx
                    .prepare(
                        "SELECT revision, attempt, at, outcome, status, error
                         FROM webhook_delivery WHERE webhook_id = ?1 ORDER BY id DESC LIMIT ?2",
                    )?
                    .query_map(params![id, KEPT_DELIVERIES], |row| {
                        let outcome: String = row.get(3)?;
                        Ok(Delivery {
                            revision: row.get(0)?,
                            attempt: row.get(1)?,
                            at: row.get(2)?,
                            outcome: outcome_from_column(&outcome).map_err(|e| {
                                rusqlite::Error::FromSqlConversionFailure(
                                    3,
                                    rusqlite::types::Type::Text,
                                    Box::new(e),
                                )
                            })?,
                            status: row.get(4)?,
                            error: row.get(5)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(deliveries))
            })
        })
        .await
    }

    /// A read: most looks find nothing to do, and a read does not wait for the writer, nor
    /// hold up the Sets queued there.
    pub(in crate::store) async fn webhooks_due(
        &self,
        owner: String,
        now: i64,
        busy: Vec<i64>,
    ) -> Result<bool, StoreError> {
        let busy = serde_json::to_string(&busy).expect("integers serialize");
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM webhook
                     WHERE (lease_owner = ?1 OR lease_until <= ?2) AND next_attempt_at <= ?2
                       AND delivered_through
                             < (SELECT coalesce(max(revision), 0) FROM user_change)
                       AND id NOT IN (SELECT value FROM json_each(?3)))",
                )?
                .query_row(params![owner, now, busy], |row| row.get::<_, bool>(0))?)
        })
        .await
    }

    pub(in crate::store) async fn claim_webhooks(
        &self,
        claim: WebhookClaim,
    ) -> Result<Vec<ClaimedWebhook>, StoreError> {
        let busy = serde_json::to_string(&claim.busy).expect("integers serialize");
        let limit = i64::try_from(claim.limit).unwrap_or(i64::MAX);
        let lease_until = claim.now.saturating_add(lease_millis(claim.lease));
        self.write(move |conn| {
            let rows: Vec<_> = conn
                .prepare_cached(
                    "UPDATE webhook SET lease_owner = ?1, lease_until = ?2
                     WHERE id IN (SELECT id FROM webhook
                                  WHERE (lease_owner = ?1 OR lease_until <= ?3)
                                    AND next_attempt_at <= ?3 AND delivered_through < ?4
                                    AND id NOT IN (SELECT value FROM json_each(?5))
                                  ORDER BY id LIMIT ?6)
                     RETURNING id, url, secret, associates, delivered_through, attempts,
                               failing_since",
                )?
                .query_map(
                    params![
                        claim.owner,
                        lease_until,
                        claim.now,
                        claim.latest,
                        busy,
                        limit
                    ],
                    |row| {
                        Ok((
                            ClaimedWebhook {
                                id: row.get(0)?,
                                url: row.get(1)?,
                                secret: row.get(2)?,
                                associates: None,
                                delivered_through: row.get(4)?,
                                attempts: row.get(5)?,
                                failing_since: row.get(6)?,
                            },
                            row.get::<_, Option<String>>(3)?,
                        ))
                    },
                )?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(mut webhook, associates)| {
                    webhook.associates = associates_from_column(associates)?;
                    Ok(webhook)
                })
                .collect()
        })
        .await
    }

    pub(in crate::store) async fn store_webhook_progress(
        &self,
        progress: WebhookProgress,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            in_transaction(conn, "BEGIN IMMEDIATE", |tx| {
                store_progress_in(tx, &progress)
            })
        })
        .await
    }

    pub(in crate::store) async fn release_webhooks(&self, owner: String) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE webhook SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?1",
                [owner],
            )?;
            Ok(())
        })
        .await
    }
}

fn store_progress_in(tx: &Connection, progress: &WebhookProgress) -> Result<bool, StoreError> {
    let updated = tx
        .prepare_cached(
            "UPDATE webhook SET delivered_through = ?3, attempts = ?4, failing_since = ?5,
                                next_attempt_at = ?6, lease_until = ?7 + ?8
             WHERE id = ?1 AND lease_owner = ?2 AND lease_until > ?7",
        )?
        .execute(params![
            progress.id,
            progress.owner,
            progress.delivered_through,
            progress.attempts,
            progress.failing_since,
            progress.next_attempt_at,
            progress.now,
            lease_millis(progress.lease)
        ])?;
    if updated == 0 {
        return Ok(false);
    }
    for delivery in &progress.deliveries {
        tx.prepare_cached(
            "INSERT INTO webhook_delivery (webhook_id, revision, attempt, at, outcome, status, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            progress.id,
            delivery.revision,
            delivery.attempt,
            delivery.at,
            delivery.outcome.name(),
            delivery.status,
            delivery.error
        ])?;
    }
    if !progress.deliveries.is_empty() {
        tx.prepare_cached(
            "DELETE FROM webhook_delivery
             WHERE webhook_id = ?1 AND id <= (SELECT id FROM webhook_delivery WHERE webhook_id = ?1
                                              ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )?
        .execute(params![progress.id, KEPT_DELIVERIES])?;
    }
    Ok(true)
}
