//! The `presence` command line: run the server (`serve.rs`), administer its database
//! (`admin.rs`), read and set presences and plan absences (`presence.rs`), import users
//! (`import.rs`), manage webhooks (`webhook.rs`), and read the configuration file
//! (`config_file/`).

mod admin;
mod config_file;
mod history;
mod import;
mod presence;
mod serve;
mod webhook;

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::DatabaseSettings;
use crate::domain::AssociateId;
use crate::http::auth::JwtSetupError;
use crate::language::{Language, ResourceFileError};
use crate::password::PasswordError;
use crate::store::{self, Store, StoreError};

pub use admin::{AppCommand, ResourceCommand, TicketCommand, TokenCommand, UserCommand};
pub use config_file::{Effective, FileError, UsageError};
pub use presence::{AbsenceCommand, StatusCommand, TimeArg};
pub use serve::{AuthArgs, LimitArgs, ServeArgs};
pub use webhook::WebhookCommand;

#[derive(Debug, Parser)]
#[command(
    name = "presence",
    version,
    about = "SuperOffice user presence WebAPI server"
)]
pub struct Cli {
    /// A TOML file of settings, each under its flag's long name (max-connections = 4096); the
    /// PRESENCE_* variables and the flags override it.
    #[arg(long, global = true, env = "PRESENCE_CONFIG", value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

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

    /// How log lines (the access log's among them) are written to standard error: text, or
    /// one JSON object per line.
    #[arg(long, global = true, env = "PRESENCE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,

    /// What `serve` runs with, and where each setting came from; filled in by
    /// [`Cli::parse_with_config`].
    #[arg(skip)]
    pub effective: Effective,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
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
    /// Read, set or list presence statuses.
    #[command(subcommand)]
    Status(StatusCommand),
    /// Plan, list or cancel absences.
    #[command(subcommand)]
    Absence(AbsenceCommand),
    /// Print the changes the history keeps, oldest first: who changed what, when, and how.
    History(history::HistoryArgs),
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
    /// Add, list or remove webhooks, and see their deliveries.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Copy a SQLite database, as of one moment, to a new file while servers go on using it.
    Backup {
        /// Where the copy goes; the file must not exist yet.
        file: std::path::PathBuf,
    },
    /// Show the configuration: what `serve` runs with, and where each setting comes from.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the settings `serve` would run with, and where each came from.
    ///
    /// Given the same configuration file, environment and flags (`serve`'s too), it prints
    /// the settings as a configuration file, secrets redacted. The database is not opened.
    Show(ServeArgs),
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
    #[error("--until is for StatusNotAvailable only, not {0}")]
    UntilWithStatus(crate::domain::UserStatus),
    #[error("{what} {at} is not in the future; nothing was stored")]
    NotAhead { what: &'static str, at: String },
    #[error("an absence must start before it ends; from {from} until {until} does not")]
    AbsenceEndsFirst { from: String, until: String },
    #[error("an absence lasts at most 366 days; from {from} until {until} is longer")]
    AbsenceTooLong { from: String, until: String },
    #[error("the new absence overlaps absence {id}, from {from} until {until}; nothing was stored")]
    AbsenceOverlaps {
        id: i64,
        from: String,
        until: String,
    },
    #[error("associate {0} has {max} absences planned already; cancel one first", max = store::MAX_PLANNED_ABSENCES)]
    TooManyAbsences(AssociateId),
    #[error("associate {associate_id} has no absence {absence_id}")]
    UnknownAbsence {
        associate_id: AssociateId,
        absence_id: i64,
    },
    #[error("the changes after revision {0} are no longer kept; start without --after")]
    HistoryExpired(i64),
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
    #[error(transparent)]
    BadWebhook(#[from] crate::webhooks::BadWebhook),
    #[error("there are {max} webhooks already; remove one first", max = store::MAX_WEBHOOKS)]
    TooManyWebhooks,
    #[error("there is no webhook {0}")]
    UnknownWebhook(i64),
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        source: std::io::Error,
    },
}

impl Cli {
    /// The command line of this process, with the configuration file that `--config` or
    /// `PRESENCE_CONFIG` names: the defaults give way to the file, the file to the
    /// environment, and the environment to the flags.
    pub fn parse_with_config() -> Result<Self, UsageError> {
        Self::parse_from_with_config(std::env::args_os())
    }

    /// The same, from `args` (the program's name first).
    pub fn parse_from_with_config<I, T>(args: I) -> Result<Self, UsageError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let mut command = Self::command();
        let args = args.into_iter().map(Into::into).collect();
        let (matches, effective) = config_file::parse(&mut command, args)?;
        let mut cli = Self::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        cli.effective = effective;
        Ok(cli)
    }

    pub async fn run(self) -> Result<(), CliError> {
        if let Command::Config(ConfigCommand::Show(_)) = self.command {
            // Before anything opens the database.
            use std::io::Write as _;
            return std::io::stdout()
                .lock()
                .write_all(self.effective.to_string().as_bytes())
                .map_err(|source| CliError::Io {
                    context: "cannot write the settings",
                    source,
                });
        }
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
            Command::Status(command) => presence::status(&store, command).await?,
            Command::Absence(command) => presence::absence(&store, command).await?,
            Command::History(args) => history::history(&store, args).await?,
            Command::Ticket(command) => admin::ticket(&store, command).await?,
            Command::Token(command) => admin::token(&store, command).await?,
            Command::App(command) => admin::app(&store, command).await?,
            Command::Resource(command) => admin::resource(&store, command).await?,
            Command::Webhook(command) => webhook::webhook(&store, command).await?,
            Command::Backup { .. } => unreachable!("answered before the schema is touched"),
            Command::Config(_) => unreachable!("answered before the database is opened"),
        }
        Ok(())
    }
}
