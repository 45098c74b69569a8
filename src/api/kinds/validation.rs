//! Shared validation helpers with upstream's exact wording: the field-error
//! constructors behind `Status.details.causes` (apimachinery's `field.Error`),
//! name formats (RFC 1123 labels and subdomains, RFC 1035 labels, C
//! identifiers, qualified names, label values, config keys, IANA service
//! names), IP and CIDR checks, and the `metadata.labels` /
//! `metadata.annotations` rules every kind applies.

use serde_json::{Map, Value};

use super::Cause;

pub const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const C_IDENTIFIER_MSG: &str = "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName', regex used for validation is '[A-Za-z_][A-Za-z0-9_]*')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const QUALIFIED_NAME_SLASH_MSG: &str = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/// Upper bound of the summed size of an object's annotations.
pub const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

// ---- field.Error constructors ------------------------------------------------

/// Formats a bad value as apimachinery's `ErrorBody` does: strings quoted,
/// numbers and booleans bare, anything else as JSON.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => Value::String(s.clone()).to_string(),
        other => other.to_string(),
    }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

/// `Required value`.
pub fn required(field: &str) -> Cause {
    required_because(field, "")
}

/// `Required value: <detail>`.
pub fn required_because(field: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired",
        message: with_detail("Required value".into(), detail),
        field: field.into(),
    }
}

/// `Invalid value: <value>: <detail>`.
pub fn invalid(field: &str, value: impl Into<Value>, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: with_detail(format!("Invalid value: {}", show(&value.into())), detail),
        field: field.into(),
    }
}

/// `Invalid value: <shown>: <detail>` with a value already rendered as
/// upstream's Go formatting would render it (maps, structs).
pub fn invalid_shown(field: &str, shown: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: with_detail(format!("Invalid value: {shown}"), detail),
        field: field.into(),
    }
}

/// Renders a string map as Go's `%#v` does: `map[string]string{"a":"b"}`.
pub fn go_string_map(map: Option<&Value>) -> String {
    let Some(m) = map.and_then(Value::as_object) else {
        return "map[string]string(nil)".into();
    };
    let mut pairs: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), show(v)))
        .collect();
    pairs.sort();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

/// `Unsupported value: <value>: supported values: "a", "b"`.
pub fn not_supported(field: &str, value: impl Into<Value>, supported: &[&str]) -> Cause {
    let quoted: Vec<String> = supported.iter().map(|s| show(&Value::from(*s))).collect();
    Cause {
        reason: "FieldValueNotSupported",
        message: format!(
            "Unsupported value: {}: supported values: {}",
            show(&value.into()),
            quoted.join(", ")
        ),
        field: field.into(),
    }
}

/// `Duplicate value: <value>`.
pub fn duplicate(field: &str, value: impl Into<Value>) -> Cause {
    Cause {
        reason: "FieldValueDuplicate",
        message: format!("Duplicate value: {}", show(&value.into())),
        field: field.into(),
    }
}

/// `Forbidden: <detail>`.
pub fn forbidden(field: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden",
        message: with_detail("Forbidden".into(), detail),
        field: field.into(),
    }
}

/// `Too long: may not be more than <max> bytes`.
pub fn too_long(field: &str, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooLong",
        message: format!("Too long: may not be more than {max} bytes"),
        field: field.into(),
    }
}

/// `Too many: <actual>: must have at most <max> items`.
pub fn too_many(field: &str, actual: usize, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooMany",
        message: format!("Too many: {actual}: must have at most {max} items"),
        field: field.into(),
    }
}

/// `Invalid value: <value>: <detail>` for a value of the wrong JSON type.
pub fn type_invalid(field: &str, value: &Value, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueTypeInvalid",
        message: with_detail(format!("Invalid value: {}", show(value)), detail),
        field: field.into(),
    }
}

/// The error of an immutable field changed on update.
pub fn immutable(field: &str, value: &Value) -> Cause {
    invalid(field, value.clone(), "field is immutable")
}

/// One `Invalid value` cause per message.
pub fn invalid_each(field: &str, value: &str, messages: Vec<String>) -> Vec<Cause> {
    messages
        .into_iter()
        .map(|m| invalid(field, value, &m))
        .collect()
}

