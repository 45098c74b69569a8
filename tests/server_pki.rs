//! The server's PKI as a user sees it on disk: generated once, reused on
//! restart, the serving certificate reissued when its names change, private
//! files mode 0600, and the k3s-style token that pins the CA.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::TestServer;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::parse_x509_pem;

const FILES: &[&str] = &[
    "server-ca.crt",
    "server-ca.key",
    "serving-kube-apiserver.crt",
    "serving-kube-apiserver.key",
    "client-admin.crt",
    "client-admin.key",
];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The DNS names and IPs in a certificate's SAN extension.
fn sans(cert_pem: &str) -> Vec<String> {
    let (_, pem) = parse_x509_pem(cert_pem.as_bytes()).expect("PEM");
    let cert = pem.parse_x509().expect("X.509");
    let ext = cert
        .subject_alternative_name()
        .expect("valid SAN extension")
        .expect("a SAN extension");
    ext.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn certificates_and_token_are_reused_across_restarts() {
    let mut server = TestServer::start();
    let before: Vec<String> = FILES.iter().map(|f| read(&server.tls_file(f))).collect();
    let token_path = server.data_dir.join("server").join("token");
    let token = read(&token_path);

    server.restart_with(&[]);
    for (name, old) in FILES.iter().zip(&before) {
        assert_eq!(
            &read(&server.tls_file(name)),
            old,
            "{name} changed on restart"
        );
    }
    assert_eq!(read(&token_path), token, "the token changed on restart");

    for key in FILES.iter().filter(|f| f.ends_with(".key")) {
        assert_eq!(mode(&server.tls_file(key)), 0o600, "{key}");
    }
    assert_eq!(mode(&token_path), 0o600);
    assert_eq!(mode(&server.kubeconfig), 0o600);
}

#[test]
fn serving_certificate_names_the_cluster_and_added_sans() {
    let mut server = TestServer::start();
    let serving = read(&server.tls_file("serving-kube-apiserver.crt"));
    let names = sans(&serving);
    for want in [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        "127.0.0.1",
        "10.43.0.1",
    ] {
        assert!(names.contains(&want.to_string()), "{want} not in {names:?}");
    }
    let ca = read(&server.tls_file("server-ca.crt"));
    let admin = read(&server.tls_file("client-admin.crt"));

    server.restart_with(&["--tls-san", "api.example.test", "--tls-san", "192.0.2.77"]);
    let reissued = read(&server.tls_file("serving-kube-apiserver.crt"));
    assert_ne!(
        reissued, serving,
        "a new --tls-san must reissue the serving certificate"
    );
    let names = sans(&reissued);
    assert!(names.contains(&"api.example.test".to_string()), "{names:?}");
    assert!(names.contains(&"192.0.2.77".to_string()), "{names:?}");
    assert_eq!(
        read(&server.tls_file("server-ca.crt")),
        ca,
        "the CA must not change"
    );
    assert_eq!(
        read(&server.tls_file("client-admin.crt")),
        admin,
        "the admin cert must not change"
    );
    // The server presents the new certificate and is still trusted by the CA.
    let reply = server.get("/cacerts", common::Credential::Anonymous);
    assert_eq!(reply.body, ca);
}

#[test]
fn kubeconfig_mode_follows_the_flag() {
    let server = TestServer::start_with(&["--write-kubeconfig-mode", "0640"]);
    assert_eq!(mode(&server.kubeconfig), 0o640);
    let text = read(&server.kubeconfig);
    assert!(
        text.contains(&format!("server: https://127.0.0.1:{}", server.port)),
        "{text}"
    );
}

#[test]
fn token_pins_the_ca_in_k3s_format() {
    let server = TestServer::start();
    let token = read(&server.data_dir.join("server").join("token"));
    let token = token.trim();
    let rest = token.strip_prefix("K10").expect("K10 prefix");
    let (hash, credentials) = rest.split_once("::").expect("K10<hash>::server:<secret>");
    assert_eq!(hash.len(), 64);
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    let secret = credentials.strip_prefix("server:").expect("server: user");
    assert!(!secret.is_empty());
    let ca_bytes = std::fs::read(server.tls_file("server-ca.crt")).expect("CA file");
    assert_eq!(hash, hex::encode(Sha256::digest(&ca_bytes)));
}

#[test]
fn a_given_token_is_kept_and_a_token_for_another_ca_is_refused() {
    let mut server = TestServer::start_with(&["--token", "s3cret-token"]);
    let token_path = server.data_dir.join("server").join("token");
    let stored = read(&token_path);
    assert!(stored.trim().ends_with("::server:s3cret-token"), "{stored}");

    // The full form of the same token is accepted on restart.
    let full = stored.trim().to_string();
    server.restart_with(&["--token", &full]);

    // A full token whose hash names another CA is refused with a clear error.
    server.stop();
    let foreign = format!("K10{}::server:s3cret-token", "0".repeat(64));
    server.launch(&["--token", &foreign]);
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server must refuse a token for another CA");
    assert!(!status.success());
    assert!(server.log().contains("does not match"), "{}", server.log());
}

#[test]
fn the_token_can_come_from_a_file() {
    let mut server = TestServer::new();
    let file = server.dir.path().join("token.txt");
    std::fs::write(&file, "from-a-file\n").expect("write token file");
    let file = file.to_string_lossy().into_owned();
    server.launch(&["--token-file", &file]);
    server.wait_ready();
    let stored = read(&server.data_dir.join("server").join("token"));
    assert!(stored.trim().ends_with("::server:from-a-file"), "{stored}");
}
