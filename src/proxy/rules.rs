//! The iptables ruleset for a set of service ports, in kube-proxy's chain
//! structure (pkg/proxy/iptables/proxier.go), as the text of one
//! `iptables-restore --noflush` input for the filter and nat tables.
//!
//! Every `KUBE-*` chain the ruleset names is declared in the input, which
//! flushes it; chains of an earlier ruleset that are gone are declared and
//! deleted. Built-in chains and everyone else's chains are never touched
//! here (the jumps into ours are added once, see `iptables.rs`).

use std::collections::BTreeSet;
use std::fmt::Write;

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use super::service_ports::{Endpoint, ServicePort};

/// The mark that asks KUBE-POSTROUTING to masquerade (upstream's default bit).
pub const MASQ_MARK: &str = "0x4000";

/// The chains every ruleset declares, per table.
pub const NAT_CHAINS: &[&str] = &[
    "KUBE-SERVICES",
    "KUBE-NODEPORTS",
    "KUBE-POSTROUTING",
    "KUBE-MARK-MASQ",
];
pub const FILTER_CHAINS: &[&str] = &[
    "KUBE-SERVICES",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FORWARD",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-FIREWALL",
];

/// The prefixes of per-service nat chains (the ones that come and go).
pub const SERVICE_CHAIN_PREFIXES: &[&str] = &[
    "KUBE-SVC-",
    "KUBE-SVL-",
    "KUBE-EXT-",
    "KUBE-FW-",
    "KUBE-SEP-",
];

/// A rendered ruleset: the restore input and the per-service nat chains it
/// uses (the next sync deletes those that are no longer used).
#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    pub text: String,
    pub service_chains: BTreeSet<String>,
}

/// Chain names as upstream derives them: the prefix and the first 16
/// characters of the base32 SHA-256 of the identifying string.
fn hashed(prefix: &str, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut name = String::from(prefix);
    name.push_str(&base32(&digest)[..16]);
    name
}

/// RFC 4648 base32 (upper case), enough of it for chain names.
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u64::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

pub fn svc_chain(port: &ServicePort) -> String {
    hashed("KUBE-SVC-", &format!("{}{}", port.name, port.protocol))
}
pub fn svl_chain(port: &ServicePort) -> String {
    hashed("KUBE-SVL-", &format!("{}{}", port.name, port.protocol))
}
pub fn ext_chain(port: &ServicePort) -> String {
    hashed("KUBE-EXT-", &format!("{}{}", port.name, port.protocol))
}
pub fn fw_chain(port: &ServicePort) -> String {
    hashed("KUBE-FW-", &format!("{}{}", port.name, port.protocol))
}
pub fn sep_chain(port: &ServicePort, endpoint: &Endpoint) -> String {
    hashed(
        "KUBE-SEP-",
        &format!("{}{}{}", port.name, port.protocol, endpoint.address()),
    )
}

/// Renders the ruleset for `ports`; `previous` are the per-service chains
/// of the last ruleset applied (or found on the host at start). With
/// `unchanged`, the per-service chains of those ports are left as they are
/// on the host (not declared, so not flushed), as upstream's partial syncs
/// do: the restore then only carries the shared chains and what changed.
pub fn render(
    ports: &[ServicePort],
    cluster_cidr: IpNet,
    previous: &BTreeSet<String>,
    unchanged: &dyn Fn(&ServicePort) -> bool,
) -> Ruleset {
    let mut filter = Section::default();
    let mut nat = Section::default();
    for chain in FILTER_CHAINS {
        filter.chain(chain);
    }
    for chain in NAT_CHAINS {
        nat.chain(chain);
    }
    base_rules(&mut filter, &mut nat);
    for port in ports {
        let mut own = Section::default();
        service_rules(port, cluster_cidr, &mut filter, &mut nat, &mut own);
        if unchanged(port) {
            nat.service_chains.append(&mut own.service_chains);
        } else {
            nat.append(own);
        }
    }
    nat.rule(
        "KUBE-SERVICES",
        r#"-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS"#,
    );
    let service_chains = nat.service_chains.clone();
    let stale: Vec<&String> = previous.difference(&service_chains).collect();
    for chain in &stale {
        nat.chain(chain);
    }
    for chain in &stale {
        let _ = writeln!(nat.rules, "-X {chain}");
    }
    let mut text = String::with_capacity(filter.len() + nat.len() + 64);
    filter.write_to(&mut text, "filter");
    nat.write_to(&mut text, "nat");
    Ruleset {
        text,
        service_chains,
    }
}

/// One table's part of the restore input.
#[derive(Default)]
struct Section {
    chains: String,
    rules: String,
    service_chains: BTreeSet<String>,
}

impl Section {
    fn chain(&mut self, name: &str) {
        let _ = writeln!(self.chains, ":{name} - [0:0]");
        if SERVICE_CHAIN_PREFIXES.iter().any(|p| name.starts_with(p)) {
            self.service_chains.insert(name.to_string());
        }
    }

