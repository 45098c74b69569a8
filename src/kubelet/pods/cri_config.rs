//! Translates a Pod and its containers into CRI sandbox and container
//! configs: metadata and the labels that tie runtime objects to the pod,
//! log paths (`<container>/<restartCount>.log`), command, args, env,
//! working directory, the mounts of the volumes the kubelet has set up,
//! host networking and host ports, security contexts and resources.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use k8s_cri::v1::{
    Capability, ContainerConfig, ContainerMetadata, ImageSpec, Int64Value, KeyValue,
    LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, PortMapping,
};
use k8s_openapi::api::core::v1::{Container, Pod};

use super::POD_UID_LABEL;
use crate::api::kinds::quantity::Quantity;

/// Each container gets its own PID namespace (upstream's default).
const NAMESPACE_MODE_CONTAINER: i32 = 1;
/// A namespace shared with the host.
const NAMESPACE_MODE_NODE: i32 = 2;
/// The annotation holding a container's restart count (upstream's name).
pub const RESTART_COUNT_ANNOTATION: &str = "io.kubernetes.container.restartCount";
/// CFS period the CPU quota is a share of (upstream's, 100 ms).
const CPU_PERIOD: i64 = 100_000;

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

fn host_network(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.host_network) == Some(true)
}

fn namespaces(pod: &Pod) -> NamespaceOption {
    let spec = pod.spec.clone().unwrap_or_default();
    let node = |on: Option<bool>| {
        if on == Some(true) {
            NAMESPACE_MODE_NODE
        } else {
            0
        }
    };
    NamespaceOption {
        network: node(spec.host_network),
        ipc: node(spec.host_ipc),
        pid: if spec.host_pid == Some(true) {
            NAMESPACE_MODE_NODE
        } else {
            NAMESPACE_MODE_CONTAINER
        },
        ..Default::default()
    }
}

/// The hostPorts of the pod's containers (`hostNetwork` pods use the
/// host's ports directly and get none).
fn port_mappings(pod: &Pod) -> Vec<PortMapping> {
    if host_network(pod) {
        return Vec::new();
    }
    let spec = pod.spec.clone().unwrap_or_default();
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.is_some_and(|h| h > 0))
        .map(|p| PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => 1,
                Some("SCTP") => 2,
                _ => 0,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or_default(),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect()
}

fn int64(v: Option<i64>) -> Option<Int64Value> {
    v.map(|value| Int64Value { value })
}

/// The sandbox config of `pod`; its logs go under `<agent_dir>/pod-logs/`.
pub fn sandbox(pod: &Pod, agent_dir: &Path) -> PodSandboxConfig {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let log_directory = agent_dir
        .join("pod-logs")
        .join(format!("{namespace}_{name}_{uid}"));
    let spec = pod.spec.clone().unwrap_or_default();
    let security = spec.security_context.clone().unwrap_or_default();
    // A hostNetwork pod shares the host's UTS namespace: the runtime must
    // not set a hostname (upstream leaves it empty too).
    let hostname = if host_network(pod) {
        String::new()
    } else {
        spec.hostname.clone().unwrap_or(name.clone())
    };
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name,
            uid,
            namespace,
            attempt: 0,
        }),
        hostname,
        log_directory: log_directory.display().to_string(),
        labels: pod_labels(pod),
        port_mappings: port_mappings(pod),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces(pod)),
                run_as_user: int64(security.run_as_user),
                run_as_group: int64(security.run_as_group),
                supplemental_groups: supplemental_groups(pod),
                ..Default::default()
            }),
            sysctls: security
                .sysctls
                .iter()
                .flatten()
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod's fsGroup and supplementalGroups, which every container joins.
fn supplemental_groups(pod: &Pod) -> Vec<i64> {
    let security = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let mut groups: Vec<i64> = security.fs_group.into_iter().collect();
    groups.extend(security.supplemental_groups.iter().flatten());
    groups.dedup();
    groups
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

/// What a container's config is made of besides its spec.
#[derive(Debug, Default)]
pub struct Extra<'a> {
    /// The pod's prepared volumes: host path by volume name.
    pub volumes: Option<&'a BTreeMap<String, PathBuf>>,
    /// The resolved environment, in order.
    pub env: Vec<(String, String)>,
    /// How often the container was restarted before (its attempt).
    pub restart_count: u32,
    /// The host file mounted at the termination message path.
    pub termination_file: Option<PathBuf>,
}

