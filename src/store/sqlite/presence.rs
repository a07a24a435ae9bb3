//! Presence: the hot path of every ticket assignment, read from the cached users, and Sets,
//! committed by the writer thread.

use super::SqliteStore;
use crate::domain::{AssociateId, UserPresenceStatus};
use crate::store::{StoreError, message_from_column, status_from_column};

impl SqliteStore {
    /// From memory; from the database only the first time the associate is asked about (or
    /// after its entry was evicted).
    pub(in crate::store) async fn presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        if let Some(cached) = self.current_users().await?.presence(associate_id) {
            return Ok(cached);
        }
        let (revision, status, message) = self
            .read(move |conn| {
                // Not a join: a parameter in a LEFT JOIN's ON makes SQLite prepare the statement
                // again on every run. The aggregate makes exactly one row, user or not.
                Ok(conn
                    .prepare_cached(
                        "SELECT coalesce(max(revision), 0),
                            (SELECT status FROM service_user WHERE associate_id = ?1),
                            (SELECT message FROM service_user WHERE associate_id = ?1)
                     FROM user_change",
                    )?
                    .query_row([associate_id.get()], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, Option<i64>>(1)?,
                            row.get::<_, Option<String>>(2)?,
                        ))
                    })?)
            })
            .await?;
        let presence = status
            .map(|status| {
                Ok::<_, StoreError>(UserPresenceStatus {
                    status: status_from_column(status)?,
                    message: message_from_column(message)?,
                })
            })
            .transpose()?;
        self.inner
            .users
            .cache
            .insert_presence(associate_id, presence.clone(), revision);
        Ok(presence)
    }

    /// Stores a presence through the writer thread, answering once its commit is done.
    pub(in crate::store) async fn set_presence(
        &self,
        associate_id: AssociateId,
        presence: UserPresenceStatus,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        self.inner.writer.set_presence(associate_id, presence).await
    }
}
