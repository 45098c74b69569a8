//! `skiff server` and `skiff version` on the command line: where settings
//! come from (flag > env > config file > default) and how bad values fail.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, free_port, kill, skiff, wait_for_file};

#[test]
fn version_prints_the_version() {
    let out = skiff().arg("version").output().expect("run skiff version");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!("skiff version v{}", env!("CARGO_PKG_VERSION"))
    );
}

/// Runs `cmd` to completion (at most 20 s); returns (success, stderr).
fn run_to_end(mut cmd: Command) -> (bool, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start skiff");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            kill(&mut child);
            panic!("skiff server kept running although its configuration is invalid");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("collect output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `skiff server` command confined to `dir`, with `config` as its config
/// file contents.
fn server_in(dir: &Path, config: &str) -> Command {
    let config_path = dir.join("config.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let mut cmd = skiff();
    cmd.arg("server")
        .arg("--disable-agent")
        .arg("--bind-address=127.0.0.1")
        .arg("--config")
        .arg(&config_path);
    cmd
}

/// A configuration that must be refused, and what the message must name.
struct Case {
    args: &'static [&'static str],
    config: &'static str,
    envs: &'static [(&'static str, &'static str)],
    wanted: &'static [&'static str],
}

#[test]
fn bad_values_fail_naming_the_flag() {
    let flag = |args, wanted| Case {
        args,
        config: "",
        envs: &[],
        wanted,
    };
    let cases = [
        flag(
            &["--cluster-cidr", "10.42.0.0/33"],
            &["--cluster-cidr", "10.42.0.0/33"],
        ),
        flag(
            &["--https-listen-port", "70000"],
            &["--https-listen-port", "65535"],
        ),
        flag(
            &["--service-cidr", "10.42.128.0/17"],
            &["--cluster-cidr", "--service-cidr", "overlap"],
        ),
        flag(
            &["--cluster-dns", "10.99.0.10"],
            &["--cluster-dns", "--service-cidr"],
        ),
        flag(
            &["--service-node-port-range", "32767-30000"],
            &["--service-node-port-range"],
        ),
        flag(
            &["--write-kubeconfig-mode", "0999"],
            &["--write-kubeconfig-mode", "octal"],
        ),
        flag(
            &["--advertise-address", "not-an-ip"],
            &["--advertise-address"],
        ),
        flag(&["--token", "K10abc::server:x"], &["--token"]),
        flag(
            &["--flannel-backend", "wireguard"],
            &["--flannel-backend", "vxlan, host-gw or none"],
        ),
        flag(&["--flannel-iface", "eth0:1"], &["--flannel-iface"]),
        flag(&["--node-ip", "0.0.0.0"], &["--node-ip", "unicast"]),
        Case {
            args: &[],
            config: "flannel-backend: udp\n",
            envs: &[],
            wanted: &["--flannel-backend", "config file"],
        },
        Case {
            args: &[],
            config: "",
            envs: &[("SKIFF_NODE_IP", "not-an-ip")],
            wanted: &["--node-ip", "SKIFF_NODE_IP"],
        },
        flag(
            &["--write-kubeconfig", ""],
            &["--write-kubeconfig", "give a path"],
        ),
        Case {
            args: &[],
            config: "cluster-cidr: banana\n",
            envs: &[],
            wanted: &["--cluster-cidr", "config file"],
        },
        Case {
            args: &[],
            config: "data-dri: /tmp/x\n",
            envs: &[],
            wanted: &["unknown key `data-dri`"],
        },
        Case {
            args: &[],
            config: "",
            envs: &[("SKIFF_HTTPS_LISTEN_PORT", "0")],
            wanted: &["--https-listen-port", "SKIFF_HTTPS_LISTEN_PORT"],
        },
    ];
    for Case {
        args,
        config,
        envs,
        wanted,
    } in cases
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = server_in(dir.path(), config);
        cmd.envs(envs.iter().copied());
        // Keep every case inside its temp dir and off real ports, should it
        // wrongly pass validation, unless the case sets that flag itself.
        let data = dir.path().join("data").display().to_string();
        let kubeconfig = dir.path().join("kubeconfig").display().to_string();
        let port = free_port().to_string();
        for (flag, value) in [
            ("--data-dir", data.as_str()),
            ("--write-kubeconfig", kubeconfig.as_str()),
            ("--https-listen-port", port.as_str()),
        ] {
            let env = format!("SKIFF_{}", flag[2..].replace('-', "_").to_uppercase());
            if !args.contains(&flag) && !envs.iter().any(|(name, _)| *name == env) {
                cmd.arg(flag).arg(value);
            }
        }
        cmd.args(args);
        let (ok, stderr) = run_to_end(cmd);
        assert!(!ok, "{args:?} {config:?} {envs:?} should fail");
        assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
        for want in wanted {
            assert!(
                stderr.contains(want),
                "{args:?} {config:?} {envs:?}: {want:?} missing from: {stderr}"
            );
        }
    }
}

