//! Object lifecycle controllers with the stock kubectl against a real
//! `skiff server` and simulated nodes: the namespace controller emptying a
//! deleted namespace, PodGC, the PersistentVolume binder and leader
//! election.

mod common;

use std::time::Duration;

use common::{SimNodes, TestServer, eventually, ok, text};

const WAIT: Duration = Duration::from_secs(60);

/// Like `eventually`, with the server's log when it times out.
fn wait_for<T>(server: &TestServer, what: &str, check: impl FnMut() -> Option<T>) -> T {
    match common::try_eventually(WAIT, check) {
        Some(v) => v,
        None => panic!(
            "timed out waiting for: {what}\nserver log:\n{}",
            server.log()
        ),
    }
}

fn jsonpath(server: &TestServer, args: &[&str], path: &str) -> String {
    let expr = format!("jsonpath={path}");
    let mut all = args.to_vec();
    all.extend(["-o", expr.as_str()]);
    ok(server, &all).trim().to_string()
}

#[test]
fn deleting_a_namespace_empties_and_removes_it() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
    ok(&server, &["create", "namespace", "team"]);
    ok(
        &server,
        &[
            "-n",
            "team",
            "create",
            "deployment",
            "web",
            "--image=docker.io/skiff/pause:3.10",
            "--replicas=2",
        ],
    );
    ok(
        &server,
        &[
            "-n",
            "team",
            "create",
            "service",
            "clusterip",
            "web",
            "--tcp=80:80",
        ],
    );
    ok(
        &server,
        &[
            "-n",
            "team",
            "create",
            "configmap",
            "settings",
            "--from-literal=a=b",
        ],
    );
    ok(
        &server,
        &[
            "-n",
            "team",
            "create",
            "secret",
            "generic",
            "pw",
            "--from-literal=p=q",
        ],
    );
    eventually(WAIT, "the deployment's pods running", || {
        let phases = jsonpath(
            &server,
            &["-n", "team", "get", "pods"],
            "{.items[*].status.phase}",
        );
        (phases == "Running Running").then_some(())
    });

    // kubectl waits for the namespace to go.
    let out = server.kubectl(&["delete", "namespace", "team", "--timeout=60s"]);
    assert!(out.status.success(), "{}\n{}", text(&out), server.log());
    let gone = server.kubectl(&["get", "namespace", "team"]);
    assert!(text(&gone).contains("NotFound"), "{}", text(&gone));
    for what in [
        "pods",
        "deployments",
        "replicasets",
        "services",
        "configmaps",
        "secrets",
    ] {
        let left = ok(&server, &["-n", "team", "get", what, "-o", "name"]);
        assert!(left.trim().is_empty(), "{what} left: {left}");
    }
}

