//! The host side of the proxy: applying a ruleset with one
//! `iptables-restore --noflush`, the jumps from the built-in chains into
//! ours, reading which of our chains exist, removing them all
//! ([`cleanup`]), and flushing stale UDP conntrack entries.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::rules::{FILTER_CHAINS, NAT_CHAINS, SERVICE_CHAIN_PREFIXES};

/// Why the host could not be programmed.
#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    /// The message says what to install.
    #[error("cannot run `{command}`: {message} (is the Debian package `iptables` installed?)")]
    Spawn { command: String, message: String },
    #[error("`{command}` failed: {message}")]
    Failed { command: String, message: String },
}

/// A jump from a built-in chain into one of ours: table, parent, the
/// match arguments and our chain (upstream's iptablesJumpChains).
struct Jump {
    table: &'static str,
    parent: &'static str,
    args: &'static [&'static str],
    chain: &'static str,
}

const NEW: &[&str] = &["-m", "conntrack", "--ctstate", "NEW"];

const JUMPS: &[Jump] = &[
    Jump {
        table: "filter",
        parent: "INPUT",
        args: &[
            "-m",
            "comment",
            "--comment",
            "kubernetes externally-visible service portals",
        ],
        chain: "KUBE-EXTERNAL-SERVICES",
    },
    Jump {
        table: "filter",
        parent: "FORWARD",
        args: &[
            "-m",
            "comment",
            "--comment",
            "kubernetes externally-visible service portals",
        ],
        chain: "KUBE-EXTERNAL-SERVICES",
    },
    Jump {
        table: "filter",
        parent: "INPUT",
        args: &[
            "-m",
            "comment",
            "--comment",
            "kubernetes health check service ports",
        ],
        chain: "KUBE-NODEPORTS",
    },
    Jump {
        table: "filter",
        parent: "FORWARD",
        args: &["-m", "comment", "--comment", "kubernetes service portals"],
        chain: "KUBE-SERVICES",
    },
    Jump {
        table: "filter",
        parent: "OUTPUT",
        args: &["-m", "comment", "--comment", "kubernetes service portals"],
        chain: "KUBE-SERVICES",
    },
    Jump {
        table: "filter",
        parent: "FORWARD",
        args: &["-m", "comment", "--comment", "kubernetes forwarding rules"],
        chain: "KUBE-FORWARD",
    },
    Jump {
        table: "filter",
        parent: "INPUT",
        args: &[
            "-m",
            "comment",
            "--comment",
            "kubernetes load balancer firewall",
        ],
        chain: "KUBE-PROXY-FIREWALL",
    },
    Jump {
        table: "filter",
        parent: "OUTPUT",
        args: &[
            "-m",
            "comment",
            "--comment",
            "kubernetes load balancer firewall",
        ],
        chain: "KUBE-PROXY-FIREWALL",
    },
    Jump {
        table: "filter",
        parent: "FORWARD",
        args: &[
            "-m",
            "comment",
            "--comment",
            "kubernetes load balancer firewall",
        ],
        chain: "KUBE-PROXY-FIREWALL",
    },
    Jump {
        table: "nat",
        parent: "OUTPUT",
        args: &["-m", "comment", "--comment", "kubernetes service portals"],
        chain: "KUBE-SERVICES",
    },
    Jump {
        table: "nat",
        parent: "PREROUTING",
        args: &["-m", "comment", "--comment", "kubernetes service portals"],
        chain: "KUBE-SERVICES",
    },
    Jump {
        table: "nat",
        parent: "POSTROUTING",
        args: &["-m", "comment", "--comment", "kubernetes postrouting rules"],
        chain: "KUBE-POSTROUTING",
    },
];

impl Jump {
    /// Filter jumps only look at new connections (as upstream), except the
    /// forwarding chain, which also accepts established ones.
    fn args(&self) -> Vec<&'static str> {
        let mut args = Vec::new();
        if self.table == "filter" && self.chain != "KUBE-FORWARD" && self.chain != "KUBE-NODEPORTS"
        {
            args.extend_from_slice(NEW);
        }
        args.extend_from_slice(self.args);
        args.extend_from_slice(&["-j", self.chain]);
        args
    }
}

