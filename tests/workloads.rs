//! StatefulSets and DaemonSets end to end: `skiff server` with `skiff
//! sim-nodes`, driven by the stock kubectl (apply, scale, set image,
//! rollout status/history/undo, taint).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{SimNodes, TestServer, eventually, ok};

const DEADLINE: Duration = Duration::from_secs(60);

const STATEFULSET: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  clusterIP: None
  selector:
    app: web
  ports:
  - port: 80
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: busybox:1
        volumeMounts:
        - name: www
          mountPath: /data
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 1Gi
"#;

const DAEMONSET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels:
      app: agent
  template:
    metadata:
      labels:
        app: agent
    spec:
      containers:
      - name: app
        image: busybox:1
"#;

fn apply(server: &TestServer, name: &str, manifest: &str) {
    let path = server.dir.path().join(name);
    std::fs::write(&path, manifest).expect("write the manifest");
    ok(server, &["apply", "-f", &path.to_string_lossy()]);
}

/// `n` Available 1Gi ReadWriteOnce hostPath PersistentVolumes.
fn volumes(server: &TestServer, n: usize) {
    let mut manifest = String::new();
    for i in 0..n {
        manifest.push_str(&format!(
            "---\napiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv-{i}\nspec:\n  capacity:\n    storage: 1Gi\n  accessModes: [ReadWriteOnce]\n  hostPath:\n    path: /tmp/skiff-test-pv-{i}\n"
        ));
    }
    apply(server, "volumes.yaml", &manifest);
}

/// name → (node, phase, image, revision label) of the pods matching `selector`.
fn pods(server: &TestServer, selector: &str) -> BTreeMap<String, [String; 4]> {
    let out = ok(
        server,
        &[
            "get",
            "pods",
            "-l",
            selector,
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name}|{.spec.nodeName}|{.status.phase}|{.spec.containers[0].image}|{.metadata.labels.controller-revision-hash}{"\n"}{end}"#,
        ],
    );
    out.lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split('|').collect();
            let [name, node, phase, image, revision] = parts[..] else {
                return None;
            };
            Some((
                name.to_string(),
                [node, phase, image, revision].map(String::from),
            ))
        })
        .collect()
}

fn jsonpath(server: &TestServer, args: &[&str], path: &str) -> String {
    let mut all = args.to_vec();
    let template = format!("jsonpath={path}");
    all.extend(["-o", &template]);
    ok(server, &all)
}

/// A `kubectl get pods -w` in the background, writing events to a file.
struct PodWatch {
    child: Child,
    out: std::path::PathBuf,
}

impl PodWatch {
    fn start(server: &TestServer, selector: &str, file: &str) -> Self {
        let out = server.dir.path().join(file);
        let sink = std::fs::File::create(&out).expect("create the watch log");
        let errors =
            std::fs::File::create(out.with_extension("err")).expect("create the error log");
        // With --output-watch-events the printed object is the watch event.
        let columns = r#"jsonpath={.type}|{.object.metadata.name}|{.object.status.conditions[?(@.type=="Ready")].status}|{.object.metadata.deletionTimestamp}{"\n"}"#;
        let child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&server.kubeconfig)
            .args([
                "get",
                "pods",
                "-l",
                selector,
                "-w",
                "--output-watch-events",
                "-o",
                columns,
            ])
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(sink)
            .stderr(errors)
            .spawn()
            .expect("start kubectl get -w");
        // Let the watch start before anything happens.
        std::thread::sleep(Duration::from_secs(2));
        PodWatch { child, out }
    }

    /// The (event, name, ready, deleting) lines seen so far.
    fn events(&self) -> Vec<[String; 4]> {
        let events = read_events(&self.out);
        if events.is_empty() {
            let raw = std::fs::read_to_string(&self.out).unwrap_or_default();
            let errors =
                std::fs::read_to_string(self.out.with_extension("err")).unwrap_or_default();
            eprintln!("watch printed nothing usable:\n{raw}\n{errors}");
        }
        events
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        common::kill(&mut self.child);
    }
}

fn read_events(path: &Path) -> Vec<[String; 4]> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let parts: Vec<&str> = l.split('|').collect();
            let [event, name, ready, deleting] = parts[..] else {
                return None;
            };
            Some([event, name, ready, deleting].map(String::from))
        })
        .collect()
}

