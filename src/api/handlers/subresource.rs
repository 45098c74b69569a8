//! Subresources: `status` (GET/PUT/PATCH changing only status), `scale`
//! (an `autoscaling/v1` Scale view of `spec.replicas`), `pods/binding`
//! (the scheduler sets `spec.nodeName`) and `namespaces/finalize` (replaces
//! `spec.finalizers`); `pods/eviction` is in `eviction.rs` and
//! `serviceaccounts/token` in `token.rs`.

use std::sync::Arc;

use axum::response::Response;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::write::{Mode, apply_patch, guaranteed_update, put};
use super::{Core, Ctx, load};
use crate::api::convert::from_storage;
use crate::api::object::{self, meta_str};
use crate::api::patch::{self, PatchType};
use crate::api::registry::{KindInfo, Subresource};
use crate::api::response::{content_type, decode_body, json};
use crate::api::selectors::selector_string;
use crate::api::status::ApiStatus;

pub async fn serve(
    core: &Arc<Core>,
    method: &Method,
    ctx: Ctx,
    sub: String,
    body: Bytes,
) -> Result<Response, ApiStatus> {
    let kind = ctx.kind();
    let served = kind.subresources.iter().find(|s| s.name() == sub).copied();
    let Some(served) = served else {
        return Err(ApiStatus::path_not_found());
    };
    let ok = |v: Value| Ok(json(StatusCode::OK, &v));
    match (served, method) {
        (Subresource::Status, &Method::GET) => ok(from_storage(kind, load(core, &ctx).await?.1)),
        (Subresource::Status, &Method::PUT) => ok(put(core, ctx, body, Mode::Status).await?),
        (Subresource::Status, &Method::PATCH) => {
            ok(apply_patch(core, ctx, body, Mode::Status).await?)
        }
        (Subresource::Scale, &Method::GET) => ok(scale_of(kind, &load(core, &ctx).await?.1)),
        (Subresource::Scale, &Method::PUT | &Method::PATCH) => {
            ok(write_scale(core, method, ctx, body).await?)
        }
        (Subresource::Binding, &Method::POST) => bind(core, ctx, body).await,
        (Subresource::Eviction, &Method::POST) => super::eviction::evict(core, ctx, body).await,
        (Subresource::Token, &Method::POST) => super::token::create(core, ctx, body).await,
        (Subresource::Finalize, &Method::PUT) => ok(finalize(core, ctx, body).await?),
        _ => Err(ApiStatus::method_not_allowed(
            method,
            &format!("{}/{sub}", kind.plural),
        )),
    }
}

/// `namespaces/{name}/finalize`: stores the sent `spec.finalizers` and
/// nothing else, as upstream's FinalizeREST; a Terminating namespace left
/// with no finalizer is removed by the update.
async fn finalize(core: &Arc<Core>, ctx: Ctx, body: Bytes) -> Result<Value, ApiStatus> {
    let kind = ctx.kind();
    let mut sent = decode_body(&ctx.headers, &body)?;
    super::write::check_identity(&ctx, &mut sent)?;
    let finalizers = sent["spec"]["finalizers"].clone();
    let finalizers = if finalizers.is_null() {
        json!([])
    } else {
        finalizers
    };
    let causes = crate::api::kinds::namespace::validate_finalizers(&finalizers);
    if !causes.is_empty() {
        return Err(ApiStatus::invalid(kind, ctx.name(), &causes));
    }
    let precondition = meta_str(&sent, "resourceVersion").map(String::from);
    let mut mutate = |current: &Value| {
        let mut new = current.clone();
        object::set_path(&mut new, &["spec", "finalizers"], finalizers.clone());
        if let Some(rv) = &precondition {
            object::meta_mut(&mut new).insert("resourceVersion".into(), json!(rv));
        }
        Ok(new)
    };
    let updated = guaranteed_update(core, &ctx, Mode::Whole, &mut mutate).await?;
    Ok(from_storage(kind, updated))
}

