//! The arithmetic of a Deployment rollout, as pure functions: the
//! pod-template hash, maxSurge/maxUnavailable resolution, how far to scale
//! the new and old ReplicaSets this round (RollingUpdate or Recreate), and
//! the Deployment's status with its Available and Progressing conditions.

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus, ReplicaSet,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::HASH_LABEL;

/// The alphabet of upstream's `rand.SafeEncodeString` (no vowels, no
/// look-alike characters).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The pod-template hash: FNV-1a (32 bit) of the template, plus the
/// collision count, printed in decimal and encoded with upstream's safe
/// alphabet (so it looks like upstream's, e.g. `7c5ddbdf54`).
pub fn template_hash(template: &serde_json::Value, collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(template.to_string().as_bytes());
    if let Some(n) = collision_count {
        feed(&n.to_le_bytes());
    }
    hash.to_string()
        .bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// Whether `rs` holds the pods of the template with this hash.
pub fn has_hash(rs: &ReplicaSet, hash: &str) -> bool {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH_LABEL))
        .is_some_and(|h| h == hash)
}

fn resolve(
    value: Option<&IntOrString>,
    default_percent: i32,
    replicas: i32,
    round_up: bool,
) -> i32 {
    match value {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let percent = s.trim_end_matches('%').parse::<i64>().unwrap_or(0);
            scale_percent(percent, replicas, round_up)
        }
        None => scale_percent(i64::from(default_percent), replicas, round_up),
    }
}

fn scale_percent(percent: i64, replicas: i32, round_up: bool) -> i32 {
    let product = percent * i64::from(replicas);
    let v = if round_up {
        (product + 99) / 100
    } else {
        product / 100
    };
    v as i32
}

/// maxSurge (percent rounded up) and maxUnavailable (rounded down); both
/// zero means one may be unavailable. Recreate has neither.
pub fn surge_and_unavailable(spec: &DeploymentSpec, replicas: i32) -> (i32, i32) {
    let strategy = spec.strategy.as_ref();
    if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        return (0, 0);
    }
    let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
    let surge = resolve(
        rolling.and_then(|r| r.max_surge.as_ref()),
        25,
        replicas,
        true,
    );
    let unavailable = resolve(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        25,
        replicas,
        false,
    );
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable.min(replicas))
}

/// The counts of one ReplicaSet that a rollout looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RsState {
    pub spec: i32,
    pub pods: i32,
    pub available: i32,
    pub created: i64,
    /// The `desired-replicas` annotation: the Deployment size it was last
    /// scaled for.
    pub desired: Option<i32>,
    /// The `max-replicas` annotation: that size plus the surge.
    pub max_replicas: Option<i32>,
}

impl RsState {
    /// The counts of `rs`.
    pub fn of(rs: &ReplicaSet) -> RsState {
        let status = rs.status.as_ref();
        RsState {
            spec: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            pods: status.map(|s| s.replicas).unwrap_or(0),
            available: status.and_then(|s| s.available_replicas).unwrap_or(0),
            created: rs
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or(0),
            desired: annotation(rs, super::DESIRED),
            max_replicas: annotation(rs, super::MAX_REPLICAS),
        }
    }
}

fn annotation(rs: &ReplicaSet, name: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(name)?.parse().ok()
}

/// Whether the Deployment was resized since its active ReplicaSets were
/// last scaled (their `desired-replicas` annotation differs).
pub fn is_scaling_event(replicas: i32, all: &[RsState]) -> bool {
    all.iter()
        .any(|rs| rs.spec > 0 && rs.desired != Some(replicas))
}

