//! PATCH bodies: RFC 6902 JSON patch and RFC 7386 JSON merge patch.
//! Strategic merge and server-side apply are refused with 415 for now.

use serde_json::Value;

use crate::api::status::ApiStatus;

/// The patch formats a PATCH request can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
}

impl PatchType {
    /// The patch type of a Content-Type, or 415 for one this server does not
    /// apply.
    pub fn from_content_type(ct: &str) -> Result<Self, ApiStatus> {
        match ct {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
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
    }
    if !out.is_object() {
        return Err(ApiStatus::bad_request(
            "the patched document is not an object",
        ));
    }
    Ok(out)
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
        assert!(PatchType::from_content_type("application/strategic-merge-patch+json").is_err());
    }
}
