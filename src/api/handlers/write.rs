//! Writes: create (POST), update (PUT), patch, and the read-modify-write loop
//! they share, which owns the server-set metadata, calls the kind's
//! strategy and retries on conflicts unless the client pinned a version.

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};

use super::{Core, Ctx, fields, load, store_error};
use crate::api::admission::noderestriction::{self, Operation};
use crate::api::convert::{from_storage, to_storage};
use crate::api::fieldmanager;
use crate::api::kinds::strategy_for;
use crate::api::object::{self, meta_mut, meta_str};
use crate::api::patch::{self, PatchType};
use crate::api::registry::KindInfo;
use crate::api::response::{content_type, decode_body, json};
use crate::api::status::ApiStatus;
use crate::store::StoreError;

pub use super::delete::{delete, delete_collection};

/// How often a generated name is retried when it collides, as upstream.
const GENERATE_NAME_TRIES: usize = 8;
/// How often an unconditional write is retried on concurrent changes.
const CONFLICT_TRIES: usize = 16;

/// Checks the body's apiVersion and kind against the URL (filling them in
/// when absent) and converts it to the storage form.
pub fn check_type(kind: &'static KindInfo, mut obj: Value) -> Result<Value, ApiStatus> {
    let expected = kind.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() && v != expected => {
            return Err(ApiStatus::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
        _ => obj["apiVersion"] = json!(expected),
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some(k) if !k.is_empty() && k != kind.kind => {
            return Err(ApiStatus::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                kind.kind
            )));
        }
        _ => obj["kind"] = json!(kind.kind),
    }
    Ok(to_storage(kind, obj))
}

/// Reconciles the body's namespace with the URL's.
fn check_namespace(
    kind: &KindInfo,
    obj: &mut Value,
    url_ns: Option<&str>,
) -> Result<(), ApiStatus> {
    if !kind.namespaced {
        meta_mut(obj).remove("namespace");
        return Ok(());
    }
    let url_ns = url_ns.unwrap_or("");
    match meta_str(obj, "namespace") {
        Some(ns) if !ns.is_empty() && ns != url_ns => Err(ApiStatus::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            meta_mut(obj).insert("namespace".into(), json!(url_ns));
            Ok(())
        }
    }
}

/// Fails unless `ns` exists and is not being deleted.
async fn check_namespace_open(
    core: &Core,
    kind: &KindInfo,
    ns: &str,
    name: &str,
) -> Result<(), ApiStatus> {
    let Some(namespaces) = crate::api::registry::lookup("", "v1", "namespaces") else {
        return Ok(());
    };
    let kv = core
        .store
        .get(&namespaces.key(None, ns), None)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiStatus::not_found(namespaces, ns))?;
    let obj = object::decode(&kv).map_err(ApiStatus::internal)?;
    if meta_str(&obj, "deletionTimestamp").is_some() || obj["status"]["phase"] == "Terminating" {
        return Err(ApiStatus::forbidden(
            kind,
            name,
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        ));
    }
    Ok(())
}

fn invalid_if_any(
    kind: &KindInfo,
    name: &str,
    causes: Vec<crate::api::kinds::Cause>,
) -> Result<(), ApiStatus> {
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiStatus::invalid(kind, name, &causes))
    }
}

/// Creates an object given in storage form; returns it as stored.
pub async fn create_object(
    core: &Core,
    kind: &'static KindInfo,
    url_ns: Option<&str>,
    obj: Value,
    dry_run: bool,
) -> Result<Value, ApiStatus> {
    create_managed(core, kind, url_ns, obj, dry_run, Managed::None).await
}

/// How a create records field ownership.
pub enum Managed {
    /// Not at all (server-internal objects).
    None,
    /// As an `Update` by this manager, with this apiVersion.
    Update(String, String),
    /// As the given `managedFields` (server-side apply).
    Given(Value),
}

