//! The single-node pod network: a CNI bridge (`skiff0`) with host-local IPAM
//! over the node's podCIDR plus portmap, IP forwarding, masquerading of pod
//! traffic that leaves the cluster CIDR, and `unreachable` routes for the
//! cluster and service CIDRs so traffic to an unassigned cluster address fails
//! on this host instead of going to the default gateway.
//!
//! The network between nodes (VXLAN or host-gw, flannel's behaviour) is in
//! [`overlay`]; its MTU reaches the bridge through [`NetSettings::mtu`].
//!
//! [`cleanup`] removes everything [`setup`] and the overlay add to the host
//! (the bridge, the VXLAN device, their routes and skiff's iptables chains)
//! and the cluster DNS address; pods' own veths and network namespaces
//! belong to the runtime and go with their sandboxes.

pub mod hostgw;
pub mod link;
pub mod overlay;
pub mod vxlan;

use std::path::{Path, PathBuf};
use std::process::Command;

use ipnet::IpNet;

/// The bridge pods are attached to.
pub const BRIDGE: &str = "skiff0";
/// skiff's own iptables chains (nat and filter tables).
const NAT_CHAIN: &str = "SKIFF-POSTROUTING";
const FILTER_CHAIN: &str = "SKIFF-FORWARD";
/// The CNI config file skiff writes.
const CONFLIST: &str = "10-skiff.conflist";

/// Why the pod network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run `{command}`: {message} (is the Debian package `{package}` installed?)")]
    Command {
        command: String,
        message: String,
        package: &'static str,
    },
}

/// What the node's network is made of.
#[derive(Debug, Clone)]
pub struct NetSettings {
    pub cni_conf_dir: PathBuf,
    /// host-local's allocation state (kept under the data dir).
    pub ipam_dir: PathBuf,
    pub pod_cidr: IpNet,
    pub cluster_cidr: IpNet,
    pub service_cidr: IpNet,
    /// The pods' MTU (the overlay's); `None`: the CNI plugin's default.
    pub mtu: Option<u32>,
}

/// Writes the CNI config and programs the host (idempotent).
pub fn setup(settings: &NetSettings) -> Result<(), NetError> {
    write_conflist(settings)?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|source| NetError::Write {
        path: PathBuf::from("/proc/sys/net/ipv4/ip_forward"),
        source,
    })?;
    for cidr in [settings.cluster_cidr, settings.service_cidr] {
        run(
            "ip",
            &["route", "replace", "unreachable", &cidr.to_string()],
            "iproute2",
        )?;
    }
    let pod = settings.pod_cidr.to_string();
    let cluster = settings.cluster_cidr.to_string();
    ensure_chain("nat", NAT_CHAIN, "POSTROUTING")?;
    run("iptables", &["-t", "nat", "-F", NAT_CHAIN], "iptables")?;
    run(
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            NAT_CHAIN,
            "-s",
            &pod,
            "!",
            "-d",
            &cluster,
            "-j",
            "MASQUERADE",
        ],
        "iptables",
    )?;
    ensure_chain("filter", FILTER_CHAIN, "FORWARD")?;
    run(
        "iptables",
        &["-t", "filter", "-F", FILTER_CHAIN],
        "iptables",
    )?;
    for direction in ["-s", "-d"] {
        run(
            "iptables",
            &[
                "-t",
                "filter",
                "-A",
                FILTER_CHAIN,
                direction,
                &cluster,
                "-j",
                "ACCEPT",
            ],
            "iptables",
        )?;
    }
    Ok(())
}

