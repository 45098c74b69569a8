//! The disruption controller, as upstream's: keeps every
//! PodDisruptionBudget's status current so that the eviction subresource
//! can decide.
//!
//! For a budget it counts the pods its selector selects in its namespace
//! (`{}` selects all of them; no selector, none): `currentHealthy` is the
//! ready pods not being deleted and not recently evicted; `desiredHealthy`
//! and `expectedPods` come from `minAvailable` (an integer: itself, and the
//! pods found) or from the scale of the pods' controllers (`maxUnavailable`,
//! or `minAvailable` as a percentage, rounded up): a Deployment's replicas
//! for its ReplicaSets' pods, else the controller's `scale` subresource
//! (ReplicaSets, StatefulSets, ReplicationControllers, custom kinds with
//! scale). `disruptionsAllowed = currentHealthy - desiredHealthy` (never
//! below 0, and 0 without expected pods), with the `DisruptionAllowed`
//! condition (`SufficientPods` / `InsufficientPods`, or `SyncFailed` when a
//! controller cannot be found). Evictions the API recorded under
//! `disruptedPods` are kept until the pod is seen deleted or two minutes
//! pass. The status is written only when it changes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::{Value, json};

use super::service_pods::is_ready;
use super::{Shared, controller_of};
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};

/// How long an eviction the API recorded may wait for its pod's deletion to
/// show before the pod counts again (upstream's `DeletionTimeout`).
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

struct Controller {
    client: Client,
    pdbs: Shared<PodDisruptionBudget>,
    pods: Shared<Pod>,
    replicasets: Shared<ReplicaSet>,
    deployments: Shared<Deployment>,
    queue: Arc<WorkQueue>,
}

/// Starts the controller on the shared informers.
pub fn start(
    client: Client,
    pdbs: Shared<PodDisruptionBudget>,
    pods: Shared<Pod>,
    replicasets: Shared<ReplicaSet>,
    deployments: Shared<Deployment>,
) {
    let queue = Arc::new(WorkQueue::new());
    let c = Arc::new(Controller {
        client,
        pdbs,
        pods,
        replicasets,
        deployments,
        queue: queue.clone(),
    });
    tokio::spawn(watch_budgets(c.clone()));
    tokio::spawn(watch_pods(c.clone()));
    tokio::spawn(async move {
        queue
            .process("poddisruptionbudget", |key| {
                let c = c.clone();
                async move { c.sync(&key).await }
            })
            .await;
    });
}

fn key_of(pdb: &PodDisruptionBudget) -> String {
    workqueue::key(
        pdb.metadata.namespace.as_deref().unwrap_or_default(),
        pdb.metadata.name.as_deref().unwrap_or_default(),
    )
}

async fn watch_budgets(c: Arc<Controller>) {
    let mut changes = c.pdbs.subscribe();
    while let Some(change) = changes.next().await {
        match change {
            Change::Applied(pdb) => c.queue.add(key_of(&pdb)),
            Change::Deleted(pdb) => c.queue.forget(&key_of(&pdb)),
            Change::Resync => {
                for pdb in c.pdbs.store().state() {
                    c.queue.add(key_of(&pdb));
                }
            }
        }
    }
}

/// A pod change concerns the budgets of its namespace (its labels may have
/// changed, so all of them, which are few).
async fn watch_pods(c: Arc<Controller>) {
    let mut changes = c.pods.subscribe();
    while let Some(change) = changes.next().await {
        let namespace = match &change {
            Change::Applied(pod) | Change::Deleted(pod) => pod.metadata.namespace.clone(),
            Change::Resync => None,
        };
        for pdb in c.pdbs.store().state() {
            if namespace.is_none() || pdb.metadata.namespace == namespace {
                c.queue.add(key_of(&pdb));
            }
        }
    }
}

/// Whether the budget's selector selects the pod: an empty selector
/// selects every pod of the namespace, a missing one none.
fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let Ok(sel) = serde_json::to_value(selector) else {
        return false;
    };
    let labels = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| serde_json::to_value(l).ok());
    crate::api::kinds::labelselector::matches(&sel, labels.as_ref())
}

