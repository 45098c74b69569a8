//! What the proxy programs, distilled from the API objects: one
//! [`ServicePort`] per port of every Service that has a cluster IP, with the
//! endpoints of its EndpointSlices that serve that port. Pure functions, so
//! the rules can be tested without a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::controllers::endpointslice::SERVICE_NAME_LABEL;

/// The Service the proxy leaves alone: its ClusterIP is answered by the
/// node's in-process DNS, bound on a local interface.
pub const SKIPPED_SERVICE: (&str, &str) = ("kube-system", "kube-dns");

/// The ClientIP affinity timeout when the Service does not give one
/// (upstream's default, 3 hours).
const DEFAULT_AFFINITY_SECONDS: i32 = 10800;

/// One port of one Service, with everything its rules depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `namespace/name` or `namespace/name:port-name` (upstream's
    /// ServicePortName string, hashed into chain names).
    pub name: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    pub external_ips: Vec<Ipv4Addr>,
    pub load_balancer_ips: Vec<Ipv4Addr>,
    pub source_ranges: Vec<IpNet>,
    /// The ClientIP affinity timeout in seconds, when affinity is on.
    pub affinity_seconds: Option<i32>,
    pub external_local: bool,
    pub internal_local: bool,
    pub endpoints: Vec<Endpoint>,
}

/// One backend of a [`ServicePort`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// Whether the endpoint runs on this node.
    pub local: bool,
}

impl Endpoint {
    /// `ip:port`, as in DNAT targets and chain-name hashes.
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

impl ServicePort {
    /// Whether traffic from outside the cluster reaches this port (NodePort,
    /// externalIPs or a load balancer).
    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some()
            || !self.external_ips.is_empty()
            || !self.load_balancer_ips.is_empty()
    }

    /// Whether some traffic is sent to any endpoint of the cluster.
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_local || (self.externally_accessible() && !self.external_local)
    }

    /// Whether some traffic is sent to this node's endpoints only.
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_local || (self.external_local && self.externally_accessible())
    }

    /// The endpoints for cluster-wide traffic: the ready ones, or when none
    /// is ready the serving and terminating ones (upstream's fallback).
    pub fn cluster_endpoints(&self) -> Vec<&Endpoint> {
        if !self.uses_cluster_endpoints() {
            return Vec::new();
        }
        usable(self.endpoints.iter())
    }

    /// The endpoints on this node, with the same fallback.
    pub fn local_endpoints(&self) -> Vec<&Endpoint> {
        if !self.uses_local_endpoints() {
            return Vec::new();
        }
        usable(self.endpoints.iter().filter(|e| e.local))
    }
}

fn usable<'a>(endpoints: impl Iterator<Item = &'a Endpoint> + Clone) -> Vec<&'a Endpoint> {
    let ready: Vec<_> = endpoints.clone().filter(|e| e.ready).collect();
    if !ready.is_empty() {
        return ready;
    }
    endpoints.filter(|e| e.serving && e.terminating).collect()
}

/// The service ports to program, sorted by name so the rules come out in a
/// stable order. Services without a cluster IP (headless, ExternalName),
/// non-IPv4 services and `kube-system/kube-dns` are left out.
pub fn build(
    services: &[&Service],
    slices: &[&EndpointSlice],
    node_name: &str,
) -> Vec<ServicePort> {
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        by_service
            .entry((namespace, service.clone()))
            .or_default()
            .push(slice);
    }
    let mut ports = Vec::new();
    for service in services {
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        if (namespace.as_str(), name.as_str()) == SKIPPED_SERVICE {
            continue;
        }
        let slices = by_service
            .get(&(namespace.clone(), name.clone()))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        ports.extend(service_ports(service, &namespace, &name, slices, node_name));
    }
    ports.sort_by(|a, b| (&a.name, &a.protocol).cmp(&(&b.name, &b.protocol)));
    ports
}

fn service_ports(
    service: &Service,
    namespace: &str,
    name: &str,
    slices: &[&EndpointSlice],
    node_name: &str,
) -> Vec<ServicePort> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let Some(cluster_ip) = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
    else {
        return Vec::new();
    };
    let v4 = |s: &String| s.parse::<Ipv4Addr>().ok();
    let external_ips: Vec<Ipv4Addr> = spec.external_ips.iter().flatten().filter_map(v4).collect();
    let load_balancer = spec.type_.as_deref() == Some("LoadBalancer");
    let load_balancer_ips: Vec<Ipv4Addr> = if load_balancer {
        let ingress = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        ingress
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.as_ref().and_then(v4))
            .collect()
    } else {
        Vec::new()
    };
    let source_ranges: Vec<IpNet> = if load_balancer {
        spec.load_balancer_source_ranges
            .iter()
            .flatten()
            .filter_map(|r| r.trim().parse().ok())
            .collect()
    } else {
        Vec::new()
    };
    let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .unwrap_or(DEFAULT_AFFINITY_SECONDS)
    });
    let node_ports_on = matches!(
        spec.type_.as_deref(),
        Some("NodePort") | Some("LoadBalancer")
    );
    let mut out = Vec::new();
    for port in spec.ports.iter().flatten() {
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        let port_name = port.name.clone().unwrap_or_default();
        let full_name = if port_name.is_empty() {
            format!("{namespace}/{name}")
        } else {
            format!("{namespace}/{name}:{port_name}")
        };
        let Ok(service_port) = u16::try_from(port.port) else {
            continue;
        };
        out.push(ServicePort {
            name: full_name,
            protocol: protocol.to_ascii_lowercase(),
            cluster_ip,
            port: service_port,
            node_port: port
                .node_port
                .filter(|_| node_ports_on)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0),
            external_ips: external_ips.clone(),
            load_balancer_ips: load_balancer_ips.clone(),
            source_ranges: source_ranges.clone(),
            affinity_seconds,
            external_local: spec.external_traffic_policy.as_deref() == Some("Local")
                && (node_ports_on || !external_ips.is_empty()),
            internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            endpoints: endpoints_for(slices, &port_name, protocol, node_name),
        });
    }
    out
}