/// The container config of `container` in `pod`.
pub fn container(pod: &Pod, container: &Container, extra: &Extra<'_>) -> ContainerConfig {
    let mut labels = pod_labels(pod);
    labels.insert(
        "io.kubernetes.container.name".to_string(),
        container.name.clone(),
    );
    let envs = extra
        .env
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
    let mut mounts = extra
        .volumes
        .map(|v| mounts(container, v))
        .unwrap_or_default();
    if let Some(file) = &extra.termination_file {
        mounts.push(Mount {
            container_path: container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".to_string()),
            host_path: file.display().to_string(),
            ..Default::default()
        });
    }
    let expand = |items: &Option<Vec<String>>| {
        super::env::expand_all(items.as_deref().unwrap_or_default(), &extra.env)
    };
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: container.name.clone(),
            attempt: extra.restart_count,
        }),
        image: Some(ImageSpec {
            image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: expand(&container.command),
        args: expand(&container.args),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs,
        mounts,
        labels,
        annotations: HashMap::from([(
            RESTART_COUNT_ANNOTATION.to_string(),
            extra.restart_count.to_string(),
        )]),
        log_path: format!("{}/{}.log", container.name, extra.restart_count),
        stdin: container.stdin == Some(true),
        stdin_once: container.stdin_once == Some(true),
        tty: container.tty == Some(true),
        linux: Some(LinuxContainerConfig {
            security_context: Some(security_context(pod, container)),
            resources: Some(resources(container)),
        }),
        ..Default::default()
    }
}

/// The container's securityContext over the pod's, as CRI wants it.
fn security_context(pod: &Pod, container: &Container) -> LinuxContainerSecurityContext {
    let pod_security = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let security = container.security_context.clone().unwrap_or_default();
    let privileged = security.privileged == Some(true);
    let capabilities = security.capabilities.map(|c| Capability {
        add_capabilities: c.add.unwrap_or_default(),
        drop_capabilities: c.drop.unwrap_or_default(),
        add_ambient_capabilities: Vec::new(),
    });
    LinuxContainerSecurityContext {
        capabilities,
        privileged,
        namespace_options: Some(namespaces(pod)),
        run_as_user: int64(security.run_as_user.or(pod_security.run_as_user)),
        run_as_group: int64(security.run_as_group.or(pod_security.run_as_group)),
        readonly_rootfs: security.read_only_root_filesystem == Some(true),
        supplemental_groups: supplemental_groups(pod),
        // Upstream: no new privileges unless escalation is allowed (it is by
        // default) or the container is privileged.
        no_new_privs: security.allow_privilege_escalation == Some(false) && !privileged,
        ..Default::default()
    }
}