/// Index of the first event for which `f` holds.
fn first(events: &[[String; 4]], f: impl Fn(&[String; 4]) -> bool) -> Option<usize> {
    events.iter().position(f)
}

#[test]
fn a_statefulset_starts_in_order_keeps_claims_rolls_from_the_top_and_undoes() {
    let server = TestServer::start();
    apply(&server, "web.yaml", STATEFULSET);

    // No node yet: web-0 is created and stays Pending; web-1 waits for it.
    eventually(DEADLINE, "web-0 created", || {
        pods(&server, "app=web").contains_key("web-0").then_some(())
    });
    for _ in 0..15 {
        let now = pods(&server, "app=web");
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            ["web-0"],
            "web-1 must wait until web-0 is Running and Ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let claim = jsonpath(
        &server,
        &["get", "pvc", "www-web-0"],
        "{.status.phase} {.metadata.labels.app}",
    );
    assert_eq!(
        claim, "Pending web",
        "the claim exists before the pod runs; nothing binds it"
    );
    let identity = jsonpath(
        &server,
        &["get", "pod", "web-0"],
        r#"{.spec.hostname} {.spec.subdomain} {.metadata.labels.statefulset\.kubernetes\.io/pod-name} {.metadata.labels.apps\.kubernetes\.io/pod-index} {.spec.volumes[?(@.name=="www")].persistentVolumeClaim.claimName} {.metadata.ownerReferences[0].kind}"#,
    );
    assert_eq!(identity, "web-0 nginx web-0 0 www-web-0 StatefulSet");

    // Pre-provisioned volumes for the claims (the scheduler holds pods
    // whose claims are unbound, as upstream's VolumeBinding does).
    volumes(&server, 4);

    // With a node, the pods come up one after another.
    let watch = PodWatch::start(&server, "app=web", "create.watch");
    let _nodes = SimNodes::start(&server, 1);
    eventually(DEADLINE, "three running pods", || {
        let p = pods(&server, "app=web");
        (p.len() == 3 && p.values().all(|v| v[1] == "Running")).then_some(())
    });
    let events = watch.events();
    for (before, after) in [("web-0", "web-1"), ("web-1", "web-2")] {
        let ready = first(&events, |e| e[1] == before && e[2] == "True");
        let created = first(&events, |e| e[0] == "ADDED" && e[1] == after);
        assert!(
            ready.is_some() && created.is_some() && ready < created,
            "{after} must be created after {before} is Ready: {events:?}"
        );
    }
    drop(watch);
    let claims = ok(&server, &["get", "pvc", "-o", "name"]);
    for n in 0..3 {
        assert!(
            claims.contains(&format!("persistentvolumeclaim/www-web-{n}")),
            "{claims}"
        );
    }
    // The partition defaults to 0, so kubectl reports a partitioned roll out.
    let out = ok(
        &server,
        &["rollout", "status", "statefulset/web", "--timeout=60s"],
    );
    assert!(
        out.contains("partitioned roll out complete: 3 new pods have been updated"),
        "{out}"
    );
    let status = jsonpath(
        &server,
        &["get", "sts", "web"],
        "{.status.replicas} {.status.readyReplicas} {.status.currentReplicas} {.status.updatedReplicas} {.status.availableReplicas}",
    );
    assert_eq!(status, "3 3 3 3 3");
    let first_revision = jsonpath(&server, &["get", "sts", "web"], "{.status.currentRevision}");
    let revision_hash = jsonpath(
        &server,
        &["get", "controllerrevision", &first_revision],
        r#"{.revision} {.metadata.labels.controller\.kubernetes\.io/hash}"#,
    );
    assert_eq!(
        revision_hash,
        format!("1 {}", first_revision.trim_start_matches("web-"))
    );

    // An image change with partition 1 rolls web-2, then web-1, not web-0.
    ok(
        &server,
        &[
            "patch",
            "sts",
            "web",
            "-p",
            r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":1}}}}"#,
        ],
    );
    let watch = PodWatch::start(&server, "app=web", "update.watch");
    ok(
        &server,
        &["set", "image", "statefulset/web", "app=busybox:2"],
    );
    eventually(DEADLINE, "web-1 and web-2 updated", || {
        let p = pods(&server, "app=web");
        (p.len() == 3
            && p.values().all(|v| v[1] == "Running")
            && p["web-1"][2] == "busybox:2"
            && p["web-2"][2] == "busybox:2")
            .then_some(())
    });
    let out = ok(
        &server,
        &["rollout", "status", "statefulset/web", "--timeout=60s"],
    );
    assert!(
        out.contains("partitioned roll out complete: 2 new pods have been updated"),
        "{out}"
    );
    assert_eq!(
        pods(&server, "app=web")["web-0"][2],
        "busybox:1",
        "below the partition"
    );
    let events = watch.events();
    let gone = |n: &str| first(&events, |e| e[0] == "DELETED" && e[1] == n);
    assert!(
        gone("web-2").is_some() && gone("web-2") < gone("web-1"),
        "{events:?}"
    );
    assert_eq!(gone("web-0"), None, "{events:?}");
    drop(watch);
    let revisions = jsonpath(
        &server,
        &["get", "sts", "web"],
        "{.status.currentRevision} {.status.updateRevision}",
    );
    let (current, update) = revisions.split_once(' ').unwrap_or_default();
    assert_eq!(current, first_revision);
    assert_ne!(update, first_revision);

    ok(
        &server,
        &[
            "patch",
            "sts",
            "web",
            "-p",
            r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
        ],
    );
    let out = ok(
        &server,
        &["rollout", "status", "statefulset/web", "--timeout=60s"],
    );
    assert!(
        out.contains("partitioned roll out complete: 3 new pods have been updated"),
        "{out}"
    );
    eventually(DEADLINE, "the update revision becomes current", || {
        let r = jsonpath(&server, &["get", "sts", "web"], "{.status.currentRevision}");
        (r == update).then_some(())
    });
    assert!(
        pods(&server, "app=web")
            .values()
            .all(|v| v[2] == "busybox:2" && v[3] == update)
    );

    // History and undo: back to busybox:1, its revision renumbered to 3.
    let history = ok(&server, &["rollout", "history", "statefulset/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    let template = ok(
        &server,
        &["rollout", "history", "statefulset/web", "--revision=1"],
    );
    assert!(template.contains("busybox:1"), "{template}");
    let out = ok(&server, &["rollout", "undo", "statefulset/web"]);
    assert!(out.contains("rolled back"), "{out}");
    eventually(DEADLINE, "every pod back on busybox:1", || {
        let p = pods(&server, "app=web");
        (p.len() == 3
            && p.values()
                .all(|v| v[1] == "Running" && v[2] == "busybox:1" && v[3] == first_revision))
        .then_some(())
    });
    ok(
        &server,
        &["rollout", "status", "statefulset/web", "--timeout=60s"],
    );
    let number = jsonpath(
        &server,
        &["get", "controllerrevision", &first_revision],
        "{.revision}",
    );
    assert_eq!(number, "3");

    // Scale down: web-2 goes first, then web-1; claims are retained.
    let watch = PodWatch::start(&server, "app=web", "scale.watch");
    ok(&server, &["scale", "statefulset/web", "--replicas=1"]);
    eventually(DEADLINE, "one pod left", || {
        (pods(&server, "app=web").keys().collect::<Vec<_>>() == ["web-0"]).then_some(())
    });
    let events = watch.events();
    let gone = |n: &str| first(&events, |e| e[0] == "DELETED" && e[1] == n);
    assert!(
        gone("web-2").is_some() && gone("web-2") < gone("web-1"),
        "{events:?}"
    );
    drop(watch);
    let claims = ok(&server, &["get", "pvc", "-o", "name"]);
    assert!(
        claims.contains("www-web-2"),
        "Retain keeps claims: {claims}"
    );

    // whenScaled: Delete lets the claims go with their pods.
    ok(
        &server,
        &[
            "patch",
            "sts",
            "web",
            "-p",
            r#"{"spec":{"persistentVolumeClaimRetentionPolicy":{"whenScaled":"Delete"}}}"#,
        ],
    );
    ok(&server, &["scale", "statefulset/web", "--replicas=3"]);
    ok(
        &server,
        &["rollout", "status", "statefulset/web", "--timeout=60s"],
    );
    ok(&server, &["scale", "statefulset/web", "--replicas=1"]);
    eventually(DEADLINE, "the scaled-down claims deleted", || {
        let claims = ok(&server, &["get", "pvc", "-o", "name"]);
        (claims.trim() == "persistentvolumeclaim/www-web-0").then_some(())
    });

    // An orphan that looks like a member is adopted, and being past the
    // replicas, removed.
    ok(
        &server,
        &["run", "web-3", "--image=busybox:1", "--labels=app=web"],
    );
    eventually(DEADLINE, "the orphan web-3 adopted and removed", || {
        let p = pods(&server, "app=web");
        (p.keys().collect::<Vec<_>>() == ["web-0"]).then_some(())
    });

    // A deleted pod comes back with the same name and claim.
    let uid = jsonpath(&server, &["get", "pod", "web-0"], "{.metadata.uid}");
    ok(&server, &["delete", "pod", "web-0", "--wait=false"]);
    eventually(DEADLINE, "web-0 recreated", || {
        let now = jsonpath(
            &server,
            &["get", "pod", "web-0"],
            "{.metadata.uid} {.status.phase}",
        );
        (!now.starts_with(&uid) && now.ends_with("Running")).then_some(())
    });
}

#[test]
fn a_daemonset_covers_eligible_nodes_follows_new_ones_and_rolls() {
    let server = TestServer::start();
    let _nodes = SimNodes::start(&server, 3);
    ok(
        &server,
        &["taint", "node", "sim-2", "dedicated=db:NoSchedule"],
    );
    apply(&server, "agent.yaml", DAEMONSET);

    let running = |n: usize| {
        eventually(DEADLINE, &format!("{n} running daemon pods"), || {
            let p = pods(&server, "app=agent");
            (p.len() == n && p.values().all(|v| v[1] == "Running")).then_some(p)
        })
    };
    let p = running(2);
    let nodes: Vec<&str> = p.values().map(|v| v[0].as_str()).collect();
    assert!(
        nodes.contains(&"sim-0") && nodes.contains(&"sim-1"),
        "{p:?}"
    );
    let pod = p.keys().next().cloned().unwrap_or_default();
    let pinned = jsonpath(
        &server,
        &["get", "pod", &pod],
        "{.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key} {.spec.tolerations[*].key}",
    );
    assert!(
        pinned.starts_with("metadata.name node.kubernetes.io/not-ready"),
        "{pinned}"
    );
    assert!(
        pinned.contains("node.kubernetes.io/unschedulable"),
        "{pinned}"
    );
    let out = ok(
        &server,
        &["rollout", "status", "daemonset/agent", "--timeout=60s"],
    );
    assert!(
        out.contains("daemon set \"agent\" successfully rolled out"),
        "{out}"
    );
    let status = jsonpath(
        &server,
        &["get", "ds", "agent"],
        "{.status.desiredNumberScheduled} {.status.currentNumberScheduled} {.status.numberReady} {.status.numberAvailable} {.status.updatedNumberScheduled} {.status.numberMisscheduled}",
    );
    assert_eq!(status, "2 2 2 2 2 0");

    // A new node gets a pod.
    let _more = SimNodes::start_named(&server, "extra-", 1);
    let p = running(3);
    assert!(p.values().any(|v| v[0] == "extra-0"), "{p:?}");

    // A rolling image update replaces every pod.
    let before: Vec<String> = p.keys().cloned().collect();
    ok(
        &server,
        &["set", "image", "daemonset/agent", "app=busybox:2"],
    );
    let out = ok(
        &server,
        &["rollout", "status", "daemonset/agent", "--timeout=60s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let p = running(3);
    assert!(p.values().all(|v| v[2] == "busybox:2"), "{p:?}");
    assert!(p.keys().all(|k| !before.contains(k)), "new pods: {p:?}");
    let hashes: Vec<&str> = p.values().map(|v| v[3].as_str()).collect();
    let revision = ok(
        &server,
        &["get", "controllerrevision", "-l", "app=agent", "-o", "name"],
    );
    assert_eq!(revision.lines().count(), 2, "{revision}");
    assert!(
        revision.contains(&format!("agent-{}", hashes[0])),
        "{revision}"
    );
    let history = ok(&server, &["rollout", "history", "daemonset/agent"]);
    assert!(history.contains('2'), "{history}");

    let template = ok(
        &server,
        &["rollout", "history", "daemonset/agent", "--revision=1"],
    );
    assert!(template.contains("busybox:1"), "{template}");

    // Undo goes back to the first template on every node.
    let out = ok(&server, &["rollout", "undo", "daemonset/agent"]);
    assert!(out.contains("rolled back"), "{out}");
    let out = ok(
        &server,
        &["rollout", "status", "daemonset/agent", "--timeout=60s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let p = running(3);
    assert!(p.values().all(|v| v[2] == "busybox:1"), "{p:?}");

    // The pod of a deleted node goes with it.
    ok(&server, &["delete", "node", "extra-0"]);
    eventually(DEADLINE, "no daemon pod for extra-0", || {
        let p = pods(&server, "app=agent");
        (p.len() == 2 && p.values().all(|v| v[0] != "extra-0")).then_some(())
    });

    // A NoExecute taint the pod does not tolerate takes the pod away.
    ok(&server, &["taint", "node", "sim-0", "evict=now:NoExecute"]);
    eventually(DEADLINE, "no daemon pod on sim-0", || {
        let p = pods(&server, "app=agent");
        (p.len() == 1 && p.values().all(|v| v[0] == "sim-1")).then_some(())
    });
    eventually(DEADLINE, "one node desired", || {
        let status = jsonpath(
            &server,
            &["get", "ds", "agent"],
            "{.status.desiredNumberScheduled} {.status.numberMisscheduled}",
        );
        (status == "1 0").then_some(())
    });
    let table = ok(&server, &["get", "ds", "agent"]);
    assert!(table.contains("agent"), "{table}");
}

const PARALLEL: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 3
  podManagementPolicy: Parallel
  updateStrategy:
    type: OnDelete
  persistentVolumeClaimRetentionPolicy:
    whenDeleted: Delete
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
    spec:
      containers:
      - name: app
        image: busybox:1
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 1Gi
"#;

#[test]
fn a_parallel_on_delete_statefulset_creates_at_once_waits_for_deletes_and_takes_its_claims() {
    let server = TestServer::start();
    apply(&server, "db.yaml", PARALLEL);

    // No node: nothing is ever Ready, yet Parallel creates every pod.
    eventually(DEADLINE, "three pods created at once", || {
        let p = pods(&server, "app=db");
        (p.keys().collect::<Vec<_>>() == ["db-0", "db-1", "db-2"]).then_some(())
    });
    eventually(DEADLINE, "three claims", || {
        let claims = ok(&server, &["get", "pvc", "-o", "name"]);
        (claims.lines().count() == 3).then_some(())
    });

    // OnDelete: a new template waits until a pod is deleted.
    ok(
        &server,
        &["set", "image", "statefulset/db", "app=busybox:2"],
    );
    eventually(DEADLINE, "a new update revision", || {
        let r = jsonpath(
            &server,
            &["get", "sts", "db"],
            "{.status.currentRevision} {.status.updateRevision}",
        );
        let (current, update) = r.split_once(' ')?;
        (!update.is_empty() && current != update).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        pods(&server, "app=db")
            .values()
            .all(|v| v[2] == "busybox:1"),
        "OnDelete leaves running pods alone"
    );
    ok(&server, &["delete", "pod", "db-1", "--wait=false"]);
    eventually(DEADLINE, "db-1 recreated from the new template", || {
        let p = pods(&server, "app=db");
        (p.len() == 3
            && p["db-1"][2] == "busybox:2"
            && p["db-0"][2] == "busybox:1"
            && p["db-2"][2] == "busybox:1")
            .then_some(())
    });
    eventually(DEADLINE, "one updated replica", || {
        let updated = jsonpath(&server, &["get", "sts", "db"], "{.status.updatedReplicas}");
        (updated == "1").then_some(())
    });

    // whenDeleted: Delete: the claims go with the set.
    ok(&server, &["delete", "statefulset", "db"]);
    eventually(DEADLINE, "pods and claims gone with the set", || {
        let claims = ok(&server, &["get", "pvc", "-o", "name"]);
        (claims.trim().is_empty() && pods(&server, "app=db").is_empty()).then_some(())
    });
}
