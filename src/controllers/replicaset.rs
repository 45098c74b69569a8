//! The ReplicaSet controller, which is also the ReplicationController
//! controller (upstream's ReplicationManager is the ReplicaSet controller
//! over converted objects; here both kinds implement [`Replicated`]): keeps
//! `spec.replicas` pods matching each object's selector, adopting orphans
//! that match, creating pods from the template (`<name>-<5 random chars>`,
//! via generateName) and deleting the least useful ones first (unscheduled,
//! then pending, then not ready, then the newest), and reports counts in
//! `/status`.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    Pod, PodTemplateSpec, ReplicationController, ReplicationControllerStatus,
};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::expectations::Expectations;
use super::{Shared, controller_of, owner_reference, selects};
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};

/// Why a sync failed (the object is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaSetError {
    #[error("creating a pod: {0}")]
    Create(kube::Error),
    #[error("deleting a pod: {0}")]
    Delete(kube::Error),
    #[error("adopting a pod: {0}")]
    Adopt(kube::Error),
    #[error("updating the status: {0}")]
    Status(kube::Error),
}

/// The counts a replicated object reports in its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub fully_labeled: i32,
    pub ready: i32,
    pub available: i32,
    pub observed_generation: Option<i64>,
}

/// A kind this controller keeps replicas of: ReplicaSet or
/// ReplicationController.
pub trait Replicated:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The controller's name in events and its work queue.
    const COMPONENT: &'static str;
    /// Whether the object's selector selects these labels (an empty
    /// selector selects nothing).
    fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool;
    /// `spec.replicas` (1 when unset).
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn template(&self) -> Option<PodTemplateSpec>;
    /// What the status reports now.
    fn counts(&self) -> Counts;
    /// A copy whose status reports `counts` (other status fields kept).
    fn with_counts(&self, counts: Counts) -> Self;
}

/// The methods both kinds share: their spec and status have the same
/// fields, in types of their own.
macro_rules! same_shape_methods {
    ($status:ident) => {
        fn replicas(&self) -> i32 {
            self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        }

        fn min_ready_seconds(&self) -> i32 {
            self.spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
        }

        fn template(&self) -> Option<PodTemplateSpec> {
            self.spec.as_ref().and_then(|s| s.template.clone())
        }

        fn counts(&self) -> Counts {
            let s = self.status.clone().unwrap_or_default();
            Counts {
                replicas: s.replicas,
                fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
                ready: s.ready_replicas.unwrap_or(0),
                available: s.available_replicas.unwrap_or(0),
                observed_generation: s.observed_generation,
            }
        }

        fn with_counts(&self, c: Counts) -> Self {
            let mut updated = self.clone();
            updated.status = Some($status {
                replicas: c.replicas,
                fully_labeled_replicas: Some(c.fully_labeled),
                ready_replicas: Some(c.ready),
                available_replicas: Some(c.available),
                observed_generation: c.observed_generation,
                ..self.status.clone().unwrap_or_default()
            });
            updated
        }
    };
}

impl Replicated for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";

    fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.spec
            .as_ref()
            .is_some_and(|s| selects(&s.selector, labels))
    }

    same_shape_methods!(ReplicaSetStatus);
}

impl Replicated for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";

    /// A ReplicationController's selector is a plain map, all of whose
    /// pairs must be present (the API defaults it to the template's labels).
    fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let Some(selector) = self.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            return false;
        };
        !selector.is_empty()
            && labels.is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
    }

    same_shape_methods!(ReplicationControllerStatus);
}

struct Controller<K: Replicated> {
    client: Client,
    owners: Shared<K>,
    pods: Shared<Pod>,
    queue: WorkQueue,
    expectations: Expectations,
}

/// Starts the controller of kind `K` on the shared informers.
pub fn start<K: Replicated>(client: Client, owners: Shared<K>, pods: Shared<Pod>) {
    let c = Arc::new(Controller {
        client,
        owners,
        pods,
        queue: WorkQueue::new(),
        expectations: Expectations::default(),
    });
    tokio::spawn(c.clone().watch_owners());
    tokio::spawn(c.clone().watch_pods());
    tokio::spawn(async move {
        let worker = c.clone();
        c.queue
            .process(K::COMPONENT, |key| {
                let c = worker.clone();
                async move { c.sync(&key).await }
            })
            .await;
    });
}

fn key_of<K: kube::Resource>(o: &K) -> String {
    workqueue::key(
        o.meta().namespace.as_deref().unwrap_or_default(),
        o.meta().name.as_deref().unwrap_or_default(),
    )
}

fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
}

/// When the pod became Ready, if it is.
fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(c.last_transition_time.as_ref().map(|t| t.0))
}

