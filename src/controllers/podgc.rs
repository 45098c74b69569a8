//! The pod garbage collector (PodGC), as upstream's: it deletes
//!
//! * pods bound to a node that no longer exists, once the node has been
//!   missing for a quarantine (40 s by default, so a node being re-created
//!   keeps its pods) and a GET confirms it is gone;
//! * terminated pods (Succeeded or Failed) beyond
//!   `--terminated-pod-gc-threshold`, oldest first;
//! * pods being deleted that were never scheduled (no kubelet would finish
//!   their graceful deletion).
//!
//! Before deleting a pod that has not terminated it marks it Failed, with
//! the `DisruptionTarget` condition (reason `DeletionByPodGC`) for orphans;
//! deletions are forced (grace period 0). It runs when pods or nodes change
//! and when a quarantine ends, never on a timer of its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use serde_json::json;
use tokio::sync::Notify;

use super::Shared;

/// PodGC's settings (`skiff server` flags).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Terminated pods kept before the oldest are deleted; 0 keeps all
    /// (`--terminated-pod-gc-threshold`, default 12500).
    pub terminated_threshold: usize,
    /// How long a pod's node must be missing before the pod is deleted
    /// (`--pod-gc-orphan-quarantine`, default 40 s).
    pub quarantine: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            terminated_threshold: 12500,
            quarantine: Duration::from_secs(40),
        }
    }
}

/// How long changes are gathered before a pass.
const SETTLE: Duration = Duration::from_millis(500);

/// Starts PodGC on the shared pod and node informers.
pub fn start(client: Client, pods: Shared<Pod>, nodes: Shared<Node>, settings: Settings) {
    let wake = Arc::new(Notify::new());
    tokio::spawn(watch(&pods, &wake));
    tokio::spawn(watch(&nodes, &wake));
    tokio::spawn(async move {
        // node name → when this collector first saw pods bound to it while
        // it was missing.
        let mut missing: HashMap<String, Instant> = HashMap::new();
        loop {
            let next = missing
                .values()
                .map(|since| *since + settings.quarantine)
                .min();
            match next {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.into(), wake.notified()).await;
                }
                None => wake.notified().await,
            }
            tokio::time::sleep(SETTLE).await;
            let pass = Pass {
                client: &client,
                settings,
            };
            pass.run(&pods, &nodes, &mut missing).await;
        }
    });
}

/// Wakes the collector on every change an informer hears.
fn watch<K>(
    informer: &Shared<K>,
    wake: &Arc<Notify>,
) -> impl std::future::Future<Output = ()> + Send + 'static
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    let mut changes = informer.subscribe();
    let wake = wake.clone();
    async move {
        while changes.next().await.is_some() {
            wake.notify_one();
        }
    }
}

struct Pass<'a> {
    client: &'a Client,
    settings: Settings,
}

impl Pass<'_> {
    async fn run(
        &self,
        pods: &Shared<Pod>,
        nodes: &Shared<Node>,
        missing: &mut HashMap<String, Instant>,
    ) {
        let all = pods.store().state();
        for pod in terminated_over_threshold(&all, self.settings.terminated_threshold) {
            self.delete(pod, None).await;
        }
        let now = Instant::now();
        let mut orphans: HashMap<String, Vec<&Pod>> = HashMap::new();
        for pod in &all {
            let node = bound_node(pod);
            if !node.is_empty() && nodes.get("", node).is_none() {
                orphans.entry(node.to_string()).or_default().push(pod);
            }
        }
        missing.retain(|node, _| orphans.contains_key(node));
        for (node, pods) in orphans {
            let since = *missing.entry(node.clone()).or_insert(now);
            if now.duration_since(since) < self.settings.quarantine {
                continue;
            }
            // The informer may lag: only a node the API says is gone counts.
            let api: Api<Node> = Api::all(self.client.clone());
            match api.get_opt(&node).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    missing.remove(&node);
                    continue;
                }
                Err(e) => {
                    tracing::info!(%node, error = %e, "podgc: cannot check the node; will retry");
                    continue;
                }
            }
            for pod in pods {
                tracing::info!(pod = %full_name(pod), %node, "podgc: deleting a pod whose node no longer exists");
                self.delete(pod, Some(orphan_condition())).await;
            }
            missing.remove(&node);
        }
        for pod in all
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && bound_node(p).is_empty())
        {
            tracing::info!(pod = %full_name(pod), "podgc: deleting an unscheduled terminating pod");
            self.delete(pod, None).await;
        }
    }

    /// Marks `pod` Failed (with `condition`) unless it has terminated, then
    /// force-deletes it.
    async fn delete(&self, pod: &Pod, condition: Option<PodCondition>) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        if !is_terminated(pod) {
            let patch = failed_status(pod, condition, Timestamp::now());
            if let Err(e) = api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                if !is_gone(&e) {
                    tracing::info!(pod = %full_name(pod), error = %e, "podgc: marking the pod failed");
                }
                return;
            }
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        if let Err(e) = api.delete(name, &params).await {
            if !is_gone(&e) {
                tracing::info!(pod = %full_name(pod), error = %e, "podgc: deleting the pod");
            }
        }
    }
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
}

