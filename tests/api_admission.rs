//! Admission as the stock kubectl sees it: ResourceQuota refuses what
//! exceeds it and gives usage back when objects go, LimitRange fills
//! container defaults and enforces its bounds, PriorityClasses set pod
//! priority, and pods tolerate unreachable nodes for 300 s by default.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{TestServer, eventually, ok, text};

fn apply(server: &TestServer, name: &str, body: &str) -> Output {
    let path = server.dir.path().join(name);
    std::fs::write(&path, body).expect("write manifest");
    server.kubectl(&["create", "-f", path.to_str().expect("utf-8 path")])
}

fn pod(name: &str, ns: &str, cpu: Option<&str>) -> String {
    let resources = match cpu {
        Some(cpu) => format!("\n    resources:\n      requests:\n        cpu: {cpu}"),
        None => String::new(),
    };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  containers:\n  - name: main\n    image: docker.io/skiff/pause:3.10{resources}\n"
    )
}

fn jsonpath(server: &TestServer, args: &[&str], path: &str) -> String {
    let expr = format!("jsonpath={path}");
    let mut all = args.to_vec();
    all.extend(["-o", expr.as_str()]);
    ok(server, &all)
}

#[test]
fn a_resource_quota_refuses_what_exceeds_it_and_gives_usage_back() {
    let server = TestServer::start();
    ok(&server, &["create", "namespace", "q"]);
    let quota = "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: small\n  namespace: q\nspec:\n  hard:\n    pods: \"2\"\n    requests.cpu: \"1\"\n    configmaps: \"3\"\n";
    let out = apply(&server, "quota.yaml", quota);
    assert!(out.status.success(), "{}", text(&out));

    // The quota's status is filled in once the server has looked.
    eventually(Duration::from_secs(10), "quota status", || {
        let used = jsonpath(
            &server,
            &["get", "quota", "small", "-n", "q"],
            "{.status.used.pods}",
        );
        (used == "0").then_some(())
    });

    // A pod that states no cpu request cannot be accounted for.
    let out = apply(&server, "bare.yaml", &pod("bare", "q", None));
    assert!(!out.status.success());
    assert!(
        text(&out).contains(
            "pods \"bare\" is forbidden: failed quota: small: must specify requests.cpu for: main"
        ),
        "{}",
        text(&out)
    );

    for (name, cpu) in [("a", "400m"), ("b", "400m")] {
        let out = apply(&server, &format!("{name}.yaml"), &pod(name, "q", Some(cpu)));
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = apply(&server, "c.yaml", &pod("c", "q", Some("400m")));
    assert!(!out.status.success(), "a third pod must be refused");
    let message = text(&out);
    assert!(
        message.contains("Error from server (Forbidden)")
            && message.contains(
                "pods \"c\" is forbidden: exceeded quota: small, requested: pods=1,requests.cpu=400m, used: pods=2,requests.cpu=800m, limited: pods=2,requests.cpu=1"
            ),
        "{message}"
    );
    assert_eq!(
        jsonpath(
            &server,
            &["get", "quota", "small", "-n", "q"],
            "{.status.used.requests\\.cpu}"
        ),
        "800m"
    );

    // Deleting a pod gives its usage back; a smaller pod then fits.
    ok(
        &server,
        &[
            "delete",
            "pod",
            "a",
            "-n",
            "q",
            "--grace-period=0",
            "--force",
        ],
    );
    eventually(Duration::from_secs(10), "usage given back", || {
        let used = jsonpath(
            &server,
            &["get", "quota", "small", "-n", "q"],
            "{.status.used.pods}",
        );
        (used == "1").then_some(())
    });
    let out = apply(&server, "d.yaml", &pod("d", "q", Some("200m")));
    assert!(out.status.success(), "{}", text(&out));

    // Object counts: kube-root-ca.crt and two more ConfigMaps fill the
    // quota of three.
    eventually(Duration::from_secs(10), "kube-root-ca.crt", || {
        server
            .kubectl(&["get", "configmap", "kube-root-ca.crt", "-n", "q"])
            .status
            .success()
            .then_some(())
    });
    for i in 0..2 {
        ok(
            &server,
            &["create", "configmap", &format!("cm{i}"), "-n", "q"],
        );
    }
    let out = server.kubectl(&["create", "configmap", "cm2", "-n", "q"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("exceeded quota: small, requested: configmaps=1, used: configmaps=3, limited: configmaps=3"),
        "{}",
        text(&out)
    );

    // Updates are charged for what they add: a Service turned NodePort
    // takes a node port the quota does not have.
    let ports = "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: ports\n  namespace: q\nspec:\n  hard:\n    services.nodeports: \"0\"\n";
    let out = apply(&server, "ports.yaml", ports);
    assert!(out.status.success(), "{}", text(&out));
    ok(
        &server,
        &[
            "create",
            "service",
            "clusterip",
            "web",
            "--tcp=80",
            "-n",
            "q",
        ],
    );
    let out = server.kubectl(&[
        "patch",
        "service",
        "web",
        "-n",
        "q",
        "-p",
        r#"{"spec":{"type":"NodePort"}}"#,
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("services \"web\" is forbidden: exceeded quota: ports, requested: services.nodeports=1, used: services.nodeports=0, limited: services.nodeports=0"),
        "{}",
        text(&out)
    );
    let svc_type = jsonpath(
        &server,
        &["get", "service", "web", "-n", "q"],
        "{.spec.type}",
    );
    assert_eq!(svc_type, "ClusterIP");
}

#[test]
fn a_limit_range_fills_defaults_and_enforces_bounds() {
    let server = TestServer::start();
    ok(&server, &["create", "namespace", "lr"]);
    let range = "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: bounds\n  namespace: lr\nspec:\n  limits:\n  - type: Container\n    defaultRequest:\n      cpu: 100m\n    default:\n      cpu: 200m\n      memory: 64Mi\n    max:\n      cpu: \"1\"\n";
    let out = apply(&server, "range.yaml", range);
    assert!(out.status.success(), "{}", text(&out));

    let out = apply(&server, "plain.yaml", &pod("plain", "lr", None));
    assert!(out.status.success(), "{}", text(&out));
    let resources = jsonpath(
        &server,
        &["get", "pod", "plain", "-n", "lr"],
        "{.spec.containers[0].resources}",
    );
    let resources: serde_json::Value = serde_json::from_str(&resources).expect("json");
    assert_eq!(resources["requests"]["cpu"], "100m");
    // memory has a default limit but no default request: the request
    // defaults to the limit.
    assert_eq!(resources["requests"]["memory"], "64Mi");
    assert_eq!(resources["limits"]["cpu"], "200m");
    assert_eq!(resources["limits"]["memory"], "64Mi");
    let note = jsonpath(
        &server,
        &["get", "pod", "plain", "-n", "lr"],
        "{.metadata.annotations.kubernetes\\.io/limit-ranger}",
    );
    assert!(note.starts_with("LimitRanger plugin set:"), "{note}");

    let big = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\n  namespace: lr\nspec:\n  containers:\n  - name: main\n    image: docker.io/skiff/pause:3.10\n    resources:\n      limits:\n        cpu: \"2\"\n";
    let out = apply(&server, "big.yaml", big);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(
            "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn pods_get_priority_and_default_tolerations() {
    let server = TestServer::start();
    let classes = ok(&server, &["get", "priorityclasses", "-o", "name"]);
    assert!(classes.contains("priorityclass.scheduling.k8s.io/system-node-critical"));
    assert!(classes.contains("priorityclass.scheduling.k8s.io/system-cluster-critical"));

    let class = "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: high\nvalue: 1000\n";
    let out = apply(&server, "class.yaml", class);
    assert!(out.status.success(), "{}", text(&out));
    let with_class = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: important\nspec:\n  priorityClassName: high\n  containers:\n  - name: main\n    image: docker.io/skiff/pause:3.10\n";
    let out = apply(&server, "important.yaml", with_class);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        jsonpath(&server, &["get", "pod", "important"], "{.spec.priority}"),
        "1000"
    );
    let tolerations = jsonpath(
        &server,
        &["get", "pod", "important"],
        "{range .spec.tolerations[*]}{.key}={.tolerationSeconds} {end}",
    );
    assert_eq!(
        tolerations.trim(),
        "node.kubernetes.io/not-ready=300 node.kubernetes.io/unreachable=300"
    );

    let missing = with_class
        .replace("important", "orphan")
        .replace("high", "nope");
    let out = apply(&server, "orphan.yaml", &missing);
    assert!(!out.status.success());
    assert!(
        text(&out)
            .contains("pods \"orphan\" is forbidden: no PriorityClass with name nope was found"),
        "{}",
        text(&out)
    );
}
