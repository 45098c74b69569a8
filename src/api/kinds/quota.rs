//! LimitRanges and ResourceQuotas: resource names and quantities, the
//! container defaults a LimitRange derives from its max/default/min, the
//! ordering min ≤ defaultRequest ≤ default ≤ max, and quota scopes.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::container::{canonicalize_resource_list, validate_quantity};
use super::quantity::Quantity;
use super::validation::{
    arr_at, duplicate, invalid, invalid_each, obj_at, qualified_name, str_at, validate_meta,
};
use super::{Cause, Strategy};

/// Validates a resource list at `field` and returns the parsed quantities.
fn resource_list(
    list: Option<&Map<String, Value>>,
    field: &str,
    errs: &mut Vec<Cause>,
) -> BTreeMap<String, Quantity> {
    let mut parsed = BTreeMap::new();
    for (name, q) in list.into_iter().flatten() {
        let kp = format!("{field}[{name}]");
        errs.extend(invalid_each(&kp, name, qualified_name(name)));
        if let Some(v) = validate_quantity(q, &kp, errs) {
            parsed.insert(name.clone(), v);
        }
    }
    parsed
}

/// LimitRanges (core/v1).
pub struct LimitRangeStrategy;

impl Strategy for LimitRangeStrategy {
    fn default(&self, obj: &mut Value) {
        let Some(limits) = obj
            .pointer_mut("/spec/limits")
            .and_then(Value::as_array_mut)
        else {
            return;
        };
        for item in limits
            .iter_mut()
            .filter(|i| str_at(i, "type") == Some("Container"))
        {
            let Some(m) = item.as_object_mut() else {
                continue;
            };
            let mut default = m
                .get("default")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let mut request = m
                .get("defaultRequest")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (k, v) in m
                .get("max")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                default.entry(k.clone()).or_insert_with(|| v.clone());
            }
            for (k, v) in &default {
                request.entry(k.clone()).or_insert_with(|| v.clone());
            }
            for (k, v) in m
                .get("min")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                request.entry(k.clone()).or_insert_with(|| v.clone());
            }
            m.insert("default".into(), Value::Object(default));
            m.insert("defaultRequest".into(), Value::Object(request));
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let mut types = Vec::new();
        for (i, item) in arr_at(obj.get("spec").unwrap_or(&Value::Null), "limits")
            .iter()
            .enumerate()
        {
            let ip = format!("spec.limits[{i}]");
            let ty = str_at(item, "type").unwrap_or("");
            if types.contains(&ty) {
                errs.push(duplicate(&format!("{ip}.type"), ty));
            }
            types.push(ty);
            let mut lists = BTreeMap::new();
            for key in [
                "max",
                "min",
                "default",
                "defaultRequest",
                "maxLimitRequestRatio",
            ] {
                lists.insert(
                    key,
                    resource_list(obj_at(item, key), &format!("{ip}.{key}"), &mut errs),
                );
            }
            let empty = BTreeMap::new();
            let get = |k: &str| lists.get(k).unwrap_or(&empty);
            for (name, max) in get("max") {
                if let Some(min) = get("min").get(name).filter(|min| *min > max) {
                    errs.push(invalid(
                        &format!("{ip}.min[{name}]"),
                        min.to_string(),
                        &format!("min value {min} is greater than max value {max}"),
                    ));
                }
                if let Some(d) = get("default").get(name).filter(|d| *d > max) {
                    errs.push(invalid(
                        &format!("{ip}.default[{name}]"),
                        d.to_string(),
                        &format!("default value {d} is greater than max value {max}"),
                    ));
                }
            }
            for (name, req) in get("defaultRequest") {
                if let Some(d) = get("default").get(name).filter(|d| req > *d) {
                    errs.push(invalid(
                        &format!("{ip}.defaultRequest[{name}]"),
                        req.to_string(),
                        &format!(
                            "default request value {req} is greater than default limit value {d}"
                        ),
                    ));
                }
            }
        }
        errs
    }
}

/// ResourceQuotas (core/v1).
pub struct ResourceQuotaStrategy;

const SCOPES: [&str; 6] = [
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
];

impl Strategy for ResourceQuotaStrategy {
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec") {
            canonicalize_resource_list(spec, "hard");
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({}));
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        resource_list(obj_at(spec, "hard"), "spec.hard", &mut errs);
        for (i, s) in arr_at(spec, "scopes").iter().enumerate() {
            if !SCOPES.contains(&s.as_str().unwrap_or("")) {
                errs.push(super::validation::not_supported(
                    &format!("spec.scopes[{i}]"),
                    s.clone(),
                    &SCOPES,
                ));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_range_container_defaults_and_ordering() {
        let mut lr = json!({"metadata": {"name": "l"}, "spec": {"limits": [{"type": "Container",
            "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}});
        LimitRangeStrategy.default(&mut lr);
        let item = &lr["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "2"}));
        assert_eq!(
            item["defaultRequest"],
            json!({"cpu": "2", "memory": "64Mi"})
        );
        assert!(LimitRangeStrategy.validate_create(&lr).is_empty());
        let bad = json!({"metadata": {"name": "l"}, "spec": {"limits": [{"type": "Pod",
            "max": {"cpu": "1"}, "min": {"cpu": "2", "memory": "x"}}]}});
        let errs = LimitRangeStrategy.validate_create(&bad);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["spec.limits[0].min[memory]", "spec.limits[0].min[cpu]"]
        );
    }

    #[test]
    fn quota_quantities_and_scopes() {
        let q = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10", "cpu": "-1"}, "scopes": ["Forever"]}});
        let errs = ResourceQuotaStrategy.validate_create(&q);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.hard[cpu]", "spec.scopes[0]"]);
    }
}
