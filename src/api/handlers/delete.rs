//! DELETE and DELETECOLLECTION: preconditions, graceful deletion of pods on
//! nodes, finalizers (deletionTimestamp first, removal when the list
//! empties) and namespaces, which turn Terminating and are emptied by the
//! namespace controller (`controllers/namespace.rs`).

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use super::read::strip_type_meta;
use super::{Core, Ctx, field_attributes, load, store_error};
use crate::api::convert::from_storage;
use crate::api::object::{self, meta_mut, meta_str};
use crate::api::registry::KindInfo;
use crate::api::response::json;
use crate::api::status::{self, ApiStatus};
use crate::store::{ListOptions, Revision, StoreError};

/// Namespaces that may never be deleted, as upstream's NamespaceLifecycle
/// admission enforces.
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// The parts of `DeleteOptions` this server honours.
#[derive(Debug, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
    /// What happens to the object's dependents.
    pub propagation: Propagation,
}

/// `propagationPolicy` (or the legacy `orphanDependents`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Nothing said: the object's own `orphan` / `foregroundDeletion`
    /// finalizers decide, else dependents are deleted in the background.
    #[default]
    Unset,
    /// Delete the object now; the garbage collector deletes dependents.
    Background,
    /// Keep the object (finalizer `foregroundDeletion`) until the
    /// dependents that block its deletion are gone.
    Foreground,
    /// Keep the object (finalizer `orphan`) until its dependents no longer
    /// point at it.
    Orphan,
}

/// The finalizer that asks the garbage collector to orphan dependents.
pub const ORPHAN_FINALIZER: &str = "orphan";
/// The finalizer that asks the garbage collector to delete dependents first.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

impl Propagation {
    /// The finalizers an object being deleted carries after this policy,
    /// as upstream's `deletionFinalizersForGarbageCollection`.
    pub fn finalizers(self, current: &[String]) -> Vec<String> {
        let (orphan, foreground) = match self {
            Propagation::Orphan => (true, false),
            Propagation::Foreground => (false, true),
            Propagation::Background => (false, false),
            Propagation::Unset => (
                current.iter().any(|f| f == ORPHAN_FINALIZER),
                current.iter().any(|f| f == FOREGROUND_FINALIZER),
            ),
        };
        let mut out: Vec<String> = current
            .iter()
            .filter(|f| {
                (f.as_str() != ORPHAN_FINALIZER || orphan)
                    && (f.as_str() != FOREGROUND_FINALIZER || foreground)
            })
            .cloned()
            .collect();
        for (wanted, name) in [
            (orphan, ORPHAN_FINALIZER),
            (foreground, FOREGROUND_FINALIZER),
        ] {
            if wanted && !out.iter().any(|f| f == name) {
                out.push(name.to_string());
            }
        }
        out
    }
}

impl DeleteOptions {
    /// From the request body (a `DeleteOptions` object, optional) and query.
    pub fn parse(ctx: &Ctx, body: &Bytes) -> Result<Self, ApiStatus> {
        if body.iter().all(u8::is_ascii_whitespace) {
            Self::from_value(ctx, &json!({}))
        } else {
            Self::from_value(ctx, &crate::api::response::decode_body(&ctx.headers, body)?)
        }
    }

