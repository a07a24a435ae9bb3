//! Backups: a consistent copy of the database, made while the server goes on writing, with
//! SQLite's online backup API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::SqliteStore;
use crate::store::{BackupReport, StoreError};

/// How often a copy that finds the database locked tries again, and how long it waits between
/// tries: a read of a WAL database is refused only for the moment a checkpoint restarts the
/// log.
const TRIES: u32 = 100;
const BETWEEN_TRIES: Duration = Duration::from_millis(50);

impl SqliteStore {
    /// Copies the database to `to`, a file that must not exist yet, on the blocking pool.
    pub(in crate::store) async fn backup(&self, to: PathBuf) -> Result<BackupReport, StoreError> {
        self.read(move |source| copy(source, &to)).await
    }
}

/// Copies every page in one step, inside one read transaction: the copy is the database as of
/// one commit, and writers are not held up meanwhile (a WAL reader blocks no writer). Copied
/// step by step instead, SQLite would start again after every commit of another connection,
/// and a steady stream of Sets would keep it from ever finishing.
///
/// The copy is written beside `to` under a temporary name, checked, and renamed into place, so
/// that `to` names either nothing or a whole, checked backup.
fn copy(source: &Connection, to: &Path) -> Result<BackupReport, StoreError> {
    let file_error = |source| StoreError::BackupFile {
        path: to.display().to_string(),
        source,
    };
    if to.exists() {
        return Err(StoreError::BackupExists(to.display().to_string()));
    }
    let folder = match to.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(file_error(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "its folder does not exist",
        )));
    }
    let name = to
        .file_name()
        .ok_or_else(|| StoreError::BackupExists(to.display().to_string()))?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".partial-{}", std::process::id()));
    let partial = to.with_file_name(partial_name);
    let written = write_copy(source, &partial);
    let report = match written {
        Ok(report) => report,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    // Not `rename`: that would replace a file made at `to` since the check above.
    std::fs::hard_link(&partial, to).map_err(|error| {
        let _ = std::fs::remove_file(&partial);
        if error.kind() == std::io::ErrorKind::AlreadyExists {
            StoreError::BackupExists(to.display().to_string())
        } else {
            file_error(error)
        }
    })?;
    std::fs::remove_file(&partial).map_err(file_error)?;
    // The new name is durable once its folder is.
    std::fs::File::open(folder)
        .and_then(|folder| folder.sync_all())
        .map_err(file_error)?;
    Ok(report)
}

/// Writes the copy to `path` and checks it. The copy's last step commits with SQLite's
/// default `synchronous = FULL`, so its pages are on disk when this returns.
fn write_copy(source: &Connection, path: &Path) -> Result<BackupReport, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut target = Connection::open_with_flags(path, flags)?;
    let pages = {
        let backup = Backup::new(source, &mut target)?;
        let mut tries = 0;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked if tries < TRIES => {
                    tries += 1;
                    std::thread::sleep(BETWEEN_TRIES);
                }
                // `More` cannot follow a step of every page; a lock that lasts is a failure.
                _ => {
                    return Err(StoreError::Unavailable(
                        "the database stayed locked while it was copied".into(),
                    ));
                }
            }
        }
        backup.progress().pagecount
    };
    let page_size: i64 = target.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    let check: String = target.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(StoreError::Corrupt(format!(
            "the copy failed its check: {check}"
        )));
    }
    // Closing checkpoints the copy's own log into it and removes the log, so that the one
    // file is the whole backup.
    target.close().map_err(|(_, error)| error)?;
    Ok(BackupReport {
        bytes: u64::try_from(i64::from(pages) * page_size).unwrap_or(0),
    })
}
