//! ResourceQuota: every create in a namespace with quotas is charged to the
//! quotas that track what it uses, and refused when a quota would go over
//! its `hard` limits, as upstream's admission plugin does.
//!
//! Charging writes the new `status.used` with a compare-and-swap on the
//! quota, so concurrent creates cannot both take the last unit. Usage that
//! goes away (deletions, pods finishing) is given back by [`start`]: it
//! follows the watch caches and recomputes the quotas of every namespace
//! where something changed, which is what upstream's quota controller does.
//! A charge that would fail against a stale `status.used` is checked again
//! against usage recomputed from the caches before it is refused.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::limitranger::{Resources, parse_list, pod_total};
use crate::api::handlers::{Core, store_error};
use crate::api::kinds::quantity::Quantity;
use crate::api::object::{self, meta_str};
use crate::api::registry::{self, KINDS, KindInfo};
use crate::api::status::ApiStatus;
use crate::store::{ListOptions, StoreError};

/// How often a charge is retried when quotas change under it.
const TRIES: usize = 8;

/// The compute resources that have both a plain and a `requests.` name.
const STANDARD: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

fn quota_kind() -> Option<&'static KindInfo> {
    registry::lookup("", "v1", "resourcequotas")
}

/// The quota name of the object count of a kind: `count/pods`,
/// `count/deployments.apps`.
fn count_name(kind: &KindInfo) -> String {
    if kind.group.is_empty() {
        format!("count/{}", kind.plural)
    } else {
        format!("count/{}.{}", kind.plural, kind.group)
    }
}

fn add(usage: &mut Resources, name: impl Into<String>, q: Quantity) {
    let name = name.into();
    let sum = usage.get(&name).copied().unwrap_or(Quantity::ZERO) + q;
    usage.insert(name, sum);
}