    fn rule(&mut self, chain: &str, args: &str) {
        let _ = writeln!(self.rules, "-A {chain} {args}");
    }

    /// Adds another section's chains and rules after this one's.
    fn append(&mut self, mut other: Section) {
        self.chains.push_str(&other.chains);
        self.rules.push_str(&other.rules);
        self.service_chains.append(&mut other.service_chains);
    }

    fn len(&self) -> usize {
        self.chains.len() + self.rules.len()
    }

    fn write_to(&self, out: &mut String, table: &str) {
        let _ = writeln!(out, "*{table}");
        out.push_str(&self.chains);
        out.push_str(&self.rules);
        out.push_str("COMMIT\n");
    }
}

fn base_rules(filter: &mut Section, nat: &mut Section) {
    filter.rule("KUBE-FORWARD", "-m conntrack --ctstate INVALID -j DROP");
    filter.rule(
        "KUBE-FORWARD",
        &format!(r#"-m comment --comment "kubernetes forwarding rules" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT"#),
    );
    filter.rule(
        "KUBE-FORWARD",
        r#"-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"#,
    );
    nat.rule(
        "KUBE-POSTROUTING",
        &format!("-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"),
    );
    // Clear the mark so a packet re-traversing the chains is not masqueraded twice.
    nat.rule(
        "KUBE-POSTROUTING",
        &format!("-j MARK --xor-mark {MASQ_MARK}"),
    );
    nat.rule(
        "KUBE-POSTROUTING",
        r#"-m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully"#,
    );
    nat.rule("KUBE-MARK-MASQ", &format!("-j MARK --or-mark {MASQ_MARK}"));
}

fn service_rules(
    port: &ServicePort,
    cluster_cidr: IpNet,
    filter: &mut Section,
    nat: &mut Section,
    own: &mut Section,
) {
    let name = &port.name;
    let proto = &port.protocol;
    let match_proto = format!("-m {proto} -p {proto}");
    let cluster_endpoints = port.cluster_endpoints();
    let local_endpoints = port.local_endpoints();
    let all_usable = !port.endpoints.is_empty();

    let svc = svc_chain(port);
    let svl = svl_chain(port);
    let ext = ext_chain(port);
    let fw = fw_chain(port);
    let uses_svc = !cluster_endpoints.is_empty();
    let uses_svl = !local_endpoints.is_empty();

    let (cluster_policy, has_internal) = if port.internal_local {
        (&svl, uses_svl)
    } else {
        (&svc, uses_svc)
    };
    let (external_policy, has_external) = if port.external_local {
        (&svl, uses_svl)
    } else {
        (&svc, uses_svc)
    };
    let uses_ext = has_external && port.externally_accessible();
    let uses_fw = uses_ext && !port.source_ranges.is_empty() && !port.load_balancer_ips.is_empty();

    // Traffic with no endpoint to go to: REJECT when the service has none
    // at all, DROP when only the local ones are missing (as upstream).
    let no_endpoints = |what: &str| {
        if all_usable {
            (
                format!(r#"-m comment --comment "{name} has no local endpoints{what}""#),
                "DROP",
            )
        } else {
            (
                format!(r#"-m comment --comment "{name} has no endpoints{what}""#),
                "REJECT",
            )
        }
    };

    let cluster_ip = port.cluster_ip;
    let service_port = port.port;
    if has_internal {
        nat.rule(
            "KUBE-SERVICES",
            &format!(r#"-m comment --comment "{name} cluster IP" {match_proto} -d {cluster_ip} --dport {service_port} -j {cluster_policy}"#),
        );
    } else {
        let (comment, target) = no_endpoints("");
        filter.rule(
            "KUBE-SERVICES",
            &format!("{comment} {match_proto} -d {cluster_ip} --dport {service_port} -j {target}"),
        );
    }

    let external_target = if uses_fw { &fw } else { &ext };
    for ip in &port.external_ips {
        if uses_ext {
            nat.rule(
                "KUBE-SERVICES",
                &format!(r#"-m comment --comment "{name} external IP" {match_proto} -d {ip} --dport {service_port} -j {ext}"#),
            );
        } else {
            let (comment, target) = no_endpoints("");
            filter.rule(
                "KUBE-EXTERNAL-SERVICES",
                &format!("{comment} {match_proto} -d {ip} --dport {service_port} -j {target}"),
            );
        }
    }
    for ip in &port.load_balancer_ips {
        if uses_ext {
            nat.rule(
                "KUBE-SERVICES",
                &format!(
                    r#"-m comment --comment "{name} loadbalancer IP" {match_proto} -d {ip} --dport {service_port} -j {external_target}"#
                ),
            );
            if uses_fw {
                filter.rule(
                    "KUBE-PROXY-FIREWALL",
                    &format!(
                        r#"-m comment --comment "{name} traffic not accepted by {fw}" {match_proto} -d {ip} --dport {service_port} -j DROP"#
                    ),
                );
            }
        } else {
            let (comment, target) = no_endpoints("");
            filter.rule(
                "KUBE-EXTERNAL-SERVICES",
                &format!("{comment} {match_proto} -d {ip} --dport {service_port} -j {target}"),
            );
        }
    }
    if let Some(node_port) = port.node_port {
        if uses_ext {
            nat.rule(
                "KUBE-NODEPORTS",
                &format!(
                    r#"-m comment --comment {name} {match_proto} --dport {node_port} -j {ext}"#
                ),
            );
        } else {
            let (comment, target) = no_endpoints("");
            filter.rule(
                "KUBE-EXTERNAL-SERVICES",
                &format!("{comment} -m addrtype --dst-type LOCAL {match_proto} --dport {node_port} -j {target}"),
            );
        }
    }

    if uses_ext {
        own.chain(&ext);
        if port.external_local {
            if has_internal {
                own.rule(&ext,
                    &format!(r#"-m comment --comment "pod traffic for {name} external destinations" -s {cluster_cidr} -j {cluster_policy}"#),
                );
            }
            own.rule(&ext,
                &format!(
                    r#"-m comment --comment "masquerade LOCAL traffic for {name} external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ"#
                ),
            );
            if has_internal {
                own.rule(&ext,
                    &format!(
                        r#"-m comment --comment "route LOCAL traffic for {name} external destinations" -m addrtype --src-type LOCAL -j {cluster_policy}"#
                    ),
                );
            }
        } else {
            own.rule(&ext,
                &format!(r#"-m comment --comment "masquerade traffic for {name} external destinations" -j KUBE-MARK-MASQ"#),
            );
        }
        own.rule(&ext, &format!("-j {external_policy}"));
    }

    if uses_fw {
        own.chain(&fw);
        let comment = format!(r#"-m comment --comment "{name} loadbalancer IP""#);
        for range in &port.source_ranges {
            own.rule(&fw, &format!("{comment} -s {range} -j {ext}"));
        }
        // The nodes' own traffic to the LB address is allowed too.
        for ip in &port.load_balancer_ips {
            own.rule(&fw, &format!("{comment} -s {ip} -j {ext}"));
        }
        own.rule(&fw,
            &format!(r#"-m comment --comment "other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL""#),
        );
    }

    if uses_svc {
        own.chain(&svc);
        own.rule(&svc,
            &format!(
                r#"-m comment --comment "{name} cluster IP" {match_proto} -d {cluster_ip} --dport {service_port} ! -s {cluster_cidr} -j KUBE-MARK-MASQ"#
            ),
        );
        endpoint_jumps(port, &svc, &cluster_endpoints, own);
    }
    if uses_svl {
        own.chain(&svl);
        endpoint_jumps(port, &svl, &local_endpoints, own);
    }
    let mut written = BTreeSet::new();
    for endpoint in cluster_endpoints.iter().chain(local_endpoints.iter()) {
        let sep = sep_chain(port, endpoint);
        if !written.insert(sep.clone()) {
            continue;
        }
        own.chain(&sep);
        let ip = endpoint.ip;
        let address = endpoint.address();
        // Hairpin: a pod reaching itself through the service is masqueraded
        // so the replies come back through the bridge.
        own.rule(
            &sep,
            &format!("-m comment --comment {name} -s {ip} -j KUBE-MARK-MASQ"),
        );
        let affinity = if port.affinity_seconds.is_some() {
            format!(" -m recent --name {sep} --set --rsource")
        } else {
            String::new()
        };
        own.rule(&sep,
            &format!("-m comment --comment {name}{affinity} {match_proto} -j DNAT --to-destination {address}"),
        );
    }
}

/// The jumps from a service chain to its endpoint chains: affinity checks
/// first, then a random choice where the i-th of n endpoints is taken with
/// probability 1/(n-i), which spreads connections evenly.
fn endpoint_jumps(port: &ServicePort, chain: &str, endpoints: &[&Endpoint], nat: &mut Section) {
    let name = &port.name;
    if let Some(seconds) = port.affinity_seconds {
        for endpoint in endpoints {
            let sep = sep_chain(port, endpoint);
            nat.rule(
                chain,
                &format!("-m comment --comment {name} -m recent --name {sep} --rcheck --seconds {seconds} --reap --rsource -j {sep}"),
            );
        }
    }
    let n = endpoints.len();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let sep = sep_chain(port, endpoint);
        let comment = format!(r#"-m comment --comment "{name} -> {}""#, endpoint.address());
        if i + 1 < n {
            let probability = 1.0 / (n - i) as f64;
            nat.rule(
                chain,
                &format!(
                    "{comment} -m statistic --mode random --probability {probability:.10} -j {sep}"
                ),
            );
        } else {
            nat.rule(chain, &format!("{comment} -j {sep}"));
        }
    }
}

#[cfg(test)]
mod tests;
