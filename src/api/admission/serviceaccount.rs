//! The ServiceAccount admission plugin for new pods, as upstream's
//! `plugin/pkg/admission/serviceaccount`:
//!
//! * `spec.serviceAccountName` defaults to `default`;
//! * the service account must exist (403 otherwise; `default` is waited for
//!   up to about a second and a half, as the controller creates it right
//!   after its namespace);
//! * unless `automountServiceAccountToken` is false on the pod (or, when
//!   the pod does not say, on the service account), the pod gets a projected
//!   volume `kube-api-access-<5 random>` (a service-account token for 3607 s
//!   at `token`, `ca.crt` from the `kube-root-ca.crt` ConfigMap, the
//!   `namespace` from the downward API) mounted read-only at
//!   `/var/run/secrets/kubernetes.io/serviceaccount` in every container and
//!   init container that has nothing mounted there;
//! * the service account's `imagePullSecrets` are copied to a pod that has
//!   none.
//!
//! Mirror pods (static pods a kubelet reports) are left alone.

use std::time::Duration;

use serde_json::{Value, json};

use crate::api::handlers::{Core, store_error};
use crate::api::object;
use crate::api::registry::{KindInfo, lookup};
use crate::api::status::ApiStatus;

/// The service account a pod runs as when it names none.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The prefix of the token volume's name.
pub const VOLUME_PREFIX: &str = "kube-api-access-";
/// Where containers find the token, CA and namespace.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The annotation of mirror pods.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// How often, and how far apart, a missing `default` account is looked for.
const DEFAULT_ATTEMPTS: usize = 10;
const RETRY_INTERVAL: Duration = Duration::from_millis(150);

/// The projected volume source of the token volume.
pub fn token_volume_source() -> Value {
    json!({
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
    })
}

/// Admits a new pod.
pub async fn admit_pod(
    core: &Core,
    pods: &'static KindInfo,
    namespace: &str,
    pod: &mut Value,
) -> Result<(), ApiStatus> {
    let annotations = &pod["metadata"]["annotations"];
    if annotations.get(MIRROR_ANNOTATION).is_some() {
        return Ok(());
    }
    if !pod["spec"].is_object() {
        // Validation reports the missing spec.
        return Ok(());
    }
    let spec = &pod["spec"];
    let name = [
        spec["serviceAccountName"].as_str(),
        spec["serviceAccount"].as_str(),
    ]
    .into_iter()
    .flatten()
    .find(|n| !n.is_empty())
    .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
    .to_string();
    object::set_path(pod, &["spec", "serviceAccountName"], json!(name));

    let Some(sa) = service_account(core, namespace, &name).await? else {
        let pod_name = [
            object::meta_str(pod, "name"),
            object::meta_str(pod, "generateName"),
        ]
        .into_iter()
        .flatten()
        .find(|n| !n.is_empty())
        .unwrap_or("Unknown")
        .to_string();
        return Err(ApiStatus::forbidden(
            pods,
            &pod_name,
            &format!(
                "error looking up service account {namespace}/{name}: serviceaccount \"{name}\" not found"
            ),
        ));
    };
    let automount = pod["spec"]["automountServiceAccountToken"]
        .as_bool()
        .or_else(|| sa["automountServiceAccountToken"].as_bool())
        .unwrap_or(true);
    if automount {
        mount_token(pod);
    }
    let has_pull_secrets = pod["spec"]["imagePullSecrets"]
        .as_array()
        .is_some_and(|s| !s.is_empty());
    if let Some(secrets) = sa["imagePullSecrets"].as_array().filter(|s| !s.is_empty()) {
        if !has_pull_secrets {
            object::set_path(pod, &["spec", "imagePullSecrets"], json!(secrets));
        }
    }
    Ok(())
}

