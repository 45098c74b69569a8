//! ServiceLB, k3s's built-in load balancer without its svclb pods: every
//! Service of type LoadBalancer (without a `loadBalancerClass`) gets
//! `status.loadBalancer.ingress` set to the addresses of the Ready nodes:
//! each node's ExternalIPs, or its InternalIPs when it has none. The
//! service proxy on every node answers the Service's port on those
//! addresses (they are local on the nodes), so the list follows nodes as
//! they join, leave or turn NotReady.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::Notify;

use super::Shared;

/// Starts the controller on the shared Service and Node informers.
pub fn start(client: Client, services: Shared<Service>, nodes: Shared<Node>) {
    let changed = Arc::new(Notify::new());
    forward(services.subscribe(), Arc::clone(&changed));
    forward(nodes.subscribe(), Arc::clone(&changed));
    tokio::spawn(async move {
        loop {
            changed.notified().await;
            let addresses = ingress_addresses(&nodes.store().state());
            for service in services.store().state() {
                if let Err(e) = sync(&client, &service, &addresses).await {
                    tracing::warn!(service = ?service.metadata.name, error = %e, "cannot set the load balancer status");
                    // Try again shortly (the next change may be far away).
                    let changed = Arc::clone(&changed);
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        changed.notify_one();
                    });
                }
            }
        }
    });
}

/// Wakes the sync loop on every change of `feed`.
fn forward<K: Clone + Send + Sync + 'static>(
    mut feed: crate::informer::Subscription<K>,
    changed: Arc<Notify>,
) {
    tokio::spawn(async move {
        while feed.next().await.is_some() {
            changed.notify_one();
        }
    });
}

/// The addresses LoadBalancer services are answered on, sorted.
pub fn ingress_addresses(nodes: &[Arc<Node>]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for node in nodes {
        let Some(status) = &node.status else { continue };
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if !ready || node.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let addresses = status.addresses.as_deref().unwrap_or_default();
        let of = |kind: &str| -> Vec<String> {
            addresses
                .iter()
                .filter(|a| a.type_ == kind)
                .map(|a| a.address.clone())
                .collect()
        };
        let external = of("ExternalIP");
        out.extend(if external.is_empty() {
            of("InternalIP")
        } else {
            external
        });
    }
    out.into_iter().collect()
}

/// Whether ServiceLB handles `service`.
fn handles(service: &Service) -> bool {
    service.spec.as_ref().is_some_and(|s| {
        s.type_.as_deref() == Some("LoadBalancer") && s.load_balancer_class.is_none()
    })
}

async fn sync(client: &Client, service: &Service, addresses: &[String]) -> Result<(), kube::Error> {
    if !handles(service) {
        return Ok(());
    }
    let current: Vec<String> = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect();
    if current == addresses {
        return Ok(());
    }
    let namespace = service.metadata.namespace.as_deref().unwrap_or_default();
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let ingress: Vec<_> = addresses
        .iter()
        .map(|ip| serde_json::json!({ "ip": ip, "ipMode": "VIP" }))
        .collect();
    let patch = serde_json::json!({ "status": { "loadBalancer": { "ingress": ingress } } });
    Api::<Service>::namespaced(client.clone(), namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tracing::info!(service = %format!("{namespace}/{name}"), ?addresses, "load balancer status set");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: &str, addresses: &[(&str, &str)]) -> Arc<Node> {
        let addresses: Vec<_> = addresses
            .iter()
            .map(|(t, a)| serde_json::json!({ "type": t, "address": a }))
            .collect();
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": { "name": "n" },
                "status": {
                    "conditions": [{ "type": "Ready", "status": ready }],
                    "addresses": addresses
                }
            }))
            .expect("a node"),
        )
    }

    #[test]
    fn ready_nodes_give_their_external_or_internal_addresses() {
        let nodes = [
            node("True", &[("InternalIP", "192.168.1.2"), ("Hostname", "a")]),
            node(
                "True",
                &[("InternalIP", "192.168.1.3"), ("ExternalIP", "203.0.113.3")],
            ),
            node("False", &[("InternalIP", "192.168.1.4")]),
            node("Unknown", &[("InternalIP", "192.168.1.5")]),
        ];
        assert_eq!(ingress_addresses(&nodes), ["192.168.1.2", "203.0.113.3"]);
    }

    #[test]
    fn only_load_balancers_without_a_class_are_handled() {
        let service = |spec: serde_json::Value| -> Service {
            serde_json::from_value(serde_json::json!({ "metadata": { "name": "s" }, "spec": spec }))
                .expect("a service")
        };
        assert!(handles(&service(
            serde_json::json!({ "type": "LoadBalancer" })
        )));
        assert!(!handles(&service(
            serde_json::json!({ "type": "NodePort" })
        )));
        assert!(!handles(&service(
            serde_json::json!({ "type": "LoadBalancer", "loadBalancerClass": "example.com/lb" })
        )));
    }
}
