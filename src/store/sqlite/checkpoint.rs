//! The checkpoint thread: copies the write-ahead log into the database file, on a connection
//! of its own, so that no Set waits for it.

use std::time::Duration;

use rusqlite::Connection;

use super::wait_a_millisecond;

/// A write-ahead log longer than this many pages is restarted (see `checkpoint`). Each restart
/// holds Sets up for a moment, so not too often: 10 000 pages (10 MiB of 1 KiB pages) rather
/// than SQLite's own 1000, so that a steady stream of Sets restarts it a few times a second,
/// not ten. The file keeps the largest size it reached.
const WAL_RESTART_FRAMES: i64 = 10_000;

/// How often the checkpoint thread copies the write-ahead log into the database file. Often,
/// because a restart of the log (see `checkpoint`) holds Sets up while it syncs what was
/// written since the previous checkpoint, and the less there is, the shorter that is. Idle,
/// each turn is a few system calls.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// The checkpoint thread's restart waits at most this long for writers and readers to make
/// way, and tries again at the next checkpoint, rather than hold up every Set behind it.
fn wait_briefly_to_restart(tries: i32) -> bool {
    std::thread::sleep(Duration::from_millis(1));
    tries < 10
}

/// Copies committed pages from the write-ahead log into the database file every
/// [`CHECKPOINT_INTERVAL`], without blocking writers (PASSIVE), until the store is dropped.
pub(super) fn checkpoint_until_stopped(
    connection: &mut Connection,
    stop: &std::sync::mpsc::Receiver<()>,
) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
        stop.recv_timeout(CHECKPOINT_INTERVAL)
    {
        if let Err(error) = checkpoint(connection) {
            tracing::warn!(%error, "checkpoint failed; will try again");
        }
    }
}

/// Whether SQLite refused because another connection held a lock it needed.
fn is_busy(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// Copies what the write-ahead log holds into the database file, without blocking anyone
/// (PASSIVE). Under a steady stream of Sets that never lets the log start over, as new
/// commits always follow the pages just copied, so a log longer than
/// [`WAL_RESTART_FRAMES`] is restarted (RESTART): writers wait the moment that takes (and
/// the restart waits only briefly for them), and the log is then written from its start again
/// instead of growing without end.
fn checkpoint(connection: &mut Connection) -> rusqlite::Result<()> {
    let frames: i64 =
        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))?;
    if frames > WAL_RESTART_FRAMES {
        connection.busy_handler(Some(wait_briefly_to_restart))?;
        let restarted = connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
        connection.busy_handler(Some(wait_a_millisecond))?;
        match restarted {
            // Busy: someone did not make way in time; the next checkpoint tries again.
            Err(error) if is_busy(&error) => {}
            other => other?,
        }
    }
    Ok(())
}
