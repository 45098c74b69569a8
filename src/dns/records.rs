//! The cluster zone: what the cluster DNS answers for names under the
//! cluster domain and for reverse lookups of cluster addresses, computed
//! from a snapshot of Services and EndpointSlices as CoreDNS's `kubernetes`
//! plugin answers them (the DNS-based service discovery specification):
//!
//! - `svc.ns.svc.<domain>`: the ClusterIPs (A/AAAA); for a headless Service
//!   one record per ready endpoint address (every address when
//!   `publishNotReadyAddresses`); an ExternalName Service is a CNAME.
//! - `host.svc.ns.svc.<domain>`: a headless Service's endpoint with that
//!   `hostname` (StatefulSet pods), or with that dashed address.
//! - `_port._proto.svc.ns.svc.<domain>` SRV for named ports.
//! - `a-b-c-d.ns.pod.<domain>`: the address in the name (CoreDNS's
//!   `pods insecure`, the mode k3s configures).
//! - PTR for ClusterIPs and headless endpoint addresses; other reverse
//!   names fall through to the upstream resolvers.
//!
//! Unknown names in the zone are NXDOMAIN and names that exist without the
//! asked type are NODATA, both with the zone's SOA in the authority section.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The TTL of cluster records (CoreDNS's default).
pub const TTL: u32 = 5;

/// One port of a Service or of its endpoints.
#[derive(Debug, Clone, PartialEq)]
struct Port {
    name: String,
    protocol: String,
    port: u16,
}

/// An endpoint address of a Service that DNS publishes.
#[derive(Debug, Clone)]
struct Endpoint {
    ip: IpAddr,
    hostname: Option<String>,
    ports: Vec<Port>,
}

/// What DNS needs of one Service.
#[derive(Debug, Clone, Default)]
struct Svc {
    cluster_ips: Vec<IpAddr>,
    headless: bool,
    external_name: Option<String>,
    ports: Vec<Port>,
    endpoints: Vec<Endpoint>,
}

/// The answer for one question in the cluster zone.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Records for the answer section, and for the additional section.
    Answer {
        answers: Vec<Record>,
        additionals: Vec<Record>,
    },
    /// An ExternalName Service: its CNAME, whose target the caller resolves.
    Alias { cname: Box<Record>, target: Name },
    /// The name exists but has no record of the asked type.
    NoData,
    /// The name does not exist in the zone.
    NxDomain,
    /// Not the cluster's to answer: forward it.
    Forward,
}

/// Services and their endpoints as DNS sees them, rebuilt on every change.
#[derive(Debug, Default)]
pub struct Snapshot {
    services: HashMap<(String, String), Svc>,
    /// Addresses with a PTR answer: ClusterIPs and headless endpoints.
    reverse: HashMap<IpAddr, String>,
    /// The SOA serial: when this snapshot was built (seconds).
    serial: u32,
}

fn ports_of_slice(slice: &EndpointSlice) -> Vec<Port> {
    slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                port: u16::try_from(p.port?).ok()?,
            })
        })
        .collect()
}

fn service_entry(svc: &Service) -> Svc {
    let spec = svc.spec.clone().unwrap_or_default();
    let external_name = (spec.type_.as_deref() == Some("ExternalName"))
        .then(|| spec.external_name.clone())
        .flatten();
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let mut cluster_ips: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    cluster_ips.dedup();
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                port: u16::try_from(p.port).ok()?,
            })
        })
        .collect();
    Svc {
        cluster_ips,
        headless,
        external_name,
        ports,
        endpoints: Vec::new(),
    }
}

