//! Settings of the HTTP server, read from flags and `PRESENCE_*` environment variables (the
//! command line in `cli/serve.rs` declares both).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How the server behaves on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// A prefix in front of every address (`/cust12345` for `/Cust12345/api/v1/...`), stored
    /// lower-cased without a trailing slash; empty for none.
    pub base_path: String,
    /// The largest request body read, in bytes; a larger one is a 413. The operations'
    /// bodies are a few dozen bytes.
    pub body_limit: usize,
    pub limits: Limits,
    /// How long the history keeps a change, in days.
    pub history_days: u32,
    /// Whether webhooks may deliver to loopback and private addresses: off, so that an
    /// administrator's URL cannot reach what only the server's network can.
    pub allow_private_webhooks: bool,
}

impl HttpSettings {
    pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
    pub const DEFAULT_HISTORY_DAYS: u32 = 400;
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            base_path: String::new(),
            body_limit: Self::DEFAULT_BODY_LIMIT,
            limits: Limits::default(),
            history_days: Self::DEFAULT_HISTORY_DAYS,
            allow_private_webhooks: false,
        }
    }
}

/// What the server allows clients, so that none that misbehave can hold it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From a new connection, or the first byte of a later request, to the end of the
    /// request's head; past it the connection is closed.
    pub header_read_timeout: Duration,
    /// How long a connection may wait for its next request after an answer.
    pub keep_alive_timeout: Duration,
    /// From a request's head to its answer, the body's arrival included; past it, a 408.
    pub request_timeout: Duration,
    /// After SIGTERM or SIGINT, how long the requests in flight have to finish before their
    /// connections are closed.
    pub shutdown_timeout: Duration,
    /// Connections open at once; at the limit the server accepts no more until one closes.
    pub max_connections: usize,
    /// Requests answered at once; one more is a 503.
    pub max_requests: usize,
    /// Change streams open at once; one more is a 503. Never more than all but
    /// [`Limits::KEPT_FOR_REQUESTS`] of the connections, so that streams cannot shut out the
    /// clients that set and read presence.
    pub max_streams: usize,
}

impl Limits {
    pub const KEPT_FOR_REQUESTS: usize = 64;

    /// The streams allowed open at once, the connections' limit considered.
    pub fn streams_allowed(&self) -> usize {
        self.max_streams
            .min(self.max_connections.saturating_sub(Self::KEPT_FOR_REQUESTS))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_requests: 1024,
            max_streams: 1024,
        }
    }
}

/// How the server uses its database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// PostgreSQL connections per node.
    pub pool_size: usize,
    /// The longest a statement may run before PostgreSQL cancels it.
    pub statement_timeout: std::time::Duration,
    /// The longest a request waits for a connection (including connecting) before it is
    /// answered 503: what bounds every request while the database is unreachable.
    pub acquire_timeout: std::time::Duration,
    /// The most Sets that may wait for their commit at once; one more is answered 503, with
    /// nothing stored.
    pub set_queue: usize,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            pool_size: 16,
            statement_timeout: std::time::Duration::from_secs(5),
            acquire_timeout: std::time::Duration::from_secs(3),
            set_queue: 1024,
        }
    }
}

/// SuperOffice's two installation types.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Installation {
    /// On the customer's own servers: passwords accepted, application tokens optional.
    #[default]
    Onsite,
    /// SuperOffice Online: no passwords; tickets and tokens come with a registered
    /// application's `SO-AppToken`, and partner applications need a grant for the User agent.
    Online,
}

/// How callers prove who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    pub installation: Installation,
    /// `Authorization: Basic`, SuperOffice's `AuthorizeWithUsername` (never online).
    pub basic: bool,
    /// `Authorization: SOTicket` and browser sessions, SuperOffice's `AuthorizeWithTicket`.
    pub ticket: bool,
    /// `Authorization: Bearer`: access tokens, and JWTs when an identity provider is set.
    pub bearer: bool,
    pub jwt: Option<JwtSettings>,
    /// Marks the session cookies `Secure`: set it whenever clients reach the server over
    /// HTTPS, as they should outside a test bench.
    pub secure_cookies: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            installation: Installation::Onsite,
            basic: true,
            ticket: true,
            bearer: true,
            jwt: None,
            secure_cookies: false,
        }
    }
}

/// The identity provider whose JWTs are accepted as Bearer tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    /// The claim that names the associate.
    pub associate_claim: String,
    /// Where the RS256 and ES256 public keys are.
    pub keys: Option<JwksSource>,
    /// The shared secret of HS256 tokens.
    pub hs256_secret: Option<Secret>,
}

impl JwtSettings {
    pub const DEFAULT_ASSOCIATE_CLAIM: &str = "http://schemes.superoffice.net/identity/associateid";
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(String),
}

/// A configured secret: usable, but never shown by `Debug` (settings get logged).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the base path {0:?} must start with '/' and hold only letters, digits, '-', '_', '.' and '/'"
)]
pub struct BadBasePath(pub String);

/// Reads a base path: `/Cust12345`, `/Cust12345/`, or `` and `/` for none.
pub fn parse_base_path(value: &str) -> Result<String, BadBasePath> {
    let trimmed = value.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.starts_with('/')
        && !trimmed.contains("//")
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if !valid {
        return Err(BadBasePath(value.to_owned()));
    }
    Ok(trimmed.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            format!("{:?}", Secret("hunter2".into())),
            "Secret(<redacted>)"
        );
    }

    #[test]
    fn base_paths() {
        assert_eq!(parse_base_path(""), Ok(String::new()));
        assert_eq!(parse_base_path("/"), Ok(String::new()));
        assert_eq!(parse_base_path("/Cust12345/"), Ok("/cust12345".into()));
        assert_eq!(parse_base_path("/a/b"), Ok("/a/b".into()));
        assert!(parse_base_path("cust").is_err());
        assert!(parse_base_path("/a b").is_err());
        assert!(parse_base_path("/a//b").is_err());
    }
}
