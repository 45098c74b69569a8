//! The Deployment controller: one ReplicaSet per pod template (named
//! `<deployment>-<pod-template-hash>`), rolled from old to new by the
//! RollingUpdate (maxSurge / maxUnavailable) or Recreate strategy, with
//! `deployment.kubernetes.io/revision` annotations, history cleanup past
//! `revisionHistoryLimit`, and upstream's status and conditions.
//!
//! The arithmetic of a rollout lives in `deployment/rollout.rs`.

pub mod rollout;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use super::{Shared, controller_of, owner_reference};
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};
use rollout::{Plan, RsState};

const COMPONENT: &str = "deployment-controller";
/// The annotation carrying a revision number.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The label telling a ReplicaSet's pods apart by template.
pub const HASH_LABEL: &str = "pod-template-hash";

/// Why a sync failed (the Deployment is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("writing a ReplicaSet: {0}")]
    ReplicaSet(kube::Error),
    #[error("updating the deployment: {0}")]
    Deployment(kube::Error),
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

struct Controller {
    client: Client,
    deployments: Shared<Deployment>,
    replicasets: Shared<ReplicaSet>,
    queue: WorkQueue,
}

/// Starts the controller on the shared informers.
pub fn start(client: Client, deployments: Shared<Deployment>, replicasets: Shared<ReplicaSet>) {
    let c = Arc::new(Controller {
        client,
        deployments,
        replicasets,
        queue: WorkQueue::new(),
    });
    tokio::spawn(c.clone().watch());
    tokio::spawn(async move {
        let worker = c.clone();
        c.queue
            .process("deployment", |key| {
                let c = worker.clone();
                async move { c.sync(&key).await }
            })
            .await;
    });
}

