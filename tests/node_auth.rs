//! Join tokens and node credentials with the stock kubectl:
//! `skiff token create/list/delete` manage bootstrap tokens that
//! authenticate as `system:bootstrap:<id>` until they expire (the token
//! cleaner then removes them); a node's client certificate may change only
//! its own Node, Lease and pods, and read only the secrets its pods use
//! (node authorizer + NodeRestriction admission).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{TestServer, eventually, ok, text};
use skiff::pki::ca::{Ca, LeafSpec, Usage};

const WAIT: Duration = Duration::from_secs(30);

/// `skiff token ...` against `server` with its admin kubeconfig.
fn token_cmd(server: &TestServer, args: &[&str]) -> Output {
    common::skiff()
        .arg("token")
        .args(args)
        .arg("--kubeconfig")
        .arg(&server.kubeconfig)
        .output()
        .expect("run skiff token")
}

fn token_ok(server: &TestServer, args: &[&str]) -> String {
    let out = token_cmd(server, args);
    assert!(out.status.success(), "skiff token {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A kubeconfig that trusts the cluster CA and carries no credentials
/// (kubectl gets `--token`).
fn bare_kubeconfig(server: &TestServer) -> PathBuf {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(server.ca_pem());
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {ca}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n",
        server.port
    );
    let path = server.dir.path().join("bare.yaml");
    std::fs::write(&path, yaml).expect("write kubeconfig");
    path
}

/// `kubectl auth whoami` with `token`: the username, or the error text.
fn whoami(server: &TestServer, kubeconfig: &Path, token: &str) -> Result<String, String> {
    let out = server.kubectl_with(
        kubeconfig,
        &[
            "--token",
            token,
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(text(&out))
    }
}

#[test]
fn bootstrap_tokens_authenticate_until_they_expire_or_are_deleted() {
    let server = TestServer::start();
    let bare = bare_kubeconfig(&server);

    // create prints the join token, pinned to this server's CA.
    let join = token_ok(&server, &["create", "--description", "edge nodes"])
        .trim()
        .to_string();
    let hash = skiff::pki::token::ca_hash(&server.ca_pem());
    let (prefix, credentials) = join.split_once("::").expect("K10 form");
    assert_eq!(prefix, format!("K10{hash}"));
    let (id, secret) = credentials.split_once('.').expect("id.secret");
    assert_eq!(id.len(), 6);
    assert_eq!(secret.len(), 16);

    // The Secret is upstream's bootstrap token.
    let name = format!("bootstrap-token-{id}");
    let stored = ok(
        &server,
        &[
            "get",
            "secret",
            "-n",
            "kube-system",
            &name,
            "-o",
            "jsonpath={.type} {.data.token-id} {.data.usage-bootstrap-authentication} {.data.expiration}",
        ],
    );
    let fields: Vec<&str> = stored.split_whitespace().collect();
    assert_eq!(fields[0], "bootstrap.kubernetes.io/token", "{stored}");
    use base64::Engine;
    let decode = |s: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .expect("base64"),
        )
        .expect("utf-8")
    };
    assert_eq!(decode(fields[1]), id);
    assert_eq!(decode(fields[2]), "true");
    assert!(decode(fields[3]).ends_with('Z'), "{stored}");

    // Both forms authenticate as system:bootstrap:<id>.
    let who = eventually(WAIT, "the join token authenticates", || {
        whoami(&server, &bare, &join).ok()
    });
    assert!(who.starts_with(&format!("system:bootstrap:{id} ")), "{who}");
    assert!(who.contains("system:bootstrappers"), "{who}");
    assert!(
        who.contains("system:bootstrappers:skiff:default-node-token"),
        "{who}"
    );
    assert!(who.contains("system:authenticated"), "{who}");
    let bare_token = format!("{id}.{secret}");
    assert!(
        whoami(&server, &bare, &bare_token)
            .expect("bare token")
            .starts_with(&format!("system:bootstrap:{id} "))
    );
    let wrong = format!("{id}.{}", "x".repeat(16));
    assert!(
        whoami(&server, &bare, &wrong)
            .expect_err("wrong secret")
            .contains("Unauthorized")
    );

    // list shows it like kubeadm's table.
    let list = token_ok(&server, &["list"]);
    let header = list.lines().next().unwrap_or_default();
    for column in [
        "TOKEN ID",
        "TTL",
        "EXPIRES",
        "USAGES",
        "DESCRIPTION",
        "EXTRA GROUPS",
    ] {
        assert!(header.contains(column), "{list}");
    }
    let row = list
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("no row for {id}: {list}"));
    assert!(row.contains("23h") || row.contains("24h"), "{row}");
    assert!(row.contains("authentication,signing"), "{row}");
    assert!(row.contains("edge nodes"), "{row}");
    assert!(!list.contains(secret), "list shows no secrets: {list}");

    // delete: the token stops working; a second delete is an error.
    let deleted = token_ok(&server, &["delete", id]);
    assert_eq!(deleted.trim(), format!("bootstrap token \"{id}\" deleted"));
    eventually(WAIT, "the deleted token is refused", || {
        whoami(&server, &bare, &join)
            .err()
            .filter(|e| e.contains("Unauthorized"))
    });
    let again = token_cmd(&server, &["delete", id]);
    assert!(!again.status.success());
    assert!(
        text(&again).contains(&format!("bootstrap token \"{id}\" not found")),
        "{}",
        text(&again)
    );

    // A short-lived token is refused once expired, and the cleaner
    // removes its Secret.
    let short = token_ok(&server, &["create", "--ttl", "3s"])
        .trim()
        .to_string();
    let short_id = short
        .split_once("::")
        .and_then(|(_, c)| c.split_once('.'))
        .map(|(id, _)| id.to_string())
        .expect("id");
    eventually(WAIT, "the expired token is refused", || {
        whoami(&server, &bare, &short)
            .err()
            .filter(|e| e.contains("Unauthorized"))
    });
    let short_name = format!("bootstrap-token-{short_id}");
    eventually(WAIT, "the token cleaner deletes the expired token", || {
        let out = server.kubectl(&["get", "secret", "-n", "kube-system", &short_name]);
        text(&out).contains("NotFound").then_some(())
    });

    // A token that never expires.
    let forever = token_ok(&server, &["create", "--ttl", "0"]);
    let forever_id = forever
        .trim()
        .split_once("::")
        .and_then(|(_, c)| c.split_once('.'))
        .map(|(id, _)| id.to_string())
        .expect("id");
    let list = token_ok(&server, &["list"]);
    let row = list
        .lines()
        .find(|l| l.starts_with(&forever_id))
        .unwrap_or_else(|| panic!("no row for {forever_id}: {list}"));
    assert!(
        row.contains("<forever>") && row.contains("<never>"),
        "{row}"
    );
}

