//! The pod network between nodes, as flannel (the overlay k3s ships) builds
//! it with its kube subnet manager: every node publishes how to reach its
//! podCIDR in its Node's annotations, and every node programs the host so
//! that each other node's podCIDR is reachable:
//!
//! - **vxlan** (the default): a VXLAN device [`VXLAN_DEVICE`] (VNI 1, UDP
//!   8472, no learning) whose address is the node's podCIDR network address
//!   /32; for each peer a route `podCIDR via <peer VTEP address> onlink dev
//!   skiff.1`, a permanent neighbour entry (VTEP address → VTEP MAC) and an
//!   FDB entry (VTEP MAC → the peer's public IP).
//! - **host-gw**: for each peer a route `podCIDR via <peer node IP>` over the
//!   uplink (the nodes share one L2 segment); no device.
//! - **none**: nothing; pods reach only pods of their own node.
//!
//! The wanted state is computed from the Nodes ([`desired`], pure, unit
//! tested) and applied with rtnetlink ([`Dataplane`]): entries skiff owns that
//! are no longer wanted are removed, so a node that leaves takes its route,
//! neighbour and FDB entry with it. [`run`] keeps the host in step with a
//! watch on Nodes plus a periodic full resync.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};

use super::link::{self, Uplink};
use super::{hostgw, vxlan};
use crate::informer::Informer;

/// The VXLAN device (flannel's is `flannel.1`: `<name>.<VNI>`).
pub const VXLAN_DEVICE: &str = "skiff.1";
/// flannel's VNI and UDP port (the Linux kernel's IANA port is 4789;
/// flannel and k3s use 8472).
pub const VNI: u32 = 1;
pub const VXLAN_PORT: u16 = 8472;
/// The bytes VXLAN adds to a packet (outer IPv4 20 + UDP 8 + VXLAN 8 +
/// inner Ethernet 14), taken off the uplink MTU.
pub const VXLAN_OVERHEAD: u32 = 50;
/// How often the whole state is compared with the host even without a
/// change to the Nodes (someone may have removed a route by hand).
pub const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// flannel's annotation keys (its kube subnet manager's).
pub const BACKEND_TYPE: &str = "flannel.alpha.coreos.com/backend-type";
pub const BACKEND_DATA: &str = "flannel.alpha.coreos.com/backend-data";
pub const PUBLIC_IP: &str = "flannel.alpha.coreos.com/public-ip";
pub const KUBE_SUBNET_MANAGER: &str = "flannel.alpha.coreos.com/kube-subnet-manager";

/// A MAC address.
pub type Mac = [u8; 6];

/// How pods reach pods of other nodes (`--flannel-backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    #[default]
    Vxlan,
    HostGw,
    None,
}

impl Backend {
    /// The name used by the flag and in the `backend-type` annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Vxlan => "vxlan",
            Backend::HostGw => "host-gw",
            Backend::None => "none",
        }
    }

    /// The MTU pods get over an uplink of `uplink_mtu`; `None` leaves the
    /// CNI default.
    pub fn pod_mtu(self, uplink_mtu: u32) -> Option<u32> {
        match self {
            Backend::Vxlan => Some(uplink_mtu.saturating_sub(VXLAN_OVERHEAD)),
            Backend::HostGw => Some(uplink_mtu),
            Backend::None => None,
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "vxlan" => Ok(Backend::Vxlan),
            "host-gw" => Ok(Backend::HostGw),
            "none" => Ok(Backend::None),
            _ => Err("use vxlan, host-gw or none".to_string()),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The node's overlay settings (from `--flannel-backend`,
/// `--flannel-iface` and `--node-ip`).
#[derive(Debug, Clone, PartialEq)]
pub struct OverlaySettings {
    pub backend: Backend,
    /// The uplink interface; `None`: the one holding the node IP, else the
    /// one of the default route.
    pub iface: Option<String>,
    /// `--node-ip`, when given.
    pub node_ip: Option<IpAddr>,
}

/// Why the overlay could not be programmed.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("{0}")]
    Uplink(String),
}

/// How a peer node is reached, read from its Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub pod_cidr: Ipv4Net,
    pub public_ip: Ipv4Addr,
    pub backend: String,
    /// The VTEP MAC (vxlan peers only).
    pub vtep_mac: Option<Mac>,
}

