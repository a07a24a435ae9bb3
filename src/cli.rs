//! The `presence` command line: run the server and administer its database.

use std::io::{BufRead, Write};
use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app;
use crate::clock::Clock;
use crate::config::{
    self, AuthSettings, DatabaseSettings, HttpSettings, Installation, JwksSource, JwtSettings,
    Limits, Secret,
};
use crate::demo;
use crate::domain::{AssociateId, Message, UserPresenceStatus, UserStatus};
use crate::http::auth::{Authenticator, JwtSetupError};
use crate::http::encode;
use crate::http::negotiate::ResponseFormat;
use crate::http::select::Select;
use crate::http::state::AppState;
use crate::language::{self, Language, Resource, ResourceFileError};
use crate::password::{self, PasswordError};
use crate::secret::{self, SecretHash};
use crate::store::{self, Application, NewServiceUser, Store, StoreError, TokenKind};
use crate::tickets;

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
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "PRESENCE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A prefix in front of every address, such as /Cust12345.
    #[arg(long, env = "PRESENCE_BASE_PATH", default_value = "", value_parser = parse_base_path)]
    pub base_path: String,
    /// Add the reference page's example users where missing.
    #[arg(long, env = "PRESENCE_DEMO")]
    pub demo: bool,
    /// The largest request body read, in bytes.
    #[arg(long, env = "PRESENCE_BODY_LIMIT", default_value_t = HttpSettings::DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
}

/// What the server allows clients.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// How long a request's head may take to arrive, from a new connection or the request's
    /// first byte, in milliseconds.
    #[arg(long, env = "PRESENCE_HEADER_READ_TIMEOUT_MS", default_value_t = millis(Limits::default().header_read_timeout))]
    pub header_read_timeout_ms: u64,
    /// How long a connection may wait for its next request, in milliseconds.
    #[arg(long, env = "PRESENCE_KEEP_ALIVE_TIMEOUT_MS", default_value_t = millis(Limits::default().keep_alive_timeout))]
    pub keep_alive_timeout_ms: u64,
    /// How long a request may take from its head to its answer, body included, in
    /// milliseconds; past it, a 408.
    #[arg(long, env = "PRESENCE_REQUEST_TIMEOUT_MS", default_value_t = millis(Limits::default().request_timeout))]
    pub request_timeout_ms: u64,
    /// How long the requests in flight have to finish after SIGTERM or SIGINT, in milliseconds.
    #[arg(long, env = "PRESENCE_SHUTDOWN_TIMEOUT_MS", default_value_t = millis(Limits::default().shutdown_timeout))]
    pub shutdown_timeout_ms: u64,
    /// Connections open at once; at the limit no more are accepted until one closes.
    #[arg(long, env = "PRESENCE_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Requests answered at once; one more is a 503.
    #[arg(long, env = "PRESENCE_MAX_REQUESTS", default_value_t = Limits::default().max_requests)]
    pub max_requests: usize,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        let ms = std::time::Duration::from_millis;
        Limits {
            header_read_timeout: ms(self.header_read_timeout_ms),
            keep_alive_timeout: ms(self.keep_alive_timeout_ms),
            request_timeout: ms(self.request_timeout_ms),
            shutdown_timeout: ms(self.shutdown_timeout_ms),
            max_connections: self.max_connections.max(1),
            max_requests: self.max_requests.max(1),
        }
    }
}

/// How callers authenticate.
#[derive(Debug, Args)]
pub struct AuthArgs {
    /// onsite: passwords accepted, application tokens optional. online: no passwords; tickets
    /// and tokens need a registered application's SO-AppToken.
    #[arg(long, env = "PRESENCE_INSTALLATION", value_enum, default_value_t = Installation::Onsite)]
    pub installation: Installation,
    /// Accept Basic (login and password); SuperOffice's AuthorizeWithUsername.
    #[arg(long, env = "PRESENCE_AUTH_BASIC", default_value_t = true, action = clap::ArgAction::Set)]
    pub auth_basic: bool,
    /// Accept SOTicket tickets and browser sessions; SuperOffice's AuthorizeWithTicket.
    #[arg(long, env = "PRESENCE_AUTH_TICKET", default_value_t = true, action = clap::ArgAction::Set)]
    pub auth_ticket: bool,
    /// Accept Bearer access tokens and identity-provider JWTs.
    #[arg(long, env = "PRESENCE_AUTH_BEARER", default_value_t = true, action = clap::ArgAction::Set)]
    pub auth_bearer: bool,
    /// Mark session cookies Secure (set it when clients come over HTTPS).
    #[arg(long, env = "PRESENCE_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// The identity provider's issuer (iss); enables JWT Bearer tokens.
    #[arg(long, env = "PRESENCE_JWT_ISSUER", requires = "jwt_audience")]
    pub jwt_issuer: Option<String>,
    /// The audience (aud) tokens must be for.
    #[arg(long, env = "PRESENCE_JWT_AUDIENCE", requires = "jwt_issuer")]
    pub jwt_audience: Option<String>,
    /// A JWKS file with the provider's RS256/ES256 public keys.
    #[arg(long, env = "PRESENCE_JWKS_FILE", conflicts_with = "jwks_url")]
    pub jwks_file: Option<std::path::PathBuf>,
    /// The provider's JWKS URL (http or https).
    #[arg(long, env = "PRESENCE_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// The shared secret of HS256 tokens (prefer the environment variable to the flag).
    #[arg(long, env = "PRESENCE_JWT_HS256_SECRET", hide_env_values = true)]
    pub jwt_hs256_secret: Option<String>,
    /// The claim that names the associate.
    #[arg(long, env = "PRESENCE_JWT_ASSOCIATE_CLAIM", default_value = JwtSettings::DEFAULT_ASSOCIATE_CLAIM)]
    pub jwt_associate_claim: String,
}

