//! The administration commands: users, tickets, tokens, applications and texts.

use std::io::{BufRead, Write};

use clap::Subcommand;

use crate::clock::Clock;

use super::CliError;
use crate::domain::{AssociateId, Message, UserPresenceStatus, UserStatus};
use crate::language::{self, Language, Resource};
use crate::password;
use crate::secret::{self, SecretHash};
use crate::store::{Application, NewServiceUser, Store, StoreError, TokenKind};
use crate::tickets;

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
    /// Add many Service users from a CSV file (a header login,associate_id,admin,password,
    /// then one user a line) or a JSON file ([{"login", "associateId", "admin", "password"}]);
    /// `-` reads standard input. All or nothing unless --skip-invalid; users there already are
    /// left as they are.
    Import {
        file: std::path::PathBuf,
        /// Import the valid records and list the others, instead of importing nothing.
        #[arg(long)]
        skip_invalid: bool,
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

pub(super) async fn user(store: &Store, command: UserCommand) -> Result<(), CliError> {
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
                    // The name, not the status: Display writes it without the column's padding.
                    user.presence.status.name(),
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
        UserCommand::Import { file, skip_invalid } => {
            super::import::import(store, &file, skip_invalid).await?;
        }
    }
    Ok(())
}

async fn associate_of(store: &Store, login: &str) -> Result<AssociateId, CliError> {
    store
        .credentials(login)
        .await?
        .map(|user| user.associate_id)
        .ok_or_else(|| CliError::UnknownLogin(login.to_owned()))
}

pub(super) async fn ticket(store: &Store, command: TicketCommand) -> Result<(), CliError> {
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

pub(super) async fn token(store: &Store, command: TokenCommand) -> Result<(), CliError> {
    let TokenCommand::Issue { login, ttl } = command;
    let associate_id = associate_of(store, &login).await?;
    let lifetime = std::time::Duration::from_secs(ttl);
    println!(
        "{}",
        tickets::issue_access_token(store, &Clock::System, associate_id, lifetime).await?
    );
    Ok(())
}

pub(super) async fn app(store: &Store, command: AppCommand) -> Result<(), CliError> {
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

pub(super) async fn backup(store: &Store, file: std::path::PathBuf) -> Result<(), CliError> {
    let report = store.backup(file.clone()).await?;
    println!("backed up {} bytes to {}", report.bytes, file.display());
    Ok(())
}

pub(super) async fn resource(store: &Store, command: ResourceCommand) -> Result<(), CliError> {
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
