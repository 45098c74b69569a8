//! Emptying a Terminating namespace: deletes every namespaced object in it
//! (objects with finalizers are marked and waited for), then removes the
//! `kubernetes` finalizer and the namespace itself.
//!
//! This is the minimal form of upstream's namespace controller, run inside
//! the API server until the controllers land; it is restarted for namespaces
//! still Terminating when the server starts.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::api::handlers::delete::{DeleteOptions, delete_one};
use crate::api::handlers::{Core, Ctx};
use crate::api::object::{self, meta_str};
use crate::api::registry::{KINDS, KindInfo, lookup};
use crate::api::request::{Query, Target};
use crate::store::ListOptions;

/// A context for the server's own request on one object.
pub fn ctx_for(kind: &'static KindInfo, namespace: Option<&str>, name: &str) -> Ctx {
    Ctx {
        target: Target {
            kind,
            namespace: namespace.map(String::from),
            name: Some(name.to_string()),
            subresource: None,
            legacy_watch: false,
        },
        query: Query::default(),
        headers: http::HeaderMap::new(),
        user: None,
    }
}

/// Starts emptying namespace `name` in the background.
pub fn start_cleanup(core: Arc<Core>, name: String) {
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(50);
        loop {
            match cleanup_round(&core, &name).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(namespace = %name, error = %e, "emptying namespace"),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    });
}

/// One pass; `true` once the namespace is gone.
async fn cleanup_round(core: &Arc<Core>, ns: &str) -> Result<bool, crate::api::status::ApiStatus> {
    let mut remaining = 0usize;
    let mut seen = BTreeSet::new();
    for kind in KINDS
        .iter()
        .chain(crate::api::crd::served())
        .filter(|k| k.namespaced && !k.is_review() && seen.insert(k.storage))
    {
        let page = core
            .store
            .list(&kind.prefix(Some(ns)), ListOptions::default())
            .await
            .map_err(crate::api::handlers::store_error)?;
        for kv in &page.kvs {
            remaining += 1;
            let Ok(obj) = object::decode(kv) else {
                continue;
            };
            let ctx = ctx_for(kind, Some(ns), object::name(&obj));
            let opts = DeleteOptions {
                grace_period: Some(0),
                ..Default::default()
            };
            if let Err(e) = delete_one(core, &ctx, &opts).await {
                if e.code != 404 {
                    tracing::debug!(namespace = ns, error = %e, "deleting namespace content");
                }
            }
        }
    }
    if remaining > 0 {
        return Ok(false);
    }
    let Some(namespaces) = lookup("", "v1", "namespaces") else {
        return Ok(true);
    };
    let ctx = ctx_for(namespaces, None, ns);
    let (kv, mut obj) = match crate::api::handlers::load(core, &ctx).await {
        Ok(found) => found,
        Err(e) if e.code == 404 => return Ok(true),
        Err(e) => return Err(e),
    };
    if meta_str(&obj, "deletionTimestamp").is_none() {
        return Ok(true);
    }
    let finalizers: Vec<serde_json::Value> = obj["spec"]["finalizers"]
        .as_array()
        .map(|f| f.iter().filter(|f| *f != "kubernetes").cloned().collect())
        .unwrap_or_default();
    object::set_path(&mut obj, &["spec", "finalizers"], json!(finalizers));
    if finalizers.is_empty() && object::finalizers(&obj).is_empty() {
        let _ = core.store.delete(&kv.key, Some(kv.mod_revision)).await;
        return Ok(true);
    }
    let _ = core
        .store
        .update(&kv.key, object::encode(&obj), kv.mod_revision, None)
        .await;
    Ok(false)
}
