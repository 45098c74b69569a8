//! The service proxy on every node, as kube-proxy's iptables mode: watches
//! Services and EndpointSlices, and after each change (coalesced, at most
//! one sync per `min_sync_period`) computes the full desired ruleset and
//! applies it with one `iptables-restore --noflush` of skiff's `KUBE-*`
//! chains in the filter and nat tables. A periodic resync repairs rules
//! someone else removed. See docs/service-proxy.md.
//!
//! The rules come from pure functions ([`service_ports::build`] and
//! [`rules::render`]); [`iptables`] is the only part that touches the host.

pub mod iptables;
pub mod rules;
pub mod service_ports;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use tokio::sync::Notify;

use crate::informer::Informer;
use iptables::StaleFlow;
use service_ports::ServicePort;

/// The annotation a writer of an EndpointSlice may set to the time of the
/// change that caused it (upstream's, used for the programming latency).
pub const TRIGGER_TIME_ANNOTATION: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// The sysctl that sends bridged traffic through iptables, so a pod
/// reaching a service backend on its own bridge is DNATed and masqueraded.
const BRIDGE_NF_CALL_IPTABLES: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/// How the proxy on a node runs.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// This node's name: endpoints with this nodeName are local.
    pub node_name: String,
    /// Traffic from outside this range to a cluster IP is masqueraded.
    pub cluster_cidr: IpNet,
    /// The least time between two syncs (changes within it are coalesced).
    pub min_sync_period: Duration,
    /// A sync (and a check of the jumps) at least this often.
    pub sync_period: Duration,
    /// Every chain rewritten at least this often (upstream's hour): on
    /// iptables-nft a full restore of 1,000 services takes seconds.
    pub full_sync_period: Duration,
}

impl ProxySettings {
    /// The defaults: changes are applied within a few tens of milliseconds.
    pub fn new(node_name: String, cluster_cidr: IpNet) -> Self {
        ProxySettings {
            node_name,
            cluster_cidr,
            min_sync_period: Duration::from_millis(20),
            sync_period: Duration::from_secs(30),
            full_sync_period: Duration::from_secs(3600),
        }
    }
}

/// Runs the proxy until the task is dropped. Failures to program the host
/// are logged and retried; they never end the node.
pub async fn run(client: kube::Client, settings: ProxySettings) {
    if std::path::Path::new(BRIDGE_NF_CALL_IPTABLES).exists()
        && let Err(e) = std::fs::write(BRIDGE_NF_CALL_IPTABLES, "1")
    {
        tracing::warn!(error = %e, "cannot enable bridge-nf-call-iptables: a pod may not reach its own service backend");
    }
    let services = Informer::start(Api::<Service>::all(client.clone()));
    let slices = Informer::start(Api::<EndpointSlice>::all(client));
    let changed = Arc::new(Notify::new());
    spawn_forwarder(services.subscribe(), Arc::clone(&changed));
    spawn_forwarder(slices.subscribe(), Arc::clone(&changed));
    if services.store().wait_until_ready().await.is_err()
        || slices.store().wait_until_ready().await.is_err()
    {
        return;
    }
    let conntrack = iptables::conntrack_available();
    if !conntrack {
        tracing::info!(
            "`conntrack` is not installed: stale UDP flows are not flushed when endpoints go"
        );
    }
    let mut state = SyncState {
        chains: tokio::task::spawn_blocking(iptables::existing_service_chains)
            .await
            .unwrap_or_default(),
        jumps_ok: false,
        full_needed: true,
        last_ports: HashMap::new(),
        udp: BTreeMap::new(),
        seen_slices: HashMap::new(),
        conntrack,
    };
    tracing::info!(node = %settings.node_name, "service proxy started");
    let mut last_sync: Option<Instant> = None;
    let mut last_periodic = Instant::now();
    let mut last_full = Instant::now();
    let mut retry = false;
    loop {
        if last_sync.is_some() {
            let wait = if retry {
                Duration::from_secs(1)
            } else {
                settings.sync_period.saturating_sub(last_periodic.elapsed())
            };
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        if let Some(last) = last_sync {
            let earliest = last + settings.min_sync_period;
            tokio::time::sleep_until(earliest.into()).await;
        }
        if last_periodic.elapsed() >= settings.sync_period {
            state.jumps_ok = false;
            last_periodic = Instant::now();
        }
        if last_full.elapsed() >= settings.full_sync_period {
            state.full_needed = true;
            last_full = Instant::now();
        }
        let service_list = services.store().state();
        let slice_list = slices.store().state();
        retry = !sync(&settings, &mut state, &service_list, &slice_list).await;
        last_sync = Some(Instant::now());
    }
}

fn spawn_forwarder<K: Clone + Send + Sync + 'static>(
    mut feed: crate::informer::Subscription<K>,
    changed: Arc<Notify>,
) {
    tokio::spawn(async move {
        while feed.next().await.is_some() {
            changed.notify_one();
        }
    });
}

