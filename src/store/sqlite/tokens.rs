//! Tickets, access tokens and registered applications, each stored by the hash of its secret.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::domain::AssociateId;
use crate::secret::SecretHash;
use crate::store::{Application, StoreError, TokenKind, TokenOwner, status_from_column};

impl SqliteStore {
    pub(in crate::store) async fn insert_token(
        &self,
        kind: TokenKind,
        hash: SecretHash,
        associate_id: AssociateId,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            // Housekeeping where it costs least: expired tokens go when new ones come.
            tx.execute("DELETE FROM token WHERE expires_at <= ?1", [now])?;
            tx.execute(
                "INSERT INTO token (hash, kind, associate_id, expires_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &hash.0[..],
                    kind as i64,
                    associate_id.get(),
                    expires_at,
                    now
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn find_token(
        &self,
        kind: TokenKind,
        hash: SecretHash,
        now: i64,
    ) -> Result<Option<TokenOwner>, StoreError> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT u.associate_id, u.is_admin, u.status, t.expires_at
                     FROM token t JOIN service_user u ON u.associate_id = t.associate_id
                     WHERE t.hash = ?1 AND t.kind = ?2 AND t.expires_at > ?3",
                )?
                .query_row(params![&hash.0[..], kind as i64, now], |row| {
                    Ok((
                        row.get::<_, i32>(0)?,
                        row.get::<_, bool>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, i64>(3)?,
                    ))
                })
                .optional()?;
            row.map(|(associate_id, is_admin, status, expires_at)| {
                Ok(TokenOwner {
                    associate_id: AssociateId::new(associate_id),
                    is_admin,
                    status: status_from_column(status)?,
                    expires_at,
                })
            })
            .transpose()
        })
        .await
    }

    pub(in crate::store) async fn extend_token(
        &self,
        hash: SecretHash,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE token SET expires_at = ?2 WHERE hash = ?1 AND expires_at < ?2",
            )?
            .execute(params![&hash.0[..], expires_at])?;
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn revoke_tokens(
        &self,
        kind: TokenKind,
        associate_id: AssociateId,
    ) -> Result<usize, StoreError> {
        self.write(move |conn| {
            Ok(conn.execute(
                "DELETE FROM token WHERE associate_id = ?1 AND kind = ?2",
                params![associate_id.get(), kind as i64],
            )?)
        })
        .await
    }

    pub(in crate::store) async fn revoke_token(
        &self,
        kind: TokenKind,
        associate_id: AssociateId,
        hash: SecretHash,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let removed = conn.execute(
                "DELETE FROM token WHERE hash = ?1 AND kind = ?2 AND associate_id = ?3",
                params![&hash.0[..], kind as i64, associate_id.get()],
            )?;
            Ok(removed == 1)
        })
        .await
    }

    pub(in crate::store) async fn add_application(
        &self,
        application: Application,
        token_hash: SecretHash,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO application (name, token_hash, is_partner, grants_user_agent, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
                params![
                    application.name,
                    &token_hash.0[..],
                    application.is_partner,
                    application.grants_user_agent,
                    now
                ],
            )?;
            if inserted == 0 {
                return Err(StoreError::DuplicateApplication(application.name));
            }
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare(
                "SELECT name, is_partner, grants_user_agent FROM application ORDER BY name",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(Application {
                    name: row.get(0)?,
                    is_partner: row.get(1)?,
                    grants_user_agent: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub(in crate::store) async fn remove_application(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.write(move |conn| {
            if conn.execute("DELETE FROM application WHERE name = ?1", [&name])? == 0 {
                return Err(StoreError::UnknownApplication(name));
            }
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn find_application(
        &self,
        token_hash: SecretHash,
    ) -> Result<Option<Application>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT name, is_partner, grants_user_agent FROM application WHERE token_hash = ?1",
                )?
                .query_row([&token_hash.0[..]], |row| {
                    Ok(Application {
                        name: row.get(0)?,
                        is_partner: row.get(1)?,
                        grants_user_agent: row.get(2)?,
                    })
                })
                .optional()?)
        })
        .await
    }
}