fn bound_node(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

fn full_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn is_terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The terminated pods to delete so that at most `threshold` remain
/// (none when `threshold` is 0), oldest first.
pub fn terminated_over_threshold(pods: &[Arc<Pod>], threshold: usize) -> Vec<&Pod> {
    if threshold == 0 {
        return Vec::new();
    }
    let mut terminated: Vec<&Pod> = pods
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| is_terminated(p))
        .collect();
    if terminated.len() <= threshold {
        return Vec::new();
    }
    terminated.sort_by(|a, b| {
        let created = |p: &Pod| p.metadata.creation_timestamp.clone().map(|t| t.0);
        created(a)
            .cmp(&created(b))
            .then_with(|| full_name(a).cmp(&full_name(b)))
    });
    let excess = terminated.len() - threshold;
    terminated.truncate(excess);
    terminated
}

/// The condition upstream's PodGC puts on a pod whose node is gone.
pub fn orphan_condition() -> PodCondition {
    PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("DeletionByPodGC".into()),
        message: Some("PodGC: node no longer exists".into()),
        ..Default::default()
    }
}

/// The status merge patch that makes `pod` Failed, with `condition` set
/// (replacing one of its type) when given.
pub fn failed_status(
    pod: &Pod,
    condition: Option<PodCondition>,
    now: Timestamp,
) -> serde_json::Value {
    let mut status = json!({"phase": "Failed"});
    if let Some(mut condition) = condition {
        let mut conditions = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
        let existing = conditions.iter().position(|c| c.type_ == condition.type_);
        let unchanged = existing.is_some_and(|i| conditions[i].status == condition.status);
        condition.last_transition_time = match existing {
            Some(i) if unchanged => conditions[i].last_transition_time.clone(),
            _ => Some(Time(now)),
        };
        match existing {
            Some(i) => conditions[i] = condition,
            None => conditions.push(condition),
        }
        status["conditions"] = json!(conditions);
    }
    json!({ "status": status })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, created: &str) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
                "spec": {"containers": []},
                "status": {"phase": phase},
            }))
            .unwrap_or_else(|e| panic!("pod: {e}")),
        )
    }

    #[test]
    fn the_oldest_terminated_pods_beyond_the_threshold_go() {
        let pods = vec![
            pod("new", "Succeeded", "2026-01-03T00:00:00Z"),
            pod("running", "Running", "2026-01-01T00:00:00Z"),
            pod("old", "Failed", "2026-01-01T00:00:00Z"),
            pod("mid", "Succeeded", "2026-01-02T00:00:00Z"),
        ];
        let names = |v: Vec<&Pod>| -> Vec<String> {
            v.iter()
                .map(|p| p.metadata.name.clone().unwrap_or_default())
                .collect()
        };
        assert_eq!(names(terminated_over_threshold(&pods, 1)), ["old", "mid"]);
        assert_eq!(
            names(terminated_over_threshold(&pods, 3)),
            Vec::<String>::new()
        );
        assert_eq!(
            names(terminated_over_threshold(&pods, 0)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_orphan_is_marked_failed_with_the_disruption_condition() {
        let running = pod("p", "Running", "2026-01-01T00:00:00Z");
        let now: Timestamp = "2026-01-05T00:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let patch = failed_status(&running, Some(orphan_condition()), now);
        assert_eq!(
            patch,
            json!({"status": {"phase": "Failed", "conditions": [{
                "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                "message": "PodGC: node no longer exists",
                "lastTransitionTime": "2026-01-05T00:00:00Z"}]}})
        );
        assert_eq!(
            failed_status(&running, None, now),
            json!({"status": {"phase": "Failed"}})
        );
    }
}
