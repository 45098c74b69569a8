//! PodDisruptionBudgets (policy/v1): `minAvailable` xor `maxUnavailable`,
//! each a non-negative count or a percentage up to 100%, a valid selector,
//! and the zeroed status of a new budget.

use serde_json::{Value, json};

use super::labelselector::validate_selector;
use super::validation::{invalid, not_supported, str_at, type_invalid, validate_meta};
use super::{Cause, Strategy};

/// PodDisruptionBudgets (policy/v1).
pub struct PodDisruptionBudgetStrategy;

fn int_or_percent(v: &Value, field: &str, errs: &mut Vec<Cause>) {
    match v {
        Value::Null => {}
        Value::Number(n) => {
            if n.as_i64().is_none_or(|n| n < 0) {
                errs.push(invalid(field, v.clone(), "must be greater than or equal to 0"));
            }
        }
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if p > 100 => errs.push(invalid(field, s.as_str(), "must not be greater than 100%")),
            Some(p) if p >= 0 => {}
            _ => errs.push(invalid(
                field,
                s.as_str(),
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            )),
        },
        other => errs.push(type_invalid(field, other, "must be an integer or percentage")),
    }
}

impl Strategy for PodDisruptionBudgetStrategy {
    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert(
                "status".into(),
                json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
            );
        }
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let min = spec.get("minAvailable").unwrap_or(&Value::Null);
        let max = spec.get("maxUnavailable").unwrap_or(&Value::Null);
        if !min.is_null() && !max.is_null() {
            errs.push(invalid(
                "spec.minAvailable",
                min.clone(),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        int_or_percent(min, "spec.minAvailable", &mut errs);
        int_or_percent(max, "spec.maxUnavailable", &mut errs);
        if let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) {
            errs.extend(validate_selector(sel, "spec.selector"));
        }
        if let Some(p) = str_at(spec, "unhealthyPodEvictionPolicy") {
            if !matches!(p, "IfHealthyBudget" | "AlwaysAllow") {
                errs.push(not_supported(
                    "spec.unhealthyPodEvictionPolicy",
                    p,
                    &["AlwaysAllow", "IfHealthyBudget"],
                ));
            }
        }
        errs
    }

    fn tracks_generation(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_xor_max_and_percentages() {
        let both = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": 1, "maxUnavailable": "10%"}});
        let errs = PodDisruptionBudgetStrategy.validate_create(&both);
        assert_eq!(
            errs[0].message,
            "Invalid value: 1: minAvailable and maxUnavailable cannot be both set"
        );
        let pct = json!({"metadata": {"name": "p"}, "spec": {"maxUnavailable": "150%", "selector": {"matchLabels": {"a": "b"}}}});
        assert_eq!(
            PodDisruptionBudgetStrategy.validate_create(&pct)[0].field,
            "spec.maxUnavailable"
        );
        let mut ok = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}});
        PodDisruptionBudgetStrategy.prepare_for_create(&mut ok);
        assert!(PodDisruptionBudgetStrategy.validate_create(&ok).is_empty());
        assert_eq!(ok["status"]["disruptionsAllowed"], 0);
    }
}
