//! Presence: the hot path of every ticket assignment, read from the cached users; Sets,
//! committed by the writer thread; and the presence API's reads and writes, timed statuses
//! and planned absences among them.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::changes::latest_revision;
use super::history::{LoggedChange, log_change};
use super::{SqliteStore, in_transaction};
use crate::domain::{Absence, Actor, AssociateId, ChangeKind, Presence, UserPresenceStatus};
use crate::store::cache;
use crate::store::history::{WrittenBy, absence_change, absence_json};
use crate::store::{
    AbsencePlanned, MAX_PLANNED_ABSENCES, NewAbsence, StatusChange, StatusChanged, StoreError,
    absences_from_column, message_from_column, status_from_column,
};

/// The columns [`presence_from_row`] reads, of `service_user u`: the row, and the user's
/// absences aggregated into one JSON array (see `store::absences_from_column`).
macro_rules! presence_columns {
    () => {
        "u.login, u.status, u.message, u.until, u.revision, u.updated_at,
         (SELECT json_group_array(json_array(a.id, a.starts_at, a.ends_at, a.message)
                                  ORDER BY a.starts_at)
          FROM absence a WHERE a.associate_id = u.associate_id)"
    };
}
pub(super) use presence_columns;

/// Reads the columns of [`presence_columns`], starting at `first`.
pub(super) fn presence_from_row(row: &Row<'_>, first: usize) -> Result<Presence, StoreError> {
    Ok(Presence {
        login: Arc::from(row.get::<_, String>(first)?),
        stored: UserPresenceStatus {
            status: status_from_column(row.get(first + 1)?)?,
            message: message_from_column(row.get(first + 2)?)?,
        },
        until: row.get(first + 3)?,
        revision: row.get(first + 4)?,
        changed_at: row.get(first + 5)?,
        absences: absences_from_column(row.get::<_, Option<String>>(first + 6)?.as_deref())?,
    })
}

/// One associate's presence as the connection sees it.
pub(super) fn presence_row(
    conn: &Connection,
    associate_id: AssociateId,
) -> Result<Option<Presence>, StoreError> {
    conn.prepare_cached(concat!(
        "SELECT ",
        presence_columns!(),
        " FROM service_user u WHERE u.associate_id = ?1"
    ))?
    .query_row([associate_id.get()], |row| Ok(presence_from_row(row, 0)))
    .optional()?
    .transpose()
}

impl SqliteStore {
    /// From memory; from the database only the first time the associate is asked about (or
    /// after its entry was evicted).
    pub(in crate::store) async fn presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Arc<Presence>>, StoreError> {
        if let Some(cached) = self.current_users().await?.presence(associate_id) {
            return Ok(cached);
        }
        Ok(self
            .read_and_keep(vec![associate_id])
            .await?
            .pop()
            .flatten())
    }

    pub(in crate::store) async fn presences(
        &self,
        associate_ids: &[AssociateId],
    ) -> Result<Vec<Option<Arc<Presence>>>, StoreError> {
        let (cached, missing) = self.current_users().await?.presences(associate_ids);
        let read = if missing.is_empty() {
            Vec::new()
        } else {
            self.read_and_keep(missing).await?
        };
        Ok(cache::merged(cached, read))
    }

    /// The cached presences, lent to `visit` if all are cached; `visit` back otherwise.
    pub(in crate::store) async fn visit_cached_presences<T, F>(
        &self,
        associate_ids: &[AssociateId],
        visit: F,
    ) -> Result<Result<T, F>, StoreError>
    where
        F: FnOnce(&[Option<&Arc<Presence>>]) -> T,
    {
        Ok(self
            .current_users()
            .await?
            .visit_presences(associate_ids, visit))
    }

    /// Reads presences the cache lacks, in one transaction, and keeps them in the cache.
    async fn read_and_keep(
        &self,
        associate_ids: Vec<AssociateId>,
    ) -> Result<Vec<Option<Arc<Presence>>>, StoreError> {
        let (revision, presences) = self
            .read(move |conn| {
                in_transaction(conn, "BEGIN", |conn| {
                    let revision = latest_revision(conn)?;
                    let presences = associate_ids
                        .iter()
                        .map(|&id| Ok((id, presence_row(conn, id)?.map(Arc::new))))
                        .collect::<Result<Vec<_>, StoreError>>()?;
                    Ok((revision, presences))
                })
            })
            .await?;
        let cache = &self.inner.users.cache;
        Ok(presences
            .into_iter()
            .map(|(associate_id, presence)| {
                cache.insert_presence(associate_id, presence.clone(), revision);
                presence
            })
            .collect())
    }

    pub(in crate::store) async fn read_presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Arc<Presence>>, StoreError> {
        self.read(move |conn| Ok(presence_row(conn, associate_id)?.map(Arc::new)))
            .await
    }

