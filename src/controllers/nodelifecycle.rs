//! The node lifecycle controller: a node whose kubelet stops renewing its
//! Lease (and posting status) for the grace period (`--node-monitor-grace-period`,
//! 40 s by default) has its conditions set to Unknown and gets the
//! `node.kubernetes.io/unreachable` taints (`not-ready` for a node that
//! reports Ready=False); its pods are marked not ready, and pods that do not
//! tolerate a NoExecute taint are evicted once their `tolerationSeconds`
//! run out (300 s by default, from the DefaultTolerationSeconds admission).
//! As upstream, it acts as `system:serviceaccount:kube-system:node-controller`.
//!
//! Heartbeats are judged by when this controller *saw* them change, not by
//! the timestamps they carry, so clock skew between nodes does not matter;
//! after a restart every node gets a full grace period again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use super::Shared;

/// The taint keys this controller manages.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// The conditions that turn Unknown with Ready.
const CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What the controller last saw of a node's heartbeat.
struct Seen {
    /// The Lease renewTime and Ready heartbeat, as last observed.
    beat: (Option<String>, Option<String>),
    /// When this controller saw `beat` change.
    at: Instant,
}

struct Controller {
    client: Client,
    nodes: Shared<Node>,
    pods: Shared<Pod>,
    leases: Shared<Lease>,
    grace: Duration,
    seen: Mutex<HashMap<String, Seen>>,
}

/// Starts the controller; it looks at every node every `grace / 8`
/// (between 1 and 5 seconds, as upstream's `--node-monitor-period`).
pub fn start(
    client: Client,
    nodes: Shared<Node>,
    pods: Shared<Pod>,
    leases: Shared<Lease>,
    grace: Duration,
) {
    let c = Arc::new(Controller {
        client,
        nodes,
        pods,
        leases,
        grace,
        seen: Mutex::new(HashMap::new()),
    });
    let period = (grace / 8).clamp(Duration::from_secs(1), Duration::from_secs(5));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            c.monitor().await;
        }
    });
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

fn now() -> Time {
    Time(Timestamp::now())
}

/// The taints a node should carry for its Ready status, of those this
/// controller manages.
fn wanted_taints(ready: Option<&str>) -> Vec<(&'static str, &'static str)> {
    // A node that has not reported yet is left alone until its grace
    // period runs out (then it is Unknown).
    let key = match ready {
        Some("False") => NOT_READY,
        Some("Unknown") => UNREACHABLE,
        _ => return Vec::new(),
    };
    vec![(key, "NoSchedule"), (key, "NoExecute")]
}

/// The node's taints with the managed ones made to match `wanted`; `None`
/// when nothing changes.
fn retaint(node: &Node, wanted: &[(&str, &str)]) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let managed = |t: &Taint| {
        (t.key == UNREACHABLE || t.key == NOT_READY)
            && (t.effect == "NoSchedule" || t.effect == "NoExecute")
    };
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !managed(t) || wanted.contains(&(t.key.as_str(), t.effect.as_str())))
        .cloned()
        .collect();
    for (key, effect) in wanted {
        if !out.iter().any(|t| t.key == *key && t.effect == *effect) {
            out.push(Taint {
                key: (*key).to_string(),
                effect: (*effect).to_string(),
                time_added: (*effect == "NoExecute").then(now),
                value: None,
            });
        }
    }
    (out != current).then_some(out)
}

