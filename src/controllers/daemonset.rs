//! The DaemonSet controller: one pod on every node that should run it
//! (`daemonset/eligibility.rs`: node name, nodeSelector, required node
//! affinity, taints against tolerations plus the daemon tolerations), each
//! pinned to its node by required node affinity and bound by the default
//! scheduler; pods go from nodes that no longer fit or no longer exist.
//! Template changes roll out with RollingUpdate (maxUnavailable, maxSurge;
//! `daemonset/update.rs`) or wait for deletions with OnDelete. Each template
//! is a ControllerRevision (`history.rs`) named `<ds>-<hash>`, and pods carry
//! that hash in `controller-revision-hash`; the status carries the counts
//! `kubectl rollout status daemonset` follows.

pub mod eligibility;
pub mod update;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use super::adoption::{self, key_of, owner_key};
use super::expectations::Expectations;
use super::history::{self, Created, POD_REVISION_LABEL};
use super::replicaset::is_available;
use super::{Shared, controller_of, owner_reference};
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};
use update::{NodeView, PodView};

const COMPONENT: &str = "daemonset-controller";

/// Why a sync failed (the DaemonSet is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum DaemonSetError {
    #[error("creating a pod: {0}")]
    CreatePod(kube::Error),
    #[error("deleting a pod: {0}")]
    DeletePod(kube::Error),
    #[error("adopting a pod: {0}")]
    Adopt(kube::Error),
    #[error("writing a revision: {0}")]
    Revision(kube::Error),
    #[error("updating the status: {0}")]
    Status(kube::Error),
    #[error("encoding the pod template: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("revision name {0} is taken by another template; collision count raised")]
    Collision(String),
}

struct Controller {
    client: Client,
    sets: Shared<DaemonSet>,
    pods: Shared<Pod>,
    nodes: Shared<Node>,
    revisions: Shared<ControllerRevision>,
    queue: WorkQueue,
    expectations: Expectations,
}

