//! Leases (coordination.k8s.io/v1): the typed spec fields components use for
//! leader election and node heartbeats.

use serde_json::Value;

use super::validation::{invalid, not_supported, str_at, type_invalid, validate_meta};
use super::{Cause, Strategy};

/// Leases (coordination.k8s.io/v1).
pub struct LeaseStrategy;

fn check_micro_time(spec: &Value, key: &str, errs: &mut Vec<Cause>) {
    match spec.get(key) {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.parse::<jiff::Timestamp>().is_ok() => {}
        Some(v) => errs.push(type_invalid(
            &format!("spec.{key}"),
            v,
            "must be an RFC 3339 timestamp",
        )),
    }
}

impl Strategy for LeaseStrategy {
    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        match spec.get("leaseDurationSeconds") {
            None | Some(Value::Null) => {}
            Some(v) => {
                if v.as_i64().is_none_or(|n| n <= 0) {
                    errs.push(invalid(
                        "spec.leaseDurationSeconds",
                        v.clone(),
                        "must be greater than 0",
                    ));
                }
            }
        }
        match spec.get("leaseTransitions") {
            None | Some(Value::Null) => {}
            Some(v) => {
                if v.as_i64().is_none_or(|n| n < 0) {
                    errs.push(invalid(
                        "spec.leaseTransitions",
                        v.clone(),
                        "must be greater than or equal to 0",
                    ));
                }
            }
        }
        if let Some(v) = spec
            .get("holderIdentity")
            .filter(|v| !v.is_null() && !v.is_string())
        {
            errs.push(type_invalid("spec.holderIdentity", v, "must be a string"));
        }
        check_micro_time(spec, "acquireTime", &mut errs);
        check_micro_time(spec, "renewTime", &mut errs);
        if let Some(s) = str_at(spec, "strategy") {
            if s != "OldestEmulationVersion" {
                errs.push(not_supported(
                    "spec.strategy",
                    s,
                    &["OldestEmulationVersion"],
                ));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lease_fields() {
        let ok = json!({"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
            "renewTime": "2026-11-23T10:00:00.123456Z"}});
        assert!(LeaseStrategy.validate_create(&ok).is_empty());
        let bad = json!({"metadata": {"name": "n1"}, "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1,
            "renewTime": "yesterday", "holderIdentity": 5}});
        let errs = LeaseStrategy.validate_create(&bad);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "spec.leaseDurationSeconds",
                "spec.leaseTransitions",
                "spec.holderIdentity",
                "spec.renewTime"
            ]
        );
    }
}
