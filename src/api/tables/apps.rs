//! Tables of the workload kinds: deployments, replica sets, stateful sets,
//! daemon sets, controller revisions (apps), jobs and cron jobs (batch),
//! horizontal pod autoscalers (autoscaling) and disruption budgets (policy).

use serde_json::{Value, json};

use super::format::{
    age, arr, boolean, containers, human_duration, int, int0, label_selector, labels, name, or,
    quantity, s, selector, since, time,
};
use super::{AGE, CONTAINERS, Clock, Column, IMAGES, NAME, Printer, no_conditions};

macro_rules! printer {
    ($cols:expr, $cells:expr) => {
        Printer {
            columns: $cols,
            cells: $cells,
            conditions: no_conditions,
        }
    };
}

const SELECTOR: Column = Column::new(
    "Selector",
    "string",
    "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
)
.wide();

/// The desired replicas of a scalable kind (defaulted to 1 by the API).
fn replicas(obj: &Value) -> i64 {
    int(obj, "/spec/replicas").unwrap_or(1)
}

static DEPLOYMENTS: Printer = printer!(
    &[
        NAME,
        Column::new("Ready", "string", "Number of the pod with ready state"),
        Column::new(
            "Up-to-date",
            "string",
            "Total number of non-terminated pods targeted by this deployment that have the desired template spec."
        ),
        Column::new(
            "Available",
            "string",
            "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    |d, clock| {
        let (names, images) = containers(d.pointer("/spec/template/spec"));
        vec![
            json!(name(d)),
            json!(format!(
                "{}/{}",
                int0(d, "/status/readyReplicas"),
                replicas(d)
            )),
            json!(int0(d, "/status/updatedReplicas")),
            json!(int0(d, "/status/availableReplicas")),
            age(d, clock),
            names,
            images,
            json!(selector(d.pointer("/spec/selector"))),
        ]
    }
);

static REPLICA_SETS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Desired",
            "integer",
            "Replicas is the number of desired replicas."
        ),
        Column::new(
            "Current",
            "integer",
            "Replicas is the most recently observed number of replicas."
        ),
        Column::new(
            "Ready",
            "integer",
            "readyReplicas is the number of pods targeted by this ReplicaSet with a Ready Condition."
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    |rs, clock| {
        let (names, images) = containers(rs.pointer("/spec/template/spec"));
        vec![
            json!(name(rs)),
            json!(replicas(rs)),
            json!(int0(rs, "/status/replicas")),
            json!(int0(rs, "/status/readyReplicas")),
            age(rs, clock),
            names,
            images,
            json!(label_selector(rs.pointer("/spec/selector"))),
        ]
    }
);

static STATEFUL_SETS: Printer = printer!(
    &[
        NAME,
        Column::new("Ready", "string", "Number of the pod with ready state"),
        AGE,
        CONTAINERS,
        IMAGES,
    ],
    |sts, clock| {
        let (names, images) = containers(sts.pointer("/spec/template/spec"));
        vec![
            json!(name(sts)),
            json!(format!(
                "{}/{}",
                int0(sts, "/status/readyReplicas"),
                replicas(sts)
            )),
            age(sts, clock),
            names,
            images,
        ]
    }
);

static DAEMON_SETS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Desired",
            "integer",
            "The total number of nodes that should be running the daemon pod."
        ),
        Column::new(
            "Current",
            "integer",
            "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."
        ),
        Column::new(
            "Ready",
            "integer",
            "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."
        ),
        Column::new(
            "Up-to-date",
            "integer",
            "The total number of nodes that are running updated daemon pod"
        ),
        Column::new(
            "Available",
            "integer",
            "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available."
        ),
        Column::new(
            "Node Selector",
            "string",
            "NodeSelector is a selector which must be true for the pod to fit on a node."
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    |ds, clock| {
        let (names, images) = containers(ds.pointer("/spec/template/spec"));
        vec![
            json!(name(ds)),
            json!(int0(ds, "/status/desiredNumberScheduled")),
            json!(int0(ds, "/status/currentNumberScheduled")),
            json!(int0(ds, "/status/numberReady")),
            json!(int0(ds, "/status/updatedNumberScheduled")),
            json!(int0(ds, "/status/numberAvailable")),
            json!(labels(ds.pointer("/spec/template/spec/nodeSelector"))),
            age(ds, clock),
            names,
            images,
            json!(label_selector(ds.pointer("/spec/selector"))),
        ]
    }
);