impl AuthArgs {
    pub fn settings(self) -> AuthSettings {
        let keys = match (self.jwks_file, self.jwks_url) {
            (Some(path), _) => Some(JwksSource::File(path)),
            (None, Some(url)) => Some(JwksSource::Url(url)),
            (None, None) => None,
        };
        let jwt = match (self.jwt_issuer, self.jwt_audience) {
            (Some(issuer), Some(audience)) => Some(JwtSettings {
                issuer,
                audience,
                associate_claim: self.jwt_associate_claim,
                keys,
                hs256_secret: self.jwt_hs256_secret.map(Secret),
            }),
            _ => None,
        };
        AuthSettings {
            installation: self.installation,
            basic: self.auth_basic,
            ticket: self.auth_ticket,
            bearer: self.auth_bearer,
            jwt,
            secure_cookies: self.secure_cookies,
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn parse_base_path(value: &str) -> Result<String, String> {
    config::parse_base_path(value).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a Service user, present (StatusNormal).
    Add {
        login: String,
        #[arg(long)]
        associate_id: i32,
        /// May set any status for anyone.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the Service users.
    List,
    /// Change a user's password.
    Passwd {
        login: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove a Service user.
    Remove { login: String },
}

#[derive(Debug, Subcommand)]
pub enum StatusCommand {
    /// Print an associate's presence as the WebAPI answers it (JSON).
    Get { associate_id: i32 },
    /// Set an associate's presence.
    Set {
        associate_id: i32,
        /// A status name (StatusNormal, StatusNotAvailable, ...) or number.
        status: String,
        #[arg(long)]
        message: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// Print a new ticket for a user (valid six hours after its last use).
    Issue { login: String },
    /// End all of a user's tickets, or one with --ticket.
    Revoke {
        login: String,
        #[arg(long)]
        ticket: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new Bearer access token for a user.
    Issue {
        login: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = tickets::ACCESS_TOKEN_LIFETIME.as_secs())]
        ttl: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application and print its SO-AppToken.
    Add {
        name: String,
        /// A partner application: online, closed to the User agent unless granted it.
        #[arg(long)]
        partner: bool,
        /// Grant the User agent to a partner application.
        #[arg(long)]
        grant_user_agent: bool,
    },
    /// List the registered applications.
    List,
    /// Remove an application; its token stops working.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Set one text: NAME (such as SR_PRESENCE_OUT_OF_OFFICE), language (ISO code), text.
    Set {
        name: String,
        language: String,
        text: String,
    },
    /// List the texts, of one language or all.
    List { language: Option<String> },
    /// Load texts from a CSV (name,language,text) or JSON ([{"name","language","text"}]) file.
    Import { file: std::path::PathBuf },
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
        let (store, report) = Store::open_and_migrate_with(&self.database, &settings).await?;
        match self.command {
            Command::Migrate => println!("{report}"),
            Command::Serve(args) => {
                if !report.applied.is_empty() {
                    tracing::info!("{report}");
                }
                serve(store, args).await?;
            }
            Command::User(command) => user(&store, command).await?,
            Command::Status(command) => status(&store, command).await?,
            Command::Ticket(command) => ticket(&store, command).await?,
            Command::Token(command) => token(&store, command).await?,
            Command::App(command) => app(&store, command).await?,
            Command::Resource(command) => resource(&store, command).await?,
        }
        Ok(())
    }
}

async fn serve(store: Store, args: ServeArgs) -> Result<(), CliError> {
    if args.demo {
        let added = demo::seed(&store).await?;
        if !added.is_empty() {
            tracing::info!(users = ?added, "added the demo users");
        }
    }
    let listener = listen(args.listen).map_err(|source| CliError::Io {
        context: "cannot listen",
        source,
    })?;
    let address = listener.local_addr().map_err(|source| CliError::Io {
        context: "cannot read the listening address",
        source,
    })?;
    let mut limits = args.limits.limits();
    limits.max_connections = fit_open_files(limits.max_connections);
    let settings = HttpSettings {
        base_path: args.base_path,
        body_limit: args.body_limit,
        limits,
    };
    let auth = Authenticator::new(args.auth.settings(), Clock::System).await?;
    tracing::info!(
        "listening on http://{address}{}/api/v1/Agents/User/GetUserPresenceStatus",
        settings.base_path
    );
    let state = AppState::new(store, settings, auth);
    app::serve(listener, state, shutdown_signal())
        .await
        .map_err(|source| CliError::Io {
            context: "serving failed",
            source,
        })?;
    tracing::info!("stopped");
    Ok(())
}

/// Connections the kernel may queue for the server to accept: past the connection limit they
/// wait there, and a longer queue lets a burst wait instead of being dropped. The kernel caps
/// it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with [`LISTEN_BACKLOG`], where the standard library's `bind` asks
/// for 128.
fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As the standard library does on Unix: a restarted server binds at once, while the old
    // one's connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Files the server keeps open besides its connections: the database, its log and its shared
/// memory for each connection to it (a writer, a checkpointer, up to 64 readers), or the
/// PostgreSQL pool; the listener; the runtime's own.
const FILES_BESIDES_CONNECTIONS: u64 = 256;

/// Raises the soft limit on open files to the hard limit, so that the connection limit, not
/// the file limit, decides how many clients are served; and lowers the connection limit to
/// what the file limit leaves room for, so that the server stops accepting before `accept`
/// fails for want of a descriptor.
fn fit_open_files(max_connections: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = raised,
            Err(error) => tracing::warn!(%error, "cannot raise the limit on open files"),
        }
    }
    let Some(files) = limit.current else {
        return max_connections;
    };
    let room = usize::try_from(files.saturating_sub(FILES_BESIDES_CONNECTIONS))
        .unwrap_or(usize::MAX)
        .max(1);
    if room < max_connections {
        tracing::warn!(
            files,
            max_connections = room,
            "the limit on open files leaves room for fewer connections than configured"
        );
    }
    max_connections.min(room)
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}

async fn user(store: &Store, command: UserCommand) -> Result<(), CliError> {
    match command {
        UserCommand::Add {
            login,
            associate_id,
            admin,
            password_stdin,
        } => {
            if associate_id <= 0 {
                return Err(CliError::BadAssociateId(associate_id));
            }
            let hash = hash_password(read_password(password_stdin)?).await?;
            store
                .add_user(NewServiceUser {
                    associate_id: AssociateId::new(associate_id),
                    login: login.clone(),
                    password_hash: Some(hash),
                    is_admin: admin,
                    presence: UserPresenceStatus {
                        status: UserStatus::StatusNormal,
                        message: Message::none(),
                    },
                })
                .await?;
            println!("added {login} (associate {associate_id})");
        }
        UserCommand::List => {
            println!(
                "{:>10}  {:<24}  {:<5}  {:<18}  MESSAGE",
                "ASSOCIATE", "LOGIN", "ADMIN", "STATUS"
            );
            for user in store.list_users().await? {
                println!(
                    "{:>10}  {:<24}  {:<5}  {:<18}  {}",
                    user.associate_id,
                    user.login,
                    if user.is_admin { "yes" } else { "no" },
                    user.presence.status,
                    user.presence.message.as_deref().unwrap_or("")
                );
            }
        }
        UserCommand::Passwd {
            login,
            password_stdin,
        } => {
            let hash = hash_password(read_password(password_stdin)?).await?;
            store.set_password(&login, hash).await?;
            println!("changed the password of {login}");
        }
        UserCommand::Remove { login } => {
            store.remove_user(&login).await?;
            println!("removed {login}");
        }
    }
    Ok(())
}

async fn status(store: &Store, command: StatusCommand) -> Result<(), CliError> {
    let (associate_id, presence) = match command {
        StatusCommand::Get { associate_id } => {
            let associate_id = AssociateId::new(associate_id);
            (associate_id, store.presence(associate_id).await?)
        }
        StatusCommand::Set {
            associate_id,
            status,
            message,
        } => {
            let associate_id = AssociateId::new(associate_id);
            let presence = UserPresenceStatus {
                status: status.parse()?,
                message: Message::new(message)?,
            };
            (
                associate_id,
                store.set_presence(associate_id, presence).await?,
            )
        }
    };
    let presence = presence.ok_or(CliError::NotAServiceUser(associate_id))?;
    let view = Select::ALL.apply(&presence);
    let json = encode::presence(ResponseFormat::ApplicationJson, Some(&view));
    println!("{}", String::from_utf8_lossy(&json));
    Ok(())
}

async fn associate_of(store: &Store, login: &str) -> Result<AssociateId, CliError> {
    store
        .credentials(login)
        .await?
        .map(|user| user.associate_id)
        .ok_or_else(|| CliError::UnknownLogin(login.to_owned()))
}

async fn ticket(store: &Store, command: TicketCommand) -> Result<(), CliError> {
    match command {
        TicketCommand::Issue { login } => {
            let associate_id = associate_of(store, &login).await?;
            println!(
                "{}",
                tickets::issue_ticket(store, &Clock::System, associate_id).await?
            );
        }
        TicketCommand::Revoke {
            login,
            ticket: None,
        } => {
            let associate_id = associate_of(store, &login).await?;
            let ended = store.revoke_tokens(TokenKind::Ticket, associate_id).await?;
            println!("revoked {ended} ticket(s) of {login}");
        }
        TicketCommand::Revoke {
            login,
            ticket: Some(ticket),
        } => {
            let associate_id = associate_of(store, &login).await?;
            if !store
                .revoke_token(TokenKind::Ticket, associate_id, SecretHash::of(&ticket))
                .await?
            {
                return Err(CliError::UnknownTicket { login });
            }
            println!("revoked the ticket");
        }
    }
    Ok(())
}

async fn token(store: &Store, command: TokenCommand) -> Result<(), CliError> {
    let TokenCommand::Issue { login, ttl } = command;
    let associate_id = associate_of(store, &login).await?;
    let lifetime = std::time::Duration::from_secs(ttl);
    println!(
        "{}",
        tickets::issue_access_token(store, &Clock::System, associate_id, lifetime).await?
    );
    Ok(())
}

async fn app(store: &Store, command: AppCommand) -> Result<(), CliError> {
    match command {
        AppCommand::Add {
            name,
            partner,
            grant_user_agent,
        } => {
            let (token, hash) = secret::issue("");
            let application = Application {
                name,
                is_partner: partner,
                grants_user_agent: grant_user_agent,
            };
            store
                .add_application(application, hash, Clock::System.now_millis())
                .await?;
            println!("{token}");
        }
        AppCommand::List => {
            println!("{:<32}  {:<7}  USER AGENT", "NAME", "PARTNER");
            for app in store.list_applications().await? {
                println!(
                    "{:<32}  {:<7}  {}",
                    app.name,
                    if app.is_partner { "yes" } else { "no" },
                    if !app.is_partner || app.grants_user_agent {
                        "allowed"
                    } else {
                        "refused online"
                    }
                );
            }
        }
        AppCommand::Remove { name } => {
            store.remove_application(&name).await?;
            println!("removed {name}");
        }
    }
    Ok(())
}

fn parse_language(code: &str) -> Result<Language, CliError> {
    Language::from_tag(code).ok_or_else(|| CliError::UnknownLanguage(code.to_owned()))
}

async fn resource(store: &Store, command: ResourceCommand) -> Result<(), CliError> {
    match command {
        ResourceCommand::Set {
            name,
            language,
            text,
        } => {
            if !language::is_resource_name(&name) {
                return Err(CliError::BadResourceName(name));
            }
            let language = parse_language(&language)?;
            store
                .import_resources(vec![Resource {
                    name: name.clone(),
                    language,
                    text,
                }])
                .await?;
            println!("set {name} in {language}");
        }
        ResourceCommand::List { language } => {
            let language = language.as_deref().map(parse_language).transpose()?;
            for resource in store.list_resources(language).await? {
                println!(
                    "{}\t{}\t{}",
                    resource.name, resource.language, resource.text
                );
            }
        }
        ResourceCommand::Import { file } => {
            let shown = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|source| CliError::Io {
                context: "cannot read the resource file",
                source,
            })?;
            let is_json = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
                || text
                    .trim_start_matches('\u{feff}')
                    .trim_start()
                    .starts_with('[');
            let parsed = if is_json {
                language::parse_resources_json(&text)
            } else {
                language::parse_resources_csv(&text)
            };
            let resources = parsed.map_err(|source| CliError::ResourceFile {
                file: shown.clone(),
                source,
            })?;
            let count = store.import_resources(resources).await?;
            println!("imported {count} text(s) from {shown}");
        }
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> Result<String, CliError> {
    let io = |context| move |source| CliError::Io { context, source };
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(io("cannot read the password from standard input"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let password =
        rpassword::prompt_password("Password: ").map_err(io("cannot read the password"))?;
    let again = rpassword::prompt_password("Again: ").map_err(io("cannot read the password"))?;
    std::io::stdout().flush().ok();
    if password != again {
        return Err(CliError::Io {
            context: "the passwords differ",
            source: std::io::Error::other("try again"),
        });
    }
    Ok(password)
}

async fn hash_password(password: String) -> Result<String, CliError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|_| CliError::Store(StoreError::TaskFailed))?
        .map_err(CliError::from)
}
