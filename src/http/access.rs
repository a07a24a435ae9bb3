//! The access log and request ids: one line per request, naming what was asked, by whom, how
//! it was answered and how long that took, under an id the client can quote.
//!
//! The line never holds a credential, ticket, token or body: only the operation, the path
//! (without its query, and cut short), the status, the time, the authenticated associate and
//! the request id. It is logged at `info` under the target `access`, so that
//! `PRESENCE_LOG=info,access=off` turns it off while the rest of the log stays.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;

use crate::domain::AssociateId;
use crate::metrics::Operation;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client; a longer one is replaced by one of ours.
const MAX_REQUEST_ID: usize = 128;

/// The most of a path the log repeats: enough for every address the server has.
const MAX_LOGGED_PATH: usize = 128;

/// Who a request was answered for, put in the response's extensions by the operation once the
/// caller is known, and taken out again for the log (it never reaches the wire).
#[derive(Clone, Copy, Debug)]
pub struct Associate(pub AssociateId);

/// The request's id: the client's `X-Request-Id` when it is sane (1 to 128 letters, digits and
/// `-_.:`, which a UUID or a trace id is, and which cannot break a log line), or a new one.
pub fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(theirs) = headers.get(&REQUEST_ID)
        && is_sane(theirs.as_bytes())
    {
        return theirs.clone();
    }
    new_request_id()
}

fn is_sane(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A random prefix for this process, then a count: unique across processes and nodes without
/// asking the operating system for randomness on every request. Written out by hand, and the
/// prefix once: the formatting machinery costs more than the rest of the id together.
fn new_request_id() -> HeaderValue {
    static PREFIX: LazyLock<[u8; 16]> = LazyLock::new(|| {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).expect("the operating system's random source failed");
        let mut prefix = [0u8; 16];
        hex(u64::from_ne_bytes(random), &mut prefix);
        prefix
    });
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 32];
    let (prefix, counted) = id.split_at_mut(16);
    prefix.copy_from_slice(&*PREFIX);
    hex(count, counted);
    HeaderValue::from_maybe_shared(Bytes::copy_from_slice(&id))
        .expect("hex digits are a valid header value")
}

/// `value` as 16 lower-case hex digits, most significant first.
fn hex(value: u64, into: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (index, digit) in into.iter_mut().enumerate() {
        let shift = 60 - 4 * index;
        *digit = DIGITS[usize::try_from((value >> shift) & 0xf).unwrap_or(0)];
    }
}

/// One answered request, as the access log tells it.
pub struct Entry<'a> {
    pub request_id: &'a HeaderValue,
    pub operation: Operation,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub elapsed: Duration,
    pub associate: Option<Associate>,
}

/// Whether the access log is written at all (`PRESENCE_LOG` may leave it out): when it is
/// not, nothing need be kept of a request for it.
pub fn is_on() -> bool {
    tracing::enabled!(target: "access", tracing::Level::INFO)
}

impl Entry<'_> {
    pub fn log(&self) {
        let path = cut(self.path, MAX_LOGGED_PATH);
        tracing::info!(
            target: "access",
            request_id = %self.request_id.to_str().unwrap_or("?"),
            operation = %self.operation.name(),
            method = %self.method,
            path = %path,
            status = self.status,
            duration_us = u64::try_from(self.elapsed.as_micros()).unwrap_or(u64::MAX),
            associate = self.associate.map(|Associate(id)| id.get()),
        );
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_client_id_is_kept_and_anything_else_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(
            REQUEST_ID,
            HeaderValue::from_static("3f1c2a4e-7b1d-4c55-9d7e-2b8f0c1a9e77"),
        );
        assert_eq!(request_id(&headers), "3f1c2a4e-7b1d-4c55-9d7e-2b8f0c1a9e77");
        for insane in ["", "a b", "x\"y", "a=1", &"a".repeat(129)] {
            headers.insert(REQUEST_ID, HeaderValue::from_str(insane).unwrap());
            let made = request_id(&headers);
            assert_ne!(made, insane);
            assert_eq!(made.len(), 32, "{made:?}");
        }
    }

    #[test]
    fn made_ids_differ() {
        let headers = HeaderMap::new();
        assert_ne!(request_id(&headers), request_id(&headers));
    }

    #[test]
    fn hex_is_sixteen_digits_most_significant_first() {
        let mut digits = [0u8; 16];
        hex(0x0123_4567_89ab_cdef, &mut digits);
        assert_eq!(&digits, b"0123456789abcdef");
        hex(42, &mut digits);
        assert_eq!(&digits, b"000000000000002a");
    }

    #[test]
    fn paths_are_cut_on_a_character_boundary() {
        assert_eq!(cut("/abc", 10), "/abc");
        assert_eq!(cut("/åå", 2), "/");
    }
}
