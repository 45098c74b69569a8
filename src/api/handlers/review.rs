//! The review APIs: create-only kinds answered at once from the
//! authenticator's and the authorizer's view, never stored.
//!
//! * `authentication.k8s.io/v1 SelfSubjectReview`: who am I (`kubectl auth
//!   whoami`).
//! * `authorization.k8s.io/v1 SelfSubjectAccessReview`: may I (`kubectl auth
//!   can-i`); `SubjectAccessReview` and the namespaced
//!   `LocalSubjectAccessReview`: may this user.
//! * `SelfSubjectRulesReview`: what may I do in a namespace (`kubectl auth
//!   can-i --list`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::write::check_type;
use super::{Core, Ctx};
use crate::api::kinds::Cause;
use crate::api::kinds::validation::invalid;
use crate::api::response::{decode_body, json};
use crate::api::status::ApiStatus;
use crate::auth::UserInfo;
use crate::auth::authn::anonymous;
use crate::auth::rbac::{Attributes, ResourceAttributes};

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

/// Upstream's spec validation for the access reviews.
fn validate_spec(spec: &Value, kind: &str) -> Vec<Cause> {
    let resource = !spec["resourceAttributes"].is_null();
    let non_resource = !spec["nonResourceAttributes"].is_null();
    let mut causes = Vec::new();
    if resource && non_resource {
        causes.push(invalid(
            "spec.nonResourceAttributes",
            spec["nonResourceAttributes"].clone(),
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if !resource && !non_resource {
        causes.push(invalid(
            "spec.resourceAttributes",
            Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if kind == "LocalSubjectAccessReview" && non_resource {
        causes.push(invalid(
            "spec.nonResourceAttributes",
            spec["nonResourceAttributes"].clone(),
            "disallowed on this kind of request",
        ));
    }
    let groups_empty = spec["groups"].as_array().is_none_or(Vec::is_empty);
    if matches!(kind, "SubjectAccessReview" | "LocalSubjectAccessReview")
        && str_at(spec, "user").is_empty()
        && groups_empty
    {
        causes.push(invalid(
            "spec.user",
            "",
            "at least one of user or group must be specified",
        ));
    }
    causes
}

/// The user a SubjectAccessReview asks about.
fn spec_user(spec: &Value) -> UserInfo {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    let extra: BTreeMap<String, Vec<String>> = spec["extra"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
        .unwrap_or_default();
    UserInfo {
        username: str_at(spec, "user").to_string(),
        uid: str_at(spec, "uid").to_string(),
        groups: strings(&spec["groups"]),
        extra,
    }
}

/// The `status` of an access review.
fn access_status(core: &Core, user: &UserInfo, spec: &Value) -> Value {
    let r = &spec["resourceAttributes"];
    let decision = if r.is_null() {
        let n = &spec["nonResourceAttributes"];
        core.authz.authorize(&Attributes {
            user,
            verb: str_at(n, "verb"),
            path: str_at(n, "path"),
            resource: None,
        })
    } else {
        core.authz.authorize(&Attributes {
            user,
            verb: str_at(r, "verb"),
            path: "",
            resource: Some(ResourceAttributes {
                group: str_at(r, "group"),
                version: str_at(r, "version"),
                resource: str_at(r, "resource"),
                subresource: str_at(r, "subresource"),
                namespace: str_at(r, "namespace"),
                name: str_at(r, "name"),
            }),
        })
    };
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    status
}

fn rules_status(core: &Core, user: &UserInfo, namespace: &str) -> Value {
    let (rules, errors) = core.authz.rules_for(user, namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in rules {
        if !r.resources.is_empty() {
            let mut v =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            resource_rules.push(v);
        }
        if !r.non_resource_urls.is_empty() {
            non_resource_rules
                .push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(crate::auth::rbac::aggregate(&errors));
    }
    status
}

fn user_info(user: &UserInfo) -> Value {
    let mut v = json!({"username": user.username, "groups": user.groups});
    if !user.uid.is_empty() {
        v["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        v["extra"] = json!(user.extra);
    }
    v
}

/// Serves a request to a review kind: only `create` (POST to the
/// collection) exists.
pub async fn serve(
    core: &Arc<Core>,
    method: &Method,
    ctx: Ctx,
    body: Bytes,
) -> Result<Response, ApiStatus> {
    let kind = ctx.kind();
    if *method != Method::POST || ctx.target.name.is_some() {
        return Err(ApiStatus::method_not_allowed(method, kind.plural));
    }
    if kind.namespaced && ctx.namespace().is_none() {
        return Err(ApiStatus::method_not_allowed(method, kind.plural));
    }
    let mut sent = decode_body(&ctx.headers, &body)?;
    super::fields::check_body(&ctx, super::fields::Options::Create, &body, &mut sent)?;
    let mut obj = check_type(kind, sent)?;
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    let requester = ctx.user.clone().unwrap_or_else(anonymous);
    let name = str_at(&obj["metadata"], "name").to_string();
    let spec = obj["spec"].clone();
    let status = match kind.kind {
        "SelfSubjectReview" => json!({"userInfo": user_info(&requester)}),
        "SelfSubjectRulesReview" => {
            let namespace = str_at(&spec, "namespace");
            if namespace.is_empty() {
                return Err(ApiStatus::bad_request("no namespace on request"));
            }
            rules_status(core, &requester, namespace)
        }
        review => {
            let causes = validate_spec(&spec, review);
            if !causes.is_empty() {
                return Err(ApiStatus::invalid(kind, &name, &causes));
            }
            let mut spec = spec;
            if review == "LocalSubjectAccessReview" {
                let url_ns = ctx.namespace().unwrap_or_default();
                let ns = str_at(&spec["resourceAttributes"], "namespace");
                if ns.is_empty() {
                    spec["resourceAttributes"]["namespace"] = json!(url_ns);
                } else if ns != url_ns {
                    return Err(ApiStatus::bad_request(format!(
                        "spec.resourceAttributes.namespace must match namespace: {url_ns}"
                    )));
                }
                obj["spec"] = spec.clone();
            }
            let user = if review == "SelfSubjectAccessReview" {
                requester
            } else {
                spec_user(&spec)
            };
            access_status(core, &user, &spec)
        }
    };
    obj["status"] = status;
    Ok(json(StatusCode::CREATED, &obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_review_specs_need_exactly_one_kind_of_attributes() {
        let both =
            json!({"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"path": "/x"}});
        assert_eq!(validate_spec(&both, "SelfSubjectAccessReview").len(), 1);
        let none = json!({});
        let causes = validate_spec(&none, "SelfSubjectAccessReview");
        assert_eq!(causes[0].field, "spec.resourceAttributes");
        let causes = validate_spec(&json!({"resourceAttributes": {}}), "SubjectAccessReview");
        assert_eq!(causes[0].field, "spec.user");
        let causes = validate_spec(
            &json!({"nonResourceAttributes": {"path": "/x"}, "user": "u"}),
            "LocalSubjectAccessReview",
        );
        assert_eq!(causes[0].field, "spec.nonResourceAttributes");
        assert!(
            causes[0]
                .message
                .ends_with("disallowed on this kind of request")
        );
    }
}
