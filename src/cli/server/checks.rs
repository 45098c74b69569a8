//! Parsing and checking of single `skiff server` settings.
//!
//! Each check takes the raw text with its flag name and origin and returns
//! the typed value or an error that says what a valid value looks like.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use super::{ConfigError, Raw};

pub(crate) fn ip(raw: &Raw) -> Result<IpAddr, ConfigError> {
    raw.value
        .trim()
        .parse()
        .map_err(|_| raw.invalid("not an IP address; use a form such as 10.0.0.5"))
}

/// `--flannel-backend`.
pub(super) fn flannel_backend(raw: &Raw) -> Result<crate::net::overlay::Backend, ConfigError> {
    raw.value.parse().map_err(|e: String| raw.invalid(e))
}

/// A network interface name as Linux accepts it (1 to 15 bytes, no `/`,
/// `:` or white space, not `.` or `..`).
pub(crate) fn interface(raw: &Raw) -> Result<String, ConfigError> {
    let name = raw.value.trim();
    let valid = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if valid {
        Ok(name.to_string())
    } else {
        Err(raw.invalid(
            "not an interface name; use a name of 1 to 15 characters without '/', ':' or spaces, such as eth0",
        ))
    }
}

/// `--node-ip`: a unicast address.
pub(super) fn node_ip(raw: &Raw) -> Result<IpAddr, ConfigError> {
    let ip = self::ip(raw)?;
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(raw.invalid("use one of this node's unicast addresses, such as 10.0.0.5"));
    }
    Ok(ip)
}

/// A file system path, made absolute against the working directory.
pub(crate) fn path(raw: &Raw) -> Result<PathBuf, ConfigError> {
    if raw.value.trim().is_empty() {
        return Err(raw.invalid("give a path"));
    }
    std::path::absolute(&raw.value).map_err(|e| raw.invalid(format!("not a usable path: {e}")))
}

pub(crate) fn port(raw: &Raw) -> Result<u16, ConfigError> {
    match raw.value.trim().parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(raw.invalid("a port must be a number from 1 to 65535")),
    }
}

pub(crate) fn cidr(raw: &Raw) -> Result<IpNet, ConfigError> {
    let net: IpNet = raw
        .value
        .trim()
        .parse()
        .map_err(|_| raw.invalid("not a CIDR; use a form such as 10.42.0.0/16"))?;
    if net.network() != net.addr() {
        return Err(raw.invalid(format!("host bits are set; did you mean {}?", net.trunc())));
    }
    Ok(net)
}

pub(crate) fn port_range(raw: &Raw) -> Result<(u16, u16), ConfigError> {
    let bad =
        || raw.invalid("use FIRST-LAST with 1 <= FIRST <= LAST <= 65535, such as 30000-32767");
    let (first, last) = raw.value.trim().split_once('-').ok_or_else(bad)?;
    let first: u16 = first.trim().parse().map_err(|_| bad())?;
    let last: u16 = last.trim().parse().map_err(|_| bad())?;
    if first == 0 || first > last {
        return Err(bad());
    }
    Ok((first, last))
}

pub(crate) fn file_mode(raw: &Raw) -> Result<u32, ConfigError> {
    let digits = raw.value.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if !digits.is_empty() && mode <= 0o777 => Ok(mode),
        _ => Err(raw.invalid("use an octal file mode such as 0600 or 0644")),
    }
}

/// A size in bytes such as `10Mi`, `512Ki`, `1G` or `1048576` (at least
/// 1Ki), as the kubelet's `containerLogMaxSize`.
pub(crate) fn size(raw: &Raw) -> Result<u64, ConfigError> {
    let bad = || raw.invalid("use a size such as 10Mi, 512Ki or 1Gi (at least 1Ki)");
    let text = raw.value.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit {
        "" => 1,
        "k" | "K" => 1000,
        "M" => 1000_u64.pow(2),
        "G" => 1000_u64.pow(3),
        "Ki" => 1024,
        "Mi" => 1024_u64.pow(2),
        "Gi" => 1024_u64.pow(3),
        _ => return Err(bad()),
    };
    match number.checked_mul(factor) {
        Some(bytes) if bytes >= 1024 => Ok(bytes),
        _ => Err(bad()),
    }
}

