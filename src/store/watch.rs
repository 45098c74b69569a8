//! Watch fan-out, independent of the storage engine.
//!
//! The engine's single writer hands every committed group of events to
//! [`Hub::publish`], which appends them to a bounded in-memory ring and pushes
//! them into the bounded queue of every watcher whose prefix matches. Nothing
//! polls. A watcher that falls so far behind that its queue is full is dropped
//! and sees `WatcherLagged`; the writer never waits for a slow watcher.
//!
//! A new watch replays what it missed: from the ring when the ring still holds
//! the revisions after its start, otherwise from the engine's history (through
//! [`History`]) in chunks until it reaches the ring. Registration with the
//! live feed happens under the same lock as publishing, at an exact revision,
//! so the hand-over has no gap and no duplicate.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{Event, Result, Revision, StoreError, WatchStream};

/// Where a watch replays events that have already left the ring.
#[async_trait]
pub trait History: Send + Sync + 'static {
    /// Events under `prefix` with revisions in `(after, upto]`, in revision
    /// order. May stop early; returns the last revision it covered (so the
    /// caller continues from there). Fails with `Compacted` when part of that
    /// range has been compacted away.
    async fn replay(
        &self,
        prefix: &str,
        after: Revision,
        upto: Revision,
    ) -> Result<(Vec<Event>, Revision)>;
}

const LIVE: u8 = 0;
const LAGGED: u8 = 1;

struct Watcher {
    tx: mpsc::Sender<Arc<Event>>,
    state: Arc<AtomicU8>,
}

struct Inner {
    ring: VecDeque<Arc<Event>>,
    /// The revision of the last published event.
    last: Revision,
    watchers: HashMap<String, Vec<Watcher>>,
    closed: bool,
}

/// The ring of recent events and the registered watchers.
pub struct Hub {
    inner: Mutex<Inner>,
    ring_capacity: usize,
    queue_capacity: usize,
}

/// What a subscription attempt found.
enum Subscribe {
    /// Registered: replay these (already filtered), then read the queue.
    Live {
        replay: Vec<Arc<Event>>,
        rx: mpsc::Receiver<Arc<Event>>,
        state: Arc<AtomicU8>,
    },
    /// The ring starts after `after`: read history up to `ring_floor` first.
    NeedHistory {
        ring_floor: Revision,
    },
    Closed,
}

impl Hub {
    /// A hub whose last published revision is `last` (the store's current
    /// revision when it opens).
    pub fn new(last: Revision, ring_capacity: usize, queue_capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(ring_capacity.min(4096)),
                last,
                watchers: HashMap::new(),
                closed: false,
            }),
            ring_capacity: ring_capacity.max(1),
            queue_capacity: queue_capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes one committed group, in revision order.
    pub fn publish(&self, events: Vec<Event>) {
        let mut inner = self.lock();
        for event in events {
            let event = Arc::new(event);
            inner.last = event.revision;
            if inner.ring.len() == self.ring_capacity {
                inner.ring.pop_front();
            }
            inner.ring.push_back(event.clone());
            if inner.watchers.is_empty() {
                continue;
            }
            let prefixes = matching_prefixes(&inner.watchers, &event.kv.key);
            for prefix in prefixes {
                let Some(list) = inner.watchers.get_mut(&prefix) else {
                    continue;
                };
                list.retain(|w| match w.tx.try_send(event.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        w.state.store(LAGGED, Ordering::Release);
                        tracing::warn!(prefix = %prefix, "watcher fell behind; closing it");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
                if list.is_empty() {
                    inner.watchers.remove(&prefix);
                }
            }
        }
    }

    /// Ends every watch with `Closed` (the engine is shutting down).
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.watchers.clear();
    }

    fn subscribe(&self, prefix: &str, after: Revision) -> Subscribe {
        let mut inner = self.lock();
        if inner.closed {
            return Subscribe::Closed;
        }
        let ring_floor = inner.ring.front().map_or(inner.last, |e| e.revision - 1);
        if after < ring_floor {
            return Subscribe::NeedHistory { ring_floor };
        }
        let replay = inner
            .ring
            .iter()
            .filter(|e| e.revision > after && e.kv.key.starts_with(prefix))
            .cloned()
            .collect();
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let state = Arc::new(AtomicU8::new(LIVE));
        for list in inner.watchers.values_mut() {
            list.retain(|w| !w.tx.is_closed());
        }
        inner.watchers.retain(|_, list| !list.is_empty());
        inner
            .watchers
            .entry(prefix.to_string())
            .or_default()
            .push(Watcher {
                tx,
                state: state.clone(),
            });
        Subscribe::Live { replay, rx, state }
    }

    /// Watches `prefix` from `after` (exclusive), replaying from `history`
    /// whatever the ring no longer holds.
    pub fn watch(
        self: &Arc<Self>,
        prefix: &str,
        after: Revision,
        history: Arc<dyn History>,
    ) -> WatchStream {
        // Register right away when the ring covers `after`, so the watch is
        // established (and can lag) from the moment it is returned.
        let state = match self.subscribe(prefix, after) {
            Subscribe::Live { replay, rx, state } => Phase::Live {
                replay: replay.into(),
                rx,
                state,
                after,
            },
            Subscribe::Closed => Phase::Failed(StoreError::Closed),
            Subscribe::NeedHistory { .. } => Phase::Start {
                hub: self.clone(),
                history,
                prefix: prefix.to_string(),
                next: after,
                pending: VecDeque::new(),
            },
        };
        futures::stream::unfold(state, step).boxed()
    }
}

