//! Admission: the built-in plugins every create passes through, in
//! upstream's order.
//!
//! Mutating plugins run after the kind's defaulting and before its
//! `prepare_for_create` and validation, as upstream's admission chain runs
//! before the registry's `BeforeCreate`: LimitRanger (container defaults),
//! Priority (the pod's priority from its PriorityClass) and
//! DefaultTolerationSeconds. Validating plugins run after validation, right
//! before the object is stored: LimitRanger (min/max/ratio) and ResourceQuota
//! (usage charged to every matching quota).
//!
//! ServiceAccount ([`serviceaccount`]) runs first, in the create handler,
//! since it may wait briefly for a namespace's `default` service account:
//! pods run as a service account that exists, and get its token mounted.
//!
//! NodeRestriction ([`noderestriction`]) runs with the write handlers on
//! every create, update and delete (and eviction and token request) by a
//! kubelet, right after the RBAC escalation checks.
//!
//! Refusals are `403 Forbidden` with upstream's messages. The
//! NamespaceLifecycle rules live with the write handlers (creating in a
//! missing or terminating namespace, deleting the protected ones).

pub mod limitranger;
pub mod noderestriction;
pub mod priority;
pub mod quota;
pub mod serviceaccount;
pub mod tolerations;

use std::sync::Arc;

use serde_json::Value;

use crate::api::handlers::Core;
use crate::api::object;
use crate::api::registry::{self, KindInfo};
use crate::api::status::ApiStatus;

/// The objects of `plural` (core or `group`) in `namespace`, from the watch
/// cache.
pub fn cached(core: &Core, group: &str, plural: &str, namespace: Option<&str>) -> Vec<Arc<Value>> {
    let Some(kind) = registry::KINDS
        .iter()
        .find(|k| k.group == group && k.plural == plural)
    else {
        return Vec::new();
    };
    match core.cache(kind) {
        Ok(cache) => cache.list(&kind.prefix(namespace)).0,
        Err(_) => Vec::new(),
    }
}

fn is_pod(kind: &KindInfo) -> bool {
    kind.group.is_empty() && kind.kind == "Pod"
}

/// The plugins that run on the object as the client sent it (storage
/// form, before defaulting): ServiceAccount.
pub async fn admit_create(
    core: &Core,
    kind: &'static KindInfo,
    namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiStatus> {
    if is_pod(kind) {
        serviceaccount::admit_pod(core, kind, namespace.unwrap_or(""), obj).await?;
    }
    Ok(())
}

/// The mutating plugins, for a create of `obj` (storage form, defaulted).
pub fn mutate_create(
    core: &Core,
    kind: &'static KindInfo,
    obj: &mut Value,
) -> Result<(), ApiStatus> {
    let namespace = object::meta_str(obj, "namespace").unwrap_or("").to_string();
    if is_pod(kind) {
        let ranges = cached(core, "", "limitranges", Some(&namespace));
        limitranger::default_pod(obj, &ranges);
        let classes = cached(core, "scheduling.k8s.io", "priorityclasses", None);
        priority::admit_pod(kind, obj, &classes)?;
        tolerations::add_defaults(obj);
    }
    Ok(())
}

/// The validating plugins, for a create of `obj` (validated, named), right
/// before it is stored. Charges resource quotas unless `dry_run`.
pub async fn validate_create(
    core: &Core,
    kind: &'static KindInfo,
    obj: &Value,
    dry_run: bool,
) -> Result<(), ApiStatus> {
    let namespace = object::meta_str(obj, "namespace").unwrap_or("").to_string();
    let name = object::name(obj).to_string();
    if is_pod(kind) || (kind.group.is_empty() && kind.kind == "PersistentVolumeClaim") {
        let ranges = cached(core, "", "limitranges", Some(&namespace));
        let problems = limitranger::validate(kind, obj, &ranges);
        if !problems.is_empty() {
            return Err(ApiStatus::forbidden(kind, &name, &aggregate(&problems)));
        }
    }
    if kind.namespaced && !namespace.is_empty() {
        quota::charge(core, kind, obj, &namespace, dry_run).await?;
    }
    Ok(())
}

/// The validating plugins, for an update of `old` to `new` right before it
/// is stored: quotas are charged for what grew (Services, PVCs).
pub async fn validate_update(
    core: &Core,
    kind: &'static KindInfo,
    new: &Value,
    old: &Value,
    dry_run: bool,
) -> Result<(), ApiStatus> {
    let namespace = object::meta_str(new, "namespace").unwrap_or("").to_string();
    if kind.namespaced && !namespace.is_empty() {
        quota::charge_update(core, kind, new, old, &namespace, dry_run).await?;
    }
    Ok(())
}

/// Several problems as upstream's aggregate error prints them.
pub fn aggregate(problems: &[String]) -> String {
    match problems {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}
