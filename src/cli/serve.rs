//! `presence serve`: its settings, the listener and the process's limits.

use std::net::SocketAddr;

use clap::Args;
use tokio::net::TcpListener;

use super::{CliError, millis};
use crate::app;
use crate::clock::Clock;
use crate::config::{
    self, AuthSettings, HttpSettings, Installation, JwksSource, JwtSettings, Limits, Secret,
};
use crate::demo;
use crate::http::auth::Authenticator;
use crate::http::state::AppState;
use crate::store::Store;

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
    /// How long the history keeps a change, in days; an older cursor is a 410. At least 2:
    /// a webhook retries a change for a day.
    #[arg(long, env = "PRESENCE_HISTORY_DAYS", default_value_t = HttpSettings::DEFAULT_HISTORY_DAYS,
          value_parser = clap::value_parser!(u32).range(2..=36_500))]
    pub history_days: u32,
    /// Let webhooks deliver to loopback and private addresses (refused otherwise).
    #[arg(long, env = "PRESENCE_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
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
    /// Change streams open at once; one more is a 503. At most the connection limit less 64.
    #[arg(long, env = "PRESENCE_MAX_STREAMS", default_value_t = Limits::default().max_streams)]
    pub max_streams: usize,
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
            max_streams: self.max_streams,
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

fn parse_base_path(value: &str) -> Result<String, String> {
    config::parse_base_path(value).map_err(|e| e.to_string())
}
pub(super) async fn serve(store: Store, args: ServeArgs) -> Result<(), CliError> {
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
        history_days: args.history_days,
        allow_private_webhooks: args.allow_private_webhooks,
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
