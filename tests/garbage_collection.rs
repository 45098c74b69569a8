//! The garbage collector and DELETE's propagation policies, as the stock
//! kubectl drives them: background cascading (the default), orphaning and
//! foreground deletion of a Deployment's ReplicaSets and pods, and objects
//! whose owner never existed.

mod common;

use std::time::Duration;

use common::{TestServer, eventually, ok};

const WAIT: Duration = Duration::from_secs(30);

fn names(server: &TestServer, what: &str, selector: &str) -> Vec<String> {
    ok(server, &["get", what, "-l", selector, "-o", "name"])
        .lines()
        .map(String::from)
        .collect()
}

/// Creates a Deployment and waits for its ReplicaSet and pods.
fn deployment(server: &TestServer, name: &str) {
    ok(
        server,
        &[
            "create",
            "deployment",
            name,
            "--image=docker.io/skiff/pause:3.10",
            "--replicas=2",
        ],
    );
    let selector = format!("app={name}");
    eventually(WAIT, "replicaset and pods", || {
        (names(server, "rs", &selector).len() == 1 && names(server, "pods", &selector).len() == 2)
            .then_some(())
    });
}

#[test]
fn deleting_a_deployment_cascades_in_the_background() {
    let server = TestServer::start();
    deployment(&server, "web");
    ok(&server, &["delete", "deployment", "web"]);
    eventually(WAIT, "replicaset and pods collected", || {
        (names(&server, "rs", "app=web").is_empty() && names(&server, "pods", "app=web").is_empty())
            .then_some(())
    });
}

#[test]
fn orphaning_keeps_the_dependents_without_their_owner() {
    let server = TestServer::start();
    deployment(&server, "keep");
    ok(
        &server,
        &["delete", "deployment", "keep", "--cascade=orphan"],
    );
    let out = server.kubectl(&["get", "deployment", "keep"]);
    assert!(!out.status.success(), "the deployment is gone");
    let rs = names(&server, "rs", "app=keep");
    assert_eq!(rs.len(), 1, "the replicaset stays");
    let owners = ok(
        &server,
        &["get", &rs[0], "-o", "jsonpath={.metadata.ownerReferences}"],
    );
    assert_eq!(owners, "", "the replicaset no longer names its owner");
    // Its pods still belong to the replicaset.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(names(&server, "pods", "app=keep").len(), 2);
}

#[test]
fn foreground_deletion_removes_the_dependents_first() {
    let server = TestServer::start();
    deployment(&server, "fg");
    // One pod holds on with a finalizer of its own, so the cascade has to
    // wait for it.
    let held = names(&server, "pods", "app=fg").remove(0);
    ok(
        &server,
        &[
            "patch",
            &held,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["skiff.test/hold"]}}"#,
        ],
    );
    ok(
        &server,
        &[
            "delete",
            "deployment",
            "fg",
            "--cascade=foreground",
            "--wait=false",
        ],
    );
    // The owners are kept, marked, while a dependent remains...
    eventually(WAIT, "the other pod deleted", || {
        (names(&server, "pods", "app=fg") == [held.clone()]).then_some(())
    });
    let finalizers = ok(
        &server,
        &[
            "get",
            "deployment",
            "fg",
            "-o",
            "jsonpath={.metadata.finalizers}",
        ],
    );
    assert!(finalizers.contains("foregroundDeletion"), "{finalizers}");
    let rs = names(&server, "rs", "app=fg");
    assert_eq!(rs.len(), 1, "the replicaset waits for its pods too");
    let finalizers = ok(
        &server,
        &["get", &rs[0], "-o", "jsonpath={.metadata.finalizers}"],
    );
    assert!(finalizers.contains("foregroundDeletion"), "{finalizers}");
    // ...and go once it is gone.
    ok(
        &server,
        &[
            "patch",
            &held,
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ],
    );
    eventually(WAIT, "foreground deletion done", || {
        let gone = !server
            .kubectl(&["get", "deployment", "fg"])
            .status
            .success();
        (gone
            && names(&server, "rs", "app=fg").is_empty()
            && names(&server, "pods", "app=fg").is_empty())
        .then_some(())
    });
}

#[test]
fn objects_whose_owners_are_gone_are_collected() {
    let server = TestServer::start();
    ok(&server, &["create", "configmap", "owner"]);
    let uid = ok(
        &server,
        &[
            "get",
            "configmap",
            "owner",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    let manifest = |name: &str, owner: &str, uid: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    gc: test\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: {owner}\n    uid: {uid}\n"
        )
    };
    let path = server.dir.path().join("dependents.yaml");
    std::fs::write(
        &path,
        format!(
            "{}---\n{}",
            manifest("child", "owner", &uid),
            manifest("stray", "ghost", "00000000-0000-0000-0000-000000000000")
        ),
    )
    .expect("write manifest");
    ok(
        &server,
        &["create", "-f", path.to_str().expect("utf-8 path")],
    );
    eventually(WAIT, "the stray dependent collected", || {
        (names(&server, "configmaps", "gc=test") == ["configmap/child"]).then_some(())
    });
    ok(&server, &["delete", "configmap", "owner"]);
    eventually(WAIT, "the child collected with its owner", || {
        names(&server, "configmaps", "gc=test")
            .is_empty()
            .then_some(())
    });
}