/// The service account `namespace/name`: from the watch cache, else from
/// the store (several times for `default`, which its controller may be
/// about to create).
async fn service_account(
    core: &Core,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, ApiStatus> {
    let kind = lookup("", "v1", "serviceaccounts")
        .ok_or_else(|| ApiStatus::internal("serviceaccounts missing from the kind table"))?;
    let key = kind.key(Some(namespace), name);
    if let Some(sa) = core.cache(kind)?.get(&key) {
        return Ok(Some((*sa).clone()));
    }
    let attempts = if name == DEFAULT_SERVICE_ACCOUNT {
        DEFAULT_ATTEMPTS
    } else {
        1
    };
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
        if let Some(kv) = core.store.get(&key, None).await.map_err(store_error)? {
            return object::decode(&kv).map(Some).map_err(ApiStatus::internal);
        }
    }
    Ok(None)
}

/// Adds the token volume and its mount (see the module docs).
fn mount_token(pod: &mut Value) {
    let existing = pod["spec"]["volumes"].as_array().and_then(|volumes| {
        volumes
            .iter()
            .filter_map(|v| v["name"].as_str())
            .find(|n| n.starts_with(VOLUME_PREFIX))
            .map(str::to_string)
    });
    let volume_name = existing
        .clone()
        .unwrap_or_else(|| object::generate_name(VOLUME_PREFIX));
    let mount = json!({"name": volume_name, "readOnly": true, "mountPath": MOUNT_PATH});
    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod["spec"][list].as_array_mut() else {
            continue;
        };
        for container in containers.iter_mut().filter(|c| c.is_object()) {
            let mounted = container["volumeMounts"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["mountPath"] == MOUNT_PATH));
            if mounted {
                continue;
            }
            match container["volumeMounts"].as_array_mut() {
                Some(mounts) => mounts.push(mount.clone()),
                None => container["volumeMounts"] = json!([mount.clone()]),
            }
            needs_volume = true;
        }
    }
    if existing.is_none() && needs_volume {
        let volume = json!({"name": volume_name, "projected": token_volume_source()});
        match pod["spec"]["volumes"].as_array_mut() {
            Some(volumes) => volumes.push(volume),
            None => pod["spec"]["volumes"] = json!([volume]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_mounts_one_new_token_volume() {
        let mut pod = json!({"spec": {
            "initContainers": [{"name": "i", "image": "x"}],
            "containers": [
                {"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "b", "image": "x"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }});
        mount_token(&mut pod);
        let volumes = pod["spec"]["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(volumes.len(), 2);
        let name = volumes[1]["name"].as_str().unwrap_or("").to_string();
        assert!(name.starts_with(VOLUME_PREFIX) && name.len() == VOLUME_PREFIX.len() + 5);
        assert_eq!(volumes[1]["projected"], token_volume_source());
        for (list, i) in [("initContainers", 0), ("containers", 0), ("containers", 1)] {
            let mounts = pod["spec"][list][i]["volumeMounts"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let last = mounts.last().cloned().unwrap_or_default();
            assert_eq!(
                last,
                json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH}),
                "{list}[{i}]"
            );
        }
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0]["name"],
            "data"
        );
    }

    #[test]
    fn a_container_with_its_own_mount_there_is_left_alone() {
        let own = json!({"name": "mine", "mountPath": MOUNT_PATH});
        let mut pod =
            json!({"spec": {"containers": [{"name": "a", "volumeMounts": [own.clone()]}]}});
        mount_token(&mut pod);
        assert_eq!(pod["spec"]["containers"][0]["volumeMounts"], json!([own]));
        assert!(
            pod["spec"]["volumes"].is_null(),
            "no volume when nothing needs it"
        );
    }

    #[test]
    fn an_existing_token_volume_is_reused() {
        let mut pod = json!({"spec": {
            "containers": [{"name": "a"}],
            "volumes": [{"name": "kube-api-access-abcde", "projected": {"sources": []}}],
        }});
        mount_token(&mut pod);
        assert_eq!(pod["spec"]["volumes"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-abcde"
        );
    }
}