static CONTROLLER_REVISIONS: Printer = printer!(
    &[
        NAME,
        Column::new("Controller", "string", "Controller of the object"),
        Column::new(
            "Revision",
            "string",
            "Revision indicates the revision of the state represented by Data."
        ),
        AGE,
    ],
    |cr, clock| {
        let controller = arr(cr, "/metadata/ownerReferences")
            .iter()
            .find(|r| boolean(r, "/controller") == Some(true))
            .map(|r| {
                let group = s(r, "/apiVersion")
                    .rsplit_once('/')
                    .map(|(g, _)| g)
                    .unwrap_or("");
                let kind = s(r, "/kind").to_lowercase();
                let gk = if group.is_empty() {
                    kind
                } else {
                    format!("{kind}.{group}")
                };
                format!("{gk}/{}", s(r, "/name"))
            })
            .unwrap_or_else(|| "<none>".into());
        vec![
            json!(name(cr)),
            json!(controller),
            json!(int0(cr, "/revision")),
            age(cr, clock),
        ]
    }
);

fn has_condition(obj: &Value, ty: &str) -> bool {
    arr(obj, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == ty)
        .is_some_and(|c| s(c, "/status") == "True")
}

static JOBS: Printer = printer!(
    &[
        NAME,
        Column::new("Status", "string", "Status of the job."),
        Column::new(
            "Completions",
            "string",
            "The number of pods which reached phase Succeeded."
        ),
        Column::new("Duration", "string", "Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        Column {
            description: "A label query over pods that should match the pod count.",
            ..SELECTOR
        },
    ],
    job_cells
);

fn job_cells(job: &Value, clock: &Clock) -> Vec<Value> {
    let succeeded = int0(job, "/status/succeeded");
    let completions = match int(job, "/spec/completions") {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int0(job, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        time(job, "/status/startTime"),
        time(job, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => since(Some(start), clock),
        (Some(start), Some(end)) => human_duration(end.duration_since(start)),
    };
    let status = if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if job.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(job, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (names, images) = containers(job.pointer("/spec/template/spec"));
    vec![
        json!(name(job)),
        json!(status),
        json!(completions),
        json!(duration),
        age(job, clock),
        names,
        images,
        json!(label_selector(job.pointer("/spec/selector"))),
    ]
}

/// `printBoolPtr`: `True`, `False` or `<unset>`.
fn bool_cell(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

static CRON_JOBS: Printer = printer!(
    &[
        NAME,
        Column::new("Schedule", "string", "The schedule in Cron format."),
        Column::new(
            "Timezone",
            "string",
            "The time zone name for the given schedule."
        ),
        Column::new(
            "Suspend",
            "boolean",
            "This flag tells the controller to suspend subsequent executions."
        ),
        Column::new(
            "Active",
            "integer",
            "A list of pointers to currently running jobs."
        ),
        Column::new(
            "Last Schedule",
            "string",
            "Information when was the last time the job was successfully scheduled."
        ),
        AGE,
        CONTAINERS,
        IMAGES,
        Column {
            description: "A label query over pods that should match the pod count.",
            ..SELECTOR
        },
    ],
    |cj, clock| {
        let last = match time(cj, "/status/lastScheduleTime") {
            Some(t) => since(Some(t), clock),
            None => "<none>".into(),
        };
        let (names, images) = containers(cj.pointer("/spec/jobTemplate/spec/template/spec"));
        vec![
            json!(name(cj)),
            json!(s(cj, "/spec/schedule")),
            json!(or(s(cj, "/spec/timeZone"), "<none>")),
            json!(bool_cell(boolean(cj, "/spec/suspend"))),
            json!(arr(cj, "/status/active").len()),
            json!(last),
            age(cj, clock),
            names,
            images,
            json!(label_selector(
                cj.pointer("/spec/jobTemplate/spec/selector")
            )),
        ]
    }
);

static HORIZONTAL_POD_AUTOSCALERS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Reference",
            "string",
            "scaleTargetRef points to the target resource to scale."
        ),
        Column::new(
            "Targets",
            "string",
            "metrics contains the specifications for which to use to calculate the desired replica count."
        ),
        Column::new(
            "MinPods",
            "string",
            "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down."
        ),
        Column::new(
            "MaxPods",
            "string",
            "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up."
        ),
        Column::new(
            "Replicas",
            "string",
            "currentReplicas is current number of replicas of pods managed by this autoscaler."
        ),
        AGE,
    ],
    |hpa, clock| {
        vec![
            json!(name(hpa)),
            json!(format!(
                "{}/{}",
                s(hpa, "/spec/scaleTargetRef/kind"),
                s(hpa, "/spec/scaleTargetRef/name")
            )),
            json!(hpa_metrics(
                arr(hpa, "/spec/metrics"),
                arr(hpa, "/status/currentMetrics")
            )),
            json!(int(hpa, "/spec/minReplicas").map_or("<unset>".into(), |n| n.to_string())),
            json!(int0(hpa, "/spec/maxReplicas")),
            json!(int0(hpa, "/status/currentReplicas")),
            age(hpa, clock),
        ]
    }
);

/// One metric's `current/target`, from a spec source (with `target`) and
/// the matching status source (with `current`). External and Object metrics
/// (`named` is None) mark average targets `(avg)`; Resource metrics are
/// prefixed with the resource name and may target a utilization.
fn metric_text(spec: &Value, status: Option<&Value>, named: Option<&str>) -> String {
    let current = |field: &str| {
        status
            .and_then(|st| st.get("current"))
            .and_then(|c| c.get(field))
    };
    let unknown = || "<unknown>".to_string();
    let target = spec.get("target").unwrap_or(&Value::Null);
    match (target.get("averageValue"), named) {
        (Some(avg), None) => format!(
            "{}/{} (avg)",
            current("averageValue").map_or_else(unknown, |q| quantity(Some(q))),
            quantity(Some(avg))
        ),
        (Some(avg), Some(res)) => format!(
            "{res}: {}/{}",
            current("averageValue").map_or_else(unknown, |q| quantity(Some(q))),
            quantity(Some(avg))
        ),
        (None, None) => format!(
            "{}/{}",
            current("value").map_or_else(unknown, |q| quantity(Some(q))),
            quantity(target.get("value"))
        ),
        (None, Some(res)) => {
            let percent = |v: Option<&Value>, none: &str| {
                v.and_then(Value::as_i64)
                    .map_or_else(|| none.to_string(), |u| format!("{u}%"))
            };
            format!(
                "{res}: {}/{}",
                percent(current("averageUtilization"), "<unknown>"),
                percent(target.get("averageUtilization"), "<auto>")
            )
        }
    }
}

/// Upstream's `formatHPAMetrics`: the first two metrics, `+ N more...`.
fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let texts: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let status = |field: &str| statuses.get(i).and_then(|st| st.get(field));
            match s(spec, "/type") {
                "External" => metric_text(&spec["external"], status("external"), None),
                "Pods" => {
                    let cur = status("pods")
                        .and_then(|st| st.pointer("/current/averageValue"))
                        .map_or("<unknown>".into(), |q| quantity(Some(q)));
                    format!(
                        "{cur}/{}",
                        quantity(spec.pointer("/pods/target/averageValue"))
                    )
                }
                "Object" => metric_text(&spec["object"], status("object"), None),
                "Resource" => metric_text(
                    &spec["resource"],
                    status("resource"),
                    Some(s(spec, "/resource/name")),
                ),
                "ContainerResource" => metric_text(
                    &spec["containerResource"],
                    status("containerResource"),
                    Some(s(spec, "/containerResource/name")),
                ),
                _ => "<unknown type>".into(),
            }
        })
        .collect();
    let shown = texts.iter().take(2).cloned().collect::<Vec<_>>().join(", ");
    if texts.len() > 2 {
        format!("{shown} + {} more...", texts.len() - 2)
    } else {
        shown
    }
}