impl Snapshot {
    /// Builds the snapshot of `services` and `slices` for `domain`.
    pub fn build<'a>(
        domain: &str,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        serial: u32,
    ) -> Self {
        let mut snapshot = Snapshot {
            serial,
            ..Default::default()
        };
        let mut publish_not_ready = HashMap::new();
        for svc in services {
            let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
                continue;
            };
            let key = (ns.to_lowercase(), name.to_lowercase());
            let spec = svc.spec.as_ref();
            publish_not_ready.insert(
                key.clone(),
                spec.and_then(|s| s.publish_not_ready_addresses)
                    .unwrap_or(false),
            );
            snapshot.services.insert(key, service_entry(svc));
        }
        for slice in slices {
            let Some(ns) = &slice.metadata.namespace else {
                continue;
            };
            let Some(service) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
            else {
                continue;
            };
            let key = (ns.to_lowercase(), service.to_lowercase());
            let all = publish_not_ready.get(&key).copied().unwrap_or(false);
            let Some(entry) = snapshot.services.get_mut(&key) else {
                continue;
            };
            let ports = ports_of_slice(slice);
            for endpoint in &slice.endpoints {
                let ready = endpoint
                    .conditions
                    .as_ref()
                    .and_then(|c| c.ready)
                    .unwrap_or(true);
                if !ready && !all {
                    continue;
                }
                for address in &endpoint.addresses {
                    let Ok(ip) = address.parse::<IpAddr>() else {
                        continue;
                    };
                    if entry.endpoints.iter().any(|e| e.ip == ip) {
                        continue;
                    }
                    entry.endpoints.push(Endpoint {
                        ip,
                        hostname: endpoint.hostname.clone().map(|h| h.to_lowercase()),
                        ports: ports.clone(),
                    });
                }
            }
        }
        for ((ns, name), svc) in &snapshot.services {
            let fqdn = format!("{name}.{ns}.svc.{domain}.");
            for ip in &svc.cluster_ips {
                snapshot.reverse.insert(*ip, fqdn.clone());
            }
            if svc.headless {
                for e in &svc.endpoints {
                    snapshot
                        .reverse
                        .entry(e.ip)
                        .or_insert_with(|| format!("{}.{fqdn}", endpoint_label(e)));
                }
            }
        }
        snapshot
    }

    /// Answers `qtype` for `name` (lowercase, fully qualified) in `domain`.
    pub fn lookup(&self, domain: &str, name: &Name, qtype: RecordType) -> Lookup {
        let text = name.to_lowercase().to_ascii();
        let text = text.trim_end_matches('.');
        if let Some(ip) = reverse_ip(text) {
            return match self.reverse.get(&ip) {
                Some(target) if qtype == RecordType::PTR => match Name::from_str(target) {
                    Ok(target) => answer(vec![record(name, RData::PTR(PTR(target)))]),
                    Err(_) => Lookup::Forward,
                },
                Some(_) => Lookup::NoData,
                None => Lookup::Forward,
            };
        }
        let rest = if text == domain {
            ""
        } else if let Some(rest) = text.strip_suffix(domain).and_then(|r| r.strip_suffix('.')) {
            rest
        } else {
            return Lookup::Forward;
        };
        if rest.is_empty() {
            return self.apex(domain, name, qtype);
        }
        let labels: Vec<&str> = rest.split('.').collect();
        match labels.as_slice() {
            [.., "svc"] => self.service_name(domain, name, &labels[..labels.len() - 1], qtype),
            [dashed, _ns, "pod"] => match undash(dashed) {
                Some(ip) => address_answer(name, &[ip], qtype),
                None => Lookup::NxDomain,
            },
            ["ns", "dns"] => {
                // The zone's name server is the cluster DNS itself.
                match self
                    .services
                    .get(&("kube-system".into(), "kube-dns".into()))
                {
                    Some(svc) => address_answer(name, &svc.cluster_ips, qtype),
                    None => Lookup::NxDomain,
                }
            }
            _ => Lookup::NxDomain,
        }
    }

    fn apex(&self, domain: &str, name: &Name, qtype: RecordType) -> Lookup {
        match qtype {
            RecordType::SOA => answer(vec![self.soa(domain)]),
            RecordType::NS => match Name::from_str(&format!("ns.dns.{domain}.")) {
                Ok(ns) => answer(vec![record(name, RData::NS(NS(ns)))]),
                Err(_) => Lookup::NoData,
            },
            _ => Lookup::NoData,
        }
    }

    /// `labels` are the name's labels before `svc.<domain>`.
    fn service_name(
        &self,
        domain: &str,
        name: &Name,
        labels: &[&str],
        qtype: RecordType,
    ) -> Lookup {
        match labels {
            [] => Lookup::NoData,
            [ns] => {
                if self.services.keys().any(|(n, _)| n == ns) {
                    Lookup::NoData
                } else {
                    Lookup::NxDomain
                }
            }
            [svc, ns] => match self.services.get(&(ns.to_string(), svc.to_string())) {
                Some(entry) => self.service(domain, name, ns, svc, entry, qtype),
                None => Lookup::NxDomain,
            },
            [port, proto, svc, ns] if port.starts_with('_') && proto.starts_with('_') => {
                match self.services.get(&(ns.to_string(), svc.to_string())) {
                    Some(entry) => srv_answer(
                        domain,
                        name,
                        ns,
                        svc,
                        entry,
                        Some((&port[1..], &proto[1..])),
                        qtype,
                    ),
                    None => Lookup::NxDomain,
                }
            }
            [host, svc, ns] => {
                let Some(entry) = self.services.get(&(ns.to_string(), svc.to_string())) else {
                    return Lookup::NxDomain;
                };
                if !entry.headless {
                    return Lookup::NxDomain;
                }
                let ips: Vec<IpAddr> = entry
                    .endpoints
                    .iter()
                    .filter(|e| endpoint_label(e) == *host)
                    .map(|e| e.ip)
                    .collect();
                if ips.is_empty() {
                    Lookup::NxDomain
                } else {
                    address_answer(name, &ips, qtype)
                }
            }
            _ => Lookup::NxDomain,
        }
    }

    fn service(
        &self,
        domain: &str,
        name: &Name,
        ns: &str,
        svc: &str,
        entry: &Svc,
        qtype: RecordType,
    ) -> Lookup {
        if let Some(external) = &entry.external_name {
            let Ok(target) = Name::from_str(&format!("{}.", external.trim_end_matches('.'))) else {
                return Lookup::NoData;
            };
            return Lookup::Alias {
                cname: Box::new(record(name, RData::CNAME(CNAME(target.clone())))),
                target,
            };
        }
        if qtype == RecordType::SRV {
            return srv_answer(domain, name, ns, svc, entry, None, qtype);
        }
        if entry.headless {
            let ips: Vec<IpAddr> = entry.endpoints.iter().map(|e| e.ip).collect();
            address_answer(name, &ips, qtype)
        } else {
            address_answer(name, &entry.cluster_ips, qtype)
        }
    }

    /// The zone's SOA record (authority section of negative answers).
    pub fn soa(&self, domain: &str) -> Record {
        let zone = Name::from_str(&format!("{domain}.")).unwrap_or_else(|_| Name::root());
        let ns = Name::from_str(&format!("ns.dns.{domain}.")).unwrap_or_else(|_| Name::root());
        let mbox =
            Name::from_str(&format!("hostmaster.{domain}.")).unwrap_or_else(|_| Name::root());
        record(
            &zone,
            RData::SOA(SOA::new(ns, mbox, self.serial, 7200, 1800, 86400, TTL)),
        )
    }
}

