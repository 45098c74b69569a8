//! Validation of a pod's placement constraints: node affinity (selector
//! terms, operators, field selectors), pod affinity and anti-affinity terms
//! with their weights, and topology spread constraints.

use std::collections::HashSet;

use serde_json::Value;

use super::Cause;
use super::labelselector::validate_selector;
use super::validation::{
    arr_at, dns1123_label, duplicate, forbidden, int_at, invalid, invalid_each, not_supported,
    qualified_name, required_because, str_at,
};

/// Validates `affinity` and `topologySpreadConstraints` of a PodSpec at `p`.
pub fn validate_placement(spec: &Value, p: &str, errs: &mut Vec<Cause>) {
    if let Some(aff) = spec.get("affinity").filter(|a| !a.is_null()) {
        let ap = format!("{p}.affinity");
        if let Some(node) = aff.get("nodeAffinity").filter(|n| !n.is_null()) {
            validate_node_affinity(node, &format!("{ap}.nodeAffinity"), errs);
        }
        for key in ["podAffinity", "podAntiAffinity"] {
            if let Some(pa) = aff.get(key).filter(|n| !n.is_null()) {
                validate_pod_affinity(pa, &format!("{ap}.{key}"), errs);
            }
        }
    }
    validate_spread(
        arr_at(spec, "topologySpreadConstraints"),
        &format!("{p}.topologySpreadConstraints"),
        errs,
    );
}

fn validate_weight(term: &Value, tp: &str, errs: &mut Vec<Cause>) {
    let w = int_at(term, "weight").unwrap_or(0);
    if !(1..=100).contains(&w) {
        errs.push(invalid(
            &format!("{tp}.weight"),
            w,
            "must be in the range 1-100",
        ));
    }
}

fn validate_node_affinity(node: &Value, np: &str, errs: &mut Vec<Cause>) {
    let required_key = "requiredDuringSchedulingIgnoredDuringExecution";
    if let Some(sel) = node.get(required_key).filter(|r| !r.is_null()) {
        let sp = format!("{np}.{required_key}");
        let terms = arr_at(sel, "nodeSelectorTerms");
        if terms.is_empty() {
            errs.push(required_because(
                &format!("{sp}.nodeSelectorTerms"),
                "must have at least one node selector term",
            ));
        }
        for (i, t) in terms.iter().enumerate() {
            validate_node_selector_term(t, &format!("{sp}.nodeSelectorTerms[{i}]"), errs);
        }
    }
    let preferred_key = "preferredDuringSchedulingIgnoredDuringExecution";
    for (i, t) in arr_at(node, preferred_key).iter().enumerate() {
        let tp = format!("{np}.{preferred_key}[{i}]");
        validate_weight(t, &tp, errs);
        validate_node_selector_term(
            t.get("preference").unwrap_or(&Value::Null),
            &format!("{tp}.preference"),
            errs,
        );
    }
}

