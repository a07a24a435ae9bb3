//! Presence: the hot path of every ticket assignment, read from the cached users, and Sets.

use super::{PostgresStore, classify, presence_from_row, status_column};
use crate::domain::{AssociateId, UserPresenceStatus};
use crate::store::{StoreError, unix_millis};

impl PostgresStore {
    /// From memory once a round has shown it current; from the database only the first time
    /// the associate is asked about (or after its entry was evicted).
    pub(in crate::store) async fn presence(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        if let Some(cached) = self.current_users().await?.presence(associate_id) {
            return Ok(cached);
        }
        let client = self.client().await?;
        // The row, and the latest revision numbered when it was read: it reflects every change
        // up to that revision, as a change is committed before it is numbered.
        let statement = client
            .prepare_cached(
                "SELECT (SELECT coalesce(max(revision), 0) FROM user_change), u.status, u.message
                 FROM (SELECT 1) AS one LEFT JOIN service_user u ON u.associate_id = $1",
            )
            .await
            .map_err(classify)?;
        let row = client
            .query_one(&statement, &[&associate_id.get()])
            .await
            .map_err(classify)?;
        let presence = match row.get::<_, Option<i16>>(1) {
            Some(_) => Some(presence_from_row(&row, 1)?),
            None => None,
        };
        self.users
            .insert_presence(associate_id, presence.clone(), row.get(0));
        Ok(presence)
    }

    pub(in crate::store) async fn set_presence(
        &self,
        associate_id: AssociateId,
        presence: UserPresenceStatus,
    ) -> Result<Option<UserPresenceStatus>, StoreError> {
        let _waiting = self.sets.try_acquire().map_err(|_| StoreError::Busy)?;
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "UPDATE service_user SET status = $2, message = $3, updated_at = $4
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
                ],
            )
            .await
            .map_err(classify)?;
        Ok((changed == 1).then_some(presence))
    }
}
