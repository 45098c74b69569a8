//! DefaultTolerationSeconds: pods tolerate a not-ready or unreachable node
//! for 300 seconds before the node lifecycle controller evicts them, unless
//! they say otherwise.

use serde_json::{Value, json};

/// Upstream's default `--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds`.
pub const DEFAULT_SECONDS: i64 = 300;

const TAINTS: [&str; 2] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
];

/// Adds the two NoExecute tolerations a pod does not already have.
pub fn add_defaults(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let list = spec.entry("tolerations").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    let Some(list) = list.as_array_mut() else {
        return;
    };
    for taint in TAINTS {
        // A toleration of the key with effect NoExecute (or any effect), or
        // an Exists toleration of every key, already covers the taint.
        let covered = list.iter().any(|t| {
            let effect_ok = matches!(t["effect"].as_str(), None | Some("") | Some("NoExecute"));
            let key_ok = t["key"] == taint
                || (t["key"].as_str().unwrap_or("").is_empty() && t["operator"] == "Exists");
            effect_ok && key_ok
        });
        if !covered {
            list.push(json!({
                "key": taint,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_SECONDS,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_what_is_missing_only() {
        let mut pod = json!({"spec": {"tolerations": [
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]}});
        add_defaults(&mut pod);
        let t = pod["spec"]["tolerations"].as_array().expect("list");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0]["tolerationSeconds"], 10);
        assert_eq!(t[1]["key"], "node.kubernetes.io/not-ready");
        assert_eq!(t[1]["tolerationSeconds"], 300);
        let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        add_defaults(&mut all);
        assert_eq!(all["spec"]["tolerations"].as_array().map(Vec::len), Some(1));
    }
}