#[test]
fn a_namespace_waits_for_content_with_finalizers() {
    let server = TestServer::start();
    ok(&server, &["create", "namespace", "held"]);
    let cm = r#"{"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "keep", "namespace": "held", "finalizers": ["example.com/hold"]}}"#;
    let file = server.dir.path().join("cm.json");
    std::fs::write(&file, cm).expect("write the configmap");
    ok(
        &server,
        &["create", "-f", file.to_str().expect("utf-8 path")],
    );
    ok(&server, &["delete", "namespace", "held", "--wait=false"]);

    let conditions = eventually(WAIT, "the remaining-content conditions", || {
        let c = jsonpath(
            &server,
            &["get", "namespace", "held"],
            r#"{range .status.conditions[*]}{.type}={.status}:{.message}{"\n"}{end}"#,
        );
        c.contains("NamespaceFinalizersRemaining=True").then_some(c)
    });
    assert!(
        conditions.contains(
            "NamespaceContentRemaining=True:Some resources are remaining: configmaps. has 1 resource instances"
        ),
        "{conditions}"
    );
    assert!(
        conditions.contains(
            "NamespaceFinalizersRemaining=True:Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        ),
        "{conditions}"
    );
    assert!(
        conditions.contains(
            "NamespaceDeletionDiscoveryFailure=False:All resources successfully discovered"
        ),
        "{conditions}"
    );
    let again = server.kubectl(&["delete", "namespace", "held", "--wait=false"]);
    assert!(
        text(&again).contains("The system is ensuring all content is removed from this namespace"),
        "{}",
        text(&again)
    );

    ok(
        &server,
        &[
            "-n",
            "held",
            "patch",
            "configmap",
            "keep",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
    );
    eventually(WAIT, "the namespace removed", || {
        let out = server.kubectl(&["get", "namespace", "held"]);
        text(&out).contains("NotFound").then_some(())
    });
}

#[test]
fn pods_of_a_deleted_node_are_collected_after_the_quarantine() {
    let server = TestServer::start_with(&["--pod-gc-orphan-quarantine=2s"]);
    let _nodes = SimNodes::start(&server, 2);
    for (name, finalizers) in [("plain", "[]"), ("held", r#"["example.com/hold"]"#)] {
        let overrides = format!(
            r#"{{"metadata": {{"finalizers": {finalizers}}}, "spec": {{"nodeName": "sim-1"}}}}"#
        );
        ok(
            &server,
            &[
                "run",
                name,
                "--image=docker.io/skiff/pause:3.10",
                "--overrides",
                &overrides,
            ],
        );
    }
    eventually(WAIT, "the pods running on sim-1", || {
        let phases = jsonpath(&server, &["get", "pods"], "{.items[*].status.phase}");
        (phases == "Running Running").then_some(())
    });
    ok(&server, &["delete", "node", "sim-1"]);
    wait_for(&server, "the orphaned pod deleted", || {
        let out = server.kubectl(&["get", "pod", "plain"]);
        text(&out).contains("NotFound").then_some(())
    });
    // The pod a finalizer holds shows what PodGC did before deleting it.
    let held = jsonpath(
        &server,
        &["get", "pod", "held"],
        r#"{.status.phase} {.metadata.deletionTimestamp} {.status.conditions[?(@.type=="DisruptionTarget")].reason}"#,
    );
    let fields: Vec<&str> = held.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "{held}");
    assert_eq!(
        (fields[0], fields[2]),
        ("Failed", "DeletionByPodGC"),
        "{held}"
    );
    ok(
        &server,
        &[
            "patch",
            "pod",
            "held",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
    );
}

#[test]
fn terminated_pods_beyond_the_threshold_go_oldest_first() {
    let server = TestServer::start_with(&["--terminated-pod-gc-threshold=2"]);
    for name in ["first", "second", "third"] {
        ok(
            &server,
            &["run", name, "--image=docker.io/skiff/pause:3.10"],
        );
        // creationTimestamp has one-second resolution.
        std::thread::sleep(Duration::from_millis(1100));
    }
    for name in ["first", "second", "third"] {
        ok(
            &server,
            &[
                "patch",
                "pod",
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"phase":"Succeeded"}}"#,
            ],
        );
    }
    wait_for(&server, "the oldest terminated pod collected", || {
        let names = jsonpath(&server, &["get", "pods"], "{.items[*].metadata.name}");
        (names == "second third").then_some(())
    });
}

/// A kube client for the test server's admin kubeconfig.
async fn admin_client(server: &TestServer) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&server.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

fn holder(server: &TestServer, lease: &str) -> String {
    jsonpath(
        server,
        &["-n", "kube-system", "get", "lease", lease],
        "{.spec.holderIdentity}",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_candidates_leads_and_the_other_takes_over() {
    use skiff::leader_election::{Config, Elector};
    let server = TestServer::start();
    let client = admin_client(&server).await;
    let config = |id: &str| Config {
        // Generous against a loaded machine: a leader that cannot renew
        // within the deadline rightly steps down.
        lease_duration: Duration::from_secs(8),
        renew_deadline: Duration::from_secs(6),
        retry_period: Duration::from_millis(500),
        ..Config::new("lifecycle-test", id)
    };
    let mut a = Elector::new(client.clone(), config("a"));
    let mut b = Elector::new(client.clone(), config("b"));
    assert!(a.try_acquire_or_renew().await.expect("a tries"));
    assert!(!b.try_acquire_or_renew().await.expect("b tries"));
    assert!(a.try_acquire_or_renew().await.expect("a renews"));
    assert!(!b.try_acquire_or_renew().await.expect("b tries again"));
    assert!(a.is_leader() && !b.is_leader());
    assert_eq!(holder(&server, "lifecycle-test"), "a");

    // `a` keeps renewing in the background while `b` waits its turn.
    let renewing = tokio::spawn(async move {
        a.keep().await;
        a
    });
    let b_waits = tokio::time::timeout(Duration::from_secs(5), b.acquire()).await;
    assert!(b_waits.is_err(), "b took the lease while a renewed it");
    renewing.abort();
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(20), b.acquire())
        .await
        .expect("b takes over once a stops renewing");
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "b waited for a's lease to run out"
    );
    assert!(b.is_leader());
    assert_eq!(holder(&server, "lifecycle-test"), "b");
    let transitions = jsonpath(
        &server,
        &["-n", "kube-system", "get", "lease", "lifecycle-test"],
        "{.spec.leaseTransitions}",
    );
    assert_eq!(transitions, "1");
}

#[test]
fn the_server_runs_its_controllers_only_while_it_holds_the_lease() {
    let server = TestServer::start();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_default();
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        let spec = wait_for(&server, "the server's leases", || {
            let out = server.kubectl(&[
                "-n",
                "kube-system",
                "get",
                "lease",
                lease,
                "-o",
                "jsonpath={.spec.holderIdentity} {.spec.leaseDurationSeconds}",
            ]);
            out.status.success().then(|| text(&out))
        });
        let (id, seconds) = spec.trim().split_once(' ').expect("holder and duration");
        assert_eq!(seconds, "15", "{lease}");
        let uuid = id
            .strip_prefix(&format!("{hostname}_"))
            .unwrap_or_else(|| panic!("{lease} holder {id} is not <hostname>_<uuid>"));
        assert_eq!(uuid.len(), 36, "{id}");
    }

    // Someone else takes the controller manager's lease: the controllers stop.
    ok(
        &server,
        &[
            "-n",
            "kube-system",
            "patch",
            "lease",
            "kube-controller-manager",
            "--type=merge",
            "-p",
            r#"{"spec":{"holderIdentity":"intruder","leaseDurationSeconds":3600}}"#,
        ],
    );
    wait_for(&server, "the server stepping down", || {
        server.log().contains("leader election lost").then_some(())
    });
    ok(
        &server,
        &[
            "create",
            "deployment",
            "idle",
            "--image=docker.io/skiff/pause:3.10",
        ],
    );
    std::thread::sleep(Duration::from_secs(3));
    let rs = ok(&server, &["get", "rs", "-l", "app=idle", "-o", "name"]);
    assert!(
        rs.trim().is_empty(),
        "a controller ran without the lease: {rs}"
    );
    assert_eq!(holder(&server, "kube-controller-manager"), "intruder");

    // The lease is free again: the server takes it and the controllers run.
    ok(
        &server,
        &[
            "-n",
            "kube-system",
            "delete",
            "lease",
            "kube-controller-manager",
        ],
    );
    wait_for(&server, "the deployment's replicaset", || {
        let rs = ok(&server, &["get", "rs", "-l", "app=idle", "-o", "name"]);
        (!rs.trim().is_empty()).then_some(())
    });
    let before = holder(&server, "kube-controller-manager");
    assert!(before.starts_with(&format!("{hostname}_")), "{before}");

    // A server that stops releases its leases: the restarted one leads at
    // once instead of waiting 15 s for them to expire.
    let mut server = server;
    server.restart_with(&[]);
    let started = std::time::Instant::now();
    wait_for(&server, "the restarted server leading", || {
        let now = holder(&server, "kube-controller-manager");
        (now != before && now.starts_with(&format!("{hostname}_"))).then_some(())
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the lease was not released: took {:?}",
        started.elapsed()
    );
}

fn apply(server: &TestServer, name: &str, yaml: &str) {
    let file = server.dir.path().join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).expect("write the manifest");
    ok(server, &["apply", "-f", file.to_str().expect("utf-8 path")]);
}