/// An int-or-percent applied to `total`, rounded up.
fn scaled(value: &IntOrString, total: i32) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            Ok(((percent * i64::from(total) + 99) / 100) as i32)
        }
    }
}

/// What a budget's status should say.
#[derive(Debug, PartialEq)]
struct Counts {
    current_healthy: i32,
    desired_healthy: i32,
    expected_pods: i32,
    disruptions_allowed: i32,
    disrupted: BTreeMap<String, String>,
}

/// `disruptedPods` entries still pending: the pod is there, not yet being
/// deleted, and evicted less than [`DELETION_TIMEOUT`] ago. Also when the
/// next entry expires.
fn pending_disruptions(
    recorded: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>>,
    pods: &[Arc<Pod>],
    now: Timestamp,
) -> (BTreeMap<String, String>, Option<Duration>) {
    let mut kept = BTreeMap::new();
    let mut recheck: Option<Duration> = None;
    for (name, at) in recorded.into_iter().flatten() {
        let Some(pod) = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))
        else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let age = now.as_second() - at.0.as_second();
        let timeout = DELETION_TIMEOUT.as_secs() as i64;
        if age >= timeout {
            tracing::info!(pod = %name, "an eviction did not delete its pod in time; counting it again");
            continue;
        }
        let left = Duration::from_secs((timeout - age) as u64);
        recheck = Some(recheck.map_or(left, |r| r.min(left)));
        kept.insert(name.clone(), at.0.to_string());
    }
    (kept, recheck)
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<(), kube::Error> {
        let (namespace, name) = workqueue::split(key);
        let Some(pdb) = self.pdbs.get(namespace, name) else {
            return Ok(());
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .store()
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace) && selects(&pdb, p))
            .collect();
        let now = Timestamp::now();
        let recorded = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref());
        let (disrupted, recheck) = pending_disruptions(recorded, &pods, now);
        if let Some(after) = recheck {
            self.queue.add_after(key.to_string(), after);
        }
        let status = match self.expected(&pdb, &pods).await {
            Ok((expected_pods, desired_healthy)) => {
                let current_healthy = pods
                    .iter()
                    .filter(|p| {
                        p.metadata.deletion_timestamp.is_none()
                            && !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or(""))
                            && is_ready(p)
                    })
                    .count() as i32;
                let mut allowed = current_healthy - desired_healthy;
                if expected_pods <= 0 || allowed < 0 {
                    allowed = 0;
                }
                let counts = Counts {
                    current_healthy,
                    desired_healthy,
                    expected_pods,
                    disruptions_allowed: allowed,
                    disrupted,
                };
                let reason = if allowed > 0 {
                    "SufficientPods"
                } else {
                    "InsufficientPods"
                };
                status_of(&pdb, &counts, reason, "")
            }
            Err(why) => {
                tracing::info!(pdb = %key, error = %why, "the budget's status cannot be computed");
                let counts = Counts {
                    current_healthy: 0,
                    desired_healthy: 0,
                    expected_pods: 0,
                    disruptions_allowed: 0,
                    disrupted,
                };
                status_of(&pdb, &counts, "SyncFailed", &why)
            }
        };
        let before = serde_json::to_value(&pdb.status).unwrap_or(Value::Null);
        if same_status(&before, &status) {
            return Ok(());
        }
        let mut next = (*pdb).clone();
        next.status = serde_json::from_value(status).ok();
        let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), namespace);
        match api
            .replace_status(name, &PostParams::default(), &next)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `(expectedPods, desiredHealthy)`, or why they cannot be known.
    async fn expected(
        &self,
        pdb: &PodDisruptionBudget,
        pods: &[Arc<Pod>],
    ) -> Result<(i32, i32), String> {
        let spec = pdb.spec.clone().unwrap_or_default();
        if let Some(max_unavailable) = &spec.max_unavailable {
            let expected = self.expected_scale(pods).await?;
            let unavailable = scaled(max_unavailable, expected)?;
            return Ok((expected, (expected - unavailable).max(0)));
        }
        match &spec.min_available {
            Some(IntOrString::Int(n)) => Ok((pods.len() as i32, *n)),
            Some(percent) => {
                let expected = self.expected_scale(pods).await?;
                Ok((expected, scaled(percent, expected)?))
            }
            None => Ok((0, 0)),
        }
    }

    /// The summed scale of the pods' controllers, each counted once. Pods
    /// without a controller do not count (upstream warns about them).
    async fn expected_scale(&self, pods: &[Arc<Pod>]) -> Result<i32, String> {
        let mut seen = HashSet::new();
        let mut total = 0;
        for pod in pods {
            let Some(owner) = controller_of(pod.metadata.owner_references.as_ref()) else {
                continue;
            };
            let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
            let Some((uid, replicas)) = self.controller_scale(namespace, owner).await else {
                return Err(format!(
                    "found no controllers for pod {:?}",
                    pod.metadata.name.as_deref().unwrap_or_default()
                ));
            };
            if seen.insert(uid) {
                total += replicas;
            }
        }
        Ok(total)
    }

    /// The controller a pod's owner reference names, by uid, with its
    /// desired replicas: a ReplicaSet's Deployment when it has one.
    async fn controller_scale(
        &self,
        namespace: &str,
        owner: &OwnerReference,
    ) -> Option<(String, i32)> {
        if owner.kind == "ReplicaSet" && owner.api_version == "apps/v1" {
            let rs = self
                .replicasets
                .get(namespace, &owner.name)
                .filter(|rs| rs.metadata.uid.as_deref() == Some(owner.uid.as_str()))?;
            if let Some(d_ref) = controller_of(rs.metadata.owner_references.as_ref())
                .filter(|r| r.kind == "Deployment" && r.api_version == "apps/v1")
            {
                let d = self
                    .deployments
                    .get(namespace, &d_ref.name)
                    .filter(|d| d.metadata.uid.as_deref() == Some(d_ref.uid.as_str()))?;
                let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                return Some((d_ref.uid.clone(), replicas));
            }
            let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            return Some((owner.uid.clone(), replicas));
        }
        self.scale_subresource(namespace, owner).await
    }

    /// Any other controller: its `scale` subresource, if its kind has one.
    async fn scale_subresource(
        &self,
        namespace: &str,
        owner: &OwnerReference,
    ) -> Option<(String, i32)> {
        let (group, version) = match owner.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", owner.api_version.as_str()),
        };
        let kind = crate::api::registry::kinds_in(group, version).find(|k| {
            k.kind == owner.kind
                && k.namespaced
                && k.subresources
                    .contains(&crate::api::registry::Subresource::Scale)
        })?;
        let base = crate::api::openapi::gv_path(group, version);
        let path = format!(
            "/{base}/namespaces/{namespace}/{}/{}/scale",
            kind.plural, owner.name
        );
        let request = http::Request::get(path).body(Vec::new()).ok()?;
        let scale: Value = self.client.request(request).await.ok()?;
        let uid = scale["metadata"]["uid"].as_str()?;
        if uid != owner.uid {
            return None;
        }
        let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
        Some((uid.to_string(), replicas as i32))
    }
}

