//! Label selectors as objects carry them (`matchLabels` and
//! `matchExpressions`): upstream's `ValidateLabelSelector`, and matching a
//! label set, which workload validation needs to check that a selector
//! selects its own pod template.

use serde_json::Value;

use super::Cause;
use super::validation::{
    arr_at, forbidden, go_string_map, invalid, invalid_each, obj_at, qualified_name,
    required_because, str_at, type_invalid, validate_labels,
};

/// Validates a `LabelSelector` at `field`.
pub fn validate_selector(sel: &Value, field: &str) -> Vec<Cause> {
    if !sel.is_object() {
        return vec![type_invalid(field, sel, "must be a label selector object")];
    }
    let mut errs = validate_labels(sel.get("matchLabels"), &format!("{field}.matchLabels"));
    for (i, e) in arr_at(sel, "matchExpressions").iter().enumerate() {
        let ep = format!("{field}.matchExpressions[{i}]");
        let has_values = !arr_at(e, "values").is_empty();
        match str_at(e, "operator").unwrap_or("") {
            "In" | "NotIn" if !has_values => errs.push(required_because(
                &format!("{ep}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if has_values => errs.push(forbidden(
                &format!("{ep}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(invalid(
                &format!("{ep}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = str_at(e, "key").unwrap_or("");
        errs.extend(invalid_each(&format!("{ep}.key"), key, qualified_name(key)));
    }
    errs
}

/// Whether the selector selects nothing at all (no labels, no expressions).
pub fn is_empty(sel: &Value) -> bool {
    obj_at(sel, "matchLabels").is_none_or(|m| m.is_empty())
        && arr_at(sel, "matchExpressions").is_empty()
}

/// Whether `sel` matches the label map `labels` (an object or absent).
pub fn matches(sel: &Value, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let labels_ok = obj_at(sel, "matchLabels").is_none_or(|m| {
        m.iter()
            .all(|(k, v)| v.as_str().is_some() && get(k) == v.as_str())
    });
    let exprs_ok = arr_at(sel, "matchExpressions").iter().all(|e| {
        let key = str_at(e, "key").unwrap_or("");
        let values: Vec<&str> = arr_at(e, "values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        match (str_at(e, "operator").unwrap_or(""), get(key)) {
            ("In", Some(v)) => values.contains(&v),
            ("NotIn", v) => v.is_none_or(|v| !values.contains(&v)),
            ("Exists", v) => v.is_some(),
            ("DoesNotExist", v) => v.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// Renders a selector as upstream's error messages do (Go `%#v` of a
/// `v1.LabelSelector`), for `field is immutable` causes.
pub fn go_selector(sel: &Value) -> String {
    let exprs = if arr_at(sel, "matchExpressions").is_empty() {
        "[]v1.LabelSelectorRequirement(nil)".to_string()
    } else {
        let items: Vec<String> = arr_at(sel, "matchExpressions")
            .iter()
            .map(|e| {
                let values: Vec<String> =
                    arr_at(e, "values").iter().map(Value::to_string).collect();
                format!(
                    "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:[]string{{{}}}}}",
                    Value::from(str_at(e, "key").unwrap_or("")),
                    Value::from(str_at(e, "operator").unwrap_or("")),
                    values.join(", ")
                )
            })
            .collect();
        format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        go_string_map(sel.get("matchLabels"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matching() {
        let labels = json!({"app": "web", "tier": "fe"});
        assert!(matches(
            &json!({"matchLabels": {"app": "web"}}),
            Some(&labels)
        ));
        assert!(!matches(
            &json!({"matchLabels": {"app": "db"}}),
            Some(&labels)
        ));
        let sel = json!({"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "x", "operator": "DoesNotExist"}]});
        assert!(matches(&sel, Some(&labels)));
        assert!(!matches(
            &json!({"matchExpressions": [{"key": "x", "operator": "Exists"}]}),
            Some(&labels)
        ));
        assert!(matches(&json!({}), None));
    }

    #[test]
    fn validation_and_rendering() {
        let sel = json!({"matchExpressions": [{"key": "a", "operator": "In"}, {"key": "b", "operator": "Has"}]});
        let errs = validate_selector(&sel, "spec.selector");
        assert_eq!(errs[0].field, "spec.selector.matchExpressions[0].values");
        assert_eq!(errs[1].field, "spec.selector.matchExpressions[1].operator");
        assert_eq!(
            go_selector(&json!({"matchLabels": {"app": "web"}})),
            "v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"
        );
    }
}
