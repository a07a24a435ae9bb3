//! The time, as the server sees it: the system clock, or a hand-driven one so tests can let
//! hours pass without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    /// Stands still until advanced: Unix milliseconds.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at the system time.
    pub fn manual() -> Self {
        Self::Manual(Arc::new(AtomicI64::new(Self::System.now_millis())))
    }

    /// Unix milliseconds.
    pub fn now_millis(&self) -> i64 {
        match self {
            Self::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Self::Manual(now) => now.load(Ordering::Relaxed),
        }
    }

    /// Unix seconds, as JWT claims count.
    pub fn now_seconds(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// Moves a manual clock forward; the system clock moves by itself.
    pub fn advance(&self, by: Duration) {
        if let Self::Manual(now) = self {
            now.fetch_add(
                i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
                Ordering::Relaxed,
            );
        }
    }
}
