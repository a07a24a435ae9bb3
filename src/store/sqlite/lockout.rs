//! The lockout's records of password checks, kept by a hash of the login.

use rusqlite::params;

use super::{SqliteStore, in_transaction};
use crate::store::{LoginKey, StoreError};

impl SqliteStore {
    /// One step on the writer thread, so no other check of the login can come between the
    /// count and the insert.
    pub(in crate::store) async fn reserve_login_attempt(
        &self,
        login: LoginKey,
        at: i64,
        since: i64,
        max_failures: u32,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            in_transaction(conn, "BEGIN IMMEDIATE", |tx| {
                let failures: u32 = tx
                    .prepare_cached(
                        "SELECT count(*) FROM login_failure WHERE login_key = ?1 AND failed_at > ?2",
                    )?
                    .query_row(params![&login.0[..], since], |row| row.get(0))?;
                if failures >= max_failures {
                    return Ok(false);
                }
                tx.prepare_cached("INSERT INTO login_failure (login_key, failed_at) VALUES (?1, ?2)")?
                    .execute(params![&login.0[..], at])?;
                Ok(true)
            })
        })
        .await
    }

    pub(in crate::store) async fn clear_login_failures(
        &self,
        login: LoginKey,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM login_failure WHERE login_key = ?1")?
                .execute([&login.0[..]])?;
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn expire_login_failures(
        &self,
        before: i64,
    ) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let removed = conn
                .prepare_cached("DELETE FROM login_failure WHERE failed_at <= ?1")?
                .execute([before])?;
            Ok(removed as u64)
        })
        .await
    }
}
