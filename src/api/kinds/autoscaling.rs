//! HorizontalPodAutoscalers (autoscaling/v2, and v1 objects by their
//! `apiVersion`): the CPU-utilisation metric and scaling behaviour defaults,
//! the scale target, replica bounds and metric targets.

use serde_json::{Value, json};

use super::validation::{
    arr_at, default_field, invalid, invalid_each, not_supported, obj_entry, path_segment_name,
    required, str_at, validate_meta,
};
use super::{Cause, Strategy};

/// HorizontalPodAutoscalers (autoscaling).
pub struct HorizontalPodAutoscalerStrategy;

fn is_v1(obj: &Value) -> bool {
    str_at(obj, "apiVersion") == Some("autoscaling/v1")
}

fn default_rules(behavior: &mut Value, key: &str, window: i64, policies: Value) {
    let Some(rules) = obj_entry(behavior, key) else {
        return;
    };
    default_field(rules, "selectPolicy", "Max");
    if rules
        .get("stabilizationWindowSeconds")
        .is_none_or(Value::is_null)
    {
        if let Some(m) = rules.as_object_mut() {
            m.insert("stabilizationWindowSeconds".into(), window.into());
        }
    }
    if rules.get("policies").is_none_or(Value::is_null) {
        if let Some(m) = rules.as_object_mut() {
            m.insert("policies".into(), policies);
        }
    }
}

impl Strategy for HorizontalPodAutoscalerStrategy {
    fn default(&self, obj: &mut Value) {
        let v1 = is_v1(obj);
        let Some(spec) = obj_entry(obj, "spec") else {
            return;
        };
        default_field(spec, "minReplicas", 1);
        if v1 {
            return;
        }
        if arr_at(spec, "metrics").is_empty() {
            if let Some(m) = spec.as_object_mut() {
                m.insert(
                    "metrics".into(),
                    json!([{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80}}}]),
                );
            }
        }
        if let Some(behavior) = spec.get_mut("behavior").filter(|b| b.is_object()) {
            default_rules(
                behavior,
                "scaleUp",
                0,
                json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]),
            );
            default_rules(
                behavior,
                "scaleDown",
                300,
                json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
            );
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let status = if is_v1(obj) {
            json!({"currentReplicas": 0, "desiredReplicas": 0})
        } else {
            json!({"desiredReplicas": 0})
        };
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), status);
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let target = spec.get("scaleTargetRef").unwrap_or(&Value::Null);
        if str_at(target, "kind").is_none_or(str::is_empty) {
            errs.push(required("spec.scaleTargetRef.kind"));
        }
        match str_at(target, "name").unwrap_or("") {
            "" => errs.push(required("spec.scaleTargetRef.name")),
            n => errs.extend(invalid_each(
                "spec.scaleTargetRef.name",
                n,
                path_segment_name(n),
            )),
        }
        let min = spec.get("minReplicas").and_then(Value::as_i64);
        let max = spec.get("maxReplicas").and_then(Value::as_i64).unwrap_or(0);
        if let Some(min) = min.filter(|m| *m < 1) {
            errs.push(invalid(
                "spec.minReplicas",
                min,
                "must be greater than or equal to 1",
            ));
        }
        if max < 1 {
            errs.push(invalid("spec.maxReplicas", max, "must be greater than 0"));
        }
        if min.is_some_and(|min| max < min) {
            errs.push(invalid(
                "spec.maxReplicas",
                max,
                "must be greater than or equal to `minReplicas`",
            ));
        }
        if is_v1(obj) {
            if let Some(t) = spec
                .get("targetCPUUtilizationPercentage")
                .and_then(Value::as_i64)
            {
                if t < 1 {
                    errs.push(invalid(
                        "spec.targetCPUUtilizationPercentage",
                        t,
                        "must be greater than 0",
                    ));
                }
            }
            return errs;
        }
        for (i, m) in arr_at(spec, "metrics").iter().enumerate() {
            validate_metric(m, &format!("spec.metrics[{i}]"), &mut errs);
        }
        errs
    }
}

fn validate_metric(m: &Value, mp: &str, errs: &mut Vec<Cause>) {
    let source = match str_at(m, "type").unwrap_or("") {
        "" => {
            errs.push(required(&format!("{mp}.type")));
            return;
        }
        "Resource" => "resource",
        "ContainerResource" => "containerResource",
        "Pods" => "pods",
        "Object" => "object",
        "External" => "external",
        other => {
            errs.push(not_supported(
                &format!("{mp}.type"),
                other,
                &[
                    "ContainerResource",
                    "External",
                    "Object",
                    "Pods",
                    "Resource",
                ],
            ));
            return;
        }
    };
    let Some(src) = m.get(source).filter(|s| !s.is_null()) else {
        errs.push(required(&format!("{mp}.{source}")));
        return;
    };
    let sp = format!("{mp}.{source}");
    if matches!(source, "resource" | "containerResource")
        && str_at(src, "name").is_none_or(str::is_empty)
    {
        errs.push(required(&format!("{sp}.name")));
    }
    let target = src.get("target").unwrap_or(&Value::Null);
    let tp = format!("{sp}.target");
    match str_at(target, "type").unwrap_or("") {
        "" => errs.push(required(&format!("{tp}.type"))),
        "Utilization" => match target.get("averageUtilization").and_then(Value::as_i64) {
            None => errs.push(required(&format!("{tp}.averageUtilization"))),
            Some(u) if u < 1 => errs.push(invalid(
                &format!("{tp}.averageUtilization"),
                u,
                "must be greater than 0",
            )),
            Some(_) => {}
        },
        "Value" | "AverageValue" => {}
        other => errs.push(not_supported(
            &format!("{tp}.type"),
            other,
            &["AverageValue", "Utilization", "Value"],
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let mut h = json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}});
        HorizontalPodAutoscalerStrategy.default(&mut h);
        assert_eq!(h["spec"]["minReplicas"], 1);
        assert_eq!(
            h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(
            h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            60
        );
        assert_eq!(h["spec"]["behavior"]["scaleUp"]["policies"][0]["value"], 4);
        assert!(
            HorizontalPodAutoscalerStrategy
                .validate_create(&h)
                .is_empty()
        );
        h["spec"]["minReplicas"] = json!(6);
        assert_eq!(
            HorizontalPodAutoscalerStrategy.validate_create(&h)[0].message,
            "Invalid value: 5: must be greater than or equal to `minReplicas`"
        );
    }
}