static POD_DISRUPTION_BUDGETS: Printer = printer!(
    &[
        NAME,
        Column::new(
            "Min Available",
            "string",
            "The minimum number of pods that must be available."
        ),
        Column::new(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable."
        ),
        Column::new(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time."
        ),
        AGE,
    ],
    |pdb, clock| {
        let int_or_string = |ptr: &str| match pdb.pointer(ptr) {
            Some(Value::String(v)) => v.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "N/A".into(),
        };
        vec![
            json!(name(pdb)),
            json!(int_or_string("/spec/minAvailable")),
            json!(int_or_string("/spec/maxUnavailable")),
            json!(int0(pdb, "/status/disruptionsAllowed")),
            age(pdb, clock),
        ]
    }
);

pub(super) fn printer(kind: &str) -> Option<&'static Printer> {
    Some(match kind {
        "Deployment" => &DEPLOYMENTS,
        "ReplicaSet" => &REPLICA_SETS,
        "StatefulSet" => &STATEFUL_SETS,
        "DaemonSet" => &DAEMON_SETS,
        "ControllerRevision" => &CONTROLLER_REVISIONS,
        "Job" => &JOBS,
        "CronJob" => &CRON_JOBS,
        "HorizontalPodAutoscaler" => &HORIZONTAL_POD_AUTOSCALERS,
        "PodDisruptionBudget" => &POD_DISRUPTION_BUDGETS,
        _ => return None,
    })
}
