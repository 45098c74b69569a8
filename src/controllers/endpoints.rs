//! The Endpoints controller: for every Service with a selector, an Endpoints
//! object of the same name listing the selected pods' IPs (ready ones under
//! `addresses`, the rest under `notReadyAddresses`, or all as ready with
//! `publishNotReadyAddresses`) with each Service port resolved on each pod,
//! pods with the same resolved ports grouped in one subset, as upstream's
//! `RepackSubsets` does. The Endpoints go when their Service goes; Services
//! without a selector (such as `kubernetes`, whose endpoints the API server
//! keeps) are left alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use super::Shared;
use super::service_pods::{
    self, HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME, find_port, hostname_in, is_headless, is_ready,
    pod_ip, selected_pods, should_be_in_endpoints,
};
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};

/// Why a sync failed (the Service is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum EndpointsError {
    #[error("writing endpoints: {0}")]
    Write(kube::Error),
}

struct Controller {
    client: Client,
    services: Shared<Service>,
    pods: Shared<Pod>,
    endpoints: Shared<Endpoints>,
}

/// Starts the controller on the shared informers.
pub fn start(
    client: Client,
    services: Shared<Service>,
    pods: Shared<Pod>,
    endpoints: Shared<Endpoints>,
) {
    let queue = Arc::new(WorkQueue::new());
    service_pods::watch(services.clone(), pods.clone(), queue.clone());
    tokio::spawn(watch_endpoints(endpoints.clone(), queue.clone()));
    let c = Arc::new(Controller {
        client,
        services,
        pods,
        endpoints,
    });
    tokio::spawn(async move {
        queue
            .process("service", |key| {
                let c = c.clone();
                async move { c.sync(&key).await }
            })
            .await;
    });
}

/// Queues deleted Endpoints (recreated if their Service still selects
/// pods) and, on every (re)list, all of them, so Endpoints whose Service
/// went while the server was down are removed, as upstream's
/// `checkLeftoverEndpoints` does.
async fn watch_endpoints(endpoints: Shared<Endpoints>, queue: Arc<WorkQueue>) {
    let mut changes = endpoints.subscribe();
    while let Some(change) = changes.next().await {
        match change {
            Change::Deleted(ep) => queue.add(service_pods::key_of(ep.as_ref())),
            Change::Applied(_) => {}
            Change::Resync => {
                for ep in endpoints.store().state() {
                    queue.add(service_pods::key_of(ep.as_ref()));
                }
            }
        }
    }
}

/// The pod reference an endpoint address carries.
pub fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// A pod's Service ports resolved: (name, port, protocol), sorted.
pub type ResolvedPorts = Vec<(String, i32, String)>;