/// What one sync hands to the next.
struct SyncState {
    /// The per-service chains on the host.
    chains: BTreeSet<String>,
    /// Whether the jumps from the built-in chains were checked (they are
    /// again at each periodic sync and after a failure).
    jumps_ok: bool,
    /// Whether every chain must be rewritten (at start, after a failure,
    /// every `full_sync_period`).
    full_needed: bool,
    /// The service ports of the last applied ruleset: an equal one keeps
    /// its chains on the host untouched.
    last_ports: HashMap<(String, String), ServicePort>,
    /// UDP service ports: their addresses and usable endpoints.
    udp: BTreeMap<String, UdpPort>,
    /// The resourceVersion of each slice seen by the last sync.
    seen_slices: HashMap<String, String>,
    conntrack: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct UdpPort {
    destinations: Vec<Ipv4Addr>,
    node_port: Option<u16>,
    endpoints: BTreeSet<Ipv4Addr>,
}

/// One sync; false when the rules could not be applied (retried soon).
async fn sync(
    settings: &ProxySettings,
    state: &mut SyncState,
    services: &[Arc<Service>],
    slices: &[Arc<EndpointSlice>],
) -> bool {
    let started = Instant::now();
    let service_refs: Vec<&Service> = services.iter().map(Arc::as_ref).collect();
    let slice_refs: Vec<&EndpointSlice> = slices.iter().map(Arc::as_ref).collect();
    let ports = service_ports::build(&service_refs, &slice_refs, &settings.node_name);
    let full = state.full_needed;
    let last = &state.last_ports;
    let unchanged =
        |p: &ServicePort| !full && last.get(&(p.name.clone(), p.protocol.clone())) == Some(p);
    let ruleset = rules::render(&ports, settings.cluster_cidr, &state.chains, &unchanged);
    let rendered = started.elapsed();
    let ensure_jumps = !state.jumps_ok;
    let text = ruleset.text;
    let applied = tokio::task::spawn_blocking(move || {
        iptables::restore(&text)?;
        if ensure_jumps {
            iptables::ensure_jumps()?;
        }
        Ok::<_, iptables::IptablesError>(())
    })
    .await;
    match applied {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot program the service rules; retrying");
            state.jumps_ok = false;
            state.full_needed = true;
            return false;
        }
        Err(e) => {
            tracing::error!(error = %e, "the iptables task failed; retrying");
            state.jumps_ok = false;
            state.full_needed = true;
            return false;
        }
    }
    state.chains = ruleset.service_chains;
    state.jumps_ok = true;
    state.full_needed = false;
    state.last_ports = ports
        .iter()
        .map(|p| ((p.name.clone(), p.protocol.clone()), p.clone()))
        .collect();
    let done = jiff::Timestamp::now();
    let udp = udp_ports(&ports);
    let stale = stale_flows(&state.udp, &udp);
    state.udp = udp;
    if state.conntrack && !stale.is_empty() {
        tokio::task::spawn_blocking(move || iptables::flush_conntrack(&stale));
    }
    record_latency(state, slices, done);
    tracing::debug!(
        service_ports = ports.len(),
        full,
        render_ms = rendered.as_secs_f64() * 1000.0,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "service rules synced"
    );
    true
}