/// Upstream's proportional scaling for a resize during a rollout: every
/// active ReplicaSet (index 0 is the new one) grows or shrinks in
/// proportion to its size, within replicas + maxSurge; what rounding leaves
/// goes to the largest (newest first when growing, oldest first when
/// shrinking). With one active ReplicaSet, it alone takes the new size.
pub fn proportional(replicas: i32, surge: i32, status_replicas: i32, all: &[RsState]) -> Vec<i32> {
    let mut out: Vec<i32> = all.iter().map(|rs| rs.spec).collect();
    let active: Vec<usize> = (0..all.len()).filter(|i| all[*i].spec > 0).collect();
    if active.len() <= 1 {
        let only = active.first().copied().unwrap_or(0);
        if let Some(v) = out.get_mut(only) {
            *v = replicas;
        }
        return out;
    }
    let total: i32 = active.iter().map(|i| all[*i].spec).sum();
    let allowed = if replicas > 0 { replicas + surge } else { 0 };
    let to_add = allowed - total;
    if to_add == 0 {
        return out;
    }
    let mut order = active.clone();
    // Larger first; among equals newer first when growing, older when shrinking.
    order.sort_by(|a, b| {
        let (a, b) = (&all[*a], &all[*b]);
        b.spec.cmp(&a.spec).then(if to_add > 0 {
            b.created.cmp(&a.created)
        } else {
            a.created.cmp(&b.created)
        })
    });
    let mut added = 0;
    for &i in &order {
        let rs = &all[i];
        let left = to_add - added;
        if left == 0 {
            break;
        }
        let fraction = if replicas == 0 {
            -rs.spec
        } else {
            let annotated = rs
                .max_replicas
                .filter(|m| *m > 0)
                .unwrap_or(status_replicas.max(1));
            let scaled = f64::from(rs.spec) * f64::from(replicas + surge) / f64::from(annotated);
            scaled.round() as i32 - rs.spec
        };
        let step = if to_add > 0 {
            fraction.min(left)
        } else {
            fraction.max(left)
        };
        out[i] += step;
        added += step;
    }
    if let Some(&first) = order.first() {
        out[first] = (out[first] + to_add - added).max(0);
    }
    out
}

/// The replicas to set this round: for the new ReplicaSet and each old one
/// (in the order given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub new_replicas: i32,
    pub old_replicas: Vec<i32>,
}

fn is_recreate(spec: &DeploymentSpec) -> bool {
    spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate")
}

/// The size a new ReplicaSet starts at.
pub fn initial_replicas(spec: &DeploymentSpec, replicas: i32, surge: i32, olds: &[RsState]) -> i32 {
    plan(spec, replicas, surge, 0, &RsState::default(), olds).new_replicas
}

/// One round of the rollout.
pub fn plan(
    spec: &DeploymentSpec,
    replicas: i32,
    surge: i32,
    unavailable: i32,
    new: &RsState,
    olds: &[RsState],
) -> Plan {
    let mut out = Plan {
        new_replicas: new.spec,
        old_replicas: olds.iter().map(|o| o.spec).collect(),
    };
    if is_recreate(spec) {
        if olds.iter().any(|o| o.spec > 0) {
            out.old_replicas = vec![0; olds.len()];
        } else if olds.iter().all(|o| o.pods == 0) {
            out.new_replicas = replicas;
        }
        return out;
    }
    // Scale the new ReplicaSet up within the surge, or down to size.
    let total: i32 = new.spec + olds.iter().map(|o| o.spec).sum::<i32>();
    if new.spec > replicas {
        out.new_replicas = replicas;
        return out;
    }
    if new.spec < replicas && total < replicas + surge {
        out.new_replicas = new.spec + (replicas + surge - total).min(replicas - new.spec);
        return out;
    }
    // Scale old ReplicaSets down, keeping replicas - maxUnavailable available:
    // unhealthy pods go first, then available ones, oldest ReplicaSet first.
    let min_available = replicas - unavailable;
    let new_unavailable = new.spec - new.available;
    let max_scale_down = total - min_available - new_unavailable;
    if olds.iter().all(|o| o.spec == 0) || max_scale_down <= 0 {
        return out;
    }
    let mut order: Vec<usize> = (0..olds.len()).collect();
    order.sort_by_key(|i| olds[*i].created);
    let mut cleaned = 0;
    for &i in &order {
        let unhealthy = (olds[i].spec - olds[i].available).max(0);
        let down = unhealthy.min(max_scale_down - cleaned);
        if down <= 0 {
            continue;
        }
        out.old_replicas[i] -= down;
        cleaned += down;
    }
    let available: i32 = new.available + olds.iter().map(|o| o.available).sum::<i32>();
    let mut budget = available - min_available;
    for &i in &order {
        if budget <= 0 {
            break;
        }
        let down = out.old_replicas[i].min(budget);
        out.old_replicas[i] -= down;
        budget -= down;
    }
    out
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    old: Option<&DeploymentStatus>,
) -> DeploymentCondition {
    let now = Time(
        Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now()),
    );
    let previous = old
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let unchanged = previous.is_some_and(|p| p.status == status);
    let same_reason =
        previous.is_some_and(|p| p.status == status && p.reason.as_deref() == Some(reason));
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: if unchanged {
            previous.and_then(|p| p.last_transition_time.clone())
        } else {
            Some(now.clone())
        },
        last_update_time: if same_reason {
            previous.and_then(|p| p.last_update_time.clone())
        } else {
            Some(now)
        },
    }
}