fn terminal(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// Everything an object counts against in a quota.
pub fn usage(kind: &KindInfo, obj: &Value) -> Resources {
    let mut u = Resources::new();
    let core = kind.group.is_empty();
    if core && kind.kind == "Pod" && terminal(obj) {
        return u;
    }
    add(&mut u, count_name(kind), Quantity::count(1));
    match (core, kind.kind) {
        (true, "Pod") => {
            add(&mut u, "pods", Quantity::count(1));
            for (name, q) in pod_total(obj, |c| &c.0) {
                if STANDARD.contains(&name.as_str()) {
                    add(&mut u, name.clone(), q);
                }
                add(&mut u, format!("requests.{name}"), q);
            }
            for (name, q) in pod_total(obj, |c| &c.1) {
                if STANDARD.contains(&name.as_str()) {
                    add(&mut u, format!("limits.{name}"), q);
                }
            }
        }
        (true, "Service") => {
            add(&mut u, "services", Quantity::count(1));
            let kind = obj["spec"]["type"].as_str().unwrap_or("ClusterIP");
            if kind == "LoadBalancer" {
                add(&mut u, "services.loadbalancers", Quantity::count(1));
            }
            if matches!(kind, "NodePort" | "LoadBalancer") {
                let ports = obj["spec"]["ports"].as_array().map_or(0, Vec::len);
                add(&mut u, "services.nodeports", Quantity::count(ports as i128));
            }
        }
        (true, "PersistentVolumeClaim") => {
            add(&mut u, "persistentvolumeclaims", Quantity::count(1));
            let storage = parse_list(obj.pointer("/spec/resources/requests"))
                .get("storage")
                .copied()
                .unwrap_or(Quantity::ZERO);
            add(&mut u, "requests.storage", storage);
            if let Some(class) = obj["spec"]["storageClassName"].as_str() {
                let prefix = format!("{class}.storageclass.storage.k8s.io");
                add(&mut u, format!("{prefix}/requests.storage"), storage);
                add(
                    &mut u,
                    format!("{prefix}/persistentvolumeclaims"),
                    Quantity::count(1),
                );
            }
        }
        (true, "ConfigMap") => add(&mut u, "configmaps", Quantity::count(1)),
        (true, "Secret") => add(&mut u, "secrets", Quantity::count(1)),
        (true, "ReplicationController") => {
            add(&mut u, "replicationcontrollers", Quantity::count(1))
        }
        (true, "ResourceQuota") => add(&mut u, "resourcequotas", Quantity::count(1)),
        _ => {}
    }
    u
}

fn best_effort(pod: &Value) -> bool {
    ["containers", "initContainers"].iter().all(|list| {
        pod["spec"][list].as_array().into_iter().flatten().all(|c| {
            ["requests", "limits"].iter().all(|f| {
                c["resources"][f]
                    .as_object()
                    .is_none_or(|m| !m.keys().any(|k| k == "cpu" || k == "memory"))
            })
        })
    })
}

/// Whether one scope (with its selector operator and values, for
/// scopeSelector expressions) selects the pod.
fn scope_selects(scope: &str, operator: &str, values: &[Value], pod: &Value) -> bool {
    let selects = match scope {
        "Terminating" => pod["spec"]["activeDeadlineSeconds"].as_i64().is_some(),
        "NotTerminating" => pod["spec"]["activeDeadlineSeconds"].as_i64().is_none(),
        "BestEffort" => best_effort(pod),
        "NotBestEffort" => !best_effort(pod),
        "PriorityClass" => {
            let class = pod["spec"]["priorityClassName"].as_str().unwrap_or("");
            return match operator {
                "In" => values.iter().any(|v| v == class),
                "NotIn" => !values.iter().any(|v| v == class),
                "Exists" => !class.is_empty(),
                "DoesNotExist" => class.is_empty(),
                _ => false,
            };
        }
        _ => false,
    };
    match operator {
        "DoesNotExist" => !selects,
        _ => selects,
    }
}

/// Whether a quota tracks this object: quotas with scopes track pods only,
/// and only those every scope selects.
fn tracks(quota: &Value, kind: &KindInfo, obj: &Value) -> bool {
    let scopes: Vec<(&str, &str, &[Value])> = quota["spec"]["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| (s, "Exists", &[][..]))
        .chain(
            quota["spec"]["scopeSelector"]["matchExpressions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    (
                        e["scopeName"].as_str().unwrap_or(""),
                        e["operator"].as_str().unwrap_or(""),
                        e["values"].as_array().map_or(&[][..], Vec::as_slice),
                    )
                }),
        )
        .collect();
    if scopes.is_empty() {
        return true;
    }
    kind.group.is_empty()
        && kind.kind == "Pod"
        && scopes
            .iter()
            .all(|(s, op, values)| scope_selects(s, op, values, obj))
}

fn hard(quota: &Value) -> Resources {
    parse_list(quota.pointer("/spec/hard"))
}

/// The kinds whose objects can count against `hard`.
fn counted_kinds(hard: &Resources) -> Vec<&'static KindInfo> {
    let mut seen = BTreeSet::new();
    KINDS
        .iter()
        .filter(|k| k.namespaced && seen.insert(k.storage))
        .filter(|k| {
            let legacy = k.group.is_empty()
                && matches!(
                    k.kind,
                    "Pod"
                        | "Service"
                        | "PersistentVolumeClaim"
                        | "ConfigMap"
                        | "Secret"
                        | "ReplicationController"
                        | "ResourceQuota"
                );
            legacy || hard.contains_key(&count_name(k))
        })
        .collect()
}

/// What the objects in `namespace` use of the quota's `hard` resources,
/// from the watch caches.
pub fn compute_used(core: &Core, namespace: &str, quota: &Value) -> Resources {
    let hard = hard(quota);
    let mut used: Resources = hard.keys().map(|k| (k.clone(), Quantity::ZERO)).collect();
    for kind in counted_kinds(&hard) {
        for obj in super::cached(core, kind.group, kind.plural, Some(namespace)) {
            if !tracks(quota, kind, &obj) {
                continue;
            }
            for (name, q) in usage(kind, &obj) {
                if hard.contains_key(&name) {
                    add(&mut used, name, q);
                }
            }
        }
    }
    used
}

