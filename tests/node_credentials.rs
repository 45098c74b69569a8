//! The join endpoint `POST /v1-skiff/node-credentials` against a real
//! server (no root needed): who may call it (a join token; not anonymous,
//! not a wrong token, not an administrator), bad bodies, what it issues
//! (a node client certificate the API server accepts, a serving
//! certificate for the node's addresses, the cluster settings), and the
//! node-identity Secret that keeps another machine off a node name.

mod common;

use common::TestServer;
use common::https::{self, Credential, Reply};
use sha2::{Digest, Sha256};

const PATH: &str = "/v1-skiff/node-credentials";

fn post(server: &TestServer, credential: Credential<'_>, body: &str) -> Reply {
    https::post_json(server.port, &server.ca_pem(), PATH, credential, body)
        .unwrap_or_else(|e| panic!("POST {PATH}: {e}; log:\n{}", server.log()))
}

fn token(server: &TestServer) -> String {
    std::fs::read_to_string(server.data_dir.join("server/token"))
        .expect("the server token")
        .trim()
        .to_string()
}

fn status(reply: &Reply) -> serde_json::Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

/// The subject and the SANs of a PEM certificate, as text.
fn describe(pem: &str) -> (String, String) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
    let cert = pem.parse_x509().expect("x509");
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| format!("{:?}", ext.value.general_names))
        .unwrap_or_default();
    (cert.subject().to_string(), sans)
}

#[test]
fn join_tokens_get_node_credentials_and_node_names_stay_with_their_machine() {
    let server = TestServer::start();
    let token = token(&server);
    let body = r#"{"nodeName":"worker-1","nodePassword":"first-machine","nodeIPs":["192.0.2.11"],"hostname":"Worker-1"}"#;

    // The CA at /cacerts is what the token's hash covers.
    let cacerts = server.get("/cacerts", Credential::Anonymous);
    assert_eq!(cacerts.status, 200);
    let hash = hex::encode(Sha256::digest(cacerts.body.as_bytes()));
    assert!(
        token.starts_with(&format!("K10{hash}::")),
        "{token} vs {hash}"
    );

    // Who may ask.
    assert_eq!(post(&server, Credential::Anonymous, body).status, 401);
    let wrong = post(&server, Credential::Bearer("K10abc::server:nope"), body);
    assert_eq!(wrong.status, 401);
    assert_eq!(status(&wrong)["reason"], "Unauthorized");
    let admin_cert = std::fs::read_to_string(server.tls_file("client-admin.crt")).expect("cert");
    let admin_key = std::fs::read_to_string(server.tls_file("client-admin.key")).expect("key");
    let admin = post(
        &server,
        Credential::Certificate {
            cert_pem: &admin_cert,
            key_pem: &admin_key,
        },
        body,
    );
    assert_eq!(admin.status, 403, "{}", admin.body);
    assert!(
        status(&admin)["message"]
            .as_str()
            .is_some_and(|m| m.contains("system:bootstrappers")),
        "{}",
        admin.body
    );

    // Bad bodies.
    for bad in [
        "not json",
        r#"{"nodeName":"Worker_1","nodePassword":"p"}"#,
        r#"{"nodeName":"worker-1","nodePassword":""}"#,
        r#"{"nodeName":"worker-1","nodePassword":"p","nodeIPs":["nope"]}"#,
    ] {
        let reply = post(&server, Credential::Bearer(&token), bad);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert_eq!(status(&reply)["reason"], "BadRequest", "{bad}");
    }

    // The credentials.
    let reply = post(&server, Credential::Bearer(&token), body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let creds = status(&reply);
    assert_eq!(creds["caCert"], cacerts.body);
    assert_eq!(creds["config"]["clusterCIDR"], "10.42.0.0/16");
    assert_eq!(creds["config"]["serviceCIDR"], "10.43.0.0/16");
    assert_eq!(creds["config"]["clusterDNS"], "10.43.0.10");
    assert_eq!(creds["config"]["clusterDomain"], "cluster.local");
    let client_cert = creds["clientCert"].as_str().expect("client cert");
    let client_key = creds["clientKey"].as_str().expect("client key");
    let (subject, _) = describe(client_cert);
    assert!(subject.contains("CN=system:node:worker-1"), "{subject}");
    assert!(subject.contains("O=system:nodes"), "{subject}");
    let (_, sans) = describe(creds["servingCert"].as_str().expect("serving cert"));
    assert!(sans.contains("worker-1"), "{sans}");
    assert!(sans.contains("192, 0, 2, 11"), "{sans}");

    // The API server takes the node certificate as the node.
    let as_node = server.get(
        "/api/v1/nodes",
        Credential::Certificate {
            cert_pem: client_cert,
            key_pem: client_key,
        },
    );
    assert_eq!(as_node.status, 200, "{}", as_node.body);

    // The node identity: kept hashed, the same machine rejoins, another
    // machine with the name is refused.
    let secret = server.kubectl(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        "worker-1.node-password.skiff",
        "-o=jsonpath={.type} {.data.hash}",
    ]);
    let secret = String::from_utf8_lossy(&secret.stdout).to_string();
    assert!(secret.starts_with("skiff.io/node-password "), "{secret}");
    assert!(
        !secret.contains("first-machine"),
        "the password is not stored"
    );
    let again = post(&server, Credential::Bearer(&token), body);
    assert_eq!(again.status, 200, "{}", again.body);
    let impostor = post(
        &server,
        Credential::Bearer(&token),
        r#"{"nodeName":"worker-1","nodePassword":"second-machine","nodeIPs":["192.0.2.12"]}"#,
    );
    assert_eq!(impostor.status, 403, "{}", impostor.body);
    let message = status(&impostor)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("node password rejected"), "{message}");
    assert!(message.contains("--node-name"), "{message}");
}