fn volume(name: &str, size: &str, policy: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {name}\nspec:\n  capacity:\n    storage: {size}\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: {policy}\n  hostPath:\n    path: /tmp/{name}\n"
    )
}

fn claim(name: &str, size: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: {size}\n"
    )
}

#[test]
fn claims_bind_to_fitting_volumes_and_release_them() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 1);
    apply(&server, "pv-small", &volume("pv-small", "1Gi", "Retain"));
    apply(&server, "pv-big", &volume("pv-big", "10Gi", "Retain"));
    apply(&server, "pv-gone", &volume("pv-gone", "5Gi", "Delete"));
    wait_for(&server, "the volumes Available", || {
        let phases = jsonpath(&server, &["get", "pv"], "{.items[*].status.phase}");
        (phases == "Available Available Available").then_some(())
    });

    // A pod using the claim waits until the claim is bound.
    apply(&server, "data", &claim("data", "512Mi"));
    ok(
        &server,
        &[
            "run",
            "user",
            "--image=docker.io/skiff/pause:3.10",
            "--overrides",
            r#"{"spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
            "containers": [{"name": "user", "image": "docker.io/skiff/pause:3.10",
                            "volumeMounts": [{"name": "d", "mountPath": "/data"}]}]}}"#,
        ],
    );
    wait_for(&server, "the claim bound to the smallest volume", || {
        let got = jsonpath(
            &server,
            &["get", "pvc", "data"],
            "{.status.phase} {.spec.volumeName} {.status.capacity.storage}",
        );
        (got == "Bound pv-small 1Gi").then_some(())
    });
    let table = ok(&server, &["get", "pv,pvc"]);
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("persistentvolume/pv-small").contains("Bound")
            && line("persistentvolume/pv-small").contains("default/data"),
        "{table}"
    );
    assert!(
        line("persistentvolumeclaim/data").contains("Bound")
            && line("persistentvolumeclaim/data").contains("pv-small"),
        "{table}"
    );
    let annotations = jsonpath(&server, &["get", "pvc", "data"], "{.metadata.annotations}");
    assert!(
        annotations.contains(r#""pv.kubernetes.io/bind-completed":"yes""#),
        "{annotations}"
    );
    assert!(
        annotations.contains(r#""pv.kubernetes.io/bound-by-controller":"yes""#),
        "{annotations}"
    );
    let pv_annotations = jsonpath(
        &server,
        &["get", "pv", "pv-small"],
        "{.metadata.annotations}",
    );
    assert!(
        pv_annotations.contains(r#""pv.kubernetes.io/bound-by-controller":"yes""#),
        "{pv_annotations}"
    );
    wait_for(&server, "the pod scheduled once its claim is bound", || {
        let phase = jsonpath(&server, &["get", "pod", "user"], "{.status.phase}");
        (phase == "Running").then_some(())
    });

    // No volume fits a 100Gi claim: it stays Pending, with upstream's event.
    apply(&server, "huge", &claim("huge", "100Gi"));
    wait_for(&server, "the FailedBinding event", || {
        let events = ok(
            &server,
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=huge",
            ],
        );
        events
            .contains("no persistent volumes available for this claim and no storage class is set")
            .then_some(events)
    });
    assert_eq!(
        jsonpath(&server, &["get", "pvc", "huge"], "{.status.phase}"),
        "Pending"
    );
    ok(
        &server,
        &[
            "run",
            "waiting",
            "--image=docker.io/skiff/pause:3.10",
            "--overrides",
            r#"{"spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "huge"}}]}}"#,
        ],
    );
    wait_for(&server, "the scheduler refusing the pod", || {
        let events = ok(
            &server,
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=waiting",
            ],
        );
        events
            .contains("pod has unbound immediate PersistentVolumeClaims")
            .then_some(())
    });

    // Deleting the claim releases a Retain volume.
    ok(
        &server,
        &["delete", "pod", "user", "--grace-period=0", "--force"],
    );
    ok(&server, &["delete", "pvc", "data"]);
    wait_for(&server, "the Retain volume Released", || {
        let phase = jsonpath(&server, &["get", "pv", "pv-small"], "{.status.phase}");
        (phase == "Released").then_some(())
    });

    // A claim pre-bound to a Delete volume binds to it; deleting the claim deletes the volume.
    apply(
        &server,
        "pinned",
        &format!("{}  volumeName: pv-gone\n", claim("pinned", "1Gi")),
    );
    wait_for(&server, "the pre-bound claim bound", || {
        let got = jsonpath(
            &server,
            &["get", "pvc", "pinned"],
            "{.status.phase} {.spec.volumeName}",
        );
        (got == "Bound pv-gone").then_some(())
    });
    let annotations = jsonpath(
        &server,
        &["get", "pvc", "pinned"],
        "{.metadata.annotations}",
    );
    assert!(
        !annotations.contains("bound-by-controller"),
        "{annotations}"
    );
    ok(&server, &["delete", "pvc", "pinned"]);
    wait_for(&server, "the Delete volume deleted", || {
        let out = server.kubectl(&["get", "pv", "pv-gone"]);
        text(&out).contains("NotFound").then_some(())
    });
}
