//! Linearizable reads share the leader's leadership checks.
//!
//! A linearizable read must learn that this node still leads (a heartbeat
//! round a majority answers) and wait until the state it reads has applied
//! everything committed when the read arrived. openraft's
//! `ensure_linearizable` does both, with one heartbeat to every follower
//! per call: at thousands of reads a second the followers spend more on
//! those heartbeats than on the writes.
//!
//! [`ReadRounds`] runs one check at a time for every read waiting, the way
//! etcd batches its read index requests: a read that arrives while a check
//! is under way waits for the next one, which starts after the current one
//! ends and answers every read that queued meanwhile. A check started after
//! a read arrived confirms leadership and takes its read index after that
//! arrival, so every read it answers is linearizable; none is answered by a
//! check that began before it was asked.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// The queue of reads and whether a check is under way. `T` is what one
/// check answers (the node's: `Result<(), Status>`).
pub struct ReadRounds<T> {
    state: Mutex<Queue<T>>,
}

struct Queue<T> {
    /// Whether a driver task is running checks.
    running: bool,
    /// Reads waiting for the next check.
    waiting: Vec<oneshot::Sender<T>>,
}

impl<T> Default for ReadRounds<T> {
    fn default() -> Self {
        ReadRounds {
            state: Mutex::new(Queue {
                running: false,
                waiting: Vec::new(),
            }),
        }
    }
}

/// The check answering a read ended without an answer (it panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckLost;

impl<T: Clone + Send + 'static> ReadRounds<T> {
    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        // A poisoned lock means a thread panicked while holding it; the
        // queue is a plain list that is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the answer of a check that starts after this call: the
    /// one under way if none is (`check` then starts it), else the next.
    /// `check` runs on a task of its own, so a read whose caller goes away
    /// never leaves the others without an answer.
    pub async fn confirm<F, Fut>(self: &Arc<Self>, check: F) -> Result<T, CheckLost>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.waiting.push(tx);
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            let rounds = self.clone();
            tokio::spawn(async move { rounds.drive(check).await });
        }
        rx.await.map_err(|_| CheckLost)
    }

    /// Runs checks while reads wait, each for all the reads that queued
    /// before it started.
    async fn drive<F, Fut>(&self, check: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        let mut guard = Unwound {
            rounds: self,
            armed: true,
        };
        loop {
            let batch = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    // Under the lock: the next read to arrive starts a
                    // new driver.
                    queue.running = false;
                    guard.armed = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let answer = check().await;
            crate::telemetry::read_round(batch.len());
            for tx in batch {
                // A read whose caller went away no longer listens.
                let _ = tx.send(answer.clone());
            }
        }
    }

    /// Reads waiting for the next check (tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

/// Resets the queue if a check panics: its reads and those queued behind it
/// get [`CheckLost`] (their senders are dropped) and the next read starts a
/// fresh driver, instead of every later read waiting forever.
struct Unwound<'a, T> {
    rounds: &'a ReadRounds<T>,
    armed: bool,
}

impl<T> Drop for Unwound<'_, T> {
    fn drop(&mut self) {
        if self.armed {
            let mut queue = self.rounds.state.lock().unwrap_or_else(|p| p.into_inner());
            queue.running = false;
            queue.waiting.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;
    use tokio::sync::Semaphore;

    type Boxed<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

    /// A check that counts its calls, answers with its call number and
    /// waits for a permit before answering.
    fn gated(calls: Arc<AtomicU32>, gate: Arc<Semaphore>) -> impl Fn() -> Boxed<u32> {
        move || {
            let (calls, gate) = (calls.clone(), gate.clone());
            Box::pin(async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                gate.acquire().await.unwrap().forget();
                n
            })
        }
    }

    fn boom() -> u32 {
        panic!("check failed")
    }

    async fn until(what: impl Fn() -> bool) {
        for _ in 0..2000 {
            if what() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("condition not reached in 2 s");
    }

    /// Rounds whose checks are [`gated`], and reads spawned against them.
    struct Fixture {
        rounds: Arc<ReadRounds<u32>>,
        calls: Arc<AtomicU32>,
        gate: Arc<Semaphore>,
    }

    impl Fixture {
        fn new() -> Self {
            Fixture {
                rounds: Arc::default(),
                calls: Arc::new(AtomicU32::new(0)),
                gate: Arc::new(Semaphore::new(0)),
            }
        }

        /// A read on a task of its own.
        fn read(&self) -> tokio::task::JoinHandle<Result<u32, CheckLost>> {
            let rounds = self.rounds.clone();
            let check = gated(self.calls.clone(), self.gate.clone());
            tokio::spawn(async move { rounds.confirm(check).await })
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn reads_queued_during_a_check_share_the_next_one_never_the_running_one() {
        let f = Fixture::new();
        let first = f.read();
        until(|| f.calls() == 1).await;
        // Ten reads arrive while check 1 is under way.
        let later: Vec<_> = (0..10).map(|_| f.read()).collect();
        until(|| f.rounds.waiting() == 10).await;
        f.gate.add_permits(1);
        assert_eq!(first.await.unwrap(), Ok(1));
        until(|| f.calls() == 2).await;
        f.gate.add_permits(1);
        for read in later {
            assert_eq!(
                read.await.unwrap(),
                Ok(2),
                "answered by the check after it arrived"
            );
        }
        assert_eq!(f.calls(), 2, "one check for the ten");
        // Idle again: the next read starts a check of its own.
        f.gate.add_permits(1);
        assert_eq!(f.read().await.unwrap(), Ok(3));
    }

    #[tokio::test]
    async fn a_check_that_panics_fails_its_reads_and_the_next_read_starts_afresh() {
        let rounds = Arc::new(ReadRounds::<u32>::default());
        let panicking = || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            boom()
        };
        let (a, b) = tokio::join!(rounds.confirm(panicking), rounds.confirm(|| async { 7 }));
        assert_eq!(a, Err(CheckLost));
        assert_eq!(b, Err(CheckLost), "queued behind the check that panicked");
        assert_eq!(rounds.confirm(|| async { 8 }).await, Ok(8));
    }

    #[tokio::test]
    async fn a_read_whose_caller_leaves_does_not_stop_the_others() {
        let f = Fixture::new();
        let leaving = f.read();
        until(|| f.calls() == 1).await;
        let staying = f.read();
        until(|| f.rounds.waiting() == 1).await;
        leaving.abort();
        f.gate.add_permits(2);
        assert_eq!(staying.await.unwrap(), Ok(2));
    }
}
