//! The EndpointSlice controller: for every Service with a selector, the
//! `discovery.k8s.io/v1` EndpointSlices listing the selected pods (each with
//! its ready/serving/terminating conditions, node and pod reference),
//! grouped by the ports they resolve to and at most 100 a slice, labelled
//! `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by:
//! endpointslice-controller.k8s.io`, and owned by the Service, so the
//! garbage collector removes them with it. A Service no pod backs keeps one
//! empty placeholder slice, as upstream's.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use super::service_pods::{
    self, HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME, find_port, hostname_in, is_headless, is_ready,
    pod_ip, selected_pods, should_be_in_endpoints,
};
use super::{Shared, owner_reference};
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Upstream's `--max-endpoints-per-slice` default.
const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Why a sync failed (the Service is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum EndpointSliceError {
    #[error("writing an endpointslice: {0}")]
    Write(kube::Error),
}

struct Controller {
    client: Client,
    services: Shared<Service>,
    pods: Shared<Pod>,
    slices: Shared<EndpointSlice>,
    queue: Arc<WorkQueue>,
    /// What the last sync of each Service wrote, so that a sync never works
    /// from an informer that has not seen it yet (a slice created a moment
    /// ago would be created twice): slice name → resourceVersion written,
    /// or `None` for one deleted.
    written: Mutex<HashMap<String, Written>>,
}

/// The slices one sync wrote, and when.
struct Written {
    at: Instant,
    slices: Vec<(String, Option<u64>)>,
}

/// How long a sync waits for the informer to see its writes before it
/// goes ahead anyway (someone else may have deleted a slice since).
const CATCH_UP: Duration = Duration::from_secs(5);

/// Starts the controller on the shared informers.
pub fn start(
    client: Client,
    services: Shared<Service>,
    pods: Shared<Pod>,
    slices: Shared<EndpointSlice>,
) {
    let queue = Arc::new(WorkQueue::new());
    service_pods::watch(services.clone(), pods.clone(), queue.clone());
    let c = Arc::new(Controller {
        client,
        services,
        pods,
        slices,
        queue: queue.clone(),
        written: Mutex::default(),
    });
    tokio::spawn(c.clone().watch_slices());
    tokio::spawn(async move {
        queue
            .process("service", |key| {
                let c = c.clone();
                async move { c.sync(&key).await }
            })
            .await;
    });
}

/// The address family of the Service's slices.
fn address_type(svc: &Service) -> String {
    svc.spec
        .as_ref()
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first().cloned())
        .unwrap_or_else(|| "IPv4".into())
}

/// One slice's worth: its ports and endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    pub ports: Option<Vec<EndpointPort>>,
    pub endpoints: Vec<Endpoint>,
}

