//! A pod's status computed from what the runtime reports: phase,
//! conditions, container statuses, pod and host IPs, QoS class.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_cri::v1::ContainerStatus as CriStatus;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Waiting;

/// CRI container states.
const RUNNING: i32 = 1;
const EXITED: i32 = 2;

/// What the runtime says about a pod.
#[derive(Debug, Default)]
pub struct Observed {
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    /// Latest CRI status of each container, by container name.
    pub containers: BTreeMap<String, CriStatus>,
}

/// A CRI timestamp (nanoseconds) at the API's precision (whole seconds), so
/// a status read back compares equal to the one computed.
fn time(nanos: i64) -> Option<Time> {
    (nanos > 0)
        .then(|| k8s_openapi::jiff::Timestamp::from_second(nanos / 1_000_000_000).ok())
        .flatten()
        .map(Time)
}

fn now() -> Time {
    Time(
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second())
            .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now()),
    )
}

/// The status to write for `pod`, keeping what must not change (start time,
/// condition transition times).
pub fn compute(
    pod: &Pod,
    observed: &Observed,
    waiting: &BTreeMap<String, Waiting>,
    host_ip: IpAddr,
) -> PodStatus {
    let previous = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let mut statuses = Vec::new();
    let (mut running, mut succeeded, mut failed) = (0, 0, 0);
    for container in &spec.containers {
        let cri = observed.containers.get(&container.name);
        let state = match cri {
            Some(s) if s.state == RUNNING => {
                running += 1;
                ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: time(s.started_at),
                    }),
                    ..Default::default()
                }
            }
            Some(s) if s.state == EXITED => {
                if s.exit_code == 0 {
                    succeeded += 1;
                } else {
                    failed += 1;
                }
                ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: s.exit_code,
                        reason: Some(if s.reason.is_empty() {
                            if s.exit_code == 0 {
                                "Completed"
                            } else {
                                "Error"
                            }
                            .to_string()
                        } else {
                            s.reason.clone()
                        }),
                        message: (!s.message.is_empty()).then(|| s.message.clone()),
                        started_at: time(s.started_at),
                        finished_at: time(s.finished_at),
                        container_id: Some(format!("containerd://{}", s.id)),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            }
            _ => {
                let why = waiting.get(&container.name);
                ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(
                            why.map_or("ContainerCreating".to_string(), |w| w.reason.clone()),
                        ),
                        message: why.map(|w| w.message.clone()),
                    }),
                    ..Default::default()
                }
            }
        };
        let is_running = state.running.is_some();
        statuses.push(ContainerStatus {
            name: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
            image_id: cri.map(|s| s.image_ref.clone()).unwrap_or_default(),
            container_id: cri.map(|s| format!("containerd://{}", s.id)),
            ready: is_running,
            started: Some(is_running),
            restart_count: 0,
            state: Some(state),
            ..Default::default()
        });
    }
    let total = spec.containers.len();
    let restart = spec.restart_policy.as_deref().unwrap_or("Always");
    let all_exited = total > 0 && succeeded + failed == total;
    // Under Always (and OnFailure after a failure) exited containers are due
    // a restart, so the pod is not over.
    let phase = if all_exited && restart != "Always" && succeeded == total {
        "Succeeded"
    } else if all_exited && restart == "Never" {
        "Failed"
    } else if running > 0 || all_exited {
        "Running"
    } else {
        "Pending"
    };
    let all_ready = total > 0 && running == total;
    let conditions = [
        ("PodReadyToStartContainers", observed.sandbox_ready),
        ("Initialized", true),
        ("Ready", all_ready),
        ("ContainersReady", all_ready),
        ("PodScheduled", true),
    ]
    .into_iter()
    .map(|(type_, ok)| {
        let status = if ok { "True" } else { "False" }.to_string();
        let kept = previous
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone());
        PodCondition {
            type_: type_.to_string(),
            status,
            last_transition_time: kept.or_else(|| Some(now())),
            ..Default::default()
        }
    })
    .collect();
    let pod_ip = observed.pod_ip.clone().or(previous.pod_ip.clone());
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        container_statuses: Some(statuses),
        host_ip: Some(host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: host_ip.to_string(),
        }]),
        pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        pod_ip,
        start_time: previous.start_time.or_else(|| Some(now())),
        qos_class: Some(qos_class(pod).to_string()),
        ..Default::default()
    }
}

/// Guaranteed when every container limits cpu and memory with requests
/// equal to the limits, BestEffort when none asks for anything.
pub fn qos_class(pod: &Pod) -> &'static str {
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let resources = c.resources.clone().unwrap_or_default();
        let limits = resources.limits.unwrap_or_default();
        let requests = resources.requests.unwrap_or_default();
        any |= !limits.is_empty() || !requests.is_empty();
        for resource in ["cpu", "memory"] {
            let limit = limits.get(resource);
            let request = requests.get(resource).or(limit);
            guaranteed &= limit.is_some() && request == limit;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    use super::*;

    fn pod(restart: &str, resources: Option<ResourceRequirements>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(restart.to_string()),
                containers: vec![Container {
                    name: "main".to_string(),
                    image: Some("busybox".to_string()),
                    resources,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn exited(code: i32) -> Observed {
        Observed {
            sandbox_ready: true,
            pod_ip: Some("10.42.0.5".to_string()),
            containers: [(
                "main".to_string(),
                CriStatus {
                    id: "abc".to_string(),
                    state: EXITED,
                    exit_code: code,
                    ..Default::default()
                },
            )]
            .into(),
        }
    }

    #[test]
    fn exits_under_restart_policy_never_end_the_pod() {
        let host: IpAddr = "192.0.2.1".parse().expect("ip");
        let none = BTreeMap::new();
        let failed = compute(&pod("Never", None), &exited(3), &none, host);
        assert_eq!(failed.phase.as_deref(), Some("Failed"));
        let succeeded = compute(&pod("Never", None), &exited(0), &none, host);
        assert_eq!(succeeded.phase.as_deref(), Some("Succeeded"));
        assert_eq!(succeeded.pod_ip.as_deref(), Some("10.42.0.5"));
        let always = compute(&pod("Always", None), &exited(0), &none, host);
        assert_eq!(always.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn a_container_that_cannot_start_says_why() {
        let host: IpAddr = "192.0.2.1".parse().expect("ip");
        let waiting = BTreeMap::from([(
            "main".to_string(),
            Waiting {
                reason: "ErrImageNeverPull".to_string(),
                message: "not present".to_string(),
            },
        )]);
        let status = compute(&pod("Always", None), &Observed::default(), &waiting, host);
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let state = status.container_statuses.expect("statuses")[0]
            .state
            .clone()
            .expect("a state");
        assert_eq!(
            state.waiting.and_then(|w| w.reason).as_deref(),
            Some("ErrImageNeverPull")
        );
    }

    #[test]
    fn qos_classes_follow_requests_and_limits() {
        let q = |s: &str| Quantity(s.to_string());
        let both = [
            ("cpu".to_string(), q("1")),
            ("memory".to_string(), q("1Gi")),
        ];
        assert_eq!(qos_class(&pod("Always", None)), "BestEffort");
        let guaranteed = ResourceRequirements {
            limits: Some(both.clone().into()),
            ..Default::default()
        };
        assert_eq!(qos_class(&pod("Always", Some(guaranteed))), "Guaranteed");
        let burstable = ResourceRequirements {
            requests: Some([("cpu".to_string(), q("100m"))].into()),
            ..Default::default()
        };
        assert_eq!(qos_class(&pod("Always", Some(burstable))), "Burstable");
    }
}