#[test]
fn token_commands_explain_bad_input_and_unreachable_servers() {
    let server = TestServer::start();
    let bad_ttl = token_cmd(&server, &["create", "--ttl", "5x"]);
    assert!(!bad_ttl.status.success());
    assert!(
        text(&bad_ttl).contains("invalid --ttl \"5x\""),
        "{}",
        text(&bad_ttl)
    );
    let bad_group = token_cmd(&server, &["create", "--groups", "system:masters"]);
    assert!(!bad_group.status.success());
    assert!(
        text(&bad_group).contains("invalid group"),
        "{}",
        text(&bad_group)
    );
    let unknown = token_cmd(&server, &["delete", "zzzzzz"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("bootstrap token \"zzzzzz\" not found"),
        "{}",
        text(&unknown)
    );

    // A kubeconfig pointing at a port nothing listens on.
    let config = std::fs::read_to_string(&server.kubeconfig).expect("kubeconfig");
    let dead_port = common::free_port();
    let dead = config.replace(
        &format!("127.0.0.1:{}", server.port),
        &format!("127.0.0.1:{dead_port}"),
    );
    let dead_path = server.dir.path().join("dead.yaml");
    std::fs::write(&dead_path, dead).expect("write kubeconfig");
    let out = common::skiff()
        .args(["token", "list", "--kubeconfig"])
        .arg(&dead_path)
        .output()
        .expect("run skiff token");
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!(
            "cannot reach the API server at https://127.0.0.1:{dead_port}"
        )),
        "{}",
        text(&out)
    );
}

