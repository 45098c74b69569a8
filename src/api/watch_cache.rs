//! The watch cache: one store watch per storage prefix feeding an in-memory
//! copy of every object and a ring of recent events.
//!
//! Lists at `resourceVersion=0` and every client watch are served from here,
//! so a thousand watchers cost one store watch. A client watch subscribes to
//! the broadcast of applied events while holding the cache's read lock, so
//! the replayed ring and the live events neither overlap nor leave a gap.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::store::{Backend, Event, EventKind, ListOptions, Revision, StoreError};

/// How many recent events a cache keeps for watches resuming from an older
/// resourceVersion.
const RING: usize = 10_000;
/// How far a watcher may fall behind before it is closed (it then resumes
/// from its last resourceVersion).
const BROADCAST: usize = 10_000;

/// One applied change, with the object as it was after it (for deletes: as
/// it was before, with the delete revision as its resourceVersion).
#[derive(Debug)]
pub struct CachedEvent {
    pub kind: EventKind,
    pub revision: Revision,
    pub key: String,
    pub object: Arc<Value>,
    /// The object before the change, for selector transitions.
    pub prev: Option<Arc<Value>>,
}

struct State {
    objects: BTreeMap<String, Arc<Value>>,
    /// The revision of the latest applied event (or of the initial list).
    revision: Revision,
    ring: VecDeque<Arc<CachedEvent>>,
    /// Events after this revision are all in the ring.
    oldest: Revision,
    tx: broadcast::Sender<Arc<CachedEvent>>,
}

/// The cache of one storage prefix.
pub struct WatchCache {
    prefix: String,
    state: RwLock<State>,
    /// The task following the store, aborted by [`WatchCache::stop`].
    follower: std::sync::OnceLock<tokio::task::AbortHandle>,
}

/// What a new watcher starts from.
pub struct Subscription {
    /// Events to send first, in order.
    pub replay: Vec<Arc<CachedEvent>>,
    pub live: broadcast::Receiver<Arc<CachedEvent>>,
    /// The cache's revision when the subscription was taken.
    pub revision: Revision,
}

/// A watch from a resourceVersion the cache no longer has.
#[derive(Debug, thiserror::Error)]
#[error("too old resource version: {requested} ({oldest})")]
pub struct TooOld {
    pub requested: Revision,
    pub oldest: Revision,
}

fn decode_event(event: &Event) -> Option<Arc<Value>> {
    let mut obj: Value = serde_json::from_slice(&event.kv.value).ok()?;
    crate::api::object::set_resource_version(&mut obj, event.revision);
    Some(Arc::new(obj))
}

impl WatchCache {
    /// Loads every object under `prefix` and keeps following the store.
    pub async fn start(store: Arc<dyn Backend>, prefix: String) -> Result<Arc<Self>, StoreError> {
        let cache = Arc::new(WatchCache {
            prefix,
            state: RwLock::new(State {
                objects: BTreeMap::new(),
                revision: 0,
                ring: VecDeque::new(),
                oldest: 0,
                tx: broadcast::channel(BROADCAST).0,
            }),
            follower: std::sync::OnceLock::new(),
        });
        cache.reload(store.as_ref()).await?;
        let follower = Arc::clone(&cache);
        let task = tokio::spawn(async move { follower.follow(store).await });
        let _ = cache.follower.set(task.abort_handle());
        Ok(cache)
    }

