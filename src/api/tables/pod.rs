//! The pod table: READY, STATUS (upstream's reason logic: `Init:1/2`,
//! `Init:CrashLoopBackOff`, `PodInitializing`, `ContainerCreating`,
//! `Completed`, `Error`, `Terminating`, `Unknown` for lost nodes...),
//! RESTARTS with the time of the last one, and the wide columns.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::format::{age, arr, boolean, int0, name, or, s, since, time};
use super::{AGE, Clock, Column, NAME, Printer};

static PODS: Printer = Printer {
    columns: &[
        NAME,
        Column::new(
            "Ready",
            "string",
            "The aggregate readiness state of this pod for accepting traffic.",
        ),
        Column::new(
            "Status",
            "string",
            "The aggregate status of the containers in this pod.",
        ),
        Column::new(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        AGE,
        Column::new("IP", "string", "podIP address allocated to the pod.").wide(),
        Column::new(
            "Node",
            "string",
            "NodeName indicates in which node this pod is scheduled.",
        )
        .wide(),
        Column::new(
            "Nominated Node",
            "string",
            "nominatedNodeName is set only when this pod preempts other pods on the node.",
        )
        .wide(),
        Column::new(
            "Readiness Gates",
            "string",
            "If specified, all readiness gates will be evaluated for pod readiness.",
        )
        .wide(),
    ],
    cells,
    conditions,
};

pub(super) fn printer(kind: &str) -> Option<&'static Printer> {
    (kind == "Pod").then_some(&PODS)
}

