//! Service users: the cached copy made current, credentials by login and by associate, and the
//! administration commands' adding, listing, renaming and removing.

use std::sync::{Arc, RwLockReadGuard};

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::changes::{latest_revision, user_changes};
use super::wal_index::Reading;
use super::{SqliteStore, in_transaction};
use crate::domain::{Actor, AssociateId, UserPresenceStatus};
use crate::store::cache;
use crate::store::{
    Credentials, ImportedUsers, NewServiceUser, ServiceUser, StoreError, message_from_column,
    status_from_column, unix_millis,
};

impl SqliteStore {
    /// The cached users, first brought up to date if anything was committed since they last
    /// were.
    pub(super) async fn current_users(
        &self,
    ) -> Result<RwLockReadGuard<'_, cache::State<Reading>>, StoreError> {
        let users = &*self.inner.users;
        if let Some(state) = users.cache.current(users.look()) {
            return Ok(state);
        }
        self.refresh_users().await?;
        Ok(users.cache.entries())
    }

    /// Applies every change committed since the cache's revision.
    async fn refresh_users(&self) -> Result<(), StoreError> {
        let users = &*self.inner.users;
        let _one_at_a_time = users.refreshing.lock().await;
        // Read before the changes are: a commit in between is then both applied and seen
        // as a change next time, never missed.
        let mark = users.look();
        if users.cache.current(mark).is_some() {
            return Ok(());
        }
        let since = users.cache.revision();
        let changes = self.read(move |conn| user_changes(conn, since)).await?;
        users.cache.apply(changes, mark);
        Ok(())
    }

    /// From memory, like [`SqliteStore::presence`].
    pub(in crate::store) async fn credentials(
        &self,
        login: &str,
    ) -> Result<Option<Credentials>, StoreError> {
        if let Some(cached) = self.current_users().await?.credentials(login) {
            return Ok(cached);
        }
        let owned = login.to_owned();
        let (revision, credentials) = self
            .read(move |conn| {
                in_transaction(conn, "BEGIN", |conn| {
                    let revision = latest_revision(conn)?;
                    let statement = conn.prepare_cached(
                        "SELECT associate_id, password_hash, is_admin, status
                         FROM service_user WHERE login = ?1",
                    )?;
                    Ok((revision, credentials_row(statement, &owned)?))
                })
            })
            .await?;
        self.inner
            .users
            .cache
            .insert_credentials(login, credentials.clone(), revision);
        Ok(credentials)
    }

    pub(in crate::store) async fn credentials_of(
        &self,
        associate_id: AssociateId,
    ) -> Result<Option<Credentials>, StoreError> {
        self.read(move |conn| {
            let statement = conn.prepare_cached(
                "SELECT associate_id, password_hash, is_admin, status
                 FROM service_user WHERE associate_id = ?1",
            )?;
            credentials_row(statement, associate_id.get())
        })
        .await
    }

    pub(in crate::store) async fn add_user(&self, user: NewServiceUser) -> Result<(), StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Checked first so the error names which of the two is taken.
            let login_taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM service_user WHERE login = ?1)",
                [&user.login],
                |row| row.get(0),
            )?;
            if login_taken {
                return Err(StoreError::DuplicateLogin(user.login.clone()));
            }
            let associate_taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM service_user WHERE associate_id = ?1)",
                [user.associate_id.get()],
                |row| row.get(0),
            )?;
            if associate_taken {
                return Err(StoreError::DuplicateAssociate(user.associate_id));
            }
            tx.execute(
                "INSERT INTO service_user
                     (associate_id, login, password_hash, is_admin, status, message, updated_at,
                      by_kind)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    user.associate_id.get(),
                    user.login,
                    user.password_hash,
                    user.is_admin,
                    user.presence.status.number(),
                    user.presence.message.as_deref(),
                    unix_millis(),
                    Actor::COMMAND_LINE.by.kind()
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn import_users(
        &self,
        users: Vec<NewServiceUser>,
    ) -> Result<ImportedUsers, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut imported = ImportedUsers::default();
            {
                // Each user is one row inserted or found: prepared once, run per user, which
                // SQLite does about as fast as a multi-row insert, without its bound on
                // parameters. The change log's trigger logs each row added.
                let mut insert = tx.prepare(
                    "INSERT INTO service_user
                         (associate_id, login, password_hash, is_admin, status, message, updated_at,
                          by_kind)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT DO NOTHING",
                )?;
                let mut login_of =
                    tx.prepare("SELECT login FROM service_user WHERE associate_id = ?1")?;
                let now = unix_millis();
                let by = Actor::COMMAND_LINE.by.kind();
                for user in users {
                    let added = insert.execute(params![
                        user.associate_id.get(),
                        user.login,
                        user.password_hash,
                        user.is_admin,
                        user.presence.status.number(),
                        user.presence.message.as_deref(),
                        now,
                        by
                    ])?;
                    if added == 1 {
                        imported.added += 1;
                        continue;
                    }
                    let existing: Option<String> = login_of
                        .query_row([user.associate_id.get()], |row| row.get(0))
                        .optional()?;
                    match existing {
                        Some(login) if login.eq_ignore_ascii_case(&user.login) => {
                            imported.unchanged += 1;
                        }
                        Some(_) => return Err(StoreError::DuplicateAssociate(user.associate_id)),
                        None => return Err(StoreError::DuplicateLogin(user.login)),
                    }
                }
            }
            tx.commit()?;
            Ok(imported)
        })
        .await
    }

    pub(in crate::store) async fn list_users(&self) -> Result<Vec<ServiceUser>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare(
                "SELECT associate_id, login, is_admin, password_hash IS NOT NULL, status, message
                 FROM service_user ORDER BY associate_id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok((
                    row.get::<_, i32>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, bool>(2)?,
                    row.get::<_, bool>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, Option<String>>(5)?,
                ))
            })?;
            rows.map(|row| {
                let (associate_id, login, is_admin, has_password, status, message) = row?;
                Ok(ServiceUser {
                    associate_id: AssociateId::new(associate_id),
                    login,
                    is_admin,
                    has_password,
                    presence: UserPresenceStatus {
                        status: status_from_column(status)?,
                        message: message_from_column(message)?,
                    },
                })
            })
            .collect()
        })
        .await
    }

    pub(in crate::store) async fn set_password(
        &self,
        login: &str,
        password_hash: String,
    ) -> Result<(), StoreError> {
        let login = login.to_owned();
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE service_user SET password_hash = ?2 WHERE login = ?1",
                params![login, password_hash],
            )?;
            if changed == 0 {
                return Err(StoreError::UnknownLogin(login));
            }
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn remove_user(&self, login: &str) -> Result<(), StoreError> {
        let login = login.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Who removed the user, and when, for the trigger that logs the removal.
            tx.execute(
                "UPDATE service_user SET by_kind = ?2, by_associate = NULL, via_scheme = NULL,
                                         via_application = NULL, updated_at = ?3
                 WHERE login = ?1",
                params![login, Actor::COMMAND_LINE.by.kind(), unix_millis()],
            )?;
            let changed = tx.execute("DELETE FROM service_user WHERE login = ?1", [&login])?;
            if changed == 0 {
                return Err(StoreError::UnknownLogin(login));
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

fn credentials_row(
    mut statement: rusqlite::CachedStatement<'_>,
    key: impl rusqlite::ToSql,
) -> Result<Option<Credentials>, StoreError> {
    let row = statement
        .query_row([key], |row| {
            Ok((
                row.get::<_, i32>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, bool>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })
        .optional()?;
    row.map(|(associate_id, password_hash, is_admin, status)| {
        Ok(Credentials {
            associate_id: AssociateId::new(associate_id),
            password_hash: password_hash.map(Arc::from),
            is_admin,
            status: status_from_column(status)?,
        })
    })
    .transpose()
}
