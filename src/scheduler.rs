//! The scheduler: binds each pending pod (empty `spec.nodeName`,
//! `schedulerName: default-scheduler`) to the best node that passes the
//! filters (`filters.rs`), by score (`score.rs`), through `pods/binding`.
//!
//! Pods that fit nowhere get a `FailedScheduling` event in upstream's words
//! and wait in an unschedulable set until a node or a pod changes in a way
//! that may free room; then they are tried again. A pod just bound counts on
//! its node ("assumed") until the watch shows it bound, so two pods are never
//! placed on the last free slot.

pub mod filters;
pub mod resources;
pub mod score;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;

use crate::informer::{Change, Informer};
use crate::workqueue::{self, WorkQueue};
use filters::{NodeUsage, Unfit};
use resources::Resources;

/// The scheduler name this scheduler serves.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// How often unschedulable pods are retried even if nothing changed.
const UNSCHEDULABLE_FLUSH: Duration = Duration::from_secs(60);

/// Why one scheduling attempt failed (the pod is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("binding the pod: {0}")]
    Bind(kube::Error),
}

/// Starts the scheduler as `system:kube-scheduler` against the in-process
/// API `router`, with pod and node informers of its own.
pub fn start_in_process(router: axum::Router) {
    let client = crate::client::in_process(
        router,
        crate::auth::UserInfo::component("system:kube-scheduler"),
    );
    let pods = Informer::start(kube::Api::<Pod>::all(client.clone()));
    let nodes = Informer::start(kube::Api::<Node>::all(client.clone()));
    let claims = Informer::start(kube::Api::all(client.clone()));
    let classes = Informer::start(kube::Api::all(client.clone()));
    start(client, pods, nodes, Volumes { claims, classes });
    tracing::info!("scheduler started");
}

/// The claims and classes the VolumeBinding check reads.
pub struct Volumes {
    pub claims: Arc<Informer<PersistentVolumeClaim>>,
    pub classes: Arc<Informer<StorageClass>>,
}

/// Starts the scheduler on the given informers.
pub fn start(
    client: Client,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    volumes: Volumes,
) {
    let scheduler = Arc::new(Scheduler {
        client,
        pods,
        nodes,
        volumes,
        queue: WorkQueue::new(),
        state: std::sync::Mutex::new(State::default()),
    });
    tokio::spawn(scheduler.clone().watch_pods());
    tokio::spawn(scheduler.clone().watch_nodes());
    tokio::spawn(scheduler.clone().watch_claims());
    tokio::spawn(scheduler.clone().flush_periodically());
    tokio::spawn(scheduler.work());
}

#[derive(Default)]
struct State {
    /// Pods that fit nowhere, waiting for a change.
    unschedulable: HashSet<String>,
    /// Pods bound by us that the pod store does not show bound yet.
    assumed: HashMap<String, (String, Arc<Pod>)>,
    /// The last FailedScheduling message per pod, so that a retry that fails
    /// the same way does not record the same event again.
    last_failure: HashMap<String, String>,
}

struct Scheduler {
    client: Client,
    pods: Arc<Informer<Pod>>,
    nodes: Arc<Informer<Node>>,
    volumes: Volumes,
    queue: WorkQueue,
    state: std::sync::Mutex<State>,
}

fn pod_key(pod: &Pod) -> String {
    workqueue::key(
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default(),
    )
}

