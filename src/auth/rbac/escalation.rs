//! Escalation prevention on writes of Roles, ClusterRoles and bindings, as
//! upstream's RBAC registry does it.
//!
//! Creating or changing a role needs the `escalate` verb on it, or every
//! rule it grants must already be held by the writer. Creating or changing
//! a binding needs the `bind` verb on the role it refers to, or the writer
//! must hold every rule of that role. A ClusterRole with an
//! `aggregationRule` needs full cluster authority (or `escalate`). Members
//! of `system:masters` skip the checks; so do writes that only touch
//! ownerReferences and finalizers.

use serde_json::Value;

use super::rules::{Rule, compact, covers, go_quoted, go_quoted_list};
use super::{Attributes, Authorizer, ResourceAttributes, aggregate, is_master};
use crate::api::registry::KindInfo;
use crate::api::status::ApiStatus;
use crate::auth::UserInfo;

const GROUP: &str = "rbac.authorization.k8s.io";

/// Whether a write changed nothing but what garbage collection touches.
fn only_gc_fields(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in [
                "ownerReferences",
                "finalizers",
                "resourceVersion",
                "managedFields",
                "generation",
            ] {
                meta.remove(f);
            }
        }
        v
    };
    strip(new) == strip(old)
}

fn allowed(
    authz: &Authorizer,
    user: &UserInfo,
    verb: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> bool {
    authz
        .authorize(&Attributes {
            user,
            verb,
            path: "",
            resource: Some(ResourceAttributes {
                group: GROUP,
                version: "v1",
                resource,
                subresource: "",
                namespace,
                name,
            }),
        })
        .allowed
}

/// Upstream's `ConfirmNoEscalation`: the user must hold `rules` already.
fn confirm_no_escalation(
    authz: &Authorizer,
    user: &UserInfo,
    namespace: &str,
    rules: &[Rule],
) -> Result<(), String> {
    let (owned, errors) = authz.rules_for(user, namespace);
    let (ok, missing) = covers(&owned, rules);
    if ok {
        return Ok(());
    }
    let mut lines: Vec<String> = compact(&missing).iter().map(Rule::compact_string).collect();
    lines.sort();
    lines.dedup();
    let mut msg = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quoted(&user.username),
        go_quoted_list(&user.groups),
        lines.join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
    }
    Err(msg)
}

fn rules_of(obj: &Value) -> Vec<Rule> {
    serde_json::from_value(obj["rules"].clone()).unwrap_or_default()
}

/// Checks a create (`old` is `None`) or update of an RBAC object in
/// `namespace` by `user`. Kinds outside `rbac.authorization.k8s.io` pass.
pub fn check(
    authz: &Authorizer,
    user: &UserInfo,
    kind: &KindInfo,
    namespace: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiStatus> {
    if kind.group != GROUP || is_master(user) {
        return Ok(());
    }
    if old.is_some_and(|old| only_gc_fields(obj, old)) {
        return Ok(());
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    match kind.kind {
        "Role" | "ClusterRole" => {
            if allowed(authz, user, "escalate", kind.plural, namespace, name) {
                return Ok(());
            }
            if kind.kind == "ClusterRole" && !obj["aggregationRule"].is_null() {
                let all = vec!["*".to_string()];
                let full = [
                    Rule {
                        verbs: all.clone(),
                        api_groups: all.clone(),
                        resources: all.clone(),
                        ..Rule::default()
                    },
                    Rule {
                        verbs: all.clone(),
                        non_resource_urls: all,
                        ..Rule::default()
                    },
                ];
                if confirm_no_escalation(authz, user, "", &full).is_err() {
                    return Err(ApiStatus::forbidden(
                        kind,
                        name,
                        "must have cluster-admin privileges to use the aggregationRule",
                    ));
                }
            }
            confirm_no_escalation(authz, user, namespace, &rules_of(obj))
                .map_err(|why| ApiStatus::forbidden(kind, name, &why))
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let role_kind = obj["roleRef"]["kind"].as_str().unwrap_or_default();
            let role_name = obj["roleRef"]["name"].as_str().unwrap_or_default();
            let plural = if role_kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if allowed(authz, user, "bind", plural, namespace, role_name) {
                return Ok(());
            }
            let rules = authz
                .snapshot()
                .role_reference_rules(role_kind, role_name, namespace)
                .map_err(|e| ApiStatus::new(404, "NotFound", aggregate(&[e])))?;
            confirm_no_escalation(authz, user, namespace, &rules)
                .map_err(|why| ApiStatus::forbidden(kind, name, &why))
        }
        _ => Ok(()),
    }
}
