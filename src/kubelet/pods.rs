//! Pods bound to this node: a watch on the pods whose `spec.nodeName` is
//! this node hands each pod to its own worker (`worker.rs`), as upstream's
//! pod workers: the worker runs the pod (volumes, sandbox, init and app
//! containers, restarts, probes, status) and, once the pod is marked for
//! deletion, stops it gracefully and deletes its object.
//!
//! The runtime is the record of what runs: sandboxes and containers carry
//! the pod's uid as a label, so a restarted skiff finds its pods again.

pub mod backoff;
pub mod cri_config;
pub mod dns_config;
pub mod env;
pub mod handlers;
pub mod lifecycle;
pub mod probes;
pub mod projected;
pub mod status;
pub mod termination;
pub mod volumes;
pub mod worker;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;

use super::KubeletSettings;
use crate::runtime::cri::Cri;

/// The label holding the pod uid on sandboxes and containers.
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";

/// Why a container is not running, when the runtime cannot say (for its
/// waiting state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// A pod's worker: the latest object goes in through `pod`.
struct Handle {
    pod: watch::Sender<Option<Pod>>,
    task: tokio::task::JoinHandle<()>,
}

/// Runs the pods of this node until the process ends.
pub async fn run(client: kube::Client, cri: Cri, settings: KubeletSettings) {
    let field = format!("spec.nodeName={}", settings.node_name);
    let pods_api: Api<Pod> = Api::all(client.clone());
    let mut events = watcher::watcher(pods_api, watcher::Config::default().fields(&field)).boxed();
    let mut workers: BTreeMap<String, Handle> = BTreeMap::new();
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(pod) | Event::InitApply(pod)) => {
                let Some(uid) = pod.metadata.uid.clone() else {
                    continue;
                };
                match workers.get(&uid) {
                    // A finished worker has deleted its pod: nothing to do.
                    Some(handle) => {
                        handle.pod.send_replace(Some(pod));
                    }
                    None => {
                        let (tx, rx) = watch::channel(Some(pod));
                        let task = tokio::spawn(worker::run(
                            cri.clone(),
                            client.clone(),
                            settings.clone(),
                            rx,
                        ));
                        workers.insert(uid, Handle { pod: tx, task });
                    }
                }
            }
            Ok(Event::Delete(pod)) => {
                if let Some(handle) = pod.metadata.uid.as_ref().and_then(|u| workers.remove(u))
                    && !handle.task.is_finished()
                {
                    // The worker stops what runs and ends on its own.
                    handle.pod.send_replace(None);
                    tokio::spawn(async move {
                        let _ = handle.task.await;
                    });
                }
            }
            Ok(Event::Init | Event::InitDone) => {}
            Err(e) => {
                tracing::warn!(error = %e, "pod watch failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