    /// From a decoded `DeleteOptions` object and the query.
    pub fn from_value(ctx: &Ctx, body: &Value) -> Result<Self, ApiStatus> {
        let grace = match ctx.query.int("gracePeriodSeconds")? {
            Some(g) => Some(g),
            None => body["gracePeriodSeconds"].as_i64(),
        };
        let dry_run = ctx.query.dry_run()
            || body["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "All"));
        let orphan = body["orphanDependents"].as_bool();
        let policy = match ctx.query.get("propagationPolicy") {
            Some(p) => Some(p.to_string()),
            None => body["propagationPolicy"].as_str().map(String::from),
        };
        let propagation = match (orphan, policy.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(ApiStatus::new(
                    422,
                    "Invalid",
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"\": orphanDependents and deletionPropagation cannot be both set",
                ));
            }
            (Some(true), None) => Propagation::Orphan,
            (Some(false), None) => Propagation::Background,
            (None, None) => Propagation::Unset,
            (None, Some("Orphan")) => Propagation::Orphan,
            (None, Some("Background")) => Propagation::Background,
            (None, Some("Foreground")) => Propagation::Foreground,
            (None, Some(other)) => {
                return Err(ApiStatus::new(
                    422,
                    "Invalid",
                    format!(
                        "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ),
                ));
            }
        };
        Ok(DeleteOptions {
            grace_period: grace,
            propagation,
            uid: body["preconditions"]["uid"].as_str().map(String::from),
            resource_version: body["preconditions"]["resourceVersion"]
                .as_str()
                .map(String::from),
            dry_run,
        })
    }
}

/// Kinds whose DELETE answers with the object rather than a Status, as
/// upstream's registries set `ReturnDeletedObject`.
fn returns_deleted_object(kind: &KindInfo) -> bool {
    matches!(
        kind.plural,
        "pods" | "services" | "serviceaccounts" | "storageclasses" | "customresourcedefinitions"
    )
}

/// What a delete did.
pub enum Deleted {
    /// The object is gone; here it is as it was.
    Gone(Value),
    /// The object remains, marked for deletion (finalizers, grace period,
    /// namespace termination).
    Pending(Value),
}

/// Deletes the key if its object is still at `revision` (used once the last
/// finalizer of an object being deleted is removed).
pub async fn remove_finished(core: &Core, key: &str, revision: Revision) {
    if let Err(e) = core.store.delete(key, Some(revision)).await {
        tracing::debug!(key, error = %e, "finished object changed before its removal");
    }
}

/// Marks `current` for deletion with `update`, returning the stored object.
async fn mark(
    core: &Core,
    kv_key: &str,
    expected: Revision,
    mut obj: Value,
) -> Result<Option<Value>, ApiStatus> {
    match core
        .store
        .update(kv_key, object::encode(&obj), expected, None)
        .await
    {
        Ok((kv, _)) => {
            object::set_resource_version(&mut obj, kv.mod_revision);
            Ok(Some(obj))
        }
        Err(StoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(store_error(e)),
    }
}

/// Deletes one object as `ctx` addresses it.
pub async fn delete_one(
    core: &Arc<Core>,
    ctx: &Ctx,
    opts: &DeleteOptions,
) -> Result<Deleted, ApiStatus> {
    let kind = ctx.kind();
    let is_namespace = kind.kind == "Namespace" && kind.group.is_empty();
    let is_crd = kind.group == "apiextensions.k8s.io" && kind.kind == "CustomResourceDefinition";
    if is_namespace && PROTECTED_NAMESPACES.contains(&ctx.name()) {
        return Err(ApiStatus::forbidden(
            kind,
            ctx.name(),
            "this namespace may not be deleted",
        ));
    }
    for _ in 0..16 {
        let (kv, current) = load(core, ctx).await?;
        crate::api::admission::noderestriction::admit(
            core,
            ctx,
            crate::api::admission::noderestriction::Operation::Delete,
            None,
            Some(&current),
        )?;
        let uid = meta_str(&current, "uid").unwrap_or("");
        if let Some(want) = opts.uid.as_deref().filter(|u| *u != uid) {
            return Err(ApiStatus::conflict(
                kind,
                ctx.name(),
                &format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            ));
        }
        let rv = kv.mod_revision.to_string();
        if let Some(want) = opts.resource_version.as_deref().filter(|r| *r != rv) {
            return Err(ApiStatus::conflict(
                kind,
                ctx.name(),
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
                ),
            ));
        }
        let already_marked = meta_str(&current, "deletionTimestamp").is_some();
        let gc_finalizers = opts.propagation.finalizers(&object::finalizers(&current));
        let mut marked = current.clone();
        let pending = if is_namespace && already_marked {
            // As upstream: a Terminating namespace goes once its finalizers
            // are done, not on a second request.
            if super::write::namespace_finalizers_pending(kind, &current) {
                return Err(ApiStatus::conflict(
                    kind,
                    ctx.name(),
                    "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
                ));
            }
            !object::finalizers(&current).is_empty()
        } else if is_namespace {
            meta_mut(&mut marked)
                .entry("deletionTimestamp")
                .or_insert_with(|| json!(object::now()));
            object::set_path(&mut marked, &["status", "phase"], json!("Terminating"));
            let finalizers = marked["spec"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !finalizers.iter().any(|f| f == "kubernetes") {
                let mut f = finalizers;
                f.push(json!("kubernetes"));
                object::set_path(&mut marked, &["spec", "finalizers"], json!(f));
            }
            true
        } else if is_crd {
            // Upstream's CRD delete: its objects go first (crd/controller.rs).
            let meta = meta_mut(&mut marked);
            meta.entry("deletionTimestamp")
                .or_insert_with(|| json!(object::now()));
            let mut finalizers = gc_finalizers;
            if !finalizers
                .iter()
                .any(|f| f == crate::api::crd::CLEANUP_FINALIZER)
            {
                finalizers.push(crate::api::crd::CLEANUP_FINALIZER.to_string());
            }
            meta.insert("finalizers".into(), json!(finalizers));
            true
        } else if !gc_finalizers.is_empty() {
            let meta = meta_mut(&mut marked);
            meta.entry("deletionTimestamp")
                .or_insert_with(|| json!(object::now()));
            meta.entry("deletionGracePeriodSeconds").or_insert(json!(0));
            meta.insert("finalizers".into(), json!(gc_finalizers));
            true
        } else if kind.kind == "Pod" && graceful_pod(&current, opts) {
            let grace = opts
                .grace_period
                .or_else(|| current["spec"]["terminationGracePeriodSeconds"].as_i64())
                .unwrap_or(30);
            let when = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(grace))
                .unwrap_or_else(|_| jiff::Timestamp::now());
            meta_mut(&mut marked).insert(
                "deletionTimestamp".into(),
                json!(when.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            );
            meta_mut(&mut marked).insert("deletionGracePeriodSeconds".into(), json!(grace));
            true
        } else {
            false
        };
        if pending {
            if opts.dry_run || (already_marked && marked == current) {
                return Ok(Deleted::Pending(marked));
            }
            match mark(core, &kv.key, kv.mod_revision, marked).await? {
                Some(stored) => return Ok(Deleted::Pending(stored)),
                None => continue,
            }
        }
        if opts.dry_run {
            return Ok(Deleted::Gone(current));
        }
        match core.store.delete(&kv.key, Some(kv.mod_revision)).await {
            Ok(_) => return Ok(Deleted::Gone(current)),
            Err(StoreError::Conflict { .. }) => continue,
            Err(StoreError::NotFound(_)) => return Err(ApiStatus::not_found(kind, ctx.name())),
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(ApiStatus::modified(kind, ctx.name()))
}

/// A pod bound to a node is deleted gracefully (its kubelet finishes the
/// deletion) unless the grace period is zero.
fn graceful_pod(pod: &Value, opts: &DeleteOptions) -> bool {
    let on_node = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    on_node && !finished && opts.grace_period != Some(0)
}

pub async fn delete(core: &Arc<Core>, ctx: Ctx, body: Bytes) -> Result<Response, ApiStatus> {
    let opts = DeleteOptions::parse(&ctx, &body)?;
    let kind = ctx.kind();
    let body = match delete_one(core, &ctx, &opts).await? {
        Deleted::Pending(obj) => from_storage(kind, obj),
        Deleted::Gone(obj) if returns_deleted_object(kind) => from_storage(kind, obj),
        Deleted::Gone(obj) => status::success(kind, ctx.name(), meta_str(&obj, "uid")),
    };
    Ok(json(StatusCode::OK, &body))
}

pub async fn delete_collection(
    core: &Arc<Core>,
    ctx: Ctx,
    body: Bytes,
) -> Result<Response, ApiStatus> {
    let opts = DeleteOptions::parse(&ctx, &body)?;
    let labels = ctx.label_selector()?;
    let fields = ctx.field_selector()?;
    let kind = ctx.kind();
    let page = core
        .store
        .list(&kind.prefix(ctx.namespace()), ListOptions::default())
        .await
        .map_err(store_error)?;
    let mut deleted = Vec::new();
    for kv in &page.kvs {
        let Ok(obj) = object::decode(kv) else {
            continue;
        };
        if !labels.matches(&obj) || !fields.matches(&field_attributes(kind, &obj)) {
            continue;
        }
        let one = Ctx {
            target: crate::api::request::Target {
                kind,
                namespace: meta_str(&obj, "namespace").map(String::from),
                name: Some(object::name(&obj).to_string()),
                subresource: None,
                legacy_watch: false,
            },
            query: ctx.query.clone(),
            headers: ctx.headers.clone(),
            user: ctx.user.clone(),
        };
        match delete_one(core, &one, &opts).await {
            Ok(Deleted::Gone(o) | Deleted::Pending(o)) => {
                deleted.push(strip_type_meta(from_storage(kind, o)))
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let list = json!({
        "kind": kind.list_kind(),
        "apiVersion": kind.api_version(),
        "metadata": {"resourceVersion": page.revision.to_string()},
        "items": deleted,
    });
    Ok(json(StatusCode::OK, &list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fins(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn propagation_sets_the_garbage_collector_finalizers() {
        let custom = fins(&["example.com/x"]);
        assert_eq!(
            Propagation::Orphan.finalizers(&custom),
            fins(&["example.com/x", "orphan"])
        );
        assert_eq!(
            Propagation::Foreground.finalizers(&fins(&["orphan"])),
            fins(&["foregroundDeletion"])
        );
        assert_eq!(
            Propagation::Background.finalizers(&fins(&["orphan", "example.com/x"])),
            fins(&["example.com/x"])
        );
        // Unset keeps what the object already asked for.
        assert_eq!(
            Propagation::Unset.finalizers(&fins(&["foregroundDeletion"])),
            fins(&["foregroundDeletion"])
        );
        assert!(Propagation::Unset.finalizers(&[]).is_empty());
    }
}
