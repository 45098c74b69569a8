//! The scheduler: binds each pending pod (empty `spec.nodeName`,
//! `schedulerName: default-scheduler`) to the best node that passes the
//! filters, by score (`algorithm.rs`), through `pods/binding`.
//!
//! Decisions read an incremental cache of nodes and the pods on them
//! (`cache.rs`), fed by the shared pod and node informers; a pod just bound
//! is assumed on its node at once and bound in the background, so the next
//! decision can start while the binding is written. Pods that fit nowhere
//! may preempt lower-priority pods (`preemption.rs`); otherwise, or after
//! preempting, they get a `FailedScheduling` event in upstream's words and
//! wait in an unschedulable set until a node or a pod changes in a way that
//! may free room; then they are tried again.

pub mod algorithm;
pub mod cache;
pub mod filters;
pub mod interpod;
pub mod preemption;
pub mod resources;
pub mod score;
pub mod selector;
pub mod spread;
#[cfg(test)]
mod testing;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    Binding, Namespace, Node, ObjectReference, PersistentVolumeClaim, Pod, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;

use crate::informer::{Change, Informer};
use crate::workqueue::{self, WorkQueue};
use algorithm::{Context, Diagnosis};
use cache::{Cache, PodInfo};
use preemption::{Budget, Candidate};
use selector::Selector;

/// The scheduler name this scheduler serves.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// How often unschedulable pods are retried even if nothing changed.
const UNSCHEDULABLE_FLUSH: Duration = Duration::from_secs(60);

/// When to retry a pod whose failed attempt overlapped a change that may
/// have freed room.
const RETRY_AFTER_CHANGE: Duration = Duration::from_secs(1);

/// Why one scheduling attempt failed (the pod is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("binding the pod: {0}")]
    Bind(kube::Error),
}

/// The shared informers the scheduler reads.
pub struct Informers {
    pub pods: Arc<Informer<Pod>>,
    pub nodes: Arc<Informer<Node>>,
    pub namespaces: Arc<Informer<Namespace>>,
    /// Services, ReplicaSets and StatefulSets select the pods the default
    /// spreading constraints count.
    pub services: Arc<Informer<Service>>,
    pub replicasets: Arc<Informer<ReplicaSet>>,
    pub statefulsets: Arc<Informer<StatefulSet>>,
    pub pdbs: Arc<Informer<PodDisruptionBudget>>,
    /// The claims and classes the VolumeBinding check reads.
    pub claims: Arc<Informer<PersistentVolumeClaim>>,
    pub classes: Arc<Informer<StorageClass>>,
}

/// Starts the scheduler as `system:kube-scheduler` against the in-process
/// API `router`, with informers of its own (it runs under its own lease,
/// apart from the controllers).
pub fn start_in_process(router: axum::Router) {
    let client = crate::client::in_process(
        router,
        crate::auth::UserInfo::component("system:kube-scheduler"),
    );
    let api = || client.clone();
    let informers = Informers {
        pods: Informer::start(kube::Api::all(api())),
        nodes: Informer::start(kube::Api::all(api())),
        namespaces: Informer::start(kube::Api::all(api())),
        services: Informer::start(kube::Api::all(api())),
        replicasets: Informer::start(kube::Api::all(api())),
        statefulsets: Informer::start(kube::Api::all(api())),
        pdbs: Informer::start(kube::Api::all(api())),
        claims: Informer::start(kube::Api::all(api())),
        classes: Informer::start(kube::Api::all(api())),
    };
    start(client, informers);
    tracing::info!("scheduler started");
}