/// The Deployment status these ReplicaSets add up to.
pub fn status(
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    all: &[std::sync::Arc<ReplicaSet>],
    desired: i32,
    max_unavailable: i32,
) -> DeploymentStatus {
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| all.iter().map(|rs| f(rs)).sum::<i32>();
    let replicas = sum(&|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0));
    let ready = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    });
    let available = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
    });
    let updated = new_rs
        .and_then(|rs| rs.status.as_ref())
        .map(|s| s.replicas)
        .unwrap_or(0);
    let old = d.status.as_ref();
    let mut conditions = Vec::new();
    conditions.push(if available >= desired - max_unavailable {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            old,
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            old,
        )
    });
    if let Some(rs) = new_rs {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let complete = updated == desired
            && replicas == desired
            && available >= desired
            && rs.spec.as_ref().and_then(|s| s.replicas) == Some(desired);
        conditions.push(if complete {
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{name}\" has successfully progressed."),
                old,
            )
        } else {
            progressing(d, &name, old, (replicas, updated, ready, available))
        });
    }
    DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((desired - available).max(0)),
        conditions: Some(conditions),
        collision_count: old.and_then(|s| s.collision_count),
        terminating_replicas: None,
    }
}

/// The Progressing condition of an unfinished rollout: ReplicaSetUpdated,
/// its update time moved on whenever the counts move, or
/// ProgressDeadlineExceeded once they have not moved for
/// `progressDeadlineSeconds`.
fn progressing(
    d: &Deployment,
    name: &str,
    old: Option<&DeploymentStatus>,
    counts: (i32, i32, i32, i32),
) -> DeploymentCondition {
    let progressed = old.is_none_or(|o| {
        (
            o.replicas.unwrap_or(0),
            o.updated_replicas.unwrap_or(0),
            o.ready_replicas.unwrap_or(0),
            o.available_replicas.unwrap_or(0),
        ) != counts
    });
    let previous = old
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Progressing"));
    let reason = previous.and_then(|p| p.reason.as_deref());
    let deadline = d.spec.as_ref().and_then(|s| s.progress_deadline_seconds);
    let stalled_for = previous
        .filter(|_| !progressed && reason == Some("ReplicaSetUpdated"))
        .and_then(|p| p.last_update_time.as_ref())
        .map(|t| Timestamp::now().as_second() - t.0.as_second());
    let timed_out = (!progressed && reason == Some("ProgressDeadlineExceeded"))
        || matches!((deadline, stalled_for), (Some(limit), Some(s)) if s > i64::from(limit));
    if timed_out {
        return condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{name}\" has timed out progressing."),
            old,
        );
    }
    let mut c = condition(
        "Progressing",
        "True",
        "ReplicaSetUpdated",
        format!("ReplicaSet \"{name}\" is progressing."),
        old,
    );
    if progressed {
        c.last_update_time = c.last_transition_time.clone().max(Some(Time(
            Timestamp::from_second(Timestamp::now().as_second())
                .unwrap_or_else(|_| Timestamp::now()),
        )));
    }
    c
}

/// Whether a status says the rollout is over (or has given up).
pub fn is_settled(status: &DeploymentStatus) -> bool {
    status.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing"
            && matches!(
                c.reason.as_deref(),
                Some("NewReplicaSetAvailable" | "ProgressDeadlineExceeded")
            )
    })
}

/// Whether two statuses agree on everything but timestamps.
pub fn same_status(old: Option<&DeploymentStatus>, new: &DeploymentStatus) -> bool {
    let Some(old) = old else { return false };
    let key = |s: &DeploymentStatus| {
        let conditions: Vec<(String, String, Option<String>, Option<String>)> = s
            .conditions
            .iter()
            .flatten()
            .map(|c| {
                (
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                )
            })
            .collect();
        (
            s.observed_generation,
            s.replicas.unwrap_or(0),
            s.updated_replicas.unwrap_or(0),
            s.ready_replicas.unwrap_or(0),
            s.available_replicas.unwrap_or(0),
            s.unavailable_replicas.unwrap_or(0),
            conditions,
        )
    };
    key(old) == key(new)
}

#[cfg(test)]
mod tests;
