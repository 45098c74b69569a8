//! The objects every cluster starts with: the four system namespaces, the
//! `kubernetes` Service (with its Endpoints and EndpointSlice) pointing at
//! this server, and the `kube-system/kube-dns` Service. Creating them is
//! idempotent, so it runs on every start.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::api::ApiConfig;
use crate::api::handlers::Core;
use crate::api::handlers::write::create_object;
use crate::api::registry::lookup;
use crate::api::status::ApiStatus;

/// The namespaces upstream creates at start.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// The first address of the service CIDR: the `kubernetes` Service's ClusterIP.
pub fn kubernetes_service_ip(config: &ApiConfig) -> IpAddr {
    match config.service_cidr.network() {
        IpAddr::V4(n) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(n).saturating_add(1))),
        IpAddr::V6(n) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(n).saturating_add(1))),
    }
}

async fn ensure(
    core: &Core,
    group: &str,
    plural: &str,
    ns: Option<&str>,
    obj: Value,
) -> Result<(), ApiStatus> {
    let Some(kind) = lookup(group, "v1", plural) else {
        return Err(ApiStatus::internal(format!(
            "{plural} missing from the kind table"
        )));
    };
    match create_object(core, kind, ns, obj, false).await {
        Ok(_) => Ok(()),
        Err(e) if e.reason == "AlreadyExists" => Ok(()),
        Err(e) => Err(e),
    }
}

/// The `kube-system/kube-dns` Service: the cluster DNS address, which
/// every node's in-process DNS answers (k3s's CoreDNS Service, without a
/// selector since no pod serves it; the service proxy leaves it alone).
fn kube_dns_service(config: &ApiConfig) -> Value {
    let ip = config.cluster_dns.to_string();
    let family = if config.cluster_dns.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    };
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {
            "k8s-app": "kube-dns",
            "kubernetes.io/cluster-service": "true",
            "kubernetes.io/name": "CoreDNS",
        }},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip, "clusterIPs": [ip],
            "ipFamilies": [family], "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
    })
}

/// The `default/kubernetes` Endpoints and EndpointSlice for API servers at
/// `addresses` (one family: the first address's) on `port`.
pub fn kubernetes_endpoints(addresses: &[IpAddr], port: u16) -> (Value, Value) {
    let family = if addresses.first().is_none_or(|a| a.is_ipv4()) {
        "IPv4"
    } else {
        "IPv6"
    };
    let ips: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{
            "addresses": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>(),
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }],
    });
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}},
        "addressType": family,
        "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}})).collect::<Vec<_>>(),
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    (endpoints, slice)
}

/// Creates whatever of the bootstrap objects is missing.
pub async fn run(core: &Core) -> Result<(), ApiStatus> {
    for ns in SYSTEM_NAMESPACES {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
        ensure(core, "", "namespaces", None, obj).await?;
    }
    for (name, value) in crate::api::kinds::scheduling::SYSTEM_CLASSES {
        let description = if name == "system-node-critical" {
            "Used for system critical pods that must not be moved from their current node."
        } else {
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."
        };
        let obj = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value, "description": description});
        ensure(core, "scheduling.k8s.io", "priorityclasses", None, obj).await?;
    }
    let config = &core.config;
    let cluster_ip = kubernetes_service_ip(config).to_string();
    let family = if config.service_cidr.addr().is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    };
    let labels = json!({"component": "apiserver", "provider": "kubernetes"});
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
            "ipFamilies": [family], "ipFamilyPolicy": "SingleStack",
            "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": config.https_port}],
        },
    });
    ensure(core, "", "services", Some("default"), service).await?;
    ensure(
        core,
        "",
        "services",
        Some("kube-system"),
        kube_dns_service(config),
    )
    .await?;
    if config.advertise_address.is_loopback() {
        // No pod can reach the API at a loopback address, and upstream's
        // validation rightly refuses one in Endpoints: leave the Service
        // without endpoints rather than refuse to start on a host that has
        // no other address.
        tracing::warn!(
            advertise_address = %config.advertise_address,
            "the advertise address is a loopback address, so the kubernetes Service gets no endpoints; \
             set --advertise-address to an address pods can reach"
        );
        return Ok(());
    }
    let (endpoints, slice) = kubernetes_endpoints(&[config.advertise_address], config.https_port);
    ensure(core, "", "endpoints", Some("default"), endpoints).await?;
    ensure(
        core,
        "discovery.k8s.io",
        "endpointslices",
        Some("default"),
        slice,
    )
    .await?;
    Ok(())
}
