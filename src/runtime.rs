//! The container runtime of a node: containerd, launched and supervised by
//! skiff with a generated config (or an existing CRI socket given with
//! `--container-runtime-endpoint`), the CRI client the kubelet uses, and the
//! import of air-gapped image tarballs.
//!
//! containerd runs in its own process group and is left running when skiff
//! stops (as k3s does): containers survive a skiff restart, and a restarted
//! skiff reuses a containerd whose socket still answers.

pub mod config;
pub mod cri;
pub mod images;
pub mod registries;
pub mod supervisor;

use std::path::{Path, PathBuf};

pub use cri::Cri;

/// Why the node's container runtime is not available.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Registries(#[from] registries::RegistriesError),
    #[error(
        "`{binary}` is not installed (looked in PATH): install the Debian package `{package}` (apt-get install {package}), or point --container-runtime-endpoint at an existing CRI socket"
    )]
    Missing {
        binary: &'static str,
        package: &'static str,
    },
    #[error(
        "no CNI plugins found in /usr/lib/cni or /opt/cni/bin: install the Debian package `containernetworking-plugins`"
    )]
    NoCniPlugins,
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start containerd: {0}")]
    Spawn(std::io::Error),
    #[error("containerd did not open its socket {0} in time; see {1} for its log")]
    NotReady(PathBuf, PathBuf),
    #[error("cannot connect to the CRI socket {path}: {message}")]
    Connect { path: PathBuf, message: String },
    #[error("CRI call {call} failed: {status}")]
    Call {
        call: &'static str,
        status: Box<tonic::Status>,
    },
    #[error("importing image tarball {path}: {message}")]
    Import { path: PathBuf, message: String },
}

/// What the runtime needs to know about its node.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// `<data-dir>/agent`.
    pub agent_dir: PathBuf,
    /// An existing CRI socket to use instead of launching containerd.
    pub endpoint: Option<PathBuf>,
    /// The private registries file (`--private-registry`; absent: none).
    pub private_registry: PathBuf,
    /// Pull through the mirrors only, never from the registry itself
    /// (`--disable-default-registry-endpoint`).
    pub disable_default_registry_endpoint: bool,
}

/// A running container runtime: its CRI socket.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub socket: PathBuf,
    /// Where skiff writes the pod network's CNI config for this runtime.
    pub cni_conf_dir: PathBuf,
    /// Whether skiff launched (and supervises) this containerd.
    pub managed: bool,
}

/// Starts (or finds) the container runtime and returns its socket once it
/// answers CRI calls.
pub async fn start(settings: &RuntimeSettings) -> Result<Runtime, RuntimeError> {
    if let Some(endpoint) = &settings.endpoint {
        let socket = endpoint_path(endpoint);
        Cri::connect(&socket).await?.version().await?;
        return Ok(Runtime {
            socket,
            cni_conf_dir: settings.agent_dir.join("etc").join("cni").join("net.d"),
            managed: false,
        });
    }
    require("containerd", "containerd")?;
    require("runc", "runc")?;
    require("ctr", "containerd")?;
    let cni_bin = config::cni_bin_dir().ok_or(RuntimeError::NoCniPlugins)?;
    let layout = config::Layout::new(&settings.agent_dir);
    let host = config::HostFeatures::detect();
    let registries = registries::load(&settings.private_registry)?;
    let hosts = registries
        .as_ref()
        .map(|r| registries::hosts_files(r, settings.disable_default_registry_endpoint))
        .unwrap_or_default();
    registries::write_hosts(&layout.certs_d, &hosts)?;
    if registries.is_some() {
        tracing::info!(path = %settings.private_registry.display(), registries = hosts.len(), "private registries configured");
    }
    let text = config::render(&layout, &cni_bin, &host, registries.as_ref());
    let changed = layout.write_config(&text)?;
    let socket = layout.socket.clone();
    let cni_conf_dir = layout.cni_conf_dir.clone();
    supervisor::ensure_running(layout, changed).await?;
    let images = settings.agent_dir.join("images");
    let state = settings.agent_dir.join("images-imported.json");
    images::import_all(&images, &state, &socket, host.snapshotter()).await?;
    Ok(Runtime {
        socket,
        cni_conf_dir,
        managed: true,
    })
}

/// `unix:///run/x.sock` or a bare path → the path.
fn endpoint_path(endpoint: &Path) -> PathBuf {
    let text = endpoint.to_string_lossy();
    match text.strip_prefix("unix://") {
        Some(rest) => PathBuf::from(rest),
        None => endpoint.to_path_buf(),
    }
}

fn require(binary: &'static str, package: &'static str) -> Result<(), RuntimeError> {
    if find_in_path(binary).is_some() {
        Ok(())
    } else {
        Err(RuntimeError::Missing { binary, package })
    }
}

/// The full path of an executable found in `PATH`.
pub fn find_in_path(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_its_package() {
        let message = RuntimeError::Missing {
            binary: "runc",
            package: "runc",
        }
        .to_string();
        assert!(message.contains("apt-get install runc"), "{message}");
        assert!(require("surely-not-a-binary-skiff", "x").is_err());
    }

    #[test]
    fn endpoints_accept_unix_urls_and_paths() {
        assert_eq!(
            endpoint_path(Path::new("unix:///run/containerd/containerd.sock")),
            PathBuf::from("/run/containerd/containerd.sock")
        );
        assert_eq!(
            endpoint_path(Path::new("/run/x.sock")),
            PathBuf::from("/run/x.sock")
        );
    }
}
