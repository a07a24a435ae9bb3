//! The change log: every change to a Service user, appended unnumbered by its writer and
//! numbered after commit, one numbering at a time across nodes, in the order changes became
//! visible (migration 0005). The cache reads what changed after its revision.

use std::sync::Arc;

use deadpool_postgres::GenericClient;

use super::presence::{presence_columns, presence_from_row, presence_tables};
use super::{PostgresStore, classify};
use crate::domain::AssociateId;
use crate::store::cache::{self, ChangedUser, Changes, RemovedLogin};
use crate::store::{Credentials, StoreError, UserChange};

impl PostgresStore {
    /// Applies every change to Service users since the cache's revision: first numbers every
    /// change committed (see migration 0005), so that the revision the cache then reflects
    /// covers each change committed before this call, then reads those after its revision.
    ///
    /// That the numbering is whole matters beyond this refresh: a lookup that read a row at an
    /// older revision, before a change was committed, is then refused by the cache
    /// (`UserCache::insert_presence`), where it could otherwise be kept after the refresh and
    /// answer the row from before the change.
    pub(super) async fn refresh_users(&self) -> Result<(), StoreError> {
        let since = self.users.revision();
        let client = self.client().await?;
        let (latest, oldest) = number_user_changes(&client).await?;
        let mut changes = Changes {
            revision: latest,
            ..Changes::default()
        };
        // Nothing cached yet (since -1), nothing new, or a database whose revisions went back.
        if since < 0 || latest <= since {
            self.users.apply(changes, None);
            return Ok(());
        }
        let statement = client
            .prepare_cached(concat!(
                "SELECT c.associate_id, c.login, u.associate_id, u.password_hash, u.is_admin, ",
                presence_columns!(),
                " FROM user_change c LEFT JOIN (",
                presence_tables!(),
                ") ON u.associate_id = c.associate_id
                  WHERE c.revision > $1 ORDER BY c.revision LIMIT $2"
            ))
            .await
            .map_err(classify)?;
        let limit = i64::try_from(cache::MAX_CHANGES).unwrap_or(i64::MAX);
        // Rows may reflect changes numbered after `latest`: applying them is harmless, and
        // a later refresh applies them again.
        let rows = client
            .query(&statement, &[&since, &limit])
            .await
            .map_err(classify)?;
        changes.too_many = rows.len() >= cache::MAX_CHANGES || oldest > since + 1;
        for row in rows {
            let changed_login: String = row.get(1);
            let now: Option<i32> = row.get(2);
            let still_named =
                now.is_some() && row.get::<_, &str>(5).eq_ignore_ascii_case(&changed_login);
            if !still_named {
                changes.removed.push(RemovedLogin {
                    login: changed_login,
                    associate_id: AssociateId::new(row.get(0)),
                });
            }
            if let Some(associate_id) = now {
                // A row newer than its revision (changed again since the numbering above) is
                // not kept: its entry is read afresh on its next lookup.
                let (presence, pending) = presence_from_row(&row, 5)?;
                changes.changed.push(ChangedUser {
                    login: presence.login.to_string(),
                    credentials: Credentials {
                        associate_id: AssociateId::new(associate_id),
                        password_hash: row.get::<_, Option<&str>>(3).map(Arc::from),
                        is_admin: row.get(4),
                        status: presence.stored.status,
                    },
                    presence: (!pending).then(|| Arc::new(presence)),
                });
            }
        }
        self.users.apply(changes, None);
        Ok(())
    }

    /// Changes numbered after `after`, oldest first: every change committed is numbered first.
    pub(in crate::store) async fn user_changes_after(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<UserChange>, StoreError> {
        let client = self.client().await?;
        number_user_changes(&client).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = client
            .prepare_cached(
                "SELECT revision, associate_id FROM user_change
                 WHERE revision > $1 ORDER BY revision LIMIT $2",
            )
            .await
            .map_err(classify)?;
        let rows = client
            .query(&statement, &[&after, &limit])
            .await
            .map_err(classify)?;
        Ok(rows
            .iter()
            .map(|row| UserChange {
                revision: row.get(0),
                associate_id: AssociateId::new(row.get(1)),
            })
            .collect())
    }
}

/// Changes numbered in one step at most (see migration 0006): each step ends well within the
/// statement timeout.
const NUMBERING_STEP: i32 = 10_000;

/// Numbers every change committed and not yet numbered, in steps (waiting, if another node is
/// numbering just then, for it to finish); the latest and oldest revision of the log. When it
/// returns, every change committed before it was called is numbered. In a transaction (a bulk
/// import's), the numbering's lock is held to its commit, and the transaction's own changes are
/// numbered too.
pub(super) async fn number_user_changes(
    client: &impl GenericClient,
) -> Result<(i64, i64), StoreError> {
    let statement = client
        .prepare_cached("SELECT latest, oldest, numbered FROM number_user_changes($1)")
        .await
        .map_err(classify)?;
    loop {
        let row = client
            .query_one(&statement, &[&NUMBERING_STEP])
            .await
            .map_err(classify)?;
        if row.get::<_, i32>(2) < NUMBERING_STEP {
            return Ok((row.get(0), row.get(1)));
        }
    }
}
