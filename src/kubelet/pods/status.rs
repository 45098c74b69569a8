//! A pod's status computed from what the runtime reports and what the pod
//! worker decided: phase (upstream's `getPhase`), conditions, init and app
//! container statuses (state, lastState, restartCount, ready, started),
//! pod and host IPs, QoS class.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_cri::v1::ContainerStatus as CriStatus;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::Waiting;

/// CRI container states.
pub const RUNNING: i32 = 1;
pub const EXITED: i32 = 2;

/// What is known about one container of the pod.
#[derive(Debug, Default, Clone)]
pub struct View {
    /// The newest runtime container of this name.
    pub current: Option<CriStatus>,
    /// The newest exited one before it.
    pub previous: Option<CriStatus>,
    /// Why it is not running, when the worker knows better than the runtime.
    pub waiting: Option<Waiting>,
    pub restart_count: i32,
    pub started: bool,
    pub ready: bool,
    /// Termination messages of `current` and `previous`.
    pub message: Option<String>,
    pub previous_message: Option<String>,
}

/// What the runtime says about a pod.
#[derive(Debug, Default)]
pub struct Observed {
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    /// By container name.
    pub init: BTreeMap<String, View>,
    pub containers: BTreeMap<String, View>,
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

fn terminated(s: &CriStatus, message: Option<&String>) -> ContainerStateTerminated {
    let reason = match s.reason.as_str() {
        "" if s.exit_code == 0 => "Completed".to_string(),
        "" => "Error".to_string(),
        other => other.to_string(),
    };
    ContainerStateTerminated {
        exit_code: s.exit_code,
        reason: Some(reason),
        message: message
            .cloned()
            .or_else(|| (!s.message.is_empty()).then(|| s.message.clone())),
        started_at: time(s.started_at),
        finished_at: time(s.finished_at),
        container_id: Some(format!("containerd://{}", s.id)),
        ..Default::default()
    }
}

/// The API status of one container; `default_reason` is its waiting reason
/// before it was ever created.
fn container_status(c: &Container, view: Option<&View>, default_reason: &str) -> ContainerStatus {
    let view = view.cloned().unwrap_or_default();
    let current = view.current.as_ref();
    let waiting = |w: Option<&Waiting>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(w.map_or(default_reason.to_string(), |w| w.reason.clone())),
            message: w.map(|w| w.message.clone()).filter(|m| !m.is_empty()),
        }),
        ..Default::default()
    };
    let previous = view
        .previous
        .as_ref()
        .map(|p| terminated(p, view.previous_message.as_ref()));
    let (state, last) = match current {
        Some(s) if s.state == RUNNING => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: time(s.started_at),
                }),
                ..Default::default()
            },
            previous,
        ),
        Some(s) if s.state == EXITED => match &view.waiting {
            // Waiting for a restart: the exit is the last state.
            Some(w) => (waiting(Some(w)), Some(terminated(s, view.message.as_ref()))),
            None => (
                ContainerState {
                    terminated: Some(terminated(s, view.message.as_ref())),
                    ..Default::default()
                },
                previous,
            ),
        },
        _ => (waiting(view.waiting.as_ref()), previous),
    };
    let running = state.running.is_some();
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: current.map(|s| s.image_ref.clone()).unwrap_or_default(),
        container_id: current.map(|s| format!("containerd://{}", s.id)),
        ready: running && view.ready,
        started: Some(running && view.started),
        restart_count: view.restart_count,
        state: Some(state),
        last_state: last.map(|t| ContainerState {
            terminated: Some(t),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Whether an init container has done its part: exited 0, or (a sidecar)
/// started.
fn init_done(c: &Container, view: Option<&View>) -> bool {
    let Some(current) = view.and_then(|v| v.current.as_ref()) else {
        return false;
    };
    if is_sidecar(c) {
        return current.state == RUNNING && view.is_some_and(|v| v.started);
    }
    current.state == EXITED && current.exit_code == 0
}

/// The status to write for `pod`, keeping what must not change (start time,
/// condition transition times).
pub fn compute(pod: &Pod, observed: &Observed, host_ip: IpAddr) -> PodStatus {
    let previous = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let restart = spec.restart_policy.as_deref().unwrap_or("Always");
    let inits = spec.init_containers.clone().unwrap_or_default();
    let initialized = inits
        .iter()
        .all(|c| init_done(c, observed.init.get(&c.name)));
    let init_failed = restart == "Never"
        && inits.iter().any(|c| {
            !is_sidecar(c)
                && observed
                    .init
                    .get(&c.name)
                    .and_then(|v| v.current.as_ref())
                    .is_some_and(|s| s.state == EXITED && s.exit_code != 0)
        });
    let init_statuses: Vec<ContainerStatus> = inits
        .iter()
        .map(|c| container_status(c, observed.init.get(&c.name), "PodInitializing"))
        .collect();
    let app_reason = if initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, observed.containers.get(&c.name), app_reason))
        .collect();

    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in &statuses {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    let phase = if init_failed {
        "Failed"
    } else if !initialized || waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match restart {
            "Always" => "Running",
            "OnFailure" if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ if stopped == succeeded => "Succeeded",
            _ => "Failed",
        }
    } else {
        "Pending"
    };
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let incomplete: Vec<&str> = inits
        .iter()
        .filter(|c| !init_done(c, observed.init.get(&c.name)))
        .map(|c| c.name.as_str())
        .collect();
    let all_ready = !statuses.is_empty() && unready.is_empty();
    let finished = matches!(phase, "Succeeded" | "Failed");
    let not_ready = if finished {
        ("PodCompleted", String::new())
    } else {
        (
            "ContainersNotReady",
            format!("containers with unready status: [{}]", unready.join(" ")),
        )
    };
    let init_reason = if finished {
        ("PodCompleted", String::new())
    } else {
        (
            "ContainersNotInitialized",
            format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            ),
        )
    };
    let conditions = [
        ("PodReadyToStartContainers", observed.sandbox_ready, None),
        ("Initialized", initialized, Some(init_reason)),
        ("Ready", all_ready && !finished, Some(not_ready.clone())),
        ("ContainersReady", all_ready && !finished, Some(not_ready)),
        ("PodScheduled", true, None),
    ]
    .into_iter()
    .map(|(type_, ok, why)| {
        let status = if ok { "True" } else { "False" }.to_string();
        let kept = previous
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone());
        let (reason, message) = match why {
            Some((reason, message)) if !ok => (
                Some(reason.to_string()),
                (!message.is_empty()).then_some(message),
            ),
            _ => (None, None),
        };
        PodCondition {
            type_: type_.to_string(),
            status,
            last_transition_time: kept.or_else(|| Some(now())),
            reason,
            message,
            ..Default::default()
        }
    })
    .collect();
    let pod_ip = if spec.host_network == Some(true) {
        Some(host_ip.to_string())
    } else {
        observed.pod_ip.clone().or(previous.pod_ip.clone())
    };
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
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

    fn cri(state: i32, code: i32, id: &str) -> CriStatus {
        CriStatus {
            id: id.to_string(),
            state,
            exit_code: code,
            ..Default::default()
        }
    }

    fn exited(code: i32) -> Observed {
        Observed {
            sandbox_ready: true,
            pod_ip: Some("10.42.0.5".to_string()),
            containers: [(
                "main".to_string(),
                View {
                    current: Some(cri(EXITED, code, "abc")),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn exits_under_restart_policy_never_end_the_pod() {
        let host: IpAddr = "192.0.2.1".parse().expect("ip");
        let failed = compute(&pod("Never", None), &exited(3), host);
        assert_eq!(failed.phase.as_deref(), Some("Failed"));
        let succeeded = compute(&pod("Never", None), &exited(0), host);
        assert_eq!(succeeded.phase.as_deref(), Some("Succeeded"));
        assert_eq!(succeeded.pod_ip.as_deref(), Some("10.42.0.5"));
        let always = compute(&pod("Always", None), &exited(0), host);
        assert_eq!(always.phase.as_deref(), Some("Running"));
        let on_failure = compute(&pod("OnFailure", None), &exited(1), host);
        assert_eq!(on_failure.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn a_crash_loop_shows_the_back_off_and_the_last_exit() {
        let host: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut observed = exited(1);
        if let Some(view) = observed.containers.get_mut("main") {
            view.restart_count = 2;
            view.waiting = Some(Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off 20s restarting failed container=main pod=p_ns(u)".into(),
            });
        }
        let status = compute(&pod("Always", None), &observed, host);
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let c = &status.container_statuses.expect("statuses")[0];
        assert_eq!(c.restart_count, 2);
        let state = c.state.clone().expect("state");
        assert_eq!(
            state.waiting.and_then(|w| w.reason).as_deref(),
            Some("CrashLoopBackOff")
        );
        let last = c
            .last_state
            .clone()
            .and_then(|l| l.terminated)
            .expect("last state");
        assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
        assert!(!c.ready);
    }

    #[test]
    fn init_containers_hold_the_pod_pending() {
        let host: IpAddr = "192.0.2.1".parse().expect("ip");
        let mut p = pod("Always", None);
        if let Some(spec) = p.spec.as_mut() {
            spec.init_containers = Some(vec![Container {
                name: "setup".to_string(),
                ..Default::default()
            }]);
        }
        let mut observed = Observed {
            sandbox_ready: true,
            ..Default::default()
        };
        observed.init.insert(
            "setup".into(),
            View {
                current: Some(cri(RUNNING, 0, "i1")),
                started: true,
                ..Default::default()
            },
        );
        let status = compute(&p, &observed, host);
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let app = &status.container_statuses.clone().expect("statuses")[0];
        assert_eq!(
            app.state
                .clone()
                .and_then(|s| s.waiting)
                .and_then(|w| w.reason)
                .as_deref(),
            Some("PodInitializing")
        );
        let initialized = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Initialized")
            .expect("Initialized");
        assert_eq!(initialized.status, "False");
        assert_eq!(
            initialized.message.as_deref(),
            Some("containers with incomplete status: [setup]")
        );
        if let Some(v) = observed.init.get_mut("setup") {
            v.current = Some(cri(EXITED, 0, "i1"));
        }
        observed.containers.insert(
            "main".into(),
            View {
                current: Some(cri(RUNNING, 0, "m1")),
                started: true,
                ready: true,
                ..Default::default()
            },
        );
        let status = compute(&p, &observed, host);
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "True");
    }

    #[test]
    fn a_container_that_cannot_start_says_why() {
        let host: IpAddr = "192.0.2.1".parse().expect("ip");
        let observed = Observed {
            containers: [(
                "main".to_string(),
                View {
                    waiting: Some(Waiting {
                        reason: "ErrImageNeverPull".to_string(),
                        message: "not present".to_string(),
                    }),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        };
        let status = compute(&pod("Always", None), &observed, host);
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
