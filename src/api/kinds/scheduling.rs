//! PriorityClasses (scheduling.k8s.io/v1): the user ceiling of one billion,
//! the reserved `system-` prefix, the preemption policy default, and the
//! value and policy that may not change.

use serde_json::Value;

use super::validation::{
    check_immutable, default_field, forbidden, invalid, not_supported, str_at, validate_meta,
};
use super::{Cause, Strategy};

/// The highest priority a user-defined class may have.
pub const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;
/// Upstream's system classes and their values.
pub const SYSTEM_CLASSES: [(&str, i64); 2] = [
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// PriorityClasses (scheduling.k8s.io/v1).
pub struct PriorityClassStrategy;

impl Strategy for PriorityClassStrategy {
    fn default(&self, obj: &mut Value) {
        default_field(obj, "preemptionPolicy", "PreemptLowerPriority");
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let value = obj.get("value").and_then(Value::as_i64);
        if name.starts_with("system-") {
            match SYSTEM_CLASSES.iter().find(|(n, _)| *n == name) {
                None => errs.push(forbidden(
                    "metadata.name",
                    "priority class names with 'system-' prefix are reserved for system use only",
                )),
                Some((_, v)) if value != Some(*v) => errs.push(forbidden(
                    "value",
                    &format!("value of {name} PriorityClass must be {v}"),
                )),
                Some(_) => {}
            }
        } else if value.is_some_and(|v| v > HIGHEST_USER_PRIORITY) {
            errs.push(forbidden(
                "value",
                &format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"
                ),
            ));
        }
        if obj
            .get("value")
            .is_some_and(|v| !v.is_null() && v.as_i64().is_none())
        {
            errs.push(invalid("value", obj["value"].clone(), "must be an integer"));
        }
        if let Some(p) = str_at(obj, "preemptionPolicy") {
            if !matches!(p, "PreemptLowerPriority" | "Never") {
                errs.push(not_supported(
                    "preemptionPolicy",
                    p,
                    &["Never", "PreemptLowerPriority"],
                ));
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        if new.get("value") != old.get("value") {
            errs.push(forbidden("value", "may not be changed in an update."));
        }
        errs.extend(check_immutable(
            new,
            old,
            "/preemptionPolicy",
            "preemptionPolicy",
        ));
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_ceiling_reserved_prefix_and_immutability() {
        let mut high = json!({"metadata": {"name": "high"}, "value": 2_000_000_000});
        PriorityClassStrategy.default(&mut high);
        assert_eq!(high["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(
            PriorityClassStrategy.validate_create(&high)[0].message,
            "Forbidden: maximum allowed value of a user defined priority is 1000000000"
        );
        let sys = json!({"metadata": {"name": "system-cluster-critical"}, "value": 2_000_000_000});
        assert!(PriorityClassStrategy.validate_create(&sys).is_empty());
        let fake = json!({"metadata": {"name": "system-mine"}, "value": 1});
        assert_eq!(
            PriorityClassStrategy.validate_create(&fake)[0].field,
            "metadata.name"
        );
        let old = json!({"metadata": {"name": "p"}, "value": 10});
        let new = json!({"metadata": {"name": "p"}, "value": 20});
        assert_eq!(
            PriorityClassStrategy.validate_update(&new, &old),
            vec![forbidden("value", "may not be changed in an update.")]
        );
    }
}
