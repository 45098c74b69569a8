//! LimitRanger: container defaults from the namespace's LimitRanges, and the
//! min / max / maxLimitRequestRatio checks for containers, pods and
//! PersistentVolumeClaims, with upstream's messages.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::api::kinds::quantity::Quantity;
use crate::api::registry::KindInfo;

/// The annotation that records what the plugin set.
pub const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// Resource name → quantity.
pub type Resources = BTreeMap<String, Quantity>;

/// A resource list (`{"cpu": "100m"}`), skipping malformed entries.
pub fn parse_list(v: Option<&Value>) -> Resources {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), Quantity::parse(q.as_str()?).ok()?)))
        .collect()
}

fn items<'a>(ranges: &'a [Arc<Value>], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    ranges
        .iter()
        .filter_map(|r| r["spec"]["limits"].as_array())
        .flatten()
        .filter(move |item| item["type"] == kind)
}

/// Fills each container's missing requests and limits from the
/// LimitRanges' `defaultRequest` and `default`, and records what it set in
/// the `kubernetes.io/limit-ranger` annotation, as upstream.
pub fn default_pod(pod: &mut Value, ranges: &[Arc<Value>]) {
    let mut notes = Vec::new();
    for item in items(ranges, "Container") {
        for (list, prefix) in [
            ("initContainers", "init container"),
            ("containers", "container"),
        ] {
            let Some(containers) = pod
                .pointer_mut(&format!("/spec/{list}"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for c in containers.iter_mut() {
                let name = c["name"].as_str().unwrap_or("").to_string();
                let Some(c) = c.as_object_mut() else { continue };
                let set_requests = fill(c, "requests", item.get("defaultRequest"));
                let set_limits = fill(c, "limits", item.get("default"));
                if !set_requests.is_empty() {
                    notes.push(format!(
                        "{} request for {prefix} {name}",
                        set_requests.join(", ")
                    ));
                }
                if !set_limits.is_empty() {
                    notes.push(format!(
                        "{} limit for {prefix} {name}",
                        set_limits.join(", ")
                    ));
                }
            }
        }
    }
    if !notes.is_empty() {
        let meta = crate::api::object::meta_mut(pod);
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !annotations.is_object() {
            *annotations = Value::Object(Map::new());
        }
        if let Some(a) = annotations.as_object_mut() {
            a.insert(
                ANNOTATION.into(),
                json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
            );
        }
    }
}

/// Sets the entries of `defaults` missing from `resources.<field>`; returns
/// the names set, sorted.
fn fill(container: &mut Map<String, Value>, field: &str, defaults: Option<&Value>) -> Vec<String> {
    let Some(defaults) = defaults
        .and_then(Value::as_object)
        .filter(|d| !d.is_empty())
    else {
        return Vec::new();
    };
    let resources = container
        .entry("resources")
        .or_insert_with(|| Value::Object(Map::new()));
    if !resources.is_object() {
        *resources = Value::Object(Map::new());
    }
    let Some(resources) = resources.as_object_mut() else {
        return Vec::new();
    };
    let list = resources
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !list.is_object() {
        *list = Value::Object(Map::new());
    }
    let Some(list) = list.as_object_mut() else {
        return Vec::new();
    };
    let mut set = Vec::new();
    for (name, q) in defaults {
        if !list.contains_key(name) {
            list.insert(name.clone(), q.clone());
            set.push(name.clone());
        }
    }
    set.sort();
    set
}

/// Upstream's `Quantity.String()` of a parsed value.
fn show(q: &Quantity) -> String {
    q.canonical()
}

/// The min / max / ratio checks of one LimitRange item against observed
/// requests and limits.
fn check(
    limit_type: &str,
    item: &Value,
    requests: &Resources,
    limits: &Resources,
    problems: &mut Vec<String>,
) {
    for (name, min) in parse_list(item.get("min")) {
        match (requests.get(&name), limits.get(&name)) {
            (None, _) => problems.push(format!(
                "minimum {name} usage per {limit_type} is {}.  No request is specified",
                show(&min)
            )),
            (Some(req), _) if *req < min => problems.push(format!(
                "minimum {name} usage per {limit_type} is {}, but request is {}",
                show(&min),
                show(req)
            )),
            (_, Some(lim)) if *lim < min => problems.push(format!(
                "minimum {name} usage per {limit_type} is {}, but limit is {}",
                show(&min),
                show(lim)
            )),
            _ => {}
        }
    }
    for (name, max) in parse_list(item.get("max")) {
        match (requests.get(&name), limits.get(&name)) {
            (_, None) => problems.push(format!(
                "maximum {name} usage per {limit_type} is {}.  No limit is specified",
                show(&max)
            )),
            (_, Some(lim)) if *lim > max => problems.push(format!(
                "maximum {name} usage per {limit_type} is {}, but limit is {}",
                show(&max),
                show(lim)
            )),
            (Some(req), _) if *req > max => problems.push(format!(
                "maximum {name} usage per {limit_type} is {}, but request is {}",
                show(&max),
                show(req)
            )),
            _ => {}
        }
    }
    for (name, ratio) in parse_list(item.get("maxLimitRequestRatio")) {
        let req = requests.get(&name).filter(|q| q.nanos() != 0);
        let lim = limits.get(&name).filter(|q| q.nanos() != 0);
        match (req, lim) {
            (None, _) => problems.push(format!(
                "{name} max limit to request ratio per {limit_type} is {}, but no request is specified or request is 0",
                show(&ratio)
            )),
            (_, None) => problems.push(format!(
                "{name} max limit to request ratio per {limit_type} is {}, but no limit is specified or limit is 0",
                show(&ratio)
            )),
            (Some(req), Some(lim)) => {
                let observed = lim.nanos() as f64 / req.nanos() as f64;
                if observed > ratio.nanos() as f64 / 1e9 {
                    problems.push(format!(
                        "{name} max limit to request ratio per {limit_type} is {}, but provided ratio is {observed:.6}",
                        show(&ratio)
                    ));
                }
            }
        }
    }
}

fn containers(pod: &Value, list: &str) -> Vec<(Resources, Resources)> {
    pod["spec"][list]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                parse_list(c.pointer("/resources/requests")),
                parse_list(c.pointer("/resources/limits")),
            )
        })
        .collect()
}