fn is_pending_for_us(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.node_name.as_deref().unwrap_or("").is_empty()
        && spec.scheduler_name.as_deref().unwrap_or(SCHEDULER_NAME) == SCHEDULER_NAME
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminal(pod)
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl Scheduler {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves every unschedulable pod back to the queue.
    fn flush_unschedulable(&self) {
        let keys: Vec<String> = self.state().unschedulable.drain().collect();
        for key in keys {
            self.queue.add(key);
        }
    }

    async fn watch_pods(self: Arc<Self>) {
        let mut changes = self.pods.subscribe();
        for pod in self.pods.store().state() {
            if is_pending_for_us(&pod) {
                self.queue.add(pod_key(&pod));
            }
        }
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(pod) if is_pending_for_us(&pod) => {
                    let key = pod_key(&pod);
                    if !self.state().unschedulable.contains(&key) {
                        self.queue.add(key);
                    }
                }
                Change::Applied(pod) => {
                    let key = pod_key(&pod);
                    let mut state = self.state();
                    state.assumed.remove(&key);
                    state.last_failure.remove(&key);
                    let freed = is_terminal(&pod) || pod.metadata.deletion_timestamp.is_some();
                    drop(state);
                    if freed {
                        self.flush_unschedulable();
                    }
                }
                Change::Deleted(pod) => {
                    let key = pod_key(&pod);
                    let mut state = self.state();
                    state.assumed.remove(&key);
                    state.unschedulable.remove(&key);
                    state.last_failure.remove(&key);
                    drop(state);
                    self.flush_unschedulable();
                }
                Change::Resync => {
                    for pod in self.pods.store().state() {
                        if is_pending_for_us(&pod) {
                            self.queue.add(pod_key(&pod));
                        }
                    }
                }
            }
        }
    }

    async fn watch_nodes(self: Arc<Self>) {
        let mut changes = self.nodes.subscribe();
        while changes.next().await.is_some() {
            self.flush_unschedulable();
        }
    }

    /// A claim that binds may make a waiting pod schedulable.
    async fn watch_claims(self: Arc<Self>) {
        let mut changes = self.volumes.claims.subscribe();
        while changes.next().await.is_some() {
            self.flush_unschedulable();
        }
    }

    async fn flush_periodically(self: Arc<Self>) {
        let mut tick = tokio::time::interval(UNSCHEDULABLE_FLUSH);
        loop {
            tick.tick().await;
            self.flush_unschedulable();
        }
    }

    async fn work(self: Arc<Self>) {
        self.queue
            .process("pod", |key| {
                let scheduler = self.clone();
                async move { scheduler.schedule(&key).await }
            })
            .await;
    }

    /// What every node already runs: bound, non-terminal pods plus assumed ones.
    fn usage(&self) -> HashMap<String, NodeUsage> {
        let mut usage: HashMap<String, NodeUsage> = HashMap::new();
        let mut add = |node: &str, pod: &Pod| {
            let u = usage.entry(node.to_string()).or_default();
            u.requested = u.requested.plus(Resources::requests(pod));
            u.non_zero = u.non_zero.plus(Resources::non_zero_requests(pod));
            u.pods += 1;
            u.host_ports.extend(filters::host_ports(pod));
        };
        let mut seen = HashSet::new();
        for pod in self.pods.store().state() {
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("");
            if !node.is_empty() && !is_terminal(&pod) {
                seen.insert(pod_key(&pod));
                add(node, &pod);
            }
        }
        for (key, (node, pod)) in &self.state().assumed {
            if !seen.contains(key) {
                add(node, pod);
            }
        }
        usage
    }

    async fn schedule(&self, key: &str) -> Result<(), ScheduleError> {
        let (namespace, name) = workqueue::split(key);
        let pod = self.pods.get(namespace, name);
        let Some(pod) = pod.filter(|p| is_pending_for_us(p)) else {
            return Ok(());
        };
        if self.state().assumed.contains_key(key) {
            return Ok(());
        }
        let nodes = self.nodes.store().state();
        let usage = self.usage();
        let claim = |name: &str| self.volumes.claims.get(namespace, name);
        let class = |name: &str| self.volumes.classes.get("", name);
        let verdict = match filters::unbound_claims(&pod, claim, class) {
            Some(why) => Err(prefilter_error(nodes.len(), &why)),
            None => pick_node(&pod, &nodes, &usage),
        };
        match verdict {
            Ok(node) => {
                self.bind(&pod, &node).await?;
                self.state()
                    .assumed
                    .insert(key.to_string(), (node.clone(), pod.clone()));
                self.state().last_failure.remove(key);
                crate::events::scheduled(&self.client, &pod, &node).await;
                Ok(())
            }
            Err(message) => {
                let repeated = {
                    let mut state = self.state();
                    state.unschedulable.insert(key.to_string());
                    state.last_failure.insert(key.to_string(), message.clone())
                        == Some(message.clone())
                };
                if !repeated {
                    tracing::info!(pod = %key, %message, "pod is unschedulable");
                    crate::events::failed_scheduling(&self.client, &pod, &message).await;
                    self.mark_unschedulable(&pod, &message).await;
                }
                Ok(())
            }
        }
    }

    /// Sets the pod's PodScheduled condition to False/Unschedulable, as
    /// upstream does, so `kubectl describe` and `kubectl wait` see why.
    async fn mark_unschedulable(&self, pod: &Pod, message: &str) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let now = k8s_openapi::jiff::Timestamp::now();
        let now = k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
        let patch = serde_json::json!({"status": {"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastTransitionTime": now.to_string(),
        }]}});
        let pods: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), namespace);
        let params = kube::api::PatchParams::default();
        if let Err(e) = pods
            .patch_status(name, &params, &kube::api::Patch::Merge(&patch))
            .await
        {
            tracing::debug!(pod = %name, error = %e, "setting PodScheduled=False failed");
        }
    }

    async fn bind(&self, pod: &Pod, node: &str) -> Result<(), ScheduleError> {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let binding = Binding {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.to_string()),
                ..Default::default()
            },
        };
        let body = serde_json::to_vec(&binding)
            .map_err(|e| ScheduleError::Bind(kube::Error::SerdeError(e)))?;
        let request = http::Request::post(format!(
            "/api/v1/namespaces/{namespace}/pods/{name}/binding"
        ))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .map_err(|e| ScheduleError::Bind(kube::Error::HttpError(e)))?;
        match self.client.request_text(request).await {
            Ok(_) => Ok(()),
            // Already bound (by us earlier, or someone else): nothing to do.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(ScheduleError::Bind(e)),
        }
    }
}

