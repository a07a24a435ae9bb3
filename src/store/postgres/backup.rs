//! Backups: PostgreSQL's own tools make them, consistent and online; this program does not
//! copy a PostgreSQL database itself.

use std::path::PathBuf;

use super::PostgresStore;
use crate::store::{BackupReport, StoreError};

impl PostgresStore {
    pub(in crate::store) async fn backup(&self, _to: PathBuf) -> Result<BackupReport, StoreError> {
        Err(StoreError::BackupWithPgDump)
    }
}