/// Applies a restore input atomically (both tables or nothing).
pub fn restore(text: &str) -> Result<(), IptablesError> {
    let command = "iptables-restore --noflush";
    let spawn_error = |e: std::io::Error| IptablesError::Spawn {
        command: command.to_string(),
        message: e.to_string(),
    };
    let mut child = Command::new("iptables-restore")
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_error)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).map_err(spawn_error)?;
    }
    let output = child.wait_with_output().map_err(spawn_error)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(IptablesError::Failed {
            command: command.to_string(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// Adds the jumps from the built-in chains that are missing, in front of
/// the chains' other rules (idempotent; our chains must exist).
pub fn ensure_jumps() -> Result<(), IptablesError> {
    for jump in JUMPS {
        let args = jump.args();
        let mut check = vec!["-t", jump.table, "-C", jump.parent];
        check.extend_from_slice(&args);
        if iptables(&check).is_ok() {
            continue;
        }
        let mut insert = vec!["-t", jump.table, "-I", jump.parent];
        insert.extend_from_slice(&args);
        iptables(&insert)?;
    }
    Ok(())
}

/// The per-service nat chains present on the host (left by an earlier run).
pub fn existing_service_chains() -> BTreeSet<String> {
    chains("nat")
        .into_iter()
        .filter(|c| SERVICE_CHAIN_PREFIXES.iter().any(|p| c.starts_with(p)))
        .collect()
}

/// The user chains of `table`, from `iptables-save`.
fn chains(table: &str) -> Vec<String> {
    let Ok(output) = Command::new("iptables-save").args(["-t", table]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Whether `chain` is one of the proxy's.
fn ours(table: &str, chain: &str) -> bool {
    let base = if table == "nat" {
        NAT_CHAINS
    } else {
        FILTER_CHAINS
    };
    base.contains(&chain)
        || (table == "nat" && SERVICE_CHAIN_PREFIXES.iter().any(|p| chain.starts_with(p)))
}

/// Removes the jumps and every chain of the proxy from the host. Best
/// effort and idempotent: what is already gone is skipped. Other chains
/// (skiff's SKIFF-*, the host's own) are left alone.
pub fn cleanup() {
    for jump in JUMPS {
        let args = jump.args();
        let mut delete = vec!["-t", jump.table, "-D", jump.parent];
        delete.extend_from_slice(&args);
        // A jump may have been added twice by hand; bounded by the rule count.
        for _ in 0..16 {
            if iptables(&delete).is_err() {
                break;
            }
        }
    }
    let mut text = String::new();
    for table in ["filter", "nat"] {
        let mine: Vec<String> = chains(table)
            .into_iter()
            .filter(|c| ours(table, c))
            .collect();
        if mine.is_empty() {
            continue;
        }
        text.push_str(&format!("*{table}\n"));
        for chain in &mine {
            text.push_str(&format!(":{chain} - [0:0]\n"));
        }
        for chain in &mine {
            text.push_str(&format!("-X {chain}\n"));
        }
        text.push_str("COMMIT\n");
    }
    if !text.is_empty()
        && let Err(e) = restore(&text)
    {
        tracing::warn!(error = %e, "cannot remove the service proxy's iptables chains");
    }
}

/// A UDP flow to forget: connections to `destination` (a service address,
/// or any local address when `node_port` is set) DNATed to `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StaleFlow {
    /// Entries from a service address to a removed endpoint.
    ToEndpoint {
        destination: Ipv4Addr,
        endpoint: Ipv4Addr,
    },
    /// Entries on a NodePort to a removed endpoint.
    NodePort { port: u16, endpoint: Ipv4Addr },
    /// Every entry to a service address that had no endpoint (they were
    /// rejected, and a UDP client keeps its flow).
    Destination(Ipv4Addr),
}

/// Deletes the conntrack entries of `flows`, when `conntrack` is installed.
pub fn flush_conntrack(flows: &[StaleFlow]) {
    for flow in flows {
        let args: Vec<String> = match flow {
            StaleFlow::ToEndpoint {
                destination,
                endpoint,
            } => {
                vec![
                    "-D".into(),
                    "-p".into(),
                    "udp".into(),
                    "--orig-dst".into(),
                    destination.to_string(),
                    "--dst-nat".into(),
                    endpoint.to_string(),
                ]
            }
            StaleFlow::NodePort { port, endpoint } => {
                vec![
                    "-D".into(),
                    "-p".into(),
                    "udp".into(),
                    "--orig-port-dst".into(),
                    port.to_string(),
                    "--dst-nat".into(),
                    endpoint.to_string(),
                ]
            }
            StaleFlow::Destination(ip) => vec![
                "-D".into(),
                "-p".into(),
                "udp".into(),
                "--orig-dst".into(),
                ip.to_string(),
            ],
        };
        // Exit status 1 means "no entry matched"; a missing binary means
        // the feature is off (logged once by the caller).
        let _ = Command::new("conntrack")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether the `conntrack` tool is installed.
pub fn conntrack_available() -> bool {
    Command::new("conntrack")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn iptables(args: &[&str]) -> Result<(), IptablesError> {
    let command = format!("iptables {}", args.join(" "));
    let output =
        Command::new("iptables")
            .args(args)
            .output()
            .map_err(|e| IptablesError::Spawn {
                command: command.clone(),
                message: e.to_string(),
            })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(IptablesError::Failed {
            command,
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}
