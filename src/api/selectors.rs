//! Label and field selectors, parsed from the `labelSelector` and
//! `fieldSelector` query parameters and matched against objects.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why a selector could not be parsed; answered as 400 BadRequest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Equals(String),
    NotEquals(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

/// Builds an operator from the text after its token.
type OpParser = fn(&str) -> Result<Op, SelectorError>;

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<(String, Op)>);

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
}

fn check_key(key: &str) -> Result<String, SelectorError> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            let prefix_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|p| {
                    !p.is_empty()
                        && p.bytes()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                });
            if !prefix_ok {
                return Err(SelectorError(format!(
                    "unable to parse requirement: key: Invalid value: \"{key}\": prefix part must be a lowercase RFC 1123 subdomain"
                )));
            }
            name
        }
        None => key,
    };
    if !valid_name_part(name) {
        return Err(SelectorError(format!(
            "unable to parse requirement: key: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )));
    }
    Ok(key.to_string())
}

fn check_value(v: &str) -> Result<String, SelectorError> {
    if v.is_empty() || valid_name_part(v) {
        Ok(v.to_string())
    } else {
        Err(SelectorError(format!(
            "unable to parse requirement: values[0]: Invalid value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )))
    }
}

fn parse_set(rest: &str, whole: &str) -> Result<Vec<String>, SelectorError> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            SelectorError(format!(
                "couldn't parse the selector string \"{whole}\": found '{rest}', expected: '('"
            ))
        })?;
    inner.split(',').map(|v| check_value(v.trim())).collect()
}

impl LabelSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector(reqs));
        }
        for part in split_top(s) {
            let part = part.trim();
            let err = || {
                SelectorError(format!(
                    "couldn't parse the selector string \"{s}\": unable to parse requirement \"{part}\""
                ))
            };
            if part.is_empty() {
                return Err(err());
            }
            if let Some(key) = part.strip_prefix('!') {
                reqs.push((check_key(key.trim())?, Op::DoesNotExist));
                continue;
            }
            if let Some(open) = part.find('(') {
                let mut words = part[..open].split_whitespace();
                let (Some(key), Some(op), None) = (words.next(), words.next(), words.next()) else {
                    return Err(err());
                };
                let values = parse_set(&part[open..], s)?;
                let op = match op {
                    "in" => Op::In(values),
                    "notin" => Op::NotIn(values),
                    _ => return Err(err()),
                };
                reqs.push((check_key(key)?, op));
                continue;
            }
            let ops: [(&str, OpParser); 5] = [
                ("!=", |v| Ok(Op::NotEquals(check_value(v)?))),
                ("==", |v| Ok(Op::Equals(check_value(v)?))),
                ("=", |v| Ok(Op::Equals(check_value(v)?))),
                (">", |v| {
                    v.parse().map(Op::Gt).map_err(|_| SelectorError(format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer, got {v}")))
                }),
                ("<", |v| {
                    v.parse().map(Op::Lt).map_err(|_| SelectorError(format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer, got {v}")))
                }),
            ];
            match ops
                .iter()
                .find_map(|(tok, f)| part.split_once(tok).map(|(k, v)| (k, v, f)))
            {
                Some((k, v, f)) => reqs.push((check_key(k.trim())?, f(v.trim())?)),
                None => reqs.push((check_key(part)?, Op::Exists)),
            }
        }
        Ok(LabelSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an object's labels satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.get("metadata").and_then(|m| m.get("labels"));
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|(k, op)| match (op, get(k)) {
            (Op::Exists, v) => v.is_some(),
            (Op::DoesNotExist, v) => v.is_none(),
            (Op::Equals(want), v) => v == Some(want.as_str()),
            (Op::NotEquals(want), v) => v != Some(want.as_str()),
            (Op::In(set), v) => v.is_some_and(|v| set.iter().any(|s| s == v)),
            (Op::NotIn(set), v) => v.is_none_or(|v| !set.iter().any(|s| s == v)),
            (Op::Gt(n), v) => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v > *n),
            (Op::Lt(n), v) => v
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v < *n),
        })
    }
}

