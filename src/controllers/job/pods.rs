//! What the Job controller reads from its pods, with no I/O: which pods are
//! active or finished, completion indexes and their compact `1,3-5` form,
//! upstream's pod failure policy rules and its pod-creation backoff.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// The finalizer that keeps a pod until its Job has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation (and label) with an Indexed Job pod's index.
pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";

/// Upstream's pod-creation backoff: 10 s doubling per failure, at most 6 min.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

pub fn succeeded(pod: &Pod) -> bool {
    phase(pod) == "Succeeded"
}

pub fn failed(pod: &Pod) -> bool {
    phase(pod) == "Failed"
}

fn terminal(pod: &Pod) -> bool {
    succeeded(pod) || failed(pod)
}

/// Running or pending and not being deleted.
pub fn active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !terminal(pod)
}

/// Being deleted but not finished yet.
pub fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && !terminal(pod)
}

/// Whether the pod counts as a failure: it failed, or (unless the Job only
/// replaces failed pods) it is being deleted before it succeeded.
pub fn counts_as_failed(pod: &Pod, only_failed: bool) -> bool {
    failed(pod) || (!only_failed && terminating(pod))
}

pub fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

/// Container restarts, for `restartPolicy: OnFailure` Jobs.
pub fn restarts(pod: &Pod) -> i32 {
    let status = pod.status.as_ref();
    status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .chain(status.and_then(|s| s.init_container_statuses.as_ref()))
        .flatten()
        .map(|c| c.restart_count)
        .sum()
}

/// An Indexed Job pod's completion index, if valid for `completions`.
pub fn index(pod: &Pod, completions: i32) -> Option<i32> {
    let value = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INDEX_KEY))
        .or_else(|| pod.metadata.labels.as_ref().and_then(|l| l.get(INDEX_KEY)))?;
    value.parse().ok().filter(|i| (0..completions).contains(i))
}

/// Parses `status.completedIndexes` (`1,3-5`), ignoring what does not parse.
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
            set.extend(a..=b);
        }
    }
    set
}

/// Formats indexes compactly, as upstream: consecutive runs of three or
/// more as `a-b`, a pair as `a,b`.
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut runs: Vec<(i32, i32)> = Vec::new();
    for &i in set {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => runs.push((i, i)),
        }
    }
    runs.iter()
        .map(|&(a, b)| match b - a {
            0 => a.to_string(),
            1 => format!("{a},{b}"),
            _ => format!("{a}-{b}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// How long to wait before creating pods again after `failures` failures
/// in a row.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

/// What a pod failure policy rule says about a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureAction {
    /// Fail the whole Job, with this condition message.
    FailJob(String),
    /// Do not count the failure towards `backoffLimit`.
    Ignore,
    /// Count it (the default when no rule matches).
    Count,
}

/// Applies `policy` to a failed pod, as upstream: the first matching rule
/// wins; a rule matches on a non-zero container exit code or a pod condition.
pub fn failure_action(policy: Option<&PodFailurePolicy>, pod: &Pod) -> FailureAction {
    let Some(policy) = policy else {
        return FailureAction::Count;
    };
    let pod_name = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    let status = pod.status.as_ref();
    for (i, rule) in policy.rules.iter().enumerate() {
        let reason = if let Some(req) = &rule.on_exit_codes {
            let containers = status
                .and_then(|s| s.init_container_statuses.as_ref())
                .into_iter()
                .chain(status.and_then(|s| s.container_statuses.as_ref()))
                .flatten();
            match matching_container(containers, req) {
                Some((name, code)) => format!(
                    "Container {name} for pod {pod_name} failed with exit code {code} matching {} rule at index {i}",
                    rule.action
                ),
                None => continue,
            }
        } else if let Some(patterns) = &rule.on_pod_conditions {
            let conditions = status.and_then(|s| s.conditions.as_ref());
            let found = patterns.iter().find_map(|p| {
                conditions?
                    .iter()
                    .find(|c| c.type_ == p.type_ && c.status == p.status)
                    .map(|c| c.type_.clone())
            });
            match found {
                Some(t) => format!(
                    "Pod {pod_name} has condition {t} matching {} rule at index {i}",
                    rule.action
                ),
                None => continue,
            }
        } else {
            continue;
        };
        return match rule.action.as_str() {
            "FailJob" => FailureAction::FailJob(reason),
            "Ignore" => FailureAction::Ignore,
            _ => FailureAction::Count,
        };
    }
    FailureAction::Count
}

fn matching_container<'a>(
    containers: impl Iterator<Item = &'a ContainerStatus>,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<(String, i32)> {
    containers
        .filter(|c| req.container_name.as_ref().is_none_or(|n| *n == c.name))
        .filter_map(|c| {
            let code = c.state.as_ref()?.terminated.as_ref()?.exit_code;
            Some((c.name.clone(), code))
        })
        .find(|(_, code)| {
            *code != 0
                && match req.operator.as_str() {
                    "In" => req.values.contains(code),
                    "NotIn" => !req.values.contains(code),
                    _ => false,
                }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("pod")
    }

    #[test]
    fn indexes_round_trip_compactly() {
        let set = parse_indexes("0,2-4,7,8");
        assert_eq!(set, BTreeSet::from([0, 2, 3, 4, 7, 8]));
        assert_eq!(format_indexes(&set), "0,2-4,7,8");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
        assert_eq!(format_indexes(&BTreeSet::from([1, 2, 3, 4, 5])), "1-5");
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_to_six_minutes() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(5), Duration::from_secs(160));
        assert_eq!(backoff(6), Duration::from_secs(320));
        assert_eq!(backoff(7), Duration::from_secs(360));
        assert_eq!(backoff(100), Duration::from_secs(360));
    }

    #[test]
    fn pod_states() {
        let running = pod(json!({"metadata": {"name": "a"}, "status": {"phase": "Running"}}));
        assert!(active(&running) && !counts_as_failed(&running, false));
        let deleting = pod(
            json!({"metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": "Running"}}),
        );
        assert!(!active(&deleting) && terminating(&deleting));
        assert!(counts_as_failed(&deleting, false));
        assert!(!counts_as_failed(&deleting, true));
        let indexed = pod(json!({"metadata": {"name": "a", "annotations": {INDEX_KEY: "2"}}}));
        assert_eq!(index(&indexed, 3), Some(2));
        assert_eq!(index(&indexed, 2), None);
    }

    fn failed_pod(exit_code: i32, condition: Option<&str>) -> Pod {
        let conditions: Vec<_> = condition
            .map(|c| json!({"type": c, "status": "True"}))
            .into_iter()
            .collect();
        pod(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "conditions": conditions, "containerStatuses": [
                {"name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": exit_code}}}]},
        }))
    }

    #[test]
    fn failure_policy_rules_match_in_order() {
        let policy: PodFailurePolicy = serde_json::from_value(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]}))
        .expect("policy");
        assert_eq!(
            failure_action(Some(&policy), &failed_pod(42, None)),
            FailureAction::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
                    .into()
            )
        );
        assert_eq!(
            failure_action(Some(&policy), &failed_pod(42, Some("DisruptionTarget"))),
            FailureAction::Ignore
        );
        assert_eq!(
            failure_action(Some(&policy), &failed_pod(3, None)),
            FailureAction::Count
        );
        assert_eq!(
            failure_action(None, &failed_pod(42, None)),
            FailureAction::Count
        );
    }
}
