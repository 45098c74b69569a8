//! The Node object this kubelet registers and keeps current: labels,
//! capacity, addresses, node info and conditions, read from the host and
//! the CRI runtime.
//!
//! The status is written only when something in it changed, or every
//! [`REPORT_EVERY`] (upstream's nodeStatusReportFrequency) so readers see it
//! is alive: the Lease is the frequent heartbeat, not the Node.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeAddress, NodeCondition, NodeStatus, NodeSystemInfo};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::KubeletSettings;
use crate::runtime::cri::RuntimeConditions;

/// How often the status is written even when nothing changed.
pub const REPORT_EVERY: Duration = Duration::from_secs(300);

/// The Kubernetes name of this machine's architecture.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The labels a new Node is created with: only labels NodeRestriction
/// lets a kubelet set (the server adds `node-role.kubernetes.io/` ones).
pub fn labels(settings: &KubeletSettings) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "kubernetes.io/hostname".to_string(),
            settings.node_name.clone(),
        ),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), arch().to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), arch().to_string()),
    ])
}

/// The status as observed now, with every timestamp left empty so two
/// observations compare equal when nothing changed.
pub fn observe(
    settings: &KubeletSettings,
    runtime: &RuntimeConditions,
    runtime_version: &str,
) -> NodeStatus {
    let capacity = capacity(settings);
    let ready = runtime.runtime_ready && runtime.network_ready;
    let (reason, message) = if ready {
        (
            "KubeletReady",
            "kubelet is posting ready status".to_string(),
        )
    } else {
        (
            "KubeletNotReady",
            format!("container runtime not ready: {}", runtime.message),
        )
    };
    let condition = |type_: &str, ok: bool, reason: &str, message: &str| NodeCondition {
        type_: type_.to_string(),
        status: if ok { "True" } else { "False" }.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        ..Default::default()
    };
    NodeStatus {
        allocatable: Some(capacity.clone()),
        capacity: Some(capacity),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".to_string(),
                address: settings.node_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".to_string(),
                address: settings.node_name.clone(),
            },
        ]),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition("Ready", ready, reason, &message),
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: arch().to_string(),
            operating_system: "linux".to_string(),
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            os_image: os_image(),
            machine_id: read_trimmed("/etc/machine-id"),
            system_uuid: read_trimmed("/sys/class/dmi/id/product_uuid"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            container_runtime_version: runtime_version.to_string(),
            kubelet_version: settings.version.clone(),
            kube_proxy_version: String::new(),
            ..Default::default()
        }),
        daemon_endpoints: Some(k8s_openapi::api::core::v1::NodeDaemonEndpoints {
            kubelet_endpoint: Some(k8s_openapi::api::core::v1::DaemonEndpoint {
                port: i32::from(settings.kubelet_port),
            }),
        }),
        ..Default::default()
    }
}

/// Stamps the condition times for writing: heartbeat now, transition now
/// unless the condition's status is what `previous` already had.
pub fn stamp(mut status: NodeStatus, previous: Option<&Node>) -> NodeStatus {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let old: Vec<NodeCondition> = previous
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for condition in status.conditions.iter_mut().flatten() {
        condition.last_heartbeat_time = Some(now.clone());
        condition.last_transition_time = old
            .iter()
            .find(|o| o.type_ == condition.type_ && o.status == condition.status)
            .and_then(|o| o.last_transition_time.clone())
            .or_else(|| Some(now.clone()));
    }
    status
}

fn capacity(settings: &KubeletSettings) -> BTreeMap<String, Quantity> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut capacity = BTreeMap::from([
        ("cpu".to_string(), Quantity(cpus.to_string())),
        ("pods".to_string(), Quantity("110".to_string())),
    ]);
    if let Some(kib) = mem_total_kib() {
        capacity.insert("memory".to_string(), Quantity(format!("{kib}Ki")));
    }
    if let Some(bytes) = disk_bytes(&settings.data_dir) {
        capacity.insert("ephemeral-storage".to_string(), Quantity(bytes.to_string()));
    }
    capacity
}

pub fn mem_total_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn disk_bytes(path: &std::path::Path) -> Option<u64> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stat a valid,
    // writable statvfs the call fills in.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_blocks as u64 * stat.f_frsize as u64)
}

fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".to_string())
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
