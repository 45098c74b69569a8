//! Encoding answers: JSON bodies, request bodies in JSON or YAML, and the
//! server-side `Table` form `kubectl get` asks for.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Value, json};

use crate::api::status::ApiStatus;

/// Request bodies larger than this are refused with 413, as upstream does.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// A JSON response.
pub fn json(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The request's Content-Type without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("application/json")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes a request body in JSON or YAML into an object.
pub fn decode_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiStatus> {
    let value: Value = match content_type(headers).as_str() {
        // A repeated key keeps its last value here, as upstream's YAML
        // decoding does; `handlers::fields` reports it.
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let options = serde_saphyr::options! {
                duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
            };
            serde_saphyr::from_slice_with_options(body, options).map_err(|e| {
                ApiStatus::bad_request(format!("error converting YAML to JSON: {e}"))
            })?
        }
        "application/json" | "*/*" | "" => serde_json::from_slice(body).map_err(|e| {
            ApiStatus::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?,
        "application/vnd.kubernetes.protobuf" => crate::api::protobuf::decode(body)
            .map_err(|e| ApiStatus::new(415, "UnsupportedMediaType", e.to_string()))?,
        _ => serde_json::from_slice(body).map_err(|e| {
            ApiStatus::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?,
    };
    if !value.is_object() {
        return Err(ApiStatus::bad_request(
            "the body of the request must be a JSON or YAML object",
        ));
    }
    Ok(value)
}

/// Whether the client asked for a `meta.k8s.io/v1 Table` (and not only as a
/// fallback after a plain type it prefers).
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|accept| accept.split(',').next())
        .is_some_and(|first| first.contains("as=Table") && first.contains("g=meta.k8s.io"))
}

/// The default table of an object list: name and creation time, as upstream's
/// default table convertor for kinds without their own columns.
pub fn table(items: &[Value], list_meta: Value, include_object: Option<&str>) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let object = match include_object {
                Some("None") => Value::Null,
                Some("Object") => obj.clone(),
                _ => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": meta,
                }),
            };
            json!({
                "cells": [meta.get("name").cloned().unwrap_or(Value::Null),
                          meta.get("creationTimestamp").cloned().unwrap_or(Value::Null)],
                "object": object,
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names", "priority": 0},
            {"name": "Created At", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata", "priority": 0},
        ],
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_bodies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/yaml"),
        );
        let Ok(v) = decode_body(
            &h,
            &Bytes::from_static(b"kind: ConfigMap\nmetadata:\n  name: a\n"),
        ) else {
            panic!("yaml decodes")
        };
        assert_eq!(v["metadata"]["name"], "a");
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert_eq!(
            decode_body(&h, &Bytes::from_static(b"{bad"))
                .map_err(|e| e.code)
                .err(),
            Some(400)
        );
        assert!(decode_body(&h, &Bytes::from_static(b"[1]")).is_err());
    }

    #[test]
    fn table_accept_header() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert!(wants_table(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_table(&h));
    }
}
