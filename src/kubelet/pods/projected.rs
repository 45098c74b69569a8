//! Projected volumes, as the service-account admission adds them
//! (`kube-api-access-*`) and users write them: a service-account token,
//! keys of ConfigMaps and Secrets and downward-API fields, written into
//! `<agent-dir>/pods/<uid>/volumes/kubernetes.io~projected/<volume>/` and
//! bind-mounted into the containers that mount the volume.
//!
//! The token is requested from `serviceaccounts/token` as this node, bound
//! to the pod, and rewritten at 80 % of its lifetime (at least once a day),
//! as upstream's kubelet token manager does. Files are replaced by rename,
//! so a reader never sees half a token. The other volume types are in
//! `volumes.rs`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount, Volume};
use kube::Api;
use kube::api::PostParams;

/// How long a refresh waits after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// Tokens are renewed at least this often.
const MAX_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// Why a projected volume could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("requesting a token for service account {0}: {1}")]
    Token(String, kube::Error),
    #[error("the token request for service account {0} returned no token")]
    NoToken(String),
    #[error("configmap {0}: {1}")]
    ConfigMap(String, kube::Error),
    #[error("secret {0}: {1}")]
    Secret(String, kube::Error),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("configmap {0} has no key {1}")]
    MissingKey(String, String),
    #[error("secret {0} has no key {1}")]
    MissingSecretKey(String, String),
    #[error("writing {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// A token file to keep fresh.
#[derive(Debug, Clone)]
pub struct TokenFile {
    namespace: String,
    service_account: String,
    request: TokenRequest,
    path: PathBuf,
    mode: u32,
}

/// The volumes set up for one pod.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Host directory of each prepared volume, by volume name.
    pub dirs: BTreeMap<String, PathBuf>,
    /// The token files in them, with when each needs renewing.
    pub tokens: Vec<(TokenFile, Duration)>,
}

/// The directory of a pod's volumes.
pub fn pod_dir(agent_dir: &Path, uid: &str) -> PathBuf {
    agent_dir.join("pods").join(uid)
}

/// Writes every projected volume of `pod`.
pub async fn prepare(
    client: &kube::Client,
    pod: &Pod,
    agent_dir: &Path,
) -> Result<Prepared, VolumeError> {
    let mut prepared = Prepared::default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    for volume in volumes.iter().filter(|v| v.projected.is_some()) {
        let dir = pod_dir(agent_dir, &uid)
            .join("volumes")
            .join("kubernetes.io~projected")
            .join(&volume.name);
        std::fs::create_dir_all(&dir).map_err(|e| VolumeError::Io(dir.clone(), e))?;
        project(client, pod, volume, &dir, &mut prepared).await?;
        prepared.dirs.insert(volume.name.clone(), dir);
    }
    Ok(prepared)
}

