//! Pure range arithmetic for the Service allocators: which addresses of the
//! service CIDR and which NodePorts may be handed out, and how a free one is
//! picked given the set in use.
//!
//! As upstream's `ipallocator` and `portallocator`, a range is split into a
//! lower "static" band that dynamic allocation only uses once the upper band
//! is full, so that well-known addresses such as the cluster DNS
//! (`10.43.0.10`) stay free for whoever asks for them by number.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

/// The largest range served (upstream refuses IPv6 service CIDRs wider than
/// a /108, i.e. 2^20 addresses).
const MAX_SIZE: u128 = 1 << 20;

/// Why an allocation failed; the texts are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("provided IP is already allocated")]
    IpAllocated,
    #[error("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}")]
    IpNotInRange { ip: IpAddr, range: IpNet },
    #[error("provided port is already allocated")]
    PortAllocated,
    #[error("provided port is not in the valid range. The range of valid ports is {0}-{1}")]
    PortNotInRange(u16, u16),
    #[error("range is full")]
    Full,
}

/// The addresses of a service CIDR that Services may get: every address
/// but the network address (and, for IPv4, the broadcast address).
#[derive(Debug, Clone)]
pub struct IpRange {
    cidr: IpNet,
    first: u128,
    size: u128,
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl IpRange {
    pub fn new(cidr: IpNet) -> Self {
        let cidr = cidr.trunc();
        let network = to_u128(cidr.network());
        let hosts = 1u128 << (cidr.max_prefix_len() - cidr.prefix_len()).min(127);
        let size = match cidr {
            IpNet::V4(_) => hosts.saturating_sub(2),
            IpNet::V6(_) => hosts.saturating_sub(1),
        };
        IpRange {
            cidr,
            first: network + 1,
            size: size.min(MAX_SIZE),
        }
    }

    fn at(&self, offset: u128) -> IpAddr {
        let n = self.first + offset;
        match self.cidr {
            IpNet::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(n as u32)),
            IpNet::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(n)),
        }
    }

    /// Checks that `ip` may be given to a Service, with `used` in use.
    pub fn check(&self, ip: IpAddr, used: &HashSet<IpAddr>) -> Result<(), RangeError> {
        let n = to_u128(ip);
        let in_range = ip.is_ipv4() == self.cidr.addr().is_ipv4()
            && n >= self.first
            && n < self.first + self.size;
        if !in_range {
            return Err(RangeError::IpNotInRange {
                ip,
                range: self.cidr,
            });
        }
        if used.contains(&ip) {
            return Err(RangeError::IpAllocated);
        }
        Ok(())
    }

    /// A free address: a random one of the upper band, else of the lower.
    pub fn pick(&self, used: &HashSet<IpAddr>) -> Result<IpAddr, RangeError> {
        let band = static_band(self.size, 16, 256);
        pick_offset(self.size, band, |o| !used.contains(&self.at(o))).map(|o| self.at(o))
    }
}

/// The NodePort range (inclusive bounds).
#[derive(Debug, Clone, Copy)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl PortRange {
    fn size(&self) -> u128 {
        u128::from(self.high.saturating_sub(self.low)) + 1
    }

    /// Checks that `port` may be given to a Service, with `used` in use.
    pub fn check(&self, port: i64, used: &HashSet<u16>) -> Result<u16, RangeError> {
        let not_in_range = RangeError::PortNotInRange(self.low, self.high);
        let port = u16::try_from(port).map_err(|_| not_in_range.clone())?;
        if port < self.low || port > self.high {
            return Err(not_in_range);
        }
        if used.contains(&port) {
            return Err(RangeError::PortAllocated);
        }
        Ok(port)
    }

    /// A free port: a random one of the upper band, else of the lower.
    pub fn pick(&self, used: &HashSet<u16>) -> Result<u16, RangeError> {
        let band = static_band(self.size(), 16, 128);
        let at = |o: u128| self.low + o as u16;
        pick_offset(self.size(), band, |o| !used.contains(&at(o))).map(at)
    }
}

