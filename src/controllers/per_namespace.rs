//! The loop shared by controllers that keep one named object in every
//! namespace (the `default` ServiceAccount, the `kube-root-ca.crt`
//! ConfigMap): a namespace is synced when it appears or changes, and when
//! its object is changed or deleted by anyone. Only objects of that name are
//! watched (a field selector), so other objects of the kind cost nothing.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::watcher;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::Shared;
use crate::informer::Change;
use crate::workqueue::WorkQueue;

/// Whether a namespace accepts new objects (not being deleted).
pub fn is_active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// Runs `sync(namespace)` for every namespace, again whenever the namespace
/// or its object `name` (watched through `objects`) changes.
pub fn run<K, F, Fut>(
    what: &'static str,
    namespaces: Shared<Namespace>,
    objects: Api<K>,
    name: &'static str,
    sync: F,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), kube::Error>> + Send + 'static,
{
    let queue = WorkQueue::new();

    let q = queue.clone();
    let informer = Arc::clone(&namespaces);
    tokio::spawn(async move {
        let mut changes = informer.subscribe();
        queue_all(&informer, &q);
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(ns) => q.add(ns.metadata.name.clone().unwrap_or_default()),
                Change::Deleted(_) => {}
                Change::Resync => queue_all(&informer, &q),
            }
        }
    });

    let q = queue.clone();
    tokio::spawn(async move {
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut events = watcher::watcher(objects, config).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(
                    watcher::Event::Apply(o)
                    | watcher::Event::InitApply(o)
                    | watcher::Event::Delete(o),
                ) => {
                    if let Some(ns) = o.meta().namespace.clone() {
                        q.add(ns);
                    }
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                Err(e) => {
                    tracing::debug!(what, error = %e, "watch failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    });

    tokio::spawn(async move { queue.process(what, sync).await });
}

fn queue_all(namespaces: &Shared<Namespace>, queue: &WorkQueue) {
    for ns in namespaces.store().state() {
        if let Some(name) = &ns.metadata.name {
            queue.add(name.clone());
        }
    }
}

/// Whether a write failed only because the namespace is gone or going
/// (nothing to retry, as upstream's controllers conclude).
pub fn namespace_gone(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => {
            s.code == 404 || (s.code == 403 && s.message.contains("because it is being terminated"))
        }
        _ => false,
    }
}