/// Logs the network programming latency of every slice changed since the
/// last sync that carries the trigger-time annotation (what
/// `scripts/bench-proxy.sh` reads).
fn record_latency(state: &mut SyncState, slices: &[Arc<EndpointSlice>], done: jiff::Timestamp) {
    let mut seen = HashMap::with_capacity(slices.len());
    for slice in slices {
        let key = format!(
            "{}/{}",
            slice.metadata.namespace.as_deref().unwrap_or_default(),
            slice.metadata.name.as_deref().unwrap_or_default()
        );
        let version = slice.metadata.resource_version.clone().unwrap_or_default();
        let changed = state.seen_slices.get(&key) != Some(&version);
        if changed
            && !state.seen_slices.is_empty()
            && let Some(trigger) = slice
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(TRIGGER_TIME_ANNOTATION))
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            let latency = done.duration_since(trigger).as_secs_f64() * 1000.0;
            tracing::debug!(slice = %key, latency_ms = latency, "network programming latency");
        }
        seen.insert(key, version);
    }
    state.seen_slices = seen;
}

fn udp_ports(ports: &[ServicePort]) -> BTreeMap<String, UdpPort> {
    ports
        .iter()
        .filter(|p| p.protocol == "udp")
        .map(|p| {
            let mut destinations = vec![p.cluster_ip];
            destinations.extend(&p.external_ips);
            destinations.extend(&p.load_balancer_ips);
            let endpoints = p
                .cluster_endpoints()
                .into_iter()
                .chain(p.local_endpoints())
                .map(|e| e.ip)
                .collect();
            (
                p.name.clone(),
                UdpPort {
                    destinations,
                    node_port: p.node_port,
                    endpoints,
                },
            )
        })
        .collect()
}

/// The conntrack entries to forget between two syncs: flows to endpoints
/// that are no longer used, and flows to addresses that had no endpoint
/// (rejected) and now have one.
fn stale_flows(
    before: &BTreeMap<String, UdpPort>,
    after: &BTreeMap<String, UdpPort>,
) -> Vec<StaleFlow> {
    let mut flows = BTreeSet::new();
    for (name, old) in before {
        let now = after.get(name);
        for endpoint in &old.endpoints {
            if now.is_some_and(|n| n.endpoints.contains(endpoint)) {
                continue;
            }
            for destination in &old.destinations {
                flows.insert(StaleFlow::ToEndpoint {
                    destination: *destination,
                    endpoint: *endpoint,
                });
            }
            if let Some(port) = old.node_port {
                flows.insert(StaleFlow::NodePort {
                    port,
                    endpoint: *endpoint,
                });
            }
        }
    }
    for (name, new) in after {
        let had_none = before.get(name).is_none_or(|old| old.endpoints.is_empty());
        if had_none && !new.endpoints.is_empty() {
            flows.extend(new.destinations.iter().map(|d| StaleFlow::Destination(*d)));
        }
    }
    flows.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(endpoints: &[&str]) -> UdpPort {
        UdpPort {
            destinations: vec!["10.43.0.7".parse().expect("ip")],
            node_port: Some(30053),
            endpoints: endpoints.iter().map(|e| e.parse().expect("ip")).collect(),
        }
    }

    #[test]
    fn removed_udp_endpoints_and_newly_served_addresses_are_flushed() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().expect("ip");
        let before = BTreeMap::from([("ns/dns".to_string(), udp(&["10.42.0.5", "10.42.0.6"]))]);
        let after = BTreeMap::from([("ns/dns".to_string(), udp(&["10.42.0.6"]))]);
        assert_eq!(
            stale_flows(&before, &after),
            [
                StaleFlow::ToEndpoint {
                    destination: ip("10.43.0.7"),
                    endpoint: ip("10.42.0.5")
                },
                StaleFlow::NodePort {
                    port: 30053,
                    endpoint: ip("10.42.0.5")
                },
            ]
        );
        let empty = BTreeMap::from([("ns/dns".to_string(), udp(&[]))]);
        assert_eq!(
            stale_flows(&empty, &after),
            [StaleFlow::Destination(ip("10.43.0.7"))]
        );
        assert!(stale_flows(&after, &after).is_empty());
    }
}
