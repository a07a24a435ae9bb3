//! Shares one look at the database among every request waiting for one.
//!
//! A request may answer from the cache only after a look at the database that began after the
//! request arrived: then every change committed before it arrived is applied. Asking once per
//! request would cost a round trip each; instead a request joins the next round, and one
//! round, one query, serves every request that joined it. Under load a round serves many;
//! alone, a request waits for a single round trip, as it would have without the cache.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::store::StoreError;

type Outcome = Result<(), String>;

/// How many times a round lets other requests run before it starts.
const MAX_YIELDS: usize = 4;

#[derive(Default)]
pub struct Rounds {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Whether a task is running rounds; it runs them until nobody waits.
    running: bool,
    /// Requests that arrived since the current round began: the next round's.
    waiting: Vec<oneshot::Sender<Outcome>>,
}

impl Rounds {
    /// Waits for a round of `look` that begins after this call, starting one if none runs.
    pub async fn join<F, Fut>(self: &Arc<Self>, look: F) -> Result<(), StoreError>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), StoreError>> + Send,
    {
        let (done, outcome) = oneshot::channel();
        let start = {
            let mut state = self.lock();
            state.waiting.push(done);
            !std::mem::replace(&mut state.running, true)
        };
        if start {
            let rounds = Arc::clone(self);
            tokio::spawn(async move { rounds.run(look).await });
        }
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(StoreError::Unavailable(reason)),
            // The task running rounds was dropped: the runtime is shutting down.
            Err(_) => Err(StoreError::TaskFailed),
        }
    }

    async fn run<F, Fut>(&self, look: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        // Should this task be dropped mid-round, the next request starts another.
        let _stopped = Stopped(self);
        loop {
            // Every other request ready to run goes first, so that it joins this round rather
            // than wait for the next; and again while that brought more, as each turn also
            // reads requests that arrived meanwhile. On a busy node this makes rounds fewer and
            // larger, and each costs the database a query.
            let mut waiting = self.lock().waiting.len();
            for _ in 0..MAX_YIELDS {
                tokio::task::yield_now().await;
                let now = self.lock().waiting.len();
                if now == waiting {
                    break;
                }
                waiting = now;
            }
            let round = {
                let mut state = self.lock();
                if state.waiting.is_empty() {
                    state.running = false;
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            let outcome = look().await.map_err(|error| match error {
                StoreError::Unavailable(reason) => reason,
                other => other.to_string(),
            });
            for done in round {
                let _ = done.send(outcome.clone());
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Stopped<'a>(&'a Rounds);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.lock().running = false;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn requests_waiting_together_share_a_round_and_later_ones_get_their_own() {
        let rounds = Arc::new(Rounds::default());
        let looks = Arc::new(AtomicUsize::new(0));
        let look = {
            let looks = looks.clone();
            move || {
                let looks = looks.clone();
                async move {
                    looks.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(())
                }
            }
        };
        // The first starts a round; the nine arriving during it share the next one.
        let first = tokio::spawn({
            let (rounds, look) = (rounds.clone(), look.clone());
            async move { rounds.join(look).await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let joined: Vec<_> = (0..9)
            .map(|_| {
                let (rounds, look) = (rounds.clone(), look.clone());
                tokio::spawn(async move { rounds.join(look).await })
            })
            .collect();
        first.await.unwrap().unwrap();
        for request in joined {
            request.await.unwrap().unwrap();
        }
        assert_eq!(looks.load(Ordering::SeqCst), 2);
        rounds.join(look).await.unwrap();
        assert_eq!(looks.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failed_look_fails_its_round_only() {
        let rounds = Arc::new(Rounds::default());
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let look = {
            let fail = fail.clone();
            move || {
                let fail = fail.swap(false, Ordering::SeqCst);
                async move {
                    if fail {
                        Err(StoreError::Unavailable("down".into()))
                    } else {
                        Ok(())
                    }
                }
            }
        };
        assert!(matches!(
            rounds.join(look.clone()).await,
            Err(StoreError::Unavailable(reason)) if reason.contains("down")
        ));
        rounds.join(look).await.unwrap();
    }
}
