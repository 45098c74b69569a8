//! A pod's volumes on the host, under `<agent-dir>/pods/<uid>/volumes/`:
//! emptyDir (a directory, or tmpfs for `medium: Memory`), configMap, secret
//! and downwardAPI (written with [`atomic`], so a change of the source shows
//! up in running containers at once and whole, through the `..data`
//! symlink), hostPath (with its `type` checks) and persistentVolumeClaim
//! (the bound PersistentVolume's hostPath or local path). Projected volumes
//! are in `projected.rs`. [`teardown`] unmounts and removes everything.

pub mod atomic;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume,
};
use kube::Api;

use super::env;
use super::projected;

/// Why a volume could not be set up; shown as
/// `MountVolume.SetUp failed for volume "<name>" : <message>`.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    #[error("persistentvolumeclaim \"{0}\" not found")]
    ClaimNotFound(String),
    #[error("persistentvolumeclaim \"{0}\" is not bound")]
    ClaimNotBound(String),
    #[error("persistentvolume \"{0}\" is not a hostPath or local volume")]
    UnsupportedVolume(String),
    #[error("hostPath type check failed: {0} is not a {1}")]
    HostPathType(String, String),
    #[error("{0}")]
    Field(#[from] env::EnvError),
    #[error("{0}")]
    Projected(#[from] projected::VolumeError),
    #[error("reading {0}: {1}")]
    Api(String, String),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("mounting tmpfs at {0}: {1}")]
    Mount(PathBuf, std::io::Error),
}

/// The directory of a pod's volumes of one plugin.
fn plugin_dir(agent_dir: &Path, uid: &str, plugin: &str) -> PathBuf {
    projected::pod_dir(agent_dir, uid)
        .join("volumes")
        .join(format!("kubernetes.io~{plugin}"))
}

/// Sets up every non-projected volume of `pod`; returns the host path of
/// each by volume name.
pub async fn setup(
    client: &kube::Client,
    pod: &Pod,
    agent_dir: &Path,
    runtime: &env::Runtime,
) -> Result<BTreeMap<String, PathBuf>, (String, VolumeError)> {
    let mut dirs = BTreeMap::new();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let fs_group = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|s| s.fs_group);
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let named = |e: VolumeError| (volume.name.clone(), e);
        let path = if let Some(empty) = &volume.empty_dir {
            let dir = plugin_dir(agent_dir, &uid, "empty-dir").join(&volume.name);
            make_dir(&dir).map_err(named)?;
            if empty.medium.as_deref() == Some("Memory") {
                let size = empty.size_limit.as_ref().map(|q| q.0.clone());
                mount_tmpfs(&dir, size.as_deref()).map_err(named)?;
            }
            // World-writable as upstream's, so any user in the pod can use it.
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
            if let Some(gid) = fs_group {
                chown_group(&dir, gid);
            }
            dir
        } else if let Some(host) = &volume.host_path {
            host_path(&host.path, host.type_.as_deref().unwrap_or("")).map_err(named)?
        } else if let Some(claim) = &volume.persistent_volume_claim {
            claim_path(client, pod, &claim.claim_name)
                .await
                .map_err(named)?
        } else if volume.config_map.is_some()
            || volume.secret.is_some()
            || volume.downward_api.is_some()
        {
            refresh_one(client, pod, volume, agent_dir, runtime)
                .await
                .map_err(named)?
        } else {
            continue;
        };
        dirs.insert(volume.name.clone(), path);
    }
    Ok(dirs)
}

/// Rewrites the configMap, secret and downwardAPI volumes of `pod` from
/// their sources (only what changed is swapped in).
pub async fn refresh(client: &kube::Client, pod: &Pod, agent_dir: &Path, runtime: &env::Runtime) {
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if volume.config_map.is_none() && volume.secret.is_none() && volume.downward_api.is_none() {
            continue;
        }
        if let Err(e) = refresh_one(client, pod, volume, agent_dir, runtime).await {
            tracing::debug!(volume = %volume.name, error = %e, "cannot refresh a volume");
        }
    }
}