fn pretty(list: &Resources) -> String {
    list.iter()
        .map(|(k, q)| format!("{k}={}", q.canonical()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The compute resources a quota requires every container to state, and
/// the containers that do not.
fn missing_constraints(hard: &Resources, pod: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (field, res, names) in [
        ("requests", "cpu", ["requests.cpu", "cpu"]),
        ("requests", "memory", ["requests.memory", "memory"]),
        ("limits", "cpu", ["limits.cpu", "limits.cpu"]),
        ("limits", "memory", ["limits.memory", "limits.memory"]),
    ] {
        let Some(required) = names.iter().find(|n| hard.contains_key(**n)) else {
            continue;
        };
        let lacking: Vec<&str> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["resources"][field][res].is_null())
            .filter_map(|c| c["name"].as_str())
            .collect();
        if !lacking.is_empty() {
            out.push(format!("{required} for: {}", lacking.join(",")));
        }
    }
    out.sort();
    out
}

fn used_of(quota: &Value) -> Resources {
    parse_list(quota.pointer("/status/used"))
}

/// The quota with its status set to `hard` and `used`.
fn with_status(quota: &Value, used: &Resources) -> Value {
    let mut q = quota.clone();
    let hard: Map<String, Value> = quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let used: Map<String, Value> = used
        .iter()
        .map(|(k, v)| (k.clone(), json!(v.canonical())))
        .collect();
    q["status"] = json!({"hard": hard, "used": used});
    q
}

/// Charges `obj` (about to be created) to the quotas of `namespace`.
pub async fn charge(
    core: &Core,
    kind: &'static KindInfo,
    obj: &Value,
    namespace: &str,
    dry_run: bool,
) -> Result<(), ApiStatus> {
    charge_delta(core, kind, obj, usage(kind, obj), namespace, dry_run).await
}

/// What an update of `old` to `new` adds to the usage it is charged for:
/// only Services (a type change to NodePort or LoadBalancer) and
/// PersistentVolumeClaims (a resize) are charged on update, as upstream's
/// evaluators do, and only for what grew.
pub fn update_delta(kind: &KindInfo, new: &Value, old: &Value) -> Resources {
    if !kind.group.is_empty() || !matches!(kind.kind, "Service" | "PersistentVolumeClaim") {
        return Resources::new();
    }
    let before = usage(kind, old);
    usage(kind, new)
        .into_iter()
        .filter_map(|(name, q)| {
            let grown = q - before.get(&name).copied().unwrap_or(Quantity::ZERO);
            (grown > Quantity::ZERO).then_some((name, grown))
        })
        .collect()
}

/// Charges an update of `old` to `new` (see [`update_delta`]).
pub async fn charge_update(
    core: &Core,
    kind: &'static KindInfo,
    new: &Value,
    old: &Value,
    namespace: &str,
    dry_run: bool,
) -> Result<(), ApiStatus> {
    let delta = update_delta(kind, new, old);
    if delta.is_empty() {
        return Ok(());
    }
    charge_delta(core, kind, new, delta, namespace, dry_run).await
}

/// Charges `delta` for `obj` to the quotas of `namespace` that track it.
async fn charge_delta(
    core: &Core,
    kind: &'static KindInfo,
    obj: &Value,
    delta: Resources,
    namespace: &str,
    dry_run: bool,
) -> Result<(), ApiStatus> {
    let Some(quotas) = quota_kind() else {
        return Ok(());
    };
    let name = object::name(obj).to_string();
    'attempt: for _ in 0..TRIES {
        let page = core
            .store
            .list(&quotas.prefix(Some(namespace)), ListOptions::default())
            .await
            .map_err(store_error)?;
        let mut writes = Vec::new();
        for kv in &page.kvs {
            let Ok(quota) = object::decode(kv) else {
                continue;
            };
            if !tracks(&quota, kind, obj) {
                continue;
            }
            let hard = hard(&quota);
            let quota_name = object::name(&quota).to_string();
            if kind.group.is_empty() && kind.kind == "Pod" {
                let missing = missing_constraints(&hard, obj);
                if !missing.is_empty() {
                    return Err(ApiStatus::forbidden(
                        kind,
                        &name,
                        &format!(
                            "failed quota: {quota_name}: must specify {}",
                            missing.join("; ")
                        ),
                    ));
                }
            }
            let relevant: Vec<&String> = delta.keys().filter(|k| hard.contains_key(*k)).collect();
            if relevant.is_empty() {
                continue;
            }
            let over = |used: &Resources| {
                relevant.iter().any(|r| {
                    let now = used.get(*r).copied().unwrap_or(Quantity::ZERO);
                    now + delta[*r] > hard[*r]
                })
            };
            let mut used = used_of(&quota);
            if over(&used) {
                // status.used may still count what has since gone away.
                used = compute_used(core, namespace, &quota);
            }
            if over(&used) {
                let pick = |list: &Resources| -> Resources {
                    relevant
                        .iter()
                        .map(|r| {
                            (
                                (*r).clone(),
                                list.get(*r).copied().unwrap_or(Quantity::ZERO),
                            )
                        })
                        .collect()
                };
                return Err(ApiStatus::forbidden(
                    kind,
                    &name,
                    &format!(
                        "exceeded quota: {quota_name}, requested: {}, used: {}, limited: {}",
                        pretty(&pick(&delta)),
                        pretty(&pick(&used)),
                        pretty(&pick(&hard)),
                    ),
                ));
            }
            for r in &relevant {
                add(&mut used, (*r).clone(), delta[*r]);
            }
            for r in hard.keys() {
                used.entry(r.clone()).or_insert(Quantity::ZERO);
            }
            used.retain(|k, _| hard.contains_key(k));
            writes.push((kv.key.clone(), kv.mod_revision, with_status(&quota, &used)));
        }
        if dry_run {
            return Ok(());
        }
        for (key, revision, quota) in writes {
            match core
                .store
                .update(&key, object::encode(&quota), revision, None)
                .await
            {
                Ok(_) => {}
                Err(StoreError::Conflict { .. }) => continue 'attempt,
                Err(e) => return Err(store_error(e)),
            }
        }
        return Ok(());
    }
    Err(ApiStatus::new(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on resourcequotas in {namespace}: the quotas changed too often, try again"
        ),
    ))
}

