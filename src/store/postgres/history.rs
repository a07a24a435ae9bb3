//! The history on PostgreSQL: read from the change log once every change committed is
//! numbered, recorded by the trigger of migrations 0007 and 0009 and, for absences and timers,
//! here; trimmed by age.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::changes::number_user_changes;
use super::presence::{presence_columns, presence_from_row, presence_tables};
use super::{PostgresStore, classify};
use crate::domain::{Actor, AssociateId, ChangeKind, Presence, RecordedStatus};
use crate::store::StoreError;
use crate::store::history::{
    ChangeColumns, ChangePage, HistoryQuery, MAX_CHANGES_KEPT, WrittenBy, change_columns,
    edge_change, page_of, page_window,
};

/// Changes deleted in one statement of trimming.
const TRIM_STEP: i64 = 10_000;

/// Due timers recorded in one transaction at most; the rest in the next.
const TIMER_STEP: i64 = 1000;

fn change_from_row(row: &Row) -> ChangeColumns {
    let status = |first: usize| {
        (
            row.get::<_, Option<i16>>(first).map(i64::from),
            row.get::<_, Option<String>>(first + 1),
            row.get::<_, Option<i64>>(first + 2),
        )
    };
    ChangeColumns {
        revision: row.get(0),
        at: row.get(1),
        associate_id: row.get(2),
        kind: row.get(3),
        from: status(4),
        to: status(7),
        absence: row.get(10),
        by_kind: row.get(11),
        by_associate: row.get(12),
        via_scheme: row.get(13),
        via_application: row.get(14),
    }
}

impl PostgresStore {
    pub(in crate::store) async fn history(
        &self,
        query: HistoryQuery,
    ) -> Result<ChangePage, StoreError> {
        let mut client = self.client().await?;
        // Every change committed before now is numbered: none can appear later below a
        // revision this page reaches.
        let (latest, _) = number_user_changes(&client).await?;
        // The oldest kept and the page from one snapshot: a trim by another node in between
        // cannot make the page skip changes it should have called expired.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(classify)?;
        let oldest: i64 = tx
            .query_one(
                "SELECT coalesce(min(revision), 0) FROM user_change WHERE revision IS NOT NULL",
                &[],
            )
            .await
            .map_err(classify)?
            .get(0);
        let (after, through) = match page_window(&query, oldest, latest) {
            Ok(window) => window,
            Err(expired) => return Ok(expired),
        };
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let since = query.since.unwrap_or(i64::MIN);
        // Two statements rather than one with an optional filter, whose generic plan could
        // read the window otherwise than by revision.
        let rows = match query.associate {
            Some(associate) => {
                let statement = tx
                    .prepare_cached(concat!(
                        "SELECT ",
                        change_columns!(),
                        " FROM user_change c
                          WHERE c.associate_id = $1 AND c.revision > $2 AND c.revision <= $3
                            AND c.kind IS NOT NULL AND c.at >= $4
                          ORDER BY c.revision LIMIT $5"
                    ))
                    .await
                    .map_err(classify)?;
                tx.query(
                    &statement,
                    &[&associate.get(), &after, &through, &since, &limit],
                )
                .await
            }
            None => {
                let statement = tx
                    .prepare_cached(concat!(
                        "SELECT ",
                        change_columns!(),
                        " FROM user_change c
                          WHERE c.revision > $1 AND c.revision <= $2 AND c.kind IS NOT NULL
                            AND c.at >= $3
                          ORDER BY c.revision LIMIT $4"
                    ))
                    .await
                    .map_err(classify)?;
                tx.query(&statement, &[&after, &through, &since, &limit])
                    .await
            }
        }
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        let changes = rows
            .iter()
            .map(|row| change_from_row(row).into_change())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(changes, query.limit, through))
    }

    pub(in crate::store) async fn latest_change(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        Ok(number_user_changes(&client).await?.0)
    }

    /// One transaction: a timed status is claimed by the row update itself (a second node's
    /// update finds it ended already), an absence's edge by its row lock (`SKIP LOCKED`) and
    /// its flag, so each is recorded by exactly one node.
    pub(in crate::store) async fn record_due_timers(&self, now: i64) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let by = WrittenBy::of(&Actor::TIMER);
        let ended = tx
            .execute(
                "UPDATE service_user
                 SET status = 1, message = NULL, until = NULL, updated_at = until,
                     by_kind = $2, by_associate = NULL, via_scheme = NULL, via_application = NULL
                 WHERE until IS NOT NULL AND until <= $1",
                &[&now, &by.kind],
            )
            .await
            .map_err(classify)?;
        let mut recorded = usize::try_from(ended).unwrap_or(usize::MAX);
        // Each edge: its user's row locked first, then the absence's, the order planning and
        // cancelling take them in, so that neither can deadlock with the timer; an absence
        // another node holds (or recorded meanwhile) is skipped.
        for (select, claim, mark) in [
            (
                "SELECT id, associate_id FROM absence
                 WHERE NOT start_recorded AND starts_at <= $1 ORDER BY starts_at LIMIT $2",
                "SELECT starts_at FROM absence WHERE id = $1 AND NOT start_recorded
                 FOR UPDATE SKIP LOCKED",
                "UPDATE absence SET start_recorded = TRUE WHERE id = $1",
            ),
            (
                "SELECT id, associate_id FROM absence
                 WHERE NOT end_recorded AND ends_at <= $1 ORDER BY ends_at LIMIT $2",
                "SELECT ends_at FROM absence WHERE id = $1 AND NOT end_recorded
                 FOR UPDATE SKIP LOCKED",
                "UPDATE absence SET end_recorded = TRUE WHERE id = $1",
            ),
        ] {
            let due = tx
                .query(select, &[&now, &TIMER_STEP])
                .await
                .map_err(classify)?;
            for row in due {
                let (id, associate_id): (i64, i32) = (row.get(0), row.get(1));
                let associate_id = AssociateId::new(associate_id);
                if super::presence::lock_user(&tx, associate_id)
                    .await?
                    .is_none()
                {
                    continue;
                }
                let Some(claimed) = tx.query_opt(claim, &[&id]).await.map_err(classify)? else {
                    continue;
                };
                let at: i64 = claimed.get(0);
                tx.execute(mark, &[&id]).await.map_err(classify)?;
                let presence = presence_in(&tx, associate_id).await?;
                if let Some((from, to)) = edge_change(&presence, at) {
                    log_change(
                        &tx,
                        associate_id,
                        &LoggedChange {
                            at,
                            kind: ChangeKind::Status,
                            from: Some(from),
                            to: Some(to),
                            absence: None,
                            actor: &Actor::TIMER,
                        },
                    )
                    .await?;
                    recorded += 1;
                }
            }
        }
        tx.commit().await.map_err(classify)?;
        Ok(recorded)
    }

    /// Deletes the oldest changes made before `before`, and any beyond the newest
    /// [`MAX_CHANGES_KEPT`], a prefix of the log only (a reader
    /// whose cursor lies in it is told so rather than finding holes), in steps, never the
    /// newest numbered change: numbering goes on from it. Any node may run it at any time.
    pub(in crate::store) async fn trim_history(&self, before: i64) -> Result<(), StoreError> {
        let client = self.client().await?;
        // Numbered first: the first change young enough to keep may still be unnumbered.
        number_user_changes(&client).await?;
        let statement = client
            .prepare_cached(
                "DELETE FROM user_change WHERE revision < LEAST(
                     GREATEST(coalesce((SELECT min(revision) FROM user_change WHERE at >= $1),
                                       (SELECT max(revision) FROM user_change)),
                              (SELECT max(revision) FROM user_change) - $3),
                     (SELECT min(revision) FROM user_change) + $2,
                     (SELECT max(revision) FROM user_change))",
            )
            .await
            .map_err(classify)?;
        loop {
            let deleted = client
                .execute(&statement, &[&before, &TRIM_STEP, &MAX_CHANGES_KEPT])
                .await
                .map_err(classify)?;
            if i64::try_from(deleted).unwrap_or(i64::MAX) < TRIM_STEP {
                return Ok(());
            }
        }
    }
}

