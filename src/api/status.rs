//! `Status` errors: every failure the API server answers with, worded and
//! coded as upstream's apimachinery `errors` package words them.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::{Value, json};

use crate::api::kinds::Cause;
use crate::api::registry::KindInfo;

/// A failed request, rendered as a `v1 Status`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiStatus {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details`: name, group, kind, causes (omitted when empty).
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

/// The `group.resource` form upstream puts in messages: `configmaps`,
/// `deployments.apps`.
pub fn qualified(kind: &KindInfo) -> String {
    if kind.group.is_empty() {
        kind.plural.to_string()
    } else {
        format!("{}.{}", kind.plural, kind.group)
    }
}

/// The `Kind.group` form upstream's `GroupKind` prints: `Pod`,
/// `Deployment.apps`.
fn group_kind(kind: &KindInfo) -> String {
    if kind.group.is_empty() {
        kind.kind.to_string()
    } else {
        format!("{}.{}", kind.kind, kind.group)
    }
}

fn details(kind: &KindInfo, name: &str) -> Value {
    let mut d = json!({"kind": kind.plural});
    if !name.is_empty() {
        d["name"] = json!(name);
    }
    if !kind.group.is_empty() {
        d["group"] = json!(kind.group);
    }
    d
}

impl ApiStatus {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiStatus {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn not_found(kind: &KindInfo, name: &str) -> Self {
        let mut s = Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(kind)),
        );
        s.details = Some(details(kind, name));
        s
    }

    pub fn already_exists(kind: &KindInfo, name: &str) -> Self {
        let mut s = Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(kind)),
        );
        s.details = Some(details(kind, name));
        s
    }

    pub fn conflict(kind: &KindInfo, name: &str, why: &str) -> Self {
        let mut s = Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(kind)
            ),
        );
        s.details = Some(details(kind, name));
        s
    }

    /// The optimistic-concurrency failure of a stale `resourceVersion`.
    pub fn modified(kind: &KindInfo, name: &str) -> Self {
        Self::conflict(
            kind,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with the causes; the message lists them as upstream does.
    pub fn invalid(kind: &KindInfo, name: &str, causes: &[Cause]) -> Self {
        let list: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let mut s = Self::new(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {joined}", group_kind(kind)),
        );
        let mut d = details(kind, name);
        d["kind"] = json!(kind.kind);
        d["causes"] = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        s.details = Some(d);
        s
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(kind: &KindInfo, name: &str, why: &str) -> Self {
        // Upstream leaves the name out when there is none (a generateName
        // create refused by admission).
        let message = if name.is_empty() {
            format!("{} is forbidden: {why}", qualified(kind))
        } else {
            format!("{} \"{name}\" is forbidden: {why}", qualified(kind))
        };
        let mut s = Self::new(403, "Forbidden", message);
        s.details = Some(details(kind, name));
        s
    }

    /// 410 Expired, for compacted revisions and stale continue tokens.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn method_not_allowed(method: &http::Method, path: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!(
                "{method} is not supported on {path}: the server does not allow this method on the requested resource"
            ),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})"
            ),
        )
    }

    pub fn too_large() -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        )
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        let mut s = Self::new(429, "TooManyRequests", message);
        s.retry_after = Some(1);
        s
    }

    /// The `v1 Status` object.
    pub fn to_value(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        } else if let Some(r) = self.retry_after {
            v["details"] = json!({"retryAfterSeconds": r});
        }
        v
    }
}

impl IntoResponse for ApiStatus {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = crate::api::response::json(code, &self.to_value());
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        resp
    }
}

/// A `Status` of success, as upstream answers some deletes.
pub fn success(kind: &KindInfo, name: &str, uid: Option<&str>) -> Value {
    let mut d = details(kind, name);
    if let Some(uid) = uid {
        d["uid"] = json!(uid);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::lookup;

    #[test]
    fn not_found_is_worded_as_upstream() {
        let Some(cm) = lookup("", "v1", "configmaps") else {
            panic!("configmaps in table")
        };
        let v = ApiStatus::not_found(cm, "x").to_value();
        assert_eq!(v["message"], "configmaps \"x\" not found");
        assert_eq!(v["code"], 404);
        assert_eq!(v["details"]["kind"], "configmaps");
        let Some(d) = lookup("apps", "v1", "deployments") else {
            panic!("deployments in table")
        };
        let v = ApiStatus::already_exists(d, "web").to_value();
        assert_eq!(v["message"], "deployments.apps \"web\" already exists");
        assert_eq!(v["details"]["group"], "apps");
    }
}