    pub(in crate::store) async fn presence_page(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(AssociateId, Arc<Presence>)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(concat!(
                "SELECT u.associate_id, ",
                presence_columns!(),
                " FROM service_user u WHERE u.associate_id > ?1
                  ORDER BY u.associate_id LIMIT ?2"
            ))?;
            let mut rows = statement.query(params![after, limit])?;
            let mut page = Vec::new();
            while let Some(row) = rows.next()? {
                page.push((
                    AssociateId::new(row.get(0)?),
                    Arc::new(presence_from_row(row, 1)?),
                ));
            }
            Ok(page)
        })
        .await
    }

    /// Stores a presence through the writer thread, answering once its commit is done.
    pub(in crate::store) async fn set_presence(
        &self,
        associate_id: AssociateId,
        presence: UserPresenceStatus,
        actor: &Actor,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        self.inner
            .writer
            .set_presence(associate_id, presence, WrittenBy::of(actor))
            .await
    }

    /// A write of its own rather than one of a batch of Sets: it checks a revision first, and
    /// the presence API's writes are few beside SuperOffice's Sets.
    pub(in crate::store) async fn set_status(
        &self,
        associate_id: AssociateId,
        change: StatusChange,
    ) -> Result<StatusChanged, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let revision: Option<i64> = tx
                .prepare_cached("SELECT revision FROM service_user WHERE associate_id = ?1")?
                .query_row([associate_id.get()], |row| row.get(0))
                .optional()?;
            let Some(revision) = revision else {
                return Ok(StatusChanged::NoUser);
            };
            if change.if_revision.is_some_and(|wanted| wanted != revision) {
                return Ok(StatusChanged::Stale);
            }
            let by = WrittenBy::of(&change.actor);
            tx.prepare_cached(
                "UPDATE service_user SET status = ?2, message = ?3, until = ?4, updated_at = ?5,
                                         by_kind = ?6, by_associate = ?7, via_scheme = ?8,
                                         via_application = ?9
                 WHERE associate_id = ?1",
            )?
            .execute(params![
                associate_id.get(),
                change.presence.status.number(),
                change.presence.message.as_deref(),
                change.until,
                change.at,
                by.kind,
                by.associate,
                by.scheme,
                by.application
            ])?;
            tx.commit()?;
            Ok(StatusChanged::Stored)
        })
        .await
    }

    pub(in crate::store) async fn plan_absence(
        &self,
        associate_id: AssociateId,
        absence: NewAbsence,
    ) -> Result<AbsencePlanned, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(presence) = presence_row(&tx, associate_id)? else {
                return Ok(AbsencePlanned::NoUser);
            };
            let planned: Vec<&Absence> = presence.planned(absence.at).collect();
            if let Some(overlapping) = planned
                .iter()
                .find(|a| a.overlaps(absence.from, absence.until))
            {
                return Ok(AbsencePlanned::Overlaps((*overlapping).clone()));
            }
            if planned.len() >= MAX_PLANNED_ABSENCES {
                return Ok(AbsencePlanned::TooMany);
            }
            // A start already passed is the planning's own change, not the timer's.
            tx.prepare_cached(
                "INSERT INTO absence (associate_id, starts_at, ends_at, message, created_at,
                                      start_recorded, end_recorded)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?2 <= ?5, ?3 <= ?5)",
            )?
            .execute(params![
                associate_id.get(),
                absence.from,
                absence.until,
                absence.message.as_deref(),
                absence.at
            ])?;
            let planned = Absence {
                id: tx.last_insert_rowid(),
                from: absence.from,
                until: absence.until,
                message: absence.message,
            };
            let after = presence_row(&tx, associate_id)?.ok_or(StoreError::TaskFailed)?;
            let (from, to) = absence_change(&presence, &after, absence.at);
            log_change(
                &tx,
                associate_id,
                &LoggedChange {
                    at: absence.at,
                    kind: ChangeKind::AbsencePlanned,
                    from: Some(from),
                    to: Some(to),
                    absence: Some(absence_json(&planned)),
                    actor: &absence.actor,
                },
            )?;
            tx.commit()?;
            Ok(AbsencePlanned::Planned(planned))
        })
        .await
    }

    pub(in crate::store) async fn cancel_absence(
        &self,
        associate_id: AssociateId,
        absence_id: i64,
        at: i64,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        let actor = actor.clone();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let Some(before) = presence_row(&tx, associate_id)? else {
                return Ok(false);
            };
            let Some(cancelled) = before
                .absences
                .iter()
                .flat_map(|absences| absences.iter())
                .find(|a| a.id == absence_id)
                .cloned()
            else {
                return Ok(false);
            };
            tx.prepare_cached("DELETE FROM absence WHERE id = ?1")?
                .execute([absence_id])?;
            let after = presence_row(&tx, associate_id)?.ok_or(StoreError::TaskFailed)?;
            let (from, to) = absence_change(&before, &after, at);
            log_change(
                &tx,
                associate_id,
                &LoggedChange {
                    at,
                    kind: ChangeKind::AbsenceCancelled,
                    from: Some(from),
                    to: Some(to),
                    absence: Some(absence_json(&cancelled)),
                    actor: &actor,
                },
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    pub(in crate::store) async fn delete_ended_absences(
        &self,
        before: i64,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            // An end not yet recorded stays until the timer has recorded it.
            conn.prepare_cached("DELETE FROM absence WHERE ends_at < ?1 AND end_recorded = 1")?
                .execute([before])?;
            Ok(())
        })
        .await
    }
}