/// The endpoints of `slices` that serve the port named `port_name`,
/// deduplicated by address (a pod can appear in two slices while they are
/// being rebalanced).
fn endpoints_for(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: &str,
    node_name: &str,
) -> Vec<Endpoint> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for slice in slices {
        let port = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && p.protocol.as_deref().unwrap_or("TCP") == protocol
        });
        let Some(port) = port
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let Some(ip) = endpoint
                .addresses
                .first()
                .and_then(|a| a.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let IpAddr::V4(ip) = ip else { continue };
            if !seen.insert((ip, port)) {
                continue;
            }
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            out.push(Endpoint {
                ip,
                port,
                ready,
                serving: conditions.and_then(|c| c.serving).unwrap_or(ready),
                terminating: conditions.and_then(|c| c.terminating).unwrap_or(false),
                local: endpoint.node_name.as_deref() == Some(node_name),
            });
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: serde_json::Value) -> Service {
        serde_json::from_value(json).expect("a service")
    }

    fn slice(json: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json).expect("a slice")
    }

    fn web() -> Service {
        service(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20", "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "dns", "port": 53, "protocol": "UDP"}
            ]}
        }))
    }

    fn web_slice() -> EndpointSlice {
        slice(serde_json::json!({
            "metadata": {"name": "web-abc", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}],
            "endpoints": [
                {"addresses": ["10.42.0.5"], "conditions": {"ready": true}, "nodeName": "n1"},
                {"addresses": ["10.42.1.6"], "conditions": {"ready": false, "serving": true, "terminating": true}, "nodeName": "n2"},
                {"addresses": ["10.42.0.5"], "conditions": {"ready": true}, "nodeName": "n1"}
            ]
        }))
    }

    #[test]
    fn each_port_gets_its_endpoints_by_name_and_protocol() {
        let svc = web();
        let sl = web_slice();
        let ports = build(&[&svc], &[&sl], "n1");
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].name, "default/web:dns");
        assert_eq!(ports[0].protocol, "udp");
        assert_eq!(ports[0].endpoints[0].port, 5353);
        let http = &ports[1];
        assert_eq!(http.name, "default/web:http");
        assert_eq!(
            http.endpoints.len(),
            2,
            "duplicates are dropped: {:?}",
            http.endpoints
        );
        assert!(http.endpoints[0].local && !http.endpoints[1].local);
        // Ready endpoints win over serving+terminating ones.
        let cluster: Vec<_> = http
            .cluster_endpoints()
            .iter()
            .map(|e| e.address())
            .collect();
        assert_eq!(cluster, ["10.42.0.5:8080"]);
    }

    #[test]
    fn terminating_endpoints_are_the_fallback_when_none_is_ready() {
        let svc = web();
        let mut sl = web_slice();
        sl.endpoints
            .retain(|e| e.node_name.as_deref() == Some("n2"));
        let ports = build(&[&svc], &[&sl], "n1");
        let cluster: Vec<_> = ports[1]
            .cluster_endpoints()
            .iter()
            .map(|e| e.address())
            .collect();
        assert_eq!(cluster, ["10.42.1.6:8080"]);
    }

    #[test]
    fn headless_external_name_and_kube_dns_are_skipped() {
        let headless = service(serde_json::json!({
            "metadata": {"name": "h", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }));
        let dns = service(serde_json::json!({
            "metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"clusterIP": "10.43.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
        }));
        let external = service(serde_json::json!({
            "metadata": {"name": "e", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.org"}
        }));
        assert!(build(&[&headless, &dns, &external], &[], "n1").is_empty());
    }

    #[test]
    fn unnamed_port_names_the_service_only() {
        let svc = service(serde_json::json!({
            "metadata": {"name": "lb", "namespace": "ns"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.9", "externalTrafficPolicy": "Local",
                "ports": [{"port": 80, "nodePort": 30080}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.5.1"}]}}
        }));
        let ports = build(&[&svc], &[], "n1");
        assert_eq!(ports[0].name, "ns/lb");
        assert_eq!(ports[0].node_port, Some(30080));
        assert_eq!(
            ports[0].load_balancer_ips,
            ["192.168.5.1".parse::<Ipv4Addr>().expect("ip")]
        );
        assert!(ports[0].external_local);
    }
}
