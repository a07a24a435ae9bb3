//! The texts `[SR_NAME]` references are replaced with.

use tokio_postgres::Row;

use super::{PostgresStore, classify};
use crate::language::{Language, Resource};
use crate::store::StoreError;

impl PostgresStore {
    pub(in crate::store) async fn import_resources(
        &self,
        resources: Vec<Resource>,
    ) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(classify)?;
        let count = upsert_resources(&tx, &resources).await?;
        tx.commit().await.map_err(classify)?;
        Ok(count)
    }

    pub(in crate::store) async fn list_resources(
        &self,
        language: Option<Language>,
    ) -> Result<Vec<Resource>, StoreError> {
        let client = self.client().await?;
        let code = language.map(Language::iso);
        let rows = client
            .query(
                "SELECT name, language, text FROM resource
                 WHERE $1::TEXT IS NULL OR language = $1 ORDER BY name, language",
                &[&code],
            )
            .await
            .map_err(classify)?;
        rows.iter().map(resource_from_row).collect()
    }

    pub(in crate::store) async fn resources(
        &self,
        names: &[String],
        language: Language,
    ) -> Result<Vec<Resource>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT name, language, text FROM resource
                 WHERE name = ANY($1) AND language IN ($2, 'en')",
            )
            .await
            .map_err(classify)?;
        let rows = client
            .query(&statement, &[&names, &language.iso()])
            .await
            .map_err(classify)?;
        rows.iter().map(resource_from_row).collect()
    }
}

fn resource_from_row(row: &Row) -> Result<Resource, StoreError> {
    let code: &str = row.get(1);
    let language = Language::from_tag(code)
        .ok_or_else(|| StoreError::Corrupt(format!("resource language {code:?}")))?;
    Ok(Resource {
        name: row.get(0),
        language,
        text: row.get(2),
    })
}

pub(super) async fn upsert_resources(
    tx: &deadpool_postgres::Transaction<'_>,
    resources: &[Resource],
) -> Result<usize, StoreError> {
    let statement = tx
        .prepare(
            "INSERT INTO resource (name, language, text) VALUES ($1, $2, $3)
             ON CONFLICT (name, language) DO UPDATE SET text = excluded.text",
        )
        .await
        .map_err(classify)?;
    for resource in resources {
        tx.execute(
            &statement,
            &[&resource.name, &resource.language.iso(), &resource.text],
        )
        .await
        .map_err(classify)?;
    }
    Ok(resources.len())
}
