//! The operator's commands: `skiff kubectl` (kubectl with the server's
//! admin kubeconfig), `skiff ctr`, `skiff check-config` and `skiff certificate`.

mod common;

use common::{TestServer, skiff};

/// An empty directory to stand for a PATH without the tools.
fn empty_path(server: &TestServer) -> std::path::PathBuf {
    let dir = server.dir.path().join("empty-bin");
    std::fs::create_dir_all(&dir).expect("make an empty PATH dir");
    dir
}

#[test]
fn skiff_kubectl_uses_the_servers_kubeconfig() {
    let server = TestServer::start();
    let out = skiff()
        .args(["kubectl", "get", "namespaces", "-o", "name"])
        .env_remove("KUBECONFIG")
        .env("SKIFF_WRITE_KUBECONFIG", &server.kubeconfig)
        .output()
        .expect("run skiff kubectl");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("namespace/default"), "{stdout}");

    // kubectl's own flags and exit codes pass through.
    let out = skiff()
        .args([
            "kubectl",
            "get",
            "pod",
            "missing",
            "--ignore-not-found=false",
        ])
        .env_remove("KUBECONFIG")
        .env("SKIFF_WRITE_KUBECONFIG", &server.kubeconfig)
        .output()
        .expect("run skiff kubectl");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"missing\" not found"));

    // No kubectl on PATH: a message saying so, not a crash.
    let out = skiff()
        .args(["kubectl", "get", "nodes"])
        .env_remove("KUBECONFIG")
        .env("SKIFF_WRITE_KUBECONFIG", &server.kubeconfig)
        .env("PATH", empty_path(&server))
        .output()
        .expect("run skiff kubectl");
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("kubectl is not installed or not on PATH"),
        "{stderr}"
    );

    // No kubeconfig where the server would write it.
    let out = skiff()
        .args(["kubectl", "get", "nodes"])
        .env_remove("KUBECONFIG")
        .env(
            "SKIFF_WRITE_KUBECONFIG",
            server.dir.path().join("nowhere.yaml"),
        )
        .output()
        .expect("run skiff kubectl");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no kubeconfig at") && stderr.contains("nowhere.yaml"),
        "{stderr}"
    );
}

#[test]
fn skiff_ctr_points_ctr_at_skiffs_containerd() {
    let server = TestServer::new();
    // ctr prints its usage without needing the daemon; the address and
    // namespace skiff adds must be accepted.
    let out = skiff()
        .args(["ctr", "--help"])
        .env("SKIFF_DATA_DIR", &server.data_dir)
        .env_remove("CONTAINERD_ADDRESS")
        .output()
        .expect("run skiff ctr");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("containerd"));
    let out = skiff()
        .args(["ctr", "images", "ls"])
        .env("SKIFF_DATA_DIR", &server.data_dir)
        .env_remove("CONTAINERD_ADDRESS")
        .output()
        .expect("run skiff ctr");
    // No containerd runs for this data dir: ctr says it cannot reach the
    // socket skiff would use.
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("containerd.sock"), "{stderr}");
}

#[test]
fn check_config_reports_every_check_and_how_to_fix_failures() {
    let out = skiff()
        .arg("check-config")
        .output()
        .expect("run check-config");
    let report = String::from_utf8_lossy(&out.stdout);
    for section in ["Kernel:", "Binaries:", "System:"] {
        assert!(report.contains(section), "{report}");
    }
    for name in [
        "namespaces",
        "cgroups",
        "overlay filesystem",
        "br_netfilter",
        "vxlan",
        "iptables nat",
        "runc",
        "CNI plugins",
        "swap",
    ] {
        assert!(
            report.contains(&format!("  {name}: ")),
            "{name} missing:\n{report}"
        );
    }
    for line in report
        .lines()
        .filter(|l| l.contains("FAIL") || l.contains("WARN"))
    {
        if line.contains("checks:") {
            continue;
        }
        assert!(line.contains("fix: "), "{line}");
    }
    let failed = report.lines().any(|l| l.trim_start().starts_with("FAIL"));
    assert_eq!(out.status.success(), !failed, "{report}");

    // Without the binaries on PATH, each is a FAIL naming its package.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = skiff()
        .arg("check-config")
        .env("PATH", dir.path())
        .output()
        .expect("run check-config");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("FAIL  runc: fix: apt-get install runc"),
        "{report}"
    );
    assert!(
        report.contains("FAIL  containerd: fix: apt-get install containerd"),
        "{report}"
    );
    assert!(
        report.contains("FAIL  iptables nat: fix: iptables is not installed"),
        "{report}"
    );
}

fn certificate(server: &TestServer, args: &[&str]) -> std::process::Output {
    skiff()
        .arg("certificate")
        .args(args)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .expect("run skiff certificate")
}

#[test]
fn certificates_are_checked_and_rotated_while_skiff_is_stopped() {
    let mut server = TestServer::start();
    let out = certificate(&server, &["check"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let header = table.lines().next().unwrap_or_default();
    for column in ["FILE", "SUBJECT", "USAGES", "EXPIRES", "RESIDUAL", "STATUS"] {
        assert!(header.contains(column), "{table}");
    }
    let line = |file: &str| {
        table
            .lines()
            .find(|l| l.starts_with(file))
            .unwrap_or_default()
            .to_string()
    };
    let serving = line("server/tls/serving-kube-apiserver.crt");
    assert!(
        serving.contains("kube-apiserver") && serving.contains("ServerAuth"),
        "{table}"
    );
    assert!(serving.trim_end().ends_with("OK"), "{table}");
    assert!(line("server/tls/server-ca.crt").contains("CA"), "{table}");
    assert!(
        line("server/tls/client-admin.crt").contains("system:admin"),
        "{table}"
    );

    // One skiff per data dir: a second server, and a rotation, are refused
    // while the first runs.
    let second = skiff()
        .args(["server", "--disable-agent", "--bind-address=127.0.0.1"])
        .arg(format!("--https-listen-port={}", common::free_port()))
        .arg("--data-dir")
        .arg(&server.data_dir)
        .arg("--write-kubeconfig")
        .arg(server.dir.path().join("second.yaml"))
        .arg("--config")
        .arg(&server.config)
        .output()
        .expect("run a second skiff server");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains("another skiff server is running on the data dir"),
        "{stderr}"
    );
    let out = certificate(&server, &["rotate"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stop it first"),
        "{out:?}"
    );

    let before = std::fs::read_to_string(server.tls_file("serving-kube-apiserver.crt"))
        .expect("serving cert");
    let admin_before =
        std::fs::read_to_string(server.tls_file("client-admin.crt")).expect("admin cert");
    server.stop();
    let out = certificate(&server, &["rotate", "--service", "api-server"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("api-server: set aside"), "{text}");
    assert!(!server.tls_file("serving-kube-apiserver.crt").exists());
    let out = certificate(&server, &["rotate", "--service", "etcd"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown --service"),
        "{out:?}"
    );

    server.launch(&[]);
    server.wait_ready();
    let after = std::fs::read_to_string(server.tls_file("serving-kube-apiserver.crt"))
        .expect("reissued serving cert");
    assert_ne!(before, after, "a new serving certificate");
    assert_eq!(
        admin_before,
        std::fs::read_to_string(server.tls_file("client-admin.crt")).expect("admin cert"),
        "only the chosen certificate is rotated"
    );
    let out = server.kubectl(&["get", "namespaces", "-o", "name"]);
    assert!(out.status.success(), "{out:?}");
}
