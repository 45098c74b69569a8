//! Facts about this host that defaults depend on: its name and primary IP.
//!
//! The primary IP is found without sending a packet anywhere: the interface
//! of the default route comes from `/proc/net/route`, and the local address
//! on one of that interface's subnets from `/proc/net/fib_trie`. When either
//! is unavailable (no default route, not Linux) the answer is 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr};

/// This host's name, lower-cased, or `localhost` when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The IPv4 address of the interface that carries the default route.
pub fn primary_ip() -> IpAddr {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    pick_primary(&routes, &trie)
        .map(IpAddr::V4)
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// One row of `/proc/net/route`.
struct Route {
    iface: String,
    destination: u32,
    mask: u32,
    metric: u32,
    is_default: bool,
}

fn parse_routes(text: &str) -> Vec<Route> {
    // The kernel prints the network-order bytes read as a native integer.
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|raw| u32::from_be_bytes(raw.to_ne_bytes()))
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (destination, mask) = (hex(f.get(1)?)?, hex(f.get(7)?)?);
            Some(Route {
                iface: f.first()?.to_string(),
                destination,
                mask,
                metric: f.get(6)?.parse().ok()?,
                is_default: destination == 0 && mask == 0,
            })
        })
        .collect()
}

/// The addresses `/proc/net/fib_trie` marks as `/32 host LOCAL`.
fn local_addresses(trie: &str) -> Vec<Ipv4Addr> {
    let mut last: Option<Ipv4Addr> = None;
    let mut found = Vec::new();
    for line in trie.lines() {
        let line = line.trim();
        if let Some(ip) = line.strip_prefix("|-- ") {
            last = ip.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL")
            && let Some(ip) = last
            && !ip.is_loopback()
            && !found.contains(&ip)
        {
            found.push(ip);
        }
    }
    found
}

fn pick_primary(routes: &str, trie: &str) -> Option<Ipv4Addr> {
    let routes = parse_routes(routes);
    let locals = local_addresses(trie);
    let default = routes
        .iter()
        .filter(|r| r.is_default)
        .min_by_key(|r| r.metric)?;
    routes
        .iter()
        .filter(|r| r.iface == default.iface && !r.is_default)
        .find_map(|subnet| {
            locals
                .iter()
                .find(|ip| u32::from(**ip) & subnet.mask == subnet.destination & subnet.mask)
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
        docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
        eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
        eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";

    const TRIE: &str = "Local:\n  +-- 0.0.0.0/0 3 0 5\n\
        |-- 127.0.0.1\n   /32 host LOCAL\n\
        |-- 172.17.0.1\n   /32 host LOCAL\n\
        |-- 192.0.2.0\n   /24 link UNICAST\n\
        |-- 192.0.2.2\n   /32 host LOCAL\n";

    #[test]
    fn picks_the_address_on_the_default_route_interface() {
        assert_eq!(
            pick_primary(ROUTES, TRIE),
            Some(Ipv4Addr::new(192, 0, 2, 2))
        );
    }

    #[test]
    fn no_default_route_means_none() {
        let routes = ROUTES.lines().take(2).collect::<Vec<_>>().join("\n");
        assert_eq!(pick_primary(&routes, TRIE), None);
    }
}