/// Recomputes every quota of `namespace`; `false` if a write lost a race.
async fn recompute(core: &Core, namespace: &str) -> bool {
    let Some(quotas) = quota_kind() else {
        return true;
    };
    let Ok(page) = core
        .store
        .list(&quotas.prefix(Some(namespace)), ListOptions::default())
        .await
    else {
        return false;
    };
    let mut settled = true;
    for kv in &page.kvs {
        let Ok(quota) = object::decode(kv) else {
            continue;
        };
        let used = compute_used(core, namespace, &quota);
        let updated = with_status(&quota, &used);
        if updated.get("status") == quota.get("status") {
            continue;
        }
        match core
            .store
            .update(&kv.key, object::encode(&updated), kv.mod_revision, None)
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => settled = false,
            Err(e) => {
                tracing::warn!(namespace, error = %e, "updating quota usage");
                settled = false;
            }
        }
    }
    settled
}

/// Follows every namespaced watch cache and recomputes the quotas of the
/// namespaces where something changed (at most every half second per
/// namespace). Idle when nothing changes.
pub fn start(core: Arc<Core>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Option<String>>();
    let mut seen = BTreeSet::new();
    for kind in KINDS
        .iter()
        .filter(|k| k.namespaced && seen.insert(k.storage))
    {
        let Ok(cache) = core.cache(kind) else {
            continue;
        };
        let Ok(sub) = cache.subscribe(Some(cache.revision())) else {
            continue;
        };
        let tx = tx.clone();
        let mut live = sub.live;
        tokio::spawn(async move {
            loop {
                let dirty = match live.recv().await {
                    Ok(event) => meta_str(&event.object, "namespace").map(String::from),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(dirty).is_err() {
                    return;
                }
            }
        });
    }
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mut dirty = BTreeSet::new();
            let mut everything = false;
            for d in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
                match d {
                    Some(ns) => {
                        dirty.insert(ns);
                    }
                    None => everything = true,
                }
            }
            if everything {
                if let Some(quotas) = quota_kind() {
                    if let Ok(cache) = core.cache(quotas) {
                        for q in cache.list(&quotas.prefix(None)).0 {
                            if let Some(ns) = meta_str(&q, "namespace") {
                                dirty.insert(ns.to_string());
                            }
                        }
                    }
                }
            }
            for ns in dirty {
                let has_quota = quota_kind()
                    .and_then(|k| core.cache(k).ok().map(|c| (k, c)))
                    .is_some_and(|(k, c)| !c.list(&k.prefix(Some(&ns))).0.is_empty());
                if has_quota && !recompute(&core, &ns).await {
                    // Lost a race with a charge: look again shortly.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    recompute(&core, &ns).await;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(plural: &str) -> &'static KindInfo {
        registry::lookup("", "v1", plural).expect("kind")
    }

    #[test]
    fn updates_charge_only_what_grew() {
        let svc = kind("services");
        let cluster_ip = json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80}]}});
        let node_port = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        let delta = update_delta(svc, &node_port, &cluster_ip);
        assert_eq!(delta.len(), 1, "{delta:?}");
        assert_eq!(delta.get("services.nodeports"), Some(&Quantity::count(1)));
        assert!(update_delta(svc, &cluster_ip, &node_port).is_empty());
        let pvc = kind("persistentvolumeclaims");
        let small = json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}});
        let big = json!({"spec": {"resources": {"requests": {"storage": "3Gi"}}}});
        let grown = update_delta(pvc, &big, &small);
        assert_eq!(
            grown.get("requests.storage"),
            Some(&Quantity::parse("2Gi").expect("quantity"))
        );
        assert!(update_delta(kind("pods"), &big, &small).is_empty());
    }

    #[test]
    fn a_pod_uses_counts_requests_and_limits() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "500m"}}},
            {"name": "b", "resources": {"requests": {"cpu": "250m"}}}]}});
        let u = usage(kind("pods"), &pod);
        assert_eq!(u["pods"], Quantity::count(1));
        assert_eq!(u["count/pods"], Quantity::count(1));
        assert_eq!(u["requests.cpu"].canonical(), "500m");
        assert_eq!(u["cpu"].canonical(), "500m");
        assert_eq!(u["requests.memory"].canonical(), "64Mi");
        assert_eq!(u["limits.cpu"].canonical(), "500m");
        let done = json!({"spec": {}, "status": {"phase": "Succeeded"}});
        assert!(usage(kind("pods"), &done).is_empty());
    }

    #[test]
    fn scopes_select_pods_only() {
        let quota = json!({"spec": {"scopes": ["BestEffort"], "hard": {"pods": "1"}}});
        let plain = json!({"spec": {"containers": [{"name": "a"}]}});
        let sized = json!({"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]}});
        assert!(tracks(&quota, kind("pods"), &plain));
        assert!(!tracks(&quota, kind("pods"), &sized));
        assert!(!tracks(&quota, kind("configmaps"), &json!({})));
        let by_class = json!({"spec": {"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}});
        let high = json!({"spec": {"priorityClassName": "high"}});
        assert!(tracks(&by_class, kind("pods"), &high));
        assert!(!tracks(&by_class, kind("pods"), &plain));
    }

    #[test]
    fn containers_must_state_what_the_quota_limits() {
        let hard = parse_list(Some(&json!({"limits.memory": "1Gi", "cpu": "2"})));
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": "1"}}},
            {"name": "b"}]}});
        assert_eq!(
            missing_constraints(&hard, &pod),
            vec![
                "cpu for: b".to_string(),
                "limits.memory for: a,b".to_string()
            ]
        );
    }
}
