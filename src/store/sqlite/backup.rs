//! Backups: a consistent copy of the database, made while servers go on using it, with
//! SQLite's online backup API.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::SqliteStore;
use crate::store::{BackupReport, StoreError};

impl SqliteStore {
    /// Copies the database to `to`, a file that must not exist yet, on the blocking pool.
    pub(in crate::store) async fn backup(&self, to: PathBuf) -> Result<BackupReport, StoreError> {
        self.read(move |source| copy(source, &to)).await
    }
}

/// Copies every page in one step, inside one read transaction: the copy is the database as of
/// one commit. Writers go on meanwhile (a reader of a WAL database blocks no writer), but the
/// log cannot start over until the copy ends, so it grows while a large database is copied.
/// Copied a few pages at a time instead, SQLite would start again after every commit of
/// another connection, and a steady stream of Sets would keep it from ever finishing.
///
/// The copy is written beside `to` under a temporary name, checked, and then given its name
/// without replacing anything, so that `to` names either nothing or a whole, checked backup.
fn copy(source: &Connection, to: &Path) -> Result<BackupReport, StoreError> {
    let shown = to.display().to_string();
    let file_error = |source| StoreError::BackupFile {
        path: shown.clone(),
        source,
    };
    if to.exists() {
        return Err(StoreError::BackupExists(shown));
    }
    let Some(name) = to.file_name() else {
        return Err(file_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it names no file",
        )));
    };
    let folder = match to.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(file_error(io::Error::new(
            io::ErrorKind::NotFound,
            "its folder does not exist",
        )));
    }
    let partial = reserve_partial(folder, name).map_err(file_error)?;
    let report = match write_copy(source, &partial) {
        Ok(report) => report,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    if let Err(error) = rename_without_replacing(&partial, to) {
        let _ = std::fs::remove_file(&partial);
        return Err(if error.kind() == io::ErrorKind::AlreadyExists {
            StoreError::BackupExists(shown)
        } else {
            file_error(error)
        });
    }
    // The new name is durable once its folder is.
    std::fs::File::open(folder)
        .and_then(|folder| folder.sync_all())
        .map_err(file_error)?;
    Ok(report)
}

/// Makes an empty file for the copy beside its final name, under a name no other run uses (a
/// killed run leaves its own behind; this one never writes into it).
fn reserve_partial(folder: &Path, name: &std::ffi::OsStr) -> io::Result<PathBuf> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(io::Error::other)?;
    let mut partial_name = std::ffi::OsString::from(".");
    partial_name.push(name);
    partial_name.push(format!(".partial-{}", u64::from_le_bytes(random)));
    let partial = folder.join(partial_name);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)?;
    Ok(partial)
}

/// Renames `from` to `to` unless `to` exists, atomically where the file system can
/// (`RENAME_NOREPLACE`); where it cannot, by a hard link and the old name's removal, which
/// does not replace either; and, on a file system with neither (FAT, some network shares),
/// by a rename after a last check.
fn rename_without_replacing(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => return Ok(()),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
        Err(error) => return Err(error.into()),
    }
    match std::fs::hard_link(from, to) {
        Ok(()) => {
            if let Err(error) = std::fs::remove_file(from) {
                // The backup is whole under its name; only the temporary name is left over.
                tracing::warn!(%error, path = %from.display(), "cannot remove the backup's temporary name");
            }
            Ok(())
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Err(error),
        Err(_) => {
            if to.exists() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(from, to)
        }
    }
}

/// Writes the copy to `path` and checks it. SQLite commits the copy's last step with its
/// default `synchronous = FULL`, so its pages are on disk when this returns.
fn write_copy(source: &Connection, path: &Path) -> Result<BackupReport, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut target = Connection::open_with_flags(path, flags)?;
    let pages = {
        let backup = Backup::new(source, &mut target)?;
        // The source connection's busy handler has already waited for a lock before a step
        // says Busy or Locked: one more try, then give up.
        let mut result = backup.step(-1)?;
        if matches!(result, StepResult::Busy | StepResult::Locked) {
            result = backup.step(-1)?;
        }
        match result {
            StepResult::Done => {}
            StepResult::Busy | StepResult::Locked => {
                return Err(StoreError::Unavailable(
                    "the database stayed locked while it was copied".into(),
                ));
            }
            // A step of every page copies them all or fails.
            _ => {
                return Err(StoreError::Corrupt(
                    "the copy stopped before its last page".into(),
                ));
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
    // The copy takes the source's WAL mode with its pages; a rollback journal makes it one
    // self-contained file, which opens without a log or an index beside it. The server
    // switches a database it opens to WAL again.
    target.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
    target.close().map_err(|(_, error)| error)?;
    Ok(BackupReport {
        bytes: u64::try_from(i64::from(pages) * page_size).unwrap_or(0),
    })
}
