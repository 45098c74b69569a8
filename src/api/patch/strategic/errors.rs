//! The errors of a strategic merge, worded as upstream's `mergepatch` and
//! `strategicpatch` packages word them. Their messages print JSON values
//! the way Go's `%v` prints `map[string]interface{}` and friends
//! (`map[name:a value:1]`), because clients and people match on them.

use serde_json::Value;

use crate::api::status::ApiStatus;

/// Why a strategic merge patch could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A `$deleteFromPrimitiveList/<field>` key without a field.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    /// A `$retainKeys` that is not a list, or a patch that sets a key the
    /// list does not retain.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    /// A `$setElementOrder/<field>` key without a field.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    /// A merging list whose items are lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// Everything upstream reports as a plain error (a missing merge key,
    /// an unknown directive, mismatched orders): the API server answers
    /// those 500 with no reason, as upstream does.
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn no_merge_key(item: &Value, key: &str) -> Self {
        Error::Other(format!(
            "map: {} does not contain declared merge key: {key}",
            go_value(item)
        ))
    }

    pub fn bad_patch_type(directive: &Value, map: &Value) -> Self {
        Error::Other(format!(
            "unknown patch type: {} in map: {}",
            go_string(directive),
            go_value(map)
        ))
    }

    /// `expected a <expected>, but received a <type of actual>`.
    pub fn bad_arg_type(expected: &str, actual: &Value) -> Self {
        Error::Other(format!(
            "expected a {expected}, but received a {}",
            go_type(actual)
        ))
    }

    /// The `v1 Status` the API server answers with, as upstream's
    /// `interpretStrategicMergePatchError` maps the errors.
    pub fn into_status(self) -> ApiStatus {
        match self {
            Error::BadPrimitiveList | Error::BadRetainKeys | Error::BadSetElementOrder => {
                ApiStatus::bad_request(self.to_string())
            }
            Error::ListOfLists => ApiStatus::new(
                422,
                "Invalid",
                format!("the server rejected our request due to an error in our request: {self}"),
            ),
            Error::Other(message) => ApiStatus::new(500, "", message),
        }
    }
}

/// The Go type name of a decoded JSON value, as `reflect.TypeOf` prints it.
pub fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// A value as Go's `%s` prints an `interface{}`.
fn go_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".into(),
        other => format!("%!s({}={})", go_type(other), go_value(other)),
    }
}

/// A value as Go's `%v` prints an `interface{}`.
pub fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => go_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

/// A float as Go's `%v` (`%g`, shortest) prints it: exponent form below
/// 1e-4 and from 1e6 up.
fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return f.to_string();
    }
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return f.to_string();
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        f.to_string()
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_as_go_prints_them() {
        assert_eq!(
            go_value(&json!({"value": "b", "hostPath": {"path": "/x"}, "n": 1})),
            "map[hostPath:map[path:/x] n:1 value:b]"
        );
        assert_eq!(go_value(&json!([1, "a", null, true])), "[1 a <nil> true]");
        assert_eq!(go_value(&json!(1.5)), "1.5");
        assert_eq!(go_value(&json!(1_000_000.0)), "1e+06");
        assert_eq!(go_value(&json!(123_456.0)), "123456");
        assert_eq!(go_value(&json!(0.00001)), "1e-05");
        assert_eq!(go_string(&json!(2)), "%!s(int64=2)");
    }

    #[test]
    fn errors_map_to_upstream_statuses() {
        let missing = Error::no_merge_key(&json!({"image": "nginx"}), "name").into_status();
        assert_eq!(missing.code, 500);
        assert_eq!(
            missing.message,
            "map: map[image:nginx] does not contain declared merge key: name"
        );
        assert_eq!(Error::BadRetainKeys.into_status().code, 400);
        assert_eq!(Error::ListOfLists.into_status().code, 422);
    }
}
