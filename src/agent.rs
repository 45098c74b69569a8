//! The node roles of skiff: the container runtime (supervised containerd or
//! an existing CRI socket), image import, the pod network and the kubelet.
//! `skiff server` runs them in-process unless `--disable-agent` is given.
//!
//! A node that cannot start (containerd, runc or the CNI plugins missing,
//! for instance) does not take the control plane down: the error is logged
//! with what to install, and the API keeps serving without this node. k3s,
//! which ships its own runtime, exits instead; skiff uses the distribution's
//! packages, so a server usable for its API while they are installed is the
//! more helpful behaviour.

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
    pub cluster_cidr: IpNet,
    pub service_cidr: IpNet,
    /// Whether this node also runs the control plane (labels it so).
    pub control_plane: bool,
    /// Reported as the node's kubelet version.
    pub version: String,
    /// The kubelet server's port and certificates (no server without them).
    pub kubelet_port: u16,
    pub kubelet_tls: Option<kubelet::server::ServerTls>,
    /// Container log rotation: maximum size in bytes, files kept.
    pub container_log_max_size: u64,
    pub container_log_max_files: u32,
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

async fn run(client: kube::Client, config: AgentConfig) -> Result<(), KubeletError> {
    let agent_dir = config.data_dir.join("agent");
    let runtime = runtime::start(&RuntimeSettings {
        agent_dir: agent_dir.clone(),
        endpoint: config.container_runtime_endpoint.clone(),
    })
    .await?;
    tracing::info!(socket = %runtime.socket.display(), "container runtime is ready");
    tokio::spawn(crate::dns::run(client.clone(), config.dns.clone()));
    kubelet::run(
        client,
        runtime,
        KubeletSettings {
            node_name: config.node_name,
            node_ip: config.node_ip,
            version: config.version,
            control_plane: config.control_plane,
            data_dir: agent_dir,
            cluster_cidr: config.cluster_cidr,
            service_cidr: config.service_cidr,
            kubelet_port: config.kubelet_port,
            tls: config.kubelet_tls,
            log_max_size: config.container_log_max_size,
            log_max_files: config.container_log_max_files,
            dns: config.dns,
        },
    )
    .await
}
