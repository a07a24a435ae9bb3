//! The history on SQLite: read from the change log, recorded by the triggers of migrations 0007
//! and 0009 and, for absences and timers, here; trimmed by age.

use rusqlite::{Connection, Row, params};

use super::presence::presence_row;
use super::{SqliteStore, in_transaction};
use crate::domain::{Actor, AssociateId, ChangeKind, RecordedStatus};
use crate::store::StoreError;
use crate::store::history::{
    ChangeColumns, ChangePage, HistoryQuery, MAX_CHANGES_KEPT, WrittenBy, change_columns,
    edge_change, page_of, page_window,
};

/// Changes deleted in one step of trimming: each step holds the write lock, and Sets wait.
const TRIM_STEP: i64 = 10_000;

/// Due timers recorded in one transaction at most; the rest in the next.
const TIMER_STEP: i64 = 1000;

fn change_from_row(row: &Row<'_>) -> rusqlite::Result<ChangeColumns> {
    Ok(ChangeColumns {
        revision: row.get(0)?,
        at: row.get(1)?,
        associate_id: row.get(2)?,
        kind: row.get(3)?,
        from: (row.get(4)?, row.get(5)?, row.get(6)?),
        to: (row.get(7)?, row.get(8)?, row.get(9)?),
        absence: row.get(10)?,
        by_kind: row.get(11)?,
        by_associate: row.get(12)?,
        via_scheme: row.get(13)?,
        via_application: row.get(14)?,
    })
}

impl SqliteStore {
    pub(in crate::store) async fn history(
        &self,
        query: HistoryQuery,
    ) -> Result<ChangePage, StoreError> {
        self.read(move |conn| in_transaction(conn, "BEGIN", |tx| history_in(tx, &query)))
            .await
    }

    pub(in crate::store) async fn latest_change(&self) -> Result<i64, StoreError> {
        self.read(|conn| Ok(super::changes::latest_revision(conn)?))
            .await
    }

    pub(in crate::store) async fn record_due_timers(&self, now: i64) -> Result<usize, StoreError> {
        self.write(move |conn| {
            in_transaction(conn, "BEGIN IMMEDIATE", |tx| record_due_timers_in(tx, now))
        })
        .await
    }

    pub(in crate::store) async fn trim_history(&self, before: i64) -> Result<(), StoreError> {
        // Step by step, each a write of its own, so that Sets go between them.
        loop {
            let deleted = self
                .write(move |conn| Ok(trim_step(conn, before, MAX_CHANGES_KEPT)?))
                .await?;
            if deleted < TRIM_STEP {
                return Ok(());
            }
        }
    }
}

fn history_in(tx: &Connection, query: &HistoryQuery) -> Result<ChangePage, StoreError> {
    let oldest: i64 = tx
        .prepare_cached("SELECT coalesce(min(revision), 0) FROM user_change")?
        .query_row([], |row| row.get(0))?;
    let latest = super::changes::latest_revision(tx)?;
    let (after, through) = match page_window(query, oldest, latest) {
        Ok(window) => window,
        Err(expired) => return Ok(expired),
    };
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let rows: Vec<ChangeColumns> = tx
        .prepare_cached(concat!(
            "SELECT ",
            change_columns!(),
            " FROM user_change c
              WHERE c.revision > ?1 AND c.revision <= ?2 AND c.kind IS NOT NULL
                AND (?3 IS NULL OR c.associate_id = ?3) AND c.at >= ?4
              ORDER BY c.revision LIMIT ?5"
        ))?
        .query_map(
            params![
                after,
                through,
                query.associate.map(AssociateId::get),
                query.since.unwrap_or(i64::MIN),
                limit
            ],
            change_from_row,
        )?
        .collect::<Result<_, _>>()?;
    let changes = rows
        .into_iter()
        .map(ChangeColumns::into_change)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(page_of(changes, query.limit, through))
}

