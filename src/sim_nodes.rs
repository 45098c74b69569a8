//! `skiff sim-nodes`: a node simulator for exercising the control plane
//! without containers. It is NOT a kubelet: it registers Node objects, renews
//! their Leases, and moves the pods bound to them straight to Running (pods
//! owned by a Job to Succeeded after a while) with made-up addresses.
//!
//! Addresses are never contacted: node `i` (0-based) reports InternalIP
//! `10.244.i.1` and gives its pods `10.244.i.2` to `10.244.i.254` in turn.
//! It talks to the server over HTTPS with an ordinary kubeconfig.

mod pods;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::json;

use crate::cli::sim_nodes::SimNodesArgs;

/// How often each node's Lease is renewed.
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// How long a Lease is valid without renewal.
const LEASE_SECONDS: i32 = 40;

/// Why the simulator stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The kubeconfig could not be read or used.
    #[error("reading the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    /// No client could be built from the kubeconfig.
    #[error("connecting with the kubeconfig: {0}")]
    Client(#[from] kube::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// One simulated node.
#[derive(Debug, Clone)]
pub struct SimNode {
    pub name: String,
    pub index: u16,
}

impl SimNode {
    fn host_ip(&self) -> String {
        format!("10.244.{}.1", self.index)
    }
}

/// Runs the simulator until SIGINT/SIGTERM.
pub fn run(args: SimNodesArgs) -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(SimError::Runtime)
        .and_then(|rt| rt.block_on(simulate(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff sim-nodes: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn simulate(args: SimNodesArgs) -> Result<(), SimError> {
    let kubeconfig =
        Kubeconfig::read_from(&args.kubeconfig).map_err(|source| SimError::Kubeconfig {
            path: args.kubeconfig.display().to_string(),
            source,
        })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| SimError::Kubeconfig {
            path: args.kubeconfig.display().to_string(),
            source,
        })?;
    let client = Client::try_from(config)?;
    let args = Arc::new(args);
    for index in 0..args.count {
        let node = SimNode {
            name: format!("{}{index}", args.name_prefix),
            index,
        };
        tokio::spawn(run_node(client.clone(), args.clone(), node));
    }
    tracing::info!(count = args.count, "simulated nodes started");
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}

/// Registers one node, then keeps its Lease and its pods up to date.
async fn run_node(client: Client, args: Arc<SimNodesArgs>, node: SimNode) {
    let mut delay = Duration::from_millis(200);
    while let Err(e) = register(&client, &args, &node).await {
        tracing::warn!(node = %node.name, error = %e, "registering the node failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
    tracing::info!(node = %node.name, "node registered");
    tokio::spawn(pods::run(client.clone(), args.clone(), node.clone()));
    let mut tick = tokio::time::interval(LEASE_RENEW);
    loop {
        tick.tick().await;
        if let Err(e) = renew_lease(&client, &node).await {
            tracing::warn!(node = %node.name, error = %e, "renewing the lease failed");
        }
    }
}

/// Creates the Node (or adopts an existing one) and sets its status.
async fn register(client: &Client, args: &SimNodesArgs, node: &SimNode) -> Result<(), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), node.name.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("type".to_string(), "sim".to_string()),
    ]);
    let object: Node = serde_json::from_value(json!({
        "metadata": {"name": node.name, "labels": labels},
    }))
    .map_err(kube::Error::SerdeError)?;
    match nodes.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e),
    }
    let now = now_seconds();
    let resources = json!({"cpu": args.cpu, "memory": args.memory, "pods": args.pods.to_string()});
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let status = json!({"status": {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "simulated node is ready (skiff sim-nodes)"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": node.host_ip()},
            {"type": "Hostname", "address": node.name},
        ],
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "",
            "osImage": "skiff simulated node", "containerRuntimeVersion": "sim://0",
            "kubeletVersion": format!("v{}-sim", env!("CARGO_PKG_VERSION")),
            "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": std::env::consts::ARCH,
        },
    }});
    nodes
        .patch_status(&node.name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    renew_lease(client, node).await
}

/// Creates or renews the node's Lease in kube-node-lease.
async fn renew_lease(client: &Client, node: &SimNode) -> Result<(), kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = Timestamp::now().to_string();
    let patch = json!({"spec": {"renewTime": now}});
    match leases
        .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {"name": node.name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": node.name, "leaseDurationSeconds": LEASE_SECONDS,
                         "renewTime": now, "acquireTime": now},
            }))
            .map_err(kube::Error::SerdeError)?;
            leases
                .create(&PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// Now, to the second (the precision of `metav1.Time`).
fn now_seconds() -> String {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second())
        .unwrap_or(now)
        .to_string()
}