/// Removes the bridge, the routes and the iptables chains [`setup`] added,
/// and the service proxy's chains. Best effort: what is already gone is
/// skipped.
pub fn cleanup(cluster_cidr: IpNet, service_cidr: IpNet) {
    crate::proxy::iptables::cleanup();
    for cidr in [cluster_cidr, service_cidr] {
        let _ = run(
            "ip",
            &["route", "del", "unreachable", &cidr.to_string()],
            "iproute2",
        );
    }
    for (table, chain, parent) in [
        ("nat", NAT_CHAIN, "POSTROUTING"),
        ("filter", FILTER_CHAIN, "FORWARD"),
    ] {
        while run(
            "iptables",
            &["-t", table, "-D", parent, "-j", chain],
            "iptables",
        )
        .is_ok()
        {}
        let _ = run("iptables", &["-t", table, "-F", chain], "iptables");
        let _ = run("iptables", &["-t", table, "-X", chain], "iptables");
    }
    let _ = run("ip", &["link", "del", BRIDGE], "iproute2");
    remove_overlay();
    crate::dns::interface::remove(None);
}

/// Removes the VXLAN device (with its routes, neighbours and FDB entries)
/// and every route skiff owns, in the calling thread's network namespace.
/// Runs on a thread of its own so that it works inside and outside a tokio
/// runtime.
fn remove_overlay() {
    let removed = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime
                    .block_on(link::remove_all(overlay::VXLAN_DEVICE))
                    .map_err(|e| e.to_string())
            })
            .join()
            .unwrap_or_else(|_| Err("the cleanup thread panicked".to_string()))
    });
    if let Err(e) = removed {
        tracing::warn!(error = %e, "cannot remove the overlay");
    }
}

/// The bridge conflist for `settings`.
pub fn conflist(settings: &NetSettings) -> serde_json::Value {
    let mut list = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "skiff",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": settings.ipam_dir,
                    "ranges": [[{ "subnet": settings.pod_cidr.to_string() }]],
                    "routes": [{ "dst": "0.0.0.0/0" }]
                }
            },
            { "type": "portmap", "capabilities": { "portMappings": true } }
        ]
    });
    if let Some(mtu) = settings.mtu {
        list["plugins"][0]["mtu"] = mtu.into();
    }
    list
}

fn write_conflist(settings: &NetSettings) -> Result<(), NetError> {
    let write_error = |path: &Path, source| NetError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(&settings.cni_conf_dir)
        .map_err(|e| write_error(&settings.cni_conf_dir, e))?;
    let path = settings.cni_conf_dir.join(CONFLIST);
    let text = serde_json::to_string_pretty(&conflist(settings)).unwrap_or_default();
    std::fs::write(&path, text).map_err(|e| write_error(&path, e))
}

fn ensure_chain(table: &str, chain: &str, parent: &str) -> Result<(), NetError> {
    if run("iptables", &["-t", table, "-L", chain, "-n"], "iptables").is_err() {
        run("iptables", &["-t", table, "-N", chain], "iptables")?;
    }
    if run(
        "iptables",
        &["-t", table, "-C", parent, "-j", chain],
        "iptables",
    )
    .is_err()
    {
        run(
            "iptables",
            &["-t", table, "-I", parent, "-j", chain],
            "iptables",
        )?;
    }
    Ok(())
}

fn run(program: &str, args: &[&str], package: &'static str) -> Result<(), NetError> {
    let command = format!("{program} {}", args.join(" "));
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| NetError::Command {
            command: command.clone(),
            message: e.to_string(),
            package,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(NetError::Command {
            command,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            package,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conflist_uses_the_node_range_and_a_private_ipam_dir() {
        let settings = NetSettings {
            cni_conf_dir: PathBuf::from("/d/etc/cni/net.d"),
            ipam_dir: PathBuf::from("/d/cni/networks"),
            pod_cidr: "10.42.3.0/24".parse().expect("cidr"),
            cluster_cidr: "10.42.0.0/16".parse().expect("cidr"),
            service_cidr: "10.43.0.0/16".parse().expect("cidr"),
            mtu: None,
        };
        let list = conflist(&settings);
        let bridge = &list["plugins"][0];
        assert_eq!(bridge["bridge"], BRIDGE);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.42.3.0/24");
        assert_eq!(bridge["ipam"]["dataDir"], "/d/cni/networks");
        assert!(bridge.get("mtu").is_none());
        let list = conflist(&NetSettings {
            mtu: Some(1450),
            ..settings
        });
        assert_eq!(list["plugins"][0]["mtu"], 1450);
    }
}
