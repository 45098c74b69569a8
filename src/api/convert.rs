//! Conversion between a kind's served versions and its storage form.
//!
//! Kinds served in more than one group or version share one storage prefix
//! and one stored form, as upstream does: core `v1` Events back
//! `events.k8s.io/v1` Events, and `autoscaling/v2` backs `autoscaling/v1`
//! HorizontalPodAutoscalers. The first row of the kind table with a given
//! storage prefix is the storage form.

use serde_json::{Map, Value, json};

use crate::api::registry::{KINDS, KindInfo};

/// The row whose form objects of `kind` are stored in.
pub fn storage_row(kind: &'static KindInfo) -> &'static KindInfo {
    KINDS
        .iter()
        .find(|k| k.storage == kind.storage)
        .unwrap_or(kind)
}

/// Moves `from` to `to` within one JSON object, if present.
fn rename(obj: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = obj.remove(from) {
        obj.insert(to.to_string(), v);
    }
}

const EVENT_RENAMES: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// The stored object in the form `kind` serves, with its apiVersion and kind.
pub fn from_storage(kind: &'static KindInfo, mut obj: Value) -> Value {
    let storage = storage_row(kind);
    if let Some(map) = obj.as_object_mut() {
        if !std::ptr::eq(storage, kind) {
            match kind.kind {
                "Event" => EVENT_RENAMES.iter().for_each(|(a, b)| rename(map, a, b)),
                "HorizontalPodAutoscaler" => hpa_v2_to_v1(map),
                _ => {}
            }
        }
        map.insert("apiVersion".into(), json!(kind.api_version()));
        map.insert("kind".into(), json!(kind.kind));
    }
    obj
}

/// An object sent in the form `kind` serves, in its storage form.
pub fn to_storage(kind: &'static KindInfo, mut obj: Value) -> Value {
    let storage = storage_row(kind);
    if let Some(map) = obj.as_object_mut() {
        if !std::ptr::eq(storage, kind) {
            match kind.kind {
                "Event" => EVENT_RENAMES.iter().for_each(|(a, b)| rename(map, b, a)),
                "HorizontalPodAutoscaler" => hpa_v1_to_v2(map),
                _ => {}
            }
        }
        map.insert("apiVersion".into(), json!(storage.api_version()));
        map.insert("kind".into(), json!(storage.kind));
    }
    obj
}

fn hpa_v2_to_v1(map: &mut Map<String, Value>) {
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        let cpu = spec
            .remove("metrics")
            .and_then(|m| m.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
            .and_then(|m| m["resource"]["target"]["averageUtilization"].as_i64());
        spec.remove("behavior");
        if let Some(cpu) = cpu {
            spec.insert("targetCPUUtilizationPercentage".into(), json!(cpu));
        }
    }
    if let Some(status) = map.get_mut("status").and_then(Value::as_object_mut) {
        let cpu = status
            .remove("currentMetrics")
            .and_then(|m| m.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
            .and_then(|m| m["resource"]["current"]["averageUtilization"].as_i64());
        status.remove("conditions");
        if let Some(cpu) = cpu {
            status.insert("currentCPUUtilizationPercentage".into(), json!(cpu));
        }
    }
}

fn hpa_v1_to_v2(map: &mut Map<String, Value>) {
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(cpu) = spec.remove("targetCPUUtilizationPercentage") {
            spec.insert(
                "metrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}]),
            );
        }
    }
    if let Some(status) = map.get_mut("status").and_then(Value::as_object_mut) {
        if let Some(cpu) = status.remove("currentCPUUtilizationPercentage") {
            status.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::lookup;

    #[test]
    fn events_round_trip_through_core_storage() {
        let Some(ev) = lookup("events.k8s.io", "v1", "events") else {
            panic!("row")
        };
        assert_eq!(storage_row(ev).group, "");
        let sent = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "hi", "regarding": {"kind": "Pod"}});
        let stored = to_storage(ev, sent.clone());
        assert_eq!(stored["message"], "hi");
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(from_storage(ev, stored), sent);
    }

    #[test]
    fn hpa_v1_cpu_target_maps_to_v2_metrics() {
        let Some(v1) = lookup("autoscaling", "v1", "horizontalpodautoscalers") else {
            panic!("row")
        };
        let sent = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 50}});
        let stored = to_storage(v1, sent.clone());
        assert_eq!(
            stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            50
        );
        assert_eq!(from_storage(v1, stored), sent);
    }
}
