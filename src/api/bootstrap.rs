//! The objects every cluster starts with: the four system namespaces and the
//! `kubernetes` Service (with its Endpoints and EndpointSlice) pointing at
//! this server. Creating them is idempotent, so it runs on every start.

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
    let address = config.advertise_address.to_string();
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": address}], "ports": [{"name": "https", "port": config.https_port, "protocol": "TCP"}]}],
    });
    ensure(core, "", "endpoints", Some("default"), endpoints).await?;
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}},
        "addressType": family,
        "endpoints": [{"addresses": [address], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": config.https_port, "protocol": "TCP"}],
    });
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
