//! The StatefulSet controller: pods with a stable identity
//! (`<set>-<ordinal>`, see `statefulset/identity.rs`) and their claims from
//! `volumeClaimTemplates`, created in order (OrderedReady) or all at once
//! (Parallel), removed from the highest ordinal down, and rolled to a new
//! template from the highest ordinal down to the partition
//! (`statefulset/plan.rs` decides; this file acts). Each template is kept as
//! a ControllerRevision (`history.rs`), which `kubectl rollout
//! history/undo` read and apply; the status carries the counts and the
//! current and update revisions that `kubectl rollout status` follows.
//!
//! Claims follow `persistentVolumeClaimRetentionPolicy`: `Retain` keeps
//! them; `whenDeleted: Delete` makes the set an owner (the garbage collector
//! removes them with it); `whenScaled: Delete` makes a condemned pod an
//! owner before it is deleted. The controller never waits for a claim to be
//! bound (upstream does not either).

pub mod identity;
pub mod plan;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};

use super::adoption::{self, key_of, owner_key};
use super::history::{self, Created, POD_REVISION_LABEL};
use super::replicaset::is_available;
use super::{Shared, controller_of, owner_reference};
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};
use plan::{Action, Inputs, PodView, Rolling};

const COMPONENT: &str = "statefulset-controller";
/// How many hash collisions a revision name may meet before giving up.
const MAX_COLLISIONS: i32 = 10;

/// Why a sync failed (the set is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum StatefulSetError {
    #[error("creating a pod: {0}")]
    CreatePod(kube::Error),
    #[error("deleting a pod: {0}")]
    DeletePod(kube::Error),
    #[error("adopting a pod: {0}")]
    Adopt(kube::Error),
    #[error("restoring a pod's identity labels: {0}")]
    Identity(kube::Error),
    #[error("writing a claim: {0}")]
    Claim(kube::Error),
    #[error("writing a revision: {0}")]
    Revision(kube::Error),
    #[error("updating the status: {0}")]
    Status(kube::Error),
    #[error("encoding the pod template: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("no free revision name after {0} hash collisions")]
    Collisions(i32),
}

struct Controller {
    client: Client,
    sets: Shared<StatefulSet>,
    pods: Shared<Pod>,
    claims: Shared<PersistentVolumeClaim>,
    revisions: Shared<ControllerRevision>,
    queue: WorkQueue,
}

/// Starts the controller on the shared informers.
pub fn start(
    client: Client,
    sets: Shared<StatefulSet>,
    pods: Shared<Pod>,
    claims: Shared<PersistentVolumeClaim>,
    revisions: Shared<ControllerRevision>,
) {
    let c = Arc::new(Controller {
        client,
        sets,
        pods,
        claims,
        revisions,
        queue: WorkQueue::new(),
    });
    tokio::spawn(c.clone().watch());
    tokio::spawn(async move {
        let worker = c.clone();
        c.queue
            .process("statefulset", |key| {
                let c = worker.clone();
                async move { c.sync(&key).await }
            })
            .await;
    });
}

/// Running with a Ready condition.
fn running_and_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed" | "Succeeded")
    )
}

fn revision_label(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(POD_REVISION_LABEL))
        .cloned()
        .unwrap_or_default()
}

/// The retention policy: (delete with the set, delete when scaled down).
fn retention(set: &StatefulSet) -> (bool, bool) {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let delete = |v: Option<&String>| v.is_some_and(|v| v == "Delete");
    (
        delete(policy.and_then(|p| p.when_deleted.as_ref())),
        delete(policy.and_then(|p| p.when_scaled.as_ref())),
    )
}

/// maxUnavailable as a count of `replicas` (percentages round up, at
/// least one).
fn max_unavailable(
    value: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    replicas: i32,
) -> i32 {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let n = match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let percent = s.trim_end_matches('%').parse::<i64>().unwrap_or(0);
            let scaled = (percent * i64::from(replicas.max(0)) + 99) / 100;
            i32::try_from(scaled).unwrap_or(i32::MAX)
        }
    };
    n.max(1)
}

