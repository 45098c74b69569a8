//! Nodes: `podCIDR`/`podCIDRs` kept in step and immutable once set,
//! `providerID` settable once, taints with valid keys and effects, and the
//! `spec.unschedulable` field selector.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::container::canonicalize_resource_list;
use super::podspec::validate_taint_effect;
use super::validation::{
    arr_at, cidr, forbidden, invalid, invalid_each, label_value, obj_entry, qualified_name,
    required, str_at, validate_meta,
};
use super::{Cause, Strategy};

/// Nodes (core/v1).
pub struct NodeStrategy;

const CIDR_CHANGE: &str = "node updates may not change podCIDR except from \"\" to valid";

impl Strategy for NodeStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) {
            let single = str_at(spec, "podCIDR").unwrap_or("").to_string();
            let first = spec
                .pointer("/podCIDRs/0")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(m) = spec.as_object_mut() {
                match (single.is_empty(), first) {
                    (false, None) => {
                        m.insert("podCIDRs".into(), json!([single]));
                    }
                    (true, Some(first)) => {
                        m.insert("podCIDR".into(), first.into());
                    }
                    _ => {}
                }
            }
        }
        if let Some(status) = obj.get_mut("status") {
            canonicalize_resource_list(status, "capacity");
            canonicalize_resource_list(status, "allocatable");
        }
        let capacity = obj
            .pointer("/status/capacity")
            .filter(|c| c.is_object())
            .cloned();
        if let Some(capacity) = capacity {
            if let Some(status) = obj_entry(obj, "status").and_then(Value::as_object_mut) {
                status.entry("allocatable").or_insert(capacity);
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("configSource");
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let mut seen = HashSet::new();
        for (i, c) in arr_at(spec, "podCIDRs").iter().enumerate() {
            let s = c.as_str().unwrap_or("");
            let field = format!("spec.podCIDRs[{i}]");
            if !cidr(s).is_empty() {
                errs.push(invalid(&field, s, "must be a valid CIDR"));
            } else if !seen.insert(s) {
                errs.push(super::validation::duplicate(&field, s));
            }
        }
        let families: Vec<bool> = arr_at(spec, "podCIDRs")
            .iter()
            .filter_map(|c| c.as_str()?.parse::<ipnet::IpNet>().ok())
            .map(|n| matches!(n, ipnet::IpNet::V4(_)))
            .collect();
        let dual_stack_pair = families.len() == 2 && families[0] != families[1];
        if families.len() > 2 || (families.len() == 2 && !dual_stack_pair) {
            errs.push(invalid(
                "spec.podCIDRs",
                spec["podCIDRs"].clone(),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut taints = HashSet::new();
        for (i, t) in arr_at(spec, "taints").iter().enumerate() {
            let tp = format!("spec.taints[{i}]");
            let key = str_at(t, "key").unwrap_or("");
            if key.is_empty() {
                errs.push(required(&format!("{tp}.key")));
            } else {
                errs.extend(invalid_each(&format!("{tp}.key"), key, qualified_name(key)));
            }
            let value = str_at(t, "value").unwrap_or("");
            errs.extend(invalid_each(
                &format!("{tp}.value"),
                value,
                label_value(value),
            ));
            let effect = str_at(t, "effect").unwrap_or("");
            if effect.is_empty() {
                errs.push(required(&format!("{tp}.effect")));
            } else {
                validate_taint_effect(effect, &format!("{tp}.effect"), &mut errs);
            }
            if !taints.insert((key, effect)) {
                errs.push(Cause {
                    reason: "FieldValueDuplicate",
                    message: format!(
                        "Duplicate value: {}: taints must be unique by key and effect pair",
                        json!({"key": key, "effect": effect})
                    ),
                    field: tp,
                });
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        let (n, o) = (
            new.get("spec").unwrap_or(&Value::Null),
            old.get("spec").unwrap_or(&Value::Null),
        );
        let old_cidrs = arr_at(o, "podCIDRs");
        if !old_cidrs.is_empty() && arr_at(n, "podCIDRs") != old_cidrs {
            errs.push(forbidden("spec.podCIDRs", CIDR_CHANGE));
        }
        let old_provider = str_at(o, "providerID").unwrap_or("");
        if !old_provider.is_empty() && str_at(n, "providerID").unwrap_or("") != old_provider {
            errs.push(forbidden(
                "spec.providerID",
                "node updates may not change providerID except from \"\" to valid",
            ));
        }
        errs
    }

    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let unschedulable =
            obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true);
        vec![("spec.unschedulable", unschedulable.to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_cidrs_sync_and_freeze() {
        let mut n = json!({"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.42.1.0/24"}});
        NodeStrategy.default(&mut n);
        assert_eq!(n["spec"]["podCIDRs"], json!(["10.42.1.0/24"]));
        assert!(NodeStrategy.validate_create(&n).is_empty());
        let mut changed = n.clone();
        changed["spec"]["podCIDRs"] = json!(["10.42.2.0/24"]);
        assert_eq!(
            NodeStrategy.validate_update(&changed, &n)[0].field,
            "spec.podCIDRs"
        );
        let fresh = json!({"metadata": {"name": "n1"}, "spec": {}});
        assert!(NodeStrategy.validate_update(&n, &fresh).is_empty());
        let same_family = json!({"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.42.1.0/24", "10.42.2.0/24"]}});
        assert_eq!(
            NodeStrategy.validate_create(&same_family)[0].field,
            "spec.podCIDRs"
        );
        let dual = json!({"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.42.1.0/24", "fd00::/64"]}});
        assert!(NodeStrategy.validate_create(&dual).is_empty());
        let bad = json!({"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.42.1.0"]}});
        assert_eq!(
            NodeStrategy.validate_create(&bad)[0].message,
            "Invalid value: \"10.42.1.0\": must be a valid CIDR"
        );
    }

    #[test]
    fn taints_and_selector() {
        let n = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true, "taints": [
            {"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "Sometimes"}]}});
        let errs = NodeStrategy.validate_create(&n);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.taints[1]", "spec.taints[2].effect"]);
        assert_eq!(
            NodeStrategy.field_attributes(&n),
            vec![("spec.unschedulable", "true".to_string())]
        );
    }
}
