//! Writes each commit to the write-ahead log in two system calls instead of two per page (for
//! a commit of up to 64 KiB; a larger one in pieces of that size).
//!
//! SQLite appends a frame to the log as two writes, its 24-byte header and then the page
//! (<https://www.sqlite.org/walformat.html>, "WAL Frame Format"), so a batch of Sets touching
//! six pages cost twelve `pwrite` calls: a tenth of a Set's time under load. This module
//! registers a VFS that is SQLite's default one except for the log: there, frames are kept in
//! memory while they follow one another, and written together when the commit frame comes.
//! The commit frame, the one whose header holds the database size, carries what was kept:
//! the frames and its own header in one write, then its page in another, both before the
//! commit returns. So a commit is in the operating system's hands exactly when it would have
//! been without this module, and durability is unchanged.
//!
//! Anything else, a write that does not continue the frames kept, a read, a sync, a truncate
//! or closing the file, first writes out what is kept. A failure of that write is the failure
//! of the call that caused it, as SQLite expects of a write it made itself.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name connections give to open databases through this VFS.
pub const VFS_NAME: &str = "presence-wal-writes";
const VFS_NAME_C: &CStr = c"presence-wal-writes";

/// Bytes in a WAL frame header.
const FRAME_HEADER: usize = 24;

/// Frames kept beyond this many bytes are written at once: a large transaction that spills
/// pages before it commits holds no more than this in memory.
const MAX_KEPT: usize = 1 << 16;

/// The most the default VFS writes in one call: it masks the length of a write to 17 bits,
/// and a longer write fails as if the disk were full. What is kept goes out in pieces of
/// this size.
const MAX_WRITE: usize = 1 << 16;

/// Registers the VFS (once per process) and says whether it can be used.
pub fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find with a null name returns the default VFS, which SQLite
        // never frees; the new VFS is leaked, so it outlives every connection using it.
        unsafe {
            let base = ffi::sqlite3_vfs_find(std::ptr::null());
            if base.is_null() || (*base).szOsFile <= 0 {
                return false;
            }
            let mut vfs = *base;
            vfs.szOsFile = (inner_offset() + (*base).szOsFile as usize) as c_int;
            vfs.zName = VFS_NAME_C.as_ptr();
            vfs.pNext = std::ptr::null_mut();
            vfs.xOpen = Some(open);
            // Every other entry is the default VFS's, called with this VFS: `pAppData` and
            // `mxPathname`, all they read of it, are the same.
            let vfs = Box::leak(Box::new(vfs));
            BASE.set(Base(base)).ok();
            ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK
        }
    })
}

/// The default VFS, which opens and does the actual I/O of every file.
struct Base(*mut ffi::sqlite3_vfs);
// SAFETY: a VFS object is immutable once registered and used by SQLite from any thread.
unsafe impl Send for Base {}
unsafe impl Sync for Base {}
static BASE: OnceLock<Base> = OnceLock::new();

/// A log file as SQLite sees it: this header, then the default VFS's own file object.
#[repr(C)]
struct LogFile {
    /// First, as SQLite reads `pMethods` from the start of every file object.
    file: ffi::sqlite3_file,
    inner: *mut ffi::sqlite3_file,
    kept: Kept,
}

/// Where the default VFS's file object starts, suitably aligned, in a log file's memory.
fn inner_offset() -> usize {
    std::mem::size_of::<LogFile>().next_multiple_of(16)
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(base) = BASE.get().map(|base| base.0) else {
        return ffi::SQLITE_ERROR;
    };
    // SAFETY: SQLite gives `file` szOsFile bytes, room for the default VFS's object at either
    // offset; `base` is the default VFS, whose xOpen is always set.
    unsafe {
        let base_open = (*base).xOpen.expect("every VFS can open files");
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            // Any other file is the default VFS's own, untouched.
            return base_open(base, name, file, flags, out_flags);
        }
        let inner = file
            .cast::<u8>()
            .add(inner_offset())
            .cast::<ffi::sqlite3_file>();
        let rc = base_open(base, name, inner, flags, out_flags);
        if rc != ffi::SQLITE_OK {
            // Tells SQLite there is nothing to close.
            (*file).pMethods = std::ptr::null();
            return rc;
        }
        file.cast::<LogFile>().write(LogFile {
            file: ffi::sqlite3_file {
                pMethods: &LOG_METHODS,
            },
            inner,
            kept: Kept::default(),
        });
        ffi::SQLITE_OK
    }
}

/// Version 1: a log file is never mapped and has no shared memory of its own.
static LOG_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