/// Starts the controller on the shared informers.
pub fn start(
    client: Client,
    sets: Shared<DaemonSet>,
    pods: Shared<Pod>,
    nodes: Shared<Node>,
    revisions: Shared<ControllerRevision>,
) {
    let c = Arc::new(Controller {
        client,
        sets,
        pods,
        nodes,
        revisions,
        queue: WorkQueue::new(),
        expectations: Expectations::default(),
    });
    tokio::spawn(c.clone().watch());
    tokio::spawn(async move {
        let worker = c.clone();
        c.queue
            .process("daemonset", |key| {
                let c = worker.clone();
                async move { c.sync(&key).await }
            })
            .await;
    });
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// An int-or-percent of `total`, percentages rounded up.
fn scaled(value: Option<&IntOrString>, total: usize, default: i32) -> usize {
    let n = match value {
        None => i64::from(default),
        Some(IntOrString::Int(n)) => i64::from(*n),
        Some(IntOrString::String(s)) => {
            let percent = s.trim_end_matches('%').parse::<i64>().unwrap_or(0);
            let total = i64::try_from(total).unwrap_or(i64::MAX);
            (percent.saturating_mul(total) + 99) / 100
        }
    };
    usize::try_from(n).unwrap_or(0)
}

impl Controller {
    async fn watch(self: Arc<Self>) {
        let mut sets = self.sets.subscribe();
        let mut pods = self.pods.subscribe();
        let mut nodes = self.nodes.subscribe();
        let mut revisions = self.revisions.subscribe();
        loop {
            tokio::select! {
                change = sets.next() => match change {
                    Some(Change::Applied(d) | Change::Deleted(d)) => self.queue.add(key_of(&d.metadata)),
                    Some(Change::Resync) => self.enqueue_all(),
                    None => return,
                },
                change = pods.next() => match change {
                    Some(Change::Applied(p) | Change::Deleted(p)) => self.enqueue_for_pod(&p),
                    Some(Change::Resync) => self.enqueue_all(),
                    None => return,
                },
                change = nodes.next() => match change {
                    Some(_) => self.enqueue_all(),
                    None => return,
                },
                change = revisions.next() => match change {
                    Some(Change::Applied(r) | Change::Deleted(r)) => {
                        if let Some(key) = owner_key("DaemonSet", &r.metadata) {
                            self.queue.add(key);
                        }
                    }
                    Some(Change::Resync) => self.enqueue_all(),
                    None => return,
                },
            }
        }
    }

    /// Queues the pod's controller, or for an orphan every set in its
    /// namespace that selects it (it may be adopted).
    fn enqueue_for_pod(&self, pod: &Pod) {
        let sets = self.sets.store().state();
        let keys = adoption::keys_for_pod(
            "DaemonSet",
            pod,
            &sets,
            |s| &s.metadata,
            |s| s.spec.as_ref().map(|spec| &spec.selector),
        );
        for key in keys {
            self.queue.add(key);
        }
    }

    fn enqueue_all(&self) {
        for d in self.sets.store().state() {
            self.queue.add(key_of(&d.metadata));
        }
    }

    async fn sync(&self, key: &str) -> Result<(), DaemonSetError> {
        let (namespace, name) = workqueue::split(key);
        let Some(ds) = self.sets.get(namespace, name) else {
            self.expectations.forget(key);
            return Ok(());
        };
        let (Some(spec), Some(uid)) = (ds.spec.as_ref(), ds.metadata.uid.as_deref()) else {
            return Ok(());
        };
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let hash = self.current_revision(&ds).await?;
        let template = eligibility::pod_template(&ds, &hash);
        let nodes: Vec<NodeView> = self
            .nodes
            .store()
            .state()
            .iter()
            .map(|n| {
                let fit = eligibility::fit(&template, n);
                NodeView {
                    name: n.metadata.name.clone().unwrap_or_default(),
                    should_run: fit.should_run,
                    should_continue: fit.should_continue,
                }
            })
            .collect();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let now = Timestamp::now();
        let generation = ds.metadata.generation.map(|g| g.to_string());
        let all = self.pods.store().state();
        let mut owned: Vec<Arc<Pod>> = all
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .filter(|p| {
                controller_of(p.metadata.owner_references.as_ref()).is_some_and(|o| o.uid == uid)
            })
            .cloned()
            .collect();
        for orphan in adoption::orphans(&all, namespace, &spec.selector) {
            let owner = owner_reference("apps/v1", "DaemonSet", name, uid);
            match adoption::adopt(&self.client, &orphan, owner).await {
                Ok(p) => owned.push(Arc::new(p)),
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(DaemonSetError::Adopt(e)),
            }
        }
        let pods: Vec<PodView> = owned
            .iter()
            .map(|p| {
                let labels = p.metadata.labels.clone().unwrap_or_default();
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                PodView {
                    name: p.metadata.name.clone().unwrap_or_default(),
                    node: eligibility::target_node(p),
                    updated: labels.get(POD_REVISION_LABEL) == Some(&hash)
                        || (generation.is_some()
                            && labels.get(eligibility::TEMPLATE_GENERATION_LABEL)
                                == generation.as_ref()),
                    ready: is_ready(p),
                    available: is_available(p, min_ready, now),
                    terminating: p.metadata.deletion_timestamp.is_some(),
                    finished: matches!(phase, Some("Failed" | "Succeeded")),
                    created: (
                        p.metadata
                            .creation_timestamp
                            .as_ref()
                            .map_or(0, |t| t.0.as_second()),
                        p.metadata.name.clone().unwrap_or_default(),
                    ),
                }
            })
            .collect();

        let present = |n: &str| {
            self.pods
                .get(namespace, n)
                .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
        };
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let rolling = strategy.type_.as_deref() != Some("OnDelete");
        let desired = nodes.iter().filter(|n| n.should_run).count();
        let ru = strategy.rolling_update.as_ref();
        let (max_surge, mut max_unavailable) = if rolling {
            (
                scaled(ru.and_then(|r| r.max_surge.as_ref()), desired, 0),
                scaled(ru.and_then(|r| r.max_unavailable.as_ref()), desired, 1),
            )
        } else {
            (0, 1)
        };
        if max_surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        let mut result = Ok(());
        if self.expectations.satisfied(key, present) {
            let mut plan = update::manage(&nodes, &pods, max_surge > 0);
            if rolling && plan == update::Plan::default() {
                plan = update::rolling_update(&nodes, &pods, max_surge, max_unavailable);
            }
            result = self.apply(key, &ds, &template, &plan).await;
        }

        let counts = update::counts(&nodes, &pods);
        self.update_status(&ds, counts).await?;
        if counts.ready > counts.available && min_ready > 0 {
            self.queue.add_after(
                key.to_string(),
                Duration::from_secs(u64::try_from(min_ready).unwrap_or(0)),
            );
        }
        self.prune(&ds, &hash).await;
        result
    }

    /// The hash of the current template's revision, creating the revision
    /// (or renumbering an older equal one, after a rollback) as needed.
    async fn current_revision(&self, ds: &DaemonSet) -> Result<String, DaemonSetError> {
        let namespace = ds.metadata.namespace.as_deref().unwrap_or_default();
        let name = ds.metadata.name.as_deref().unwrap_or_default();
        let uid = ds.metadata.uid.as_deref().unwrap_or_default();
        let spec = ds.spec.clone().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), namespace);
        let data = history::template_patch(&spec.template)?;
        let owned = history::owned(&self.revisions, namespace, uid);
        let (equal, olds): (Vec<_>, Vec<_>) =
            owned.into_iter().partition(|r| history::holds(r, &data));
        let next = history::next_number(&olds);
        let hash_of = |r: &ControllerRevision| {
            r.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(POD_REVISION_LABEL))
                .cloned()
                .unwrap_or_else(|| r.metadata.name.clone().unwrap_or_default())
        };
        if let Some(cur) = equal.last() {
            if cur.revision < next {
                history::renumber(&api, cur, next)
                    .await
                    .map_err(DaemonSetError::Revision)?;
            }
            return Ok(hash_of(cur));
        }
        let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
        let template = serde_json::to_value(&spec.template)?;
        let hash = super::deployment::rollout::template_hash(&template, collisions);
        let mut labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(POD_REVISION_LABEL.into(), hash.clone());
        let revision = history::new_revision(
            owner_reference("apps/v1", "DaemonSet", name, uid),
            namespace,
            history::revision_name(name, &hash),
            labels,
            ds.metadata.annotations.clone(),
            data,
            next,
        );
        match history::create(&api, &revision)
            .await
            .map_err(DaemonSetError::Revision)?
        {
            Created::Done(r) => Ok(hash_of(&r)),
            Created::Collision => {
                let mut updated = ds.clone();
                let status = updated.status.get_or_insert_with(Default::default);
                status.collision_count = Some(collisions.unwrap_or(0) + 1);
                let sets: Api<DaemonSet> = Api::namespaced(self.client.clone(), namespace);
                sets.replace_status(name, &PostParams::default(), &updated)
                    .await
                    .map_err(DaemonSetError::Status)?;
                Err(DaemonSetError::Collision(
                    revision.metadata.name.unwrap_or_default(),
                ))
            }
        }
    }

    async fn apply(
        &self,
        key: &str,
        ds: &DaemonSet,
        template: &k8s_openapi::api::core::v1::PodTemplateSpec,
        plan: &update::Plan,
    ) -> Result<(), DaemonSetError> {
        let namespace = ds.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let mut created = HashSet::new();
        let mut deleted = HashSet::new();
        let mut failure = None;
        for node in &plan.create_on {
            let pod = eligibility::new_pod(ds, template, node);
            match api.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    let n = p.metadata.name.unwrap_or_default();
                    self.event(
                        ds,
                        "Normal",
                        "SuccessfulCreate",
                        format!("Created pod: {n}"),
                    )
                    .await;
                    created.insert(n);
                }
                Err(e) => {
                    self.event(
                        ds,
                        "Warning",
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    )
                    .await;
                    failure = Some(DaemonSetError::CreatePod(e));
                }
            }
        }
        let background = DeleteParams::background();
        let now = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::background()
        };
        let deletes = plan
            .delete
            .iter()
            .map(|n| (n, &background))
            .chain(plan.delete_now.iter().map(|n| (n, &now)));
        for (name, params) in deletes {
            match api.delete(name, params).await {
                Ok(_) => {
                    self.event(
                        ds,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    )
                    .await;
                    deleted.insert(name.clone());
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => failure = Some(DaemonSetError::DeletePod(e)),
            }
        }
        self.expectations.expect(key, created, deleted);
        failure.map_or(Ok(()), Err)
    }

    /// Deletes revisions beyond `revisionHistoryLimit` that no pod runs.
    async fn prune(&self, ds: &DaemonSet, hash: &str) {
        let namespace = ds.metadata.namespace.as_deref().unwrap_or_default();
        let uid = ds.metadata.uid.as_deref().unwrap_or_default();
        let mut live_hashes: HashSet<String> = self
            .pods
            .store()
            .state()
            .iter()
            .filter(|p| {
                controller_of(p.metadata.owner_references.as_ref()).is_some_and(|o| o.uid == uid)
            })
            .filter_map(|p| p.metadata.labels.as_ref()?.get(POD_REVISION_LABEL).cloned())
            .collect();
        live_hashes.insert(hash.to_string());
        let owned = history::owned(&self.revisions, namespace, uid);
        let live: HashSet<String> = owned
            .iter()
            .filter(|r| {
                r.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(POD_REVISION_LABEL))
                    .is_some_and(|h| live_hashes.contains(h))
            })
            .filter_map(|r| r.metadata.name.clone())
            .collect();
        let limit = ds
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10);
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), namespace);
        history::prune(&api, &owned, limit, &live).await;
    }

    async fn update_status(
        &self,
        ds: &DaemonSet,
        counts: update::Counts,
    ) -> Result<(), DaemonSetError> {
        let old = ds.status.clone().unwrap_or_default();
        let status = DaemonSetStatus {
            desired_number_scheduled: counts.desired,
            current_number_scheduled: counts.current,
            number_misscheduled: counts.misscheduled,
            number_ready: counts.ready,
            number_available: Some(counts.available),
            number_unavailable: Some(counts.desired - counts.available),
            updated_number_scheduled: Some(counts.updated),
            observed_generation: ds.metadata.generation,
            collision_count: old.collision_count,
            conditions: old.conditions.clone(),
        };
        if status == old {
            return Ok(());
        }
        let mut updated = ds.clone();
        updated.status = Some(status);
        let api: Api<DaemonSet> = Api::namespaced(
            self.client.clone(),
            ds.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = ds.metadata.name.as_deref().unwrap_or_default();
        match api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(DaemonSetError::Status(e)),
        }
    }

    async fn event(&self, ds: &DaemonSet, type_: &str, reason: &str, message: String) {
        let object = crate::events::reference("apps/v1", "DaemonSet", &ds.metadata);
        crate::events::record(&self.client, COMPONENT, object, type_, reason, message).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_percent_scales_up() {
        assert_eq!(scaled(None, 10, 1), 1);
        assert_eq!(scaled(Some(&IntOrString::Int(3)), 10, 1), 3);
        assert_eq!(scaled(Some(&IntOrString::String("25%".into())), 10, 1), 3);
        assert_eq!(scaled(Some(&IntOrString::String("0%".into())), 10, 1), 0);
        assert_eq!(scaled(Some(&IntOrString::Int(-1)), 10, 1), 0);
    }
}
