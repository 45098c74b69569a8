//! What the Endpoints and EndpointSlice controllers share: which pods back a
//! Service, whether a pod counts as ready, how a Service port's targetPort
//! resolves on one pod, and the Service/Pod watches that queue Services.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::Shared;
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};

/// The annotation both controllers stamp with the time of the change.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// The label upstream puts on the endpoints of a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

/// The workqueue key of an object.
pub fn key_of<K: kube::Resource>(o: &K) -> String {
    workqueue::key(
        o.meta().namespace.as_deref().unwrap_or_default(),
        o.meta().name.as_deref().unwrap_or_default(),
    )
}

/// Whether the Service's pods are chosen by the controllers (it has a
/// selector; a Service without one has user-managed endpoints).
pub fn has_selector(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| s.selector.is_some())
}

/// Whether the Service is headless (`clusterIP: None`).
pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// The pods of `svc`'s namespace its selector selects.
pub fn selected_pods(svc: &Service, pods: &Shared<Pod>) -> Vec<Arc<Pod>> {
    let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Vec::new();
    };
    let namespace = svc.metadata.namespace.as_deref();
    let mut found: Vec<Arc<Pod>> = pods
        .store()
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == namespace)
        .filter(|p| {
            let labels = p.metadata.labels.as_ref();
            selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        })
        .collect();
    found.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    found
}

/// The pod's IP, if it has one.
pub fn pod_ip(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.as_deref())
        .filter(|ip| !ip.is_empty())
}

/// Upstream's `ShouldPodBeInEndpoints`: a pod with an IP that has not
/// finished (for a restart policy that lets it finish), and, unless
/// terminating pods are wanted, is not being deleted.
pub fn should_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if pod_ip(pod).is_none() {
        return false;
    }
    if !include_terminating && pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let restart = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref());
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    match restart {
        Some("Never") => !matches!(phase, Some("Succeeded" | "Failed")),
        Some("OnFailure") => phase != Some("Succeeded"),
        _ => true,
    }
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Upstream's `FindPort`: the pod's port for a Service port (a named
/// targetPort looks the name up among the pod's container ports of the
/// same protocol).
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match port.target_port.as_ref() {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The hostname a pod has within a headless Service, if it asked for one.
pub fn hostname_in(pod: &Pod, svc: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let hostname = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref()
        && pod.metadata.namespace == svc.metadata.namespace)
        .then(|| hostname.to_string())
}

/// Now, as upstream formats the trigger-time annotation (RFC 3339, UTC).
pub fn now_rfc3339() -> String {
    Timestamp::now().to_string()
}

/// Queues a Service key on every Service change, and every Service of a
/// pod's namespace on a pod change (a pod whose labels changed may have
/// left a Service that no longer selects it).
pub fn watch(services: Shared<Service>, pods: Shared<Pod>, queue: Arc<WorkQueue>) {
    let (svc_feed, q) = (services.clone(), queue.clone());
    tokio::spawn(async move {
        let mut changes = svc_feed.subscribe();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(s) | Change::Deleted(s) => q.add(key_of(s.as_ref())),
                Change::Resync => enqueue_all(&svc_feed, &q, None),
            }
        }
    });
    tokio::spawn(async move {
        let mut changes = pods.subscribe();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(p) | Change::Deleted(p) => {
                    enqueue_all(&services, &queue, p.metadata.namespace.as_deref())
                }
                Change::Resync => enqueue_all(&services, &queue, None),
            }
        }
    });
}

fn enqueue_all(services: &Shared<Service>, queue: &WorkQueue, namespace: Option<&str>) {
    for svc in services.store().state() {
        if has_selector(&svc)
            && namespace.is_none_or(|ns| svc.metadata.namespace.as_deref() == Some(ns))
        {
            queue.add(key_of(svc.as_ref()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let p = pod(json!({"metadata": {"name": "a"}, "spec": {"containers": [
            {"name": "c", "ports": [{"name": "http", "containerPort": 8080}, {"name": "dns", "containerPort": 53, "protocol": "UDP"}]}
        ]}}));
        let sp = |target: serde_json::Value, protocol: &str| -> ServicePort {
            serde_json::from_value(json!({"port": 80, "targetPort": target, "protocol": protocol}))
                .expect("port")
        };
        assert_eq!(find_port(&p, &sp(json!("http"), "TCP")), Some(8080));
        assert_eq!(find_port(&p, &sp(json!("dns"), "UDP")), Some(53));
        assert_eq!(find_port(&p, &sp(json!("dns"), "TCP")), None);
        assert_eq!(find_port(&p, &sp(json!("nope"), "TCP")), None);
        assert_eq!(find_port(&p, &sp(json!(9000), "TCP")), Some(9000));
    }

    #[test]
    fn which_pods_count() {
        let running = pod(
            json!({"metadata": {"name": "a"}, "status": {"podIP": "10.42.0.5", "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert!(should_be_in_endpoints(&running, false) && is_ready(&running));
        let no_ip = pod(json!({"metadata": {"name": "b"}, "status": {"phase": "Pending"}}));
        assert!(!should_be_in_endpoints(&no_ip, true));
        let done = pod(
            json!({"metadata": {"name": "c"}, "spec": {"restartPolicy": "Never", "containers": []},
            "status": {"podIP": "10.42.0.6", "phase": "Succeeded"}}),
        );
        assert!(!should_be_in_endpoints(&done, true));
        let going = pod(
            json!({"metadata": {"name": "d", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"podIP": "10.42.0.7", "phase": "Running"}}),
        );
        assert!(!should_be_in_endpoints(&going, false));
        assert!(should_be_in_endpoints(&going, true));
        assert!(!is_ready(&going));
    }
}
