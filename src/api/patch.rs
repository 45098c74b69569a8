//! PATCH bodies: RFC 6902 JSON patch, RFC 7386 JSON merge patch and
//! strategic merge patch ([`strategic`]). Server-side apply
//! (`application/apply-patch+yaml`) is not a patch of the document but a
//! merge with field ownership: [`crate::api::fieldmanager::apply`].

pub mod strategic;

use serde_json::{Map, Value};

use crate::api::schema;
use crate::api::status::ApiStatus;

/// The patch formats a PATCH request can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    /// Strategic merge patch; only for kinds with a schema (built-in
    /// kinds), as upstream refuses it for custom resources.
    Strategic,
    /// Server-side apply.
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type, or 415 for one this server does not
    /// apply.
    pub fn from_content_type(ct: &str) -> Result<Self, ApiStatus> {
        match ct {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" => Ok(PatchType::Apply),
            other => Err(ApiStatus::unsupported_media_type(other)),
        }
    }
}

/// Applies `body` to `doc`.
pub fn apply(kind: PatchType, doc: &Value, body: &[u8]) -> Result<Value, ApiStatus> {
    let mut out = doc.clone();
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiStatus::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::patch(&mut out, &ops).map_err(|e| {
                ApiStatus::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
        }
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|e| ApiStatus::bad_request(format!("error decoding patch: {e}")))?;
            if !patch.is_object() {
                return Err(ApiStatus::bad_request(
                    "a merge patch must be a JSON object",
                ));
            }
            json_patch::merge(&mut out, &patch);
        }
        PatchType::Strategic => out = apply_strategic(doc, body)?,
        PatchType::Apply => {
            return Err(ApiStatus::internal(
                "server-side apply is not a document patch",
            ));
        }
    }
    if !out.is_object() {
        return Err(ApiStatus::bad_request(
            "the patched document is not an object",
        ));
    }
    Ok(out)
}

/// The schema of the object a patch applies to, found by its apiVersion
/// and kind (the object as the client sees it: a kind, or a Scale).
fn schema_of(doc: &Value) -> Option<&'static Value> {
    let api_version = doc.get("apiVersion")?.as_str()?;
    let kind = doc.get("kind")?.as_str()?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    schema::catalog().root(group, version, kind)
}

fn apply_strategic(doc: &Value, body: &[u8]) -> Result<Value, ApiStatus> {
    let Some(schema) = schema_of(doc) else {
        return Err(ApiStatus::unsupported_media_type(
            "application/strategic-merge-patch+json",
        ));
    };
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiStatus::bad_request(format!("error decoding patch: {e}")))?;
    let patch = match patch {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => {
            return Err(ApiStatus::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_type(&other)
            )));
        }
    };
    let original = doc.as_object().cloned().unwrap_or_default();
    strategic::apply(schema::catalog(), schema, original, patch)
        .map(Value::Object)
        .map_err(strategic::Error::into_status)
}

/// The JSON type name Go's decoder uses in its errors.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null | Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_json_patches() {
        let doc =
            json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "data": {"k": "v"}});
        let Ok(merged) = apply(
            PatchType::Merge,
            &doc,
            br#"{"metadata":{"labels":{"x":null,"z":"3"}}}"#,
        ) else {
            panic!("merge applies")
        };
        assert_eq!(merged["metadata"]["labels"], json!({"y": "2", "z": "3"}));
        let Ok(patched) = apply(
            PatchType::Json,
            &doc,
            br#"[{"op":"replace","path":"/data/k","value":"w"}]"#,
        ) else {
            panic!("json patch applies")
        };
        assert_eq!(patched["data"]["k"], "w");
        let failed = apply(
            PatchType::Json,
            &doc,
            br#"[{"op":"test","path":"/data/k","value":"nope"}]"#,
        );
        assert_eq!(failed.map_err(|e| e.code).err(), Some(422));
        assert_eq!(
            apply(PatchType::Merge, &doc, b"{")
                .map_err(|e| e.code)
                .err(),
            Some(400)
        );
        assert!(PatchType::from_content_type("application/x-unknown-patch").is_err());
    }

    #[test]
    fn strategic_patches_need_a_schema() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}});
        let Ok(kind) = PatchType::from_content_type("application/strategic-merge-patch+json")
        else {
            panic!("strategic merge is served")
        };
        let Ok(patched) = apply(
            kind,
            &deployment,
            br#"{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"b:2"}]}}}}"#,
        ) else {
            panic!("patch applies")
        };
        assert_eq!(
            patched["spec"]["template"]["spec"]["containers"][0]["image"],
            "a:1"
        );
        assert_eq!(
            patched["spec"]["template"]["spec"]["containers"][1]["image"],
            "b:2"
        );
        let scale =
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 1}});
        let Ok(scaled) = apply(kind, &scale, br#"{"spec":{"replicas":3}}"#) else {
            panic!("scale patch applies")
        };
        assert_eq!(scaled["spec"]["replicas"], 3);
        let custom = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {}});
        assert_eq!(
            apply(kind, &custom, b"{}").map_err(|e| e.code).err(),
            Some(415)
        );
        assert_eq!(
            apply(kind, &deployment, b"[]").map_err(|e| e.code).err(),
            Some(400)
        );
    }
}