/// The user's presence as the transaction sees it; the caller has locked the user's row.
pub(super) async fn presence_in(
    client: &impl GenericClient,
    associate_id: AssociateId,
) -> Result<Presence, StoreError> {
    let row = client
        .query_one(
            concat!(
                "SELECT ",
                presence_columns!(),
                " FROM ",
                presence_tables!(),
                " WHERE u.associate_id = $1"
            ),
            &[&associate_id.get()],
        )
        .await
        .map_err(classify)?;
    Ok(presence_from_row(&row, 0)?.0)
}

/// A change the program logs itself, where the trigger does not: an absence planned or
/// cancelled, or one starting or ending.
pub(super) struct LoggedChange<'a> {
    pub at: i64,
    pub kind: ChangeKind,
    pub from: Option<RecordedStatus>,
    pub to: Option<RecordedStatus>,
    pub absence: Option<String>,
    pub actor: &'a Actor,
}

/// Logs a change of the user that the trigger does not, as it logs a change of the row: every
/// node's cache then reads the user again, and the user's revision moves on once numbered.
pub(super) async fn log_change(
    tx: &tokio_postgres::Transaction<'_>,
    associate_id: AssociateId,
    change: &LoggedChange<'_>,
) -> Result<(), StoreError> {
    let by = WrittenBy::of(change.actor);
    let status = |recorded: &Option<RecordedStatus>| {
        recorded.as_ref().map_or((None, None, None), |r| {
            (
                Some(super::status_column(&r.presence)),
                r.presence.message.as_deref().map(str::to_owned),
                r.until,
            )
        })
    };
    let (from_status, from_message, from_until) = status(&change.from);
    let (to_status, to_message, to_until) = status(&change.to);
    tx.execute(
        "INSERT INTO user_change (associate_id, login, at, kind, from_status, from_message,
                                  from_until, to_status, to_message, to_until, absence,
                                  by_kind, by_associate, via_scheme, via_application)
         SELECT associate_id, login, $2::BIGINT, $3::TEXT, $4::SMALLINT, $5::TEXT, $6::BIGINT,
                $7::SMALLINT, $8::TEXT, $9::BIGINT, $10::TEXT, $11::TEXT, $12::INTEGER, $13::TEXT,
                $14::TEXT
         FROM service_user WHERE associate_id = $1",
        &[
            &associate_id.get(),
            &change.at,
            &change.kind.name(),
            &from_status,
            &from_message,
            &from_until,
            &to_status,
            &to_message,
            &to_until,
            &change.absence,
            &by.kind,
            &by.associate,
            &by.scheme,
            &by.application,
        ],
    )
    .await
    .map_err(classify)?;
    tx.execute(
        "UPDATE service_user SET updated_at = GREATEST(updated_at, $2) WHERE associate_id = $1",
        &[&associate_id.get(), &change.at],
    )
    .await
    .map_err(classify)?;
    Ok(())
}
