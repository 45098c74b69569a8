//! The small formatting rules the printers share, as upstream words them:
//! human durations (`HumanDuration`), ages, label maps and selectors, the
//! container and image lists of a pod template, and typed field access on
//! JSON objects that never panics on odd data.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::Clock;
use crate::api::kinds::quantity::Quantity;

/// A string field (by JSON pointer), or `""`.
pub fn s<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// An integer field (by JSON pointer), if present.
pub fn int(obj: &Value, ptr: &str) -> Option<i64> {
    obj.pointer(ptr).and_then(Value::as_i64)
}

/// An integer field, or 0.
pub fn int0(obj: &Value, ptr: &str) -> i64 {
    int(obj, ptr).unwrap_or(0)
}

/// A boolean field, if present.
pub fn boolean(obj: &Value, ptr: &str) -> Option<bool> {
    obj.pointer(ptr).and_then(Value::as_bool)
}

/// An array field, or an empty slice.
pub fn arr<'a>(obj: &'a Value, ptr: &str) -> &'a [Value] {
    obj.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The number of entries of a map or array field.
pub fn count(obj: &Value, ptr: &str) -> usize {
    match obj.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

pub fn name(obj: &Value) -> &str {
    s(obj, "/metadata/name")
}

/// `value`, or `default` when it is empty.
pub fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() { default } else { value }
}

/// Upstream's `duration.HumanDuration`: a short, rounded-down duration whose
/// precision drops as it grows (`45s`, `3m2s`, `15m`, `5h3m`, `10h`, `3d4h`,
/// `20d`, `2y30d`, `9y`).
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

/// A timestamp field's time, if set and valid.
pub fn time(obj: &Value, ptr: &str) -> Option<Timestamp> {
    s(obj, ptr).parse().ok()
}

/// How long ago `t` was (`translateTimestampSince`); `<unknown>` when unset.
pub fn since(t: Option<Timestamp>, clock: &Clock) -> String {
    match t {
        Some(t) => human_duration(clock.now.duration_since(t)),
        None => "<unknown>".into(),
    }
}

/// The AGE cell: time since creation.
pub fn age(obj: &Value, clock: &Clock) -> Value {
    json!(since(time(obj, "/metadata/creationTimestamp"), clock))
}

/// `labels.FormatLabels`: `k=v,k2=v2` sorted by key, `<none>` when empty.
pub fn labels(map: Option<&Value>) -> String {
    let pairs: Vec<String> = map
        .and_then(Value::as_object)
        .map(|m| {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| format!("{k}={}", m[k].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// A `metav1.LabelSelector` as a selector string (`LabelSelectorAsSelector`
/// then `String`): requirements sorted by key, set values sorted.
pub fn selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel else {
        return String::new();
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for e in arr(sel, "/matchExpressions") {
        let key = s(e, "/key");
        let values: BTreeSet<&str> = arr(e, "/values").iter().filter_map(Value::as_str).collect();
        let values = values.into_iter().collect::<Vec<_>>().join(",");
        let text = match s(e, "/operator") {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return "<error>".into(),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when empty.
pub fn label_selector(sel: Option<&Value>) -> String {
    let s = selector(sel);
    if s.is_empty() { "<none>".into() } else { s }
}

/// The names and images of a pod spec's containers, comma-separated.
pub fn containers(pod_spec: Option<&Value>) -> (Value, Value) {
    let list = pod_spec.map(|p| arr(p, "/containers")).unwrap_or(&[]);
    let names: Vec<&str> = list.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = list.iter().map(|c| s(c, "/image")).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

/// A quantity in upstream's canonical form (`1024Mi` → `1Gi`); a missing
/// one is `0`, as Go's zero Quantity prints.
pub fn quantity(v: Option<&Value>) -> String {
    let raw = match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return "0".into(),
    };
    Quantity::parse(&raw).map(|q| q.canonical()).unwrap_or(raw)
}

/// `a,b,c + N more...`: the first `max` items of a list and how many more.
pub fn list_with_more(items: &[String], total: usize, max: usize) -> String {
    let shown = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if total > max {
        format!("{shown} + {} more...", total - max)
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: i64) -> String {
        human_duration(SignedDuration::from_secs(n))
    }

    #[test]
    fn human_durations_match_upstream() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (182, "3m2s"),
            (599, "9m59s"),
            (600, "10m"),
            (3 * 3600 - 1, "179m"),
            (3 * 3600, "3h"),
            (5 * 3600 + 3 * 60, "5h3m"),
            (10 * 3600, "10h"),
            (47 * 3600 + 59 * 60, "47h"),
            (48 * 3600, "2d"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (760 * 86400, "2y30d"),
            (8 * 365 * 86400, "8y"),
            (20 * 365 * 86400, "20y"),
        ];
        for (n, want) in cases {
            assert_eq!(secs(n), want, "{n}s");
        }
    }

    #[test]
    fn label_maps_and_selectors() {
        assert_eq!(labels(Some(&json!({"b": "2", "a": "1"}))), "a=1,b=2");
        assert_eq!(labels(Some(&json!({}))), "<none>");
        assert_eq!(labels(None), "<none>");
        let sel = json!({"matchLabels": {"tier": "fe"}, "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "zz", "operator": "DoesNotExist"},
            {"key": "app", "operator": "Exists"}]});
        assert_eq!(selector(Some(&sel)), "app,env in (dev,prod),tier=fe,!zz");
        assert_eq!(label_selector(Some(&json!({}))), "<none>");
        assert_eq!(label_selector(None), "<none>");
    }

    #[test]
    fn quantities_and_lists() {
        assert_eq!(quantity(Some(&json!("1024Mi"))), "1Gi");
        assert_eq!(quantity(Some(&json!("500m"))), "500m");
        assert_eq!(quantity(None), "0");
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(list_with_more(&items, 5, 3), "a,b,c + 2 more...");
        assert_eq!(list_with_more(&items[..2], 2, 3), "a,b");
    }
}
