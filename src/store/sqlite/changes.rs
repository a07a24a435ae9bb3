//! The change log: every change to a Service user, numbered in commit order by the one writer
//! SQLite admits at a time (migration 0004). The cache reads what changed after its revision;
//! the history's retention trims the log's old end (`history.rs`).

use rusqlite::{Connection, params};

use std::sync::Arc;

use super::presence::{presence_columns, presence_from_row};
use super::{SqliteStore, in_transaction};
use crate::domain::AssociateId;
use crate::store::cache::{self, ChangedUser, Changes, RemovedLogin};
use crate::store::{Credentials, StoreError, UserChange};

impl SqliteStore {
    /// Changes numbered after `after`, oldest first. One writer at a time numbers them in
    /// commit order, so a change never appears below one already seen.
    pub(in crate::store) async fn user_changes_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<UserChange>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT revision, associate_id FROM user_change
                 WHERE revision > ?1 ORDER BY revision LIMIT ?2",
            )?;
            let rows = statement.query_map(params![after, limit], |row| {
                Ok(UserChange {
                    revision: row.get(0)?,
                    associate_id: AssociateId::new(row.get(1)?),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

/// The revision of the latest change to a Service user; 0 before the first.
pub(super) fn latest_revision(connection: &Connection) -> rusqlite::Result<i64> {
    connection
        .prepare_cached("SELECT coalesce(max(revision), 0) FROM user_change")?
        .query_row([], |row| row.get(0))
}

/// Every change to Service users after revision `since`, read in one transaction.
pub(super) fn user_changes(connection: &Connection, since: i64) -> Result<Changes, StoreError> {
    in_transaction(connection, "BEGIN", |tx| user_changes_in(tx, since))
}

fn user_changes_in(tx: &Connection, since: i64) -> Result<Changes, StoreError> {
    let (revision, oldest): (i64, i64) = tx
        // Each aggregate in a subquery of its own: SQLite reads only the end of the table for
        // a lone max() or min(), but the whole table for both together.
        .prepare_cached(
            "SELECT coalesce((SELECT max(revision) FROM user_change), 0),
                    coalesce((SELECT min(revision) FROM user_change), 0)",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let mut changes = Changes {
        revision,
        ..Changes::default()
    };
    // Nothing cached yet (since -1), nothing new, or a database whose revisions went back.
    if since < 0 || revision <= since {
        return Ok(changes);
    }
    let mut log = tx.prepare_cached(concat!(
        "SELECT c.associate_id, c.login, u.associate_id, u.password_hash, u.is_admin, ",
        presence_columns!(),
        " FROM user_change c LEFT JOIN service_user u ON u.associate_id = c.associate_id
          WHERE c.revision > ?1 ORDER BY c.revision"
    ))?;
    // No LIMIT ?: a bound LIMIT makes SQLite prepare the statement again on every run.
    let mut rows = log.query([since])?;
    let mut logged = 0;
    while let Some(row) = rows.next()? {
        logged += 1;
        if logged > cache::MAX_CHANGES {
            break;
        }
        let (changed_id, changed_login): (i32, String) = (row.get(0)?, row.get(1)?);
        let now = match row.get::<_, Option<i32>>(2)? {
            Some(id) => Some((id, presence_from_row(row, 5)?)),
            None => None,
        };
        let still_named = now
            .as_ref()
            .is_some_and(|(_, presence)| presence.login.eq_ignore_ascii_case(&changed_login));
        if !still_named {
            changes.removed.push(RemovedLogin {
                login: changed_login,
                associate_id: AssociateId::new(changed_id),
            });
        }
        if let Some((associate_id, presence)) = now {
            changes.changed.push(ChangedUser {
                login: presence.login.to_string(),
                credentials: Credentials {
                    associate_id: AssociateId::new(associate_id),
                    password_hash: row.get(3)?,
                    is_admin: row.get(4)?,
                    status: presence.stored.status,
                },
                presence: Some(Arc::new(presence)),
            });
        }
    }
    // The log's old end is trimmed (see `history::trim_step`): changes older than what is
    // left cannot be told apart, so the cache starts afresh.
    changes.too_many = logged > cache::MAX_CHANGES || oldest > since + 1;
    Ok(changes)
}
