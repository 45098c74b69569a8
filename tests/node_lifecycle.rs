//! The pod lifecycle on the server's own node, end to end with real
//! containerd, runc and CNI plugins (root only), driven by the stock kubectl:
//! restarts with CrashLoopBackOff, liveness/readiness/startup probes, init
//! containers, env from ConfigMaps/Secrets/fields, configMap volume updates,
//! secret, downwardAPI and persistentVolumeClaim volumes,
//! tmpfs emptyDirs, graceful termination with preStop, image-pull back-off,
//! hostNetwork, hostPort and a sandbox that dies. Containers' output is read from their CRI log
//! files and a hostPath under the test's temp dir. The harness
//! (`tests/common/node.rs`) removes everything the test put on the host.

mod common;

use std::time::{Duration, Instant};

use common::node::{BUSYBOX, Node};

const MINUTE: Duration = Duration::from_secs(60);

fn pod(name: &str, node: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  nodeName: {node}\n{spec}"
    )
}

fn container(name: &str, script: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    image: {BUSYBOX}\n    imagePullPolicy: Never\n    command: [sh, -c, {script:?}]\n{extra}"
    )
}

#[test]
fn pods_restart_probe_initialise_configure_and_stop_gracefully() {
    let node = Node::start();
    node.wait_for("the node to be Ready", Duration::from_secs(90), || {
        node.kubectl_ok(&[
            "get",
            "node",
            &node.name,
            r#"-o=jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
        ])
        .filter(|s| s == "True")
    });
    let out_dir = node.dir.path().join("out");
    let n = node.name.as_str();

    node.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {colour: blue, greeting: hello}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: default}\nstringData: {password: hunter2}\n",
    );
    let pods = [
        pod(
            "crash",
            n,
            &format!(
                "  containers:\n{}",
                container(
                    "main",
                    "echo crashing; echo bye > /dev/termination-log; exit 1",
                    "",
                )
            ),
        ),
        pod(
            "liveness",
            n,
            &format!(
                "  terminationGracePeriodSeconds: 2\n  containers:\n{}",
                container(
                    "main",
                    "touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 3600",
                    "    livenessProbe:\n      exec: {command: [cat, /tmp/healthy]}\n      periodSeconds: 1\n      failureThreshold: 2\n",
                )
            ),
        ),
        pod(
            "ready",
            n,
            &format!(
                "  containers:\n{}",
                container(
                    "main",
                    "mkdir -p /www; httpd -p 8080 -h /www; sleep 15; echo ok > /www/ready; sleep 3600",
                    "    ports: [{name: http, containerPort: 8080}]\n    readinessProbe:\n      httpGet: {path: /ready, port: http, httpHeaders: [{name: X-Probe, value: skiff}]}\n      periodSeconds: 1\n    livenessProbe:\n      tcpSocket: {port: 8080}\n      initialDelaySeconds: 2\n      periodSeconds: 2\n    startupProbe:\n      exec: {command: ['true']}\n      periodSeconds: 1\n",
                )
            ),
        ),
        pod(
            "init",
            n,
            &format!(
                "  volumes: [{{name: work, emptyDir: {{medium: Memory}}}}]\n  initContainers:\n{}  containers:\n{}",
                container(
                    "setup",
                    "echo from-init > /work/msg; sleep 2",
                    "    volumeMounts: [{name: work, mountPath: /work}]\n",
                ),
                container(
                    "main",
                    "cat /work/msg; sleep 3600",
                    "    volumeMounts: [{name: work, mountPath: /work}]\n",
                )
            ),
        ),
        pod(
            "env",
            n,
            &format!(
                "  securityContext: {{runAsUser: 1000, runAsGroup: 3000}}\n  containers:\n{}",
                container(
                    "main",
                    "echo COLOUR=$COLOUR PASS=$PASS NAME=$POD_NAME NODE=$NODE IP=$POD_IP CFG=$CFG_greeting EXPANDED=$(POD_NAME) ID=$(id -u):$(id -g) MEM=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes) OPT=[$OPT]; sleep 3600",
                    "    resources: {limits: {memory: 64Mi}}\n    envFrom: [{prefix: CFG_, configMapRef: {name: settings}}]\n    env:\n    - {name: COLOUR, valueFrom: {configMapKeyRef: {name: settings, key: colour}}}\n    - {name: PASS, valueFrom: {secretKeyRef: {name: creds, key: password}}}\n    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}\n    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n    - {name: OPT, valueFrom: {configMapKeyRef: {name: settings, key: absent, optional: true}}}\n",
                )
            ),
        ),
        pod(
            "cfgwatch",
            n,
            &format!(
                "  volumes: [{{name: cfg, configMap: {{name: settings}}}}]\n  containers:\n{}",
                container(
                    "main",
                    "while true; do echo greeting=$(cat /etc/cfg/greeting); sleep 1; done",
                    "    volumeMounts: [{name: cfg, mountPath: /etc/cfg}]\n",
                )
            ),
        ),
        pod(
            "graceful",
            n,
            &format!(
                "  terminationGracePeriodSeconds: 6\n  volumes: [{{name: out, hostPath: {{path: {}, type: DirectoryOrCreate}}}}]\n  containers:\n{}{}",
                out_dir.display(),
                container(
                    "main",
                    "trap 'echo term >> /out/order; exit 0' TERM; echo started >> /out/order; while true; do sleep 1; done",
                    "    volumeMounts: [{name: out, mountPath: /out}]\n    lifecycle:\n      preStop:\n        exec: {command: [sh, -c, 'echo prestop >> /out/order']}\n",
                ),
                container(
                    "stubborn",
                    "trap 'echo ignored >> /out/stubborn' TERM; echo started >> /out/stubborn; while true; do sleep 1; done",
                    "    volumeMounts: [{name: out, mountPath: /out}]\n",
                )
            ),
        ),
        pod(
            "vols",
            n,
            &format!(
                "  volumes:\n  - {{name: data, persistentVolumeClaim: {{claimName: claim1}}}}\n  - {{name: sec, secret: {{secretName: creds, items: [{{key: password, path: pw/file, mode: 256}}]}}}}\n  - {{name: info, downwardAPI: {{items: [{{path: name, fieldRef: {{fieldPath: metadata.name}}}}]}}}}\n  containers:\n{}",
                container(
                    "main",
                    "echo $(cat /sec/pw/file) $(stat -L -c %a /sec/pw/file) $(cat /info/name) > /data/out; sleep 3600",
                    "    volumeMounts: [{name: data, mountPath: /data}, {name: sec, mountPath: /sec}, {name: info, mountPath: /info}]\n",
                )
            ),
        ),
        pod(
            "nopull",
            n,
            "  containers:\n  - name: main\n    image: 127.0.0.1:1/skiff/absent:1\n    imagePullPolicy: IfNotPresent\n",
        ),
        pod(
            "hostnet",
            n,
            &format!(
                "  hostNetwork: true\n  containers:\n{}",
                container("main", "sleep 3600", "")
            ),
        ),
        pod(
            "hostport",
            n,
            &format!(
                "  containers:\n{}",
                container(
                    "main",
                    "sleep 3600",
                    "    ports: [{containerPort: 8080, hostPort: 18080}]\n",
                )
            ),
        ),
    ];
    // A claim bound up front to a hostPath volume (no binder needed).
    let pv_dir = node.dir.path().join("pv");
    let pv = format!("pv-{n}");
    node.apply(&format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: {pv}}}\nspec: {{capacity: {{storage: 1Gi}}, accessModes: [ReadWriteOnce], hostPath: {{path: {}, type: DirectoryOrCreate}}}}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: claim1, namespace: default}}\nspec: {{accessModes: [ReadWriteOnce], storageClassName: \"\", volumeName: {pv}, resources: {{requests: {{storage: 1Gi}}}}}}\n",
        pv_dir.display()
    ));
    node.apply(&pods.join("\n---\n"));

    // Readiness: running but not ready until /ready answers 200.
    node.wait_pod_field("ready", "{.status.phase}", MINUTE, |p| p == "Running");
    let ready = r#"{.status.conditions[?(@.type=="Ready")].status}"#;
    assert_eq!(node.pod_field("ready", ready).as_deref(), Some("False"));
    // The startup probe passes first; readiness still waits for /ready.
    node.wait_pod_field(
        "ready",
        "{.status.containerStatuses[0].started}",
        Duration::from_secs(10),
        |s| s == "true",
    );
    assert_eq!(node.pod_field("ready", ready).as_deref(), Some("False"));
    node.wait_pod_field("ready", ready, MINUTE, |s| s == "True");
    assert_eq!(
        node.pod_field("ready", "{.status.containerStatuses[0].ready}")
            .as_deref(),
        Some("true")
    );

    // A crashing container backs off and keeps being restarted.
    let waiting = "{.status.containerStatuses[0].state.waiting.reason}";
    node.wait_pod_field("crash", waiting, MINUTE, |r| r == "CrashLoopBackOff");
    let message = node
        .pod_field(
            "crash",
            "{.status.containerStatuses[0].state.waiting.message}",
        )
        .unwrap_or_default();
    let uid = node
        .pod_field("crash", "{.metadata.uid}")
        .unwrap_or_default();
    assert!(
        message.starts_with("back-off ")
            && message.ends_with(&format!(
                "restarting failed container=main pod=crash_default({uid})"
            )),
        "{message}"
    );
    let last = "{.status.containerStatuses[0].lastState.terminated.exitCode} {.status.containerStatuses[0].lastState.terminated.reason}";
    assert_eq!(node.pod_field("crash", last).as_deref(), Some("1 Error"));
    assert_eq!(
        node.pod_field(
            "crash",
            "{.status.containerStatuses[0].lastState.terminated.message}"
        )
        .as_deref(),
        Some("bye"),
        "the termination message file"
    );
    let restarts = "{.status.containerStatuses[0].restartCount}";
    node.wait_pod_field("crash", restarts, Duration::from_secs(90), |c| {
        c.parse::<u32>().is_ok_and(|c| c >= 3)
    });
    // Repeats of one event are counted on one Event, as upstream's
    // recorder does ("x4 over 1m" in kubectl describe).
    let counts = node
        .kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=crash,reason=Started",
            "-o=jsonpath={.items[*].count}",
        ])
        .unwrap_or_default();
    let counts: Vec<u32> = counts
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect();
    assert!(counts.len() == 1 && counts[0] >= 3, "{counts:?}");
    assert!(node.container_log("crash", "main", 0).contains("crashing"));
    assert!(node.container_log("crash", "main", 2).contains("crashing"));
    node.wait_for(
        "dead containers to be collected",
        Duration::from_secs(10),
        || {
            let listed = node.ctr(&[
                "containers",
                "ls",
                "-q",
                r#"labels."io.kubernetes.pod.name"==crash"#,
            ]);
            // The sandbox, the newest instance and the one before it.
            (listed.lines().count() <= 3).then_some(())
        },
    );
    assert_eq!(
        node.pod_field("crash", "{.status.phase}").as_deref(),
        Some("Running")
    );

    // A failing liveness probe gets the container killed and restarted.
    node.wait_pod_field("liveness", restarts, MINUTE, |c| c != "0");
    let killing = node.events("liveness", "Killing");
    assert!(
        killing
            .iter()
            .any(|m| m == "Container main failed liveness probe, will be restarted"),
        "{killing:?}"
    );
    let unhealthy = node.events("liveness", "Unhealthy");
    assert!(
        unhealthy
            .iter()
            .any(|m| m.starts_with("Liveness probe failed: ")),
        "{unhealthy:?}"
    );
    assert_eq!(
        node.pod_field("ready", restarts).as_deref(),
        Some("0"),
        "a passing tcpSocket liveness probe leaves the container alone"
    );

    // The init container runs first; the app sees its output in the
    // memory-backed emptyDir.
    node.wait_pod_field("init", "{.status.phase}", MINUTE, |p| p == "Running");
    assert_eq!(
        node.pod_field(
            "init",
            "{.status.initContainerStatuses[0].state.terminated.reason}"
        )
        .as_deref(),
        Some("Completed")
    );
    node.wait_for("the app's output", Duration::from_secs(20), || {
        node.container_log("init", "main", 0)
            .contains("from-init")
            .then_some(())
    });
    let init_uid = node
        .pod_field("init", "{.metadata.uid}")
        .unwrap_or_default();
    let tmpfs = |uid: &str| {
        std::fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("tmpfs ") && l.contains(uid) && l.contains("empty-dir/work"))
    };
    assert!(tmpfs(&init_uid), "the emptyDir is a tmpfs");

    // Env from a ConfigMap, a Secret and the pod's fields, $(VAR) expanded,
    // run as the pod's user with its memory limit.
    node.wait_pod_field("env", "{.status.phase}", MINUTE, |p| p == "Running");
    let pod_ip = node.pod_field("env", "{.status.podIP}").unwrap_or_default();
    let line = node.wait_for("the env pod's output", Duration::from_secs(20), || {
        Some(node.container_log("env", "main", 0)).filter(|l| l.contains("COLOUR="))
    });
    assert_eq!(
        line.trim(),
        format!(
            "COLOUR=blue PASS=hunter2 NAME=env NODE={n} IP={pod_ip} CFG=hello EXPANDED=env ID=1000:3000 MEM=67108864 OPT=[]"
        )
    );

    // A ConfigMap change reaches the running pod's volume.
    node.wait_for("the mounted greeting", MINUTE, || {
        node.container_log("cfgwatch", "main", 0)
            .contains("greeting=hello")
            .then_some(())
    });
    node.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: default}\ndata: {colour: blue, greeting: bonjour}\n",
    );
    node.wait_for("the updated greeting", MINUTE, || {
        node.container_log("cfgwatch", "main", 0)
            .contains("greeting=bonjour")
            .then_some(())
    });

    // Secret (items, mode) and downwardAPI volumes, written to a claim.
    node.wait_for("the claim's file", MINUTE, || {
        std::fs::read_to_string(pv_dir.join("out"))
            .ok()
            .filter(|t| !t.is_empty())
    });
    assert_eq!(
        std::fs::read_to_string(pv_dir.join("out")).unwrap_or_default(),
        "hunter2 400 vols\n"
    );

    // A missing image: ErrImagePull, then back-off.
    node.wait_pod_field("nopull", waiting, MINUTE, |r| r == "ImagePullBackOff");
    let failed = node.events("nopull", "Failed");
    assert!(
        failed.iter().any(|m| m == "Error: ErrImagePull"),
        "{failed:?}"
    );

    // hostNetwork: the pod's IP is the host's; hostPort: a portmap rule.
    node.wait_pod_field("hostnet", "{.status.phase}", MINUTE, |p| p == "Running");
    assert_eq!(
        node.pod_field("hostnet", "{.status.podIP}"),
        node.pod_field("hostnet", "{.status.hostIP}")
    );
    node.wait_pod_field("hostport", "{.status.phase}", MINUTE, |p| p == "Running");
    let nat = || {
        let out = std::process::Command::new("iptables-save")
            .args(["-t", "nat"])
            .output()
            .expect("run iptables-save");
        String::from_utf8_lossy(&out.stdout).contains("--dport 18080")
    };
    assert!(nat(), "no portmap rule for the hostPort");

    // A sandbox that dies takes its containers along; the pod starts again
    // in a new one.
    let sandbox = node
        .ctr(&[
            "containers",
            "ls",
            "-q",
            r#"labels."io.cri-containerd.kind"==sandbox,labels."io.kubernetes.pod.name"==hostport"#,
        ])
        .trim()
        .to_string();
    assert_eq!(sandbox.lines().count(), 1, "{sandbox}");
    node.ctr(&["tasks", "kill", "-s", "SIGKILL", &sandbox]);
    node.wait_pod_field("hostport", restarts, MINUTE, |c| c == "1");
    node.wait_pod_field("hostport", "{.status.phase}", MINUTE, |p| p == "Running");
    node.wait_for("the hostPort in the new sandbox", MINUTE, || {
        nat().then_some(())
    });

    // Graceful deletion: preStop, then SIGTERM; a container that ignores
    // SIGTERM is killed when the grace period is over.
    node.wait_pod_field("graceful", "{.status.phase}", MINUTE, |p| p == "Running");
    node.wait_for("both containers to start", Duration::from_secs(20), || {
        let stubborn = std::fs::read_to_string(out_dir.join("stubborn")).ok()?;
        let order = std::fs::read_to_string(out_dir.join("order")).ok()?;
        (stubborn.contains("started") && order.contains("started")).then_some(())
    });
    let began = Instant::now();
    let deleted = node.kubectl(&["delete", "pod", "graceful", "--wait=true"]);
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    let took = began.elapsed();
    assert_eq!(
        std::fs::read_to_string(out_dir.join("order")).unwrap_or_default(),
        "started\nprestop\nterm\n"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("stubborn")).unwrap_or_default(),
        "started\nignored\n"
    );
    assert!(
        took >= Duration::from_secs(5),
        "the stubborn container was killed before its grace period ended ({took:?})"
    );

    // Everything else goes; so do its tmpfs, volumes and host ports.
    let rest = [
        "crash", "liveness", "ready", "init", "env", "cfgwatch", "vols", "nopull", "hostnet",
        "hostport",
    ];
    let mut args = vec!["delete", "pod", "--grace-period=1", "--wait=true"];
    args.extend(rest);
    let deleted = node.kubectl(&args);
    assert!(
        deleted.status.success(),
        "{}",
        String::from_utf8_lossy(&deleted.stderr)
    );
    node.wait_for("the sandboxes to go", MINUTE, || {
        node.ctr(&["containers", "ls", "-q"])
            .trim()
            .is_empty()
            .then_some(())
    });
    assert!(!tmpfs(&init_uid), "the tmpfs emptyDir is unmounted");
    assert!(
        !node.data_dir.join("agent/pods").join(&init_uid).exists(),
        "the pod's volume directory is removed"
    );
    assert!(!nat(), "the hostPort rule is removed");
    assert!(pv_dir.join("out").exists(), "a claim's data stays");
}