/// A kubeconfig for node `name`'s client certificate (CN
/// `system:node:<name>`, O `system:nodes`), signed by the cluster CA.
fn node_kubeconfig(server: &TestServer, name: &str) -> PathBuf {
    let ca = Ca::load_or_create(
        &server.tls_file("server-ca.crt"),
        &server.tls_file("server-ca.key"),
    )
    .expect("load the cluster CA");
    let (cert, key) = ca
        .issue(&LeafSpec {
            common_name: &format!("system:node:{name}"),
            organizations: &["system:nodes"],
            sans: &[],
            usage: Usage::Client,
            days: 1,
        })
        .expect("issue a node certificate");
    let config = skiff::pki::kubeconfig::render(
        &format!("https://127.0.0.1:{}", server.port),
        &server.ca_pem(),
        &cert,
        &key,
    )
    .expect("render a kubeconfig");
    let path = server.dir.path().join(format!("node-{name}.yaml"));
    std::fs::write(&path, config).expect("write the kubeconfig");
    path
}

fn apply_as(server: &TestServer, kubeconfig: &Path, manifest: &str) -> Output {
    let path = server.dir.path().join("manifest.json");
    std::fs::write(&path, manifest).expect("write manifest");
    server.kubectl_with(
        kubeconfig,
        &["create", "-f", path.to_str().expect("utf-8 path")],
    )
}

fn forbidden(out: &Output, message: &str) {
    assert!(!out.status.success(), "expected a refusal: {}", text(out));
    let all = text(out);
    assert!(
        all.contains("Forbidden") || all.contains("forbidden"),
        "{all}"
    );
    assert!(all.contains(message), "expected {message:?} in: {all}");
}