async fn refresh_one(
    client: &kube::Client,
    pod: &Pod,
    volume: &Volume,
    agent_dir: &Path,
    runtime: &env::Runtime,
) -> Result<PathBuf, VolumeError> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let (plugin, files) = if let Some(cm) = &volume.config_map {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
        let found = api
            .get_opt(&cm.name)
            .await
            .map_err(|e| VolumeError::Api(format!("configmap {}", cm.name), e.to_string()))?;
        let optional = cm.optional == Some(true);
        let data = match found {
            Some(c) => {
                let mut data: BTreeMap<String, Vec<u8>> = c
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                data.extend(
                    c.binary_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
                data
            }
            None if optional => BTreeMap::new(),
            None => return Err(VolumeError::ConfigMapNotFound(cm.name.clone())),
        };
        let files = select(&data, cm.items.as_deref(), cm.default_mode, optional)
            .map_err(VolumeError::ConfigMapKey)?;
        ("configmap", files)
    } else if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let found = api
            .get_opt(&name)
            .await
            .map_err(|e| VolumeError::Api(format!("secret {name}"), e.to_string()))?;
        let optional = secret.optional == Some(true);
        let data = match found {
            Some(s) => {
                let mut data: BTreeMap<String, Vec<u8>> = s
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                data.extend(
                    s.string_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes())),
                );
                data
            }
            None if optional => BTreeMap::new(),
            None => return Err(VolumeError::SecretNotFound(name)),
        };
        let files = select(
            &data,
            secret.items.as_deref(),
            secret.default_mode,
            optional,
        )
        .map_err(VolumeError::SecretKey)?;
        ("secret", files)
    } else if let Some(downward) = &volume.downward_api {
        let mode = mode_of(downward.default_mode);
        let mut files = BTreeMap::new();
        for item in downward.items.iter().flatten() {
            let value = if let Some(f) = &item.field_ref {
                env::field(pod, &f.field_path, runtime)?
            } else if let Some(r) = &item.resource_field_ref {
                let container = pod
                    .spec
                    .iter()
                    .flat_map(|s| s.containers.iter())
                    .find(|c| Some(&c.name) == r.container_name.as_ref())
                    .cloned()
                    .unwrap_or_default();
                let divisor = r.divisor.as_ref().map(|d| d.0.as_str());
                env::resource(&container, &r.resource, divisor, runtime)?
            } else {
                continue;
            };
            files.insert(
                item.path.clone(),
                (value.into_bytes(), item.mode.map_or(mode, mode_of_item)),
            );
        }
        ("downward-api", files)
    } else {
        return Err(VolumeError::UnsupportedVolume(volume.name.clone()));
    };
    let dir = plugin_dir(agent_dir, &uid, plugin).join(&volume.name);
    make_dir(&dir)?;
    atomic::write(&dir, &files).map_err(|e| VolumeError::Io(dir.clone(), e))?;
    Ok(dir)
}

fn mode_of(mode: Option<i32>) -> u32 {
    mode.map_or(0o644, |m| m as u32 & 0o777)
}

fn mode_of_item(mode: i32) -> u32 {
    mode as u32 & 0o777
}

/// The files of a configMap or secret volume: every key, or the `items`.
/// `Err` names a missing key of a non-optional source.
fn select(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<BTreeMap<String, (Vec<u8>, u32)>, String> {
    let mode = mode_of(default_mode);
    let Some(items) = items else {
        return Ok(data
            .iter()
            .map(|(k, v)| (k.clone(), (v.clone(), mode)))
            .collect());
    };
    let mut files = BTreeMap::new();
    for item in items {
        match data.get(&item.key) {
            Some(v) => {
                files.insert(
                    item.path.clone(),
                    (v.clone(), item.mode.map_or(mode, mode_of_item)),
                );
            }
            None if optional => {}
            None => return Err(item.key.clone()),
        }
    }
    Ok(files)
}

fn make_dir(dir: &Path) -> Result<(), VolumeError> {
    std::fs::create_dir_all(dir).map_err(|e| VolumeError::Io(dir.to_path_buf(), e))
}

fn chown_group(path: &Path, gid: i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: chown(2) on a NUL-terminated path we own; -1 keeps the owner.
    unsafe { libc::chown(c.as_ptr(), u32::MAX, gid as u32) };
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o2777));
}

