//! Service accounts as the stock `kubectl` sees them: the `default` account
//! and the `kube-root-ca.crt` ConfigMap in every namespace, `kubectl create
//! token` and using that token, the lifetime of tokens (service account
//! deleted, bound pod deleted, server restarted), and what pod admission
//! adds for the token.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{TestServer, eventually, ok, text};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// Runs kubectl and insists it fails; returns what it printed.
fn fails(server: &TestServer, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} succeeded: {}",
        text(&out)
    );
    text(&out)
}

fn json_of(server: &TestServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(server, &all)).expect("kubectl printed JSON")
}

fn manifest(server: &TestServer, name: &str, body: &str) -> PathBuf {
    let path = server.dir.path().join(name);
    std::fs::write(&path, body).expect("write manifest");
    path
}

/// A namespace whose `default` service account exists.
/// Creates `ns` and lets its service accounts read it (RBAC: `view`), so
/// that a request with their tokens shows authentication, not a 403.
fn namespace(server: &TestServer, ns: &str) {
    ok(server, &["create", "namespace", ns]);
    let group = format!("--group=system:serviceaccounts:{ns}");
    ok(
        server,
        &[
            "-n",
            ns,
            "create",
            "rolebinding",
            "sa-view",
            "--clusterrole=view",
            &group,
        ],
    );
    eventually(WAIT, "the default service account", || {
        server
            .kubectl(&["-n", ns, "get", "serviceaccount", "default"])
            .status
            .success()
            .then_some(())
    });
}

/// Runs kubectl with nothing but `token` as credentials (and the CA).
fn with_token(server: &TestServer, token: &str, args: &[&str]) -> Output {
    let server_url = format!("--server=https://127.0.0.1:{}", server.port);
    let ca = format!(
        "--certificate-authority={}",
        server.tls_file("server-ca.crt").display()
    );
    let token = format!("--token={token}");
    let mut all = vec![server_url.as_str(), ca.as_str(), token.as_str()];
    all.extend(args);
    server.kubectl_with(Path::new("/dev/null"), &all)
}

