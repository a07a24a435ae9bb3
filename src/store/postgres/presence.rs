//! Presence: the hot path of every ticket assignment, read from the cached users; Sets; and
//! the presence API's reads and writes, timed statuses and planned absences among them.

use std::sync::Arc;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::changes::number_user_changes;
use super::history::{LoggedChange, log_change, presence_in};
use super::{PostgresStore, classify, status_column};
use crate::domain::{Absence, Actor, AssociateId, ChangeKind, Presence, UserPresenceStatus};
use crate::store::cache;
use crate::store::history::{WrittenBy, absence_change, absence_json};
use crate::store::{
    AbsencePlanned, MAX_PLANNED_ABSENCES, NewAbsence, StatusChange, StatusChanged, StoreError,
    absences_from_column, message_from_column, status_from_column, unix_millis,
};

/// The columns [`presence_from_row`] reads, of `service_user u` joined with its
/// `user_revision r`: the row, the user's revision, its absences aggregated into one JSON array
/// (see `store::absences_from_column`), and whether a change of the user was committed and not
/// yet numbered: the row is then newer than its revision says.
macro_rules! presence_columns {
    () => {
        "u.login, u.status, u.message, u.until, coalesce(r.revision, 0), u.updated_at,
         (SELECT json_agg(json_build_array(a.id, a.starts_at, a.ends_at, a.message)
                          ORDER BY a.starts_at)::text
          FROM absence a WHERE a.associate_id = u.associate_id),
         EXISTS (SELECT 1 FROM user_change p
                 WHERE p.associate_id = u.associate_id AND p.revision IS NULL)"
    };
}
pub(super) use presence_columns;

/// The tables [`presence_columns`] reads.
macro_rules! presence_tables {
    () => {
        "service_user u LEFT JOIN user_revision r ON r.associate_id = u.associate_id"
    };
}
pub(super) use presence_tables;

/// Reads the columns of [`presence_columns`], starting at `first`; `None` for the presence
/// when its row is newer than its revision.
pub(super) fn presence_from_row(row: &Row, first: usize) -> Result<(Presence, bool), StoreError> {
    let presence = Presence {
        login: Arc::from(row.get::<_, &str>(first)),
        stored: UserPresenceStatus {
            status: status_from_column(i64::from(row.get::<_, i16>(first + 1)))?,
            message: message_from_column(row.get(first + 2))?,
        },
        until: row.get(first + 3),
        revision: row.get(first + 4),
        changed_at: row.get(first + 5),
        absences: absences_from_column(row.get(first + 6))?,
    };
    let pending: bool = row.get(first + 7);
    Ok((presence, pending))
}

/// Reads until no presence read has a change not yet numbered, numbering between reads; a
/// presence that still has one after this many reads (its user changed again and again just
/// then) is answered, but not kept in the cache.
const READS_UNTIL_NUMBERED: usize = 3;

impl PostgresStore {
    /// From memory once a round has shown it current; from the database only the first time
    /// the associate is asked about (or after its entry was evicted).
    pub(in crate::store) async fn presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Arc<Presence>>, StoreError> {
        if let Some(cached) = self.current_users().await?.presence(associate_id) {
            return Ok(cached);
        }
        Ok(self.read_and_keep(&[associate_id]).await?.pop().flatten())
    }