impl Controller {
    async fn watch(self: Arc<Self>) {
        let mut sets = self.sets.subscribe();
        let mut pods = self.pods.subscribe();
        let mut revisions = self.revisions.subscribe();
        loop {
            tokio::select! {
                change = sets.next() => match change {
                    Some(Change::Applied(s) | Change::Deleted(s)) => self.queue.add(key_of(&s.metadata)),
                    Some(Change::Resync) => self.enqueue_all(),
                    None => return,
                },
                change = pods.next() => match change {
                    Some(Change::Applied(p) | Change::Deleted(p)) => self.enqueue_for_pod(&p),
                    Some(Change::Resync) => self.enqueue_all(),
                    None => return,
                },
                change = revisions.next() => match change {
                    Some(Change::Applied(r) | Change::Deleted(r)) => {
                        if let Some(key) = owner_key("StatefulSet", &r.metadata) {
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
            "StatefulSet",
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
        for s in self.sets.store().state() {
            self.queue.add(key_of(&s.metadata));
        }
    }

    async fn sync(&self, key: &str) -> Result<(), StatefulSetError> {
        let (namespace, name) = workqueue::split(key);
        let Some(set) = self.sets.get(namespace, name) else {
            return Ok(());
        };
        let (Some(spec), Some(uid)) = (set.spec.as_ref(), set.metadata.uid.as_deref()) else {
            return Ok(());
        };
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let revisions = history::owned(&self.revisions, namespace, uid);
        let (current, update, collisions) = self.revisions(&set, &revisions).await?;
        let current_name = current.metadata.name.clone().unwrap_or_default();
        let update_name = update.metadata.name.clone().unwrap_or_default();

        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let now = Timestamp::now();
        let all = self.pods.store().state();
        let mut pods: Vec<Arc<Pod>> = all
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .filter(|p| {
                controller_of(p.metadata.owner_references.as_ref()).is_some_and(|o| o.uid == uid)
            })
            .cloned()
            .collect();
        for orphan in adoption::orphans(&all, namespace, &spec.selector) {
            let member = orphan
                .metadata
                .name
                .as_deref()
                .and_then(|n| identity::ordinal_of(name, n))
                .is_some();
            if !member {
                continue;
            }
            let owner = owner_reference("apps/v1", "StatefulSet", name, uid);
            match adoption::adopt(&self.client, &orphan, owner).await {
                Ok(p) => pods.push(Arc::new(p)),
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(StatefulSetError::Adopt(e)),
            }
        }
        let views: Vec<(PodView, Arc<Pod>)> = pods
            .iter()
            .filter_map(|p| {
                let ordinal = identity::ordinal_of(name, p.metadata.name.as_deref()?)?;
                let view = PodView {
                    ordinal,
                    name: p.metadata.name.clone().unwrap_or_default(),
                    revision: revision_label(p),
                    terminating: p.metadata.deletion_timestamp.is_some(),
                    finished: finished(p),
                    healthy: running_and_ready(p) && is_available(p, min_ready, now),
                };
                Some((view, p.clone()))
            })
            .collect();

        let replicas = spec.replicas.unwrap_or(1);
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let rolling = (strategy.type_.as_deref() != Some("OnDelete")).then(|| {
            let ru = strategy.rolling_update.as_ref();
            Rolling {
                partition: ru.and_then(|r| r.partition).unwrap_or(0),
                max_unavailable: ru
                    .and_then(|r| r.max_unavailable.as_ref())
                    .map(|m| max_unavailable(m, replicas)),
            }
        });
        let inputs = Inputs {
            start: spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0),
            replicas,
            parallel: spec.pod_management_policy.as_deref() == Some("Parallel"),
            rolling,
            current_revision: current_name.clone(),
            update_revision: update_name.clone(),
        };
        let plain: Vec<PodView> = views.iter().map(|(v, _)| v.clone()).collect();
        let actions = plan::plan(&inputs, &plain);
        self.reconcile_claim_owners(&set, &inputs).await?;
        self.repair_identity(&views).await?;
        let result = self
            .act(&set, &actions, &views, &current, &update, &update_name)
            .await;

        let counted: Vec<(PodView, bool, bool)> = views
            .iter()
            .map(|(v, p)| {
                (
                    v.clone(),
                    running_and_ready(p),
                    running_and_ready(p) && is_available(p, min_ready, now),
                )
            })
            .collect();
        let counts = plan::counts(&counted, &current_name, &update_name);
        self.update_status(
            &set,
            counts,
            &current_name,
            &update_name,
            collisions,
            inputs.rolling.is_some(),
        )
        .await?;
        if counts.ready > counts.available && min_ready > 0 {
            self.queue.add_after(
                key.to_string(),
                Duration::from_secs(u64::try_from(min_ready).unwrap_or(0)),
            );
        }

        let mut live: HashSet<String> = views.iter().map(|(v, _)| v.revision.clone()).collect();
        live.insert(current_name);
        live.insert(update_name);
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), namespace);
        history::prune(
            &api,
            &history::owned(&self.revisions, namespace, uid),
            spec.revision_history_limit.unwrap_or(10),
            &live,
        )
        .await;
        result
    }

    /// The current and update revisions (creating or renumbering the
    /// update revision as needed) and the collision count used.
    async fn revisions(
        &self,
        set: &StatefulSet,
        revisions: &[Arc<ControllerRevision>],
    ) -> Result<(ControllerRevision, ControllerRevision, Option<i32>), StatefulSetError> {
        let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
        let name = set.metadata.name.as_deref().unwrap_or_default();
        let spec = set.spec.clone().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), namespace);
        let data = history::template_patch(&spec.template)?;
        let status = set.status.clone().unwrap_or_default();
        let mut collisions = status.collision_count;
        let latest = revisions.last();
        let equal = revisions.iter().rev().find(|r| history::holds(r, &data));
        let next = history::next_number(revisions);
        let update = match equal {
            Some(r) if latest.is_some_and(|l| Arc::ptr_eq(l, r)) => (**r).clone(),
            Some(r) => history::renumber(&api, r, next)
                .await
                .map_err(StatefulSetError::Revision)?,
            None => {
                let mut labels = spec
                    .template
                    .metadata
                    .as_ref()
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default();
                let owner = owner_reference(
                    "apps/v1",
                    "StatefulSet",
                    name,
                    set.metadata.uid.as_deref().unwrap_or_default(),
                );
                let mut tries = 0;
                loop {
                    let hash = history::hash(&data, collisions);
                    labels.insert(history::HASH_LABEL.into(), hash.clone());
                    let revision = history::new_revision(
                        owner.clone(),
                        namespace,
                        history::revision_name(name, &hash),
                        labels.clone(),
                        set.metadata.annotations.clone(),
                        data.clone(),
                        next,
                    );
                    match history::create(&api, &revision)
                        .await
                        .map_err(StatefulSetError::Revision)?
                    {
                        Created::Done(r) => break *r,
                        Created::Collision if tries < MAX_COLLISIONS => {
                            tries += 1;
                            collisions = Some(collisions.unwrap_or(0) + 1);
                        }
                        Created::Collision => return Err(StatefulSetError::Collisions(tries)),
                    }
                }
            }
        };
        let current = status
            .current_revision
            .as_deref()
            .and_then(|n| {
                revisions
                    .iter()
                    .find(|r| r.metadata.name.as_deref() == Some(n))
            })
            .map(|r| (**r).clone())
            .unwrap_or_else(|| update.clone());
        Ok((current, update, collisions))
    }

