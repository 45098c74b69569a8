//! Creating and reconciling the bootstrap policy at every start, as
//! upstream's RBAC post-start hook does.
//!
//! A missing object is created. An existing one keeps everything it has and
//! gains what the policy adds: missing rules (broken down, as upstream
//! appends them), missing aggregation selectors, missing binding subjects,
//! and missing labels and annotations. An object annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"` is left as it is.
//! A binding whose roleRef differs is deleted and created again (roleRef is
//! immutable). Subjects an older skiff bound and the policy no longer
//! grants ([`RETIRED_SUBJECTS`]) are removed.

use std::time::Duration;

use serde_json::{Value, json};

use super::policy::{BINDINGS, RETIRED_SUBJECTS, ROLES};
use super::rules::{Rule, covers};
use crate::api::handlers::Core;
use crate::api::handlers::write::create_object;
use crate::api::object;
use crate::api::registry::{KindInfo, lookup};
use crate::api::status::ApiStatus;
use crate::store::StoreError;

const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

fn kind(plural: &str) -> Result<&'static KindInfo, ApiStatus> {
    lookup("rbac.authorization.k8s.io", "v1", plural)
        .ok_or_else(|| ApiStatus::internal(format!("{plural} missing from the kind table")))
}

/// Adds the entries of `expected[field]` that `existing[field]` lacks.
fn merge_map(existing: &mut Value, expected: &Value, field: &str) {
    let Some(wanted) = expected["metadata"][field].as_object() else {
        return;
    };
    let meta = object::meta_mut(existing);
    let map = meta.entry(field).or_insert_with(|| json!({}));
    if !map.is_object() {
        *map = json!({});
    }
    if let Some(map) = map.as_object_mut() {
        for (k, v) in wanted {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

fn rules_of(obj: &Value) -> Vec<Rule> {
    serde_json::from_value(obj["rules"].clone()).unwrap_or_default()
}

/// The reconciled form of an existing role, or `None` when nothing changes.
pub fn reconcile_role(existing: &Value, expected: &Value) -> Option<Value> {
    let mut new = existing.clone();
    merge_map(&mut new, expected, "labels");
    merge_map(&mut new, expected, "annotations");
    let (_, missing) = covers(&rules_of(existing), &rules_of(expected));
    if !missing.is_empty() {
        let mut rules = rules_of(existing);
        rules.extend(missing);
        new["rules"] = json!(rules);
    }
    if let Some(wanted) = expected["aggregationRule"]["clusterRoleSelectors"].as_array() {
        let mut selectors = existing["aggregationRule"]["clusterRoleSelectors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let before = selectors.len();
        for s in wanted {
            if !selectors.contains(s) {
                selectors.push(s.clone());
            }
        }
        if selectors.len() != before {
            new["aggregationRule"] = json!({"clusterRoleSelectors": selectors});
        }
    }
    (new != *existing).then_some(new)
}

fn same_subject(a: &Value, b: &Value) -> bool {
    ["kind", "name", "namespace"]
        .iter()
        .all(|k| a[k].as_str().unwrap_or("") == b[k].as_str().unwrap_or(""))
}

/// The reconciled form of an existing binding, or `None` when nothing
/// changes (a differing roleRef is handled by the caller).
pub fn reconcile_binding(existing: &Value, expected: &Value) -> Option<Value> {
    let mut new = existing.clone();
    merge_map(&mut new, expected, "labels");
    merge_map(&mut new, expected, "annotations");
    let mut subjects = existing["subjects"].as_array().cloned().unwrap_or_default();
    let name = existing["metadata"]["name"].as_str().unwrap_or_default();
    let namespaced = existing["metadata"]["namespace"].is_string();
    subjects.retain(|s| {
        !RETIRED_SUBJECTS.iter().any(|(binding, kind, subject)| {
            !namespaced
                && *binding == name
                && s["kind"].as_str() == Some(*kind)
                && s["name"].as_str() == Some(*subject)
        })
    });
    let before = existing["subjects"].as_array().map_or(0, Vec::len);
    let retired = subjects.len() != before;
    let before = subjects.len();
    for s in expected["subjects"].as_array().into_iter().flatten() {
        if !subjects.iter().any(|e| same_subject(e, s)) {
            subjects.push(s.clone());
        }
    }
    if retired || subjects.len() != before {
        new["subjects"] = json!(subjects);
    }
    (new != *existing).then_some(new)
}

fn protected(obj: &Value) -> bool {
    obj["metadata"]["annotations"][AUTOUPDATE].as_str() == Some("false")
}

/// Creates or reconciles one object; returns the revision written, if any.
async fn ensure(
    core: &Core,
    kind: &'static KindInfo,
    namespace: Option<&str>,
    expected: Value,
    is_binding: bool,
) -> Result<Option<i64>, ApiStatus> {
    let name = object::name(&expected).to_string();
    let key = kind.key(namespace, &name);
    for _ in 0..8 {
        let current = core
            .store
            .get(&key, None)
            .await
            .map_err(ApiStatus::internal)?;
        let Some(kv) = current else {
            match create_object(core, kind, namespace, expected.clone(), false).await {
                Ok(created) => {
                    tracing::debug!(kind = kind.kind, name, "created bootstrap RBAC object");
                    let rv = object::meta_str(&created, "resourceVersion")
                        .and_then(|rv| rv.parse().ok());
                    return Ok(rv);
                }
                Err(e) if e.reason == "AlreadyExists" => continue,
                Err(e) => return Err(e),
            }
        };
        let existing = object::decode(&kv).map_err(ApiStatus::internal)?;
        if is_binding && existing["roleRef"] != expected["roleRef"] && !protected(&existing) {
            tracing::info!(
                kind = kind.kind,
                name,
                "recreating bootstrap binding with a new roleRef"
            );
            match core.store.delete(&key, Some(kv.mod_revision)).await {
                Ok(_) | Err(StoreError::NotFound(_)) | Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(ApiStatus::internal(e)),
            }
        }
        let updated = if is_binding {
            reconcile_binding(&existing, &expected)
        } else {
            reconcile_role(&existing, &expected)
        };
        let Some(updated) = updated else {
            return Ok(None);
        };
        if protected(&existing) {
            tracing::warn!(
                kind = kind.kind,
                name,
                "skipped reconciling a bootstrap RBAC object annotated autoupdate=false"
            );
            return Ok(None);
        }
        match core
            .store
            .update(&key, object::encode(&updated), kv.mod_revision, None)
            .await
        {
            Ok((stored, _)) => {
                tracing::info!(kind = kind.kind, name, "reconciled bootstrap RBAC object");
                return Ok(Some(stored.mod_revision));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiStatus::internal(e)),
        }
    }
    Err(ApiStatus::internal(format!(
        "could not reconcile {} {name}: too many concurrent changes",
        kind.kind
    )))
}

/// Creates or reconciles the whole bootstrap policy, then waits until the
/// watch caches the authorizer reads have caught up with it.
pub async fn run(core: &Core) -> Result<(), ApiStatus> {
    let mut jobs = Vec::new();
    for role in ROLES {
        let plural = if role.namespace.is_some() {
            "roles"
        } else {
            "clusterroles"
        };
        jobs.push((kind(plural)?, role.namespace, role.object(), false));
    }
    for binding in BINDINGS {
        let plural = if binding.namespace.is_some() {
            "rolebindings"
        } else {
            "clusterrolebindings"
        };
        jobs.push((kind(plural)?, binding.namespace, binding.object(), true));
    }
    // All at once, so the store commits them in a few group commits.
    let results = futures::future::join_all(jobs.into_iter().map(
        |(kind, namespace, obj, is_binding)| async move {
            ensure(core, kind, namespace, obj, is_binding)
                .await
                .map(|rv| rv.map(|rv| (kind, rv)))
        },
    ))
    .await;
    let mut written = Vec::new();
    for result in results {
        written.extend(result?);
    }
    for (kind, revision) in written {
        let cache = core.cache(kind)?;
        let mut waited = Duration::ZERO;
        while cache.revision() < revision && waited < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            waited += Duration::from_millis(5);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_rules_and_metadata_are_added_and_extras_kept() {
        let existing = json!({
            "metadata": {"name": "r", "labels": {"mine": "x"}},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                      {"verbs": ["delete"], "apiGroups": [""], "resources": ["secrets"]}],
        });
        let expected = json!({
            "metadata": {"name": "r", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}, "annotations": {AUTOUPDATE: "true"}},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}],
        });
        let Some(new) = reconcile_role(&existing, &expected) else {
            panic!("a rule was missing")
        };
        assert_eq!(new["metadata"]["labels"]["mine"], "x");
        assert_eq!(new["metadata"]["annotations"][AUTOUPDATE], "true");
        let rules = rules_of(&new);
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[2].verbs, vec!["list".to_string()]);
        assert!(reconcile_role(&new, &expected).is_none());
    }

    #[test]
    fn retired_subjects_are_removed() {
        let existing = json!({"metadata": {"name": "system:node"}, "roleRef": {}, "subjects": [
            {"kind": "Group", "name": "system:nodes", "apiGroup": "rbac.authorization.k8s.io"}]});
        let expected = json!({"metadata": {"name": "system:node"}, "roleRef": {}});
        let new = reconcile_binding(&existing, &expected).expect("changed");
        assert_eq!(new["subjects"], json!([]));
        assert_eq!(reconcile_binding(&new, &expected), None);
    }

    #[test]
    fn missing_subjects_are_added() {
        let existing = json!({"metadata": {"name": "b"}, "roleRef": {}, "subjects": [{"kind": "User", "name": "x"}]});
        let expected = json!({"metadata": {"name": "b"}, "roleRef": {}, "subjects": [
            {"kind": "User", "name": "x", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"}]});
        let Some(new) = reconcile_binding(&existing, &expected) else {
            panic!("a subject was missing")
        };
        assert_eq!(new["subjects"].as_array().map(Vec::len), Some(2));
    }
}
