//! Translates a Pod and its containers into CRI sandbox and container
//! configs: metadata and the labels that tie runtime objects to the pod,
//! log paths, command, args, env, working directory and the mounts of the
//! volumes the kubelet has set up.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ImageSpec, KeyValue, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount,
    NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
};
use k8s_openapi::api::core::v1::{Container, Pod};

use super::POD_UID_LABEL;

/// Each container gets its own PID namespace (upstream's default).
const NAMESPACE_MODE_CONTAINER: i32 = 1;

fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    HashMap::from([
        (
            "io.kubernetes.pod.name".to_string(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        (
            "io.kubernetes.pod.namespace".to_string(),
            pod.metadata.namespace.clone().unwrap_or_default(),
        ),
        (
            POD_UID_LABEL.to_string(),
            pod.metadata.uid.clone().unwrap_or_default(),
        ),
    ])
}

fn namespaces() -> NamespaceOption {
    NamespaceOption {
        pid: NAMESPACE_MODE_CONTAINER,
        ..Default::default()
    }
}

/// The sandbox config of `pod`; its logs go under `<agent_dir>/pod-logs/`.
pub fn sandbox(pod: &Pod, agent_dir: &Path) -> PodSandboxConfig {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let log_directory = agent_dir
        .join("pod-logs")
        .join(format!("{namespace}_{name}_{uid}"));
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.clone(),
            uid,
            namespace,
            attempt: 0,
        }),
        hostname: pod
            .spec
            .as_ref()
            .and_then(|s| s.hostname.clone())
            .unwrap_or(name),
        log_directory: log_directory.display().to_string(),
        labels: pod_labels(pod),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Bind mounts of the volumes in `volumes` (host directory by volume name)
/// that `container` mounts; mounts of other volumes, and `subPath` mounts,
/// are not set up yet.
fn mounts(container: &Container, volumes: &BTreeMap<String, PathBuf>) -> Vec<Mount> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| m.sub_path.as_deref().unwrap_or("").is_empty())
        .filter_map(|m| {
            let host = volumes.get(&m.name)?;
            Some(Mount {
                container_path: m.mount_path.clone(),
                host_path: host.display().to_string(),
                readonly: m.read_only.unwrap_or(false),
                ..Default::default()
            })
        })
        .collect()
}

/// The container config of `container` in `pod`; `volumes` are the host
/// directories of the pod's prepared volumes.
pub fn container(
    pod: &Pod,
    container: &Container,
    volumes: &BTreeMap<String, PathBuf>,
) -> ContainerConfig {
    let mut labels = pod_labels(pod);
    labels.insert(
        "io.kubernetes.container.name".to_string(),
        container.name.clone(),
    );
    let envs = container
        .env
        .iter()
        .flatten()
        .filter_map(|e| {
            e.value.as_ref().map(|value| KeyValue {
                key: e.name.clone(),
                value: value.clone(),
            })
        })
        .collect();
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: container.name.clone(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs,
        mounts: mounts(container, volumes),
        labels,
        log_path: format!("{}/0.log", container.name),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