// ---- JSON access that never panics -----------------------------------------

/// Checks the `name` of port `p` at `path` in a list of `count` ports (Services,
/// Endpoints): required once there is more than one port, a DNS-1123 label,
/// and unique among the names already in `seen`.
pub fn service_port_name(
    p: &Value,
    path: &str,
    count: usize,
    seen: &mut std::collections::HashSet<String>,
    errs: &mut Vec<Cause>,
) {
    let field = format!("{path}.name");
    match str_at(p, "name").unwrap_or("") {
        "" if count > 1 => errs.push(required(&field)),
        "" => {}
        name => {
            errs.extend(invalid_each(&field, name, dns1123_label(name)));
            if !seen.insert(name.to_string()) {
                errs.push(duplicate(&field, name));
            }
        }
    }
}

/// The string at `key` of an object, if it is one.
pub fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The array at `key`, or an empty slice.
pub fn arr_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `key`, if it is one.
pub fn obj_at<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// The object at `key`, created empty if absent or null; `None` when
/// `v` is not an object or `key` holds a non-object.
pub fn obj_entry<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let map = v.as_object_mut()?;
    let slot = map.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.is_object().then_some(slot)
}

/// Sets `key` to `value` when absent, null, or an empty string.
pub fn default_field(v: &mut Value, key: &str, value: impl Into<Value>) {
    if let Some(map) = v.as_object_mut() {
        let unset = match map.get(key) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Number(n)) => n.as_f64() == Some(0.0) && key_is_zero_defaulted(key),
            _ => false,
        };
        if unset {
            map.insert(key.into(), value.into());
        }
    }
}

/// Probe thresholds are plain int32 upstream, so 0 means "unset" there.
fn key_is_zero_defaulted(key: &str) -> bool {
    matches!(
        key,
        "timeoutSeconds" | "periodSeconds" | "successThreshold" | "failureThreshold"
    )
}

/// Mutable iteration over the objects of the array at `key`.
pub fn each_obj_mut(v: &mut Value, key: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = v.get_mut(key).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter(|i| i.is_object()) {
            f(item);
        }
    }
}

/// The integer at `key` if it is an integral JSON number.
pub fn int_at(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

// ---- name formats ------------------------------------------------------------

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn matches_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
        && s.starts_with(is_lower_alnum)
        && s.ends_with(is_lower_alnum)
}

/// Upstream's `IsDNS1123Label`: problems, empty when valid.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".into());
    }
    if !matches_dns1123_label(s) {
        errs.push(DNS1123_LABEL_MSG.into());
    }
    errs
}

/// Upstream's `IsDNS1123Subdomain`.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".into());
    }
    if !s.split('.').all(matches_dns1123_label) {
        errs.push(DNS1123_SUBDOMAIN_MSG.into());
    }
    errs
}

/// Upstream's `IsDNS1035Label` (Service names).
pub fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".into());
    }
    if !(matches_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())) {
        errs.push(DNS1035_LABEL_MSG.into());
    }
    errs
}

/// Upstream's `IsCIdentifier`.
pub fn c_identifier(s: &str) -> Vec<String> {
    let ok = s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        vec![]
    } else {
        vec![C_IDENTIFIER_MSG.into()]
    }
}

/// Upstream's `IsEnvVarName` with relaxed validation (beta, on by default
/// since 1.32): any printable ASCII but `=`.
pub fn env_var_name(s: &str) -> Vec<String> {
    if s.chars().all(|c| (' '..='~').contains(&c) && c != '=') {
        vec![]
    } else {
        vec![
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .into(),
        ]
    }
}

fn matches_qualified_part(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Upstream's `IsQualifiedName` (label keys, annotation keys, finalizers).
pub fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".into());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            name
        }
        _ => return vec![QUALIFIED_NAME_SLASH_MSG.into()],
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".into());
    }
    if !name.is_empty() && !matches_qualified_part(name) {
        errs.push(QUALIFIED_NAME_MSG.into());
    }
    errs
}