/// The size of the lower band, as upstream computes it:
/// `min(max(min_band, size/16), max_band)` for IPs (and `/32` for ports;
/// the difference does not matter for which port is free).
fn static_band(size: u128, min_band: u128, max_band: u128) -> u128 {
    (size / 16).max(min_band).min(max_band).min(size)
}

/// A free offset in `0..size`: scans the upper band `band..size` from a
/// random start, then the lower band `0..band` likewise.
fn pick_offset(size: u128, band: u128, free: impl Fn(u128) -> bool) -> Result<u128, RangeError> {
    for (start, len) in [(band, size - band), (0, band)] {
        if len == 0 {
            continue;
        }
        let r = rand::random::<u64>() as u128 % len;
        if let Some(o) = (0..len).map(|i| start + (r + i) % len).find(|&o| free(o)) {
            return Ok(o);
        }
    }
    Err(RangeError::Full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn ips_come_from_the_range_and_never_twice_until_it_is_full() {
        let range = IpRange::new("10.0.0.0/29".parse().expect("cidr"));
        let mut used = HashSet::new();
        for _ in 0..6 {
            let got = range.pick(&used).expect("a free IP");
            assert!(
                range.check(got, &HashSet::new()).is_ok(),
                "{got} out of range"
            );
            assert!(used.insert(got), "{got} handed out twice");
        }
        assert!(!used.contains(&ip("10.0.0.0")) && !used.contains(&ip("10.0.0.7")));
        assert_eq!(range.pick(&used), Err(RangeError::Full));
        used.remove(&ip("10.0.0.3"));
        assert_eq!(
            range.pick(&used),
            Ok(ip("10.0.0.3")),
            "a released IP is reused"
        );
    }

    #[test]
    fn requested_ips_are_checked_with_upstreams_messages() {
        let range = IpRange::new("10.43.0.0/16".parse().expect("cidr"));
        let used: HashSet<IpAddr> = [ip("10.43.0.1")].into();
        assert_eq!(
            range
                .check(ip("10.43.0.1"), &used)
                .map_err(|e| e.to_string()),
            Err("provided IP is already allocated".to_string())
        );
        assert!(range.check(ip("10.43.0.10"), &used).is_ok());
        assert_eq!(
            range.check(ip("10.0.0.1"), &used).map_err(|e| e.to_string()),
            Err("the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 10.43.0.0/16".to_string())
        );
        for edge in ["10.43.0.0", "10.43.255.255", "fd00::1"] {
            assert!(range.check(ip(edge), &used).is_err(), "{edge} accepted");
        }
    }

    #[test]
    fn dynamic_ips_stay_out_of_the_static_band_while_they_can() {
        let range = IpRange::new("10.43.0.0/16".parse().expect("cidr"));
        let mut used = HashSet::new();
        for _ in 0..200 {
            let got = range.pick(&used).expect("free");
            assert!(
                to_u128(got) >= to_u128(ip("10.43.1.1")),
                "{got} is in the static band"
            );
            used.insert(got);
        }
    }

    #[test]
    fn ipv6_ranges_are_capped() {
        let range = IpRange::new("fd00::/64".parse().expect("cidr"));
        assert_eq!(range.size, MAX_SIZE);
        let got = range.pick(&HashSet::new()).expect("free");
        assert!(got.is_ipv6());
    }

    #[test]
    fn ports_exhaust_release_and_check_requests() {
        let range = PortRange {
            low: 30000,
            high: 30009,
        };
        let mut used = HashSet::new();
        for _ in 0..10 {
            let p = range.pick(&used).expect("a free port");
            assert!((30000..=30009).contains(&p));
            assert!(used.insert(p), "{p} handed out twice");
        }
        assert_eq!(range.pick(&used), Err(RangeError::Full));
        used.remove(&30004);
        assert_eq!(range.pick(&used), Ok(30004));
        used.insert(30004);
        assert_eq!(
            range.check(30004, &used).map_err(|e| e.to_string()),
            Err("provided port is already allocated".to_string())
        );
        assert_eq!(
            range.check(80, &used).map_err(|e| e.to_string()),
            Err(
                "provided port is not in the valid range. The range of valid ports is 30000-30009"
                    .to_string()
            )
        );
        assert!(range.check(70000, &used).is_err());
    }
}
