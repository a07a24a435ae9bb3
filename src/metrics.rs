//! What `GET /metrics` reports, in the OpenMetrics text format that Prometheus scrapes.
//!
//! Events (requests, authentication failures, lockouts) are counted where they happen, in
//! process-wide families: a process is what Prometheus scrapes, and the code that sees an
//! authentication fail need not be handed a registry. What the store holds at the moment of a
//! scrape (its cache's hits and misses, connections in use, Sets waiting) is read from the
//! store then ([`StoreStats`]).

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// What a request asked for, as the metrics and the access log name it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Operation {
    GetUserPresenceStatus,
    SetUserPresenceStatus,
    /// A GET of either operation's address, which describes it.
    Describe,
    SignIn,
    SignOut,
    Health,
    Metrics,
    /// A read of the presence API (`/presence/v1/...`): presences, absences, its document.
    PresenceRead,
    /// A write of the presence API: a status, an absence planned or cancelled.
    PresenceWrite,
    /// Anything else: an unknown address, mostly.
    Other,
}

impl Operation {
    const ALL: [Self; 10] = [
        Self::GetUserPresenceStatus,
        Self::SetUserPresenceStatus,
        Self::Describe,
        Self::SignIn,
        Self::SignOut,
        Self::Health,
        Self::Metrics,
        Self::PresenceRead,
        Self::PresenceWrite,
        Self::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::GetUserPresenceStatus => "GetUserPresenceStatus",
            Self::SetUserPresenceStatus => "SetUserPresenceStatus",
            Self::Describe => "Describe",
            Self::SignIn => "SignIn",
            Self::SignOut => "SignOut",
            Self::Health => "Health",
            Self::Metrics => "Metrics",
            Self::PresenceRead => "PresenceRead",
            Self::PresenceWrite => "PresenceWrite",
            Self::Other => "Other",
        }
    }
}

/// How a caller tried to authenticate, for the failures counted by scheme.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Scheme {
    Basic,
    SoTicket,
    Bearer,
    /// A browser session's cookie.
    Session,
    /// A login and password sent to the sign-in page.
    SignIn,
    /// No credentials, or a scheme the server does not know.
    None,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: Operation,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: Operation,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SchemeLabels {
    scheme: Scheme,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    /// `delivered`, `failed`, `gaveUp` or `expired` (`store::DeliveryOutcome`).
    outcome: String,
}

/// Upper bounds of the latency buckets, in seconds: from 50 µs (a cached Get) to 10 s (past
/// every timeout but the request's own).
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

struct Events {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    /// Each operation's counter of 200s and its latency histogram, taken from the families
    /// once: counted through these, the common answers skip the families' hashing and locks.
    by_operation: [(Counter, Histogram); Operation::ALL.len()],
    authentication_failures: Family<SchemeLabels, Counter>,
    lockouts: Counter,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    /// Set by the node's webhook deliveries (`webhooks::Deliverer`).
    webhook_backlog: Gauge,
    webhooks_failing: Gauge,
}

static EVENTS: LazyLock<Events> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("presence");
    let requests = Family::<RequestLabels, Counter>::default();
    registry.register(
        "http_requests",
        "Requests answered, by operation and status",
        requests.clone(),
    );
    let latency = Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
        latency_histogram,
    );
    registry.register(
        "http_request_duration_seconds",
        "Time from a request's head to its answer, by operation",
        latency.clone(),
    );
    let authentication_failures = Family::<SchemeLabels, Counter>::default();
    registry.register(
        "authentication_failures",
        "Requests refused for their credentials, by the scheme they tried",
        authentication_failures.clone(),
    );
    let lockouts = Counter::default();
    registry.register(
        "lockouts",
        "Password checks refused because the login was locked out after failed guesses",
        lockouts.clone(),
    );
    let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
    registry.register(
        "webhook_attempts",
        "Webhook deliveries attempted by this node, by outcome",
        webhook_attempts.clone(),
    );
    let webhook_backlog = Gauge::default();
    registry.register(
        "webhook_backlog",
        "Revisions not yet delivered, summed over the webhooks this node delivers",
        webhook_backlog.clone(),
    );
    let webhooks_failing = Gauge::default();
    registry.register(
        "webhooks_failing",
        "Webhooks this node delivers whose next change has failed and waits to be tried again",
        webhooks_failing.clone(),
    );
    let by_operation = Operation::ALL.map(|operation| {
        let ok = requests
            .get_or_create(&RequestLabels {
                operation,
                status: 200,
            })
            .clone();
        let latency = latency
            .get_or_create(&OperationLabels { operation })
            .clone();
        (ok, latency)
    });
    Events {
        registry,
        requests,
        by_operation,
        authentication_failures,
        lockouts,
        webhook_attempts,
        webhook_backlog,
        webhooks_failing,
    }
});