/// Starts `skiff agent` with `args`, waits until its log shows `needle`
/// twice (a failure, then its retry) while the process keeps running, and
/// returns the log.
fn agent_retries(dir: &std::path::Path, args: &[&str], needle: &str) -> String {
    std::fs::create_dir_all(dir).expect("create the agent dir");
    let log_path = dir.join("agent.log");
    let log = std::fs::File::create(&log_path).expect("create the log");
    let config = dir.join("config.yaml");
    std::fs::write(&config, "").expect("write the config file");
    let mut child = common::skiff()
        .arg("agent")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--node-name=retrying")
        .arg("--node-ip=127.0.0.1")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().expect("clone the log"))
        .stderr(log)
        .spawn()
        .expect("start skiff agent");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.matches(needle).count() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let still_running = matches!(child.try_wait(), Ok(None));
    common::kill(&mut child);
    assert!(
        still_running,
        "the agent exited instead of retrying:\n{text}"
    );
    assert!(
        text.matches(needle).count() >= 2,
        "no retry of {needle:?}:\n{text}"
    );
    text
}

#[test]
fn an_agent_says_what_is_wrong_and_keeps_retrying() {
    let server = TestServer::start();
    let url = format!("--server=https://127.0.0.1:{}", server.port);
    let dir = tempfile::tempdir().expect("tempdir");

    // Nothing listens there.
    let closed = format!("--server=https://127.0.0.1:{}", common::free_port());
    let log = agent_retries(
        &dir.path().join("closed"),
        &[&closed, "--token=s3cret"],
        "cannot reach the server",
    );
    assert!(log.contains("check --server"), "{log}");
    assert!(
        log.contains("retrying in 1s") && log.contains("retrying in 2s"),
        "{log}"
    );

    // The right CA hash, the wrong secret.
    let token = token(&server);
    let (pinned, _) = token.split_once("::").expect("a K10 token");
    let wrong = format!("--token={pinned}::server:wrong");
    let log = agent_retries(
        &dir.path().join("wrong"),
        &[&url, &wrong],
        "refused the token (401 Unauthorized)",
    );
    assert!(log.contains("check --token"), "{log}");

    // A token of another cluster: the CA does not match its hash.
    let (_, credentials) = token.split_once("::").expect("a K10 token");
    let foreign = format!("--token=K10{}::{credentials}", "f".repeat(64));
    agent_retries(
        &dir.path().join("foreign"),
        &[&url, &foreign],
        "does not match the hash in the token",
    );
}
