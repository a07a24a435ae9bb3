//! A hint, read without a system call or a lock, of whether anything was committed to a SQLite
//! database in WAL mode since last asked. It only ever reads; whenever it cannot tell, the
//! caller asks SQLite.
//!
//! Every connection to the database, in any process, shares the wal-index: the `-shm` file
//! beside it, mapped into memory. Its header holds a change counter (`iChange`), which every
//! commit counts up by one, and the last committed frame of the write-ahead log; every commit
//! rewrites the header before the commit returns
//! (<https://www.sqlite.org/walformat.html>, "The WAL-Index Header"). A restart of the log
//! rewrites the header too (the last frame and the salts), but does not count: so two equal
//! readings mean no commit happened in between, a reading that differs from the last one means
//! one may have (the caller then asks the database itself), and [`Reading::follows`] tells one
//! commit from several by the counter alone.
//!
//! The format has not changed since SQLite 3.7.0. A header of another version, or one not yet
//! written, reads as "changed", so the worst case is asking the database every time.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

use memmap2::{Mmap, MmapOptions};

/// The header's first copy: twelve native-endian 32-bit words.
const HEADER_WORDS: usize = 12;
/// `iVersion`, the first word, for every SQLite since WAL mode began.
const WAL_INDEX_VERSION: u32 = 3_007_000;
/// The byte holding `isInit`, which is 1 once the header is valid.
const IS_INIT_WORD: usize = 3;

/// A reading of the header; equal readings mean no commit happened between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading([u32; HEADER_WORDS]);

/// `iChange`, which every commit counts up by one (a restart of the log does not).
const CHANGE_COUNTER_WORD: usize = 2;

impl Reading {
    /// Whether exactly one commit happened between `earlier` and this reading.
    pub fn follows(&self, earlier: &Reading) -> bool {
        self.0[CHANGE_COUNTER_WORD] == earlier.0[CHANGE_COUNTER_WORD].wrapping_add(1)
    }
}

pub struct WalIndex {
    map: Mmap,
}

/// The wal-index file at `path`, opened once per process and never closed.
///
/// Closing any descriptor of a file drops every POSIX lock the process holds on it, and this
/// process's SQLite connections hold one on the wal-index: the shared lock that tells other
/// processes it is in use. Without it, the next process to open the database (the command
/// line beside a running server) takes itself for the only one, truncates the wal-index and
/// builds it anew under this one's feet, which then faults (SIGBUS) reading it. SQLite's own
/// VFS keeps descriptors open for the same reason.
fn kept_open(path: &Path) -> std::io::Result<&'static File> {
    static KEPT: Mutex<Vec<(u64, u64, &'static File)>> = Mutex::new(Vec::new());
    let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
    // Looked up by a stat, which opens nothing: opening and closing a second descriptor is
    // what must not happen.
    let metadata = std::fs::metadata(path)?;
    if let Some((_, _, file)) = kept
        .iter()
        .find(|(device, inode, _)| (*device, *inode) == (metadata.dev(), metadata.ino()))
    {
        return Ok(file);
    }
    let file: &'static File = Box::leak(Box::new(File::open(path)?));
    let metadata = file.metadata()?;
    kept.push((metadata.dev(), metadata.ino(), file));
    Ok(file)
}

impl WalIndex {
    /// Maps the wal-index of the database at `database`. Call it while a connection to the
    /// database is open in WAL mode: SQLite keeps the file at its full size while any
    /// connection is open, and it must stay so, as reading past the end of a mapped file
    /// would fault.
    pub fn open(database: &Path) -> std::io::Result<Self> {
        let mut path = database.as_os_str().to_owned();
        path.push("-shm");
        let file = kept_open(Path::new(&path))?;
        let length = std::mem::size_of::<Reading>();
        if file.metadata()?.len() < length as u64 {
            return Err(std::io::Error::other(
                "the wal-index is not initialised yet",
            ));
        }
        // SAFETY: the mapping is read-only and only ever read through atomic loads (below),
        // since other connections write the same memory concurrently.
        let map = unsafe { MmapOptions::new().len(length).map(file)? };
        Ok(Self { map })
    }

    /// The header now, or `None` when it is not one this code understands (the caller must
    /// then assume a change).
    pub fn read(&self) -> Option<Reading> {
        let words = self.map.as_ptr().cast::<u32>();
        let mut reading = [0; HEADER_WORDS];
        for (index, word) in reading.iter_mut().enumerate() {
            // SAFETY: the map is page-aligned and HEADER_WORDS words long; SQLite writes
            // these words from other threads and processes, so they are read atomically.
            // Atomic loads from read-only memory are allowed for word-sized types.
            *word =
                unsafe { AtomicU32::from_ptr(words.add(index).cast_mut()) }.load(Ordering::Acquire);
        }
        let initialised = reading[IS_INIT_WORD].to_ne_bytes()[0] == 1;
        (reading[0] == WAL_INDEX_VERSION && initialised).then_some(Reading(reading))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn wal_database(path: &Path) -> Connection {
        let connection = Connection::open(path).unwrap();
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .unwrap();
        connection
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .unwrap();
        connection
    }

    #[test]
    fn a_commit_from_another_connection_changes_the_reading() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("db");
        let first = wal_database(&path);
        let index = WalIndex::open(&path).unwrap();
        let before = index.read().expect("an initialised wal-index");
        assert_eq!(index.read(), Some(before), "nothing was committed");

        // A read changes nothing.
        let _: i64 = first
            .query_row("SELECT x FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(index.read(), Some(before));

        let second = Connection::open(&path).unwrap();
        second.execute("UPDATE t SET x = 2", []).unwrap();
        let after = index.read().expect("an initialised wal-index");
        assert_ne!(after, before);

        assert!(after.follows(&before));
        second.execute("UPDATE t SET x = 3", []).unwrap();
        second.execute("UPDATE t SET x = 4", []).unwrap();
        let twice = index.read().unwrap();
        assert!(!twice.follows(&after), "two commits are not one");

        // A rolled-back write commits nothing.
        second
            .execute_batch("BEGIN; UPDATE t SET x = 5; ROLLBACK;")
            .unwrap();
        assert_eq!(index.read(), Some(twice));
    }

    #[test]
    fn a_database_without_a_wal_index_cannot_be_watched() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("db");
        let connection = Connection::open(&path).unwrap();
        connection.execute_batch("CREATE TABLE t (x)").unwrap();
        assert!(WalIndex::open(&path).is_err());
    }
}
