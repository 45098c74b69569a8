//! The Pod strategy: Pod-only defaults (requests from limits, service links,
//! host-network ports), the fresh status of a new Pod with its QoS class, the
//! update rule that keeps a Pod's spec immutable but for images, deadlines,
//! tolerations and the like, and the field selectors kubelets and kubectl use.

use serde_json::{Map, Value, json};

use super::podspec::{default_pod_spec, validate_pod_spec};
use super::quantity::Quantity;
use super::validation::{arr_at, forbidden, int_at, invalid, obj_at, str_at, validate_meta};
use super::{Cause, Strategy};

/// The fields a Pod update may change, in upstream's wording.
const UPDATABLE_FIELDS: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Pods (core/v1).
pub struct PodStrategy;

impl Strategy for PodStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
            return;
        };
        default_pod_spec(spec);
        for list in ["containers", "initContainers"] {
            super::validation::each_obj_mut(spec, list, default_requests_from_limits);
        }
        super::validation::default_field(spec, "enableServiceLinks", true);
        if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
            for list in ["containers", "initContainers"] {
                super::validation::each_obj_mut(spec, list, |c| {
                    super::validation::each_obj_mut(c, "ports", |p| {
                        if int_at(p, "hostPort").unwrap_or(0) == 0 {
                            if let (Some(cp), Some(m)) =
                                (p.get("containerPort").cloned(), p.as_object_mut())
                            {
                                m.insert("hostPort".into(), cp);
                            }
                        }
                    })
                });
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec") {
            super::podspec::sync_service_account(spec);
        }
        let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
        let mut status = json!({"phase": "Pending", "qosClass": qos});
        if !arr_at(obj.get("spec").unwrap_or(&Value::Null), "schedulingGates").is_empty() {
            status["conditions"] = json!([{
                "type": "PodScheduled",
                "status": "False",
                "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
            }]);
        }
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), status);
        }
    }

    fn prepare_for_update(&self, new: &mut Value, _old: &Value) {
        if let Some(spec) = new.get_mut("spec") {
            super::podspec::sync_service_account(spec);
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        errs.extend(validate_pod_spec(
            obj.get("spec").unwrap_or(&Value::Null),
            "spec",
        ));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        let null = Value::Null;
        errs.extend(validate_spec_update(
            new.get("spec").unwrap_or(&null),
            old.get("spec").unwrap_or(&null),
        ));
        errs
    }

    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let status = obj.get("status").unwrap_or(&Value::Null);
        let s = |v: &Value, k: &str| str_at(v, k).unwrap_or("").to_string();
        let pod_ip = status
            .pointer("/podIPs/0/ip")
            .and_then(Value::as_str)
            .or_else(|| str_at(status, "podIP"))
            .unwrap_or("");
        vec![
            ("spec.nodeName", s(spec, "nodeName")),
            ("spec.restartPolicy", s(spec, "restartPolicy")),
            ("spec.schedulerName", s(spec, "schedulerName")),
            ("spec.serviceAccountName", s(spec, "serviceAccountName")),
            (
                "spec.hostNetwork",
                (spec.get("hostNetwork").and_then(Value::as_bool) == Some(true)).to_string(),
            ),
            ("status.phase", s(status, "phase")),
            ("status.podIP", pod_ip.to_string()),
            ("status.nominatedNodeName", s(status, "nominatedNodeName")),
        ]
    }

    /// Since 1.33 the API server sets and bumps `metadata.generation` on Pods.
    fn tracks_generation(&self) -> bool {
        true
    }
}

/// Requests default to limits for resources with a limit but no request.
fn default_requests_from_limits(c: &mut Value) {
    let Some(limits) = c
        .pointer("/resources/limits")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    let Some(res) = c.get_mut("resources").and_then(Value::as_object_mut) else {
        return;
    };
    let requests = res
        .entry("requests")
        .or_insert_with(|| Value::Object(Map::new()));
    if requests.is_null() {
        *requests = Value::Object(Map::new());
    }
    if let Some(req) = requests.as_object_mut() {
        for (k, v) in limits {
            req.entry(k).or_insert(v);
        }
    }
}