    /// Stops following the store (a custom kind no longer served); its
    /// watchers end when their broadcast closes.
    pub fn stop(&self) {
        if let Some(task) = self.follower.get() {
            task.abort();
        }
        self.write().tx = broadcast::channel(1).0;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the contents with a fresh list; current watchers are closed
    /// (they resume or re-list) and older resourceVersions become too old.
    async fn reload(&self, store: &dyn Backend) -> Result<(), StoreError> {
        let mut objects = BTreeMap::new();
        let mut opts = ListOptions {
            limit: Some(5000),
            ..Default::default()
        };
        let revision = loop {
            let page = store.list(&self.prefix, opts.clone()).await?;
            for kv in &page.kvs {
                if let Ok(obj) = crate::api::object::decode(kv) {
                    objects.insert(kv.key.clone(), Arc::new(obj));
                }
            }
            if !page.more {
                break page.revision;
            }
            opts.revision = Some(page.revision);
            opts.start_after = page.kvs.last().map(|kv| kv.key.clone());
        };
        let mut s = self.write();
        s.objects = objects;
        s.revision = revision;
        s.oldest = revision;
        s.ring.clear();
        s.tx = broadcast::channel(BROADCAST).0;
        Ok(())
    }

    async fn follow(self: Arc<Self>, store: Arc<dyn Backend>) {
        loop {
            let from = self.read().revision;
            match store.watch(&self.prefix, from).await {
                Ok(mut stream) => {
                    while let Some(item) = stream.next().await {
                        match item {
                            Ok(event) => self.apply(&event),
                            Err(StoreError::Closed) => return,
                            Err(e) => {
                                tracing::warn!(prefix = %self.prefix, error = %e, "watch cache re-listing");
                                break;
                            }
                        }
                    }
                }
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::warn!(prefix = %self.prefix, error = %e, "watch cache cannot watch")
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if let Err(e) = self.reload(store.as_ref()).await {
                tracing::warn!(prefix = %self.prefix, error = %e, "watch cache cannot re-list");
            }
        }
    }

    fn apply(&self, event: &Event) {
        let Some(object) = decode_event(event) else {
            tracing::warn!(key = %event.kv.key, "undecodable object in the store");
            return;
        };
        let mut s = self.write();
        if event.revision <= s.revision {
            return;
        }
        let prev = match event.kind {
            EventKind::Deleted => s.objects.remove(&event.kv.key),
            _ => s.objects.insert(event.kv.key.clone(), Arc::clone(&object)),
        };
        let cached = Arc::new(CachedEvent {
            kind: event.kind,
            revision: event.revision,
            key: event.kv.key.clone(),
            object,
            prev,
        });
        s.revision = event.revision;
        s.ring.push_back(Arc::clone(&cached));
        while s.ring.len() > RING {
            if let Some(old) = s.ring.pop_front() {
                s.oldest = old.revision;
            }
        }
        let _ = s.tx.send(cached);
    }

    /// The latest applied revision.
    pub fn revision(&self) -> Revision {
        self.read().revision
    }

    /// The object at `key`, as far as the cache has seen.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.read().objects.get(key).cloned()
    }

    /// The objects whose keys start with `prefix`, and the cache revision.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<Value>>, Revision) {
        let s = self.read();
        let items = s
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| Arc::clone(v))
            .collect();
        (items, s.revision)
    }

    /// Starts a watch: from `after` (replaying the ring), or with `None` from
    /// the current state (every object as a synthetic `Created`).
    pub fn subscribe(&self, after: Option<Revision>) -> Result<Subscription, TooOld> {
        let s = self.read();
        let replay = match after {
            None => s
                .objects
                .iter()
                .map(|(k, v)| {
                    Arc::new(CachedEvent {
                        kind: EventKind::Created,
                        revision: s.revision,
                        key: k.clone(),
                        object: Arc::clone(v),
                        prev: None,
                    })
                })
                .collect(),
            Some(after) if after < s.oldest => {
                return Err(TooOld {
                    requested: after,
                    oldest: s.oldest,
                });
            }
            Some(after) => s
                .ring
                .iter()
                .filter(|e| e.revision > after)
                .cloned()
                .collect(),
        };
        Ok(Subscription {
            replay,
            live: s.tx.subscribe(),
            revision: s.revision,
        })
    }

    /// The revision a bookmark may carry now for a watcher with nothing
    /// pending: every event up to it has been delivered to `live`.
    pub fn bookmark_revision(
        &self,
        live: &broadcast::Receiver<Arc<CachedEvent>>,
    ) -> Option<Revision> {
        let s = self.read();
        live.is_empty().then_some(s.revision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    async fn wait_for(cache: &WatchCache, revision: Revision) {
        for _ in 0..200 {
            if cache.revision() >= revision {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("cache never reached revision {revision}");
    }

    #[tokio::test]
    async fn follows_the_store_and_replays_from_a_revision() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let store = crate::store::open(None, dir.path())
            .await
            .unwrap_or_else(|e| panic!("store opens: {e}"));
        let Ok(first) = store
            .create("/registry/x/a", Bytes::from_static(b"{}"), None)
            .await
        else {
            panic!("create")
        };
        let Ok(cache) = WatchCache::start(Arc::clone(&store), "/registry/x/".into()).await else {
            panic!("start")
        };
        assert_eq!(cache.list("/registry/x/").0.len(), 1);
        let Ok(b) = store
            .create("/registry/x/b", Bytes::from_static(b"{}"), None)
            .await
        else {
            panic!("create")
        };
        let _ = store.delete("/registry/x/a", None).await;
        wait_for(&cache, b.mod_revision + 1).await;
        let (items, _) = cache.list("/registry/x/");
        assert_eq!(items.len(), 1);
        let Ok(sub) = cache.subscribe(Some(first.mod_revision)) else {
            panic!("subscribe")
        };
        let kinds: Vec<EventKind> = sub.replay.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EventKind::Created, EventKind::Deleted]);
        let deleted = &sub.replay[1];
        assert_eq!(
            deleted.object["metadata"]["resourceVersion"],
            (b.mod_revision + 1).to_string()
        );
        assert!(cache.subscribe(Some(0)).is_err());
        let Ok(sub) = cache.subscribe(None) else {
            panic!("subscribe")
        };
        assert_eq!(sub.replay.len(), 1);
    }
}