fn validate_node_selector_term(term: &Value, tp: &str, errs: &mut Vec<Cause>) {
    for (i, e) in arr_at(term, "matchExpressions").iter().enumerate() {
        let ep = format!("{tp}.matchExpressions[{i}]");
        let values = arr_at(e, "values");
        match str_at(e, "operator").unwrap_or("") {
            "In" | "NotIn" if values.is_empty() => errs.push(required_because(
                &format!("{ep}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(forbidden(
                &format!("{ep}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Gt" | "Lt" => {
                if values.len() != 1 {
                    errs.push(required_because(
                        &format!("{ep}.values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    ));
                } else if values[0]
                    .as_str()
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_none()
                {
                    errs.push(invalid(
                        &format!("{ep}.values[0]"),
                        values[0].clone(),
                        "must be an integer",
                    ));
                }
            }
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
    for (i, f) in arr_at(term, "matchFields").iter().enumerate() {
        let fp = format!("{tp}.matchFields[{i}]");
        let key = str_at(f, "key").unwrap_or("");
        if key != "metadata.name" {
            errs.push(not_supported(&format!("{fp}.key"), key, &["metadata.name"]));
        }
        match str_at(f, "operator").unwrap_or("") {
            "In" | "NotIn" => {
                if arr_at(f, "values").len() != 1 {
                    errs.push(required_because(
                        &format!("{fp}.values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    ));
                }
            }
            other => errs.push(invalid(
                &format!("{fp}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
    }
}

fn validate_pod_affinity_term(term: &Value, tp: &str, errs: &mut Vec<Cause>) {
    match str_at(term, "topologyKey").unwrap_or("") {
        "" => errs.push(required_because(
            &format!("{tp}.topologyKey"),
            "can not be empty",
        )),
        key => errs.extend(invalid_each(
            &format!("{tp}.topologyKey"),
            key,
            qualified_name(key),
        )),
    }
    for key in ["labelSelector", "namespaceSelector"] {
        if let Some(sel) = term.get(key).filter(|s| !s.is_null()) {
            errs.extend(validate_selector(sel, &format!("{tp}.{key}")));
        }
    }
    for (i, ns) in arr_at(term, "namespaces").iter().enumerate() {
        let s = ns.as_str().unwrap_or("");
        errs.extend(invalid_each(
            &format!("{tp}.namespaces[{i}]"),
            s,
            dns1123_label(s),
        ));
    }
}

fn validate_pod_affinity(pa: &Value, pp: &str, errs: &mut Vec<Cause>) {
    let required_key = "requiredDuringSchedulingIgnoredDuringExecution";
    for (i, t) in arr_at(pa, required_key).iter().enumerate() {
        validate_pod_affinity_term(t, &format!("{pp}.{required_key}[{i}]"), errs);
    }
    let preferred_key = "preferredDuringSchedulingIgnoredDuringExecution";
    for (i, t) in arr_at(pa, preferred_key).iter().enumerate() {
        let tp = format!("{pp}.{preferred_key}[{i}]");
        validate_weight(t, &tp, errs);
        validate_pod_affinity_term(
            t.get("podAffinityTerm").unwrap_or(&Value::Null),
            &format!("{tp}.podAffinityTerm"),
            errs,
        );
    }
}

fn validate_spread(constraints: &[Value], cp: &str, errs: &mut Vec<Cause>) {
    let mut seen = HashSet::new();
    for (i, c) in constraints.iter().enumerate() {
        let ip = format!("{cp}[{i}]");
        let skew = int_at(c, "maxSkew").unwrap_or(0);
        if skew <= 0 {
            errs.push(invalid(
                &format!("{ip}.maxSkew"),
                skew,
                "must be greater than zero",
            ));
        }
        let key = str_at(c, "topologyKey").unwrap_or("");
        if key.is_empty() {
            errs.push(required_because(
                &format!("{ip}.topologyKey"),
                "can not be empty",
            ));
        } else {
            errs.extend(invalid_each(
                &format!("{ip}.topologyKey"),
                key,
                qualified_name(key),
            ));
        }
        let when = str_at(c, "whenUnsatisfiable").unwrap_or("");
        if !matches!(when, "DoNotSchedule" | "ScheduleAnyway") {
            errs.push(not_supported(
                &format!("{ip}.whenUnsatisfiable"),
                when,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if let Some(min) = c.get("minDomains").filter(|m| !m.is_null()) {
            match min.as_i64() {
                Some(m) if m <= 0 => errs.push(invalid(&format!("{ip}.minDomains"), m, "must be greater than 0")),
                Some(m) if when != "DoNotSchedule" => errs.push(invalid(
                    &format!("{ip}.minDomains"),
                    m,
                    "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway",
                )),
                Some(_) => {}
                None => errs.push(invalid(&format!("{ip}.minDomains"), min.clone(), "must be an integer")),
            }
        }
        for policy in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(v) = str_at(c, policy).filter(|v| !matches!(*v, "Honor" | "Ignore")) {
                errs.push(not_supported(
                    &format!("{ip}.{policy}"),
                    v,
                    &["Honor", "Ignore"],
                ));
            }
        }
        if let Some(sel) = c.get("labelSelector").filter(|s| !s.is_null()) {
            errs.extend(validate_selector(sel, &format!("{ip}.labelSelector")));
        }
        if !seen.insert((key.to_string(), when.to_string())) {
            errs.push(duplicate(
                &format!("{ip}.{{topologyKey, whenUnsatisfiable}}"),
                format!("{{{key}, {when}}}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(spec: &Value) -> Vec<String> {
        let mut errs = Vec::new();
        validate_placement(spec, "spec", &mut errs);
        errs.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn node_affinity_terms() {
        let spec = json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]},
                {"key": "cpu", "operator": "Gt", "values": ["x"]},
                {"key": "k", "operator": "Near"}],
                "matchFields": [{"key": "metadata.labels", "operator": "In", "values": ["a"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}]}}});
        let base = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]";
        assert_eq!(
            fields(&spec),
            vec![
                format!("{base}.matchExpressions[1].values[0]"),
                format!("{base}.matchExpressions[2].operator"),
                format!("{base}.matchFields[0].key"),
                "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight".to_string(),
            ]
        );
        let empty = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}});
        assert_eq!(fields(&empty).len(), 1);
    }

    #[test]
    fn pod_affinity_and_spread() {
        let spec = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}}]}},
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                {"maxSkew": 1, "topologyKey": "host", "whenUnsatisfiable": "Maybe", "minDomains": 2}]});
        assert_eq!(
            fields(&spec),
            vec![
                "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey",
                "spec.topologySpreadConstraints[1].maxSkew",
                "spec.topologySpreadConstraints[1].{topologyKey, whenUnsatisfiable}",
                "spec.topologySpreadConstraints[2].whenUnsatisfiable",
                "spec.topologySpreadConstraints[2].minDomains",
            ]
        );
    }
}