/// Whether a ready pod has been ready for `min_ready` seconds.
pub fn is_available(pod: &Pod, min_ready: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready <= 0 => true,
        Some(None) => false,
        Some(Some(t)) => now.as_second() - t.as_second() >= i64::from(min_ready),
    }
}

/// Upstream's deletion preference: a lower rank is deleted first.
fn deletion_rank(pod: &Pod) -> (bool, u8, bool, std::cmp::Reverse<Option<Timestamp>>) {
    let assigned = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let phase = match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        _ => 2,
    };
    let ready = ready_since(pod).is_some();
    let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
    (assigned, phase, ready, std::cmp::Reverse(created))
}

/// The pods to delete to go down by `count`, in upstream's order.
pub fn pods_to_delete(mut pods: Vec<Arc<Pod>>, count: usize) -> Vec<Arc<Pod>> {
    pods.sort_by_key(|p| deletion_rank(p));
    pods.truncate(count);
    pods
}

impl<K: Replicated> Controller<K> {
    async fn watch_owners(self: Arc<Self>) {
        let mut changes = self.owners.subscribe();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(rs) | Change::Deleted(rs) => self.queue.add(key_of(rs.as_ref())),
                Change::Resync => self.enqueue_all(),
            }
        }
    }

    async fn watch_pods(self: Arc<Self>) {
        let mut changes = self.pods.subscribe();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(pod) | Change::Deleted(pod) => self.enqueue_for_pod(&pod),
                Change::Resync => self.enqueue_all(),
            }
        }
    }

    fn enqueue_all(&self) {
        for rs in self.owners.store().state() {
            self.queue.add(key_of(rs.as_ref()));
        }
    }

    fn enqueue_for_pod(&self, pod: &Pod) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
        match controller_of(pod.metadata.owner_references.as_ref()) {
            Some(owner) if owner.kind == K::kind(&()) => {
                self.queue.add(workqueue::key(namespace, &owner.name));
            }
            Some(_) => {}
            None => {
                for rs in self.owners.store().state() {
                    if rs.meta().namespace.as_deref() == Some(namespace)
                        && rs.selects(pod.metadata.labels.as_ref())
                    {
                        self.queue.add(key_of(rs.as_ref()));
                    }
                }
            }
        }
    }

    async fn sync(&self, key: &str) -> Result<(), ReplicaSetError> {
        let (namespace, name) = workqueue::split(key);
        let found = self.owners.get(namespace, name);
        let Some(rs) = found else {
            self.expectations.forget(key);
            return Ok(());
        };
        let Some(uid) = rs.meta().uid.as_deref() else {
            return Ok(());
        };
        let pods_api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let all_pods: Vec<Arc<Pod>> = self
            .pods
            .store()
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .collect();
        let mut owned = Vec::new();
        for pod in &all_pods {
            match controller_of(pod.metadata.owner_references.as_ref()) {
                Some(o) if o.uid == uid => owned.push(pod.clone()),
                None if rs.meta().deletion_timestamp.is_none()
                    && pod.metadata.deletion_timestamp.is_none()
                    && rs.selects(pod.metadata.labels.as_ref()) =>
                {
                    self.adopt(&pods_api, pod, &rs, uid).await?;
                    owned.push(pod.clone());
                }
                _ => {}
            }
        }
        let active: Vec<Arc<Pod>> = owned.iter().filter(|p| is_active(p)).cloned().collect();
        let present = |n: &str| {
            all_pods
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(n) && is_active(p))
        };
        if rs.meta().deletion_timestamp.is_none() && self.expectations.satisfied(key, present) {
            self.manage(key, &rs, &pods_api, &active).await?;
        }
        self.update_status(&rs, &active).await
    }

    async fn adopt(
        &self,
        api: &Api<Pod>,
        pod: &Pod,
        rs: &K,
        uid: &str,
    ) -> Result<(), ReplicaSetError> {
        let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
        refs.push(owner_reference(
            &K::api_version(&()),
            &K::kind(&()),
            rs.meta().name.as_deref().unwrap_or_default(),
            uid,
        ));
        let patch = json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid}});
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(ReplicaSetError::Adopt)
    }

    async fn manage(
        &self,
        key: &str,
        rs: &K,
        api: &Api<Pod>,
        active: &[Arc<Pod>],
    ) -> Result<(), ReplicaSetError> {
        let want = rs.replicas().max(0) as usize;
        let rs_name = rs.meta().name.clone().unwrap_or_default();
        let rs_ref = crate::events::reference(&K::api_version(&()), &K::kind(&()), rs.meta());
        if active.len() < want {
            let template = rs.template().unwrap_or_default();
            let uid = rs.meta().uid.clone().unwrap_or_default();
            let mut meta = template.metadata.unwrap_or_default();
            meta.generate_name = Some(format!("{rs_name}-"));
            meta.owner_references = Some(vec![owner_reference(
                &K::api_version(&()),
                &K::kind(&()),
                &rs_name,
                &uid,
            )]);
            let pod = Pod {
                metadata: meta,
                spec: template.spec,
                status: None,
            };
            let params = PostParams::default();
            let creates = futures::future::join_all(
                (0..want - active.len()).map(|_| api.create(&params, &pod)),
            )
            .await;
            let mut names = HashSet::new();
            let mut failure = None;
            for result in creates {
                match result {
                    Ok(p) => {
                        let n = p.metadata.name.unwrap_or_default();
                        crate::events::record(
                            &self.client,
                            K::COMPONENT,
                            rs_ref.clone(),
                            "Normal",
                            "SuccessfulCreate",
                            format!("Created pod: {n}"),
                        )
                        .await;
                        names.insert(n);
                    }
                    Err(e) => failure = Some(e),
                }
            }
            self.expectations.expect(key, names, HashSet::new());
            if let Some(e) = failure {
                return Err(ReplicaSetError::Create(e));
            }
        } else if active.len() > want {
            let victims = pods_to_delete(active.to_vec(), active.len() - want);
            let mut names = HashSet::new();
            for pod in victims {
                let n = pod.metadata.name.clone().unwrap_or_default();
                match api.delete(&n, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        self.expectations.expect(key, HashSet::new(), names);
                        return Err(ReplicaSetError::Delete(e));
                    }
                }
                crate::events::record(
                    &self.client,
                    K::COMPONENT,
                    rs_ref.clone(),
                    "Normal",
                    "SuccessfulDelete",
                    format!("Deleted pod: {n}"),
                )
                .await;
                names.insert(n);
            }
            self.expectations.expect(key, HashSet::new(), names);
        }
        Ok(())
    }

    async fn update_status(&self, rs: &K, active: &[Arc<Pod>]) -> Result<(), ReplicaSetError> {
        let min_ready = rs.min_ready_seconds();
        let template_labels = rs
            .template()
            .and_then(|t| t.metadata)
            .and_then(|m| m.labels)
            .unwrap_or_default();
        let now = Timestamp::now();
        let count = |f: &dyn Fn(&Pod) -> bool| active.iter().filter(|p| f(p)).count() as i32;
        let replicas = active.len() as i32;
        let fully_labeled = count(&|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        });
        let ready = count(&|p| ready_since(p).is_some());
        let available = count(&|p| is_available(p, min_ready, now));
        let counts = Counts {
            replicas,
            fully_labeled,
            ready,
            available,
            observed_generation: rs.meta().generation,
        };
        if rs.counts() == counts {
            return Ok(());
        }
        // A status update (not a patch), as upstream's controller role allows.
        let updated = rs.with_counts(counts);
        let api: Api<K> = Api::namespaced(
            self.client.clone(),
            rs.meta().namespace.as_deref().unwrap_or_default(),
        );
        let name = rs.meta().name.as_deref().unwrap_or_default();
        match api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(ReplicaSetError::Status(e)),
        }
        if ready > available && min_ready > 0 {
            self.queue
                .add_after(key_of(rs), Duration::from_secs(min_ready as u64));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool, created: i64) -> Arc<Pod> {
        let conditions = if ready {
            json!([{"type": "Ready", "status": "True"}])
        } else {
            json!([])
        };
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "creationTimestamp": Timestamp::from_second(created).expect("ts").to_string()},
                "spec": {"containers": [], "nodeName": node},
                "status": {"phase": phase, "conditions": conditions},
            }))
            .expect("pod"),
        )
    }

    #[test]
    fn deletes_unscheduled_then_pending_then_not_ready_then_newest() {
        let pods = vec![
            pod("old-ready", Some("n"), "Running", true, 100),
            pod("new-ready", Some("n"), "Running", true, 200),
            pod("not-ready", Some("n"), "Running", false, 50),
            pod("pending", Some("n"), "Pending", false, 10),
            pod("unscheduled", None, "Pending", false, 10),
        ];
        let order: Vec<String> = pods_to_delete(pods, 5)
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        assert_eq!(
            order,
            [
                "unscheduled",
                "pending",
                "not-ready",
                "new-ready",
                "old-ready"
            ]
        );
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let mut p = (*pod("p", Some("n"), "Running", true, 0)).clone();
        assert!(is_available(&p, 0, Timestamp::now()));
        if let Some(c) = p
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|c| c.first_mut())
        {
            c.last_transition_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::from_second(1000).expect("ts"),
            ));
        }
        assert!(!is_available(
            &p,
            10,
            Timestamp::from_second(1005).expect("ts")
        ));
        assert!(is_available(
            &p,
            10,
            Timestamp::from_second(1010).expect("ts")
        ));
    }
}
