//! Objects as JSON values: reading and stamping the metadata the server owns,
//! the storage encoding, and the generic name rules.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::api::kinds::Cause;
use crate::api::registry::KindInfo;
use crate::store::{KeyValue, Revision};

/// Upstream's alphabet for generated name suffixes (no vowels, no confusable
/// digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `metadata.<field>` as a string, if present.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

/// A mutable `metadata` map, created if missing or not an object.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

/// Sets a nested field, turning anything on the way that is not an object
/// into one (user data can hold a string where an object belongs; indexing
/// would panic on it).
pub fn set_path(obj: &mut Value, path: &[&str], value: Value) {
    let mut cur = obj;
    for seg in path {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Value::Object(map) = cur else {
            return;
        };
        cur = map.entry(seg.to_string()).or_insert(Value::Null);
    }
    *cur = value;
}

pub fn set_resource_version(obj: &mut Value, revision: Revision) {
    meta_mut(obj).insert("resourceVersion".into(), json!(revision.to_string()));
}

/// The finalizers of an object.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The stored bytes of an object: its JSON without the resourceVersion,
/// which is the key's mod revision and is stamped back on read.
pub fn encode(obj: &Value) -> Bytes {
    let mut obj = obj.clone();
    meta_mut(&mut obj).remove("resourceVersion");
    Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
}

/// Decodes a stored object and stamps its resourceVersion.
pub fn decode(kv: &KeyValue) -> Result<Value, serde_json::Error> {
    let mut obj: Value = serde_json::from_slice(&kv.value)?;
    set_resource_version(&mut obj, kv.mod_revision);
    Ok(obj)
}

/// The current time as upstream serialises `metav1.Time`: RFC 3339, seconds.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `prefix` plus five random characters of upstream's alphabet.
pub fn generate_name(prefix: &str) -> String {
    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rand::random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    // Upstream truncates the prefix so the result fits a 63-character label.
    let keep = prefix.len().min(58);
    let prefix = prefix.get(..keep).unwrap_or(prefix);
    format!("{prefix}{suffix}")
}

/// How a kind's object names are validated.
#[derive(Clone, Copy)]
enum NameRule {
    Dns1123Subdomain,
    Dns1123Label,
    Dns1035Label,
    /// RBAC objects: anything usable as one path segment.
    PathSegment,
}

fn rule_for(kind: &KindInfo) -> NameRule {
    match (kind.group, kind.kind) {
        ("", "Namespace") => NameRule::Dns1123Label,
        ("", "Service") => NameRule::Dns1035Label,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Dns1123Subdomain,
    }
}

fn is_label(s: &str, first_alpha: bool) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && (if first_alpha {
            b[0].is_ascii_lowercase()
        } else {
            alnum(&b[0])
        })
        && alnum(&b[b.len() - 1])
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// The reasons `name` is not a valid name for `kind` (empty when valid).
pub fn validate_name(kind: &KindInfo, name: &str) -> Vec<Cause> {
    let invalid = |why: String| Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: \"{name}\": {why}"),
        field: "metadata.name".into(),
    };
    if name.is_empty() {
        return vec![Cause {
            reason: "FieldValueRequired",
            message: "Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        }];
    }
    match rule_for(kind) {
        NameRule::Dns1123Subdomain => {
            if name.len() > 253 {
                return vec![invalid("must be no more than 253 characters".into())];
            }
            if !name.split('.').all(|part| is_label(part, false)) {
                return vec![invalid("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".into())];
            }
        }
        NameRule::Dns1123Label => {
            if name.len() > 63 {
                return vec![invalid("must be no more than 63 characters".into())];
            }
            if !is_label(name, false) {
                return vec![invalid("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into())];
            }
        }
        NameRule::Dns1035Label => {
            if name.len() > 63 {
                return vec![invalid("must be no more than 63 characters".into())];
            }
            if !is_label(name, true) {
                return vec![invalid("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".into())];
            }
        }
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                return vec![invalid(format!("may not be '{name}'"))];
            }
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    return vec![invalid(format!("may not contain '{bad}'"))];
                }
            }
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::lookup;

    #[test]
    fn generated_names_use_upstreams_alphabet() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("web-"));
        assert!(n[4..].bytes().all(|c| NAME_ALPHABET.contains(&c)));
    }

    #[test]
    fn names_follow_each_kinds_rule() {
        let (Some(cm), Some(svc), Some(role)) = (
            lookup("", "v1", "configmaps"),
            lookup("", "v1", "services"),
            lookup("rbac.authorization.k8s.io", "v1", "roles"),
        ) else {
            panic!("kinds in table")
        };
        assert!(validate_name(cm, "a.b-c").is_empty());
        assert_eq!(validate_name(cm, "Foo")[0].reason, "FieldValueInvalid");
        assert_eq!(validate_name(cm, "")[0].reason, "FieldValueRequired");
        assert!(!validate_name(svc, "1abc").is_empty());
        assert!(!validate_name(svc, "a.b").is_empty());
        assert!(validate_name(role, "system:controller:x").is_empty());
        assert!(!validate_name(role, "a/b").is_empty());
    }

    #[test]
    fn set_path_replaces_non_objects() {
        let mut obj = json!({"spec": "oops"});
        set_path(&mut obj, &["spec", "replicas"], json!(3));
        assert_eq!(obj, json!({"spec": {"replicas": 3}}));
    }

    #[test]
    fn storage_drops_and_read_restores_the_resource_version() {
        let obj = json!({"metadata": {"name": "x", "resourceVersion": "9"}});
        let bytes = encode(&obj);
        let kv = KeyValue {
            key: "k".into(),
            value: bytes,
            create_revision: 3,
            mod_revision: 4,
        };
        let Ok(back) = decode(&kv) else {
            panic!("decodes")
        };
        assert_eq!(back["metadata"]["resourceVersion"], "4");
    }
}
