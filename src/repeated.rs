//! Conditions that can repeat thousands of times a second (a locked login hammered by one
//! client, a full disk failing every write): each is logged the first time, then at most once
//! an interval, with how many times it happened meanwhile, so that the log stays readable and
//! cannot fill the disk itself.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::Level;

/// The least time between two lines about one condition.
const INTERVAL: Duration = Duration::from_secs(10);

/// One condition's log.
pub struct Repeated {
    /// What happened, for the line that only counts.
    what: &'static str,
    level: Level,
    /// The least time between two lines.
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// When a line about the condition was last written.
    logged_at: Option<Instant>,
    /// Occurrences since then that no line has told of.
    unlogged: u64,
}

impl Repeated {
    pub const fn new(level: Level, what: &'static str) -> Self {
        Self::with_interval(level, what, INTERVAL)
    }

    pub const fn with_interval(level: Level, what: &'static str, interval: Duration) -> Self {
        Self {
            what,
            level,
            interval,
            state: Mutex::new(State {
                logged_at: None,
                unlogged: 0,
            }),
        }
    }

    /// Counts one occurrence, and logs it with `log` unless the condition was logged less than
    /// an interval ago. `log` is given how many occurrences since the last line went unlogged.
    pub fn report(&self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        let unlogged = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state
                .logged_at
                .is_some_and(|at| now.duration_since(at) < self.interval)
            {
                state.unlogged += 1;
                return;
            }
            state.logged_at = Some(now);
            std::mem::take(&mut state.unlogged)
        };
        log(unlogged);
    }

    /// Logs how many occurrences went unlogged, once an interval has passed since the last
    /// line: so that the count is told even when the condition stops.
    pub fn flush(&self) {
        let now = Instant::now();
        let unlogged = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let due = state
                .logged_at
                .is_none_or(|at| now.duration_since(at) >= self.interval);
            if state.unlogged == 0 || !due {
                return;
            }
            state.logged_at = Some(now);
            std::mem::take(&mut state.unlogged)
        };
        let what = self.what;
        match self.level {
            Level::ERROR => tracing::error!(times = unlogged, "{what}, again"),
            Level::WARN => tracing::warn!(times = unlogged, "{what}, again"),
            _ => tracing::info!(times = unlogged, "{what}, again"),
        }
    }

    /// How many occurrences no line has told of yet.
    pub fn unlogged(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unlogged
    }
}

/// A login refused without a password check, as too many recent checks failed.
pub static LOGIN_LOCKED_OUT: Repeated = Repeated::new(Level::WARN, "locked-out logins refused");
/// A password check that failed: a guessing flood makes one per Argon2 check.
pub static FAILED_PASSWORD: Repeated = Repeated::new(Level::WARN, "failed passwords");
/// The disk holding the database is full: nothing can be stored.
pub static DISK_FULL: Repeated = Repeated::new(Level::ERROR, "the disk is full");
/// A commit of Sets failed for another reason.
pub static COMMIT_FAILED: Repeated = Repeated::new(Level::ERROR, "committing Sets failed");
/// Any other storage failure, answered 500.
pub static STORAGE_FAILED: Repeated = Repeated::new(Level::ERROR, "storage failed");
/// Requests refused with a 503 because the server was at one of its limits.
pub static OVERLOADED: Repeated = Repeated::new(Level::WARN, "requests refused as too many");
/// The server stopped accepting connections because it had as many open as it may.
pub static CONNECTION_LIMIT: Repeated = Repeated::new(
    Level::WARN,
    "at the connection limit: accepting no more until one closes",
);
/// Accepting a connection failed (out of file descriptors, say).
pub static ACCEPT_FAILED: Repeated = Repeated::new(Level::ERROR, "accepting a connection failed");
/// Recording due timers as changes failed (the database is down, say).
pub static TIMERS_FAILED: Repeated = Repeated::new(Level::WARN, "recording due timers failed");
/// The change feed could not read the change log.
pub static FEED_FAILED: Repeated = Repeated::new(Level::WARN, "reading the change log failed");
/// Webhook deliveries could not be claimed or stored (the database is down, say).
pub static WEBHOOKS_FAILED: Repeated =
    Repeated::new(Level::WARN, "storing webhook deliveries failed");
/// A receiver refused a delivery, or could not be reached: one line per webhook would be one
/// per attempt while it is down.
pub static WEBHOOK_ATTEMPT_FAILED: Repeated =
    Repeated::new(Level::INFO, "webhook deliveries failed");

/// Every condition, for [`flush_all`].
static ALL: [&Repeated; 12] = [
    &TIMERS_FAILED,
    &FEED_FAILED,
    &WEBHOOKS_FAILED,
    &WEBHOOK_ATTEMPT_FAILED,
    &LOGIN_LOCKED_OUT,
    &FAILED_PASSWORD,
    &DISK_FULL,
    &COMMIT_FAILED,
    &STORAGE_FAILED,
    &OVERLOADED,
    &CONNECTION_LIMIT,
    &ACCEPT_FAILED,
];

/// Tells every condition's unlogged count that is due: the server calls it every few seconds.
pub fn flush_all() {
    for condition in ALL {
        condition.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_is_logged_once_then_counted() {
        let condition = Repeated::new(Level::WARN, "test");
        let mut lines = Vec::new();
        for _ in 0..1000 {
            condition.report(|unlogged| lines.push(unlogged));
        }
        assert_eq!(lines, [0], "one line, the first time");
        assert_eq!(condition.unlogged(), 999);
        // Not due yet: a flush within the interval writes nothing and forgets nothing.
        condition.flush();
        assert_eq!(condition.unlogged(), 999);
    }

    #[test]
    fn the_count_is_told_once_the_interval_has_passed() {
        let condition = Repeated::with_interval(Level::WARN, "test", Duration::from_millis(20));
        for _ in 0..3 {
            condition.report(|_| {});
        }
        assert_eq!(condition.unlogged(), 2);
        std::thread::sleep(Duration::from_millis(30));
        condition.flush();
        assert_eq!(condition.unlogged(), 0);
        let mut lines = Vec::new();
        condition.report(|unlogged| lines.push(unlogged));
        assert_eq!(
            lines,
            [] as [u64; 0],
            "the flush was a line: the next waits its turn"
        );
    }
}