/// A pod's total: the sum over its containers, raised to any init
/// container's value that is larger.
pub fn pod_total(pod: &Value, pick: fn(&(Resources, Resources)) -> &Resources) -> Resources {
    let mut total = Resources::new();
    for c in containers(pod, "containers") {
        for (k, q) in pick(&c) {
            let sum = total.get(k).copied().unwrap_or(Quantity::ZERO) + *q;
            total.insert(k.clone(), sum);
        }
    }
    for c in containers(pod, "initContainers") {
        for (k, q) in pick(&c) {
            if total.get(k).is_none_or(|t| q > t) {
                total.insert(k.clone(), *q);
            }
        }
    }
    total
}

/// The problems of a pod or PersistentVolumeClaim against the LimitRanges.
pub fn validate(kind: &KindInfo, obj: &Value, ranges: &[Arc<Value>]) -> Vec<String> {
    let mut problems = Vec::new();
    if kind.kind == "PersistentVolumeClaim" {
        let requests = parse_list(obj.pointer("/spec/resources/requests"));
        let limits = parse_list(obj.pointer("/spec/resources/limits"));
        for item in items(ranges, "PersistentVolumeClaim") {
            check(
                "PersistentVolumeClaim",
                item,
                &requests,
                &limits,
                &mut problems,
            );
        }
        return problems;
    }
    for item in items(ranges, "Container") {
        for list in ["initContainers", "containers"] {
            for (requests, limits) in containers(obj, list) {
                check("Container", item, &requests, &limits, &mut problems);
            }
        }
    }
    let requests = pod_total(obj, |c| &c.0);
    let limits = pod_total(obj, |c| &c.1);
    for item in items(ranges, "Pod") {
        check("Pod", item, &requests, &limits, &mut problems);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: Value) -> Vec<Arc<Value>> {
        vec![Arc::new(json!({"spec": {"limits": limits}}))]
    }

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    fn pods_kind() -> &'static KindInfo {
        crate::api::registry::lookup("", "v1", "pods").expect("pods")
    }

    #[test]
    fn defaults_fill_only_what_is_missing_and_are_annotated() {
        let ranges = range(json!([{"type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]));
        let mut p = pod(json!([{"name": "web", "resources": {"requests": {"cpu": "200m"}}}]));
        default_pod(&mut p, &ranges);
        let r = &p["spec"]["containers"][0]["resources"];
        assert_eq!(r["requests"], json!({"cpu": "200m", "memory": "128Mi"}));
        assert_eq!(r["limits"], json!({"cpu": "500m", "memory": "256Mi"}));
        assert_eq!(
            p["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: memory request for container web; cpu, memory limit for container web"
        );
    }

    #[test]
    fn min_max_and_ratio_are_enforced_with_upstreams_words() {
        let ranges = range(json!([{"type": "Container",
            "min": {"cpu": "100m"}, "max": {"memory": "1Gi"},
            "maxLimitRequestRatio": {"cpu": "2"}}]));
        let p = pod(json!([{"name": "a", "resources": {
            "requests": {"cpu": "50m", "memory": "1Gi"},
            "limits": {"cpu": "500m", "memory": "2Gi"}}}]));
        assert_eq!(
            validate(pods_kind(), &p, &ranges),
            vec![
                "minimum cpu usage per Container is 100m, but request is 50m".to_string(),
                "maximum memory usage per Container is 1Gi, but limit is 2Gi".to_string(),
                "cpu max limit to request ratio per Container is 2, but provided ratio is 10.000000"
                    .to_string(),
            ]
        );
        let ok = pod(json!([{"name": "a", "resources": {
            "requests": {"cpu": "100m", "memory": "1Gi"},
            "limits": {"cpu": "200m", "memory": "1Gi"}}}]));
        assert!(validate(pods_kind(), &ok, &ranges).is_empty());
    }

    #[test]
    fn pod_limits_sum_the_containers() {
        let ranges = range(json!([{"type": "Pod", "max": {"cpu": "1"}}]));
        let p = pod(json!([
            {"name": "a", "resources": {"limits": {"cpu": "600m"}}},
            {"name": "b", "resources": {"limits": {"cpu": "600m"}}}]));
        assert_eq!(
            validate(pods_kind(), &p, &ranges),
            vec!["maximum cpu usage per Pod is 1, but limit is 1200m".to_string()]
        );
    }
}