/// CPU shares and quota and the memory limit from requests and limits, as
/// upstream's kuberuntime computes them.
pub fn resources(container: &Container) -> LinuxContainerResources {
    let resources = container.resources.clone().unwrap_or_default();
    let get = |map: &Option<
        BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               name: &str| {
        map.as_ref()
            .and_then(|m| m.get(name))
            .and_then(|q| Quantity::parse(&q.0).ok())
    };
    let cpu_limit = get(&resources.limits, "cpu");
    let cpu_request = get(&resources.requests, "cpu").or(cpu_limit);
    let memory_limit = get(&resources.limits, "memory");
    // 2 shares (the kernel's minimum) for a container that requests nothing.
    let shares = cpu_request.map_or(2, |q| (q.millis() * 1024 / 1000).max(2) as i64);
    let (quota, period) = match cpu_limit {
        Some(q) if q.millis() > 0 => (
            ((q.millis() as i64) * CPU_PERIOD / 1000).max(1000),
            CPU_PERIOD,
        ),
        _ => (0, 0),
    };
    LinuxContainerResources {
        cpu_shares: shares,
        cpu_quota: quota,
        cpu_period: period,
        memory_limit_in_bytes: memory_limit
            .map_or(0, |q| i64::try_from(q.value()).unwrap_or(i64::MAX)),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        Capabilities, ContainerPort, PodSecurityContext, PodSpec, ResourceRequirements,
        SecurityContext,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;

    use super::*;

    #[test]
    fn resources_become_shares_quota_and_a_memory_limit() {
        let c = Container {
            resources: Some(ResourceRequirements {
                requests: Some([("cpu".to_string(), Q("250m".into()))].into()),
                limits: Some(
                    [
                        ("cpu".to_string(), Q("500m".into())),
                        ("memory".to_string(), Q("64Mi".into())),
                    ]
                    .into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = resources(&c);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!((r.cpu_quota, r.cpu_period), (50_000, 100_000));
        assert_eq!(r.memory_limit_in_bytes, 64 * 1024 * 1024);
        let none = resources(&Container::default());
        assert_eq!(
            (none.cpu_shares, none.cpu_quota, none.memory_limit_in_bytes),
            (2, 0, 0)
        );
    }

    #[test]
    fn security_and_host_settings_reach_the_runtime() {
        let pod = Pod {
            spec: Some(PodSpec {
                host_network: Some(true),
                security_context: Some(PodSecurityContext {
                    run_as_user: Some(1000),
                    fs_group: Some(2000),
                    supplemental_groups: Some(vec![3000]),
                    ..Default::default()
                }),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(vec![ContainerPort {
                        container_port: 80,
                        host_port: Some(8080),
                        ..Default::default()
                    }]),
                    security_context: Some(SecurityContext {
                        run_as_group: Some(10),
                        capabilities: Some(Capabilities {
                            add: Some(vec!["NET_ADMIN".into()]),
                            drop: Some(vec!["ALL".into()]),
                        }),
                        read_only_root_filesystem: Some(true),
                        allow_privilege_escalation: Some(false),
                        ..Default::default()
                    }),
                    env: None,
                    command: Some(vec!["echo".into(), "$(WHO)".into()]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = &pod.spec.as_ref().expect("spec").containers[0];
        let config = container(
            &pod,
            c,
            &Extra {
                env: vec![("WHO".into(), "world".into())],
                restart_count: 3,
                ..Default::default()
            },
        );
        assert_eq!(config.command, ["echo", "world"]);
        assert_eq!(config.log_path, "c/3.log");
        assert_eq!(config.metadata.as_ref().map(|m| m.attempt), Some(3));
        let security = config
            .linux
            .and_then(|l| l.security_context)
            .expect("security");
        assert_eq!(security.run_as_user.map(|v| v.value), Some(1000));
        assert_eq!(security.run_as_group.map(|v| v.value), Some(10));
        assert_eq!(security.supplemental_groups, [2000, 3000]);
        assert!(security.readonly_rootfs && security.no_new_privs);
        assert_eq!(
            security.namespace_options.map(|n| n.network),
            Some(NAMESPACE_MODE_NODE)
        );
        let caps = security.capabilities.expect("capabilities");
        assert_eq!(
            (caps.add_capabilities, caps.drop_capabilities),
            (vec!["NET_ADMIN".to_string()], vec!["ALL".to_string()])
        );
        let sandbox = sandbox(&pod, Path::new("/agent"));
        assert!(
            sandbox.port_mappings.is_empty(),
            "hostNetwork uses host ports directly"
        );
        let mut bridged = pod.clone();
        if let Some(spec) = bridged.spec.as_mut() {
            spec.host_network = None;
        }
        let mappings = super::sandbox(&bridged, Path::new("/agent")).port_mappings;
        assert_eq!(
            (mappings[0].container_port, mappings[0].host_port),
            (80, 8080)
        );
    }
}
