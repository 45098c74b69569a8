//! containerd's generated configuration and where its files live.
//!
//! Everything containerd keeps (content, snapshots, state, its socket and
//! log) sits under `<data-dir>/agent/containerd/`, except the socket when that
//! path would exceed the unix socket limit (then `/run/skiff/<hash>/`). The
//! config adapts to the host: overlayfs when the kernel has it (native
//! snapshots otherwise), and `restrict_oom_score_adj` where lowering an OOM
//! score is refused, which otherwise makes runc fail every sandbox.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::RuntimeError;

/// The pause image every pod sandbox runs.
pub const SANDBOX_IMAGE: &str = "docker.io/skiff/pause:3.10";

/// Longest path a unix socket address holds (sun_path minus the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Where containerd's files go.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub root: PathBuf,
    pub state: PathBuf,
    pub log: PathBuf,
    pub pid_file: PathBuf,
    /// The CNI config directory the CRI plugin reads (skiff writes it).
    pub cni_conf_dir: PathBuf,
    /// Registry host directories (`hosts.toml` files) the CRI plugin reads
    /// at every pull (its `config_path`), written from registries.yaml.
    pub certs_d: PathBuf,
}

impl Layout {
    pub fn new(agent_dir: &Path) -> Self {
        let dir = agent_dir.join("containerd");
        let socket = socket_path(&dir);
        Layout {
            config: dir.join("config.toml"),
            root: dir.join("root"),
            state: dir.join("state"),
            log: dir.join("containerd.log"),
            pid_file: dir.join("containerd.pid"),
            cni_conf_dir: agent_dir.join("etc").join("cni").join("net.d"),
            certs_d: agent_dir.join("etc").join("containerd").join("certs.d"),
            socket,
            dir,
        }
    }

    /// Writes the config file (and creates the directories it names);
    /// true when its text differs from what was there.
    pub fn write_config(&self, text: &str) -> Result<bool, RuntimeError> {
        for dir in [
            &self.dir,
            &self.root,
            &self.state,
            &self.cni_conf_dir,
            self.socket.parent().unwrap_or(&self.dir),
        ] {
            std::fs::create_dir_all(dir).map_err(|source| RuntimeError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let before = std::fs::read_to_string(&self.config).ok();
        std::fs::write(&self.config, text).map_err(|source| RuntimeError::Write {
            path: self.config.clone(),
            source,
        })?;
        Ok(before.as_deref() != Some(text))
    }
}

/// The socket path: in the containerd dir, or under `/run/skiff/` when that
/// path is too long for a unix socket.
fn socket_path(dir: &Path) -> PathBuf {
    let socket = dir.join("containerd.sock");
    if socket.as_os_str().len() <= MAX_SOCKET_PATH {
        return socket;
    }
    let digest = Sha256::digest(dir.as_os_str().as_encoded_bytes());
    PathBuf::from("/run/skiff")
        .join(hex::encode(&digest[..8]))
        .join("containerd.sock")
}

/// What the host allows, detected at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFeatures {
    pub overlay: bool,
    pub restrict_oom_score_adj: bool,
}

impl HostFeatures {
    /// The snapshotter containerd uses on this host.
    pub fn snapshotter(&self) -> &'static str {
        if self.overlay { "overlayfs" } else { "native" }
    }

    pub fn detect() -> Self {
        HostFeatures {
            overlay: std::fs::read_to_string("/proc/filesystems")
                .map(|text| text.lines().any(|l| l.trim_end().ends_with("\toverlay")))
                .unwrap_or(false),
            restrict_oom_score_adj: !can_lower_oom_score(),
        }
    }
}

/// Tries to lower this process's OOM score below zero (then puts it back):
/// some VMs refuse that even to root, and runc must then not try.
fn can_lower_oom_score() -> bool {
    const PATH: &str = "/proc/self/oom_score_adj";
    let Ok(original) = std::fs::read_to_string(PATH) else {
        return false;
    };
    let allowed = std::fs::write(PATH, "-1").is_ok();
    if allowed && let Err(e) = std::fs::write(PATH, original.trim()) {
        tracing::warn!(error = %e, "cannot restore this process's oom_score_adj");
    }
    allowed
}

/// The CNI plugin directory: Debian's, else the upstream default.
pub fn cni_bin_dir() -> Option<PathBuf> {
    ["/usr/lib/cni", "/opt/cni/bin"]
        .into_iter()
        .map(PathBuf::from)
        .find(|dir| dir.join("bridge").is_file() && dir.join("host-local").is_file())
}

/// containerd's config (version 2) for this layout and host, with the
/// private registries' credentials.
pub fn render(
    layout: &Layout,
    cni_bin: &Path,
    host: &HostFeatures,
    registries: Option<&super::registries::Registries>,
) -> String {
    let snapshotter = host.snapshotter();
    let cri = r#"plugins."io.containerd.grpc.v1.cri""#;
    let auth = registries
        .map(|r| super::registries::auth_sections(r, cri))
        .unwrap_or_default();
    format!(
        r#"# Generated by skiff at every agent start; edits are overwritten.
version = 2
root = {root:?}
state = {state:?}

[grpc]
  address = {socket:?}

[{cri}]
  sandbox_image = {SANDBOX_IMAGE:?}
  restrict_oom_score_adj = {restrict}
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true

[{cri}.containerd]
  snapshotter = {snapshotter:?}
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.cni]
  bin_dir = {cni_bin:?}
  conf_dir = {cni_conf:?}

[{cri}.registry]
  config_path = {certs_d:?}
{auth}"#,
        root = layout.root.display().to_string(),
        state = layout.state.display().to_string(),
        socket = layout.socket.display().to_string(),
        restrict = host.restrict_oom_score_adj,
        cni_bin = cni_bin.display().to_string(),
        cni_conf = layout.cni_conf_dir.display().to_string(),
        certs_d = layout.certs_d.display().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_data_dirs_move_the_socket_under_run() {
        let short = Layout::new(Path::new("/var/lib/skiff/agent"));
        assert_eq!(
            short.socket,
            PathBuf::from("/var/lib/skiff/agent/containerd/containerd.sock")
        );
        let long = Layout::new(&Path::new("/tmp").join("d".repeat(120)));
        assert!(long.socket.starts_with("/run/skiff"));
        assert!(long.socket.as_os_str().len() <= MAX_SOCKET_PATH);
    }

    #[test]
    fn the_config_follows_the_host() {
        let layout = Layout::new(Path::new("/var/lib/skiff/agent"));
        let text = render(
            &layout,
            Path::new("/usr/lib/cni"),
            &HostFeatures {
                overlay: false,
                restrict_oom_score_adj: true,
            },
            None,
        );
        assert!(text.contains(r#"snapshotter = "native""#));
        assert!(text.contains("restrict_oom_score_adj = true"));
        assert!(text.contains(r#"sandbox_image = "docker.io/skiff/pause:3.10""#));
        assert!(text.contains(r#"address = "/var/lib/skiff/agent/containerd/containerd.sock""#));
        assert!(text.contains(r#"config_path = "/var/lib/skiff/agent/etc/containerd/certs.d""#));
    }
}
