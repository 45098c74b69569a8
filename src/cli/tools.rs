//! `skiff kubectl ...` and `skiff ctr ...`: the operator's tools pointed at
//! this machine's skiff, as k3s' `k3s kubectl` and `k3s ctr` are.
//!
//! `skiff kubectl` runs the `kubectl` on PATH with `KUBECONFIG` set to the
//! server's admin kubeconfig unless the caller set one: `SKIFF_WRITE_KUBECONFIG`,
//! else `write-kubeconfig` in the config file (`SKIFF_CONFIG`, default
//! `/etc/skiff/config.yaml`), else `/etc/skiff/skiff.yaml`. `skiff ctr` runs
//! containerd's `ctr` against skiff's containerd socket (under the data dir:
//! `SKIFF_DATA_DIR`, the config file's `data-dir`, else `/var/lib/skiff`) in
//! the `k8s.io` namespace, unless `CONTAINERD_ADDRESS` /
//! `CONTAINERD_NAMESPACE` say otherwise.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use super::config_file::{ConfigFile, FileValue};

const DEFAULT_CONFIG: &str = "/etc/skiff/config.yaml";
const DEFAULT_KUBECONFIG: &str = "/etc/skiff/skiff.yaml";
const DEFAULT_DATA_DIR: &str = "/var/lib/skiff";

/// Arguments handed to the tool as they are.
#[derive(Debug, clap::Args)]
pub struct PassThrough {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<OsString>,
}

/// A value of the config file, if the file exists and has it.
fn config_value(key: &str) -> Option<String> {
    let explicit = std::env::var_os("SKIFF_CONFIG");
    let path = explicit
        .as_ref()
        .map_or_else(|| PathBuf::from(DEFAULT_CONFIG), PathBuf::from);
    let file = ConfigFile::load(&path, explicit.is_some(), &[key]).ok()?;
    match file.values.get(key) {
        Some(FileValue::One(v)) => Some(v.clone()),
        _ => None,
    }
}

fn env_or_config(env: &str, key: &str, default: &str) -> PathBuf {
    std::env::var_os(env)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| config_value(key).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(default))
}

/// skiff's data dir as the operator commands find it: `SKIFF_DATA_DIR`,
/// else the config file's `data-dir`, else `/var/lib/skiff`.
pub fn data_dir() -> PathBuf {
    env_or_config("SKIFF_DATA_DIR", "data-dir", DEFAULT_DATA_DIR)
}

/// The admin kubeconfig `skiff kubectl` uses.
pub fn kubeconfig() -> PathBuf {
    env_or_config(
        "SKIFF_WRITE_KUBECONFIG",
        "write-kubeconfig",
        DEFAULT_KUBECONFIG,
    )
}

/// Runs `program` with `args` (and the environment `env` adds), passing
/// on its exit code; a missing program gets a message saying what to do.
fn run(program: &str, args: &[OsString], env: &[(&str, &Path)], missing: &str) -> ExitCode {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    match cmd.status() {
        Ok(status) => match status.code() {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::FAILURE,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skiff {program}: {program} is not installed or not on PATH; {missing}");
            ExitCode::from(127)
        }
        Err(e) => {
            eprintln!("skiff {program}: cannot run {program}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `skiff kubectl ARGS...`.
pub fn kubectl(args: PassThrough) -> ExitCode {
    let own = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
    let config = kubeconfig();
    if own.is_none() && !config.exists() {
        eprintln!(
            "skiff kubectl: no kubeconfig at {}: start `skiff server` on this machine (it writes one there), or set KUBECONFIG",
            config.display()
        );
        return ExitCode::FAILURE;
    }
    let env: Vec<(&str, &Path)> = match own {
        Some(_) => Vec::new(),
        None => vec![("KUBECONFIG", config.as_path())],
    };
    run(
        "kubectl",
        &args.args,
        &env,
        "install it (https://kubernetes.io/docs/tasks/tools/, or `apt-get install kubectl` from the Kubernetes apt repository)",
    )
}

/// `skiff ctr ARGS...`.
pub fn ctr(args: PassThrough) -> ExitCode {
    let data_dir = data_dir();
    let layout = crate::runtime::config::Layout::new(&data_dir.join("agent"));
    let mut full: Vec<OsString> = Vec::new();
    if std::env::var_os("CONTAINERD_ADDRESS").is_none() {
        full.push("--address".into());
        full.push(layout.socket.into_os_string());
    }
    if std::env::var_os("CONTAINERD_NAMESPACE").is_none() {
        full.push("--namespace".into());
        full.push("k8s.io".into());
    }
    full.extend(args.args);
    run(
        "ctr",
        &full,
        &[],
        "it comes with containerd (`apt-get install containerd`)",
    )
}
