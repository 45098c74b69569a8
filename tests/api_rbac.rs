//! RBAC with the stock kubectl: a user with a client certificate from the
//! cluster CA (CN=alice) gets exactly what her bindings grant, sees it with
//! `kubectl auth can-i` and `kubectl auth whoami`, cannot grant herself
//! more, aggregated roles follow labelled roles, and the bootstrap policy
//! comes back on restart.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{TestServer, eventually};
use skiff::pki::ca::{Ca, LeafSpec, Usage};

const WAIT: Duration = Duration::from_secs(20);

/// A kubeconfig for a user with a certificate signed by the cluster CA.
fn user_kubeconfig(server: &TestServer, user: &str, groups: &[&str]) -> PathBuf {
    let ca = Ca::load_or_create(
        &server.tls_file("server-ca.crt"),
        &server.tls_file("server-ca.key"),
    )
    .expect("load the cluster CA");
    let (cert, key) = ca
        .issue(&LeafSpec {
            common_name: user,
            organizations: groups,
            sans: &[],
            usage: Usage::Client,
            days: 1,
        })
        .expect("issue a client certificate");
    let config = skiff::pki::kubeconfig::render(
        &format!("https://127.0.0.1:{}", server.port),
        &server.ca_pem(),
        &cert,
        &key,
    )
    .expect("render a kubeconfig");
    let path = server.dir.path().join(format!("{user}.yaml"));
    std::fs::write(&path, config).expect("write the kubeconfig");
    path
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn ok(server: &TestServer, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Runs kubectl as `kubeconfig` until it succeeds (bindings take effect once
/// the server's caches have them, a moment after the write).
fn eventually_ok(server: &TestServer, kubeconfig: &Path, args: &[&str]) -> String {
    let mut last = String::new();
    let found = common::try_eventually(WAIT, || {
        let out = server.kubectl_with(kubeconfig, args);
        last = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        out.status.success().then(|| stdout(&out))
    });
    match found {
        Some(v) => v,
        None => panic!(
            "kubectl {args:?} did not succeed within {WAIT:?}: {last}\nserver log:\n{}",
            server.log()
        ),
    }
}

fn write_manifest(server: &TestServer, name: &str, text: &str) -> String {
    let path = server.dir.path().join(name);
    std::fs::write(&path, text).expect("write manifest");
    path.to_string_lossy().to_string()
}

#[test]
fn a_namespace_viewer_reads_there_and_nothing_else() {
    let server = TestServer::start();
    ok(&server, &["create", "namespace", "team"]);
    ok(
        &server,
        &[
            "create",
            "rolebinding",
            "alice-view",
            "--clusterrole=view",
            "--user=alice",
            "-n",
            "team",
        ],
    );
    let alice = user_kubeconfig(&server, "alice", &[]);

    let listed = eventually_ok(
        &server,
        &alice,
        &["get", "configmaps", "-n", "team", "-o", "name"],
    );
    // Only what the root CA publisher puts in every namespace.
    assert_eq!(listed.trim(), "configmap/kube-root-ca.crt", "{listed}");

    let out = server.kubectl_with(&alice, &["get", "pods", "-n", "default"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            r#"Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#
        ),
        "{}",
        stderr(&out)
    );
    let out = server.kubectl_with(&alice, &["create", "configmap", "x", "-n", "team"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            r#"configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" in the namespace "team""#
        ),
        "{}",
        stderr(&out)
    );
    let out = server.kubectl_with(&alice, &["get", "nodes"]);
    assert!(
        stderr(&out).contains(
            r#"nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope"#
        ),
        "{}",
        stderr(&out)
    );
    let out = server.kubectl_with(&alice, &["get", "--raw", "/metrics"]);
    assert!(
        stderr(&out).contains(r#"forbidden: User "alice" cannot get path "/metrics""#),
        "{}",
        stderr(&out)
    );
    // Discovery is open to every authenticated user.
    assert!(
        server
            .kubectl_with(&alice, &["api-resources", "-o", "name"])
            .status
            .success()
    );

    let can = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let out = server.kubectl_with(&alice, &all);
        (out.status.success(), stdout(&out).trim().to_string())
    };
    assert_eq!(can(&["list", "pods", "-n", "team"]), (true, "yes".into()));
    assert_eq!(
        can(&["get", "pods/log", "-n", "team"]),
        (true, "yes".into())
    );
    assert_eq!(can(&["delete", "pods", "-n", "team"]), (false, "no".into()));
    assert_eq!(
        can(&["list", "pods", "-n", "default"]),
        (false, "no".into())
    );
    assert_eq!(
        can(&["list", "secrets", "-n", "team"]),
        (false, "no".into())
    );
    assert_eq!(can(&["get", "/healthz"]), (true, "yes".into()));

    let list = ok_as(&server, &alice, &["auth", "can-i", "--list", "-n", "team"]);
    let pods = list
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("no pods line in:\n{list}"));
    assert!(pods.contains("[get list watch]"), "{pods}");
    assert!(
        list.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{list}"
    );
    assert!(!list.lines().any(|l| l.starts_with("secrets ")), "{list}");

    let whoami = ok_as(&server, &alice, &["auth", "whoami"]);
    assert!(whoami.contains("Username    alice"), "{whoami}");
    assert!(
        whoami.contains("Groups      [system:authenticated]"),
        "{whoami}"
    );

    // The admin asks about alice with a SubjectAccessReview.
    let review = write_manifest(
        &server,
        "sar.yaml",
        "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: alice\n  resourceAttributes:\n    namespace: team\n    verb: watch\n    resource: pods\n",
    );
    let answer = ok(
        &server,
        &[
            "create",
            "-f",
            &review,
            "-o",
            "jsonpath={.status.allowed} {.status.reason}",
        ],
    );
    assert_eq!(
        answer,
        r#"true RBAC: allowed by RoleBinding "alice-view/team" of ClusterRole "view" to User "alice""#
    );
}

fn ok_as(server: &TestServer, kubeconfig: &Path, args: &[&str]) -> String {
    let out = server.kubectl_with(kubeconfig, args);
    assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
    stdout(&out)
}

#[test]
fn a_namespace_admin_cannot_grant_what_she_does_not_hold() {
    let server = TestServer::start();
    ok(&server, &["create", "namespace", "team"]);
    ok(
        &server,
        &[
            "create",
            "rolebinding",
            "alice-admin",
            "--clusterrole=admin",
            "--user=alice",
            "-n",
            "team",
        ],
    );
    let alice = user_kubeconfig(&server, "alice", &[]);

    // Within her own rights: fine.
    eventually_ok(
        &server,
        &alice,
        &[
            "create",
            "role",
            "pod-reader",
            "--verb=get",
            "--resource=pods",
            "-n",
            "team",
        ],
    );
    ok_as(
        &server,
        &alice,
        &[
            "create",
            "rolebinding",
            "bob-reads",
            "--role=pod-reader",
            "--user=bob",
            "-n",
            "team",
        ],
    );

    let out = server.kubectl_with(
        &alice,
        &[
            "create",
            "role",
            "node-reader",
            "--verb=get",
            "--resource=nodes",
            "-n",
            "team",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "roles.rbac.authorization.k8s.io \"node-reader\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"nodes\"], Verbs:[\"get\"]}"
        ),
        "{}",
        stderr(&out)
    );

    let out = server.kubectl_with(
        &alice,
        &[
            "create",
            "rolebinding",
            "boom",
            "--clusterrole=cluster-admin",
            "--user=alice",
            "-n",
            "team",
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "rolebindings.rbac.authorization.k8s.io \"boom\" is forbidden: user \"alice\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:"
        ),
        "{err}"
    );
    assert!(
        err.contains(r#"{APIGroups:["*"], Resources:["*"], Verbs:["*"]}"#),
        "{err}"
    );

    // Nor widen a role she may edit.
    let widen = ok_as(
        &server,
        &alice,
        &["get", "role", "pod-reader", "-n", "team", "-o", "json"],
    )
    .replace(r#""pods""#, r#""pods", "secrets", "nodes""#);
    let path = write_manifest(&server, "widen.json", &widen);
    let out = server.kubectl_with(&alice, &["replace", "-f", &path]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}"#),
        "{}",
        stderr(&out)
    );

    // Aggregating cluster roles takes full authority.
    ok(
        &server,
        &[
            "create",
            "clusterrole",
            "clusterrole-maker",
            "--verb=create",
            "--resource=clusterroles",
        ],
    );
    ok(
        &server,
        &[
            "create",
            "clusterrolebinding",
            "alice-makes",
            "--clusterrole=clusterrole-maker",
            "--user=alice",
        ],
    );
    let aggregated = write_manifest(
        &server,
        "aggregated.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: everything\naggregationRule:\n  clusterRoleSelectors:\n  - matchLabels:\n      rbac.authorization.k8s.io/aggregate-to-admin: \"true\"\n",
    );
    eventually(WAIT, "the aggregationRule is refused", || {
        let out = server.kubectl_with(&alice, &["create", "-f", &aggregated]);
        stderr(&out)
            .contains(r#"clusterroles.rbac.authorization.k8s.io "everything" is forbidden: must have cluster-admin privileges to use the aggregationRule"#)
            .then_some(())
    });

    // With `escalate` on roles she may.
    ok(
        &server,
        &[
            "create",
            "clusterrole",
            "role-escalator",
            "--verb=escalate",
            "--resource=roles",
        ],
    );
    ok(
        &server,
        &[
            "create",
            "rolebinding",
            "alice-escalates",
            "--clusterrole=role-escalator",
            "--user=alice",
            "-n",
            "team",
        ],
    );
    eventually_ok(
        &server,
        &alice,
        &[
            "create",
            "role",
            "node-reader",
            "--verb=get",
            "--resource=nodes",
            "-n",
            "team",
        ],
    );
}

#[test]
fn aggregation_and_the_bootstrap_policy_survive_edits_and_restarts() {
    let mut server = TestServer::start();
    let widget_viewer = write_manifest(
        &server,
        "widgets.yaml",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: widget-viewer\n  labels:\n    rbac.authorization.k8s.io/aggregate-to-view: \"true\"\nrules:\n- apiGroups: [\"example.com\"]\n  resources: [\"widgets\"]\n  verbs: [\"get\", \"list\"]\n",
    );
    ok(&server, &["apply", "-f", &widget_viewer]);
    for role in ["view", "edit", "admin"] {
        eventually(WAIT, &format!("widgets aggregated into {role}"), || {
            let out = server.kubectl(&["get", "clusterrole", role, "-o", "json"]);
            stdout(&out).contains("\"widgets\"").then_some(())
        });
    }
    ok(
        &server,
        &[
            "label",
            "clusterrole",
            "widget-viewer",
            "rbac.authorization.k8s.io/aggregate-to-view-",
        ],
    );
    eventually(WAIT, "widgets dropped from view", || {
        let out = server.kubectl(&["get", "clusterrole", "view", "-o", "json"]);
        (out.status.success() && !stdout(&out).contains("\"widgets\"")).then_some(())
    });

    // Deleted and edited bootstrap objects come back at the next start;
    // objects marked autoupdate=false are left alone.
    ok(&server, &["delete", "clusterrole", "system:basic-user"]);
    ok(
        &server,
        &["delete", "clusterrolebinding", "system:discovery"],
    );
    ok(
        &server,
        &[
            "patch",
            "clusterrole",
            "system:public-info-viewer",
            "--type=json",
            "-p",
            r#"[{"op": "replace", "path": "/rules/0/nonResourceURLs", "value": ["/healthz"]}]"#,
        ],
    );
    ok(
        &server,
        &[
            "patch",
            "clusterrole",
            "system:monitoring",
            "--type=json",
            "-p",
            r#"[{"op": "replace", "path": "/rules/0/nonResourceURLs", "value": ["/metrics"]}]"#,
        ],
    );
    ok(
        &server,
        &[
            "annotate",
            "--overwrite",
            "clusterrole",
            "system:monitoring",
            "rbac.authorization.kubernetes.io/autoupdate=false",
        ],
    );

    server.restart_with(&[]);
    ok(&server, &["get", "clusterrole", "system:basic-user"]);
    let binding = ok(
        &server,
        &[
            "get",
            "clusterrolebinding",
            "system:discovery",
            "-o",
            "jsonpath={.subjects[*].name}",
        ],
    );
    assert_eq!(binding, "system:authenticated");
    let urls = ok(
        &server,
        &[
            "get",
            "clusterrole",
            "system:public-info-viewer",
            "-o",
            "jsonpath={.rules[*].nonResourceURLs}",
        ],
    );
    for url in ["/livez", "/readyz", "/version"] {
        assert!(urls.contains(url), "{url} missing: {urls}");
    }
    let kept = ok(
        &server,
        &[
            "get",
            "clusterrole",
            "system:monitoring",
            "-o",
            "jsonpath={.rules[*].nonResourceURLs}",
        ],
    );
    assert_eq!(kept, r#"["/metrics"]"#);
    let labels = ok(
        &server,
        &[
            "get",
            "clusterrole",
            "system:basic-user",
            "-o",
            "jsonpath={.metadata.labels}",
        ],
    );
    assert!(
        labels.contains(r#""kubernetes.io/bootstrapping":"rbac-defaults""#),
        "{labels}"
    );
}

#[test]
fn impersonation_needs_the_impersonate_verb_and_acts_as_the_target() {
    let server = TestServer::start();
    ok(&server, &["create", "namespace", "team"]);
    ok(
        &server,
        &[
            "create",
            "rolebinding",
            "alice-view",
            "--clusterrole=view",
            "--user=alice",
            "-n",
            "team",
        ],
    );
    // An admin may impersonate anyone: acting as alice, she is alice.
    let as_alice = |args: &[&str]| {
        let mut all = vec!["--as=alice"];
        all.extend(args);
        server.kubectl(&all)
    };
    let who = as_alice(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
    ]);
    assert!(who.status.success(), "{}", stderr(&who));
    assert_eq!(stdout(&who), "alice [\"system:authenticated\"]");
    // (`view` is filled by the aggregation controller just after start.)
    let mut last = String::new();
    let allowed = common::try_eventually(WAIT, || {
        let out = as_alice(&["auth", "can-i", "list", "pods", "-n", "team", "-v=6"]);
        last = format!("{}{}", stdout(&out), stderr(&out));
        (stdout(&out).trim() == "yes").then_some(())
    });
    assert!(
        allowed.is_some(),
        "alice may list pods in team: {last}\n{}\nserver log:\n{}",
        ok(&server, &["get", "clusterrole", "view", "-o", "yaml"]),
        server.log()
    );
    let out = as_alice(&["get", "pods", "-n", "default"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        stderr(&out)
    );
    // alice herself may not impersonate.
    let alice = user_kubeconfig(&server, "alice", &[]);
    let out = server.kubectl_with(&alice, &["get", "pods", "-n", "team", "--as=bob"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        ),
        "{}",
        stderr(&out)
    );
    // Groups and service accounts impersonate too.
    let out = server.kubectl(&[
        "auth",
        "whoami",
        "--as=system:serviceaccount:team:default",
        "-o",
        "jsonpath={.status.userInfo.groups}",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "[\"system:serviceaccounts\",\"system:serviceaccounts:team\",\"system:authenticated\"]"
    );
    let out = server.kubectl(&[
        "auth",
        "can-i",
        "get",
        "nodes",
        "--as=carol",
        "--as-group=system:masters",
    ]);
    assert_eq!(stdout(&out).trim(), "yes");
}
