//! Service users: the cached copy made current, credentials by login and by associate, and the
//! administration commands' adding, listing, renaming and removing.

use std::cell::Cell;
use std::sync::{Arc, RwLockReadGuard};

use tokio_postgres::error::SqlState;

use super::{PostgresStore, classify, status_column, stored_from_row};
use crate::domain::{Actor, AssociateId};
use crate::store::cache;
use crate::store::{
    Credentials, ImportedUsers, NewServiceUser, ServiceUser, StoreError, folded,
    status_from_column, unix_millis,
};

impl PostgresStore {
    /// The cached users, after a round that began after this call.
    ///
    /// Within one request (see [`super::one_request`]) only the first lookup waits: the round
    /// it waited for began after the request arrived, which is all the later ones need too.
    pub(super) async fn current_users(
        &self,
    ) -> Result<RwLockReadGuard<'_, cache::State<()>>, StoreError> {
        if !crate::store::REQUEST_SAW_A_ROUND
            .try_with(Cell::get)
            .unwrap_or(false)
        {
            let store = self.clone();
            self.rounds
                .join(move || {
                    let store = store.clone();
                    async move { store.refresh_users().await }
                })
                .await?;
            // Outside a request there is nothing to remember it in, and nothing to reuse it.
            let _ = crate::store::REQUEST_SAW_A_ROUND.try_with(|saw| saw.set(true));
        }
        Ok(self.users.entries())
    }

    /// From memory, like [`PostgresStore::presence`].
    pub(in crate::store) async fn credentials(
        &self,
        login: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        if let Some(cached) = self.current_users().await?.credentials(login) {
            return Ok(cached);
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT (SELECT coalesce(max(revision), 0) FROM user_change),
                        u.associate_id, u.password_hash, u.is_admin, u.status
                 FROM (SELECT 1) AS one LEFT JOIN service_user u ON u.login_folded = $1",
            )
            .await
            .map_err(classify)?;
        let row = client
            .query_one(&statement, &[&folded(login)])
            .await
            .map_err(classify)?;
        let credentials = match row.get::<_, Option<i32>>(1) {
            Some(associate_id) => Some(Credentials {
                associate_id: AssociateId::new(associate_id),
                password_hash: row.get::<_, Option<&str>>(2).map(Arc::from),
                is_admin: row.get(3),
                status: status_from_column(i64::from(row.get::<_, i16>(4)))?,
            }),
            None => None,
        };
        self.users
            .insert_credentials(login, credentials.clone(), row.get(0));
        Ok(credentials)
    }

    pub(in crate::store) async fn credentials_of(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Credentials>, StoreError> {
        self.credentials_where("associate_id = $1", &associate_id.get())
            .await
    }

    async fn credentials_where(
        &self,
        condition: &str,
        key: &(dyn tokio_postgres::types::ToSql + Sync),
    ) -> Result<Option<Credentials>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&format!(
                "SELECT associate_id, password_hash, is_admin, status FROM service_user WHERE {condition}"
            ))
            .await
            .map_err(classify)?;
        let row = client
            .query_opt(&statement, &[key])
            .await
            .map_err(classify)?;
        row.map(|row| {
            Ok(Credentials {
                associate_id: AssociateId::new(row.get(0)),
                password_hash: row.get::<_, Option<&str>>(1).map(Arc::from),
                is_admin: row.get(2),
                status: status_from_column(i64::from(row.get::<_, i16>(3)))?,
            })
        })
        .transpose()
    }

    pub(in crate::store) async fn add_user(&self, user: NewServiceUser) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // Checked first so the error names which of the two is taken; the unique constraints
        // still decide a race between two nodes.
        let login_taken = tx
            .query_opt(
                "SELECT 1 FROM service_user WHERE login_folded = $1",
                &[&folded(&user.login)],
            )
            .await
            .map_err(classify)?
            .is_some();
        if login_taken {
            return Err(StoreError::DuplicateLogin(user.login.clone()));
        }
        let associate_taken = tx
            .query_opt(
                "SELECT 1 FROM service_user WHERE associate_id = $1",
                &[&user.associate_id.get()],
            )
            .await
            .map_err(classify)?
            .is_some();
        if associate_taken {
            return Err(StoreError::DuplicateAssociate(user.associate_id));
        }
        tx.execute(
            "INSERT INTO service_user
                 (associate_id, login, login_folded, password_hash, is_admin, status, message, updated_at,
                  by_kind)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &user.associate_id.get(),
                &user.login,
                &folded(&user.login),
                &user.password_hash,
                &user.is_admin,
                &status_column(&user.presence),
                &user.presence.message.as_deref(),
                &unix_millis(),
                &Actor::COMMAND_LINE.by.kind(),
            ],
        )
        .await
        .map_err(|e| match e.code() {
            Some(&SqlState::UNIQUE_VIOLATION) => StoreError::DuplicateLogin(user.login.clone()),
            _ => classify(e),
        })?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    /// Copies the users into a temporary table (COPY, the fastest way in), adds in one
    /// statement those not there yet, then looks for any whose login or associate turned out
    /// to be another user's. The change log's trigger logs each row added; the changes are
    /// numbered before the commit, under the numbering's lock, which keeps them in order (no
    /// numbering can run between that and the commit) and spares the first server to look
    /// afterwards numbering a million rows within its statement timeout.
    pub(in crate::store) async fn import_users(
        &self,
        users: Vec<NewServiceUser>,
    ) -> Result<ImportedUsers, StoreError> {
        use tokio_postgres::binary_copy::BinaryCopyInWriter;
        use tokio_postgres::types::Type;

        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // The statements below take as long as the users are many; the import is one
        // administrator's command, not a request that must give up within a bound.
        tx.batch_execute(
            "SET LOCAL statement_timeout = 0;
             CREATE TEMPORARY TABLE user_import (
                 associate_id  INTEGER  NOT NULL,
                 login         TEXT     NOT NULL,
                 login_folded  TEXT     NOT NULL,
                 password_hash TEXT,
                 is_admin      BOOLEAN  NOT NULL,
                 status        SMALLINT NOT NULL,
                 message       TEXT
             ) ON COMMIT DROP",
        )
        .await
        .map_err(classify)?;
        let sink = tx
            .copy_in("COPY user_import FROM STDIN (FORMAT binary)")
            .await
            .map_err(classify)?;
        let writer = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT4,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::BOOL,
                Type::INT2,
                Type::TEXT,
            ],
        );
        let mut writer = std::pin::pin!(writer);
        for user in &users {
            writer
                .as_mut()
                .write(&[
                    &user.associate_id.get(),
                    &user.login,
                    &folded(&user.login),
                    &user.password_hash,
                    &user.is_admin,
                    &status_column(&user.presence),
                    &user.presence.message.as_deref(),
                ])
                .await
                .map_err(classify)?;
        }
        writer.as_mut().finish().await.map_err(classify)?;
        let added = tx
            .execute(
                "INSERT INTO service_user
                     (associate_id, login, login_folded, password_hash, is_admin, status, message,
                      updated_at, by_kind)
                 SELECT associate_id, login, login_folded, password_hash, is_admin, status, message,
                        $1, $2
                 FROM user_import
                 ON CONFLICT DO NOTHING",
                &[&unix_millis(), &Actor::COMMAND_LINE.by.kind()],
            )
            .await
            .map_err(classify)?;
        // Every user imported is now the same login and associate as a row: added, or found.
        let conflict = tx
            .query_opt(
                "SELECT i.associate_id, i.login,
                        EXISTS (SELECT 1 FROM service_user u WHERE u.login_folded = i.login_folded)
                 FROM user_import i
                 WHERE NOT EXISTS (SELECT 1 FROM service_user u
                                   WHERE u.associate_id = i.associate_id
                                     AND u.login_folded = i.login_folded)
                 LIMIT 1",
                &[],
            )
            .await
            .map_err(classify)?;
        if let Some(row) = conflict {
            return Err(if row.get(2) {
                StoreError::DuplicateLogin(row.get(1))
            } else {
                StoreError::DuplicateAssociate(AssociateId::new(row.get(0)))
            });
        }
        // Numbered here, under the numbering's lock held to this commit: the import pays for
        // numbering its changes, not the first requests of the servers after it.
        super::changes::number_user_changes(&tx).await?;
        tx.commit().await.map_err(classify)?;
        let added = usize::try_from(added).unwrap_or(usize::MAX);
        Ok(ImportedUsers {
            added,
            unchanged: users.len().saturating_sub(added),
        })
    }

    pub(in crate::store) async fn list_users(&self) -> Result<Vec<ServiceUser>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT status, message, associate_id, login, is_admin, password_hash IS NOT NULL
                 FROM service_user ORDER BY associate_id",
                &[],
            )
            .await
            .map_err(classify)?;
        rows.iter()
            .map(|row| {
                Ok(ServiceUser {
                    presence: stored_from_row(row, 0)?,
                    associate_id: AssociateId::new(row.get(2)),
                    login: row.get(3),
                    is_admin: row.get(4),
                    has_password: row.get(5),
                })
            })
            .collect()
    }

    pub(in crate::store) async fn set_password(
        &self,
        login: &str,
        password_hash: String,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let changed = client
            .execute(
                "UPDATE service_user SET password_hash = $2 WHERE login_folded = $1",
                &[&folded(login), &password_hash],
            )
            .await
            .map_err(classify)?;
        if changed == 0 {
            return Err(StoreError::UnknownLogin(login.to_owned()));
        }
        Ok(())
    }

    pub(in crate::store) async fn remove_user(&self, login: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // Who removed the user, and when, for the trigger that logs the removal.
        tx.execute(
            "UPDATE service_user SET by_kind = $2, by_associate = NULL, via_scheme = NULL,
                                     via_application = NULL, updated_at = $3
             WHERE login_folded = $1",
            &[
                &folded(login),
                &Actor::COMMAND_LINE.by.kind(),
                &unix_millis(),
            ],
        )
        .await
        .map_err(classify)?;
        let changed = tx
            .execute(
                "DELETE FROM service_user WHERE login_folded = $1",
                &[&folded(login)],
            )
            .await
            .map_err(classify)?;
        if changed == 0 {
            return Err(StoreError::UnknownLogin(login.to_owned()));
        }
        tx.commit().await.map_err(classify)?;
        Ok(())
    }
}