/// The best node for `pod`, or the FailedScheduling message.
pub fn pick_node(
    pod: &Pod,
    nodes: &[Arc<Node>],
    usage: &HashMap<String, NodeUsage>,
) -> Result<String, String> {
    let empty = NodeUsage::default();
    let mut best: Option<(i64, String)> = None;
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let used = usage.get(&name).unwrap_or(&empty);
        if !filters::check(pod, node, used).is_empty() {
            continue;
        }
        let requested = Resources::non_zero_requests(pod).plus(used.non_zero);
        let score = score::score(Resources::allocatable(node), requested);
        if best
            .as_ref()
            .is_none_or(|(s, n)| score > *s || (score == *s && name < *n))
        {
            best = Some((score, name));
        }
    }
    best.map(|(_, n)| n)
        .ok_or_else(|| fit_error(nodes.len(), pod, nodes, usage))
}

/// Upstream's FitError text for a pod a PreFilter turned away (no node
/// was even tried, and preemption cannot help).
pub fn prefilter_error(total: usize, why: &str) -> String {
    format!(
        "0/{total} nodes are available: {why}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
    )
}

/// Upstream's FitError text: per-reason node counts, sorted, then what
/// preemption would say.
pub fn fit_error(
    total: usize,
    pod: &Pod,
    nodes: &[Arc<Node>],
    usage: &HashMap<String, NodeUsage>,
) -> String {
    let empty = NodeUsage::default();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let (mut helpful, mut not_helpful) = (0, 0);
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let unfit = filters::check(pod, node, usage.get(&name).unwrap_or(&empty));
        if unfit.iter().all(Unfit::preemption_may_help) {
            helpful += 1;
        } else {
            not_helpful += 1;
        }
        for u in unfit {
            *reasons.entry(u.reason()).or_default() += 1;
        }
    }
    if total == 0 {
        return "no nodes available to schedule pods".to_string();
    }
    let listed: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    let mut preemption = Vec::new();
    if helpful > 0 {
        preemption.push(format!(
            "{helpful} No preemption victims found for incoming pod"
        ));
    }
    if not_helpful > 0 {
        preemption.push(format!(
            "{not_helpful} Preemption is not helpful for scheduling"
        ));
    }
    format!(
        "0/{total} nodes are available: {}. preemption: 0/{total} nodes are available: {}.",
        listed.join(", "),
        preemption.join(", ")
    )
}
