//! install.sh from the checkout, into temporary directories: the binary,
//! the unit, its env file, killall and uninstall scripts; idempotence; an
//! agent unit from SKIFF_URL + SKIFF_TOKEN. Also `skiff server` telling a
//! `Type=notify` service manager that it is ready.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::TestServer;

fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs install.sh with `env`, the skiff binary of this build already in
/// the bin dir (INSTALL_SKIFF_SKIP_DOWNLOAD), and nothing enabled/started.
fn install(bin: &Path, units: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(checkout().join("install.sh"))
        .args(args)
        .env("INSTALL_SKIFF_BIN_DIR", bin)
        .env("INSTALL_SKIFF_SYSTEMD_DIR", units)
        .env("INSTALL_SKIFF_SKIP_DOWNLOAD", "true")
        .env("INSTALL_SKIFF_SKIP_DEPS", "true")
        .env("INSTALL_SKIFF_SKIP_START", "true");
    for var in std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("SKIFF_"))
    {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run install.sh")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn install_writes_the_service_and_scripts_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bin, units) = (dir.path().join("bin"), dir.path().join("systemd"));
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::copy(env!("CARGO_BIN_EXE_skiff"), bin.join("skiff")).expect("place skiff");

    let out = install(
        &bin,
        &units,
        &[("SKIFF_DATA_DIR", "/srv/skiff")],
        &["server", "--disable-agent"],
    );
    assert!(out.status.success(), "{}", said(&out));
    let unit = units.join("skiff.service");
    let text = std::fs::read_to_string(&unit).expect("the unit");
    assert!(text.contains("Type=notify"), "{text}");
    assert!(
        text.contains(&format!(
            "ExecStart={} server --disable-agent",
            bin.join("skiff").display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("EnvironmentFile=-{}.env", unit.display())),
        "{text}"
    );
    let env = units.join("skiff.service.env");
    assert_eq!(mode(&env), 0o600);
    assert_eq!(
        std::fs::read_to_string(&env).expect("env"),
        "SKIFF_DATA_DIR='/srv/skiff'\n"
    );
    for script in ["skiff-killall.sh", "skiff-uninstall.sh"] {
        let path = bin.join(script);
        assert_eq!(mode(&path), 0o755, "{script}");
        let check = Command::new("sh")
            .arg("-n")
            .arg(&path)
            .output()
            .expect("sh -n");
        assert!(check.status.success(), "{script}: {}", said(&check));
    }
    if let Ok(verify) = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
    {
        // Only the unit's own problems count (the binary path exists).
        let report = said(&verify);
        assert!(!report.contains("skiff.service:"), "{report}");
    }

    // Again, with nothing different: nothing is rewritten.
    let before = std::fs::metadata(&unit)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::thread::sleep(Duration::from_millis(1100));
    let again = install(
        &bin,
        &units,
        &[("SKIFF_DATA_DIR", "/srv/skiff")],
        &["server", "--disable-agent"],
    );
    assert!(again.status.success(), "{}", said(&again));
    assert!(!said(&again).contains("wrote "), "{}", said(&again));
    assert!(said(&again).contains("up to date"), "{}", said(&again));
    let after = std::fs::metadata(&unit)
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(before, after);

    // SKIFF_URL and SKIFF_TOKEN make an agent.
    let out = install(
        &bin,
        &units,
        &[
            ("SKIFF_URL", "https://10.0.0.1:6443"),
            ("SKIFF_TOKEN", "K10abc::server:secret"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", said(&out));
    let agent = std::fs::read_to_string(units.join("skiff-agent.service")).expect("agent unit");
    assert!(
        agent.contains(&format!("ExecStart={} agent", bin.join("skiff").display())),
        "{agent}"
    );
    let env = std::fs::read_to_string(units.join("skiff-agent.service.env")).expect("agent env");
    assert!(
        env.contains("SKIFF_TOKEN='K10abc::server:secret'")
            && env.contains("SKIFF_URL='https://10.0.0.1:6443'"),
        "{env}"
    );
    assert_eq!(mode(&units.join("skiff-agent.service.env")), 0o600);

    // An agent without a token is refused with what to set.
    let out = install(&bin, &units, &[("SKIFF_URL", "https://10.0.0.1:6443")], &[]);
    assert!(!out.status.success());
    assert!(
        said(&out).contains("an agent needs SKIFF_TOKEN"),
        "{}",
        said(&out)
    );
}

#[test]
fn the_server_notifies_its_service_manager_when_ready() {
    let mut server = TestServer::new();
    let socket_path = server.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    server.launch_with_env(
        &[],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap_or_default())],
    );
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).expect("a notification");
    assert_eq!(&buf[..n], b"READY=1");
    server.wait_ready();
}