/// The status a budget should have (as JSON).
fn status_of(pdb: &PodDisruptionBudget, counts: &Counts, reason: &str, message: &str) -> Value {
    let status = if counts.disruptions_allowed > 0 {
        "True"
    } else {
        "False"
    };
    let generation = pdb.metadata.generation.unwrap_or(0);
    let previous = pdb
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionAllowed"));
    let since = match previous {
        Some(p) if p.status == status => p.last_transition_time.0.to_string(),
        _ => Timestamp::now().to_string(),
    };
    let since = since
        .parse::<Timestamp>()
        .ok()
        .and_then(|t| Timestamp::from_second(t.as_second()).ok())
        .map_or(since, |t| t.to_string());
    json!({
        "observedGeneration": generation,
        "disruptedPods": counts.disrupted,
        "disruptionsAllowed": counts.disruptions_allowed,
        "currentHealthy": counts.current_healthy,
        "desiredHealthy": counts.desired_healthy,
        "expectedPods": counts.expected_pods,
        "conditions": [{
            "type": "DisruptionAllowed",
            "status": status,
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": since,
        }],
    })
}

/// Whether two statuses say the same (an empty `disruptedPods` equals none;
/// times compared to the second).
fn same_status(before: &Value, after: &Value) -> bool {
    let normal = |v: &Value| {
        let mut v = v.clone();
        if v.get("disruptedPods")
            .is_some_and(|d| d.as_object().is_none_or(|m| m.is_empty()))
        {
            if let Some(m) = v.as_object_mut() {
                m.remove("disruptedPods");
            }
        }
        let times = |v: &mut Value| {
            if let Some(map) = v.get_mut("disruptedPods").and_then(Value::as_object_mut) {
                for t in map.values_mut() {
                    if let Some(ts) = t.as_str().and_then(|s| s.parse::<Timestamp>().ok()) {
                        *t = json!(ts.as_second());
                    }
                }
            }
            if let Some(list) = v.get_mut("conditions").and_then(Value::as_array_mut) {
                for c in list {
                    if let Some(ts) = c["lastTransitionTime"]
                        .as_str()
                        .and_then(|s| s.parse::<Timestamp>().ok())
                    {
                        c["lastTransitionTime"] = json!(ts.as_second());
                    }
                }
            }
        };
        times(&mut v);
        v
    };
    normal(before) == normal(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&IntOrString::String("50%".into()), 3), Ok(2));
        assert_eq!(scaled(&IntOrString::String("10%".into()), 10), Ok(1));
        assert_eq!(scaled(&IntOrString::Int(2), 10), Ok(2));
        assert!(scaled(&IntOrString::String("half".into()), 10).is_err());
    }

    #[test]
    fn empty_selectors_select_all_and_missing_ones_none() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"app": "web"}}}))
        .expect("pod");
        let pdb = |selector: Value| -> PodDisruptionBudget {
            serde_json::from_value(json!({"metadata": {"name": "b"}, "spec": selector}))
                .expect("pdb")
        };
        assert!(selects(&pdb(json!({"selector": {}})), &pod));
        assert!(selects(
            &pdb(json!({"selector": {"matchLabels": {"app": "web"}}})),
            &pod
        ));
        assert!(!selects(
            &pdb(json!({"selector": {"matchLabels": {"app": "db"}}})),
            &pod
        ));
        assert!(!selects(&pdb(json!({})), &pod));
    }

    #[test]
    fn recorded_evictions_expire_or_end_with_the_pod() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().expect("ts");
        let pod = |name: &str, deleting: bool| -> Arc<Pod> {
            let mut meta = json!({"name": name});
            if deleting {
                meta["deletionTimestamp"] = json!("2026-01-01T00:09:59Z");
            }
            Arc::new(serde_json::from_value(json!({"metadata": meta})).expect("pod"))
        };
        let at =
            |s: &str| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(s.parse().expect("ts"));
        let recorded: BTreeMap<_, _> = [
            ("fresh".to_string(), at("2026-01-01T00:09:30Z")),
            ("old".to_string(), at("2026-01-01T00:07:00Z")),
            ("going".to_string(), at("2026-01-01T00:09:30Z")),
            ("gone".to_string(), at("2026-01-01T00:09:30Z")),
        ]
        .into_iter()
        .collect();
        let pods = vec![pod("fresh", false), pod("old", false), pod("going", true)];
        let (kept, recheck) = pending_disruptions(Some(&recorded), &pods, now);
        assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["fresh"]);
        assert_eq!(recheck, Some(Duration::from_secs(90)));
    }
}
