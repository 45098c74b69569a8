//! Node IPAM: a small in-process controller that gives every Node a
//! `spec.podCIDR` (a /24 out of `--cluster-cidr`), persisted in the Node
//! object itself. Allocations are rebuilt from the Nodes at every (re)list,
//! so a range that a live Node holds is never handed out twice; a deleted
//! Node's range becomes free again.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};

/// Prefix length of each node's pod range.
const NODE_PREFIX: u8 = 24;

/// Why a node could not get a range.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("--cluster-cidr {0} is not an IPv4 range of /24 or larger; node IPAM needs one")]
    Unsupported(IpNet),
    #[error(
        "--cluster-cidr {0} has no free /{NODE_PREFIX} left for another node; use a larger range"
    )]
    Exhausted(IpNet),
    #[error("cannot write the podCIDR of node {node}: {source}")]
    Patch { node: String, source: kube::Error },
}

/// The ranges in use, by node name.
#[derive(Debug, Default)]
pub struct Allocations {
    by_node: BTreeMap<String, Ipv4Net>,
}

impl Allocations {
    /// The first /24 of `cluster` that no node holds.
    pub fn next_free(&self, cluster: IpNet) -> Result<Ipv4Net, IpamError> {
        let IpNet::V4(v4) = cluster else {
            return Err(IpamError::Unsupported(cluster));
        };
        let mut subnets = v4
            .subnets(NODE_PREFIX)
            .map_err(|_| IpamError::Unsupported(cluster))?;
        subnets
            .find(|candidate| !self.by_node.values().any(|used| used == candidate))
            .ok_or(IpamError::Exhausted(cluster))
    }
}

/// Runs until the watch ends for good (it retries on its own).
pub async fn run(client: kube::Client, cluster: IpNet) {
    let nodes: Api<Node> = Api::all(client);
    let mut allocations = Allocations::default();
    let mut events = watcher::watcher(nodes.clone(), watcher::Config::default()).boxed();
    let mut initial: Vec<Node> = Vec::new();
    while let Some(event) = events.next().await {
        let changed: Vec<Node> = match event {
            Ok(Event::Init) => {
                initial.clear();
                continue;
            }
            Ok(Event::InitApply(node)) => {
                initial.push(node);
                continue;
            }
            Ok(Event::InitDone) => {
                allocations = Allocations::default();
                for node in &initial {
                    record(&mut allocations, node);
                }
                std::mem::take(&mut initial)
            }
            Ok(Event::Apply(node)) => {
                record(&mut allocations, &node);
                vec![node]
            }
            Ok(Event::Delete(node)) => {
                if let Some(name) = &node.metadata.name {
                    allocations.by_node.remove(name);
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "node IPAM watch failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        for node in changed {
            if let Err(e) = assign(&nodes, &mut allocations, &node, cluster).await {
                tracing::error!(error = %e, "node IPAM");
            }
        }
    }
}

fn record(allocations: &mut Allocations, node: &Node) {
    let (Some(name), Some(cidr)) = (
        node.metadata.name.as_ref(),
        node.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()),
    ) else {
        return;
    };
    if let Ok(net) = cidr.parse::<Ipv4Net>() {
        allocations.by_node.insert(name.clone(), net);
    }
}

async fn assign(
    nodes: &Api<Node>,
    allocations: &mut Allocations,
    node: &Node,
    cluster: IpNet,
) -> Result<(), IpamError> {
    let Some(name) = node.metadata.name.clone() else {
        return Ok(());
    };
    if allocations.by_node.contains_key(&name) || node.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let cidr = allocations.next_free(cluster)?;
    allocations.by_node.insert(name.clone(), cidr);
    let patch = serde_json::json!({
        "spec": { "podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()] }
    });
    nodes
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| {
            allocations.by_node.remove(&name);
            IpamError::Patch {
                node: name.clone(),
                source,
            }
        })?;
    tracing::info!(node = %name, %cidr, "assigned the node's pod range");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_in_use_are_skipped_and_exhaustion_is_reported() {
        let cluster: IpNet = "10.42.0.0/23".parse().expect("cidr");
        let mut allocations = Allocations::default();
        let first = allocations.next_free(cluster).expect("a free range");
        assert_eq!(first.to_string(), "10.42.0.0/24");
        allocations.by_node.insert("a".into(), first);
        let second = allocations.next_free(cluster).expect("a second range");
        assert_eq!(second.to_string(), "10.42.1.0/24");
        allocations.by_node.insert("b".into(), second);
        assert!(matches!(
            allocations.next_free(cluster),
            Err(IpamError::Exhausted(_))
        ));
        allocations.by_node.remove("a");
        assert_eq!(
            allocations.next_free(cluster).expect("freed").to_string(),
            "10.42.0.0/24"
        );
    }
}