#[test]
fn node_credentials_reach_only_their_own_node_and_pods() {
    let server = TestServer::start();
    let a = node_kubeconfig(&server, "node-a");
    let b = node_kubeconfig(&server, "node-b");
    let node = |name: &str, labels: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}","labels":{{{labels}}}}}}}"#
        )
    };
    // Each node registers itself; another node's name is refused.
    let out = apply_as(
        &server,
        &a,
        &node("node-a", r#""kubernetes.io/hostname":"node-a""#),
    );
    assert!(out.status.success(), "{}", text(&out));
    forbidden(
        &apply_as(&server, &a, &node("node-c", "")),
        r#"node "node-a" is not allowed to modify node "node-c""#,
    );
    forbidden(
        &apply_as(
            &server,
            &b,
            &node(
                "node-b",
                r#""node-role.kubernetes.io/control-plane":"true""#,
            ),
        ),
        r#"node "node-b" is not allowed to set the following labels: node-role.kubernetes.io/control-plane"#,
    );
    let out = apply_as(&server, &b, &node("node-b", ""));
    assert!(out.status.success(), "{}", text(&out));

    // Its own Node: labels outside the restricted set, status; not others.
    let out = server.kubectl_with(&a, &["label", "node", "node-a", "example.com/rack=r1"]);
    assert!(out.status.success(), "{}", text(&out));
    forbidden(
        &server.kubectl_with(&a, &["label", "node", "node-b", "example.com/rack=r1"]),
        r#"nodes "node-b" is forbidden: node "node-a" is not allowed to modify node "node-b""#,
    );
    forbidden(
        &server.kubectl_with(
            &a,
            &[
                "label",
                "node",
                "node-a",
                "node-restriction.kubernetes.io/secure=yes",
            ],
        ),
        "is not allowed to modify labels: node-restriction.kubernetes.io/secure",
    );
    forbidden(
        &server.kubectl_with(&a, &["taint", "node", "node-a", "k=v:NoSchedule"]),
        r#"node "node-a" is not allowed to modify taints"#,
    );
    // Nodes are not deleted by kubelets at all (not in the node rules).
    forbidden(
        &server.kubectl_with(&a, &["delete", "node", "node-b"]),
        r#"User "system:node:node-a" cannot delete resource "nodes""#,
    );

    // Its own Lease only.
    let lease = |name: &str| {
        format!(
            r#"{{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{{"name":"{name}","namespace":"kube-node-lease"}},"spec":{{"holderIdentity":"{name}"}}}}"#
        )
    };
    let out = apply_as(&server, &a, &lease("node-a"));
    assert!(out.status.success(), "{}", text(&out));
    forbidden(
        &apply_as(&server, &a, &lease("node-b")),
        "can only access node lease with the same name as the requesting node",
    );

    // Secrets only through pods bound to the node.
    ok(
        &server,
        &["create", "secret", "generic", "used", "--from-literal=k=v"],
    );
    ok(
        &server,
        &[
            "create",
            "secret",
            "generic",
            "unused",
            "--from-literal=k=v",
        ],
    );
    let pod = |name: &str, node: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"nodeName":"{node}","containers":[{{"name":"c","image":"busybox"}}],"volumes":[{{"name":"s","secret":{{"secretName":"used"}}}}]}}}}"#
        )
    };
    let out = apply_as(&server, &server.kubeconfig, &pod("on-a", "node-a"));
    assert!(out.status.success(), "{}", text(&out));
    let out = apply_as(&server, &server.kubeconfig, &pod("on-b", "node-b"));
    assert!(out.status.success(), "{}", text(&out));

    let used = eventually(WAIT, "node-a reads the secret its pod mounts", || {
        let out = server.kubectl_with(&a, &["get", "secret", "used", "-o", "name"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(used.trim(), "secret/used");
    forbidden(
        &server.kubectl_with(&a, &["get", "secret", "unused"]),
        r#"secrets "unused" is forbidden: User "system:node:node-a" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'node-a' and this object"#,
    );
    forbidden(
        &server.kubectl_with(&a, &["get", "secrets"]),
        r#"cannot list resource "secrets""#,
    );
    forbidden(
        &server.kubectl_with(&a, &["get", "secret", "used", "-n", "kube-system"]),
        "no relationship found between node 'node-a' and this object",
    );
    // The node may read pods and nodes, as the kubelet does.
    ok_as(
        &server,
        &a,
        &["get", "pods", "--field-selector", "spec.nodeName=node-a"],
    );
    ok_as(&server, &a, &["get", "nodes"]);

    // Pods: status of its own only (a PUT of pods/<name>/status, as the
    // kubelet writes it), deletion of its own only.
    let put_status = |pod: &str| {
        let current = ok(&server, &["get", "pod", pod, "-o", "json"]);
        let mut obj: serde_json::Value = serde_json::from_str(&current).expect("pod json");
        obj["status"]["message"] = serde_json::json!("seen");
        let path = server.dir.path().join(format!("{pod}-status.json"));
        std::fs::write(&path, obj.to_string()).expect("write status");
        server.kubectl_with(
            &a,
            &[
                "replace",
                "--raw",
                &format!("/api/v1/namespaces/default/pods/{pod}/status"),
                "-f",
                path.to_str().expect("utf-8 path"),
            ],
        )
    };
    let out = put_status("on-a");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        ok(
            &server,
            &["get", "pod", "on-a", "-o", "jsonpath={.status.message}"]
        ),
        "seen"
    );
    forbidden(
        &put_status("on-b"),
        r#"pods "on-b" is forbidden: node "node-a" can only update pod status for pods with spec.nodeName set to itself"#,
    );
    forbidden(
        &server.kubectl_with(&a, &["label", "pod", "on-a", "x=y"]),
        r#"cannot patch resource "pods""#,
    );
    forbidden(
        &server.kubectl_with(&a, &["delete", "pod", "on-b", "--wait=false"]),
        r#"node "node-a" can only delete pods with spec.nodeName set to itself"#,
    );
    // Plain pods are not for nodes to create.
    forbidden(
        &apply_as(&server, &a, &pod("sneaky", "node-a")),
        r#"node "node-a" can only create mirror pods"#,
    );

    // Service-account tokens only for its own pods.
    let uid = |pod: &str| {
        ok(
            &server,
            &["get", "pod", pod, "-o", "jsonpath={.metadata.uid}"],
        )
    };
    let token_for = |pod: &str| {
        let uid = uid(pod);
        server.kubectl_with(
            &a,
            &[
                "create",
                "token",
                "default",
                "--bound-object-kind",
                "Pod",
                "--bound-object-name",
                pod,
                "--bound-object-uid",
                &uid,
            ],
        )
    };
    let out = token_for("on-a");
    assert!(out.status.success(), "{}", text(&out));
    forbidden(
        &token_for("on-b"),
        "node requested token bound to a pod scheduled on a different node",
    );

    // Its own pod goes; the other node keeps its pod.
    ok_as(
        &server,
        &a,
        &["delete", "pod", "on-a", "--grace-period=0", "--wait=false"],
    );
    ok(&server, &["get", "pod", "on-b"]);
}

fn ok_as(server: &TestServer, kubeconfig: &Path, args: &[&str]) -> String {
    let out = server.kubectl_with(kubeconfig, args);
    assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