    async fn act(
        &self,
        set: &StatefulSet,
        actions: &[Action],
        views: &[(PodView, Arc<Pod>)],
        current: &ControllerRevision,
        update: &ControllerRevision,
        update_name: &str,
    ) -> Result<(), StatefulSetError> {
        let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        for action in actions {
            match action {
                Action::Create { ordinal, revision } => {
                    let from = if revision == update_name {
                        update
                    } else {
                        current
                    };
                    let template = history::template_of(from)
                        .or_else(|| set.spec.as_ref().map(|s| s.template.clone()))
                        .unwrap_or_default();
                    self.create_claims(set, *ordinal).await?;
                    let pod = identity::new_pod(set, &template, *ordinal, revision);
                    let pod_name = pod.metadata.name.clone().unwrap_or_default();
                    match pods.create(&PostParams::default(), &pod).await {
                        Ok(_) => {
                            self.event(
                                set,
                                "Normal",
                                "SuccessfulCreate",
                                format!(
                                    "create Pod {pod_name} in StatefulSet {set_name} successful"
                                ),
                            )
                            .await;
                        }
                        // The cache is behind: the pod is there (or going).
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => {
                            self.event(
                                set,
                                "Warning",
                                "FailedCreate",
                                format!("create Pod {pod_name} in StatefulSet {set_name} failed error: {e}"),
                            )
                            .await;
                            return Err(StatefulSetError::CreatePod(e));
                        }
                    }
                }
                Action::Condemn { name, ordinal } => {
                    if retention(set).1
                        && let Some((_, pod)) = views.iter().find(|(v, _)| &v.name == name)
                    {
                        self.give_claims_to_pod(set, *ordinal, pod).await?;
                    }
                    self.delete_pod(set, &pods, name).await?;
                }
                Action::Replace { name } | Action::Update { name } => {
                    self.delete_pod(set, &pods, name).await?;
                }
            }
        }
        Ok(())
    }

