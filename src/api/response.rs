//! Encoding answers: JSON bodies, and request bodies in JSON or YAML.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;

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
}
