//! ConfigMaps and Secrets: key formats, the 1 MiB size cap, `immutable`
//! objects, and for Secrets the `stringData` merge, base64 checks of `data`,
//! the immutable `type` and the keys each well-known type requires.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::validation::{
    config_key, default_field, forbidden, invalid, invalid_each, obj_at, required, str_at,
    too_long, type_invalid, validate_meta,
};
use super::{Cause, Strategy};

/// Upstream's `MaxSecretSize`, which also caps ConfigMaps.
pub const MAX_SIZE: usize = 1024 * 1024;

const REDACTED: &str = "<secret contents redacted>";

/// Checks the keys of a string-valued map at `field`, returning the summed
/// size of its values (decoded when `base64` is set).
fn check_keys(
    map: Option<&Map<String, Value>>,
    field: &str,
    base64: bool,
    errs: &mut Vec<Cause>,
) -> usize {
    let mut total = 0;
    for (k, v) in map.into_iter().flatten() {
        let kp = format!("{field}[{k}]");
        errs.extend(invalid_each(&kp, k, config_key(k)));
        match v.as_str() {
            Some(s) if base64 => match STANDARD.decode(s) {
                Ok(bytes) => total += bytes.len(),
                Err(e) => errs.push(invalid(&kp, REDACTED, &format!("illegal base64 data: {e}"))),
            },
            Some(s) => total += s.len(),
            None if v.is_null() => {}
            None => errs.push(type_invalid(&kp, v, "must be a string")),
        }
    }
    total
}

/// The `immutable: true` rules shared by ConfigMaps and Secrets.
fn check_immutable(new: &Value, old: &Value, keys: &[&str], errs: &mut Vec<Cause>) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for key in keys {
        let empty = |v: &Value| {
            v.get(*key)
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
        };
        let same = new.get(*key) == old.get(*key) || (empty(new) && empty(old));
        if !same {
            errs.push(forbidden(key, "field is immutable when `immutable` is set"));
        }
    }
}

/// ConfigMaps (core/v1).
pub struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let data = obj_at(obj, "data");
        let binary = obj_at(obj, "binaryData");
        let mut total = check_keys(data, "data", false, &mut errs);
        total += check_keys(binary, "binaryData", true, &mut errs);
        if let (Some(data), Some(binary)) = (data, binary) {
            for k in binary.keys().filter(|k| data.contains_key(*k)) {
                errs.push(invalid(
                    &format!("binaryData[{k}]"),
                    k.as_str(),
                    "duplicate of key present in data",
                ));
            }
        }
        if total > MAX_SIZE {
            errs.push(too_long("", MAX_SIZE));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        check_immutable(new, old, &["data", "binaryData"], &mut errs);
        errs
    }
}

/// Secrets (core/v1).
pub struct SecretStrategy;

impl Strategy for SecretStrategy {
    /// Folds `stringData` into `data` (base64-encoded, `stringData` wins), as
    /// upstream's conversion does, and defaults `type` to `Opaque`.
    fn default(&self, obj: &mut Value) {
        let Some(m) = obj.as_object_mut() else { return };
        if let Some(Value::Object(string_data)) = m.remove("stringData") {
            let data = m.entry("data").or_insert_with(|| Value::Object(Map::new()));
            if data.is_null() {
                *data = Value::Object(Map::new());
            }
            if let Some(data) = data.as_object_mut() {
                for (k, v) in string_data {
                    if let Some(s) = v.as_str() {
                        data.insert(k, STANDARD.encode(s).into());
                    }
                }
            }
        }
        default_field(obj, "type", "Opaque");
    }