fn key_of(meta: &ObjectMeta) -> String {
    workqueue::key(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

fn revision(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

impl Controller {
    async fn watch(self: Arc<Self>) {
        let mut deployments = self.deployments.subscribe();
        let mut replicasets = self.replicasets.subscribe();
        loop {
            tokio::select! {
                change = deployments.next() => match change {
                    Some(Change::Applied(d) | Change::Deleted(d)) => self.queue.add(key_of(&d.metadata)),
                    Some(Change::Resync) => self.enqueue_all(),
                    None => return,
                },
                change = replicasets.next() => match change {
                    Some(Change::Applied(rs) | Change::Deleted(rs)) => {
                        if let Some(owner) = controller_of(rs.metadata.owner_references.as_ref())
                            && owner.kind == "Deployment"
                        {
                            let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
                            self.queue.add(workqueue::key(ns, &owner.name));
                        }
                    }
                    Some(Change::Resync) => self.enqueue_all(),
                    None => return,
                },
            }
        }
    }

    fn enqueue_all(&self) {
        for d in self.deployments.store().state() {
            self.queue.add(key_of(&d.metadata));
        }
    }

    async fn sync(&self, key: &str) -> Result<(), DeploymentError> {
        let (namespace, name) = workqueue::split(key);
        let found = self.deployments.get(namespace, name);
        let Some(d) = found else { return Ok(()) };
        let (Some(spec), Some(uid)) = (d.spec.as_ref(), d.metadata.uid.as_deref()) else {
            return Ok(());
        };
        if d.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let owned: Vec<Arc<ReplicaSet>> = self
            .replicasets
            .store()
            .state()
            .into_iter()
            .filter(|rs| rs.metadata.namespace.as_deref() == Some(namespace))
            .filter(|rs| {
                controller_of(rs.metadata.owner_references.as_ref()).is_some_and(|o| o.uid == uid)
            })
            .collect();
        let template = serde_json::to_value(&spec.template)?;
        let hash =
            rollout::template_hash(&template, d.status.as_ref().and_then(|s| s.collision_count));
        let rs_api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), namespace);
        let max_old_revision = owned
            .iter()
            .filter(|rs| !rollout::has_hash(rs, &hash))
            .map(|rs| revision(&rs.metadata))
            .max()
            .unwrap_or(0);
        let mut new_rs = owned
            .iter()
            .find(|rs| rollout::has_hash(rs, &hash))
            .cloned();
        let olds: Vec<Arc<ReplicaSet>> = owned
            .iter()
            .filter(|rs| !rollout::has_hash(rs, &hash))
            .cloned()
            .collect();
        let replicas = spec.replicas.unwrap_or(1);
        let paused = spec.paused.unwrap_or(false);
        let (max_surge, max_unavailable) = rollout::surge_and_unavailable(spec, replicas);
        let old_states: Vec<RsState> = olds.iter().map(|rs| RsState::of(rs)).collect();

        if new_rs.is_none() && !paused {
            let initial = rollout::initial_replicas(spec, replicas, max_surge, &old_states);
            new_rs = Some(
                self.create_rs(&rs_api, &d, &hash, initial, max_old_revision + 1, max_surge)
                    .await?,
            );
        }
        let Some(new_rs) = new_rs else {
            return self.update_status(&d, None, &owned, max_unavailable).await;
        };
        let new_name = new_rs.metadata.name.clone().unwrap_or_default();
        let new_revision = if revision(&new_rs.metadata) <= max_old_revision {
            max_old_revision + 1
        } else {
            revision(&new_rs.metadata)
        };
        if revision(&new_rs.metadata) != new_revision {
            let patch = json!({"metadata": {"annotations": {REVISION: new_revision.to_string()}}});
            rs_api
                .patch(&new_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(DeploymentError::ReplicaSet)?;
        }
        // An update, not a patch: upstream's deployment-controller role
        // may update deployments but not patch them.
        let d = if revision(&d.metadata) != new_revision {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
            let mut updated = (*d).clone();
            updated
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(REVISION.to_string(), new_revision.to_string());
            Arc::new(
                api.replace(name, &PostParams::default(), &updated)
                    .await
                    .map_err(DeploymentError::Deployment)?,
            )
        } else {
            Arc::clone(&d)
        };

        let mut all_states = vec![RsState::of(&new_rs)];
        all_states.extend(old_states.iter().copied());
        if rollout::is_scaling_event(replicas, &all_states) {
            let status_replicas = d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let sizes = rollout::proportional(replicas, max_surge, status_replicas, &all_states);
            let plan = Plan {
                new_replicas: sizes[0],
                old_replicas: sizes[1..].to_vec(),
            };
            self.apply(&rs_api, &d, &new_rs, &olds, &plan, replicas, max_surge)
                .await?;
            return self
                .update_status(&d, Some(&new_rs), &owned, max_unavailable)
                .await;
        }
        if !paused {
            let plan = rollout::plan(
                spec,
                replicas,
                max_surge,
                max_unavailable,
                &RsState::of(&new_rs),
                &old_states,
            );
            self.apply(&rs_api, &d, &new_rs, &olds, &plan, replicas, max_surge)
                .await?;
            self.cleanup(&rs_api, spec.revision_history_limit.unwrap_or(10), &olds)
                .await;
        }
        self.update_status(&d, Some(&new_rs), &owned, max_unavailable)
            .await
    }

    async fn create_rs(
        &self,
        api: &Api<ReplicaSet>,
        d: &Deployment,
        hash: &str,
        replicas: i32,
        revision: i64,
        max_surge: i32,
    ) -> Result<Arc<ReplicaSet>, DeploymentError> {
        let name = format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or_default());
        let spec = d.spec.clone().unwrap_or_default();
        let mut template = spec.template.clone();
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.labels
            .get_or_insert_with(Default::default)
            .insert(HASH_LABEL.into(), hash.into());
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(HASH_LABEL.into(), hash.into());
        let want = spec.replicas.unwrap_or(1);
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: d.metadata.namespace.clone(),
                labels: meta.labels.clone(),
                annotations: Some(
                    [
                        (REVISION.to_string(), revision.to_string()),
                        (DESIRED.to_string(), want.to_string()),
                        (MAX_REPLICAS.to_string(), (want + max_surge).to_string()),
                    ]
                    .into(),
                ),
                owner_references: Some(vec![owner_reference(
                    "apps/v1",
                    "Deployment",
                    d.metadata.name.as_deref().unwrap_or_default(),
                    d.metadata.uid.as_deref().unwrap_or_default(),
                )]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let created = match api.create(&PostParams::default(), &rs).await {
            Ok(rs) => rs,
            Err(kube::Error::Api(e)) if e.code == 409 => {
                api.get(&name).await.map_err(DeploymentError::ReplicaSet)?
            }
            Err(e) => return Err(DeploymentError::ReplicaSet(e)),
        };
        if replicas > 0 {
            self.scaled_event(d, &name, 0, replicas).await;
        }
        Ok(Arc::new(created))
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        api: &Api<ReplicaSet>,
        d: &Deployment,
        new_rs: &ReplicaSet,
        olds: &[Arc<ReplicaSet>],
        plan: &Plan,
        replicas: i32,
        max_surge: i32,
    ) -> Result<(), DeploymentError> {
        let mut targets: Vec<(&ReplicaSet, i32)> = vec![(new_rs, plan.new_replicas)];
        for (rs, n) in olds.iter().zip(&plan.old_replicas) {
            targets.push((rs, *n));
        }
        for (rs, target) in targets {
            let current = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            let state = RsState::of(rs);
            let active = current > 0 || target > 0;
            if current == target && (!active || state.desired == Some(replicas)) {
                continue;
            }
            let name = rs.metadata.name.clone().unwrap_or_default();
            let patch = json!({
                "metadata": {"annotations": {DESIRED: replicas.to_string(), MAX_REPLICAS: (replicas + max_surge).to_string()}},
                "spec": {"replicas": target},
            });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(DeploymentError::ReplicaSet)?;
            if current != target {
                self.scaled_event(d, &name, current, target).await;
            }
        }
        Ok(())
    }

    async fn scaled_event(&self, d: &Deployment, rs: &str, from: i32, to: i32) {
        let direction = if to > from { "up" } else { "down" };
        let object = crate::events::reference("apps/v1", "Deployment", &d.metadata);
        let message = format!("Scaled {direction} replica set {rs} from {from} to {to}");
        crate::events::record(
            &self.client,
            COMPONENT,
            object,
            "Normal",
            "ScalingReplicaSet",
            message,
        )
        .await;
    }

    /// Deletes the oldest fully scaled-down old ReplicaSets beyond the limit.
    async fn cleanup(&self, api: &Api<ReplicaSet>, limit: i32, olds: &[Arc<ReplicaSet>]) {
        let mut idle: Vec<&Arc<ReplicaSet>> = olds
            .iter()
            .filter(|rs| {
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0) == 0
                    && rs.status.as_ref().is_none_or(|s| s.replicas == 0)
                    && rs.metadata.deletion_timestamp.is_none()
            })
            .collect();
        let excess = idle.len().saturating_sub(limit.max(0) as usize);
        idle.sort_by_key(|rs| revision(&rs.metadata));
        for rs in idle.into_iter().take(excess) {
            let name = rs.metadata.name.clone().unwrap_or_default();
            if let Err(e) = api.delete(&name, &DeleteParams::background()).await {
                tracing::debug!(replicaset = %name, error = %e, "deleting an old ReplicaSet failed");
            }
        }
    }

    async fn update_status(
        &self,
        d: &Deployment,
        new_rs: Option<&ReplicaSet>,
        all: &[Arc<ReplicaSet>],
        max_unavailable: i32,
    ) -> Result<(), DeploymentError> {
        let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let status = rollout::status(d, new_rs, all, desired, max_unavailable);
        if let Some(limit) = d.spec.as_ref().and_then(|s| s.progress_deadline_seconds)
            && new_rs.is_some()
            && !rollout::is_settled(&status)
        {
            // Look again when the deadline may have passed.
            let delay = std::time::Duration::from_secs(u64::try_from(limit).unwrap_or(0) + 1);
            self.queue.add_after(key_of(&d.metadata), delay);
        }
        if rollout::same_status(d.status.as_ref(), &status) {
            return Ok(());
        }
        let api: Api<Deployment> = Api::namespaced(
            self.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or_default(),
        );
        // A status update (not a patch), as upstream's controller role allows.
        let mut updated = d.clone();
        updated.status = Some(status);
        match api
            .replace_status(
                d.metadata.name.as_deref().unwrap_or_default(),
                &PostParams::default(),
                &updated,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(DeploymentError::Deployment(e)),
        }
    }
}