/// The prefixes in `watchers` that `key` starts with. Walks whichever is
/// shorter: the registered prefixes or the key's own prefixes.
fn matching_prefixes(watchers: &HashMap<String, Vec<Watcher>>, key: &str) -> Vec<String> {
    if watchers.len() <= key.len() {
        watchers
            .keys()
            .filter(|p| key.starts_with(p.as_str()))
            .cloned()
            .collect()
    } else {
        (0..=key.len())
            .filter(|&i| key.is_char_boundary(i))
            .map(|i| &key[..i])
            .filter(|p| watchers.contains_key(*p))
            .map(str::to_string)
            .collect()
    }
}

enum Phase {
    /// Catching up (from history, then ring) until registered.
    Start {
        hub: Arc<Hub>,
        history: Arc<dyn History>,
        prefix: String,
        next: Revision,
        pending: VecDeque<Event>,
    },
    Live {
        replay: VecDeque<Arc<Event>>,
        rx: mpsc::Receiver<Arc<Event>>,
        state: Arc<AtomicU8>,
        after: Revision,
    },
    Failed(StoreError),
    Done,
}

async fn step(mut phase: Phase) -> Option<(Result<Event>, Phase)> {
    loop {
        phase = match phase {
            Phase::Done => return None,
            Phase::Failed(err) => return Some((Err(err), Phase::Done)),
            Phase::Start {
                hub,
                history,
                prefix,
                next,
                mut pending,
            } => {
                if let Some(event) = pending.pop_front() {
                    return Some((
                        Ok(event),
                        Phase::Start {
                            hub,
                            history,
                            prefix,
                            next,
                            pending,
                        },
                    ));
                }
                match hub.subscribe(&prefix, next) {
                    Subscribe::Closed => return Some((Err(StoreError::Closed), Phase::Done)),
                    Subscribe::Live { replay, rx, state } => Phase::Live {
                        replay: replay.into(),
                        rx,
                        state,
                        after: next,
                    },
                    Subscribe::NeedHistory { ring_floor } => {
                        match history.replay(&prefix, next, ring_floor).await {
                            Err(e) => return Some((Err(e), Phase::Done)),
                            Ok((events, covered)) => Phase::Start {
                                hub,
                                history,
                                prefix,
                                // The pending events are delivered before the
                                // next subscription attempt, which starts
                                // after everything this chunk covered.
                                next: covered.max(next),
                                pending: events.into(),
                            },
                        }
                    }
                }
            }
            Phase::Live {
                mut replay,
                mut rx,
                state,
                after,
            } => {
                let event = match replay.pop_front() {
                    Some(e) => Some(e),
                    None => rx.recv().await,
                };
                match event {
                    Some(e) if e.revision <= after => Phase::Live {
                        replay,
                        rx,
                        state,
                        after,
                    },
                    Some(e) => {
                        let event = (*e).clone();
                        return Some((
                            Ok(event),
                            Phase::Live {
                                replay,
                                rx,
                                state,
                                after,
                            },
                        ));
                    }
                    None => {
                        let err = if state.load(Ordering::Acquire) == LAGGED {
                            StoreError::WatcherLagged
                        } else {
                            StoreError::Closed
                        };
                        return Some((Err(err), Phase::Done));
                    }
                }
            }
        };
    }
}