/// Upstream's QoS class of a pod spec: Guaranteed when every container sets
/// equal CPU and memory requests and limits, BestEffort when none sets any,
/// Burstable otherwise.
pub fn qos_class(spec: &Value) -> &'static str {
    use std::collections::BTreeMap;
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let containers = arr_at(spec, "initContainers")
        .iter()
        .chain(arr_at(spec, "containers"));
    for c in containers {
        let res = c.get("resources").unwrap_or(&Value::Null);
        let amount = |map: Option<&Map<String, Value>>, name: &str| -> Option<i128> {
            let q = map?.get(name)?;
            let q = q.as_str().map_or_else(|| q.to_string(), str::to_string);
            Quantity::parse(&q)
                .ok()
                .map(|q| q.nanos())
                .filter(|n| *n > 0)
        };
        let mut found_limits = 0;
        for name in ["cpu", "memory"] {
            if let Some(n) = amount(obj_at(res, "requests"), name) {
                let r = requests.entry(name).or_default();
                *r = r.saturating_add(n);
            }
            if let Some(n) = amount(obj_at(res, "limits"), name) {
                let l = limits.entry(name).or_default();
                *l = l.saturating_add(n);
                found_limits += 1;
            }
        }
        if found_limits < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.len() == limits.len()
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
    {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Drops nulls and empty lists, which upstream's semantic equality ignores.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty)))
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// Upstream's `ValidatePodUpdate` rules on the spec.
fn validate_spec_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut errs = Vec::new();
    for list in ["containers", "initContainers"] {
        if arr_at(new, list).len() != arr_at(old, list).len() {
            errs.push(forbidden(
                &format!("spec.{list}"),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
    }
    let mut munged = new.clone();
    // images may change
    for list in ["containers", "initContainers"] {
        if let Some(items) = munged.get_mut(list).and_then(Value::as_array_mut) {
            for (c, o) in items.iter_mut().zip(arr_at(old, list)) {
                if let (Some(m), Some(img)) = (c.as_object_mut(), o.get("image")) {
                    m.insert("image".into(), img.clone());
                }
            }
        }
    }
    // activeDeadlineSeconds may be set or lowered, never raised or unset
    match (
        int_at(new, "activeDeadlineSeconds"),
        int_at(old, "activeDeadlineSeconds"),
    ) {
        (Some(n), Some(o)) if n > o => errs.push(invalid(
            "spec.activeDeadlineSeconds",
            n,
            "must be less than or equal to previous value",
        )),
        (None, Some(_)) => errs.push(invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // tolerations may only be added; existing ones keep all but tolerationSeconds
    let new_tol = arr_at(new, "tolerations");
    for (i, o) in arr_at(old, "tolerations").iter().enumerate() {
        let same = |t: &Value| {
            ["key", "operator", "value", "effect"]
                .iter()
                .all(|k| t.get(*k).unwrap_or(&Value::Null) == o.get(*k).unwrap_or(&Value::Null))
        };
        if !new_tol.iter().any(same) {
            errs.push(forbidden(
                &format!("spec.tolerations[{i}]"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
    }
    // scheduling gates may only be removed
    let new_gates = arr_at(new, "schedulingGates");
    let gates_removed_only = new_gates
        .iter()
        .all(|g| arr_at(old, "schedulingGates").contains(g));
    // a negative grace period may be corrected to 1
    let grace_fixed = int_at(old, "terminationGracePeriodSeconds").is_some_and(|o| o < 0)
        && int_at(new, "terminationGracePeriodSeconds") == Some(1);
    if let Some(m) = munged.as_object_mut() {
        let mut keep_old = vec!["activeDeadlineSeconds", "tolerations"];
        if gates_removed_only {
            keep_old.push("schedulingGates");
        }
        if grace_fixed {
            keep_old.push("terminationGracePeriodSeconds");
        }
        for key in keep_old {
            match old.get(key) {
                Some(v) => m.insert(key.into(), v.clone()),
                None => m.remove(key),
            };
        }
    }
    let (munged, old_n) = (normalize(&munged), normalize(old));
    if munged != old_n {
        let mut changed: Vec<String> = Vec::new();
        if let (Some(a), Some(b)) = (munged.as_object(), old_n.as_object()) {
            for k in a.keys().chain(b.keys()) {
                if a.get(k) != b.get(k) && !changed.contains(k) {
                    changed.push(k.clone());
                }
            }
        }
        let diff = changed
            .iter()
            .map(|k| format!("spec.{k}"))
            .collect::<Vec<_>>()
            .join(", ");
        errs.push(forbidden(
            "spec",
            &format!("{UPDATABLE_FIELDS}\n  changed: {diff}"),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(mut pod: Value) -> Value {
        PodStrategy.default(&mut pod);
        PodStrategy.prepare_for_create(&mut pod);
        pod
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}})
    }

    #[test]
    fn defaults_match_upstream_for_a_simple_pod() {
        let p = created(pod());
        assert_eq!(
            p["spec"],
            json!({
                "containers": [{"name": "web", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "securityContext": {},
                "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler",
                "enableServiceLinks": true
            })
        );
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert!(PodStrategy.validate_create(&p).is_empty());
    }

    #[test]
    fn requests_default_from_limits_and_qos_is_computed() {
        let mut p = pod();
        p["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1", "memory": "1Gi"}});
        let p = created(p);
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "1", "memory": "1Gi"})
        );
        assert_eq!(p["status"]["qosClass"], "Guaranteed");
        let mut b = pod();
        b["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m"}});
        assert_eq!(created(b)["status"]["qosClass"], "Burstable");
    }

    #[test]
    fn pod_without_containers_is_invalid() {
        let p = created(json!({"metadata": {"name": "x"}, "spec": {}}));
        let errs = PodStrategy.validate_create(&p);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, "FieldValueRequired");
        assert_eq!(errs[0].field, "spec.containers");
    }

    #[test]
    fn updates_may_change_images_but_not_other_fields() {
        let old = created(pod());
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        new["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
        new["spec"]["activeDeadlineSeconds"] = json!(60);
        assert!(PodStrategy.validate_update(&new, &old).is_empty());
        let mut bad = old.clone();
        bad["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "TCP"}]);
        let errs = PodStrategy.validate_update(&bad, &old);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec");
        assert!(errs[0].message.starts_with(
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
        ));
        let mut added = old.clone();
        if let Some(a) = added["spec"]["containers"].as_array_mut() {
            a.push(json!({"name": "b", "image": "x", "imagePullPolicy": "Always",
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}));
        }
        let errs = PodStrategy.validate_update(&added, &old);
        assert_eq!(
            errs[0].message,
            "Forbidden: pod updates may not add or remove containers"
        );
    }

    #[test]
    fn deadline_may_only_decrease() {
        let mut old = created(pod());
        old["spec"]["activeDeadlineSeconds"] = json!(60);
        let mut new = old.clone();
        new["spec"]["activeDeadlineSeconds"] = json!(120);
        let errs = PodStrategy.validate_update(&new, &old);
        assert_eq!(errs[0].field, "spec.activeDeadlineSeconds");
    }

    #[test]
    fn field_attributes_cover_upstream_selectors() {
        let mut p = created(pod());
        p["spec"]["nodeName"] = json!("n1");
        p["status"]["podIPs"] = json!([{"ip": "10.42.0.5"}]);
        let attrs = PodStrategy.field_attributes(&p);
        assert!(attrs.contains(&("spec.nodeName", "n1".into())));
        assert!(attrs.contains(&("status.phase", "Pending".into())));
        assert!(attrs.contains(&("status.podIP", "10.42.0.5".into())));
        assert!(attrs.contains(&("spec.hostNetwork", "false".into())));
        assert!(attrs.contains(&("spec.restartPolicy", "Always".into())));
    }

    #[test]
    fn host_network_copies_container_ports_to_host_ports() {
        let mut p = pod();
        p["spec"]["hostNetwork"] = json!(true);
        p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080}]);
        let p = created(p);
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
        assert!(PodStrategy.validate_create(&p).is_empty());
    }
}
