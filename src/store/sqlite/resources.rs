//! The texts `[SR_NAME]` references are replaced with.

use rusqlite::params;

use super::SqliteStore;
use crate::language::{Language, Resource};
use crate::store::StoreError;

impl SqliteStore {
    pub(in crate::store) async fn import_resources(
        &self,
        resources: Vec<Resource>,
    ) -> Result<usize, StoreError> {
        self.write(move |conn| {
            let tx = conn.transaction()?;
            let count = upsert_resources(&tx, &resources)?;
            tx.commit()?;
            Ok(count)
        })
        .await
    }

    pub(in crate::store) async fn list_resources(
        &self,
        language: Option<Language>,
    ) -> Result<Vec<Resource>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare(
                "SELECT name, language, text FROM resource
                 WHERE ?1 IS NULL OR language = ?1 ORDER BY name, language",
            )?;
            let rows = statement.query_map([language.map(Language::iso)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?;
            rows.map(|row| {
                let (name, code, text) = row?;
                resource_from_row(name, &code, text)
            })
            .collect()
        })
        .await
    }

    pub(in crate::store) async fn resources(
        &self,
        names: &[String],
        language: Language,
    ) -> Result<Vec<Resource>, StoreError> {
        let names = names.to_vec();
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT name, language, text FROM resource
                 WHERE name = ?1 AND language IN (?2, 'en')",
            )?;
            let mut found = Vec::new();
            for name in &names {
                let rows = statement.query_map(params![name, language.iso()], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })?;
                for row in rows {
                    let (name, code, text) = row?;
                    found.push(resource_from_row(name, &code, text)?);
                }
            }
            Ok(found)
        })
        .await
    }
}

/// Inserts resources, replacing texts already there; says how many.
pub(super) fn upsert_resources(
    tx: &rusqlite::Transaction<'_>,
    resources: &[Resource],
) -> Result<usize, StoreError> {
    let mut statement = tx.prepare(
        "INSERT INTO resource (name, language, text) VALUES (?1, ?2, ?3)
         ON CONFLICT (name, language) DO UPDATE SET text = excluded.text",
    )?;
    for resource in resources {
        statement.execute(params![
            resource.name,
            resource.language.iso(),
            resource.text
        ])?;
    }
    Ok(resources.len())
}

fn resource_from_row(name: String, code: &str, text: String) -> Result<Resource, StoreError> {
    let language = Language::from_tag(code)
        .ok_or_else(|| StoreError::Corrupt(format!("resource language {code:?}")))?;
    Ok(Resource {
        name,
        language,
        text,
    })
}