/// Counts one answered request and its time.
pub fn request(operation: Operation, status: u16, elapsed: Duration) {
    let events = &*EVENTS;
    // `ALL` lists every operation, in the order of their discriminants.
    let (ok, latency) = &events.by_operation[operation as usize];
    if status == 200 {
        ok.inc();
    } else {
        events
            .requests
            .get_or_create(&RequestLabels { operation, status })
            .inc();
    }
    latency.observe(elapsed.as_secs_f64());
}

pub fn authentication_failure(scheme: Scheme) {
    EVENTS
        .authentication_failures
        .get_or_create(&SchemeLabels { scheme })
        .inc();
}

pub fn lockout() {
    EVENTS.lockouts.inc();
}

/// Counts one webhook delivery attempt by how it ended.
pub fn webhook_attempt(outcome: &str) {
    EVENTS
        .webhook_attempts
        .get_or_create(&OutcomeLabels {
            outcome: outcome.to_owned(),
        })
        .inc();
}

/// The webhooks this node delivers: revisions behind, and how many are failing.
pub fn webhook_state(backlog: i64, failing: i64) {
    EVENTS.webhook_backlog.set(backlog);
    EVENTS.webhooks_failing.set(failing);
}

/// What the store holds at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Lookups of a presence or of credentials answered from memory since the start.
    pub cache_hits: u64,
    /// Lookups that had to read the database.
    pub cache_misses: u64,
    /// Database connections busy with a request's work (on SQLite, the readers).
    pub connections_in_use: u64,
    /// Requests waiting for a database connection.
    pub connections_waiting: u64,
    /// Sets waiting for their commit.
    pub sets_waiting: u64,
}

/// What the metrics report of the change feed now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedStats {
    /// Change streams open.
    pub streams: u64,
}

/// The OpenMetrics text of every metric, the store's and the feed's as of now.
pub fn encode(store: StoreStats, feed: FeedStats) -> String {
    let mut registry = Registry::with_prefix("presence");
    let counter = |value: u64| {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        counter
    };
    let gauge = |value: u64| {
        let gauge = Gauge::<i64>::default();
        gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        gauge
    };
    registry.register(
        "user_cache_hits",
        "Lookups of a presence or of credentials answered from memory",
        counter(store.cache_hits),
    );
    registry.register(
        "user_cache_misses",
        "Lookups of a presence or of credentials that read the database",
        counter(store.cache_misses),
    );
    registry.register(
        "db_connections_in_use",
        "Database connections busy with a request's work",
        gauge(store.connections_in_use),
    );
    registry.register(
        "db_connections_waiting",
        "Requests waiting for a database connection",
        gauge(store.connections_waiting),
    );
    registry.register(
        "sets_waiting",
        "Sets waiting for their commit",
        gauge(store.sets_waiting),
    );
    registry.register(
        "change_streams",
        "Change streams open (GET /presence/v1/changes/stream)",
        gauge(feed.streams),
    );
    let mut text = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail; the encoder's errors are the writer's.
    let encoded = encode_registry(&mut text, &EVENTS.registry)
        .and_then(|()| encode_registry(&mut text, &registry))
        .and_then(|()| encode_eof(&mut text));
    if encoded.is_err() {
        let _ = writeln!(text, "# the metrics could not be encoded");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_listed_at_its_discriminant() {
        for (index, operation) in Operation::ALL.into_iter().enumerate() {
            assert_eq!(operation as usize, index, "{operation:?}");
        }
    }

    #[test]
    fn answers_are_counted_by_operation_and_status() {
        let ok = r#"presence_http_requests_total{operation="SignOut",status="200"}"#;
        let refused = r#"presence_http_requests_total{operation="SignOut",status="403"}"#;
        let count = |text: &str, series: &str| -> u64 {
            text.lines()
                .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
                .unwrap_or(0)
        };
        let before = encode(StoreStats::default(), FeedStats::default());
        request(Operation::SignOut, 200, Duration::from_millis(1));
        request(Operation::SignOut, 403, Duration::from_millis(1));
        request(Operation::SignOut, 403, Duration::from_millis(1));
        let after = encode(StoreStats::default(), FeedStats::default());
        assert_eq!(count(&after, ok) - count(&before, ok), 1);
        assert_eq!(count(&after, refused) - count(&before, refused), 2);
    }
}
