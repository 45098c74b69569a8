//! A deduplicating work queue with per-key exponential backoff, as
//! upstream's rate-limited workqueue: a key queued twice before a worker
//! takes it is processed once, and a key whose sync failed comes back after
//! 100 ms, 200 ms, ... up to a minute, so a failing object never spins.
//! Keys leave in the order they came, unless the queue was made with a
//! priority function ([`WorkQueue::prioritized`]): then higher priorities
//! leave first, and keys of one priority in the order they came (the
//! scheduler's active queue, ordered as upstream's PrioritySort).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

const BASE_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);

/// A waiting key: the heap's greatest entry (highest priority, then the
/// earliest arrival) leaves first.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    priority: i32,
    arrival: Reverse<u64>,
    key: String,
}

#[derive(Default)]
struct Inner {
    queue: BinaryHeap<Entry>,
    queued: HashSet<String>,
    failures: HashMap<String, u32>,
    arrivals: u64,
}

/// The priority of a key, looked up when it is queued.
pub type PriorityFn = Arc<dyn Fn(&str) -> i32 + Send + Sync>;

/// A queue of object keys (`namespace/name`).
#[derive(Clone, Default)]
pub struct WorkQueue {
    inner: Arc<Mutex<Inner>>,
    ready: Arc<Notify>,
    priority: Option<PriorityFn>,
}

impl WorkQueue {
    /// A new, empty queue: first in, first out.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new, empty queue whose keys leave by `priority` (highest first),
    /// then in the order they came.
    pub fn prioritized(priority: PriorityFn) -> Self {
        WorkQueue {
            priority: Some(priority),
            ..Self::default()
        }
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: String) {
        let priority = self.priority.as_ref().map_or(0, |f| f(&key));
        let mut inner = self.lock();
        if inner.queued.insert(key.clone()) {
            inner.arrivals += 1;
            let arrival = Reverse(inner.arrivals);
            inner.queue.push(Entry {
                priority,
                arrival,
                key,
            });
            drop(inner);
            self.ready.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: String, delay: Duration) {
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Queues `key` again after its next backoff delay.
    pub fn retry(&self, key: String) {
        let delay = {
            let mut inner = self.lock();
            let n = inner.failures.entry(key.clone()).or_insert(0);
            *n = n.saturating_add(1);
            backoff(*n)
        };
        self.add_after(key, delay);
    }

    /// Forgets `key`'s failures after a successful sync.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// Waits for the next key.
    pub async fn next(&self) -> String {
        loop {
            let notified = self.ready.notified();
            {
                let mut inner = self.lock();
                if let Some(Entry { key, .. }) = inner.queue.pop() {
                    inner.queued.remove(&key);
                    return key;
                }
            }
            notified.await;
        }
    }

    /// Runs `sync` on every key the queue hands out, one at a time, forever:
    /// a key whose sync succeeds has its failures forgotten, one whose sync
    /// fails comes back after the queue's backoff. `what` names the objects
    /// in the log ("deployment", "pod", ...).
    pub async fn process<F, Fut, E>(&self, what: &'static str, mut sync: F)
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        loop {
            let key = self.next().await;
            match sync(key.clone()).await {
                Ok(()) => self.forget(&key),
                Err(e) => {
                    tracing::info!(what, %key, error = %e, "sync failed; will retry");
                    self.retry(key);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain collections behind,
        // still consistent enough to keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The delay before the `n`th retry (n ≥ 1).
fn backoff(n: u32) -> Duration {
    let factor = 1u32
        .checked_shl(n.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    BASE_DELAY.saturating_mul(factor).min(MAX_DELAY)
}

/// The queue key of a namespaced object.
pub fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Splits a key into namespace and name.
pub fn split(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(30), MAX_DELAY);
    }

    #[tokio::test]
    async fn a_key_queued_twice_is_taken_once() {
        let q = WorkQueue::new();
        q.add("a/x".into());
        q.add("a/x".into());
        q.add("a/y".into());
        assert_eq!(q.next().await, "a/x");
        assert_eq!(q.next().await, "a/y");
        assert!(q.lock().queue.is_empty());
    }

    #[tokio::test]
    async fn a_prioritized_queue_hands_out_higher_priorities_first() {
        let q = WorkQueue::prioritized(Arc::new(|key: &str| {
            key.strip_prefix("p")
                .and_then(|rest| rest.split('/').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        }));
        for key in ["p0/a", "p5/b", "p0/c", "p9/d", "p5/e"] {
            q.add(key.into());
        }
        let mut order = Vec::new();
        for _ in 0..5 {
            order.push(q.next().await);
        }
        assert_eq!(order, ["p9/d", "p5/b", "p5/e", "p0/a", "p0/c"]);
    }

    #[tokio::test]
    async fn a_failed_sync_is_retried_and_a_success_forgotten() {
        let q = std::sync::Arc::new(WorkQueue::new());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        q.add("a/x".into());
        let worker = q.clone();
        let task = tokio::spawn(async move {
            let mut calls = 0;
            worker
                .process("thing", |key| {
                    calls += 1;
                    let (tx, attempt) = (tx.clone(), calls);
                    async move {
                        let _ = tx.send((key, attempt));
                        if attempt == 1 {
                            Err("first try fails")
                        } else {
                            Ok(())
                        }
                    }
                })
                .await;
        });
        let within = Duration::from_secs(5);
        let first = tokio::time::timeout(within, rx.recv()).await;
        assert_eq!(first.ok().flatten(), Some(("a/x".to_string(), 1)));
        let second = tokio::time::timeout(within, rx.recv()).await;
        assert_eq!(second.ok().flatten(), Some(("a/x".to_string(), 2)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            q.lock().failures.is_empty(),
            "a success forgets the failures"
        );
        task.abort();
    }
}
