//! The lockout's records of password checks, kept by a hash of the login.

use super::{PostgresStore, classify};
use crate::store::{LoginKey, StoreError};

impl PostgresStore {
    /// One statement: the function takes a lock on the login's key for its transaction
    /// (migration 0005), so the count and the insert are one step across nodes.
    pub(in crate::store) async fn reserve_login_attempt(
        &self,
        login: LoginKey,
        at: i64,
        since: i64,
        max_failures: u32,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let max_failures = i32::try_from(max_failures).unwrap_or(i32::MAX);
        let statement = client
            .prepare_cached("SELECT reserve_login_attempt($1, $2, $3, $4)")
            .await
            .map_err(classify)?;
        let row = client
            .query_one(&statement, &[&&login.0[..], &at, &since, &max_failures])
            .await
            .map_err(classify)?;
        Ok(row.get(0))
    }

    pub(in crate::store) async fn clear_login_failures(
        &self,
        login: LoginKey,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM login_failure WHERE login_key = $1",
                &[&&login.0[..]],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub(in crate::store) async fn expire_login_failures(
        &self,
        before: i64,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM login_failure WHERE failed_at <= $1",
                &[&before],
            )
            .await
            .map_err(classify)
    }
}
