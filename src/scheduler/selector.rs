//! Label selectors compiled once for the scheduler's hot loops: upstream's
//! `metav1.LabelSelectorAsSelector` semantics (a missing selector selects
//! nothing, an empty one everything) without going through JSON per match.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

impl Requirement {
    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

/// A compiled label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// `None`: selects nothing (a missing or invalid selector).
    requirements: Option<Vec<Requirement>>,
}

impl Selector {
    /// Selects every label set.
    pub fn everything() -> Self {
        Selector {
            requirements: Some(Vec::new()),
        }
    }

    /// Selects no label set.
    pub fn nothing() -> Self {
        Selector { requirements: None }
    }

    /// Compiles an API selector; `None` and invalid operators select nothing.
    pub fn from_api(selector: Option<&LabelSelector>) -> Self {
        let Some(selector) = selector else {
            return Selector::nothing();
        };
        let mut reqs: Vec<Requirement> = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| Requirement::In(k.clone(), vec![v.clone()]))
            .collect();
        for e in selector.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            reqs.push(match e.operator.as_str() {
                "In" => Requirement::In(e.key.clone(), values),
                "NotIn" => Requirement::NotIn(e.key.clone(), values),
                "Exists" => Requirement::Exists(e.key.clone()),
                "DoesNotExist" => Requirement::DoesNotExist(e.key.clone()),
                _ => return Selector::nothing(),
            });
        }
        Selector {
            requirements: Some(reqs),
        }
    }

    /// A selector requiring every `key=value` of `map` (a Service's or
    /// ReplicationController's selector).
    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        Selector {
            requirements: Some(
                map.iter()
                    .map(|(k, v)| Requirement::In(k.clone(), vec![v.clone()]))
                    .collect(),
            ),
        }
    }

    /// Adds `key In (value)` (`equal`) or `key NotIn (value)`: how
    /// matchLabelKeys and mismatchLabelKeys fold into a term's selector.
    pub fn require(&mut self, key: &str, value: &str, equal: bool) {
        if let Some(reqs) = self.requirements.as_mut() {
            let values = vec![value.to_string()];
            reqs.push(if equal {
                Requirement::In(key.to_string(), values)
            } else {
                Requirement::NotIn(key.to_string(), values)
            });
        }
    }

    /// Adds every requirement of `other` (an AND of both).
    pub fn and(&mut self, other: &Selector) {
        match (self.requirements.as_mut(), other.requirements.as_ref()) {
            (Some(mine), Some(theirs)) => mine.extend(theirs.iter().cloned()),
            _ => self.requirements = None,
        }
    }

    /// Whether it selects nothing because it has no requirements at all
    /// (upstream's `selector.Empty()`, true for "everything" too).
    pub fn is_empty(&self) -> bool {
        self.requirements.as_ref().is_none_or(Vec::is_empty)
    }

    /// Whether the selector selects `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .as_ref()
            .is_some_and(|reqs| reqs.iter().all(|r| r.matches(labels)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn api(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).expect("selector")
    }

    #[test]
    fn missing_selects_nothing_and_empty_selects_everything() {
        let l = labels(&[("app", "web")]);
        assert!(!Selector::from_api(None).matches(&l));
        assert!(Selector::from_api(Some(&api(serde_json::json!({})))).matches(&l));
        assert!(Selector::from_api(Some(&api(serde_json::json!({})))).matches(&labels(&[])));
    }

    #[test]
    fn labels_and_expressions_are_anded() {
        let s = Selector::from_api(Some(&api(serde_json::json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["x"]},
        ]}))));
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "a"), ("canary", "1")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "a"), ("zone", "x")])));
        let mut t = s.clone();
        t.require("track", "stable", true);
        assert!(!t.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert!(t.matches(&labels(&[
            ("app", "web"),
            ("tier", "a"),
            ("track", "stable")
        ])));
    }

    #[test]
    fn an_unknown_operator_selects_nothing() {
        let s = Selector::from_api(Some(&api(serde_json::json!({
            "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}))));
        assert!(!s.matches(&labels(&[("a", "2")])));
    }
}
