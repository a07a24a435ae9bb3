//! The `presence` command line: run the server (`serve.rs`) and administer its database
//! (`admin.rs`).

mod admin;
mod import;
mod serve;

use clap::{Parser, Subcommand};

use crate::config::DatabaseSettings;
use crate::domain::AssociateId;
use crate::http::auth::JwtSetupError;
use crate::language::{Language, ResourceFileError};
use crate::password::PasswordError;
use crate::store::{self, Store, StoreError};

pub use admin::{
    AppCommand, ResourceCommand, StatusCommand, TicketCommand, TokenCommand, UserCommand,
};
pub use serve::{AuthArgs, LimitArgs, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "presence",
    version,
    about = "SuperOffice user presence WebAPI server"
)]
pub struct Cli {
    /// The database: sqlite://PATH[?synchronous=normal|full], or
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE[?sslmode=disable|prefer|require].
    #[arg(long, global = true, env = "PRESENCE_DATABASE_URL", default_value = store::DEFAULT_DATABASE_URL)]
    pub database: String,

    /// PostgreSQL connections per node.
    #[arg(long, global = true, env = "PRESENCE_DB_POOL_SIZE", default_value_t = DatabaseSettings::default().pool_size)]
    pub db_pool_size: usize,

    /// How long PostgreSQL lets a statement run, in milliseconds.
    #[arg(long, global = true, env = "PRESENCE_DB_STATEMENT_TIMEOUT_MS", default_value_t = millis(DatabaseSettings::default().statement_timeout))]
    pub db_statement_timeout_ms: u64,

    /// How long a request waits for a PostgreSQL connection before it is answered 503, in
    /// milliseconds.
    #[arg(long, global = true, env = "PRESENCE_DB_ACQUIRE_TIMEOUT_MS", default_value_t = millis(DatabaseSettings::default().acquire_timeout))]
    pub db_acquire_timeout_ms: u64,

    /// The most Sets that may wait for their commit at once; one more is answered 503.
    #[arg(long, global = true, env = "PRESENCE_SET_QUEUE", default_value_t = DatabaseSettings::default().set_queue)]
    pub set_queue: usize,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the WebAPI.
    Serve(ServeArgs),
    /// Bring the database schema up to date.
    Migrate,
    /// Manage Service users.
    #[command(subcommand)]
    User(UserCommand),
    /// Read or set a presence status.
    #[command(subcommand)]
    Status(StatusCommand),
    /// Issue or revoke SOTicket tickets.
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// Issue Bearer access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Register applications and their SO-AppToken.
    #[command(subcommand)]
    App(AppCommand),
    /// Manage the texts that [SR_NAME] references in messages are replaced with.
    #[command(subcommand)]
    Resource(ResourceCommand),
    /// Copy a SQLite database, as of one moment, to a new file while servers go on using it.
    Backup {
        /// Where the copy goes; the file must not exist yet.
        file: std::path::PathBuf,
    },
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Status(#[from] crate::domain::UnknownStatus),
    #[error(transparent)]
    Message(#[from] crate::domain::MessageTooLong),
    #[error("associate ids are positive; {0} is not")]
    BadAssociateId(i32),
    #[error("associate {0} is not a Service user")]
    NotAServiceUser(AssociateId),
    #[error("no Service user has the login '{0}'")]
    UnknownLogin(String),
    #[error("'{login}' holds no such ticket")]
    UnknownTicket { login: String },
    #[error(transparent)]
    Jwt(#[from] JwtSetupError),
    #[error("'{0}' is not a supported language; use one of {langs}", langs = Language::ALL.map(Language::iso).join(", "))]
    UnknownLanguage(String),
    #[error("'{0}' is not a resource name: SR_ followed by capital letters, digits and _")]
    BadResourceName(String),
    #[error("{file}: {source}")]
    ResourceFile {
        file: String,
        source: ResourceFileError,
    },
    #[error("{file}: {problem}")]
    UserFile { file: String, problem: String },
    #[error(
        "{count} of the {read} records of {file} cannot be imported (listed above); nothing was imported: correct them, or pass --skip-invalid to import the others"
    )]
    InvalidUsers {
        count: usize,
        read: usize,
        file: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        source: std::io::Error,
    },
}

impl Cli {
    pub async fn run(self) -> Result<(), CliError> {
        let settings = DatabaseSettings {
            pool_size: self.db_pool_size,
            statement_timeout: std::time::Duration::from_millis(self.db_statement_timeout_ms),
            acquire_timeout: std::time::Duration::from_millis(self.db_acquire_timeout_ms),
            set_queue: self.set_queue,
        };
        if let Command::Backup { file } = self.command {
            if store::is_postgres_url(&self.database) {
                // Said before connecting: the answer does not depend on the database.
                return Err(StoreError::BackupWithPgDump.into());
            }
            let store = Store::open_existing(&self.database, &settings).await?;
            return admin::backup(&store, file).await;
        }
        let (store, report) = Store::open_and_migrate_with(&self.database, &settings).await?;
        match self.command {
            Command::Migrate => println!("{report}"),
            Command::Serve(args) => {
                if !report.applied.is_empty() {
                    tracing::info!("{report}");
                }
                serve::serve(store, args).await?;
            }
            Command::User(command) => admin::user(&store, command).await?,
            Command::Status(command) => admin::status(&store, command).await?,
            Command::Ticket(command) => admin::ticket(&store, command).await?,
            Command::Token(command) => admin::token(&store, command).await?,
            Command::App(command) => admin::app(&store, command).await?,
            Command::Resource(command) => admin::resource(&store, command).await?,
            Command::Backup { .. } => unreachable!("answered before the schema is touched"),
        }
        Ok(())
    }
}