/// Starts the scheduler on the given informers.
pub fn start(client: Client, informers: Informers) {
    // The active queue is ordered as upstream's PrioritySort: higher
    // `spec.priority` first, then the order pods arrived in.
    let pods = informers.pods.clone();
    let priority: crate::workqueue::PriorityFn = Arc::new(move |key: &str| {
        let (namespace, name) = workqueue::split(key);
        pods.get(namespace, name)
            .and_then(|p| p.spec.as_ref().and_then(|s| s.priority))
            .unwrap_or(0)
    });
    let scheduler = Arc::new(Scheduler {
        client,
        informers,
        queue: WorkQueue::prioritized(priority),
        cache: std::sync::Mutex::new(Cache::default()),
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
    /// The last FailedScheduling message per pod, so that a retry that fails
    /// the same way does not record the same event again.
    last_failure: HashMap<String, String>,
    /// How many times the unschedulable pods were moved back to the queue:
    /// an attempt that overlapped a move must not park its pod.
    flushes: u64,
}

struct Scheduler {
    client: Client,
    informers: Informers,
    queue: WorkQueue,
    cache: std::sync::Mutex<Cache>,
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

/// Now, to the second (the precision of `metav1.Time`).
fn now_seconds() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}

impl Scheduler {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves every unschedulable pod back to the queue.
    fn flush_unschedulable(&self) {
        let keys: Vec<String> = {
            let mut state = self.state();
            state.flushes += 1;
            state.unschedulable.drain().collect()
        };
        for key in keys {
            self.queue.add(key);
        }
    }

    fn rebuild_cache(&self) {
        let nodes = self.informers.nodes.store().state();
        let pods = self.informers.pods.store().state();
        self.cache().rebuild(&nodes, &pods);
    }

    async fn watch_pods(self: Arc<Self>) {
        let mut changes = self.informers.pods.subscribe();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(pod) => {
                    self.cache().update_pod(pod.clone());
                    let key = pod_key(&pod);
                    if is_pending_for_us(&pod) {
                        if !self.state().unschedulable.contains(&key) {
                            self.queue.add(key);
                        }
                        continue;
                    }
                    self.state().last_failure.remove(&key);
                    if is_terminal(&pod) || pod.metadata.deletion_timestamp.is_some() {
                        self.flush_unschedulable();
                    }
                }
                Change::Deleted(pod) => {
                    let key = pod_key(&pod);
                    self.cache().remove_pod(&key);
                    let mut state = self.state();
                    state.unschedulable.remove(&key);
                    state.last_failure.remove(&key);
                    drop(state);
                    self.flush_unschedulable();
                }
                Change::Resync => {
                    self.rebuild_cache();
                    for pod in self.informers.pods.store().state() {
                        if is_pending_for_us(&pod) {
                            self.queue.add(pod_key(&pod));
                        }
                    }
                }
            }
        }
    }

    async fn watch_nodes(self: Arc<Self>) {
        let mut changes = self.informers.nodes.subscribe();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(node) => self.cache().set_node(node),
                Change::Deleted(node) => self
                    .cache()
                    .remove_node(node.metadata.name.as_deref().unwrap_or_default()),
                Change::Resync => self.rebuild_cache(),
            }
            self.flush_unschedulable();
        }
    }

    /// A claim that binds may make a waiting pod schedulable.
    async fn watch_claims(self: Arc<Self>) {
        let mut changes = self.informers.claims.subscribe();
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

    /// What a decision for `pod` needs besides the cache.
    fn context(&self, pod: &Pod) -> Context {
        let namespaces = self
            .informers
            .namespaces
            .store()
            .state()
            .iter()
            .map(|n| {
                (
                    n.metadata.name.clone().unwrap_or_default(),
                    n.metadata.labels.clone().unwrap_or_default(),
                )
            })
            .collect();
        let has_own = pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .is_some_and(|c| !c.is_empty());
        Context {
            namespaces,
            default_selector: if has_own {
                None
            } else {
                self.default_selector(pod)
            },
        }
    }

    /// Upstream's `DefaultSelector`: the requirements of every Service,
    /// ReplicaSet and StatefulSet in the pod's namespace that selects it.
    fn default_selector(&self, pod: &Pod) -> Option<Selector> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let mut selectors = Vec::new();
        for s in self.informers.services.store().state() {
            if s.metadata.namespace.as_deref() != Some(namespace) {
                continue;
            }
            if let Some(map) = s.spec.as_ref().and_then(|s| s.selector.as_ref())
                && !map.is_empty()
            {
                let sel = Selector::from_map(map);
                if sel.matches(&labels) {
                    selectors.push(sel);
                }
            }
        }
        for rs in self.informers.replicasets.store().state() {
            if rs.metadata.namespace.as_deref() == Some(namespace) {
                let sel = Selector::from_api(rs.spec.as_ref().map(|s| &s.selector));
                if !sel.is_empty() && sel.matches(&labels) {
                    selectors.push(sel);
                }
            }
        }
        for ss in self.informers.statefulsets.store().state() {
            if ss.metadata.namespace.as_deref() == Some(namespace) {
                let sel = Selector::from_api(ss.spec.as_ref().map(|s| &s.selector));
                if !sel.is_empty() && sel.matches(&labels) {
                    selectors.push(sel);
                }
            }
        }
        let mut all = selectors.pop()?;
        for s in &selectors {
            all.and(s);
        }
        Some(all)
    }

    fn budgets(&self) -> Vec<Budget> {
        self.informers
            .pdbs
            .store()
            .state()
            .iter()
            .filter_map(|p| Budget::new(p))
            .collect()
    }

    async fn schedule(self: &Arc<Self>, key: &str) -> Result<(), ScheduleError> {
        let (namespace, name) = workqueue::split(key);
        let pod = self.informers.pods.get(namespace, name);
        let Some(pod) = pod.filter(|p| is_pending_for_us(p)) else {
            return Ok(());
        };
        if self.cache().is_placed(key) {
            return Ok(());
        }
        let flushes = self.state().flushes;
        let claim = |name: &str| self.informers.claims.get(namespace, name);
        let class = |name: &str| self.informers.classes.get("", name);
        if let Some(why) = filters::unbound_claims(&pod, claim, class) {
            let total = self.informers.nodes.store().state().len();
            self.waits_for_volumes(key, &pod, &prefilter_error(total, &why), flushes)
                .await;
            return Ok(());
        }
        let info = PodInfo::new(pod.clone());
        let ctx = self.context(&pod);
        let decision = {
            let mut cache = self.cache();
            let decision = algorithm::find_node(&info, &cache, &ctx);
            if let Ok(node) = &decision {
                cache.assume(info.clone(), node);
            }
            decision
        };
        match decision {
            Ok(node) => {
                self.state().last_failure.remove(key);
                let scheduler = self.clone();
                let key = key.to_string();
                tokio::spawn(async move {
                    match scheduler.bind(&pod, &node).await {
                        Ok(()) => crate::events::scheduled(&scheduler.client, &pod, &node).await,
                        Err(e) => {
                            tracing::info!(pod = %key, error = %e, "binding failed; will retry");
                            scheduler.cache().forget_assumed(&key);
                            scheduler.queue.retry(key);
                        }
                    }
                });
                Ok(())
            }
            Err(diagnosis) => {
                self.unschedulable(&info, &ctx, &diagnosis, flushes).await;
                Ok(())
            }
        }
    }

    /// Parks an unschedulable pod until something changes (or retries it
    /// shortly when a change overlapped the attempt, `flushes` being the
    /// count when it started) and records its failure; whether that failure
    /// repeats the last one (then no new event is due).
    fn park(&self, key: &str, message: &str, flushes: u64) -> bool {
        let mut state = self.state();
        if state.flushes == flushes {
            state.unschedulable.insert(key.to_string());
        } else {
            self.queue.add_after(key.to_string(), RETRY_AFTER_CHANGE);
        }
        state
            .last_failure
            .insert(key.to_string(), message.to_string())
            .is_some_and(|last| last == message)
    }

    /// A pod a PreFilter turned away (its claims are unbound): no node was
    /// tried and preemption cannot help; it waits for a claim to change.
    async fn waits_for_volumes(&self, key: &str, pod: &Pod, message: &str, flushes: u64) {
        let repeated = self.park(key, message, flushes);
        if !repeated {
            tracing::info!(pod = %key, %message, "pod is unschedulable");
            crate::events::failed_scheduling(&self.client, pod, message).await;
            self.mark_unschedulable(pod, message, None).await;
        }
    }

    /// A pod that fits nowhere: try preemption, then say why it waits.
    /// `flushes` is the count when the attempt started: if something freed
    /// room since (a victim went, say), the pod is tried again shortly
    /// instead of waiting for the next change.
    async fn unschedulable(
        &self,
        pod: &Arc<PodInfo>,
        ctx: &Context,
        diagnosis: &Diagnosis,
        flushes: u64,
    ) {
        let key = pod.key.clone();
        let budgets = self.budgets();
        let outcome = {
            let cache = self.cache();
            preemption::eligible(pod, &cache, diagnosis)
                .map(|()| preemption::find_candidate(pod, &cache, ctx, diagnosis, &budgets))
        };
        // Upstream's nominatingInfo: set on success, cleared when preemption
        // found nothing, left alone when the pod may not preempt now.
        let (message, nominate) = match outcome {
            Ok(Ok(candidate)) => {
                self.cache().nominate(pod.clone(), &candidate.node);
                self.preempt(pod, &candidate).await;
                (diagnosis.message(""), Some(Some(candidate.node)))
            }
            Ok(Err(why)) => (diagnosis.message(&format!("preemption: {why}")), Some(None)),
            Err(why) => (diagnosis.message(&format!("preemption: {why}")), None),
        };
        let repeated = self.park(&key, &message, flushes);
        let nominated_now = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.clone())
            .filter(|n| !n.is_empty());
        let nominate = nominate.filter(|n| *n != nominated_now);
        if !repeated || nominate.is_some() {
            tracing::info!(pod = %key, %message, "pod is unschedulable");
            crate::events::failed_scheduling(&self.client, &pod.pod, &message).await;
            self.mark_unschedulable(&pod.pod, &message, nominate).await;
        }
    }

    /// Evicts the candidate's victims: a DisruptionTarget condition, the
    /// deletion, and a `Preempted` event on each.
    async fn preempt(&self, preemptor: &PodInfo, candidate: &Candidate) {
        let uid = preemptor.pod.metadata.uid.clone().unwrap_or_default();
        for victim in &candidate.victims {
            let pod = &victim.pod;
            let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let pods: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), namespace);
            // Already on its way out (an earlier preemption): nothing to add.
            if victim.terminating() {
                continue;
            }
            let mut conditions: Vec<serde_json::Value> = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .filter(|c| c.type_ != "DisruptionTarget")
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect();
            conditions.push(serde_json::json!({
                "type": "DisruptionTarget", "status": "True",
                "reason": preemption::REASON,
                "message": format!("{SCHEDULER_NAME}: preempting to accommodate a higher priority pod"),
                "lastTransitionTime": now_seconds(),
            }));
            let patch = serde_json::json!({"status": {"conditions": conditions}});
            if let Err(e) = pods
                .patch_status(name, &Default::default(), &kube::api::Patch::Merge(&patch))
                .await
            {
                tracing::debug!(pod = %victim.key, error = %e, "setting DisruptionTarget failed");
            }
            match pods.delete(name, &Default::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::warn!(pod = %victim.key, error = %e, "deleting a preemption victim failed");
                    continue;
                }
            }
            tracing::info!(preemptor = %preemptor.key, victim = %victim.key, node = %candidate.node, "preempted");
            crate::events::record(
                &self.client,
                SCHEDULER_NAME,
                crate::events::reference("v1", "Pod", &pod.metadata),
                "Normal",
                "Preempted",
                format!("Preempted by pod {uid} on node {}", candidate.node),
            )
            .await;
        }
    }

    /// Sets the pod's PodScheduled condition to False/Unschedulable, as
    /// upstream does, so `kubectl describe` and `kubectl wait` see why, and
    /// sets (`Some(Some)`) or clears (`Some(None)`) its nominated node.
    async fn mark_unschedulable(&self, pod: &Pod, message: &str, nominate: Option<Option<String>>) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let mut status = serde_json::json!({"conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastTransitionTime": now_seconds(),
        }]});
        if let Some(node) = nominate {
            status["nominatedNodeName"] = serde_json::json!(node);
        }
        let patch = serde_json::json!({ "status": status });
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

/// Upstream's FitError text for a pod a PreFilter turned away (no node
/// was even tried, and preemption cannot help).
pub fn prefilter_error(total: usize, why: &str) -> String {
    format!(
        "0/{total} nodes are available: {why}. preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
    )
}