/// When a pod must leave a node with these NoExecute taints: `None` if it
/// tolerates them all forever, else the instant (possibly already past).
pub fn eviction_time(pod: &Pod, taints: &[Taint]) -> Option<Timestamp> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut deadline: Option<Timestamp> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let added = taint
            .time_added
            .as_ref()
            .map_or_else(Timestamp::now, |t| t.0);
        let tolerating = tolerations.iter().filter(|tol| {
            let key_ok = match tol.key.as_deref() {
                None | Some("") => tol.operator.as_deref() == Some("Exists"),
                Some(k) => k == taint.key,
            };
            let value_ok = tol.operator.as_deref() == Some("Exists")
                || tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("");
            let effect_ok = matches!(tol.effect.as_deref(), None | Some("") | Some("NoExecute"));
            key_ok && value_ok && effect_ok
        });
        // The shortest toleration that matches decides; none: now.
        let mut seconds: Option<Option<i64>> = None;
        for tol in tolerating {
            seconds = Some(match (seconds, tol.toleration_seconds) {
                (None, s) => s,
                (Some(None), s) => s,
                (Some(Some(a)), Some(b)) => Some(a.min(b)),
                (Some(Some(a)), None) => Some(a),
            });
        }
        let when = match seconds {
            None => Some(added),
            Some(None) => None,
            Some(Some(s)) => added
                .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(s.max(0)))
                .ok(),
        };
        if let Some(w) = when {
            deadline = Some(deadline.map_or(w, |d| d.min(w)));
        }
    }
    deadline
}

