//! The node roles of skiff: the container runtime (supervised containerd or
//! an existing CRI socket), image import, the pod network and the kubelet.
//! `skiff server` runs them in-process unless `--disable-agent` is given;
//! `skiff agent` runs them on a machine that joins a server (`remote.rs`).
//!
//! A node that cannot start (containerd, runc or the CNI plugins missing,
//! for instance) does not take the control plane down: the error is logged
//! with what to install, and the API keeps serving without this node. k3s,
//! which ships its own runtime, exits instead; skiff uses the distribution's
//! packages, so a server usable for its API while they are installed is the
//! more helpful behaviour.

pub mod join;
pub mod remote;

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use crate::kubelet::{self, KubeletError, KubeletSettings};
use crate::runtime::{self, RuntimeSettings};

/// The settings of a node.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// skiff's data dir; the node keeps its state under `agent/` in it.
    pub data_dir: PathBuf,
    pub node_name: String,
    pub node_ip: IpAddr,
    pub container_runtime_endpoint: Option<PathBuf>,
    /// Private registries (`--private-registry`) and whether to pull
    /// through their mirrors only (`--disable-default-registry-endpoint`).
    pub private_registry: PathBuf,
    pub disable_default_registry_endpoint: bool,
    pub cluster_cidr: IpNet,
    pub service_cidr: IpNet,
    /// Reported as the node's kubelet version.
    pub version: String,
    /// The kubelet server's port and certificates (no server without them).
    pub kubelet_port: u16,
    pub kubelet_tls: Option<kubelet::server::ServerTls>,
    /// Container log rotation: maximum size in bytes, files kept.
    pub container_log_max_size: u64,
    pub container_log_max_files: u32,
    /// The pod network between nodes (`--flannel-backend`,
    /// `--flannel-iface`, `--node-ip`): see src/net/overlay.rs.
    pub overlay: crate::net::overlay::OverlaySettings,
    /// Cluster DNS: served on this node and written into pods' resolv.conf.
    pub dns: crate::dns::DnsSettings,
}

/// Starts the node in the background; failures are logged, not returned.
pub fn spawn(client: kube::Client, config: AgentConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = run(client, config).await {
            tracing::error!("the node did not start: {e}; the API server keeps running without it");
        }
    })
}

/// Runs the node roles until the process ends (`skiff agent` and [`spawn`]).
pub(crate) async fn run(client: kube::Client, config: AgentConfig) -> Result<(), KubeletError> {
    let agent_dir = config.data_dir.join("agent");
    let runtime = runtime::start(&RuntimeSettings {
        agent_dir: agent_dir.clone(),
        endpoint: config.container_runtime_endpoint.clone(),
        private_registry: config.private_registry.clone(),
        disable_default_registry_endpoint: config.disable_default_registry_endpoint,
    })
    .await?;
    tracing::info!(socket = %runtime.socket.display(), "container runtime is ready");
    tokio::spawn(crate::proxy::run(
        client.clone(),
        crate::proxy::ProxySettings::new(config.node_name.clone(), config.cluster_cidr),
    ));
    let (node_ip, pod_mtu) = start_overlay(&client, &config).await;
    tokio::spawn(crate::dns::run(client.clone(), config.dns.clone()));
    kubelet::run(
        client,
        runtime,
        KubeletSettings {
            node_name: config.node_name,
            node_ip,
            version: config.version,
            data_dir: agent_dir,
            cluster_cidr: config.cluster_cidr,
            service_cidr: config.service_cidr,
            kubelet_port: config.kubelet_port,
            tls: config.kubelet_tls,
            log_max_size: config.container_log_max_size,
            log_max_files: config.container_log_max_files,
            pod_mtu,
            dns: config.dns,
        },
    )
    .await
}

/// Finds the overlay's uplink and starts the overlay beside the kubelet;
/// answers the node IP (the uplink's with `--flannel-iface` and no
/// `--node-ip`) and the pods' MTU. Without an uplink the node runs without
/// the overlay (its pods still reach each other), and says why.
async fn start_overlay(client: &kube::Client, config: &AgentConfig) -> (IpAddr, Option<u32>) {
    use crate::net::overlay::{self, Backend};
    let settings = &config.overlay;
    if settings.backend == Backend::None {
        return (config.node_ip, None);
    }
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(_) => None,
    };
    // With --flannel-iface and no --node-ip, the interface's address is the
    // node's; otherwise the node IP picks the uplink.
    let lookup = match (&settings.iface, settings.node_ip) {
        (Some(_), None) => None,
        _ => v4(config.node_ip),
    };
    match crate::net::link::find_uplink(settings.iface.as_deref(), lookup).await {
        Ok(uplink) => {
            let ip = match (&settings.iface, settings.node_ip) {
                (Some(_), None) => IpAddr::V4(uplink.ip),
                _ => config.node_ip,
            };
            let mtu = settings.backend.pod_mtu(uplink.mtu);
            tokio::spawn(overlay::run(
                client.clone(),
                config.node_name.clone(),
                config.cluster_cidr,
                settings.backend,
                uplink,
            ));
            (ip, mtu)
        }
        Err(e) => {
            tracing::error!(error = %e, backend = %settings.backend, "no overlay: pods reach only pods of this node");
            (config.node_ip, None)
        }
    }
}