/// The host state wanted for the peers: routes (destination → gateway),
/// neighbours (VTEP address → MAC) and FDB entries (MAC → public IP).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub routes: BTreeMap<Ipv4Net, Ipv4Addr>,
    pub neighbours: BTreeMap<Ipv4Addr, Mac>,
    pub fdb: BTreeMap<Mac, Ipv4Addr>,
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The annotations a node publishes for `backend` (`vtep_mac` for vxlan).
pub fn annotations(
    backend: Backend,
    public_ip: Ipv4Addr,
    vtep_mac: Option<&Mac>,
) -> BTreeMap<String, String> {
    let data = match (backend, vtep_mac) {
        (Backend::Vxlan, Some(mac)) => {
            serde_json::json!({ "VNI": VNI, "VtepMAC": format_mac(mac) }).to_string()
        }
        _ => "null".to_string(),
    };
    [
        (BACKEND_TYPE, backend.as_str().to_string()),
        (BACKEND_DATA, data),
        (PUBLIC_IP, public_ip.to_string()),
        (KUBE_SUBNET_MANAGER, "true".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The node's IPv4 podCIDR (`spec.podCIDR`, else the first IPv4 of
/// `spec.podCIDRs`).
pub fn pod_cidr_of(node: &Node) -> Option<Ipv4Net> {
    let spec = node.spec.as_ref()?;
    spec.pod_cidr
        .iter()
        .chain(spec.pod_cidrs.iter().flatten())
        .filter_map(|c| c.parse::<Ipv4Net>().ok())
        .map(|n| n.trunc())
        .next()
}

/// What `node` publishes about its overlay endpoint; `None` while it has no
/// podCIDR or has not published a backend yet.
pub fn peer_of(node: &Node) -> Option<Peer> {
    let name = node.metadata.name.clone()?;
    let pod_cidr = pod_cidr_of(node)?;
    let annotations = node.metadata.annotations.as_ref()?;
    let backend = annotations.get(BACKEND_TYPE)?.clone();
    let public_ip = annotations
        .get(PUBLIC_IP)
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        .or_else(|| internal_ip(node))?;
    let vtep_mac = annotations
        .get(BACKEND_DATA)
        .and_then(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .and_then(|data| data.get("VtepMAC")?.as_str().and_then(parse_mac));
    Some(Peer {
        name,
        pod_cidr,
        public_ip,
        backend,
        vtep_mac,
    })
}

fn internal_ip(node: &Node) -> Option<Ipv4Addr> {
    node.status
        .as_ref()?
        .addresses
        .iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse().ok())
}

/// The state wanted on node `own` (podCIDR `own_cidr`) for `nodes` over
/// `backend`. Peers of another backend, without a VTEP MAC (vxlan), whose
/// podCIDR lies outside `cluster_cidr` or overlaps this node's are skipped.
pub fn desired(
    backend: Backend,
    own: &str,
    own_cidr: Ipv4Net,
    cluster_cidr: IpNet,
    nodes: &[Arc<Node>],
) -> Desired {
    let mut want = Desired::default();
    if backend == Backend::None {
        return want;
    }
    let mut peers: Vec<Peer> = nodes
        .iter()
        .filter(|n| n.metadata.name.as_deref() != Some(own))
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter_map(|n| peer_of(n))
        .filter(|p| p.backend == backend.as_str())
        .filter(|p| cluster_cidr.contains(&IpNet::V4(p.pod_cidr)))
        .filter(|p| !p.pod_cidr.contains(&own_cidr) && !own_cidr.contains(&p.pod_cidr))
        .collect();
    // A stable order, so that two nodes claiming one podCIDR resolve the
    // same way on every sync.
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    for peer in peers {
        if want.routes.contains_key(&peer.pod_cidr) {
            continue;
        }
        match backend {
            Backend::Vxlan => {
                let Some(mac) = peer.vtep_mac else { continue };
                let vtep = peer.pod_cidr.network();
                want.routes.insert(peer.pod_cidr, vtep);
                want.neighbours.insert(vtep, mac);
                want.fdb.insert(mac, peer.public_ip);
            }
            Backend::HostGw => {
                want.routes.insert(peer.pod_cidr, peer.public_ip);
            }
            Backend::None => {}
        }
    }
    want
}

/// This node's side of the overlay on the host: the uplink, the VXLAN device
/// (vxlan) and what was last applied.
pub struct Dataplane {
    handle: rtnetlink::Handle,
    backend: Backend,
    uplink: Uplink,
    pod_cidr: Ipv4Net,
    vtep: Option<vxlan::Vtep>,
}

impl Dataplane {
    /// Connects to rtnetlink in the calling thread's network namespace and
    /// sets up the node's endpoint (the VXLAN device for vxlan).
    pub async fn start(
        backend: Backend,
        uplink: Uplink,
        pod_cidr: Ipv4Net,
    ) -> Result<Self, OverlayError> {
        let handle = link::connect()?;
        let mut dataplane = Dataplane {
            handle,
            backend,
            uplink,
            pod_cidr: pod_cidr.trunc(),
            vtep: None,
        };
        dataplane.ensure_endpoint().await?;
        Ok(dataplane)
    }

    /// The uplink the overlay runs over.
    pub fn uplink(&self) -> &Uplink {
        &self.uplink
    }

    /// The podCIDR this endpoint was set up for.
    pub fn pod_cidr(&self) -> Ipv4Net {
        self.pod_cidr
    }

    /// The annotations this node publishes.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        annotations(
            self.backend,
            self.uplink.ip,
            self.vtep.as_ref().map(|v| &v.mac),
        )
    }

    /// (Re)creates the VXLAN device when it is missing or differs.
    async fn ensure_endpoint(&mut self) -> Result<(), OverlayError> {
        if self.backend == Backend::Vxlan {
            let mtu = self
                .backend
                .pod_mtu(self.uplink.mtu)
                .unwrap_or(self.uplink.mtu);
            self.vtep =
                Some(vxlan::ensure_device(&self.handle, &self.uplink, self.pod_cidr, mtu).await?);
        }
        Ok(())
    }

    /// Makes the host match `want`: adds and replaces the wanted entries,
    /// removes the ones skiff owns that are not wanted.
    pub async fn apply(&mut self, want: &Desired) -> Result<(), OverlayError> {
        match self.backend {
            Backend::Vxlan => {
                self.ensure_endpoint().await?;
                let Some(vtep) = &self.vtep else {
                    return Ok(());
                };
                link::sync_routes(&self.handle, want, Some(vtep.index), true).await?;
                vxlan::sync_neighbours(&self.handle, vtep.index, &want.neighbours).await?;
                vxlan::sync_fdb(&self.handle, vtep.index, &want.fdb).await
            }
            Backend::HostGw => hostgw::sync(&self.handle, &self.uplink, want).await,
            Backend::None => Ok(()),
        }
    }
}

/// Keeps this node's overlay in step with the Nodes until the process ends:
/// waits for the node's podCIDR, sets up its endpoint, publishes it in the
/// Node's annotations and programs the peers on every change to the Nodes
/// (and every [`RESYNC_EVERY`]).
pub async fn run(
    client: kube::Client,
    node_name: String,
    cluster_cidr: IpNet,
    backend: Backend,
    uplink: Uplink,
) {
    if backend == Backend::None {
        tracing::info!("--flannel-backend=none: no overlay between nodes");
        return;
    }
    let api: Api<Node> = Api::all(client);
    let informer = Informer::start(api.clone());
    let mut changes = informer.subscribe();
    let mut tick = tokio::time::interval(RESYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut dataplane: Option<Dataplane> = None;
    let mut applied: Option<Desired> = None;
    loop {
        let full = tokio::select! {
            change = changes.next() => {
                if change.is_none() {
                    return;
                }
                false
            }
            _ = tick.tick() => true,
        };
        let nodes = informer.store().state();
        let Some(own) = nodes
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(node_name.as_str()))
        else {
            continue;
        };
        let Some(pod_cidr) = pod_cidr_of(own) else {
            continue;
        };
        if dataplane.as_ref().map(Dataplane::pod_cidr) != Some(pod_cidr) {
            match Dataplane::start(backend, uplink.clone(), pod_cidr).await {
                Ok(d) => {
                    tracing::info!(%backend, uplink = %d.uplink().name, mtu = d.uplink().mtu, %pod_cidr, "overlay endpoint is set up");
                    dataplane = Some(d);
                    applied = None;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot set up the overlay endpoint; retrying");
                    continue;
                }
            }
        }
        let Some(dp) = dataplane.as_mut() else {
            continue;
        };
        publish(&api, own, &node_name, dp.annotations()).await;
        let want = desired(backend, &node_name, pod_cidr, cluster_cidr, &nodes);
        if !full && applied.as_ref() == Some(&want) {
            continue;
        }
        match dp.apply(&want).await {
            Ok(()) => {
                tracing::debug!(peers = want.routes.len(), "overlay programmed");
                // The device may have been recreated (new MAC): publish again.
                publish(&api, own, &node_name, dp.annotations()).await;
                applied = Some(want);
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot program the overlay; retrying on the next change or resync");
                applied = None;
            }
        }
    }
}

/// Writes `wanted` into the Node's annotations unless they are there.
async fn publish(api: &Api<Node>, own: &Node, name: &str, wanted: BTreeMap<String, String>) {
    let current = own.metadata.annotations.clone().unwrap_or_default();
    if wanted.iter().all(|(k, v)| current.get(k) == Some(v)) {
        return;
    }
    let patch = serde_json::json!({ "metadata": { "annotations": wanted } });
    if let Err(e) = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(error = %e, node = name, "cannot publish the overlay annotations");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeAddress, NodeSpec, NodeStatus};

    fn node(name: &str, cidr: Option<&str>, annotations: &[(&str, &str)]) -> Arc<Node> {
        let mut n = Node::default();
        n.metadata.name = Some(name.to_string());
        if !annotations.is_empty() {
            n.metadata.annotations = Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
        n.spec = Some(NodeSpec {
            pod_cidr: cidr.map(str::to_string),
            ..Default::default()
        });
        Arc::new(n)
    }

    fn vxlan_node(name: &str, cidr: &str, ip: &str, mac: &str) -> Arc<Node> {
        let data = format!(r#"{{"VNI":1,"VtepMAC":"{mac}"}}"#);
        node(
            name,
            Some(cidr),
            &[
                (BACKEND_TYPE, "vxlan"),
                (BACKEND_DATA, &data),
                (PUBLIC_IP, ip),
                (KUBE_SUBNET_MANAGER, "true"),
            ],
        )
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("cidr")
    }

    const CLUSTER: &str = "10.244.0.0/16";

    #[test]
    fn macs_round_trip_and_bad_ones_are_refused() {
        let mac = parse_mac("0a:1B:2c:3d:4e:5f").expect("mac");
        assert_eq!(mac, [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]);
        assert_eq!(format_mac(&mac), "0a:1b:2c:3d:4e:5f");
        for bad in [
            "",
            "0a:1b:2c:3d:4e",
            "0a:1b:2c:3d:4e:5f:00",
            "0a:1b:2c:3d:4e:zz",
            "a:1b:2c:3d:4e:5f0",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn annotations_use_flannels_keys_and_parse_back() {
        let mac = [2, 0, 0, 0, 0, 7];
        let published = annotations(
            Backend::Vxlan,
            "10.199.1.2".parse().expect("ip"),
            Some(&mac),
        );
        assert_eq!(published[BACKEND_TYPE], "vxlan");
        assert_eq!(
            published[BACKEND_DATA],
            r#"{"VNI":1,"VtepMAC":"02:00:00:00:00:07"}"#
        );
        assert_eq!(published[PUBLIC_IP], "10.199.1.2");
        assert_eq!(published[KUBE_SUBNET_MANAGER], "true");
        let pairs: Vec<(&str, &str)> = published
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let peer = peer_of(&node("b", Some("10.244.2.0/24"), &pairs)).expect("a peer");
        assert_eq!(peer.vtep_mac, Some(mac));
        assert_eq!(
            peer.public_ip,
            "10.199.1.2".parse::<Ipv4Addr>().expect("ip")
        );
        assert_eq!(peer.pod_cidr, net("10.244.2.0/24"));
        let hostgw = annotations(Backend::HostGw, "10.199.1.2".parse().expect("ip"), None);
        assert_eq!(hostgw[BACKEND_TYPE], "host-gw");
        assert_eq!(hostgw[BACKEND_DATA], "null");
    }

    #[test]
    fn a_node_without_annotations_or_podcidr_is_no_peer_yet() {
        assert_eq!(peer_of(&node("b", Some("10.244.2.0/24"), &[])), None);
        assert_eq!(peer_of(&node("b", None, &[(BACKEND_TYPE, "vxlan")])), None);
        // No public-ip annotation: the InternalIP is used, as flannel's lease.
        let mut n = (*node("b", Some("10.244.2.0/24"), &[(BACKEND_TYPE, "host-gw")])).clone();
        n.status = Some(NodeStatus {
            addresses: Some(vec![NodeAddress {
                type_: "InternalIP".to_string(),
                address: "10.199.1.9".to_string(),
            }]),
            ..Default::default()
        });
        assert_eq!(
            peer_of(&n).map(|p| p.public_ip),
            Some("10.199.1.9".parse().expect("ip"))
        );
    }

    #[test]
    fn vxlan_peers_get_a_route_a_neighbour_and_an_fdb_entry() {
        let nodes = vec![
            vxlan_node("a", "10.244.1.0/24", "10.199.1.1", "02:00:00:00:00:01"),
            vxlan_node("b", "10.244.2.0/24", "10.199.1.2", "02:00:00:00:00:02"),
            vxlan_node("c", "10.244.3.0/24", "10.199.1.3", "02:00:00:00:00:03"),
        ];
        let want = desired(
            Backend::Vxlan,
            "a",
            net("10.244.1.0/24"),
            CLUSTER.parse().expect("cidr"),
            &nodes,
        );
        assert_eq!(want.routes.len(), 2);
        assert_eq!(
            want.routes[&net("10.244.2.0/24")],
            "10.244.2.0".parse::<Ipv4Addr>().expect("ip")
        );
        assert_eq!(
            want.routes[&net("10.244.3.0/24")],
            "10.244.3.0".parse::<Ipv4Addr>().expect("ip")
        );
        assert_eq!(
            want.neighbours[&"10.244.2.0".parse::<Ipv4Addr>().expect("ip")],
            [2, 0, 0, 0, 0, 2]
        );
        assert_eq!(
            want.fdb[&[2, 0, 0, 0, 0, 3]],
            "10.199.1.3".parse::<Ipv4Addr>().expect("ip")
        );
        // Node c leaves: its entries are no longer wanted.
        let want = desired(
            Backend::Vxlan,
            "a",
            net("10.244.1.0/24"),
            CLUSTER.parse().expect("cidr"),
            &nodes[..2],
        );
        assert_eq!(
            want.routes.keys().collect::<Vec<_>>(),
            vec![&net("10.244.2.0/24")]
        );
        assert_eq!(want.neighbours.len(), 1);
        assert_eq!(want.fdb.len(), 1);
    }

    #[test]
    fn host_gw_routes_go_via_the_peer_node_ip() {
        let nodes = vec![
            node(
                "a",
                Some("10.244.1.0/24"),
                &[(BACKEND_TYPE, "host-gw"), (PUBLIC_IP, "10.199.1.1")],
            ),
            node(
                "b",
                Some("10.244.2.0/24"),
                &[(BACKEND_TYPE, "host-gw"), (PUBLIC_IP, "10.199.1.2")],
            ),
        ];
        let want = desired(
            Backend::HostGw,
            "a",
            net("10.244.1.0/24"),
            CLUSTER.parse().expect("cidr"),
            &nodes,
        );
        assert_eq!(
            want.routes[&net("10.244.2.0/24")],
            "10.199.1.2".parse::<Ipv4Addr>().expect("ip")
        );
        assert!(want.neighbours.is_empty() && want.fdb.is_empty());
        assert_eq!(
            desired(
                Backend::None,
                "a",
                net("10.244.1.0/24"),
                CLUSTER.parse().expect("cidr"),
                &nodes
            ),
            Desired::default()
        );
    }

    #[test]
    fn unusable_peers_are_skipped() {
        let nodes = vec![
            // Another backend.
            node(
                "hg",
                Some("10.244.5.0/24"),
                &[(BACKEND_TYPE, "host-gw"), (PUBLIC_IP, "10.199.1.5")],
            ),
            // vxlan without a VTEP MAC.
            node(
                "nomac",
                Some("10.244.6.0/24"),
                &[(BACKEND_TYPE, "vxlan"), (PUBLIC_IP, "10.199.1.6")],
            ),
            // Outside the cluster CIDR.
            vxlan_node("out", "192.168.7.0/24", "10.199.1.7", "02:00:00:00:00:07"),
            // Overlapping this node's podCIDR.
            vxlan_node("dup", "10.244.1.0/24", "10.199.1.8", "02:00:00:00:00:08"),
            // Two nodes claiming one podCIDR: the first by name wins.
            vxlan_node("x", "10.244.9.0/24", "10.199.1.9", "02:00:00:00:00:09"),
            vxlan_node("y", "10.244.9.0/24", "10.199.1.10", "02:00:00:00:00:0a"),
        ];
        let want = desired(
            Backend::Vxlan,
            "a",
            net("10.244.1.0/24"),
            CLUSTER.parse().expect("cidr"),
            &nodes,
        );
        assert_eq!(
            want.routes.keys().collect::<Vec<_>>(),
            vec![&net("10.244.9.0/24")]
        );
        assert_eq!(
            want.fdb.keys().collect::<Vec<_>>(),
            vec![&[2, 0, 0, 0, 0, 9]]
        );
    }

    #[test]
    fn the_pod_mtu_leaves_room_for_vxlan() {
        assert_eq!(Backend::Vxlan.pod_mtu(1500), Some(1450));
        assert_eq!(Backend::Vxlan.pod_mtu(9000), Some(8950));
        assert_eq!(Backend::HostGw.pod_mtu(1500), Some(1500));
        assert_eq!(Backend::None.pod_mtu(1500), None);
        assert_eq!("host-gw".parse::<Backend>(), Ok(Backend::HostGw));
        assert!("udp".parse::<Backend>().is_err());
    }
}