/// The subsets the Service's pods make.
pub fn desired_subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses == Some(true);
    let ports = spec.ports.unwrap_or_default();
    // resolved port list → (ready, not ready)
    let mut groups: BTreeMap<ResolvedPorts, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
        BTreeMap::new();
    for pod in pods.iter().filter(|p| should_be_in_endpoints(p, publish)) {
        let Some(ip) = pod_ip(pod) else { continue };
        let mut resolved: Vec<(String, i32, String)> = ports
            .iter()
            .filter_map(|sp| {
                let port = find_port(pod, sp)?;
                Some((
                    sp.name.clone().unwrap_or_default(),
                    port,
                    sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ))
            })
            .collect();
        if resolved.is_empty() && !(ports.is_empty() && is_headless(svc)) {
            tracing::debug!(pod = ?pod.metadata.name, "no Service port resolves on the pod");
            continue;
        }
        resolved.sort();
        let address = EndpointAddress {
            ip: ip.to_string(),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            hostname: hostname_in(pod, svc),
            target_ref: Some(target_ref(pod)),
        };
        let entry = groups.entry(resolved).or_default();
        if publish || is_ready(pod) {
            entry.0.push(address);
        } else {
            entry.1.push(address);
        }
    }
    let app_protocol = |name: &str| {
        ports
            .iter()
            .find(|p| p.name.as_deref().unwrap_or_default() == name)
            .and_then(|p| p.app_protocol.clone())
    };
    groups
        .into_iter()
        .map(|(resolved, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            let ports: Vec<EndpointPort> = resolved
                .into_iter()
                .map(|(name, port, protocol)| EndpointPort {
                    app_protocol: app_protocol(&name),
                    name: (!name.is_empty()).then_some(name),
                    port,
                    protocol: Some(protocol),
                })
                .collect();
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect()
}

/// The labels the Endpoints of `svc` carry: the Service's, plus the
/// headless marker for a headless Service.
pub fn desired_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        labels.remove(HEADLESS_LABEL);
    }
    labels
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<(), EndpointsError> {
        let (namespace, name) = workqueue::split(key);
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), namespace);
        let Some(svc) = self.services.get(namespace, name) else {
            if self.endpoints.get(namespace, name).is_some() {
                return match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
                    Err(e) => Err(EndpointsError::Write(e)),
                };
            }
            return Ok(());
        };
        if !service_pods::has_selector(&svc) || svc.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let pods = selected_pods(&svc, &self.pods);
        let subsets = desired_subsets(&svc, &pods);
        let labels = desired_labels(&svc);
        let current = self.endpoints.get(namespace, name);
        if let Some(cur) = &current {
            let same_subsets = cur.subsets.clone().unwrap_or_default() == subsets;
            let same_labels = cur.metadata.labels.clone().unwrap_or_default() == labels;
            if same_subsets && same_labels {
                return Ok(());
            }
        }
        let mut ep = current.as_deref().cloned().unwrap_or_default();
        ep.metadata.name = Some(name.to_string());
        ep.metadata.namespace = Some(namespace.to_string());
        ep.metadata.labels = Some(labels);
        ep.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(LAST_CHANGE_TRIGGER_TIME.into(), service_pods::now_rfc3339());
        ep.subsets = Some(subsets);
        let result = if current.is_some() {
            api.replace(name, &PostParams::default(), &ep).await
        } else {
            ep.metadata.resource_version = None;
            api.create(&PostParams::default(), &ep).await
        };
        result.map(|_| ()).map_err(EndpointsError::Write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).expect("service")
    }

    fn pod(name: &str, ip: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
                "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .expect("pod"),
        )
    }

    #[test]
    fn ready_and_not_ready_pods_with_named_ports() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}));
        let subsets = desired_subsets(
            &s,
            &[pod("b", "10.42.0.6", false), pod("a", "10.42.0.5", true)],
        );
        assert_eq!(subsets.len(), 1);
        let ss = &subsets[0];
        let ips = |l: &Option<Vec<EndpointAddress>>| -> Vec<String> {
            l.iter().flatten().map(|a| a.ip.clone()).collect()
        };
        assert_eq!(ips(&ss.addresses), ["10.42.0.5"]);
        assert_eq!(ips(&ss.not_ready_addresses), ["10.42.0.6"]);
        let ports = ss.ports.clone().unwrap_or_default();
        assert_eq!(
            (ports[0].name.as_deref(), ports[0].port),
            (Some("web"), 8080)
        );
        let target = ss.addresses.as_ref().and_then(|a| a[0].target_ref.clone());
        assert_eq!(target.and_then(|t| t.name).as_deref(), Some("a"));

        let mut publish = s.clone();
        if let Some(spec) = publish.spec.as_mut() {
            spec.publish_not_ready_addresses = Some(true);
        }
        let subsets = desired_subsets(
            &publish,
            &[pod("b", "10.42.0.6", false), pod("a", "10.42.0.5", true)],
        );
        assert_eq!(ips(&subsets[0].addresses), ["10.42.0.5", "10.42.0.6"]);
        assert!(subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn a_pod_without_the_named_port_is_left_out_and_headless_needs_no_ports() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "grpc"}]}}));
        assert!(desired_subsets(&s, &[pod("a", "10.42.0.5", true)]).is_empty());
        let headless = svc(
            json!({"metadata": {"name": "web", "namespace": "default", "labels": {"x": "y"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "None"}}),
        );
        let subsets = desired_subsets(&headless, &[pod("a", "10.42.0.5", true)]);
        assert_eq!(subsets.len(), 1);
        assert!(subsets[0].ports.is_none());
        let labels = desired_labels(&headless);
        assert_eq!(labels.get(HEADLESS_LABEL).map(String::as_str), Some(""));
        assert_eq!(labels.get("x").map(String::as_str), Some("y"));
    }
}