async fn project(
    client: &kube::Client,
    pod: &Pod,
    volume: &Volume,
    dir: &Path,
    prepared: &mut Prepared,
) -> Result<(), VolumeError> {
    let Some(projected) = &volume.projected else {
        return Ok(());
    };
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mode = projected.default_mode.map_or(0o644, |m| m as u32 & 0o777);
    for source in projected.sources.iter().flatten() {
        if let Some(token) = &source.service_account_token {
            let file = TokenFile {
                namespace: namespace.clone(),
                service_account: pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.service_account_name.clone())
                    .unwrap_or_else(|| "default".to_string()),
                request: TokenRequest {
                    spec: TokenRequestSpec {
                        audiences: token.audience.clone().into_iter().collect(),
                        expiration_seconds: Some(token.expiration_seconds.unwrap_or(3600)),
                        bound_object_ref: Some(BoundObjectReference {
                            api_version: Some("v1".into()),
                            kind: Some("Pod".into()),
                            name: pod.metadata.name.clone(),
                            uid: pod.metadata.uid.clone(),
                        }),
                    },
                    ..Default::default()
                },
                path: dir.join(&token.path),
                mode,
            };
            let next = renew(client, &file).await?;
            prepared.tokens.push((file, next));
        }
        if let Some(cm) = &source.config_map {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
            let found = api
                .get_opt(&cm.name)
                .await
                .map_err(|e| VolumeError::ConfigMap(cm.name.clone(), e))?;
            let data = found.and_then(|c| c.data).unwrap_or_default();
            let items: Vec<(String, String)> = match &cm.items {
                Some(items) => items
                    .iter()
                    .map(|i| (i.key.clone(), i.path.clone()))
                    .collect(),
                None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
            };
            for (key, path) in items {
                match data.get(&key) {
                    Some(value) => write_file(&dir.join(path), value.as_bytes(), mode)?,
                    None if cm.optional == Some(true) => {}
                    None => return Err(VolumeError::MissingKey(cm.name.clone(), key)),
                }
            }
        }
        if let Some(secret) = &source.secret {
            let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
            let found = api
                .get_opt(&secret.name)
                .await
                .map_err(|e| VolumeError::Secret(secret.name.clone(), e))?;
            let optional = secret.optional == Some(true);
            let data = match found {
                Some(s) => s.data.unwrap_or_default(),
                None if optional => Default::default(),
                None => return Err(VolumeError::SecretNotFound(secret.name.clone())),
            };
            let items: Vec<(String, String)> = match &secret.items {
                Some(items) => items
                    .iter()
                    .map(|i| (i.key.clone(), i.path.clone()))
                    .collect(),
                None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
            };
            for (key, path) in items {
                match data.get(&key) {
                    Some(value) => write_file(&dir.join(path), &value.0, mode)?,
                    None if optional => {}
                    None => {
                        return Err(VolumeError::MissingSecretKey(secret.name.clone(), key));
                    }
                }
            }
        }
        if let Some(downward) = &source.downward_api {
            let runtime = super::env::Runtime {
                pod_ip: pod
                    .status
                    .as_ref()
                    .and_then(|s| s.pod_ip.clone())
                    .unwrap_or_default(),
                ..Default::default()
            };
            for item in downward.items.iter().flatten() {
                let Some(field) = &item.field_ref else {
                    continue;
                };
                match super::env::field(pod, &field.field_path, &runtime) {
                    Ok(value) => write_file(&dir.join(&item.path), value.as_bytes(), mode)?,
                    Err(e) => tracing::debug!(error = %e, "downward API field not projected"),
                }
            }
        }
    }
    Ok(())
}

/// Requests a new token and writes it; returns when to renew it.
async fn renew(client: &kube::Client, file: &TokenFile) -> Result<Duration, VolumeError> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &file.namespace);
    let issued = jiff::Timestamp::now();
    let reply = api
        .create_token_request(&file.service_account, &PostParams::default(), &file.request)
        .await
        .map_err(|e| VolumeError::Token(file.service_account.clone(), e))?;
    let status = reply
        .status
        .ok_or_else(|| VolumeError::NoToken(file.service_account.clone()))?;
    write_file(&file.path, status.token.as_bytes(), file.mode)?;
    let lifetime = status.expiration_timestamp.0.duration_since(issued);
    Ok(refresh_after(lifetime.as_secs()))
}

/// When a token with `lifetime_seconds` left is renewed: at 80 % of it,
/// and at least daily.
pub fn refresh_after(lifetime_seconds: i64) -> Duration {
    let secs = u64::try_from(lifetime_seconds).unwrap_or(0) * 4 / 5;
    Duration::from_secs(secs).min(MAX_REFRESH)
}

/// Keeps renewing `file` until the task is aborted (the pod is gone).
pub async fn keep_fresh(client: kube::Client, file: TokenFile, mut next: Duration) {
    loop {
        tokio::time::sleep(next).await;
        next = match renew(&client, &file).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(path = %file.path.display(), error = %e, "cannot renew a service-account token; retrying");
                RETRY_AFTER
            }
        };
    }
}

/// Replaces `path` with `contents` by writing a sibling and renaming it.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), VolumeError> {
    let io = |e| VolumeError::Io(path.to_path_buf(), e);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    f.write_all(contents).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_at_four_fifths_of_their_life_and_daily() {
        assert_eq!(refresh_after(3607), Duration::from_secs(2885));
        assert_eq!(refresh_after(600), Duration::from_secs(480));
        assert_eq!(refresh_after(365 * 24 * 3600), MAX_REFRESH);
        assert_eq!(refresh_after(-5), Duration::ZERO);
    }

    #[test]
    fn files_are_replaced_whole_with_their_mode() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("token");
        write_file(&path, b"one", 0o644).expect("write");
        write_file(&path, b"two", 0o600).expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, ["token"], "no temporary file left behind");
    }
}
