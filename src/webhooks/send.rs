//! One POST to a receiver, on a blocking thread: ureq, with no redirects, no proxy, bounded
//! waits and a bounded read of the answer, connecting only to the addresses
//! [`CheckedResolver`] let through.

use std::io;
use std::time::Duration;

use ureq::unversioned::transport::DefaultConnector;

use super::target::CheckedResolver;

/// The longest a connection to a receiver may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest one delivery may take, from resolving the name to the answer's end.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of a receiver's answer read at most; it is read only so that the connection can be
/// used again, and a longer one closes it.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Characters of an error kept for `webhook deliveries`.
const MAX_ERROR_CHARS: usize = 300;

/// A client for one webhook: it keeps its connection to the receiver between deliveries.
pub fn agent(allow_private: bool) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        // A redirect is the receiver's answer, a failure like any other that is not a 2xx.
        .max_redirects(0)
        .http_status_as_error(false)
        // A proxy would resolve the name itself, past the check of its addresses.
        .proxy(None)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(REQUEST_TIMEOUT))
        .user_agent(concat!("presence/", env!("CARGO_PKG_VERSION")))
        .max_idle_connections_per_host(1)
        .build();
    ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        CheckedResolver { allow_private },
    )
}

/// What the receiver made of one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// Its status, when it answered.
    pub status: Option<u16>,
    /// What went wrong, when something did.
    pub error: Option<String>,
}

impl Attempt {
    pub fn delivered(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The headers Standard Webhooks adds to a message.
pub struct Signed<'a> {
    pub id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
}

/// POSTs one change's JSON. Blocks for up to [`REQUEST_TIMEOUT`].
pub fn post(agent: &ureq::Agent, url: &str, signed: &Signed<'_>, body: &[u8]) -> Attempt {
    let sent = agent
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", signed.id)
        .header("webhook-timestamp", signed.timestamp.to_string())
        .header("webhook-signature", signed.signature)
        .send(body);
    let mut response = match sent {
        Ok(response) => response,
        Err(error) => {
            return Attempt {
                status: None,
                error: Some(described(&error)),
            };
        }
    };
    let status = response.status().as_u16();
    // Drained so that the connection can be used again; what it says is not kept.
    let _ = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec();
    let error = match status {
        200..=299 => None,
        300..=399 => Some(format!(
            "answered {status}; redirects are not followed{}",
            response
                .headers()
                .get("location")
                .and_then(|to| to.to_str().ok())
                .map(|to| format!(" (to {})", shortened(to)))
                .unwrap_or_default()
        )),
        _ => Some(format!("answered {status}")),
    };
    Attempt {
        status: Some(status),
        error,
    }
}

fn described(error: &ureq::Error) -> String {
    match error {
        // The resolver's refusal of a private address says so itself.
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::PermissionDenied => {
            shortened(&io.to_string())
        }
        other => shortened(&other.to_string()),
    }
}

fn shortened(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}