#[test]
fn an_explicit_config_file_must_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = skiff();
    cmd.arg("server")
        .arg("--config")
        .arg(dir.path().join("nope.yaml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let (ok, stderr) = run_to_end(cmd);
    assert!(!ok);
    assert!(
        stderr.contains("nope.yaml") && stderr.contains("does not exist"),
        "{stderr}"
    );
}

/// Starts `cmd`, waits for the kubeconfig at `expected` and returns the port
/// in its server URL; the process is stopped either way.
fn kubeconfig_port(mut cmd: Command, expected: &Path, log: &Path) -> Option<u16> {
    let log_file = std::fs::File::create(log).expect("create log");
    // These servers are killed at once; none may start a node (containerd
    // would outlive them). A flag still wins over this variable.
    cmd.env("SKIFF_DISABLE_AGENT", "true");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start skiff server");
    let appeared = wait_for_file(expected, &mut child, Duration::from_secs(30));
    kill(&mut child);
    if !appeared {
        return None;
    }
    let text = std::fs::read_to_string(expected).ok()?;
    let server = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))?;
    server.rsplit(':').next()?.trim().parse().ok()
}

#[test]
fn flag_beats_env_beats_file_beats_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let at = |name: &str| -> PathBuf { dir.path().join(name) };
    let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
    let config = format!(
        "write-kubeconfig: {}\nhttps-listen-port: {file_port}\ndata-dir: {}\n",
        at("from-file.yaml").display(),
        at("data-file").display()
    );

    // The file overrides the defaults.
    let cmd = server_in(dir.path(), &config);
    assert_eq!(
        kubeconfig_port(cmd, &at("from-file.yaml"), &at("1.log")),
        Some(file_port),
        "{}",
        std::fs::read_to_string(at("1.log")).unwrap_or_default()
    );
    assert!(
        at("data-file/server/token").exists(),
        "data-dir from the file is used"
    );

    // The environment overrides the file.
    let mut cmd = server_in(dir.path(), &config);
    cmd.env("SKIFF_WRITE_KUBECONFIG", at("from-env.yaml"))
        .env("SKIFF_HTTPS_LISTEN_PORT", env_port.to_string())
        .env("SKIFF_DATA_DIR", at("data-env"));
    assert_eq!(
        kubeconfig_port(cmd, &at("from-env.yaml"), &at("2.log")),
        Some(env_port),
        "{}",
        std::fs::read_to_string(at("2.log")).unwrap_or_default()
    );
    assert!(
        at("data-env/server/token").exists(),
        "data-dir from the env is used"
    );

    // A flag overrides the environment.
    let mut cmd = server_in(dir.path(), &config);
    cmd.env("SKIFF_WRITE_KUBECONFIG", at("from-env-2.yaml"))
        .env("SKIFF_HTTPS_LISTEN_PORT", env_port.to_string())
        .env("SKIFF_DATA_DIR", at("data-env"))
        .arg("--write-kubeconfig")
        .arg(at("from-flag.yaml"))
        .arg(format!("--https-listen-port={flag_port}"));
    assert_eq!(
        kubeconfig_port(cmd, &at("from-flag.yaml"), &at("3.log")),
        Some(flag_port),
        "{}",
        std::fs::read_to_string(at("3.log")).unwrap_or_default()
    );
    assert!(
        !at("from-env-2.yaml").exists(),
        "the env value lost to the flag"
    );
}

#[test]
fn without_disable_agent_a_node_that_cannot_start_leaves_the_api_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = skiff();
    // A CRI socket that does not exist: the node fails at once, touching
    // nothing on the host (no containerd, no network set-up).
    cmd.arg("server")
        .arg("--config")
        .arg(dir.path().join("config.yaml"))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--https-listen-port={}", free_port()))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--write-kubeconfig")
        .arg(dir.path().join("kubeconfig"))
        .arg("--container-runtime-endpoint")
        .arg(dir.path().join("no-such.sock"));
    std::fs::write(dir.path().join("config.yaml"), "").expect("write config");
    let log = dir.path().join("server.log");
    let log_file = std::fs::File::create(&log).expect("create log");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .expect("start skiff server");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("the node did not start") || matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let still_running = matches!(child.try_wait(), Ok(None));
    kill(&mut child);
    assert!(still_running, "the server kept running: {text}");
    assert!(text.contains("is ready"), "{text}");
    assert!(text.contains("the node did not start"), "{text}");
    assert!(
        text.contains("no-such.sock"),
        "the error names the socket: {text}"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = TestServer::start();
    let status = server
        .stop()
        .expect("the server stops within 10 s of SIGTERM");
    assert!(status.success(), "{status}; log:\n{}", server.log());
    assert!(server.log().contains("is ready"), "time to ready is logged");
}
