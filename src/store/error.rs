//! What can go wrong in the store, told apart where callers answer differently.

use crate::domain::AssociateId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported database URL '{0}': expected sqlite://PATH[?synchronous=normal|full] or postgres://USER:PASSWORD@HOST:PORT/DATABASE[?sslmode=disable|prefer|require]"
    )]
    UnsupportedUrl(String),
    /// The database cannot be reached or did not answer in time: worth retrying.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The disk holding the database is full (or the database reached a size limit): nothing
    /// can be stored until room is made.
    #[error("the disk is full: {0}")]
    DiskFull(String),
    /// Too many Sets are waiting for a commit already: this one was refused, with nothing
    /// stored.
    #[error("too many Sets are waiting for a commit")]
    Busy,
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("cannot open the database {path}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("the login '{0}' is already taken")]
    DuplicateLogin(String),
    #[error("associate {0} already has a Service user")]
    DuplicateAssociate(AssociateId),
    #[error("no Service user has the login '{0}'")]
    UnknownLogin(String),
    #[error("an application named '{0}' is already registered")]
    DuplicateApplication(String),
    #[error("no application is named '{0}'")]
    UnknownApplication(String),
    #[error(
        "the database schema is at version {found}, newer than this program knows ({known}); upgrade the program"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the database holds a value this program cannot read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("a database task stopped unexpectedly")]
    TaskFailed,
    #[error("there is no database at {0}")]
    NoDatabase(String),
    #[error("{0} exists already: a backup is written to a new file")]
    BackupExists(String),
    #[error("cannot write the backup {path}")]
    BackupFile {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "a PostgreSQL database is backed up with PostgreSQL's own tools: pg_dump --format=custom --file=FILE 'postgres://...', and restored with pg_restore"
    )]
    BackupWithPgDump,
}

impl From<rusqlite::Error> for StoreError {
    /// A full disk and another program's lock are told apart from the rest: the first is
    /// named as what it is, the second is worth retrying.
    fn from(error: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, DiskFull};
        match error.sqlite_error_code() {
            Some(DiskFull) => Self::DiskFull(error.to_string()),
            Some(DatabaseBusy | DatabaseLocked) => {
                Self::Unavailable(format!("another program holds a lock on it: {error}"))
            }
            _ => Self::Sqlite(error),
        }
    }
}

impl StoreError {
    /// The error to give each of several callers one failure concerns (the Sets of a failed
    /// commit): the same kind, with the cause as text.
    pub fn for_each_caller(&self) -> Self {
        match self {
            Self::DiskFull(detail) => Self::DiskFull(detail.clone()),
            Self::Busy => Self::Busy,
            Self::Unavailable(reason) => Self::Unavailable(reason.clone()),
            other => Self::Unavailable(other.to_string()),
        }
    }
}