/// [`create_object`], recording field ownership as `managed` says.
pub async fn create_managed(
    core: &Core,
    kind: &'static KindInfo,
    url_ns: Option<&str>,
    mut obj: Value,
    dry_run: bool,
    managed: Managed,
) -> Result<Value, ApiStatus> {
    let given_managed = match &managed {
        Managed::Given(v) => Some(v.clone()),
        _ => None,
    };
    check_namespace(kind, &mut obj, url_ns)?;
    if let Some(refused) = crate::api::crd::refuse_create(kind) {
        return Err(refused);
    }
    if meta_str(&obj, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
        return Err(ApiStatus::internal(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    let storage = crate::api::convert::storage_row(kind);
    let strategy = strategy_for(storage.group, storage.kind);
    {
        let meta = meta_mut(&mut obj);
        meta.insert("uid".into(), json!(object::new_uid()));
        meta.insert("creationTimestamp".into(), json!(object::now()));
        for owned in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(owned);
        }
        if strategy.tracks_generation() {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
    }
    strategy.default(&mut obj);
    crate::api::admission::mutate_create(core, kind, &mut obj)?;
    strategy.prepare_for_create(&mut obj);
    match (managed, given_managed) {
        (_, Some(given)) => {
            meta_mut(&mut obj).insert("managedFields".into(), given);
        }
        (Managed::Update(manager, api_version), None) => {
            let list = fieldmanager::created(kind, &obj, &manager, &api_version);
            fieldmanager::set_entries(&mut obj, &list);
        }
        _ => {}
    }
    let generate = meta_str(&obj, "generateName")
        .filter(|g| !g.is_empty())
        .map(String::from);
    let fixed_name = object::name(&obj).to_string();
    let ns = meta_str(&obj, "namespace").map(String::from);
    if kind.namespaced {
        let ns = ns.as_deref().unwrap_or("");
        check_namespace_open(core, kind, ns, &fixed_name).await?;
    }
    for _ in 0..GENERATE_NAME_TRIES {
        let name = match (&generate, fixed_name.is_empty()) {
            (Some(prefix), true) => object::generate_name(prefix),
            _ => fixed_name.clone(),
        };
        meta_mut(&mut obj).insert("name".into(), json!(name));
        let mut causes = object::validate_name(kind, &name);
        causes.extend(strategy.validate_create(&obj));
        invalid_if_any(kind, &name, causes)?;
        crate::api::admission::validate_create(core, kind, &obj, dry_run).await?;
        let key = kind.key(ns.as_deref(), &name);
        let _reserved = core
            .services
            .allocate(core.store.as_ref(), storage, &key, &mut obj, None)
            .await?;
        if dry_run {
            return Ok(obj);
        }
        match core
            .store
            .create(&key, object::encode(&obj), kind.ttl())
            .await
        {
            Ok(kv) => {
                object::set_resource_version(&mut obj, kv.mod_revision);
                return Ok(obj);
            }
            Err(StoreError::KeyExists(_)) if generate.is_some() && fixed_name.is_empty() => {
                continue;
            }
            Err(StoreError::KeyExists(_)) => return Err(ApiStatus::already_exists(kind, &name)),
            Err(e) => return Err(store_error(e)),
        }
    }
    let mut err = ApiStatus::already_exists(kind, object::name(&obj));
    err.message = format!(
        "{}; the server was not able to generate a unique name for the object",
        err.message
    );
    Err(err)
}

/// Escalation prevention for writes of RBAC objects by a user.
fn admit_rbac(core: &Core, ctx: &Ctx, obj: &Value, old: Option<&Value>) -> Result<(), ApiStatus> {
    match &ctx.user {
        Some(user) => crate::auth::rbac::escalation::check(
            &core.authz,
            user,
            ctx.kind(),
            ctx.namespace().unwrap_or_default(),
            obj,
            old,
        ),
        None => Ok(()),
    }
}

pub async fn create(core: &Arc<Core>, ctx: Ctx, body: Bytes) -> Result<Response, ApiStatus> {
    let kind = ctx.kind();
    if kind.namespaced && ctx.namespace().is_none() {
        return Err(ApiStatus::method_not_allowed(
            &http::Method::POST,
            kind.plural,
        ));
    }
    let mut sent = decode_body(&ctx.headers, &body)?;
    fields::check_body(&ctx, fields::Options::Create, &body, &mut sent)?;
    let mut obj = check_type(kind, sent)?;
    admit_rbac(core, &ctx, &obj, None)?;
    noderestriction::admit(core, &ctx, Operation::Create, Some(&obj), None)?;
    crate::api::admission::admit_create(core, kind, ctx.namespace(), &mut obj).await?;
    let managed = Managed::Update(fieldmanager::manager(&ctx)?, kind.api_version());
    let created = create_managed(
        core,
        kind,
        ctx.namespace(),
        obj,
        ctx.query.dry_run(),
        managed,
    )
    .await?;
    Ok(json(StatusCode::CREATED, &from_storage(kind, created)))
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The main resource: everything but status (for kinds with a status
    /// subresource).
    Main,
    /// The status subresource: status, labels and annotations.
    Status,
    /// Server-internal writes (binding) that may change spec and status.
    Whole,
}

/// Builds the object to store from the current one and the client's.
fn merge_owned(kind: &KindInfo, mode: Mode, current: &Value, proposed: Value) -> Value {
    let mut new = match mode {
        Mode::Main | Mode::Whole => proposed,
        Mode::Status => {
            let mut new = current.clone();
            match proposed.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            for field in ["labels", "annotations"] {
                match proposed.get("metadata").and_then(|m| m.get(field)) {
                    Some(v) => {
                        meta_mut(&mut new).insert(field.into(), v.clone());
                    }
                    None => {
                        meta_mut(&mut new).remove(field);
                    }
                }
            }
            new
        }
    };
    if mode == Mode::Main && kind.has(crate::api::registry::Subresource::Status) {
        match current.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    let old_meta = current
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let meta = meta_mut(&mut new);
    for owned in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "name",
        "namespace",
        "resourceVersion",
    ] {
        match old_meta.get(owned) {
            Some(v) => meta.insert(owned.into(), v.clone()),
            None => meta.remove(owned),
        };
    }
    // What the client sent as managedFields is kept only when it differs
    // from what is stored (an explicit reset, or server-side apply);
    // otherwise the stored list carries on and is updated.
    let sent = meta.remove("managedFields");
    let stored = old_meta.get("managedFields").cloned();
    match (sent, stored) {
        (Some(sent), stored) if Some(&sent) != stored.as_ref() && !sent.is_null() => {
            meta.insert("managedFields".into(), sent);
        }
        (_, Some(stored)) => {
            meta.insert("managedFields".into(), stored);
        }
        _ => {}
    }
    new
}

/// Read-modify-write of one object: `mutate` maps the current object
/// (storage form) to the client's intended one. Retried on concurrent
/// writes; a resourceVersion the client set that no longer matches is 409.
pub async fn guaranteed_update(
    core: &Core,
    ctx: &Ctx,
    mode: Mode,
    mutate: &mut (dyn FnMut(&Value) -> Result<Value, ApiStatus> + Send),
) -> Result<Value, ApiStatus> {
    let kind = ctx.kind();
    let storage = crate::api::convert::storage_row(kind);
    let strategy = strategy_for(storage.group, storage.kind);
    let manager = fieldmanager::manager(ctx)?;
    for _ in 0..CONFLICT_TRIES {
        let (kv, current) = load(core, ctx).await?;
        let proposed = mutate(&current)?;
        if let Some(rv) = meta_str(&proposed, "resourceVersion").filter(|rv| !rv.is_empty()) {
            if rv != kv.mod_revision.to_string() {
                return Err(ApiStatus::modified(kind, ctx.name()));
            }
        }
        let explicit = proposed["metadata"]
            .get("managedFields")
            .is_some_and(|m| !m.is_null() && Some(m) != current["metadata"].get("managedFields"));
        let mut new = merge_owned(kind, mode, &current, proposed);
        // Server-internal writes (binding) bypass the client-facing rules,
        // as upstream's binding REST does.
        if mode != Mode::Whole {
            strategy.default(&mut new);
            strategy.prepare_for_update(&mut new, &current);
            if strategy.tracks_generation() && new.get("spec") != current.get("spec") {
                let generation = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                meta_mut(&mut new).insert("generation".into(), json!(generation));
            }
            invalid_if_any(kind, ctx.name(), strategy.validate_update(&new, &current))?;
            admit_rbac(core, ctx, &new, Some(&current))?;
            noderestriction::admit(core, ctx, Operation::Update, Some(&new), Some(&current))?;
            if explicit {
                // `managedFields: [{}]` (or an empty list) clears them.
                let cleared = new["metadata"]["managedFields"]
                    .as_array()
                    .is_some_and(|l| l.iter().all(|e| e.as_object().is_none_or(|m| m.is_empty())));
                if cleared {
                    meta_mut(&mut new).remove("managedFields");
                }
            } else {
                let list =
                    fieldmanager::update(kind, mode, &current, &new, &manager, &kind.api_version());
                fieldmanager::set_entries(&mut new, &list);
            }
        }
        let _reserved = match mode {
            Mode::Main => {
                core.services
                    .allocate(
                        core.store.as_ref(),
                        storage,
                        &kv.key,
                        &mut new,
                        Some(&current),
                    )
                    .await?
            }
            Mode::Status | Mode::Whole => None,
        };
        let bytes = object::encode(&new);
        if bytes == kv.value {
            return Ok(current);
        }
        if mode == Mode::Main {
            crate::api::admission::validate_update(
                core,
                storage,
                &new,
                &current,
                ctx.query.dry_run(),
            )
            .await?;
        }
        if ctx.query.dry_run() {
            return Ok(new);
        }
        match core
            .store
            .update(&kv.key, bytes, kv.mod_revision, kind.ttl())
            .await
        {
            Ok((stored, _)) => {
                object::set_resource_version(&mut new, stored.mod_revision);
                if meta_str(&new, "deletionTimestamp").is_some()
                    && object::finalizers(&new).is_empty()
                    && !namespace_finalizers_pending(kind, &new)
                {
                    super::delete::remove_finished(core, &stored.key, stored.mod_revision).await;
                }
                return Ok(new);
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(ApiStatus::modified(kind, ctx.name()))
}

/// Whether `obj` is a namespace whose `spec.finalizers` still hold it (a
/// Terminating namespace goes only when both finalizer lists are empty).
pub fn namespace_finalizers_pending(kind: &KindInfo, obj: &Value) -> bool {
    kind.kind == "Namespace"
        && kind.group.is_empty()
        && obj["spec"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
}

/// Checks the body's name and namespace against the URL.
pub fn check_identity(ctx: &Ctx, obj: &mut Value) -> Result<(), ApiStatus> {
    let name = object::name(obj);
    if !name.is_empty() && name != ctx.name() {
        return Err(ApiStatus::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({})",
            ctx.name()
        )));
    }
    check_namespace(ctx.kind(), obj, ctx.namespace())
}

/// PUT of a whole object (main resource or `/status`).
pub async fn put(core: &Arc<Core>, ctx: Ctx, body: Bytes, mode: Mode) -> Result<Value, ApiStatus> {
    let kind = ctx.kind();
    let mut sent = decode_body(&ctx.headers, &body)?;
    fields::check_body(&ctx, fields::Options::Update, &body, &mut sent)?;
    let mut obj = check_type(kind, sent)?;
    check_identity(&ctx, &mut obj)?;
    let updated = guaranteed_update(core, &ctx, mode, &mut |_| Ok(obj.clone())).await?;
    Ok(from_storage(kind, updated))
}

pub async fn update(core: &Arc<Core>, ctx: Ctx, body: Bytes) -> Result<Response, ApiStatus> {
    let kind = ctx.kind();
    if kind.allows_create_on_update() {
        let missing = core
            .store
            .get(&ctx.key(), None)
            .await
            .map_err(store_error)?
            .is_none();
        if missing {
            let mut sent = decode_body(&ctx.headers, &body)?;
            fields::check_body(&ctx, fields::Options::Update, &body, &mut sent)?;
            let mut obj = check_type(kind, sent)?;
            check_identity(&ctx, &mut obj)?;
            meta_mut(&mut obj).insert("name".into(), json!(ctx.name()));
            meta_mut(&mut obj).remove("resourceVersion");
            admit_rbac(core, &ctx, &obj, None)?;
            noderestriction::admit(core, &ctx, Operation::Create, Some(&obj), None)?;
            let created =
                create_object(core, kind, ctx.namespace(), obj, ctx.query.dry_run()).await?;
            return Ok(json(StatusCode::CREATED, &from_storage(kind, created)));
        }
    }
    Ok(json(
        StatusCode::OK,
        &put(core, ctx, body, Mode::Main).await?,
    ))
}

/// PATCH of an object (main resource or `/status`), applied to the object
/// as the client sees it.
pub async fn apply_patch(
    core: &Arc<Core>,
    ctx: Ctx,
    body: Bytes,
    mode: Mode,
) -> Result<Value, ApiStatus> {
    let kind = ctx.kind();
    let patch_type = PatchType::from_content_type(&content_type(&ctx.headers))?;
    if patch_type == PatchType::Apply {
        return server_side_apply(core, ctx, body, mode)
            .await
            .map(|(_, v)| v);
    }
    let mut mutate = |current: &Value| {
        let seen = from_storage(kind, current.clone());
        let mut patched = patch::apply(patch_type, &seen, &body)?;
        fields::check_patched(&ctx, &body, &mut patched)?;
        let mut patched = check_type(kind, patched)?;
        check_identity(&ctx, &mut patched)?;
        Ok(patched)
    };
    let updated = guaranteed_update(core, &ctx, mode, &mut mutate).await?;
    Ok(from_storage(kind, updated))
}

/// Server-side apply: creates the object if missing (201), else merges the
/// applied configuration with field ownership.
async fn server_side_apply(
    core: &Arc<Core>,
    ctx: Ctx,
    body: Bytes,
    mode: Mode,
) -> Result<(StatusCode, Value), ApiStatus> {
    let kind = ctx.kind();
    if mode != Mode::Main {
        return Err(ApiStatus::unsupported_media_type(
            "application/apply-patch+yaml",
        ));
    }
    if ctx.query.get("fieldManager").is_none() {
        return Err(ApiStatus::bad_request(
            "PATCH, application/apply-patch+yaml requests require a fieldManager",
        ));
    }
    let manager = fieldmanager::manager(&ctx)?;
    let force = match ctx.query.get("force") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiStatus::bad_request(format!(
                "invalid boolean value for force: {other}"
            )));
        }
    };
    let mut sent: Value = serde_saphyr::from_slice(&body)
        .map_err(|e| ApiStatus::bad_request(format!("error decoding YAML: {e}")))?;
    if !sent.is_object() {
        return Err(ApiStatus::bad_request(
            "an applied configuration must be an object",
        ));
    }
    for field in ["apiVersion", "kind"] {
        if sent
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiStatus::bad_request(format!(
                "invalid object: {field} must be set in an applied configuration"
            )));
        }
    }
    fields::check_body(&ctx, fields::Options::Patch, &body, &mut sent)?;
    let mut config = check_type(kind, sent)?;
    check_identity(&ctx, &mut config)?;
    meta_mut(&mut config).remove("managedFields");
    let api_version = kind.api_version();
    let exists = core
        .store
        .get(&ctx.key(), None)
        .await
        .map_err(store_error)?
        .is_some();
    if !exists {
        meta_mut(&mut config).insert("name".into(), json!(ctx.name()));
        noderestriction::admit(core, &ctx, Operation::Create, Some(&config), None)?;
        let applied = fieldmanager::apply(kind, None, &config, &manager, &api_version, force)?;
        let managed = applied["metadata"]["managedFields"].clone();
        let created = create_managed(
            core,
            kind,
            ctx.namespace(),
            config,
            ctx.query.dry_run(),
            Managed::Given(managed),
        )
        .await?;
        return Ok((StatusCode::CREATED, from_storage(kind, created)));
    }
    let mut mutate = |current: &Value| {
        fieldmanager::apply(kind, Some(current), &config, &manager, &api_version, force)
    };
    let updated = guaranteed_update(core, &ctx, mode, &mut mutate).await?;
    Ok((StatusCode::OK, from_storage(kind, updated)))
}

pub async fn patch(core: &Arc<Core>, ctx: Ctx, body: Bytes) -> Result<Response, ApiStatus> {
    if content_type(&ctx.headers) == "application/apply-patch+yaml" {
        let (code, obj) = server_side_apply(core, ctx, body, Mode::Main).await?;
        return Ok(json(code, &obj));
    }
    Ok(json(
        StatusCode::OK,
        &apply_patch(core, ctx, body, Mode::Main).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::lookup;

    #[test]
    fn main_writes_keep_status_and_status_writes_keep_spec() {
        let Some(deploy) = lookup("apps", "v1", "deployments") else {
            panic!("row")
        };
        let current = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1"}}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let sent = json!({"metadata": {"name": "a", "uid": "forged"}, "spec": {"replicas": 3}, "status": {"replicas": 9}});
        let main = merge_owned(deploy, Mode::Main, &current, sent.clone());
        assert_eq!(main["spec"]["replicas"], 3);
        assert_eq!(main["status"]["replicas"], 1);
        assert_eq!(main["metadata"]["uid"], "u");
        let status = merge_owned(deploy, Mode::Status, &current, sent);
        assert_eq!(status["spec"]["replicas"], 1);
        assert_eq!(status["status"]["replicas"], 9);
        assert!(status["metadata"].get("labels").is_none());
    }
}
