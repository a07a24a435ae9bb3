//! Records the changes nobody makes: a timed status ending, a planned absence starting or
//! ending. Reads never wait for these (`Presence::at` answers from the stored times); the
//! history and the feed do, so each is recorded within a second of its time, by whichever node
//! looks first (`Store::record_due_timers` claims each once), and after a restart with the
//! time it was due.

use std::time::Duration;

use crate::clock::Clock;
use crate::repeated;
use crate::store::Store;

/// How often each node looks for timers that fell due: well within the second a timer's
/// change may take to be recorded, and a look costs two indexed queries that find nothing.
pub const TIMER_INTERVAL: Duration = Duration::from_millis(250);

/// Records due timers every [`TIMER_INTERVAL`], until the task is dropped.
pub async fn run(store: Store, clock: Clock, feed: super::feed::Feed) {
    let mut interval = tokio::time::interval(TIMER_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match store.record_due_timers(clock.now_millis()).await {
            Ok(0) => {}
            Ok(recorded) => {
                tracing::debug!(recorded, "timers recorded");
                feed.changed_here();
            }
            Err(error) => repeated::TIMERS_FAILED.report(|unlogged| {
                tracing::warn!(%error, unlogged, "recording due timers failed; will try again");
            }),
        }
    }
}
