//! Tickets, access tokens and registered applications, each stored by the hash of its secret.

use tokio_postgres::Row;

use super::{PostgresStore, classify};
use crate::domain::AssociateId;
use crate::secret::SecretHash;
use crate::store::{Application, StoreError, TokenKind, TokenOwner, folded, status_from_column};

impl PostgresStore {
    pub(in crate::store) async fn insert_token(
        &self,
        kind: TokenKind,
        hash: SecretHash,
        associate_id: AssociateId,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        // Housekeeping where it costs least: expired tokens go when new ones come.
        tx.execute("DELETE FROM token WHERE expires_at <= $1", &[&now])
            .await
            .map_err(classify)?;
        tx.execute(
            "INSERT INTO token (hash, kind, associate_id, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &&hash.0[..],
                &(kind as i16),
                &associate_id.get(),
                &expires_at,
                &now,
            ],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    pub(in crate::store) async fn find_token(
        &self,
        kind: TokenKind,
        hash: SecretHash,
        now: i64,
    ) -> Result<Option<TokenOwner>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT u.associate_id, u.is_admin, u.status, t.expires_at
                 FROM token t JOIN service_user u ON u.associate_id = t.associate_id
                 WHERE t.hash = $1 AND t.kind = $2 AND t.expires_at > $3",
            )
            .await
            .map_err(classify)?;
        let row = client
            .query_opt(&statement, &[&&hash.0[..], &(kind as i16), &now])
            .await
            .map_err(classify)?;
        row.map(|row| {
            Ok(TokenOwner {
                associate_id: AssociateId::new(row.get(0)),
                is_admin: row.get(1),
                status: status_from_column(i64::from(row.get::<_, i16>(2)))?,
                expires_at: row.get(3),
            })
        })
        .transpose()
    }

    pub(in crate::store) async fn extend_token(
        &self,
        hash: SecretHash,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE token SET expires_at = $2 WHERE hash = $1 AND expires_at < $2",
                &[&&hash.0[..], &expires_at],
            )
            .await
            .map_err(classify)?;
        Ok(())
    }

    pub(in crate::store) async fn revoke_tokens(
        &self,
        kind: TokenKind,
        associate_id: AssociateId,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute(
                "DELETE FROM token WHERE associate_id = $1 AND kind = $2",
                &[&associate_id.get(), &(kind as i16)],
            )
            .await
            .map_err(classify)?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    pub(in crate::store) async fn revoke_token(
        &self,
        kind: TokenKind,
        associate_id: AssociateId,
        hash: SecretHash,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute(
                "DELETE FROM token WHERE hash = $1 AND kind = $2 AND associate_id = $3",
                &[&&hash.0[..], &(kind as i16), &associate_id.get()],
            )
            .await
            .map_err(classify)?;
        Ok(removed == 1)
    }

    pub(in crate::store) async fn add_application(
        &self,
        application: Application,
        token_hash: SecretHash,
        now: i64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        let inserted = client
            .execute(
                "INSERT INTO application (name, name_folded, token_hash, is_partner, grants_user_agent, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name_folded) DO NOTHING",
                &[
                    &application.name,
                    &folded(&application.name),
                    &&token_hash.0[..],
                    &application.is_partner,
                    &application.grants_user_agent,
                    &now,
                ],
            )
            .await
            .map_err(classify)?;
        if inserted == 0 {
            return Err(StoreError::DuplicateApplication(application.name.clone()));
        }
        Ok(())
    }

    pub(in crate::store) async fn list_applications(&self) -> Result<Vec<Application>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT name, is_partner, grants_user_agent FROM application ORDER BY name_folded",
                &[],
            )
            .await
            .map_err(classify)?;
        Ok(rows.iter().map(application_from_row).collect())
    }

    pub(in crate::store) async fn remove_application(&self, name: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let removed = client
            .execute(
                "DELETE FROM application WHERE name_folded = $1",
                &[&folded(name)],
            )
            .await
            .map_err(classify)?;
        if removed == 0 {
            return Err(StoreError::UnknownApplication(name.to_owned()));
        }
        Ok(())
    }

    pub(in crate::store) async fn find_application(
        &self,
        token_hash: SecretHash,
    ) -> Result<Option<Application>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT name, is_partner, grants_user_agent FROM application WHERE token_hash = $1",
            )
            .await
            .map_err(classify)?;
        let row = client
            .query_opt(&statement, &[&&token_hash.0[..]])
            .await
            .map_err(classify)?;
        Ok(row.as_ref().map(application_from_row))
    }
}

fn application_from_row(row: &Row) -> Application {
    Application {
        name: row.get(0),
        is_partner: row.get(1),
        grants_user_agent: row.get(2),
    }
}
