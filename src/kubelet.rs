//! The kubelet of a node: registers the Node, heartbeats through its Lease,
//! reports the Node's status, sets up the pod network once node IPAM has
//! given the Node a podCIDR, and runs the pods bound to it (`pods.rs`).
//! It talks to the API through a `kube::Client` (in-process on a server
//! node) and to the runtime through CRI.

pub mod lease;
pub mod log_rotation;
pub mod node_status;
pub mod pods;
pub mod server;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;

use crate::net::{self, NetError, NetSettings};
use crate::runtime::{Cri, Runtime, RuntimeError};

/// How often the runtime's state is checked against the Node's status.
const STATUS_CHECK_EVERY: Duration = Duration::from_secs(10);

/// Why the kubelet stopped.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("registering node {node}: {source}")]
    Register { node: String, source: kube::Error },
    #[error("waiting for node {0} to get a podCIDR from node IPAM: {1}")]
    PodCidr(String, String),
    #[error("setting up the pod network: {0}")]
    Net(#[from] NetError),
}

/// What the kubelet knows about its node.
#[derive(Debug, Clone)]
pub struct KubeletSettings {
    pub node_name: String,
    pub node_ip: IpAddr,
    /// Reported as nodeInfo.kubeletVersion.
    pub version: String,
    /// `<data-dir>/agent`.
    pub data_dir: PathBuf,
    pub cluster_cidr: IpNet,
    pub service_cidr: IpNet,
    /// The port of the kubelet's HTTPS server (logs, exec, port-forward).
    pub kubelet_port: u16,
    /// The kubelet server's certificates; without them it does not start.
    pub tls: Option<server::ServerTls>,
    /// Container log rotation: the size a log file may reach, and how many
    /// files to keep per container.
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// The pods' MTU, from the overlay (`None`: the CNI default).
    pub pod_mtu: Option<u32>,
    /// The cluster DNS pods resolve through, and the node's resolver file.
    pub dns: crate::dns::DnsSettings,
}

/// Registers the node and runs it until the process ends.
pub async fn run(
    client: kube::Client,
    runtime: Runtime,
    settings: KubeletSettings,
) -> Result<(), KubeletError> {
    let mut cri = Cri::connect(&runtime.socket).await?;
    let version = cri.version().await?;
    let runtime_version = format!("{}://{}", version.runtime_name, version.runtime_version);
    let nodes: Api<Node> = Api::all(client.clone());
    // A remote node's server may be restarting: transport failures and
    // server errors are retried, refusals end the kubelet.
    let mut backoff = crate::agent::join::Backoff::default();
    let node = loop {
        match register(&nodes, &settings).await {
            Ok(node) => break node,
            Err(KubeletError::Register { source, .. }) if is_transient(&source) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %source, "cannot register the node; retrying in {}s", delay.as_secs());
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    };
    let node_uid = node.metadata.uid.clone().unwrap_or_default();
    if let Some(tls) = settings.tls.clone() {
        tokio::spawn(server::run(
            client.clone(),
            cri.clone(),
            settings.node_name.clone(),
            settings.kubelet_port,
            tls,
        ));
    }
    tokio::spawn(log_rotation::run(
        cri.clone(),
        settings.log_max_size,
        settings.log_max_files,
    ));
    tokio::spawn(lease::run(
        client.clone(),
        settings.node_name.clone(),
        node_uid,
    ));

    let mut written = report(&nodes, &settings, &mut cri, &runtime_version, None).await;
    let pod_cidr = loop {
        match wait_for_pod_cidr(&nodes, &settings.node_name).await {
            Ok(cidr) => break cidr,
            Err(e @ KubeletError::PodCidr(..)) => {
                tracing::warn!(error = %e, "retrying in 2s");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e),
        }
    };
    net::setup(&NetSettings {
        cni_conf_dir: runtime.cni_conf_dir.clone(),
        ipam_dir: settings.data_dir.join("cni").join("networks"),
        pod_cidr,
        cluster_cidr: settings.cluster_cidr,
        service_cidr: settings.service_cidr,
        mtu: settings.pod_mtu,
    })?;
    tracing::info!(node = %settings.node_name, %pod_cidr, "pod network is set up");
    tokio::spawn(pods::run(client.clone(), cri.clone(), settings.clone()));

    let mut tick = tokio::time::interval(STATUS_CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        written = report(&nodes, &settings, &mut cri, &runtime_version, written).await;
    }
}

/// Whether a failed request may succeed when repeated: the server was
/// unreachable or answered a server error.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        _ => true,
    }
}

/// Creates the Node, or adopts an existing one of this name.
async fn register(nodes: &Api<Node>, settings: &KubeletSettings) -> Result<Node, KubeletError> {
    let error = |source| KubeletError::Register {
        node: settings.node_name.clone(),
        source,
    };
    let labels = node_status::labels(settings);
    if nodes
        .get_opt(&settings.node_name)
        .await
        .map_err(error)?
        .is_some()
    {
        let patch = serde_json::json!({ "metadata": { "labels": labels } });
        return nodes
            .patch(
                &settings.node_name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(error);
    }
    let mut node = Node::default();
    node.metadata.name = Some(settings.node_name.clone());
    node.metadata.labels = Some(labels);
    let created = nodes
        .create(&PostParams::default(), &node)
        .await
        .map_err(error)?;
    tracing::info!(node = %settings.node_name, "registered the node");
    Ok(created)
}

/// The status last written and when.
type Written = Option<(k8s_openapi::api::core::v1::NodeStatus, tokio::time::Instant)>;

/// Writes the Node's status if it changed or is due; returns what is now
/// written.
async fn report(
    nodes: &Api<Node>,
    settings: &KubeletSettings,
    cri: &mut Cri,
    runtime_version: &str,
    written: Written,
) -> Written {
    let conditions = match cri.conditions().await {
        Ok(c) => c,
        Err(e) => crate::runtime::cri::RuntimeConditions {
            runtime_ready: false,
            network_ready: false,
            message: e.to_string(),
        },
    };
    let observed = node_status::observe(settings, &conditions, runtime_version);
    if let Some((last, at)) = &written
        && *last == observed
        && at.elapsed() < node_status::REPORT_EVERY
    {
        return written;
    }
    let previous = nodes.get_opt(&settings.node_name).await.ok().flatten();
    let status = node_status::stamp(observed.clone(), previous.as_ref());
    let patch = serde_json::json!({ "status": status });
    match nodes
        .patch_status(
            &settings.node_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Some((observed, tokio::time::Instant::now())),
        Err(e) => {
            tracing::warn!(error = %e, node = %settings.node_name, "cannot write the node status");
            written
        }
    }
}

async fn wait_for_pod_cidr(nodes: &Api<Node>, name: &str) -> Result<IpNet, KubeletError> {
    let has_cidr = |node: Option<&Node>| {
        node.and_then(|n| n.spec.as_ref())
            .and_then(|s| s.pod_cidr.as_ref())
            .is_some()
    };
    let node = await_condition(nodes.clone(), name, has_cidr)
        .await
        .map_err(|e| KubeletError::PodCidr(name.to_string(), e.to_string()))?;
    node.and_then(|n| n.spec)
        .and_then(|s| s.pod_cidr)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| KubeletError::PodCidr(name.to_string(), "not a CIDR".to_string()))
}