/// Records the timers due at `now` (see `Store::record_due_timers`).
fn record_due_timers_in(tx: &Connection, now: i64) -> Result<usize, StoreError> {
    let by = WrittenBy::of(&Actor::TIMER);
    // A timed status that ended: the row becomes what reads have answered since, and the
    // trigger logs it at the moment it ended (`updated_at = until`, the old value).
    let mut recorded = tx
        .prepare_cached(
            "UPDATE service_user
             SET status = 1, message = NULL, until = NULL, updated_at = until,
                 by_kind = ?2, by_associate = NULL, via_scheme = NULL, via_application = NULL
             WHERE until IS NOT NULL AND until <= ?1",
        )?
        .execute(params![now, by.kind])?;
    for (edge, select, mark) in [
        (
            "start",
            "SELECT id, associate_id, starts_at FROM absence
             WHERE start_recorded = 0 AND starts_at <= ?1 ORDER BY starts_at LIMIT ?2",
            "UPDATE absence SET start_recorded = 1 WHERE id = ?1",
        ),
        (
            "end",
            "SELECT id, associate_id, ends_at FROM absence
             WHERE end_recorded = 0 AND ends_at <= ?1 ORDER BY ends_at LIMIT ?2",
            "UPDATE absence SET end_recorded = 1 WHERE id = ?1",
        ),
    ] {
        let due: Vec<(i64, i32, i64)> = tx
            .prepare_cached(select)?
            .query_map(params![now, TIMER_STEP], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        for (id, associate_id, at) in due {
            tx.prepare_cached(mark)?.execute([id])?;
            let associate_id = AssociateId::new(associate_id);
            let Some(presence) = presence_row(tx, associate_id)? else {
                continue;
            };
            if let Some((from, to)) = edge_change(&presence, at) {
                log_change(
                    tx,
                    associate_id,
                    &LoggedChange {
                        at,
                        kind: ChangeKind::Status,
                        from: Some(from),
                        to: Some(to),
                        absence: None,
                        actor: &Actor::TIMER,
                    },
                )?;
                recorded += 1;
            }
            tracing::debug!(absence = id, edge, "absence timer recorded");
        }
    }
    Ok(recorded)
}

/// One step of trimming: the oldest changes made before `before`, up to the first one made
/// after it, and any beyond the newest `kept` ([`MAX_CHANGES_KEPT`]); at most [`TRIM_STEP`] of
/// them, never the newest. Says how many it deleted.
pub(super) fn trim_step(conn: &Connection, before: i64, kept: i64) -> rusqlite::Result<i64> {
    // Only a prefix of the log is deleted, so that a reader whose cursor lies in it is told
    // so (`expired`) rather than finding holes.
    let deleted = conn
        .prepare_cached(
            "DELETE FROM user_change
             WHERE revision < min(
                 max(coalesce((SELECT min(revision) FROM user_change WHERE at >= ?1),
                              (SELECT max(revision) FROM user_change)),
                     (SELECT max(revision) FROM user_change) - ?3),
                 (SELECT min(revision) FROM user_change) + ?2,
                 (SELECT max(revision) FROM user_change))",
        )?
        .execute(params![before, TRIM_STEP, kept])?;
    Ok(i64::try_from(deleted).unwrap_or(i64::MAX))
}

/// A change the program logs itself, where no trigger does: an absence planned or cancelled,
/// or one starting or ending.
pub(super) struct LoggedChange<'a> {
    pub at: i64,
    pub kind: ChangeKind,
    pub from: Option<RecordedStatus>,
    pub to: Option<RecordedStatus>,
    pub absence: Option<String>,
    pub actor: &'a Actor,
}

/// Logs a change of the user that no trigger logs, as the triggers log a change of the row:
/// every cache then reads the user again, and the user's revision moves on.
pub(super) fn log_change(
    tx: &Connection,
    associate_id: AssociateId,
    change: &LoggedChange<'_>,
) -> Result<(), StoreError> {
    let by = WrittenBy::of(change.actor);
    let status = |recorded: &Option<RecordedStatus>| {
        recorded.as_ref().map_or((None, None, None), |r| {
            (
                Some(r.presence.status.number()),
                r.presence.message.as_deref().map(str::to_owned),
                r.until,
            )
        })
    };
    let (from_status, from_message, from_until) = status(&change.from);
    let (to_status, to_message, to_until) = status(&change.to);
    tx.prepare_cached(
        "INSERT INTO user_change (associate_id, login, at, kind, from_status, from_message,
                                  from_until, to_status, to_message, to_until, absence,
                                  by_kind, by_associate, via_scheme, via_application)
         SELECT associate_id, login, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14
         FROM service_user WHERE associate_id = ?1",
    )?
    .execute(params![
        associate_id.get(),
        change.at,
        change.kind.name(),
        from_status,
        from_message,
        from_until,
        to_status,
        to_message,
        to_until,
        change.absence,
        by.kind,
        by.associate,
        by.scheme,
        by.application
    ])?;
    tx.prepare_cached(
        "UPDATE service_user SET revision = (SELECT max(revision) FROM user_change),
                                 updated_at = max(updated_at, ?2)
         WHERE associate_id = ?1",
    )?
    .execute(params![associate_id.get(), change.at])?;
    Ok(())
}