    pub(in crate::store) async fn presences(
        &self,
        associate_ids: &[AssociateId],
    ) -> Result<Vec<Option<Arc<Presence>>>, StoreError> {
        let (cached, missing) = self.current_users().await?.presences(associate_ids);
        let read = if missing.is_empty() {
            Vec::new()
        } else {
            self.read_and_keep(&missing).await?
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

    /// Reads presences the cache lacks and keeps those whose revision is known.
    async fn read_and_keep(
        &self,
        associate_ids: &[AssociateId],
    ) -> Result<Vec<Option<Arc<Presence>>>, StoreError> {
        let (latest, read) = self.read_presences(associate_ids).await?;
        let mut by_id: std::collections::HashMap<i32, (Presence, bool)> = read
            .into_iter()
            .map(|(id, presence)| (id.get(), presence))
            .collect();
        Ok(associate_ids
            .iter()
            .map(|&id| match by_id.remove(&id.get()) {
                Some((presence, pending)) => {
                    let presence = Arc::new(presence);
                    if !pending {
                        self.users
                            .insert_presence(id, Some(presence.clone()), latest);
                    }
                    Some(presence)
                }
                None => {
                    self.users.insert_presence(id, None, latest);
                    None
                }
            })
            .collect())
    }

    /// The presences of the associates that are Service users, and the latest revision
    /// numbered when they were read: each reflects every change up to it, as a change is
    /// committed before it is numbered. Numbers every committed change first, and again while a
    /// row read has a change not yet numbered (see [`READS_UNTIL_NUMBERED`]).
    async fn read_presences(
        &self,
        associate_ids: &[AssociateId],
    ) -> Result<(i64, Vec<(AssociateId, (Presence, bool))>), StoreError> {
        let ids: Vec<i32> = associate_ids.iter().map(|id| id.get()).collect();
        let statement_text = concat!(
            "SELECT (SELECT coalesce(max(revision), 0) FROM user_change), u.associate_id, ",
            presence_columns!(),
            " FROM ",
            presence_tables!(),
            " WHERE u.associate_id = ANY($1)"
        );
        self.read_numbered(statement_text, &[&ids]).await
    }

    /// Runs a query of `(latest revision, associate, presence columns...)` rows until none is
    /// pending or [`READS_UNTIL_NUMBERED`] reads were made.
    async fn read_numbered(
        &self,
        statement_text: &str,
        parameters: &[&(dyn ToSql + Sync)],
    ) -> Result<(i64, Vec<(AssociateId, (Presence, bool))>), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(statement_text)
            .await
            .map_err(classify)?;
        let mut read = 0;
        loop {
            read += 1;
            let rows = client
                .query(&statement, parameters)
                .await
                .map_err(classify)?;
            let latest = rows.first().map_or(0, |row| row.get::<_, i64>(0));
            let presences = rows
                .iter()
                .map(|row| Ok((AssociateId::new(row.get(1)), presence_from_row(row, 2)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let pending = presences.iter().any(|(_, (_, pending))| *pending);
            if !pending || read == READS_UNTIL_NUMBERED {
                return Ok((latest, presences));
            }
            number_user_changes(&client).await?;
        }
    }

    pub(in crate::store) async fn read_presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Arc<Presence>>, StoreError> {
        let (_, mut read) = self.read_presences(&[associate_id]).await?;
        Ok(read.pop().map(|(_, (presence, _))| Arc::new(presence)))
    }

    pub(in crate::store) async fn presence_page(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(AssociateId, Arc<Presence>)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement_text = concat!(
            "SELECT (SELECT coalesce(max(revision), 0) FROM user_change), u.associate_id, ",
            presence_columns!(),
            " FROM ",
            presence_tables!(),
            " WHERE u.associate_id > $1::BIGINT ORDER BY u.associate_id LIMIT $2"
        );
        let (_, page) = self
            .read_numbered(statement_text, &[&after, &limit])
            .await?;
        Ok(page
            .into_iter()
            .map(|(id, (presence, _))| (id, Arc::new(presence)))
            .collect())
    }

    pub(in crate::store) async fn set_presence(
        &self,
        associate_id: AssociateId,
        presence: UserPresenceStatus,
        actor: &Actor,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        let _waiting = self.sets.try_acquire().map_err(|_| StoreError::Busy)?;
        let by = WrittenBy::of(actor);
        let client = self.client().await?;
        // A SuperOffice Set ends any timed status.
        let statement = client
            .prepare_cached(
                "UPDATE service_user SET status = $2, message = $3, until = NULL, updated_at = $4,
                                         by_kind = $5, by_associate = $6, via_scheme = $7,
                                         via_application = $8
                 WHERE associate_id = $1",
            )
            .await
            .map_err(classify)?;
        let changed = client
            .execute(
                &statement,
                &[
                    &associate_id.get(),
                    &status_column(&presence),
                    &presence.message.as_deref(),
                    &unix_millis(),
                    &by.kind,
                    &by.associate,
                    &by.scheme,
                    &by.application,
                ],
            )
            .await
            .map_err(classify)?;
        Ok((changed == 1).then_some(presence))
    }

    /// One transaction that locks the user's row first: a writer on another node waits for
    /// it, and what this one checks then holds until it commits.
    pub(in crate::store) async fn set_status(
        &self,
        associate_id: AssociateId,
        change: StatusChange,
    ) -> Result<StatusChanged, StoreError> {
        let _waiting = self.sets.try_acquire().map_err(|_| StoreError::Busy)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let Some(_login) = lock_user(&tx, associate_id).await? else {
            return Ok(StatusChanged::NoUser);
        };
        if let Some(wanted) = change.if_revision {
            // A change committed and not yet numbered is newer than any revision a client
            // can have seen.
            let row = tx
                .query_one(
                    "SELECT coalesce((SELECT revision FROM user_revision WHERE associate_id = $1), 0),
                            EXISTS (SELECT 1 FROM user_change
                                    WHERE associate_id = $1 AND revision IS NULL)",
                    &[&associate_id.get()],
                )
                .await
                .map_err(classify)?;
            if row.get::<_, i64>(0) != wanted || row.get::<_, bool>(1) {
                return Ok(StatusChanged::Stale);
            }
        }
        let by = WrittenBy::of(&change.actor);
        tx.execute(
            "UPDATE service_user SET status = $2, message = $3, until = $4, updated_at = $5,
                                     by_kind = $6, by_associate = $7, via_scheme = $8,
                                     via_application = $9
             WHERE associate_id = $1",
            &[
                &associate_id.get(),
                &status_column(&change.presence),
                &change.presence.message.as_deref(),
                &change.until,
                &change.at,
                &by.kind,
                &by.associate,
                &by.scheme,
                &by.application,
            ],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(StatusChanged::Stored)
    }

    pub(in crate::store) async fn plan_absence(
        &self,
        associate_id: AssociateId,
        absence: NewAbsence,
    ) -> Result<AbsencePlanned, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        if lock_user(&tx, associate_id).await?.is_none() {
            return Ok(AbsencePlanned::NoUser);
        }
        let before = presence_in(&tx, associate_id).await?;
        let planned: Vec<&Absence> = before.planned(absence.at).collect();
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
        let id: i64 = tx
            .query_one(
                "INSERT INTO absence (associate_id, starts_at, ends_at, message, created_at,
                                      start_recorded, end_recorded)
                 VALUES ($1, $2, $3, $4, $5, $2::BIGINT <= $5::BIGINT, $3::BIGINT <= $5::BIGINT)
                 RETURNING id",
                &[
                    &associate_id.get(),
                    &absence.from,
                    &absence.until,
                    &absence.message.as_deref(),
                    &absence.at,
                ],
            )
            .await
            .map_err(classify)?
            .get(0);
        let planned = Absence {
            id,
            from: absence.from,
            until: absence.until,
            message: absence.message,
        };
        let after = presence_in(&tx, associate_id).await?;
        let (from, to) = absence_change(&before, &after, absence.at);
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
        )
        .await?;
        tx.commit().await.map_err(classify)?;
        Ok(AbsencePlanned::Planned(planned))
    }

    pub(in crate::store) async fn cancel_absence(
        &self,
        associate_id: AssociateId,
        absence_id: i64,
        at: i64,
        actor: &Actor,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        if lock_user(&tx, associate_id).await?.is_none() {
            return Ok(false);
        }
        let before = presence_in(&tx, associate_id).await?;
        let Some(cancelled) = before
            .absences
            .iter()
            .flat_map(|absences| absences.iter())
            .find(|a| a.id == absence_id)
            .cloned()
        else {
            return Ok(false);
        };
        tx.execute("DELETE FROM absence WHERE id = $1", &[&absence_id])
            .await
            .map_err(classify)?;
        let after = presence_in(&tx, associate_id).await?;
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
                actor,
            },
        )
        .await?;
        tx.commit().await.map_err(classify)?;
        Ok(true)
    }

    pub(in crate::store) async fn delete_ended_absences(
        &self,
        before: i64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            // An end not yet recorded stays until the timer has recorded it.
            .execute(
                "DELETE FROM absence WHERE ends_at < $1 AND end_recorded",
                &[&before],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }
}

/// Locks the user's row for the transaction; the login, or `None` when the associate is no
/// Service user.
pub(super) async fn lock_user(
    tx: &tokio_postgres::Transaction<'_>,
    associate_id: AssociateId,
) -> Result<Option<String>, StoreError> {
    Ok(tx
        .query_opt(
            "SELECT login FROM service_user WHERE associate_id = $1 FOR UPDATE",
            &[&associate_id.get()],
        )
        .await
        .map_err(classify)?
        .map(|row| row.get(0)))
}