/// An endpoint's label under its Service: its hostname, or its dashed address.
fn endpoint_label(e: &Endpoint) -> String {
    e.hostname.clone().unwrap_or_else(|| dash(e.ip))
}

fn record(name: &Name, data: RData) -> Record {
    Record::from_rdata(name.clone(), TTL, data)
}

fn answer(answers: Vec<Record>) -> Lookup {
    Lookup::Answer {
        answers,
        additionals: Vec::new(),
    }
}

/// A and AAAA records of `ips` for `qtype`; NODATA when none has that family.
fn address_answer(name: &Name, ips: &[IpAddr], qtype: RecordType) -> Lookup {
    let records: Vec<Record> = ips
        .iter()
        .filter_map(|ip| match (ip, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => {
                Some(record(name, RData::A(A(*v4))))
            }
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => {
                Some(record(name, RData::AAAA(AAAA(*v6))))
            }
            _ => None,
        })
        .collect();
    if records.is_empty() {
        Lookup::NoData
    } else {
        answer(records)
    }
}

/// SRV records of the Service's named ports (those matching `wanted`, the
/// `_port._proto` labels, when given), with the targets' addresses as
/// additional records.
fn srv_answer(
    domain: &str,
    name: &Name,
    ns: &str,
    svc: &str,
    entry: &Svc,
    wanted: Option<(&str, &str)>,
    qtype: RecordType,
) -> Lookup {
    let matches = |p: &Port| {
        !p.name.is_empty()
            && wanted.is_none_or(|(port, proto)| {
                p.name.eq_ignore_ascii_case(port) && p.protocol.eq_ignore_ascii_case(proto)
            })
    };
    let fqdn = format!("{svc}.{ns}.svc.{domain}.");
    let mut targets: Vec<(String, u16, Vec<IpAddr>)> = Vec::new();
    if entry.headless {
        for e in &entry.endpoints {
            let target = format!("{}.{fqdn}", endpoint_label(e));
            for p in e.ports.iter().filter(|p| matches(p)) {
                targets.push((target.clone(), p.port, vec![e.ip]));
            }
        }
    } else {
        for p in entry.ports.iter().filter(|p| matches(p)) {
            targets.push((fqdn.clone(), p.port, entry.cluster_ips.clone()));
        }
    }
    if targets.is_empty() {
        return if wanted.is_some() {
            Lookup::NxDomain
        } else {
            Lookup::NoData
        };
    }
    if qtype != RecordType::SRV {
        // `_port._proto` names exist only for SRV.
        return Lookup::NoData;
    }
    let weight = u16::try_from(100 / targets.len()).unwrap_or(1).max(1);
    let mut answers = Vec::new();
    let mut additionals = Vec::new();
    for (target, port, ips) in targets {
        let Ok(target) = Name::from_str(&target) else {
            continue;
        };
        answers.push(record(
            name,
            RData::SRV(SRV::new(0, weight, port, target.clone())),
        ));
        for ip in ips {
            let data = match ip {
                IpAddr::V4(v4) => RData::A(A(v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
            };
            let extra = record(&target, data);
            if !additionals.contains(&extra) {
                additionals.push(extra);
            }
        }
    }
    Lookup::Answer {
        answers,
        additionals,
    }
}

/// `1.2.3.4` → `1-2-3-4`; IPv6 colons become dashes too.
fn dash(ip: IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// The address a dashed label names (`10-42-0-5`, `fd00--1`).
fn undash(label: &str) -> Option<IpAddr> {
    let dots = label.replace('-', ".");
    if let Ok(IpAddr::V4(v4)) = dots.parse::<IpAddr>() {
        return Some(IpAddr::V4(v4));
    }
    label.replace('-', ":").parse::<IpAddr>().ok()
}

/// The address a reverse name (`4.3.2.1.in-addr.arpa`, nibbles under
/// `ip6.arpa`) stands for.
fn reverse_ip(text: &str) -> Option<IpAddr> {
    if let Some(rest) = text.strip_suffix(".in-addr.arpa") {
        let mut octets: Vec<&str> = rest.split('.').collect();
        if octets.len() != 4 {
            return None;
        }
        octets.reverse();
        return octets.join(".").parse().ok();
    }
    let rest = text.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<&str> = rest.split('.').collect();
    if nibbles.len() != 32 || nibbles.iter().any(|n| n.len() != 1) {
        return None;
    }
    let hex: String = nibbles.iter().rev().copied().collect();
    let value = u128::from_str_radix(&hex, 16).ok()?;
    Some(IpAddr::V6(std::net::Ipv6Addr::from(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(ns: &str, name: &str, spec: serde_json::Value) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": name}, "spec": spec
        }))
        .expect("service")
    }

    fn slice(ns: &str, svc: &str, endpoints: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": format!("{svc}-abc"),
                "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }))
        .expect("slice")
    }

    fn snapshot() -> Snapshot {
        let services = vec![
            service(
                "default",
                "web",
                serde_json::json!({"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81}]}),
            ),
            service(
                "default",
                "db",
                serde_json::json!({"clusterIP": "None", "ports": [{"name": "http", "port": 8080}]}),
            ),
            service(
                "default",
                "ext",
                serde_json::json!({"type": "ExternalName", "externalName": "example.test"}),
            ),
            service(
                "default",
                "warm",
                serde_json::json!({"clusterIP": "None", "publishNotReadyAddresses": true}),
            ),
        ];
        let slices = vec![
            slice(
                "default",
                "db",
                serde_json::json!([
                    {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                    {"addresses": ["10.42.0.6"], "conditions": {"ready": true}},
                    {"addresses": ["10.42.0.7"], "conditions": {"ready": false}},
                ]),
            ),
            slice(
                "default",
                "warm",
                serde_json::json!([{"addresses": ["10.42.0.8"], "conditions": {"ready": false}}]),
            ),
        ];
        Snapshot::build("cluster.local", &services, &slices, 1)
    }

    fn name(s: &str) -> Name {
        Name::from_str(s).expect("name")
    }

    fn ips(lookup: &Lookup) -> Vec<String> {
        let Lookup::Answer { answers, .. } = lookup else {
            panic!("not an answer: {lookup:?}");
        };
        answers.iter().map(|r| r.data().to_string()).collect()
    }

    #[test]
    fn a_cluster_ip_service_answers_its_cluster_ip() {
        let s = snapshot();
        let got = s.lookup(
            "cluster.local",
            &name("web.default.svc.cluster.local."),
            RecordType::A,
        );
        assert_eq!(ips(&got), ["10.43.0.20"]);
        let Lookup::Answer { answers, .. } = got else {
            unreachable!()
        };
        assert_eq!(answers[0].ttl(), TTL);
        // Case does not matter; AAAA of an IPv4-only Service is NODATA.
        let upper = s.lookup(
            "cluster.local",
            &name("WEB.Default.svc.cluster.local."),
            RecordType::A,
        );
        assert_eq!(ips(&upper), ["10.43.0.20"]);
        let v6 = s.lookup(
            "cluster.local",
            &name("web.default.svc.cluster.local."),
            RecordType::AAAA,
        );
        assert_eq!(v6, Lookup::NoData);
    }

    #[test]
    fn a_headless_service_answers_its_ready_endpoints() {
        let s = snapshot();
        let got = s.lookup(
            "cluster.local",
            &name("db.default.svc.cluster.local."),
            RecordType::A,
        );
        assert_eq!(ips(&got), ["10.42.0.5", "10.42.0.6"]);
        let warm = s.lookup(
            "cluster.local",
            &name("warm.default.svc.cluster.local."),
            RecordType::A,
        );
        assert_eq!(ips(&warm), ["10.42.0.8"], "publishNotReadyAddresses");
        let host = s.lookup(
            "cluster.local",
            &name("db-0.db.default.svc.cluster.local."),
            RecordType::A,
        );
        assert_eq!(ips(&host), ["10.42.0.5"]);
        let dashed = s.lookup(
            "cluster.local",
            &name("10-42-0-6.db.default.svc.cluster.local."),
            RecordType::A,
        );
        assert_eq!(ips(&dashed), ["10.42.0.6"]);
        let missing = s.lookup(
            "cluster.local",
            &name("db-9.db.default.svc.cluster.local."),
            RecordType::A,
        );
        assert_eq!(missing, Lookup::NxDomain);
    }

    #[test]
    fn srv_records_name_the_service_or_its_endpoints() {
        let s = snapshot();
        let got = s.lookup(
            "cluster.local",
            &name("_http._tcp.web.default.svc.cluster.local."),
            RecordType::SRV,
        );
        assert_eq!(ips(&got), ["0 100 80 web.default.svc.cluster.local."]);
        let headless = s.lookup(
            "cluster.local",
            &name("_http._tcp.db.default.svc.cluster.local."),
            RecordType::SRV,
        );
        let mut targets = ips(&headless);
        targets.sort();
        assert_eq!(
            targets,
            [
                "0 50 8080 10-42-0-6.db.default.svc.cluster.local.",
                "0 50 8080 db-0.db.default.svc.cluster.local."
            ]
        );
        let Lookup::Answer { additionals, .. } = headless else {
            unreachable!()
        };
        assert_eq!(additionals.len(), 2);
        let unknown = s.lookup(
            "cluster.local",
            &name("_grpc._tcp.web.default.svc.cluster.local."),
            RecordType::SRV,
        );
        assert_eq!(unknown, Lookup::NxDomain);
    }

    #[test]
    fn external_name_is_an_alias_and_pods_answer_their_dashed_address() {
        let s = snapshot();
        let got = s.lookup(
            "cluster.local",
            &name("ext.default.svc.cluster.local."),
            RecordType::A,
        );
        let Lookup::Alias { cname, target } = got else {
            panic!("not an alias: {got:?}");
        };
        assert_eq!(target, name("example.test."));
        assert_eq!(cname.record_type(), RecordType::CNAME);
        let pod = s.lookup(
            "cluster.local",
            &name("10-42-1-9.default.pod.cluster.local."),
            RecordType::A,
        );
        assert_eq!(ips(&pod), ["10.42.1.9"]);
    }

    #[test]
    fn unknown_names_are_nxdomain_and_outside_names_forwarded() {
        let s = snapshot();
        for unknown in [
            "nope.default.svc.cluster.local.",
            "web.other.svc.cluster.local.",
            "web.default.svc.cluster.local.default.svc.cluster.local.",
            "something.cluster.local.",
        ] {
            assert_eq!(
                s.lookup("cluster.local", &name(unknown), RecordType::A),
                Lookup::NxDomain,
                "{unknown}"
            );
        }
        assert_eq!(
            s.lookup(
                "cluster.local",
                &name("default.svc.cluster.local."),
                RecordType::A
            ),
            Lookup::NoData
        );
        assert_eq!(
            s.lookup("cluster.local", &name("example.test."), RecordType::A),
            Lookup::Forward
        );
        assert_eq!(
            s.lookup("cluster.local", &name("notcluster.local."), RecordType::A),
            Lookup::Forward
        );
        let soa = s.lookup("cluster.local", &name("cluster.local."), RecordType::SOA);
        assert_eq!(ips(&soa).len(), 1);
    }

    #[test]
    fn ptr_answers_cluster_ips_and_headless_endpoints() {
        let s = snapshot();
        let svc = s.lookup(
            "cluster.local",
            &name("20.0.43.10.in-addr.arpa."),
            RecordType::PTR,
        );
        assert_eq!(ips(&svc), ["web.default.svc.cluster.local."]);
        let ep = s.lookup(
            "cluster.local",
            &name("5.0.42.10.in-addr.arpa."),
            RecordType::PTR,
        );
        assert_eq!(ips(&ep), ["db-0.db.default.svc.cluster.local."]);
        let other = s.lookup(
            "cluster.local",
            &name("1.1.168.192.in-addr.arpa."),
            RecordType::PTR,
        );
        assert_eq!(other, Lookup::Forward);
    }

    #[test]
    fn reverse_names_parse() {
        assert_eq!(reverse_ip("4.3.2.1.in-addr.arpa"), "1.2.3.4".parse().ok());
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
        assert_eq!(reverse_ip(v6), "fd00::1".parse().ok());
        assert_eq!(reverse_ip("3.2.1.in-addr.arpa"), None);
        assert_eq!(undash("fd00--1"), "fd00::1".parse().ok());
        assert_eq!(dash("fd00::1".parse().expect("ip")), "fd00--1");
    }
}