    fn validate_create(&self, obj: &Value) -> Vec<Cause> {
        let mut errs = validate_meta(obj);
        let data = obj_at(obj, "data");
        let total = check_keys(data, "data", true, &mut errs);
        if total > MAX_SIZE {
            errs.push(too_long("data", MAX_SIZE));
        }
        let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
        let need = |k: &str, errs: &mut Vec<Cause>| {
            if !has(k) {
                errs.push(required(&format!("data[{k}]")));
            }
        };
        match str_at(obj, "type").unwrap_or("") {
            "kubernetes.io/service-account-token" => {
                let name = obj
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get("kubernetes.io/service-account.name"))
                    .and_then(Value::as_str);
                if name.is_none_or(str::is_empty) {
                    errs.push(required(
                        "metadata.annotations[kubernetes.io/service-account.name]",
                    ));
                }
            }
            "kubernetes.io/dockercfg" => {
                need(".dockercfg", &mut errs);
                check_json(data, ".dockercfg", &mut errs);
            }
            "kubernetes.io/dockerconfigjson" => {
                need(".dockerconfigjson", &mut errs);
                check_json(data, ".dockerconfigjson", &mut errs);
            }
            "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
                need("username", &mut errs);
                need("password", &mut errs);
            }
            "kubernetes.io/ssh-auth" => need("ssh-privatekey", &mut errs),
            "kubernetes.io/tls" => {
                need("tls.key", &mut errs);
                need("tls.crt", &mut errs);
            }
            _ => {}
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut errs = self.validate_create(new);
        if let Some(c) = super::validation::check_immutable(new, old, "/type", "type") {
            errs.push(c);
        }
        check_immutable(new, old, &["data"], &mut errs);
        errs
    }

    fn field_attributes(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![("type", str_at(obj, "type").unwrap_or("").to_string())]
    }
}

/// Docker config secrets must hold JSON.
fn check_json(data: Option<&Map<String, Value>>, key: &str, errs: &mut Vec<Cause>) {
    let Some(encoded) = data.and_then(|d| d.get(key)).and_then(Value::as_str) else {
        return;
    };
    if let Ok(bytes) = STANDARD.decode(encoded) {
        if let Err(e) = serde_json::from_slice::<Value>(&bytes) {
            errs.push(invalid(&format!("data[{key}]"), REDACTED, &e.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configmap_keys_and_duplicates() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"ok.key": "v", "bad/key": "v", "x": "1"},
            "binaryData": {"x": "aGk="}});
        let errs = ConfigMapStrategy.validate_create(&cm);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["data[bad/key]", "binaryData[x]"]);
        assert!(
            errs[0]
                .message
                .starts_with("Invalid value: \"bad/key\": a valid config key must consist")
        );
    }

    #[test]
    fn configmap_size_cap() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"big": "x".repeat(MAX_SIZE + 1)}});
        let errs = ConfigMapStrategy.validate_create(&cm);
        assert_eq!(errs[0].reason, "FieldValueTooLong");
    }

    #[test]
    fn immutable_configmap_rejects_data_changes() {
        let old = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
        let mut new = old.clone();
        new["data"]["a"] = json!("2");
        let errs = ConfigMapStrategy.validate_update(&new, &old);
        assert_eq!(
            errs,
            vec![forbidden(
                "data",
                "field is immutable when `immutable` is set"
            )]
        );
        new["immutable"] = json!(false);
        assert_eq!(ConfigMapStrategy.validate_update(&new, &old).len(), 2);
    }

    #[test]
    fn secret_string_data_is_merged() {
        let mut s = json!({"metadata": {"name": "s"}, "data": {"a": "eA=="}, "stringData": {"b": "hello", "a": "y"}});
        SecretStrategy.default(&mut s);
        assert_eq!(
            s,
            json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "eQ==", "b": "aGVsbG8="}})
        );
        assert!(SecretStrategy.validate_create(&s).is_empty());
    }

    #[test]
    fn secret_base64_type_keys_and_immutable_type() {
        let s = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "not base64!"}});
        assert_eq!(SecretStrategy.validate_create(&s)[0].field, "data[a]");
        let tls = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}});
        assert_eq!(
            SecretStrategy.validate_create(&tls),
            vec![required("data[tls.key]")]
        );
        let sa = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/service-account-token"});
        assert_eq!(
            SecretStrategy.validate_create(&sa)[0].field,
            "metadata.annotations[kubernetes.io/service-account.name]"
        );
        let dj = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": STANDARD.encode("{nope")}});
        assert_eq!(
            SecretStrategy.validate_create(&dj)[0].field,
            "data[.dockerconfigjson]"
        );
        let old = json!({"metadata": {"name": "s"}, "type": "Opaque"});
        let new = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth", "data": {"username": ""}});
        let errs = SecretStrategy.validate_update(&new, &old);
        assert_eq!(
            errs[0].message,
            "Invalid value: \"kubernetes.io/basic-auth\": field is immutable"
        );
        assert_eq!(
            SecretStrategy.field_attributes(&new),
            vec![("type", "kubernetes.io/basic-auth".to_string())]
        );
    }
}