/// How many log files to keep per container: at least 2 (the live one and
/// one rotated), as the kubelet requires.
pub(crate) fn log_files(raw: &Raw) -> Result<u32, ConfigError> {
    match raw.value.trim().parse::<u32>() {
        Ok(n) if n >= 2 => Ok(n),
        _ => Err(raw.invalid("give a whole number of at least 2")),
    }
}

/// A duration such as `40s`, `2m`, `1h30m` or `500ms` (at least a second).
pub(crate) fn duration(raw: &Raw) -> Result<std::time::Duration, ConfigError> {
    let bad = || raw.invalid("use a duration such as 40s, 2m or 1m30s (at least 1s)");
    let text = raw.value.trim();
    let mut total = std::time::Duration::ZERO;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    if text.is_empty() {
        return Err(bad());
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                std::time::Duration::from_millis(1)
            }
            ('h', _) => std::time::Duration::from_secs(3600),
            ('m', _) => std::time::Duration::from_secs(60),
            ('s', _) => std::time::Duration::from_secs(1),
            _ => return Err(bad()),
        };
        total = unit
            .checked_mul(u32::try_from(n).map_err(|_| bad())?)
            .and_then(|d| total.checked_add(d))
            .ok_or_else(bad)?;
    }
    if !number.is_empty() || total < std::time::Duration::from_secs(1) {
        return Err(bad());
    }
    Ok(total)
}

pub(crate) fn boolean(raw: &Raw) -> Result<bool, ConfigError> {
    match raw.value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(raw.invalid("use true or false")),
    }
}

/// A DNS name: dot-separated labels of lower-case letters, digits and '-'.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

pub(crate) fn domain(raw: &Raw) -> Result<String, ConfigError> {
    let name = raw.value.trim().trim_end_matches('.');
    if is_dns_name(name) {
        Ok(name.to_string())
    } else {
        Err(raw.invalid("use a lower-case DNS domain such as cluster.local"))
    }
}

/// A subject alternative name: an IP address or a DNS name (a leading `*.`
/// wildcard allowed). Names are compared lower-case, as TLS does.
pub(crate) fn san(raw: &Raw) -> Result<String, ConfigError> {
    if let Ok(ip) = raw.value.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let name = raw.value.to_ascii_lowercase();
    let bare = name.strip_prefix("*.").unwrap_or(&name);
    if is_dns_name(bare) {
        Ok(name)
    } else {
        Err(raw.invalid("use an IP address or a DNS name such as api.example.com"))
    }
}

pub(crate) fn log_level(raw: &Raw) -> Result<String, ConfigError> {
    let level = raw.value.trim().to_string();
    match tracing_subscriber::EnvFilter::try_new(&level) {
        Ok(_) if !level.is_empty() => Ok(level),
        _ => Err(raw.invalid(
            "use error, warn, info, debug or trace (or a tracing filter such as skiff=debug)",
        )),
    }
}