fn unauthorized(out: &Output) -> bool {
    !out.status.success() && text(out).contains("Unauthorized")
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT payload");
    let bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

fn create_token(server: &TestServer, ns: &str, args: &[&str]) -> String {
    let mut all = vec!["-n", ns, "create", "token"];
    all.extend(args);
    ok(server, &all).trim().to_string()
}

#[test]
fn every_namespace_gets_the_default_account_and_the_root_ca() {
    let server = TestServer::start();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        eventually(WAIT, "the system namespaces' default accounts", || {
            server
                .kubectl(&["-n", ns, "get", "serviceaccount", "default"])
                .status
                .success()
                .then_some(())
        });
    }
    namespace(&server, "team");
    let ca = server.ca_pem();
    let root_ca = |server: &TestServer| -> Option<String> {
        let out = server.kubectl(&[
            "-n",
            "team",
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    eventually(WAIT, "kube-root-ca.crt with the cluster CA", || {
        (root_ca(&server)? == ca).then_some(())
    });
    let cm = json_of(
        &server,
        &["-n", "team", "get", "configmap", "kube-root-ca.crt"],
    );
    assert!(
        cm["metadata"]["annotations"]["kubernetes.io/description"]
            .as_str()
            .is_some_and(|d| d.contains("CA bundle")),
        "{cm}"
    );

    // An edit is undone, a deletion repaired.
    ok(
        &server,
        &[
            "-n",
            "team",
            "patch",
            "configmap",
            "kube-root-ca.crt",
            "--type=merge",
            "-p",
            r#"{"data":{"ca.crt":"forged"}}"#,
        ],
    );
    eventually(WAIT, "the edited CA restored", || {
        (root_ca(&server)? == ca).then_some(())
    });
    ok(
        &server,
        &["-n", "team", "delete", "configmap", "kube-root-ca.crt"],
    );
    eventually(WAIT, "the deleted CA ConfigMap recreated", || {
        (root_ca(&server)? == ca).then_some(())
    });

    // The default account comes back, as a new object.
    let uid_of = |server: &TestServer| -> Option<String> {
        let out = server.kubectl(&[
            "-n",
            "team",
            "get",
            "serviceaccount",
            "default",
            "-o",
            "jsonpath={.metadata.uid}",
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let before = uid_of(&server).expect("the default account");
    ok(
        &server,
        &["-n", "team", "delete", "serviceaccount", "default"],
    );
    eventually(WAIT, "the default account recreated", || {
        uid_of(&server).filter(|uid| *uid != before)
    });
}

#[test]
fn a_created_token_authenticates_as_its_service_account() {
    let server = TestServer::start();
    namespace(&server, "team");

    let discovery = ok(&server, &["get", "--raw", "/api/v1"]);
    assert!(
        discovery.contains("\"serviceaccounts/token\""),
        "{discovery}"
    );

    let token = create_token(&server, "team", &["default", "--duration=10m"]);
    let c = claims(&token);
    assert_eq!(c["sub"], "system:serviceaccount:team:default");
    assert_eq!(c["iss"], "https://kubernetes.default.svc.cluster.local");
    assert_eq!(c["aud"][0], "https://kubernetes.default.svc.cluster.local");
    assert_eq!(
        c["exp"].as_i64().zip(c["iat"].as_i64()).map(|(e, i)| e - i),
        Some(600)
    );
    assert_eq!(c["kubernetes.io"]["namespace"], "team");
    assert_eq!(c["kubernetes.io"]["serviceaccount"]["name"], "default");

    let out = with_token(&server, &token, &["-n", "team", "get", "configmaps"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        server
            .log()
            .contains("user=\"system:serviceaccount:team:default\""),
        "the request was not made as the service account"
    );

    // A token with a changed byte, or for another audience, is refused.
    let mut forged = token.clone().into_bytes();
    let at = forged.len() - 5;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).expect("ascii");
    assert!(unauthorized(&with_token(
        &server,
        &forged,
        &["get", "configmaps"]
    )));
    let elsewhere = create_token(&server, "team", &["default", "--audience=vault"]);
    assert!(unauthorized(&with_token(
        &server,
        &elsewhere,
        &["get", "configmaps"]
    )));

    // Upstream's lifetime limits.
    let short = fails(
        &server,
        &["-n", "team", "create", "token", "default", "--duration=1m"],
    );
    assert!(
        short.contains("TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"),
        "{short}"
    );
    let missing = fails(&server, &["-n", "team", "create", "token", "ghost"]);
    assert!(
        missing.contains("serviceaccounts \"ghost\" not found"),
        "{missing}"
    );

    // Tokens outlive a restart: the signing key is kept.
    let key = std::fs::read(server.tls_file("service.key")).expect("the signing key");
    let mut server = server;
    server.restart_with(&[]);
    assert_eq!(
        std::fs::read(server.tls_file("service.key")).ok(),
        Some(key)
    );
    let out = with_token(&server, &token, &["-n", "team", "get", "configmaps"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn deleting_a_service_account_ends_its_tokens() {
    let server = TestServer::start();
    namespace(&server, "team");
    ok(
        &server,
        &["-n", "team", "create", "serviceaccount", "robot"],
    );
    let token = create_token(&server, "team", &["robot"]);
    let out = with_token(&server, &token, &["-n", "team", "get", "pods"]);
    assert!(out.status.success(), "{}", text(&out));

    ok(
        &server,
        &["-n", "team", "delete", "serviceaccount", "robot"],
    );
    eventually(WAIT, "the token refused", || {
        unauthorized(&with_token(&server, &token, &["-n", "team", "get", "pods"])).then_some(())
    });
    // An account of the same name is another account.
    ok(
        &server,
        &["-n", "team", "create", "serviceaccount", "robot"],
    );
    assert!(unauthorized(&with_token(
        &server,
        &token,
        &["-n", "team", "get", "pods"]
    )));
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  initContainers:
  - name: init
    image: busybox
  containers:
  - name: app
    image: busybox
  - name: sidecar
    image: busybox
";

#[test]
fn a_pod_bound_token_ends_with_its_pod() {
    let server = TestServer::start();
    namespace(&server, "team");
    let pod = manifest(&server, "pod.yaml", POD);
    ok(
        &server,
        &["-n", "team", "create", "-f", &pod.display().to_string()],
    );
    let uid = ok(
        &server,
        &[
            "-n",
            "team",
            "get",
            "pod",
            "web",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );

    let wrong = fails(
        &server,
        &[
            "-n",
            "team",
            "create",
            "token",
            "default",
            "--bound-object-kind=Pod",
            "--bound-object-name=web",
            "--bound-object-uid=0d4691ed-659b-4935-a832-355f77ee47cc",
        ],
    );
    assert!(
        wrong.contains("the UID in the bound object reference (0d4691ed-659b-4935-a832-355f77ee47cc) does not match the UID in record"),
        "{wrong}"
    );
    ok(
        &server,
        &["-n", "team", "create", "serviceaccount", "robot"],
    );
    let other = fails(
        &server,
        &[
            "-n",
            "team",
            "create",
            "token",
            "robot",
            "--bound-object-kind=Pod",
            "--bound-object-name=web",
        ],
    );
    assert!(
        other.contains("cannot bind token for serviceaccount \"robot\" to pod running with different serviceaccount name."),
        "{other}"
    );

    let token = create_token(
        &server,
        "team",
        &[
            "default",
            "--bound-object-kind=Pod",
            "--bound-object-name=web",
        ],
    );
    assert_eq!(
        claims(&token)["kubernetes.io"]["pod"]["uid"].as_str(),
        Some(uid.as_str())
    );
    let out = with_token(&server, &token, &["-n", "team", "get", "pods"]);
    assert!(out.status.success(), "{}", text(&out));

    ok(
        &server,
        &["-n", "team", "delete", "pod", "web", "--wait=true"],
    );
    eventually(WAIT, "the pod-bound token refused", || {
        unauthorized(&with_token(&server, &token, &["-n", "team", "get", "pods"])).then_some(())
    });
}

#[test]
fn pod_admission_mounts_the_service_account_token() {
    let server = TestServer::start();
    namespace(&server, "team");
    let pod = manifest(&server, "pod.yaml", POD);
    ok(
        &server,
        &["-n", "team", "create", "-f", &pod.display().to_string()],
    );
    let got = json_of(&server, &["-n", "team", "get", "pod", "web"]);
    let spec = &got["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    let volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
    assert_eq!(volumes.len(), 1, "{spec}");
    let name = volumes[0]["name"].as_str().unwrap_or_default().to_string();
    assert!(
        name.starts_with("kube-api-access-") && name.len() == 21,
        "{name}"
    );
    let sources = &volumes[0]["projected"]["sources"];
    assert_eq!(sources[0]["serviceAccountToken"]["expirationSeconds"], 3607);
    assert_eq!(sources[0]["serviceAccountToken"]["path"], "token");
    assert_eq!(sources[1]["configMap"]["name"], "kube-root-ca.crt");
    assert_eq!(sources[1]["configMap"]["items"][0]["key"], "ca.crt");
    assert_eq!(
        sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    for (list, i) in [("initContainers", 0), ("containers", 0), ("containers", 1)] {
        let mount = &spec[list][i]["volumeMounts"][0];
        assert_eq!(mount["name"], name.as_str(), "{list}[{i}]");
        assert_eq!(
            mount["mountPath"],
            "/var/run/secrets/kubernetes.io/serviceaccount"
        );
        assert_eq!(mount["readOnly"], true);
    }

    // `kubectl run` (a protobuf body) is admitted the same way.
    ok(&server, &["-n", "team", "run", "quick", "--image=busybox"]);
    let quick = json_of(&server, &["-n", "team", "get", "pod", "quick"]);
    assert_eq!(
        quick["spec"]["volumes"].as_array().map(Vec::len),
        Some(1),
        "{quick}"
    );

    // No token where the pod or its account says so.
    let off = manifest(
        &server,
        "off.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: no-mount
spec:
  automountServiceAccountToken: false
  containers:
  - name: app
    image: busybox
",
    );
    ok(
        &server,
        &["-n", "team", "create", "-f", &off.display().to_string()],
    );
    let got = json_of(&server, &["-n", "team", "get", "pod", "no-mount"]);
    assert!(got["spec"]["volumes"].is_null(), "{got}");
    let quiet = manifest(
        &server,
        "quiet.yaml",
        "apiVersion: v1
kind: ServiceAccount
metadata:
  name: quiet
automountServiceAccountToken: false
---
apiVersion: v1
kind: Pod
metadata:
  name: quiet
spec:
  serviceAccountName: quiet
  containers:
  - name: app
    image: busybox
",
    );
    ok(
        &server,
        &["-n", "team", "create", "-f", &quiet.display().to_string()],
    );
    let got = json_of(&server, &["-n", "team", "get", "pod", "quiet"]);
    assert!(got["spec"]["volumes"].is_null(), "{got}");

    // A pod may not run as an account that does not exist.
    let ghost = manifest(
        &server,
        "ghost.yaml",
        "apiVersion: v1
kind: Pod
metadata:
  name: haunted
spec:
  serviceAccountName: ghost
  containers:
  - name: app
    image: busybox
",
    );
    let refused = fails(
        &server,
        &["-n", "team", "create", "-f", &ghost.display().to_string()],
    );
    assert!(
        refused.contains("pods \"haunted\" is forbidden: error looking up service account team/ghost: serviceaccount \"ghost\" not found"),
        "{refused}"
    );
}