/// The Scale view of a scalable object (custom kinds: at their CRD's
/// scale paths).
fn scale_of(kind: &KindInfo, obj: &Value) -> Value {
    if let Some(scale) = crate::api::crd::scale_of(kind, obj) {
        return scale;
    }
    let meta = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector_string(&obj["spec"]["selector"]),
        },
    })
}

async fn write_scale(
    core: &Arc<Core>,
    method: &Method,
    ctx: Ctx,
    body: Bytes,
) -> Result<Value, ApiStatus> {
    let sent = match method {
        &Method::PUT => Some(decode_body(&ctx.headers, &body)?),
        _ => None,
    };
    let patch_type = match method {
        &Method::PATCH => Some(PatchType::from_content_type(&content_type(&ctx.headers))?),
        _ => None,
    };
    let mut mutate = |current: &Value| {
        let view = scale_of(ctx.kind(), current);
        let scale = match (&sent, patch_type) {
            (Some(s), _) => s.clone(),
            (None, Some(pt)) => patch::apply(pt, &view, &body)?,
            (None, None) => view.clone(),
        };
        let replicas = scale["spec"]["replicas"].as_i64().ok_or_else(|| {
            ApiStatus::invalid(
                ctx.kind(),
                ctx.name(),
                &[crate::api::kinds::Cause {
                    reason: "FieldValueRequired",
                    message: "Required value".into(),
                    field: "spec.replicas".into(),
                }],
            )
        })?;
        if replicas < 0 {
            return Err(ApiStatus::invalid(
                ctx.kind(),
                ctx.name(),
                &[crate::api::kinds::Cause {
                    reason: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: {replicas}: must be greater than or equal to 0"
                    ),
                    field: "spec.replicas".into(),
                }],
            ));
        }
        let mut next = current.clone();
        let spec_path = crate::api::crd::scale_paths(ctx.kind())
            .map(|(spec, _, _)| crate::api::crd::path_segments(&spec))
            .unwrap_or_else(|| vec!["spec".into(), "replicas".into()]);
        let segments: Vec<&str> = spec_path.iter().map(String::as_str).collect();
        object::set_path(&mut next, &segments, json!(replicas));
        let rv = meta_str(&scale, "resourceVersion").filter(|rv| !rv.is_empty());
        let current_rv = meta_str(current, "resourceVersion");
        if sent.is_some() && rv.is_some() && rv != current_rv {
            return Err(ApiStatus::modified(ctx.kind(), ctx.name()));
        }
        object::meta_mut(&mut next).remove("resourceVersion");
        Ok(next)
    };
    let updated = guaranteed_update(core, &ctx, Mode::Main, &mut mutate).await?;
    Ok(scale_of(ctx.kind(), &updated))
}

/// The `201 Success` Status that action subresources answer.
pub(super) fn created_status() -> Response {
    json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

async fn bind(core: &Arc<Core>, ctx: Ctx, body: Bytes) -> Result<Response, ApiStatus> {
    let binding = decode_body(&ctx.headers, &body)?;
    let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
    if node.is_empty() {
        return Err(ApiStatus::bad_request(
            "binding target node name must not be empty",
        ));
    }
    let kind = ctx.kind();
    let name = ctx.name().to_string();
    let mut mutate = |current: &Value| {
        if meta_str(current, "deletionTimestamp").is_some() {
            return Err(ApiStatus::conflict(
                kind,
                &name,
                &format!("pod {name} is being deleted, cannot be assigned to a host"),
            ));
        }
        if let Some(existing) = current["spec"]["nodeName"]
            .as_str()
            .filter(|n| !n.is_empty())
        {
            return Err(ApiStatus::conflict(
                kind,
                &name,
                &format!("pod {name} is already assigned to node \"{existing}\""),
            ));
        }
        let mut next = current.clone();
        object::set_path(&mut next, &["spec", "nodeName"], json!(node));
        let mut conditions: Vec<Value> = next["status"]["conditions"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter(|c| c["type"] != "PodScheduled")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": object::now()}));
        object::set_path(&mut next, &["status", "conditions"], json!(conditions));
        Ok(next)
    };
    guaranteed_update(core, &ctx, Mode::Whole, &mut mutate).await?;
    Ok(created_status())
}