/// Pod and service ranges must not share an address.
pub(crate) fn cidrs_apart(
    cluster_raw: &Raw,
    cluster: IpNet,
    service_raw: &Raw,
    service: IpNet,
) -> Result<(), ConfigError> {
    if cluster.contains(&service.network()) || service.contains(&cluster.network()) {
        return Err(ConfigError::Conflict(format!(
            "--cluster-cidr {cluster}{} overlaps --service-cidr {service}{}: pods and services need separate ranges; change one of them",
            cluster_raw.origin, service_raw.origin
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::server::Origin;

    fn raw(flag: &'static str, value: &str) -> Raw {
        Raw {
            flag,
            value: value.to_string(),
            origin: Origin::Flag,
        }
    }

    #[test]
    fn overlay_flags() {
        use crate::net::overlay::Backend;
        assert_eq!(
            flannel_backend(&raw("flannel-backend", "host-gw")).ok(),
            Some(Backend::HostGw)
        );
        let err = flannel_backend(&raw("flannel-backend", "wireguard")).unwrap_err();
        assert!(
            err.to_string().contains("--flannel-backend") && err.to_string().contains("vxlan"),
            "{err}"
        );
        assert_eq!(
            interface(&raw("flannel-iface", "eth0")).ok().as_deref(),
            Some("eth0")
        );
        for bad in ["", "a/b", "eth0:1", "has space", "..", "sixteen-chars-xx"] {
            let err = interface(&raw("flannel-iface", bad)).unwrap_err();
            assert!(err.to_string().contains("--flannel-iface"), "{err}");
        }
        assert!(node_ip(&raw("node-ip", "10.0.0.5")).is_ok());
        for bad in ["0.0.0.0", "224.0.0.1", "10.0.0"] {
            let err = node_ip(&raw("node-ip", bad)).unwrap_err();
            assert!(err.to_string().contains("--node-ip"), "{err}");
        }
    }

    #[test]
    fn ports_and_ranges() {
        assert_eq!(port(&raw("https-listen-port", "6443")).ok(), Some(6443));
        assert!(port(&raw("https-listen-port", "0")).is_err());
        assert!(port(&raw("https-listen-port", "65536")).is_err());
        assert_eq!(
            port_range(&raw("service-node-port-range", "30000-32767")).ok(),
            Some((30000, 32767))
        );
        assert!(port_range(&raw("service-node-port-range", "0-10")).is_err());
        assert!(port_range(&raw("service-node-port-range", "5-4")).is_err());
    }

    #[test]
    fn sizes_and_log_file_counts() {
        let s = |v: &str| size(&raw("container-log-max-size", v)).ok();
        assert_eq!(s("10Mi"), Some(10 * 1024 * 1024));
        assert_eq!(s("1k"), None);
        assert_eq!(s("2K"), Some(2000));
        assert_eq!(s("4096"), Some(4096));
        assert_eq!(s("1Gi"), Some(1 << 30));
        assert_eq!(s("10MB"), None);
        assert_eq!(s("Mi"), None);
        assert_eq!(s("99999999999999999999Gi"), None);
        let n = |v: &str| log_files(&raw("container-log-max-files", v)).ok();
        assert_eq!(n("5"), Some(5));
        assert_eq!(n("1"), None);
        assert_eq!(n("x"), None);
    }

    #[test]
    fn durations() {
        let d = |v: &str| duration(&raw("node-monitor-grace-period", v)).ok();
        assert_eq!(d("40s"), Some(std::time::Duration::from_secs(40)));
        assert_eq!(d("1m30s"), Some(std::time::Duration::from_secs(90)));
        assert_eq!(d("1h"), Some(std::time::Duration::from_secs(3600)));
        assert_eq!(d("1500ms"), Some(std::time::Duration::from_millis(1500)));
        for bad in ["", "40", "s", "10x", "500ms", "-5s"] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidrs_must_be_networks_and_apart() {
        let err = cidr(&raw("cluster-cidr", "10.42.0.1/16")).unwrap_err();
        assert!(err.to_string().contains("10.42.0.0/16"), "{err}");
        let a = raw("cluster-cidr", "10.42.0.0/16");
        let b = raw("service-cidr", "10.42.5.0/24");
        let (na, nb) = (cidr(&a).expect("cidr"), cidr(&b).expect("cidr"));
        assert!(cidrs_apart(&a, na, &b, nb).is_err());
        let c = raw("service-cidr", "10.43.0.0/16");
        assert!(cidrs_apart(&a, na, &c, cidr(&c).expect("cidr")).is_ok());
    }

    #[test]
    fn modes_names_and_booleans() {
        assert_eq!(
            file_mode(&raw("write-kubeconfig-mode", "0644")).ok(),
            Some(0o644)
        );
        assert_eq!(
            file_mode(&raw("write-kubeconfig-mode", "600")).ok(),
            Some(0o600)
        );
        assert!(file_mode(&raw("write-kubeconfig-mode", "0800")).is_err());
        assert_eq!(
            san(&raw("tls-san", "API.Example.com")).ok().as_deref(),
            Some("api.example.com")
        );
        assert_eq!(
            san(&raw("tls-san", "*.example.com")).ok().as_deref(),
            Some("*.example.com")
        );
        assert!(san(&raw("tls-san", "a b")).is_err());
        assert!(domain(&raw("cluster-domain", "Cluster.Local")).is_err());
        assert_eq!(boolean(&raw("disable-agent", "yes")).ok(), Some(true));
    }
}