/// A parsed field selector: `field=value`, `field==value`, `field!=value`,
/// comma-joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

/// Splits on `sep` outside backslash escapes, unescaping the parts.
fn split_escaped(s: &str, sep: char) -> Vec<String> {
    let (mut out, mut cur, mut chars) = (Vec::new(), String::new(), s.chars());
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push('\\');
                    cur.push(n);
                }
            }
            c if c == sep => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn unescape(s: &str) -> String {
    let (mut out, mut chars) = (String::new(), s.chars());
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector(reqs));
        }
        for part in split_escaped(s, ',') {
            let bad = || {
                SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ))
            };
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(bad());
            };
            if field.trim().is_empty() {
                return Err(bad());
            }
            reqs.push((field.trim().to_string(), equal, unescape(value)));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value this selector requires for `field`, if it asks for equality
    /// (lets a watch on `metadata.name=x` look at one object only).
    pub fn required(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, eq, _)| *eq && f == field)
            .map(|(_, _, v)| v.as_str())
    }

    /// Whether the object's field attributes satisfy every requirement; a
    /// field the object does not have counts as the empty string.
    pub fn matches(&self, attributes: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(f, equal, v)| {
            let have = attributes.get(f).map(String::as_str).unwrap_or("");
            (have == v) == *equal
        })
    }
}

/// The string form of a `metav1.LabelSelector` object (`matchLabels` and
/// `matchExpressions`), or of a plain label map as ReplicationControllers
/// use.
pub fn selector_string(selector: &Value) -> String {
    let mut parts = Vec::new();
    let labels = selector.get("matchLabels").unwrap_or(selector);
    if let Some(map) = labels.as_object() {
        for (k, v) in map {
            if let Some(v) = v.as_str() {
                parts.push(format!("{k}={v}"));
            }
        }
    }
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr["key"].as_str().unwrap_or("");
        let values: Vec<&str> = expr["values"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match expr["operator"].as_str() {
            Some("In") => parts.push(format!("{key} in ({})", values.join(","))),
            Some("NotIn") => parts.push(format!("{key} notin ({})", values.join(","))),
            Some("Exists") => parts.push(key.to_string()),
            Some("DoesNotExist") => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Value {
        let map: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({"metadata": {"labels": map}})
    }

    fn sel(s: &str) -> LabelSelector {
        match LabelSelector::parse(s) {
            Ok(sel) => sel,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn label_selector_operators() {
        let obj = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
        for yes in [
            "app=web",
            "app==web",
            "tier!=back",
            "app in (web, db)",
            "tier notin (back)",
            "app",
            "!missing",
            "app=web,tier=front",
            "n>3",
            "n<9",
            "missing notin (x)",
        ] {
            assert!(sel(yes).matches(&obj), "{yes}");
        }
        for no in [
            "app=db",
            "app!=web",
            "app in (db)",
            "!app",
            "missing",
            "app=web,tier=back",
            "n>5",
            "missing in (x)",
        ] {
            assert!(!sel(no).matches(&obj), "{no}");
        }
    }

    #[test]
    fn label_selector_rejects_garbage() {
        for bad in [
            "app=we b",
            "a b c",
            "app in web",
            "!",
            "=x",
            "example.com//x",
            "n>x",
            "app,,tier",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_selectors_match_attributes() {
        let attrs: BTreeMap<String, String> = [("metadata.name", "a"), ("status.phase", "Running")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let Ok(s) = FieldSelector::parse("metadata.name=a,status.phase!=Pending") else {
            panic!("parses")
        };
        assert!(s.matches(&attrs));
        assert_eq!(s.required("metadata.name"), Some("a"));
        let Ok(s) = FieldSelector::parse("spec.nodeName==") else {
            panic!("parses")
        };
        assert!(s.matches(&attrs));
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    #[test]
    fn label_selector_objects_render_as_strings() {
        let s = selector_string(
            &json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}),
        );
        assert_eq!(s, "app=web,tier in (a,b)");
        assert_eq!(selector_string(&json!({"app": "web"})), "app=web");
    }
}