/// Mounts a tmpfs at `dir` unless one is there already.
fn mount_tmpfs(dir: &Path, size: Option<&str>) -> Result<(), VolumeError> {
    use std::os::unix::ffi::OsStrExt;
    if mounts_under(dir).iter().any(|m| m == dir) {
        return Ok(());
    }
    let err = |e| VolumeError::Mount(dir.to_path_buf(), e);
    let target = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| err(std::io::Error::other(e)))?;
    let options = size
        .and_then(|s| crate::api::kinds::quantity::Quantity::parse(s).ok())
        .map(|q| format!("size={}", q.value()))
        .unwrap_or_default();
    let options = std::ffi::CString::new(options).map_err(|e| err(std::io::Error::other(e)))?;
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(err(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Mount points at or below `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    found
}

/// Unmounts and removes everything a pod's volumes put under the agent dir
/// (hostPath and claim directories are the user's and stay).
pub fn teardown(agent_dir: &Path, uid: &str) {
    use std::os::unix::ffi::OsStrExt;
    let dir = projected::pod_dir(agent_dir, uid);
    for mount in mounts_under(&dir) {
        if let Ok(c) = std::ffi::CString::new(mount.as_os_str().as_bytes()) {
            // SAFETY: umount2(2) with a NUL-terminated path.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %dir.display(), error = %e, "cannot remove a pod's volumes");
    }
}

/// Checks (or creates) a hostPath of `kind` as upstream's hostPath types.
fn host_path(path: &str, kind: &str) -> Result<PathBuf, VolumeError> {
    let p = PathBuf::from(path);
    let meta = std::fs::metadata(&p);
    let wrong = || VolumeError::HostPathType(path.to_string(), kind.to_string());
    match kind {
        "" => {}
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(&p).map_err(|e| VolumeError::Io(p.clone(), e))?;
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755));
            } else if !meta.as_ref().is_ok_and(|m| m.is_dir()) {
                return Err(wrong());
            }
        }
        "Directory" if !meta.as_ref().is_ok_and(|m| m.is_dir()) => return Err(wrong()),
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| VolumeError::Io(p.clone(), e))?;
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(|e| VolumeError::Io(p.clone(), e))?;
                let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644));
            } else if !meta.as_ref().is_ok_and(|m| m.is_file()) {
                return Err(wrong());
            }
        }
        "File" if !meta.as_ref().is_ok_and(|m| m.is_file()) => return Err(wrong()),
        "Socket" if !meta.as_ref().is_ok_and(|m| m.file_type().is_socket()) => {
            return Err(wrong());
        }
        "CharDevice" if !meta.as_ref().is_ok_and(|m| m.file_type().is_char_device()) => {
            return Err(wrong());
        }
        "BlockDevice" if !meta.as_ref().is_ok_and(|m| m.file_type().is_block_device()) => {
            return Err(wrong());
        }
        _ => {}
    }
    Ok(p)
}

/// The host directory behind a bound claim.
async fn claim_path(client: &kube::Client, pod: &Pod, claim: &str) -> Result<PathBuf, VolumeError> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let found = claims
        .get_opt(claim)
        .await
        .map_err(|e| VolumeError::Api(format!("persistentvolumeclaim {claim}"), e.to_string()))?
        .ok_or_else(|| VolumeError::ClaimNotFound(claim.to_string()))?;
    let volume = found
        .spec
        .and_then(|s| s.volume_name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| VolumeError::ClaimNotBound(claim.to_string()))?;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let pv = pvs
        .get(&volume)
        .await
        .map_err(|e| VolumeError::Api(format!("persistentvolume {volume}"), e.to_string()))?;
    let spec = pv.spec.unwrap_or_default();
    if let Some(host) = spec.host_path {
        return host_path(&host.path, host.type_.as_deref().unwrap_or(""));
    }
    if let Some(local) = spec.local {
        return host_path(&local.path, "Directory");
    }
    Err(VolumeError::UnsupportedVolume(volume))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_pick_keys_and_modes() {
        let data = BTreeMap::from([
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ]);
        let all = select(&data, None, Some(0o600), false).expect("all keys");
        assert_eq!(all["a"], (b"1".to_vec(), 0o600));
        let items = [KeyToPath {
            key: "b".into(),
            path: "dir/b.txt".into(),
            mode: Some(0o400),
        }];
        let picked = select(&data, Some(&items), None, false).expect("items");
        assert_eq!(picked.keys().collect::<Vec<_>>(), ["dir/b.txt"]);
        assert_eq!(picked["dir/b.txt"].1, 0o400);
        let missing = [KeyToPath {
            key: "c".into(),
            path: "c".into(),
            mode: None,
        }];
        assert_eq!(
            select(&data, Some(&missing), None, false),
            Err("c".to_string())
        );
        assert!(
            select(&data, Some(&missing), None, true)
                .expect("optional")
                .is_empty()
        );
    }

    #[test]
    fn host_path_types_are_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sub = dir.path().join("made");
        let s = sub.display().to_string();
        assert!(matches!(
            host_path(&s, "Directory"),
            Err(VolumeError::HostPathType(..))
        ));
        host_path(&s, "DirectoryOrCreate").expect("created");
        assert!(sub.is_dir());
        assert!(matches!(
            host_path(&s, "File"),
            Err(VolumeError::HostPathType(..))
        ));
        let file = dir.path().join("f").display().to_string();
        host_path(&file, "FileOrCreate").expect("file created");
        host_path(&file, "File").expect("a file");
    }
}
