//! The server's leaf certificates: which names the serving certificate must
//! cover, and whether a certificate on disk can be reused.
//!
//! A certificate is reused while it parses, carries exactly the wanted names
//! and has more than [`RENEW_BEFORE_DAYS`] days left; otherwise it is reissued
//! with a fresh key (the CA never changes on its own).

use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;

/// Leaf certificates are valid a year and renewed at start when fewer than
/// this many days remain.
pub const LEAF_DAYS: i64 = 365;
pub const RENEW_BEFORE_DAYS: i64 = 90;

/// The names the serving certificate must cover, in a stable order.
pub fn serving_sans(
    hostname: &str,
    node_ips: &[IpAddr],
    service_cidr: &IpNet,
    cluster_domain: &str,
    extra: &[String],
) -> Vec<String> {
    let mut sans: Vec<String> = vec![
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        format!("kubernetes.default.svc.{cluster_domain}"),
        "localhost".into(),
        hostname.to_string(),
        "127.0.0.1".into(),
    ];
    if let Some(ip) = first_service_ip(service_cidr) {
        sans.push(ip.to_string());
    }
    sans.extend(node_ips.iter().map(IpAddr::to_string));
    sans.extend(extra.iter().cloned());
    let mut unique = Vec::new();
    for san in sans {
        if !unique.contains(&san) {
            unique.push(san);
        }
    }
    unique
}

/// The first usable address of the service range: the `kubernetes` Service's
/// ClusterIP (10.43.0.1 for 10.43.0.0/16).
pub fn first_service_ip(service_cidr: &IpNet) -> Option<IpAddr> {
    service_cidr.hosts().next()
}

/// True when the certificate PEM at `cert_path` (with its key at `key_path`)
/// can be kept: it parses, names exactly `sans` (when given) and does not
/// expire soon.
pub fn reusable(cert_path: &Path, key_path: &Path, sans: Option<&[String]>) -> bool {
    if !key_path.exists() {
        return false;
    }
    let Ok(pem_text) = std::fs::read(cert_path) else {
        return false;
    };
    let Ok((_, pem)) = parse_x509_pem(&pem_text) else {
        return false;
    };
    let Ok(cert) = pem.parse_x509() else {
        return false;
    };
    let days_left =
        (cert.validity().not_after.timestamp() - jiff::Timestamp::now().as_second()) / 86_400;
    if days_left < RENEW_BEFORE_DAYS {
        return false;
    }
    let Some(wanted) = sans else {
        return true;
    };
    let mut present: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_string()),
                GeneralName::IPAddress(bytes) => ip_from_bytes(bytes).map(|ip| ip.to_string()),
                _ => None,
            })
            .collect(),
        _ => return false,
    };
    let mut wanted = wanted.to_vec();
    present.sort();
    wanted.sort();
    present == wanted
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_names_cover_the_service_and_the_host() {
        let sans = serving_sans(
            "node1",
            &["192.0.2.2".parse().expect("ip")],
            &"10.43.0.0/16".parse().expect("cidr"),
            "cluster.local",
            &["api.example.com".into(), "127.0.0.1".into()],
        );
        for want in [
            "kubernetes.default.svc.cluster.local",
            "node1",
            "10.43.0.1",
            "192.0.2.2",
            "api.example.com",
            "localhost",
        ] {
            assert!(
                sans.contains(&want.to_string()),
                "{want} missing from {sans:?}"
            );
        }
        assert_eq!(sans.iter().filter(|s| *s == "127.0.0.1").count(), 1);
    }
}
