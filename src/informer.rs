//! Shared informers: one watch and one reflector store per kind, shared by
//! every in-process controller and the scheduler, as upstream's shared
//! informer factory does.
//!
//! An [`Informer`] runs `kube::runtime::watcher` into a reflector store and
//! fans each change out on a broadcast channel. A subscriber that falls
//! behind gets [`Change::Resync`] and re-reads the store instead of missing
//! an object. The watcher retries with backoff on its own, so a broken watch
//! never turns into a hot loop.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::broadcast;

/// What a subscriber hears.
#[derive(Debug, Clone)]
pub enum Change<K> {
    /// An object was created or changed.
    Applied(Arc<K>),
    /// An object was deleted.
    Deleted(Arc<K>),
    /// The store was (re)listed or the subscriber lagged: look at everything.
    Resync,
}

/// A watched kind: its store and a feed of changes.
pub struct Informer<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    changes: broadcast::Sender<Change<K>>,
}

impl<K> Informer<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone + Default,
{
    /// Starts watching every object of the kind `api` reaches.
    pub fn start(api: Api<K>) -> Arc<Self> {
        let (reader, writer) = reflector::store();
        let (changes, _) = broadcast::channel(4096);
        let informer = Arc::new(Informer {
            store: reader,
            changes: changes.clone(),
        });
        tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer);
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                let change = match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                        Change::Applied(Arc::new(o))
                    }
                    Ok(watcher::Event::Delete(o)) => Change::Deleted(Arc::new(o)),
                    Ok(watcher::Event::InitDone) => Change::Resync,
                    Ok(watcher::Event::Init) => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "watch failed; retrying with backoff");
                        continue;
                    }
                };
                // No subscriber yet is fine: they read the store when they start.
                let _ = changes.send(change);
            }
        });
        informer
    }

    /// The objects seen so far.
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// The object `namespace/name` (`namespace` empty for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let mut key = ObjectRef::new_with(name, K::DynamicType::default());
        if !namespace.is_empty() {
            key = key.within(namespace);
        }
        self.store.get(&key)
    }

    /// A feed of changes: first a [`Change::Resync`] (the store may have
    /// filled before the subscription was taken), then every change from
    /// now on.
    pub fn subscribe(&self) -> Subscription<K> {
        Subscription {
            rx: self.changes.subscribe(),
            started: false,
        }
    }
}

/// One subscriber's feed.
pub struct Subscription<K> {
    rx: broadcast::Receiver<Change<K>>,
    started: bool,
}

impl<K: Clone> Subscription<K> {
    /// The next change; `None` once the informer is gone.
    pub async fn next(&mut self) -> Option<Change<K>> {
        if !self.started {
            self.started = true;
            return Some(Change::Resync);
        }
        match self.rx.recv().await {
            Ok(change) => Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Change::Resync),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