/// The log file behind `file`, and the default VFS's methods for it.
///
/// # Safety
/// `file` is a log file this VFS opened and has not closed.
unsafe fn log<'a>(file: *mut ffi::sqlite3_file) -> (&'a mut LogFile, &'a ffi::sqlite3_io_methods) {
    // SAFETY: as the caller promises; the inner object's methods were set by its xOpen.
    unsafe {
        let log = &mut *file.cast::<LogFile>();
        let methods = &*(*log.inner).pMethods;
        (log, methods)
    }
}

/// Writes what is kept through the default VFS.
///
/// # Safety
/// As for [`log`].
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as the caller promises.
    unsafe {
        let (log, methods) = log(file);
        let inner = log.inner;
        log.kept
            .flush(&mut |bytes, offset| write_through(methods, inner, bytes, offset))
    }
}

/// # Safety
/// `inner` is an open file of the default VFS with these `methods`.
unsafe fn write_through(
    methods: &ffi::sqlite3_io_methods,
    inner: *mut ffi::sqlite3_file,
    bytes: &[u8],
    offset: i64,
) -> c_int {
    let Ok(length) = c_int::try_from(bytes.len()) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let write = methods.xWrite.expect("every file can be written");
    // SAFETY: as the caller promises.
    unsafe { write(inner, bytes.as_ptr().cast(), length, offset) }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this on a log file it opened here, with `amount` bytes at `data`.
    unsafe {
        let (log, methods) = log(file);
        let inner = log.inner;
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), amount.max(0) as usize);
        log.kept.write(bytes, offset, &mut |bytes, offset| {
            write_through(methods, inner, bytes, offset)
        })
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this once, last, on a log file it opened here.
    unsafe {
        let flushed = flush(file);
        let (log, methods) = log(file);
        let inner = log.inner;
        std::ptr::drop_in_place(&mut log.kept);
        let closed = methods.xClose.expect("every file can be closed")(inner);
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

/// Writes out what is kept, then passes the call on: for every call that reads the file,
/// changes its size or makes it durable.
macro_rules! after_flush {
    ($name:ident, $method:ident, ($($arg:ident: $type:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $type),*) -> c_int {
            // SAFETY: SQLite calls this on a log file it opened here.
            unsafe {
                let flushed = flush(file);
                if flushed != ffi::SQLITE_OK {
                    return flushed;
                }
                let (log, methods) = log(file);
                methods.$method.expect("the default VFS has every version 1 method")(log.inner, $($arg),*)
            }
        }
    };
}

after_flush!(read, xRead, (data: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64));
after_flush!(truncate, xTruncate, (size: ffi::sqlite3_int64));
after_flush!(sync, xSync, (flags: c_int));
after_flush!(file_size, xFileSize, (size: *mut ffi::sqlite3_int64));
after_flush!(file_control, xFileControl, (op: c_int, argument: *mut c_void));

/// Passes the call on: locks and properties do not depend on what is written.
macro_rules! passed_on {
    ($name:ident, $method:ident, ($($arg:ident: $type:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $type),*) -> c_int {
            // SAFETY: SQLite calls this on a log file it opened here.
            unsafe {
                let (log, methods) = log(file);
                methods.$method.expect("the default VFS has every version 1 method")(log.inner, $($arg),*)
            }
        }
    };
}

passed_on!(lock, xLock, (level: c_int));
passed_on!(unlock, xUnlock, (level: c_int));
passed_on!(check_reserved_lock, xCheckReservedLock, (out: *mut c_int));
passed_on!(sector_size, xSectorSize, ());
passed_on!(device_characteristics, xDeviceCharacteristics, ());

/// Frames waiting to be written: a run of bytes that belongs at `start` in the log.
#[derive(Debug, Default)]
struct Kept {
    bytes: Vec<u8>,
    start: i64,
    /// The last bytes kept are a frame header, whose page comes next.
    awaiting_page: bool,
}

impl Kept {
    /// Where the next frame continues the run.
    fn end(&self) -> i64 {
        self.start + self.bytes.len() as i64
    }

    fn continues(&self, offset: i64) -> bool {
        self.bytes.is_empty() || offset == self.end()
    }

    /// Handles a write SQLite makes to the log, passing to `sink` what is to be written now.
    fn write(
        &mut self,
        data: &[u8],
        offset: i64,
        sink: &mut dyn FnMut(&[u8], i64) -> c_int,
    ) -> c_int {
        if data.len() == FRAME_HEADER && !self.awaiting_page && self.continues(offset) {
            self.keep(data, offset);
            // Bytes 4 to 8 of a frame header: the database size after a commit, else zero.
            if data[4..8] != [0; 4] {
                // The commit frame: everything kept and its header now, its page next,
                // written at once as it does not continue a run.
                return self.flush(sink);
            }
            self.awaiting_page = true;
            return ffi::SQLITE_OK;
        }
        // A page is never as short as a header: a second header in a row, which SQLite does not
        // write, is written out below rather than taken for a page, so a commit header is
        // never kept unwritten.
        if self.awaiting_page && offset == self.end() && data.len() > FRAME_HEADER {
            self.keep(data, offset);
            self.awaiting_page = false;
            if self.bytes.len() >= MAX_KEPT {
                return self.flush(sink);
            }
            return ffi::SQLITE_OK;
        }
        let flushed = self.flush(sink);
        if flushed != ffi::SQLITE_OK {
            return flushed;
        }
        sink(data, offset)
    }

    fn keep(&mut self, data: &[u8], offset: i64) {
        if self.bytes.is_empty() {
            self.start = offset;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Writes everything kept. Kept bytes are dropped even if the write fails: SQLite rolls
    /// the transaction back and writes its frames again.
    fn flush(&mut self, sink: &mut dyn FnMut(&[u8], i64) -> c_int) -> c_int {
        self.awaiting_page = false;
        if self.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let mut written = ffi::SQLITE_OK;
        let mut offset = self.start;
        for piece in self.bytes.chunks(MAX_WRITE) {
            written = sink(piece, offset);
            if written != ffi::SQLITE_OK {
                break;
            }
            offset += piece.len() as i64;
        }
        self.bytes.clear();
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 1024;

    /// A frame header: `commit` is the database size after a commit, 0 for other frames.
    fn header(commit: u32) -> Vec<u8> {
        let mut header = vec![7; FRAME_HEADER];
        header[4..8].copy_from_slice(&commit.to_be_bytes());
        header
    }

    fn frame_offset(index: usize) -> i64 {
        (32 + index * (FRAME_HEADER + PAGE)) as i64
    }

    /// Writes that reached the file, as (offset, length).
    #[derive(Default)]
    struct File {
        image: Vec<u8>,
        writes: Vec<(i64, usize)>,
    }

    impl File {
        fn sink(&mut self) -> impl FnMut(&[u8], i64) -> c_int + '_ {
            |bytes, offset| {
                let end = offset as usize + bytes.len();
                if self.image.len() < end {
                    self.image.resize(end, 0);
                }
                self.image[offset as usize..end].copy_from_slice(bytes);
                self.writes.push((offset, bytes.len()));
                ffi::SQLITE_OK
            }
        }
    }

    /// SQLite's writes for a transaction of `pages` frames starting at frame `first`, the
    /// last a commit frame when `commit`.
    fn append_frames(kept: &mut Kept, file: &mut File, first: usize, pages: usize, commit: bool) {
        for index in first..first + pages {
            let last = index == first + pages - 1;
            let offset = frame_offset(index);
            let frame_header = header(if commit && last { 9 } else { 0 });
            assert_eq!(kept.write(&frame_header, offset, &mut file.sink()), 0);
            let page = vec![index as u8; PAGE];
            assert_eq!(
                kept.write(&page, offset + FRAME_HEADER as i64, &mut file.sink()),
                0
            );
        }
    }

    #[test]
    fn a_commit_is_written_in_two_calls_before_it_returns() {
        let (mut kept, mut file) = (Kept::default(), File::default());
        append_frames(&mut kept, &mut file, 0, 6, true);
        assert_eq!(
            file.writes,
            vec![
                (frame_offset(0), 6 * FRAME_HEADER + 5 * PAGE),
                (frame_offset(5) + FRAME_HEADER as i64, PAGE),
            ]
        );
        assert!(kept.bytes.is_empty());
        let mut expected = File::default();
        for index in 0..6 {
            let commit = if index == 5 { 9 } else { 0 };
            expected.sink()(&header(commit), frame_offset(index));
            expected.sink()(
                &[index as u8; PAGE],
                frame_offset(index) + FRAME_HEADER as i64,
            );
        }
        assert_eq!(file.image, expected.image);
    }

    #[test]
    fn frames_without_a_commit_wait_until_something_else_writes_them_out() {
        let (mut kept, mut file) = (Kept::default(), File::default());
        append_frames(&mut kept, &mut file, 0, 3, false);
        assert!(file.writes.is_empty());
        assert_eq!(kept.flush(&mut file.sink()), 0);
        assert_eq!(
            file.writes,
            vec![(frame_offset(0), 3 * (FRAME_HEADER + PAGE))]
        );
    }

    #[test]
    fn a_write_elsewhere_first_writes_out_what_is_kept() {
        let (mut kept, mut file) = (Kept::default(), File::default());
        append_frames(&mut kept, &mut file, 0, 2, false);
        // As when SQLite rewrites a page it wrote earlier in the transaction, or starts the
        // log over with a new header.
        assert_eq!(kept.write(&[1; 32], 0, &mut file.sink()), 0);
        assert_eq!(
            file.writes,
            vec![(frame_offset(0), 2 * (FRAME_HEADER + PAGE)), (0, 32)]
        );
        assert!(kept.bytes.is_empty());
    }

    #[test]
    fn a_rewritten_commit_header_is_written_at_once() {
        // After a commit, SQLite may rewrite the headers of its frames (new checksums),
        // reading each page between: the last header rewritten, the commit frame's, must not
        // wait for a page that will not come.
        let (mut kept, mut file) = (Kept::default(), File::default());
        assert_eq!(kept.write(&header(0), frame_offset(0), &mut file.sink()), 0);
        assert_eq!(kept.flush(&mut file.sink()), 0, "the read of the next page");
        assert_eq!(kept.write(&header(9), frame_offset(1), &mut file.sink()), 0);
        assert_eq!(
            file.writes,
            vec![
                (frame_offset(0), FRAME_HEADER),
                (frame_offset(1), FRAME_HEADER)
            ]
        );
    }

    #[test]
    fn a_header_where_a_page_belongs_is_written_at_once() {
        let (mut kept, mut file) = (Kept::default(), File::default());
        assert_eq!(kept.write(&header(0), frame_offset(0), &mut file.sink()), 0);
        let next = frame_offset(0) + FRAME_HEADER as i64;
        assert_eq!(kept.write(&header(9), next, &mut file.sink()), 0);
        assert_eq!(
            file.writes,
            vec![(frame_offset(0), FRAME_HEADER), (next, FRAME_HEADER)]
        );
        assert!(kept.bytes.is_empty());
    }

    #[test]
    fn a_failed_write_is_reported_and_nothing_stays_kept() {
        let mut kept = Kept::default();
        let mut fail = |_: &[u8], _: i64| ffi::SQLITE_IOERR_WRITE;
        let mut accept = |_: &[u8], _: i64| ffi::SQLITE_OK;
        assert_eq!(kept.write(&header(0), frame_offset(0), &mut accept), 0);
        assert_eq!(kept.write(&[0; PAGE], frame_offset(0) + 24, &mut accept), 0);
        assert_eq!(
            kept.write(&header(9), frame_offset(1), &mut fail),
            ffi::SQLITE_IOERR_WRITE
        );
        assert!(kept.bytes.is_empty());
        assert!(!kept.awaiting_page);
    }

    #[test]
    fn a_long_transaction_is_written_in_bounded_pieces() {
        let (mut kept, mut file) = (Kept::default(), File::default());
        let frames = 3 * MAX_KEPT / (FRAME_HEADER + PAGE);
        append_frames(&mut kept, &mut file, 0, frames, true);
        assert!(file.writes.len() >= 3);
        assert!(file.writes.iter().all(|&(_, length)| length <= MAX_WRITE));
        let mut expected = File::default();
        append_frames(&mut Kept::default(), &mut expected, 0, frames, true);
        assert_eq!(file.image, expected.image);
        assert!(kept.bytes.is_empty());
    }

    #[test]
    fn a_commit_of_many_pages_is_read_back_by_another_connection() {
        use rusqlite::{Connection, OpenFlags};
        assert!(register());
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("log.db");
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let writer = Connection::open_with_flags_and_vfs(&path, flags, VFS_NAME).unwrap();
        writer
            .execute_batch(
                "PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; PRAGMA cache_size = 50;
                 CREATE TABLE t (x BLOB);",
            )
            .unwrap();
        // Far more pages than the cache holds (so some are spilled before the commit) and
        // than fit in one write of the default VFS.
        writer
            .execute_batch(
                "BEGIN;
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                 INSERT INTO t SELECT randomblob(700) FROM n;
                 UPDATE t SET x = randomblob(600) WHERE rowid % 3 = 0;
                 COMMIT;",
            )
            .unwrap();
        let reader = Connection::open(&path).unwrap();
        let (rows, bytes): (i64, i64) = reader
            .query_row("SELECT count(*), sum(length(x)) FROM t", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((rows, bytes), (2000, 1334 * 700 + 666 * 600));
        let check: String = reader
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
}