/// Upstream's `IsValidLabelValue`.
pub fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".into());
    }
    if !s.is_empty() && !matches_qualified_part(s) {
        errs.push(LABEL_VALUE_MSG.into());
    }
    errs
}

/// Upstream's `IsConfigMapKey` (ConfigMap and Secret keys).
pub fn config_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".into());
    }
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        errs.push(CONFIG_KEY_MSG.into());
    }
    if s == "." {
        errs.push("must not be '.'".into());
    } else if s == ".." {
        errs.push("must not be '..'".into());
    } else if s.starts_with("..") {
        errs.push("must not start with '..'".into());
    }
    errs
}

/// Upstream's `IsValidPortName` (IANA service names).
pub fn port_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push("must be no more than 15 characters".into());
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !s.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// Upstream's `ValidatePathSegmentName` (RBAC object names and the like).
pub fn path_segment_name(s: &str) -> Vec<String> {
    if s == "." || s == ".." {
        return vec![format!("may not be '{s}'")];
    }
    ["/", "%"]
        .iter()
        .filter(|bad| s.contains(**bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// Upstream's `IsValidPortNum`.
pub fn port_number(n: i64) -> Vec<String> {
    if (1..=65535).contains(&n) {
        vec![]
    } else {
        vec!["must be between 1 and 65535, inclusive".into()]
    }
}

/// Whether `s` is an IP address in upstream's (legacy-tolerant) sense.
pub fn parse_ip(s: &str) -> Option<std::net::IpAddr> {
    s.parse().ok()
}

/// Upstream's `IsValidIP`.
pub fn ip_address(s: &str) -> Vec<String> {
    if parse_ip(s).is_some() {
        vec![]
    } else {
        vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into()]
    }
}

/// Upstream's `IsValidCIDR`.
pub fn cidr(s: &str) -> Vec<String> {
    if s.parse::<ipnet::IpNet>().is_ok() {
        vec![]
    } else {
        vec!["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)".into()]
    }
}

// ---- metadata ----------------------------------------------------------------

/// Validates a label map at `field` (upstream reports at the map's path).
pub fn validate_labels(labels: Option<&Value>, field: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let Some(labels) = labels else {
        return errs;
    };
    let Some(map) = labels.as_object() else {
        if !labels.is_null() {
            errs.push(type_invalid(
                field,
                labels,
                "must be a map of string to string",
            ));
        }
        return errs;
    };
    for (k, v) in map {
        errs.extend(invalid_each(field, k, qualified_name(k)));
        match v.as_str() {
            Some(v) => errs.extend(invalid_each(field, v, label_value(v))),
            None => errs.push(type_invalid(field, v, "must be a string")),
        }
    }
    errs
}

/// Validates an annotation map at `field`: qualified keys, 256 KiB in total.
pub fn validate_annotations(annotations: Option<&Value>, field: &str) -> Vec<Cause> {
    let mut errs = Vec::new();
    let Some(annotations) = annotations else {
        return errs;
    };
    let Some(map) = annotations.as_object() else {
        if !annotations.is_null() {
            errs.push(type_invalid(
                field,
                annotations,
                "must be a map of string to string",
            ));
        }
        return errs;
    };
    let mut total = 0usize;
    for (k, v) in map {
        errs.extend(invalid_each(field, k, qualified_name(&k.to_lowercase())));
        total += k.len() + v.as_str().map_or(0, str::len);
        if !v.is_string() {
            errs.push(type_invalid(field, v, "must be a string"));
        }
    }
    if total > TOTAL_ANNOTATION_SIZE {
        errs.push(too_long(field, TOTAL_ANNOTATION_SIZE));
    }
    errs
}

/// Validates the parts of `metadata` no generic code checks: labels,
/// annotations and finalizer names.
pub fn validate_meta(obj: &Value) -> Vec<Cause> {
    let meta = obj.get("metadata");
    let mut errs = validate_labels(meta.and_then(|m| m.get("labels")), "metadata.labels");
    errs.extend(validate_annotations(
        meta.and_then(|m| m.get("annotations")),
        "metadata.annotations",
    ));
    if let Some(finalizers) = meta.map(|m| arr_at(m, "finalizers")) {
        for (i, f) in finalizers.iter().enumerate() {
            let field = format!("metadata.finalizers[{i}]");
            match f.as_str() {
                Some(s) => errs.extend(invalid_each(&field, s, qualified_name(s))),
                None => errs.push(type_invalid(&field, f, "must be a string")),
            }
        }
        let has = |name: &str| finalizers.iter().any(|f| f == name);
        if has("orphan") && has("foregroundDeletion") {
            errs.push(invalid(
                "metadata.finalizers",
                Value::from(finalizers.to_vec()),
                "finalizers orphan and foregroundDeletion cannot be both set",
            ));
        }
    }
    if let Some(refs) = meta.map(|m| arr_at(m, "ownerReferences")) {
        validate_owner_references(refs, &mut errs);
    }
    errs
}

/// Upstream's `ValidateOwnerReferences` (all causes at the list's path).
fn validate_owner_references(refs: &[Value], errs: &mut Vec<Cause>) {
    let field = "metadata.ownerReferences";
    let mut controller: Option<String> = None;
    for r in refs {
        let api_version = str_at(r, "apiVersion").unwrap_or("");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(invalid(
                &format!("{field}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for (key, detail) in [
            ("kind", "kind must not be empty"),
            ("name", "name must not be empty"),
            ("uid", "uid must not be empty"),
        ] {
            let v = str_at(r, key).unwrap_or("");
            if v.is_empty() {
                errs.push(invalid(&format!("{field}.{key}"), v, detail));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!(
                "{}/{}",
                str_at(r, "kind").unwrap_or(""),
                str_at(r, "name").unwrap_or("")
            );
            match &controller {
                Some(first) => errs.push(invalid(
                    field,
                    Value::from(refs.to_vec()),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => controller = Some(current),
            }
        }
    }
}

/// Checks `metadata.name` against a rule stricter than the RFC 1123
/// subdomain the generic code applies, reporting only names that pass the
/// generic rule (so a name is never reported twice).
pub fn stricter_name(obj: &Value, check: fn(&str) -> Vec<String>) -> Vec<Cause> {
    let Some(name) = obj.pointer("/metadata/name").and_then(Value::as_str) else {
        return Vec::new();
    };
    if name.is_empty() || !dns1123_subdomain(name).is_empty() {
        return Vec::new();
    }
    invalid_each("metadata.name", name, check(name))
}

/// The labels of an object's `metadata` (or a template's), as pairs.
pub fn labels_of(meta_holder: &Value) -> Vec<(String, String)> {
    meta_holder
        .get("metadata")
        .and_then(|m| obj_at(m, "labels"))
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks that a field which was set keeps its value on update.
pub fn check_immutable(new: &Value, old: &Value, pointer: &str, field: &str) -> Option<Cause> {
    let n = new.pointer(pointer).unwrap_or(&Value::Null);
    let o = old.pointer(pointer).unwrap_or(&Value::Null);
    (n != o).then(|| immutable(field, n))
}

/// A string list of problems from a name check, reported as causes at `field`,
/// after an empty check that reports `Required value`.
pub fn required_name(
    field: &str,
    value: Option<&Value>,
    check: fn(&str) -> Vec<String>,
) -> Vec<Cause> {
    match value {
        None | Some(Value::Null) => vec![required(field)],
        Some(Value::String(s)) if s.is_empty() => vec![required(field)],
        Some(Value::String(s)) => invalid_each(field, s, check(s)),
        Some(other) => vec![type_invalid(field, other, "must be a string")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_bodies_follow_upstream_format() {
        assert_eq!(required("spec.x").message, "Required value");
        assert_eq!(
            invalid("f", "Foo", &dns1123_label("Foo")[0]).message,
            format!("Invalid value: \"Foo\": {DNS1123_LABEL_MSG}")
        );
        assert_eq!(
            not_supported("f", "X", &["Always", "IfNotPresent", "Never"]).message,
            "Unsupported value: \"X\": supported values: \"Always\", \"IfNotPresent\", \"Never\""
        );
        assert_eq!(duplicate("f", "web").message, "Duplicate value: \"web\"");
        assert_eq!(invalid("f", 70000, "x").message, "Invalid value: 70000: x");
        assert_eq!(forbidden("f", "nope").message, "Forbidden: nope");
    }

    #[test]
    fn dns_names() {
        assert!(dns1123_label("my-name").is_empty());
        assert!(dns1123_label("123-abc").is_empty());
        assert_eq!(
            dns1123_label("My-name"),
            vec![DNS1123_LABEL_MSG.to_string()]
        );
        assert!(!dns1123_label("-a").is_empty());
        assert!(!dns1123_label("a.b").is_empty());
        assert_eq!(dns1123_label(&"a".repeat(64)).len(), 1);
        assert!(dns1123_subdomain("example.com").is_empty());
        assert!(!dns1123_subdomain("example..com").is_empty());
        assert!(!dns1123_subdomain("").is_empty());
        assert!(dns1035_label("abc-123").is_empty());
        assert!(!dns1035_label("1abc").is_empty());
    }

    #[test]
    fn qualified_names_and_label_values() {
        assert!(qualified_name("app").is_empty());
        assert!(qualified_name("example.com/My_Name.x").is_empty());
        assert!(!qualified_name("a/b/c").is_empty());
        assert_eq!(qualified_name("/a"), vec!["prefix part must be non-empty"]);
        assert_eq!(
            qualified_name("Example.com/a"),
            vec![format!("prefix part {DNS1123_SUBDOMAIN_MSG}")]
        );
        assert!(!qualified_name("-a").is_empty());
        assert!(label_value("").is_empty());
        assert!(label_value("v1.2_x").is_empty());
        assert!(!label_value("bad value").is_empty());
    }

    #[test]
    fn keys_ports_and_addresses() {
        assert!(config_key("key.name").is_empty());
        assert!(!config_key("a/b").is_empty());
        assert_eq!(config_key(".."), vec!["must not be '..'"]);
        assert!(port_name("http").is_empty());
        assert!(!port_name("HTTP").is_empty());
        assert!(!port_name("123").is_empty());
        assert!(!port_name("a--b").is_empty());
        assert!(port_number(80).is_empty());
        assert!(!port_number(0).is_empty());
        assert!(ip_address("10.0.0.1").is_empty());
        assert!(ip_address("2001:db8::1").is_empty());
        assert!(!ip_address("10.0.0.256").is_empty());
        assert!(cidr("10.42.0.0/24").is_empty());
        assert!(!cidr("10.42.0.0").is_empty());
        assert!(c_identifier("MY_VAR").is_empty());
        assert!(!c_identifier("1X").is_empty());
        assert!(env_var_name("my.var-1").is_empty());
        assert!(!env_var_name("A=B").is_empty());
    }

    #[test]
    fn metadata_labels_and_annotations() {
        let obj =
            json!({"metadata": {"labels": {"app": "web", "bad key!": "x", "k": "bad value"}}});
        let errs = validate_meta(&obj);
        assert_eq!(errs.len(), 2);
        assert!(errs.iter().all(|e| e.field == "metadata.labels"));
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE);
        let obj = json!({"metadata": {"annotations": {"a": big}}});
        let errs = validate_meta(&obj);
        assert_eq!(errs[0].reason, "FieldValueTooLong");
        assert_eq!(errs[0].field, "metadata.annotations");
        assert!(
            validate_meta(&json!({"metadata": {"labels": "oops"}}))[0].reason
                == "FieldValueTypeInvalid"
        );
    }
    #[test]
    fn owner_references_and_finalizers() {
        let owner = |name: &str| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": "u", "controller": true});
        let obj = json!({"metadata": {
            "ownerReferences": [owner("a"), owner("b"), {"apiVersion": "apps/", "kind": "X"}],
            "finalizers": ["orphan", "foregroundDeletion"]}});
        let errs = validate_meta(&obj);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "metadata.finalizers",
                "metadata.ownerReferences",
                "metadata.ownerReferences.apiVersion",
                "metadata.ownerReferences.name",
                "metadata.ownerReferences.uid"
            ]
        );
        assert!(
            errs[1]
                .message
                .ends_with("Found \"true\" in references for ReplicaSet/a and ReplicaSet/b")
        );
    }
}