impl Controller {
    fn heartbeat(&self, node: &Node) -> (Option<String>, Option<String>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let lease = self
            .leases
            .get("kube-node-lease", &name)
            .and_then(|l| l.spec.clone())
            .and_then(|s| s.renew_time)
            .map(|t| t.0.to_string());
        let ready = ready_condition(node)
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0.to_string());
        (lease, ready)
    }

    /// Whether the node's heartbeat is older than the grace period.
    fn stale(&self, node: &Node) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let beat = self.heartbeat(node);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let entry = seen.entry(name).or_insert_with(|| Seen {
            beat: beat.clone(),
            at: Instant::now(),
        });
        if entry.beat != beat {
            entry.beat = beat;
            entry.at = Instant::now();
        }
        entry.at.elapsed() > self.grace
    }

    async fn monitor(&self) {
        let nodes = self.nodes.store().state();
        {
            let names: Vec<String> = nodes
                .iter()
                .filter_map(|n| n.metadata.name.clone())
                .collect();
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.retain(|k, _| names.contains(k));
        }
        for node in nodes {
            if let Err(e) = self.sync(&node).await {
                tracing::debug!(node = ?node.metadata.name, error = %e, "node lifecycle: will retry");
            }
        }
    }

    async fn sync(&self, node: &Node) -> Result<(), kube::Error> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let api: Api<Node> = Api::all(self.client.clone());
        let mut ready = ready_condition(node).map(|c| c.status.clone());
        if self.stale(node) && ready.as_deref() != Some("Unknown") {
            let mut updated = node.clone();
            let never = ready.is_none();
            let status = updated.status.get_or_insert_with(Default::default);
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            let stamp = now();
            for kind in CONDITIONS {
                let message = if never {
                    "Kubelet never posted node status."
                } else {
                    "Kubelet stopped posting node status."
                };
                match conditions.iter_mut().find(|c| c.type_ == kind) {
                    Some(c) => {
                        if c.status != "Unknown" {
                            c.last_transition_time = Some(stamp.clone());
                        }
                        c.status = "Unknown".into();
                        c.reason = Some("NodeStatusUnknown".into());
                        c.message = Some(message.into());
                    }
                    None => conditions.push(NodeCondition {
                        type_: kind.into(),
                        status: "Unknown".into(),
                        reason: Some("NodeStatusUnknown".into()),
                        message: Some(message.into()),
                        last_transition_time: Some(stamp.clone()),
                        last_heartbeat_time: None,
                    }),
                }
            }
            api.replace_status(&name, &PostParams::default(), &updated)
                .await?;
            tracing::info!(node = %name, "node stopped posting status: Ready is Unknown");
            ready = Some("Unknown".into());
            self.mark_pods_not_ready(&name).await;
        }
        if let Some(taints) = retaint(node, &wanted_taints(ready.as_deref())) {
            let mut updated = node.clone();
            updated.spec.get_or_insert_with(Default::default).taints =
                (!taints.is_empty()).then_some(taints);
            api.replace(&name, &PostParams::default(), &updated).await?;
            return Ok(());
        }
        self.evict(node).await;
        Ok(())
    }

    fn pods_on(&self, node: &str) -> Vec<Arc<Pod>> {
        self.pods
            .store()
            .state()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .collect()
    }

    async fn mark_pods_not_ready(&self, node: &str) {
        for pod in self.pods_on(node) {
            let Some(ns) = pod.metadata.namespace.clone() else {
                continue;
            };
            let Some(name) = pod.metadata.name.clone() else {
                continue;
            };
            let mut updated = (*pod).clone();
            let Some(conditions) = updated.status.as_mut().and_then(|s| s.conditions.as_mut())
            else {
                continue;
            };
            let mut changed = false;
            for c in conditions
                .iter_mut()
                .filter(|c| c.type_ == "Ready" && c.status != "False")
            {
                *c = PodCondition {
                    status: "False".into(),
                    last_transition_time: Some(now()),
                    ..c.clone()
                };
                changed = true;
            }
            if !changed {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            if let Err(e) = api
                .replace_status(&name, &PostParams::default(), &updated)
                .await
            {
                tracing::debug!(pod = %name, error = %e, "marking a pod not ready");
            }
        }
    }

    /// Deletes the pods whose tolerations of the node's NoExecute taints
    /// have run out.
    async fn evict(&self, node: &Node) {
        let taints: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.effect == "NoExecute")
            .collect();
        if taints.is_empty() {
            return;
        }
        let node_name = node.metadata.name.clone().unwrap_or_default();
        let now = Timestamp::now();
        for pod in self.pods_on(&node_name) {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(when) = eviction_time(&pod, &taints) else {
                continue;
            };
            if when > now {
                continue;
            }
            let (Some(ns), Some(name)) =
                (pod.metadata.namespace.clone(), pod.metadata.name.clone())
            else {
                continue;
            };
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    tracing::info!(pod = %name, namespace = %ns, node = %node_name, "evicted from a node with NoExecute taints")
                }
                Err(e) => tracing::debug!(pod = %name, error = %e, "evicting a pod"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, Toleration};

    fn taint(key: &str, seconds_ago: i64) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            time_added: Some(Time(
                Timestamp::now()
                    .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(seconds_ago))
                    .expect("time"),
            )),
            value: None,
        }
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn tolerate(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            toleration_seconds: seconds,
            value: None,
        }
    }

    #[test]
    fn eviction_follows_toleration_seconds() {
        let taints = [taint(UNREACHABLE, 10)];
        let now = Timestamp::now();
        // No toleration: at once.
        assert!(eviction_time(&pod(vec![]), &taints).is_some_and(|t| t <= now));
        // Five seconds: already due. An hour: later. Forever: never.
        assert!(
            eviction_time(&pod(vec![tolerate(UNREACHABLE, Some(5))]), &taints)
                .is_some_and(|t| t <= now)
        );
        assert!(
            eviction_time(&pod(vec![tolerate(UNREACHABLE, Some(3600))]), &taints)
                .is_some_and(|t| t > now)
        );
        assert_eq!(
            eviction_time(&pod(vec![tolerate(UNREACHABLE, None)]), &taints),
            None
        );
        // Another key does not help.
        assert!(
            eviction_time(&pod(vec![tolerate(NOT_READY, None)]), &taints).is_some_and(|t| t <= now)
        );
    }

    #[test]
    fn taints_follow_readiness() {
        let node = Node::default();
        let unknown = retaint(&node, &wanted_taints(Some("Unknown"))).expect("taints added");
        assert_eq!(
            unknown
                .iter()
                .map(|t| (t.key.as_str(), t.effect.as_str()))
                .collect::<Vec<_>>(),
            [(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
        );
        let tainted = Node {
            spec: Some(k8s_openapi::api::core::v1::NodeSpec {
                taints: Some(unknown),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            retaint(&tainted, &wanted_taints(Some("True"))),
            Some(Vec::new())
        );
        assert_eq!(retaint(&tainted, &wanted_taints(Some("Unknown"))), None);
        assert_eq!(retaint(&node, &wanted_taints(None)), None);
    }
}
