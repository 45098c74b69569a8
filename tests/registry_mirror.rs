//! Private registries end to end: a real registry (Debian's
//! `docker-registry`) on 127.0.0.1 holds the test busybox image, pushed
//! with `skopeo` from the local tarball; `registries.yaml` declares it a
//! mirror of docker.io; a pod whose image is
//! `docker.io/library/busybox:<tag>` is pulled through it. The node runs
//! with `--disable-default-registry-endpoint`, so a pull the mirror cannot
//! answer fails on this machine instead of going to Docker Hub: no traffic
//! leaves the machine.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use common::node::{Node, images};

/// The registry process, killed on drop.
struct Registry {
    child: Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(dir: &Path) -> Registry {
    let port = free_port();
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("blobs").display()
        ),
    )
    .expect("write the registry config");
    let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("start docker-registry (scripts/install-test-deps.sh installs it)");
    let registry = Registry { child, port };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the registry did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    registry
}

#[test]
fn a_pod_image_is_pulled_through_a_mirror_from_registries_yaml() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let registry = start_registry(scratch.path());
    let pushed = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
        .arg(format!(
            "docker-archive:{}",
            images().join("busybox.tar").display()
        ))
        .arg(format!(
            "docker://127.0.0.1:{}/library/busybox:mirrored",
            registry.port
        ))
        .output()
        .expect("run skopeo (scripts/install-test-deps.sh installs it)");
    assert!(
        pushed.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );

    let registries = scratch.path().join("registries.yaml");
    std::fs::write(
        &registries,
        format!(
            "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://127.0.0.1:{}\"\n",
            registry.port
        ),
    )
    .expect("write registries.yaml");
    let node = Node::start_with(&[
        &format!("--private-registry={}", registries.display()),
        "--disable-default-registry-endpoint",
    ]);
    let hosts_toml = node
        .data_dir
        .join("agent/etc/containerd/certs.d/docker.io/hosts.toml");
    let hosts = node.wait_for(
        "the hosts.toml for docker.io",
        Duration::from_secs(60),
        || std::fs::read_to_string(&hosts_toml).ok(),
    );
    assert!(
        hosts.contains(&format!("[host.\"http://127.0.0.1:{}\"]", registry.port)),
        "{hosts}"
    );

    let pod = |name: &str, tag: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"default"}},
"spec":{{"nodeName":"{node}","containers":[{{"name":"main","image":"docker.io/library/busybox:{tag}",
"imagePullPolicy":"Always","command":["sleep","3600"]}}]}}}}"#,
            node = node.name
        )
    };
    node.apply(&pod("mirrored", "mirrored"));
    node.wait_pod_field(
        "mirrored",
        "{.status.phase}",
        Duration::from_secs(120),
        |p| p == "Running",
    );
    let image_id = node
        .pod_field("mirrored", "{.status.containerStatuses[0].imageID}")
        .unwrap_or_default();
    assert!(
        image_id.starts_with("docker.io/library/busybox@sha256:"),
        "{image_id}"
    );
    let listed = node.ctr(&["images", "ls", "-q"]);
    assert!(
        listed.contains("docker.io/library/busybox:mirrored"),
        "{listed}"
    );
    let log = std::fs::read_to_string(scratch.path().join("registry.log")).unwrap_or_default();
    assert!(
        log.contains("/v2/library/busybox/manifests/mirrored"),
        "the pull went through the mirror: {log}"
    );

    // A tag the mirror lacks fails here, with no fallback to Docker Hub.
    node.apply(&pod("missing", "not-in-mirror"));
    let waiting = "{.status.containerStatuses[0].state.waiting.reason}";
    node.wait_pod_field("missing", waiting, Duration::from_secs(120), |r| {
        r == "ErrImagePull" || r == "ImagePullBackOff"
    });
}