/// Succeeded and Failed pods carry a `Completed` row condition.
fn conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match s(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// What the READY, STATUS and RESTARTS columns say about a pod.
#[derive(Debug, PartialEq, Eq)]
pub struct PodSummary {
    pub ready: usize,
    pub total: usize,
    pub reason: String,
    pub restarts: i64,
    pub last_restart: Option<Timestamp>,
}

fn has_condition(pod: &Value, ty: &str) -> bool {
    arr(pod, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == ty && s(c, "/status") == "True")
}

/// The later of `current` and the container's last termination time.
fn later_restart(current: Option<Timestamp>, status: &Value) -> Option<Timestamp> {
    let finished = time(status, "/lastState/terminated/finishedAt");
    match (current, finished) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The reason a terminated container (or init container, with `prefix`)
/// gives: its reason, else its signal or exit code.
fn terminated_reason(term: &Value, prefix: &str) -> String {
    match s(term, "/reason") {
        "" => match int0(term, "/signal") {
            0 => format!("{prefix}ExitCode:{}", int0(term, "/exitCode")),
            sig => format!("{prefix}Signal:{sig}"),
        },
        r => format!("{prefix}{r}"),
    }
}

/// Upstream's `printPod` status logic.
pub fn summarize(pod: &Value) -> PodSummary {
    let phase = s(pod, "/status/phase");
    let mut reason = or(s(pod, "/status/reason"), phase).to_string();
    if arr(pod, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == "PodScheduled" && s(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }
    let init_specs = arr(pod, "/spec/initContainers");
    let sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| s(c, "/name") == name && s(c, "/restartPolicy") == "Always")
    };
    let total = arr(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| s(c, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart = None;
    let mut last_sidecar_restart = None;

    let mut initializing = false;
    for (i, st) in arr(pod, "/status/initContainerStatuses").iter().enumerate() {
        restarts += int0(st, "/restartCount");
        last_restart = later_restart(last_restart, st);
        let is_sidecar = sidecar(s(st, "/name"));
        if is_sidecar {
            sidecar_restarts += int0(st, "/restartCount");
            last_sidecar_restart = later_restart(last_sidecar_restart, st);
        }
        let terminated = st.pointer("/state/terminated");
        let waiting = s(st, "/state/waiting/reason");
        if terminated.is_some_and(|t| int0(t, "/exitCode") == 0) {
            continue;
        }
        if is_sidecar && boolean(st, "/started") == Some(true) {
            if boolean(st, "/ready") == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = match terminated {
            Some(t) => terminated_reason(t, "Init:"),
            None if !waiting.is_empty() && waiting != "PodInitializing" => {
                format!("Init:{waiting}")
            }
            None => format!("Init:{i}/{}", init_specs.len()),
        };
        initializing = true;
        break;
    }

    if !initializing || has_condition(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for st in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += int0(st, "/restartCount");
            last_restart = later_restart(last_restart, st);
            let waiting = s(st, "/state/waiting/reason");
            let terminated = st.pointer("/state/terminated");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if boolean(st, "/ready") == Some(true) && st.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(pod, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        if s(pod, "/status/reason") == "NodeLost" {
            reason = "Unknown".into();
        } else if !matches!(phase, "Succeeded" | "Failed") {
            reason = "Terminating".into();
        }
    }
    PodSummary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}

fn cells(pod: &Value, clock: &Clock) -> Vec<Value> {
    let sum = summarize(pod);
    let restarts = match sum.last_restart {
        Some(t) if sum.restarts != 0 => format!("{} ({} ago)", sum.restarts, since(Some(t), clock)),
        _ => sum.restarts.to_string(),
    };
    let ip = arr(pod, "/status/podIPs")
        .first()
        .map(|p| s(p, "/ip"))
        .unwrap_or("");
    let gates = arr(pod, "/spec/readinessGates");
    let gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr(pod, "/status/conditions");
        let passed = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| s(c, "/type") == s(g, "/conditionType"))
                    .is_some_and(|c| s(c, "/status") == "True")
            })
            .count();
        format!("{passed}/{}", gates.len())
    };
    vec![
        json!(name(pod)),
        json!(format!("{}/{}", sum.ready, sum.total)),
        json!(sum.reason),
        json!(restarts),
        age(pod, clock),
        json!(or(ip, "<none>")),
        json!(or(s(pod, "/spec/nodeName"), "<none>")),
        json!(or(s(pod, "/status/nominatedNodeName"), "<none>")),
        json!(gates),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(pod: Value) -> String {
        summarize(&pod).reason
    }

    fn waiting(name: &str, why: &str) -> Value {
        json!({"name": name, "ready": false, "restartCount": 0, "state": {"waiting": {"reason": why}}})
    }

    fn running(name: &str, restarts: i64) -> Value {
        json!({"name": name, "ready": true, "restartCount": restarts, "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}})
    }

    fn terminated(name: &str, code: i64, why: &str) -> Value {
        json!({"name": name, "ready": false, "restartCount": 0,
               "state": {"terminated": {"exitCode": code, "reason": why}}})
    }

    fn pod(phase: &str, containers: &[&str], statuses: Vec<Value>) -> Value {
        let specs: Vec<Value> = containers.iter().map(|c| json!({"name": c})).collect();
        json!({"metadata": {"name": "p"}, "spec": {"containers": specs},
               "status": {"phase": phase, "containerStatuses": statuses}})
    }

    #[test]
    fn phases_and_waiting_reasons() {
        assert_eq!(reason(pod("Pending", &["a"], vec![])), "Pending");
        assert_eq!(
            reason(pod(
                "Pending",
                &["a"],
                vec![waiting("a", "ContainerCreating")]
            )),
            "ContainerCreating"
        );
        assert_eq!(
            reason(pod(
                "Running",
                &["a"],
                vec![waiting("a", "CrashLoopBackOff")]
            )),
            "CrashLoopBackOff"
        );
        let p = pod(
            "Running",
            &["a", "b"],
            vec![running("a", 0), running("b", 0)],
        );
        let sum = summarize(&p);
        assert_eq!(
            (sum.ready, sum.total, sum.reason.as_str()),
            (2, 2, "Running")
        );
    }

    #[test]
    fn terminated_containers() {
        assert_eq!(
            reason(pod(
                "Succeeded",
                &["a"],
                vec![terminated("a", 0, "Completed")]
            )),
            "Completed"
        );
        assert_eq!(
            reason(pod("Failed", &["a"], vec![terminated("a", 1, "Error")])),
            "Error"
        );
        assert_eq!(
            reason(pod("Failed", &["a"], vec![terminated("a", 137, "")])),
            "ExitCode:137"
        );
        let mut sig = terminated("a", 0, "");
        sig["state"]["terminated"]["signal"] = json!(9);
        assert_eq!(reason(pod("Failed", &["a"], vec![sig])), "Signal:9");
        // One container done, another still running: Running or NotReady.
        let mut p = pod(
            "Running",
            &["a", "b"],
            vec![running("a", 0), terminated("b", 0, "Completed")],
        );
        assert_eq!(reason(p.clone()), "NotReady");
        p["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        assert_eq!(reason(p), "Running");
    }

    #[test]
    fn init_containers() {
        let mut p = pod(
            "Pending",
            &["main"],
            vec![waiting("main", "PodInitializing")],
        );
        p["spec"]["initContainers"] = json!([{"name": "i1"}, {"name": "i2"}]);
        p["status"]["initContainerStatuses"] =
            json!([terminated("i1", 0, "Completed"), running("i2", 0)]);
        assert_eq!(reason(p.clone()), "Init:1/2");
        p["status"]["initContainerStatuses"][1] = waiting("i2", "CrashLoopBackOff");
        assert_eq!(reason(p.clone()), "Init:CrashLoopBackOff");
        p["status"]["initContainerStatuses"][1] = terminated("i2", 2, "Error");
        assert_eq!(reason(p.clone()), "Init:Error");
        p["status"]["initContainerStatuses"][1] = terminated("i2", 3, "");
        assert_eq!(reason(p.clone()), "Init:ExitCode:3");
        p["status"]["initContainerStatuses"][1] = terminated("i2", 0, "Completed");
        assert_eq!(reason(p), "PodInitializing");
    }

    #[test]
    fn sidecars_count_as_containers() {
        let mut p = pod("Running", &["main"], vec![running("main", 1)]);
        p["spec"]["initContainers"] = json!([{"name": "side", "restartPolicy": "Always"}]);
        let mut side = running("side", 2);
        side["started"] = json!(true);
        p["status"]["initContainerStatuses"] = json!([side]);
        let sum = summarize(&p);
        assert_eq!((sum.ready, sum.total, sum.restarts), (2, 2, 3));
        assert_eq!(sum.reason, "Running");
    }

    #[test]
    fn deletion() {
        let mut p = pod("Running", &["a"], vec![running("a", 0)]);
        p["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert_eq!(reason(p.clone()), "Terminating");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(reason(p), "Unknown");
        let mut done = pod("Succeeded", &["a"], vec![terminated("a", 0, "Completed")]);
        done["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        assert_eq!(reason(done), "Completed");
    }

    #[test]
    fn restarts_say_when() {
        let mut a = running("a", 5);
        a["lastState"] =
            json!({"terminated": {"exitCode": 1, "finishedAt": "2024-01-01T00:00:00Z"}});
        let mut p = pod("Running", &["a"], vec![a]);
        p["metadata"]["creationTimestamp"] = json!("2023-12-31T23:00:00Z");
        p["status"]["podIPs"] = json!([{"ip": "10.42.0.7"}]);
        let Ok(now) = "2024-01-01T00:05:00Z".parse::<Timestamp>() else {
            panic!("valid timestamp")
        };
        let clock = Clock { now };
        let cells = cells(&p, &clock);
        assert_eq!(cells[1], "1/1");
        assert_eq!(cells[3], "5 (5m ago)");
        assert_eq!(cells[4], "65m");
        assert_eq!(cells[5], "10.42.0.7");
        assert_eq!(cells[6], "<none>");
        assert_eq!(cells[8], "<none>");
    }

    #[test]
    fn completed_rows_have_conditions() {
        let done = pod("Succeeded", &["a"], vec![]);
        assert_eq!(
            conditions(&done).map(|c| c[0]["reason"].clone()),
            Some(json!("Succeeded"))
        );
        assert_eq!(conditions(&pod("Running", &["a"], vec![])), None);
    }
}
