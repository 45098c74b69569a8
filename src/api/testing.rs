//! An in-memory [`Backend`] for the API server's unit tests: the same
//! revision, CAS and watch semantics as the real engines, no disk.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::store::{
    Backend, Event, EventKind, KeyValue, ListOptions, ListResult, Result, Revision, StoreError,
    WatchStream, WriteResult,
};

#[derive(Default)]
struct State {
    revision: Revision,
    compacted: Revision,
    live: BTreeMap<String, KeyValue>,
    log: Vec<Event>,
}

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    events: Events,
}

struct Events(broadcast::Sender<Event>);

impl Default for Events {
    fn default() -> Self {
        Events(broadcast::channel(100_000).0)
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, state: &mut State, event: Event) {
        state.log.push(event.clone());
        let _ = self.events.0.send(event);
    }

    /// The key as it was at `revision`, rebuilt from the log.
    fn at(state: &State, key: &str, revision: Revision) -> Option<KeyValue> {
        let mut found = None;
        for e in state
            .log
            .iter()
            .filter(|e| e.kv.key == key && e.revision <= revision)
        {
            found = match e.kind {
                EventKind::Deleted => None,
                _ => Some(e.kv.clone()),
            };
        }
        found
    }
}

#[async_trait]
impl Backend for MemoryStore {
    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.lock().revision)
    }

    fn compacted_revision(&self) -> Revision {
        self.lock().compacted
    }

    async fn create(&self, key: &str, value: Bytes, _ttl: Option<Duration>) -> Result<KeyValue> {
        let mut s = self.lock();
        if s.live.contains_key(key) {
            return Err(StoreError::KeyExists(key.to_string()));
        }
        s.revision += 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: s.revision,
            mod_revision: s.revision,
        };
        s.live.insert(key.to_string(), kv.clone());
        let event = Event {
            kind: EventKind::Created,
            revision: s.revision,
            kv: kv.clone(),
            prev: None,
        };
        self.record(&mut s, event);
        Ok(kv)
    }

    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        let s = self.lock();
        match revision {
            None => Ok(s.live.get(key).cloned()),
            Some(r) if r <= s.compacted => Err(StoreError::Compacted {
                requested: r,
                compacted: s.compacted,
            }),
            Some(r) => Ok(Self::at(&s, key, r)),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        _ttl: Option<Duration>,
    ) -> Result<(KeyValue, WriteResult)> {
        let mut s = self.lock();
        let prev = match s.live.get(key) {
            Some(kv) if kv.mod_revision == expected => kv.clone(),
            other => {
                return Err(StoreError::Conflict {
                    key: key.to_string(),
                    current: other.cloned().map(Box::new),
                });
            }
        };
        s.revision += 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: prev.create_revision,
            mod_revision: s.revision,
        };
        s.live.insert(key.to_string(), kv.clone());
        let event = Event {
            kind: EventKind::Modified,
            revision: s.revision,
            kv: kv.clone(),
            prev: Some(prev.clone()),
        };
        self.record(&mut s, event);
        let revision = s.revision;
        Ok((kv, WriteResult { revision, prev }))
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<WriteResult> {
        let mut s = self.lock();
        let prev = match (s.live.get(key), expected) {
            (None, _) => return Err(StoreError::NotFound(key.to_string())),
            (Some(kv), Some(e)) if kv.mod_revision != e => {
                return Err(StoreError::Conflict {
                    key: key.to_string(),
                    current: Some(Box::new(kv.clone())),
                });
            }
            (Some(kv), _) => kv.clone(),
        };
        s.live.remove(key);
        s.revision += 1;
        let mut kv = prev.clone();
        kv.mod_revision = s.revision;
        let event = Event {
            kind: EventKind::Deleted,
            revision: s.revision,
            kv,
            prev: Some(prev.clone()),
        };
        self.record(&mut s, event);
        Ok(WriteResult {
            revision: s.revision,
            prev,
        })
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let s = self.lock();
        let revision = opts.revision.unwrap_or(s.revision);
        if opts.revision.is_some() && revision <= s.compacted {
            return Err(StoreError::Compacted {
                requested: revision,
                compacted: s.compacted,
            });
        }
        let keys: Vec<String> = s
            .log
            .iter()
            .filter(|e| e.kv.key.starts_with(prefix))
            .map(|e| e.kv.key.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|k| opts.start_after.as_ref().is_none_or(|a| k > a))
            .collect();
        let all: Vec<KeyValue> = keys
            .iter()
            .filter_map(|k| Self::at(&s, k, revision))
            .collect();
        let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let kvs: Vec<KeyValue> = all.iter().take(limit).cloned().collect();
        let remaining = (all.len() - kvs.len()) as u64;
        Ok(ListResult {
            kvs,
            revision,
            more: remaining > 0,
            remaining,
        })
    }

    async fn count(&self, prefix: &str) -> Result<u64> {
        Ok(self
            .lock()
            .live
            .keys()
            .filter(|k| k.starts_with(prefix))
            .count() as u64)
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let s = self.lock();
        if after < s.compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted: s.compacted,
            });
        }
        let prefix = prefix.to_string();
        let replay: Vec<Result<Event>> = s
            .log
            .iter()
            .filter(|e| e.revision > after && e.kv.key.starts_with(&prefix))
            .cloned()
            .map(Ok)
            .collect();
        let rx = self.events.0.subscribe();
        let last = s.revision;
        let live = futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(e) => Some((Ok(e), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    Some((Err(StoreError::WatcherLagged), rx))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
        .filter(move |e| {
            let keep = match e {
                Ok(e) => e.revision > last && e.kv.key.starts_with(&prefix),
                Err(_) => true,
            };
            futures::future::ready(keep)
        });
        Ok(futures::stream::iter(replay).chain(live).boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut s = self.lock();
        s.compacted = s.compacted.max(revision);
        Ok(())
    }
}
