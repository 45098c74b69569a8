//! The certificates of the kubelet's HTTPS server (port 10250): the node's
//! serving certificate, and the client certificate the API server presents
//! when it proxies logs, exec, attach and port-forward to a kubelet.
//!
//! Both are signed by the cluster CA. The serving certificate names the node
//! and its addresses, so the API server verifies the kubelet it dials; the
//! client certificate's subject is upstream kubeadm's
//! `kube-apiserver-kubelet-client`, which RBAC binds to
//! `system:kubelet-api-admin`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{PkiError, ca, certs, files};

/// The user the API server is at a kubelet.
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";

/// A certificate and its key, in PEM.
#[derive(Debug, Clone)]
pub struct CertKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The names the kubelet serving certificate of `node_name` covers.
pub fn serving_sans(node_name: &str, hostname: &str, node_ips: &[IpAddr]) -> Vec<String> {
    let mut sans = vec![node_name.to_string(), hostname.to_ascii_lowercase()];
    sans.extend(node_ips.iter().map(IpAddr::to_string));
    let mut unique = Vec::new();
    for san in sans {
        if !san.is_empty() && !unique.contains(&san) {
            unique.push(san);
        }
    }
    unique
}

/// Where a node keeps its kubelet serving certificate.
pub fn serving_paths(agent_dir: &Path) -> (PathBuf, PathBuf) {
    let tls = agent_dir.join("tls");
    (
        tls.join("serving-kubelet.crt"),
        tls.join("serving-kubelet.key"),
    )
}

/// Issues (or reuses) the kubelet serving certificate of the server's own
/// node under `<data-dir>/agent/tls/`, signed by the CA in
/// `<data-dir>/server/tls/`.
pub fn ensure_serving(
    data_dir: &Path,
    node_name: &str,
    hostname: &str,
    node_ips: &[IpAddr],
) -> Result<CertKey, PkiError> {
    let paths = super::Paths::new(data_dir);
    files::ensure_dir(&paths.tls_dir, true)?;
    let ca = ca::Ca::load_or_create(&paths.ca_cert, &paths.ca_key)?;
    let (cert_path, key_path) = serving_paths(&data_dir.join("agent"));
    if let Some(dir) = cert_path.parent() {
        files::ensure_dir(dir, true)?;
    }
    let sans = serving_sans(node_name, hostname, node_ips);
    let (cert_pem, key_pem) = super::leaf(
        &ca,
        &cert_path,
        &key_path,
        &ca::LeafSpec {
            common_name: node_name,
            organizations: &[],
            sans: &sans,
            usage: ca::Usage::Server,
            days: certs::LEAF_DAYS,
        },
    )?;
    Ok(CertKey { cert_pem, key_pem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_certificate_names_the_node_and_its_addresses() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ips: Vec<IpAddr> = vec!["192.0.2.7".parse().expect("ip")];
        let first = ensure_serving(dir.path(), "node-a", "Node-A", &ips).expect("issue");
        let (_, pem) = x509_parser::pem::parse_x509_pem(first.cert_pem.as_bytes()).expect("pem");
        let cert = pem.parse_x509().expect("x509");
        let names: Vec<String> = cert
            .subject_alternative_name()
            .expect("san")
            .expect("present")
            .value
            .general_names
            .iter()
            .map(|n| format!("{n:?}"))
            .collect();
        assert!(names.iter().any(|n| n.contains("node-a")), "{names:?}");
        assert!(
            names.iter().any(|n| n.contains("192, 0, 2, 7")),
            "{names:?}"
        );
        assert_eq!(
            names.len(),
            2,
            "node name and hostname are the same: {names:?}"
        );
        // Unchanged names: the same certificate is kept.
        let again = ensure_serving(dir.path(), "node-a", "node-a", &ips).expect("reuse");
        assert_eq!(first.cert_pem, again.cert_pem);
        // A new address: reissued.
        let moved = ensure_serving(
            dir.path(),
            "node-a",
            "node-a",
            &["192.0.2.8".parse().expect("ip")],
        )
        .expect("reissue");
        assert_ne!(first.cert_pem, moved.cert_pem);
    }
}