/// The slices the Service's pods make (one empty placeholder when none).
pub fn desired_slices(svc: &Service, pods: &[Arc<Pod>]) -> Vec<Wanted> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses == Some(true);
    let ports = spec.ports.unwrap_or_default();
    let ipv6 = address_type(svc) == "IPv6";
    let mut groups: BTreeMap<Vec<(String, i32, String)>, Vec<Endpoint>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| should_be_in_endpoints(p, true)) {
        let Some(ip) = pod_ip(pod) else { continue };
        if ip.contains(':') != ipv6 {
            continue;
        }
        let mut resolved: Vec<(String, i32, String)> = ports
            .iter()
            .filter_map(|sp| {
                Some((
                    sp.name.clone().unwrap_or_default(),
                    find_port(pod, sp)?,
                    sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ))
            })
            .collect();
        if resolved.is_empty() && !ports.is_empty() {
            continue;
        }
        resolved.sort();
        let serving = is_ready(pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        groups.entry(resolved).or_default().push(Endpoint {
            addresses: vec![ip.to_string()],
            conditions: Some(EndpointConditions {
                ready: Some(publish || (serving && !terminating)),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: hostname_in(pod, svc),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(super::endpoints::target_ref(pod)),
            ..Default::default()
        });
    }
    let app_protocol = |name: &str| {
        ports
            .iter()
            .find(|p| p.name.as_deref().unwrap_or_default() == name)
            .and_then(|p| p.app_protocol.clone())
    };
    let mut wanted = Vec::new();
    for (resolved, mut endpoints) in groups {
        endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
        let slice_ports: Vec<EndpointPort> = resolved
            .into_iter()
            .map(|(name, port, protocol)| EndpointPort {
                app_protocol: app_protocol(&name),
                name: Some(name),
                port: Some(port),
                protocol: Some(protocol),
            })
            .collect();
        for chunk in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
            wanted.push(Wanted {
                ports: (!slice_ports.is_empty()).then(|| slice_ports.clone()),
                endpoints: chunk.to_vec(),
            });
        }
    }
    if wanted.is_empty() {
        wanted.push(Wanted {
            ports: None,
            endpoints: Vec::new(),
        });
    }
    wanted
}

/// The labels of the Service's slices.
pub fn desired_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.remove(HEADLESS_LABEL);
    labels.insert(
        SERVICE_NAME_LABEL.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

fn normalized_ports(p: &Option<Vec<EndpointPort>>) -> Vec<EndpointPort> {
    p.clone().unwrap_or_default()
}

impl Controller {
    /// Queues the Service of a managed slice that someone else changed or
    /// deleted, so the controller puts it right; a deletion the informer
    /// saw is no longer waited for.
    async fn watch_slices(self: Arc<Self>) {
        let mut changes = self.slices.subscribe();
        while let Some(change) = changes.next().await {
            let (slice, deleted) = match change {
                Change::Applied(s) => (s, false),
                Change::Deleted(s) => (s, true),
                Change::Resync => continue,
            };
            let labels = slice.metadata.labels.as_ref();
            let service = labels.and_then(|l| l.get(SERVICE_NAME_LABEL));
            let managed = labels
                .and_then(|l| l.get(MANAGED_BY_LABEL))
                .map(String::as_str);
            let (Some(service), Some(MANAGED_BY)) = (service, managed) else {
                continue;
            };
            let namespace = slice.metadata.namespace.as_deref().unwrap_or_default();
            let key = workqueue::key(namespace, service);
            if deleted {
                if let (Ok(mut w), Some(name)) = (self.written.lock(), slice.metadata.name.as_ref())
                {
                    if let Some(last) = w.get_mut(&key) {
                        last.slices.retain(|(n, _)| n != name);
                    }
                }
            }
            self.queue.add(key);
        }
    }

    async fn sync(&self, key: &str) -> Result<(), EndpointSliceError> {
        let (namespace, name) = workqueue::split(key);
        if !self.informer_caught_up(key, namespace) {
            self.queue
                .add_after(key.to_string(), Duration::from_millis(100));
            return Ok(());
        }
        let Some(svc) = self.services.get(namespace, name) else {
            // the garbage collector removes the slices the Service owned
            self.forget_written(key);
            return Ok(());
        };
        if !service_pods::has_selector(&svc) || svc.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Some(uid) = svc.metadata.uid.clone() else {
            return Ok(());
        };
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), namespace);
        let owner = owner_reference("v1", "Service", name, &uid);
        let labels = desired_labels(&svc);
        let address_type = address_type(&svc);
        let mut existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .store()
            .state()
            .into_iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(namespace))
            .filter(|s| {
                let l = s.metadata.labels.as_ref();
                l.and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .map(String::as_str)
                    == Some(name)
                    && l.and_then(|l| l.get(MANAGED_BY_LABEL)).map(String::as_str)
                        == Some(MANAGED_BY)
            })
            .collect();
        existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let wanted = desired_slices(&svc, &selected_pods(&svc, &self.pods));

        // Pair each wanted slice with an existing one: one with the same
        // ports first, then any left over; create the rest.
        let mut unused: Vec<Option<Arc<EndpointSlice>>> = existing.into_iter().map(Some).collect();
        let mut plan: Vec<(Option<Arc<EndpointSlice>>, Wanted)> = Vec::new();
        let mut rest = Vec::new();
        for w in wanted {
            let same = unused.iter_mut().find(|s| {
                s.as_ref().is_some_and(|s| {
                    normalized_ports(&s.ports) == normalized_ports(&w.ports)
                        && s.address_type == address_type
                })
            });
            match same.and_then(Option::take) {
                Some(s) => plan.push((Some(s), w)),
                None => rest.push(w),
            }
        }
        for w in rest {
            let reuse = unused
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|s| s.address_type == address_type))
                .and_then(Option::take);
            plan.push((reuse, w));
        }

        let mut written = Vec::new();
        for (current, w) in plan {
            let up_to_date = current.as_ref().is_some_and(|s| {
                s.endpoints == w.endpoints
                    && normalized_ports(&s.ports) == normalized_ports(&w.ports)
                    && s.metadata.labels.as_ref() == Some(&labels)
                    && s.metadata.owner_references.as_ref() == Some(&vec![owner.clone()])
            });
            if up_to_date {
                continue;
            }
            let mut slice = current.as_deref().cloned().unwrap_or_default();
            slice.metadata.namespace = Some(namespace.to_string());
            slice.metadata.labels = Some(labels.clone());
            slice.metadata.owner_references = Some(vec![owner.clone()]);
            slice
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(LAST_CHANGE_TRIGGER_TIME.into(), service_pods::now_rfc3339());
            slice.address_type = address_type.clone();
            slice.endpoints = w.endpoints;
            slice.ports = w.ports;
            let result = match slice.metadata.name.clone() {
                Some(slice_name) if current.is_some() => {
                    api.replace(&slice_name, &PostParams::default(), &slice)
                        .await
                }
                _ => {
                    let prefix: String = format!("{name}-").chars().take(58).collect();
                    slice.metadata.name = None;
                    slice.metadata.generate_name = Some(prefix);
                    slice.metadata.resource_version = None;
                    api.create(&PostParams::default(), &slice).await
                }
            };
            let stored = result.map_err(EndpointSliceError::Write)?;
            if let Some(stored_name) = stored.metadata.name.clone() {
                let rv = stored
                    .metadata
                    .resource_version
                    .as_deref()
                    .and_then(|v| v.parse().ok());
                written.push((stored_name, rv));
            }
        }
        for stale in unused.into_iter().flatten() {
            let Some(stale_name) = stale.metadata.name.as_deref() else {
                continue;
            };
            match api.delete(stale_name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(EndpointSliceError::Write(e)),
            }
            written.push((stale_name.to_string(), None));
        }
        if let Ok(mut w) = self.written.lock() {
            w.insert(
                key.to_string(),
                Written {
                    at: Instant::now(),
                    slices: written,
                },
            );
        }
        Ok(())
    }

    /// Whether the slice informer has seen every write of the Service's
    /// last sync.
    fn informer_caught_up(&self, key: &str, namespace: &str) -> bool {
        let Ok(written) = self.written.lock() else {
            return true;
        };
        let Some(last) = written.get(key).filter(|w| w.at.elapsed() < CATCH_UP) else {
            return true;
        };
        last.slices.iter().all(|(slice, rv)| {
            let seen = self.slices.get(namespace, slice);
            match rv {
                None => seen.is_none(),
                Some(rv) => seen.is_some_and(|s| {
                    s.metadata
                        .resource_version
                        .as_deref()
                        .and_then(|v| v.parse::<u64>().ok())
                        .is_some_and(|v| v >= *rv)
                }),
            }
        })
    }

    fn forget_written(&self, key: &str) {
        if let Ok(mut w) = self.written.lock() {
            w.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).expect("service")
    }

    fn pod(name: &str, ip: &str, ready: bool, deleting: bool) -> Arc<Pod> {
        let mut meta = json!({"name": name, "namespace": "default", "uid": format!("uid-{name}")});
        if deleting {
            meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": meta,
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
                "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
            }))
            .expect("pod"),
        )
    }

    fn web() -> Service {
        svc(
            json!({"metadata": {"name": "web", "namespace": "default", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ipFamilies": ["IPv4"], "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}),
        )
    }

    #[test]
    fn conditions_follow_readiness_and_termination() {
        let slices = desired_slices(
            &web(),
            &[
                pod("a", "10.42.0.5", true, false),
                pod("b", "10.42.0.6", false, false),
                pod("c", "10.42.0.7", true, true),
            ],
        );
        assert_eq!(slices.len(), 1);
        let cond = |i: usize| {
            slices[0].endpoints[i]
                .conditions
                .clone()
                .unwrap_or_default()
        };
        assert_eq!(
            (cond(0).ready, cond(0).serving, cond(0).terminating),
            (Some(true), Some(true), Some(false))
        );
        assert_eq!((cond(1).ready, cond(1).serving), (Some(false), Some(false)));
        assert_eq!(
            (cond(2).ready, cond(2).serving, cond(2).terminating),
            (Some(false), Some(true), Some(true))
        );
        let ports = slices[0].ports.clone().unwrap_or_default();
        assert_eq!(
            (ports[0].name.as_deref(), ports[0].port),
            (Some("web"), Some(8080))
        );
    }

    #[test]
    fn no_pods_make_a_placeholder_and_many_pods_are_split() {
        let empty = desired_slices(&web(), &[]);
        assert_eq!(
            empty,
            vec![Wanted {
                ports: None,
                endpoints: vec![]
            }]
        );
        let pods: Vec<Arc<Pod>> = (0..250)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.42.{}.{}", i / 200, i % 200 + 1),
                    true,
                    false,
                )
            })
            .collect();
        let slices = desired_slices(&web(), &pods);
        assert_eq!(
            slices.iter().map(|s| s.endpoints.len()).collect::<Vec<_>>(),
            [100, 100, 50]
        );
    }

    #[test]
    fn labels_name_the_service_and_the_manager() {
        let labels = desired_labels(&web());
        assert_eq!(
            labels.get(SERVICE_NAME_LABEL).map(String::as_str),
            Some("web")
        );
        assert_eq!(
            labels.get(MANAGED_BY_LABEL).map(String::as_str),
            Some(MANAGED_BY)
        );
        assert_eq!(labels.get("tier").map(String::as_str), Some("front"));
        assert!(!labels.contains_key(HEADLESS_LABEL));
    }
}