    async fn delete_pod(
        &self,
        set: &StatefulSet,
        pods: &Api<Pod>,
        name: &str,
    ) -> Result<(), StatefulSetError> {
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        match pods.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(StatefulSetError::DeletePod(e)),
        }
        self.event(
            set,
            "Normal",
            "SuccessfulDelete",
            format!("delete Pod {name} in StatefulSet {set_name} successful"),
        )
        .await;
        Ok(())
    }

    /// Puts back the identity labels of pods that lack them (adopted or
    /// edited pods), as upstream's identity check does.
    async fn repair_identity(&self, views: &[(PodView, Arc<Pod>)]) -> Result<(), StatefulSetError> {
        for (view, pod) in views {
            if view.terminating {
                continue;
            }
            let Some(labels) = identity::missing_labels(pod, view.ordinal) else {
                continue;
            };
            let api: Api<Pod> = Api::namespaced(
                self.client.clone(),
                pod.metadata.namespace.as_deref().unwrap_or_default(),
            );
            let patch = serde_json::json!({"metadata": {"labels": labels}});
            match api
                .patch(&view.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(StatefulSetError::Identity(e)),
            }
        }
        Ok(())
    }

    /// Creates the claims of `ordinal` that do not exist yet.
    async fn create_claims(&self, set: &StatefulSet, ordinal: i32) -> Result<(), StatefulSetError> {
        let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), namespace);
        let with_set = retention(set).0;
        for mut claim in identity::claims(set, ordinal) {
            let claim_name = claim.metadata.name.clone().unwrap_or_default();
            if self.claims.get(namespace, &claim_name).is_some() {
                continue;
            }
            if with_set {
                claim.metadata.owner_references = Some(vec![identity::plain_owner(
                    "apps/v1",
                    "StatefulSet",
                    set_name,
                    set.metadata.uid.as_deref().unwrap_or_default(),
                )]);
            }
            match api.create(&PostParams::default(), &claim).await {
                Ok(_) => {
                    self.event(
                        set,
                        "Normal",
                        "SuccessfulCreate",
                        format!(
                            "create Claim {claim_name} Pod {set_name}-{ordinal} in StatefulSet {set_name} success"
                        ),
                    )
                    .await;
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(StatefulSetError::Claim(e)),
            }
        }
        Ok(())
    }

    /// Makes the set an owner of the claims of its replicas when
    /// `whenDeleted: Delete`, and drops that ownership otherwise.
    async fn reconcile_claim_owners(
        &self,
        set: &StatefulSet,
        inputs: &Inputs,
    ) -> Result<(), StatefulSetError> {
        let uid = set.metadata.uid.as_deref().unwrap_or_default();
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        let with_set = retention(set).0;
        for ordinal in inputs.start..inputs.start + inputs.replicas.max(0) {
            for wanted in identity::claims(set, ordinal) {
                let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
                let claim_name = wanted.metadata.name.as_deref().unwrap_or_default();
                let Some(claim) = self.claims.get(namespace, claim_name) else {
                    continue;
                };
                let refs = claim.metadata.owner_references.clone().unwrap_or_default();
                let has = refs.iter().any(|r| r.uid == uid);
                if has == with_set {
                    continue;
                }
                let mut updated = (*claim).clone();
                let mut refs: Vec<_> = refs.into_iter().filter(|r| r.uid != uid).collect();
                if with_set {
                    refs.push(identity::plain_owner(
                        "apps/v1",
                        "StatefulSet",
                        set_name,
                        uid,
                    ));
                }
                updated.metadata.owner_references = Some(refs);
                self.replace_claim(&updated).await?;
            }
        }
        Ok(())
    }

    /// Before a condemned pod goes under `whenScaled: Delete`, its claims
    /// get it as an owner so the garbage collector removes them after it.
    async fn give_claims_to_pod(
        &self,
        set: &StatefulSet,
        ordinal: i32,
        pod: &Pod,
    ) -> Result<(), StatefulSetError> {
        let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
        let (Some(pod_name), Some(pod_uid)) = (&pod.metadata.name, &pod.metadata.uid) else {
            return Ok(());
        };
        for wanted in identity::claims(set, ordinal) {
            let claim_name = wanted.metadata.name.as_deref().unwrap_or_default();
            let Some(claim) = self.claims.get(namespace, claim_name) else {
                continue;
            };
            let mut refs = claim.metadata.owner_references.clone().unwrap_or_default();
            if refs.iter().any(|r| &r.uid == pod_uid) {
                continue;
            }
            refs.push(identity::plain_owner("v1", "Pod", pod_name, pod_uid));
            let mut updated = (*claim).clone();
            updated.metadata.owner_references = Some(refs);
            self.replace_claim(&updated).await?;
        }
        Ok(())
    }

    /// An update (upstream's role may update claims, not patch them).
    async fn replace_claim(&self, claim: &PersistentVolumeClaim) -> Result<(), StatefulSetError> {
        let api: Api<PersistentVolumeClaim> = Api::namespaced(
            self.client.clone(),
            claim.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = claim.metadata.name.as_deref().unwrap_or_default();
        match api.replace(name, &PostParams::default(), claim).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(StatefulSetError::Claim(e)),
        }
    }

    async fn update_status(
        &self,
        set: &StatefulSet,
        counts: plan::Counts,
        current: &str,
        update: &str,
        collisions: Option<i32>,
        rolling: bool,
    ) -> Result<(), StatefulSetError> {
        let old = set.status.clone().unwrap_or_default();
        let mut status = StatefulSetStatus {
            observed_generation: set.metadata.generation,
            replicas: counts.replicas,
            ready_replicas: Some(counts.ready),
            available_replicas: Some(counts.available),
            current_replicas: Some(counts.current),
            updated_replicas: Some(counts.updated),
            current_revision: Some(current.to_string()),
            update_revision: Some(update.to_string()),
            collision_count: collisions.or(old.collision_count),
            conditions: old.conditions.clone(),
        };
        // Upstream's completeRollingUpdate.
        if rolling && counts.updated == counts.replicas && counts.ready == counts.replicas {
            status.current_replicas = Some(counts.updated);
            status.current_revision = Some(update.to_string());
        }
        if status == old {
            return Ok(());
        }
        let mut updated = set.clone();
        updated.status = Some(status);
        let api: Api<StatefulSet> = Api::namespaced(
            self.client.clone(),
            set.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = set.metadata.name.as_deref().unwrap_or_default();
        match api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(StatefulSetError::Status(e)),
        }
    }

    async fn event(&self, set: &StatefulSet, type_: &str, reason: &str, message: String) {
        let object = crate::events::reference("apps/v1", "StatefulSet", &set.metadata);
        crate::events::record(&self.client, COMPONENT, object, type_, reason, message).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn max_unavailable_rounds_percentages_up_and_is_at_least_one() {
        assert_eq!(max_unavailable(&IntOrString::Int(2), 5), 2);
        assert_eq!(max_unavailable(&IntOrString::Int(0), 5), 1);
        assert_eq!(max_unavailable(&IntOrString::String("50%".into()), 5), 3);
        assert_eq!(max_unavailable(&IntOrString::String("10%".into()), 3), 1);
    }
}
