//! Upstream's establishing, naming and finalizing controllers in one loop
//! over the CRD watch cache: a definition's kinds are served (with a watch
//! cache each) as soon as it is stored and at every start, its status gets
//! `acceptedNames`, `storedVersions` and the `NamesAccepted` and
//! `Established` conditions, and a deleted definition (held by the
//! `customresourcecleanup` finalizer) has its objects deleted before it goes.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::{CLEANUP_FINALIZER, rows_of};
use crate::api::handlers::Core;
use crate::api::object::{self, meta_str};
use crate::api::registry::{KindInfo, lookup};
use crate::api::watch_cache::WatchCache;
use crate::store::{EventKind, ListOptions, StoreError};

fn crd_kind() -> Option<&'static KindInfo> {
    lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
}

/// Serves every stored definition, then follows changes in the background.
pub async fn start(core: Arc<Core>) {
    let Some(kind) = crd_kind() else { return };
    let Ok(cache) = core.cache(kind) else { return };
    let Ok(sub) = cache.subscribe(Some(cache.revision())) else {
        return;
    };
    for crd in cache.list(&kind.prefix(None)).0 {
        sync(&core, &crd).await;
    }
    let mut live = sub.live;
    tokio::spawn(async move {
        loop {
            match live.recv().await {
                Ok(event) if event.kind == EventKind::Deleted => {
                    forget(&core, object::name(&event.object));
                }
                Ok(event) => sync(&core, &event.object).await,
                Err(RecvError::Lagged(_)) => {
                    for crd in cache.list(&kind.prefix(None)).0 {
                        sync(&core, &crd).await;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// Brings one definition's serving, status and cleanup up to date.
async fn sync(core: &Arc<Core>, crd: &Value) {
    let name = object::name(crd).to_string();
    if meta_str(crd, "deletionTimestamp").is_some() {
        if object::finalizers(crd)
            .iter()
            .any(|f| f == CLEANUP_FINALIZER)
        {
            let core = Arc::clone(core);
            let crd = crd.clone();
            tokio::spawn(async move { cleanup(&core, &crd, &name).await });
        }
        return;
    }
    for row in rows_of(crd) {
        if let Err(e) = ensure_cache(core, row).await {
            tracing::warn!(crd = %name, error = %e, "cannot start the watch cache");
            return;
        }
    }
    super::register(crd);
    if let Err(e) = write_status(core, &name).await {
        tracing::warn!(crd = %name, error = %e, "cannot update the CRD status");
    }
}

async fn ensure_cache(core: &Core, row: &'static KindInfo) -> Result<(), StoreError> {
    if core.cache(row).is_ok() {
        return Ok(());
    }
    let cache = WatchCache::start(Arc::clone(&core.store), row.prefix(None)).await?;
    let mut caches = core.caches.write().unwrap_or_else(|e| e.into_inner());
    caches.entry(row.storage).or_insert(cache);
    Ok(())
}

/// Stops serving a definition that is gone, and its cache.
fn forget(core: &Core, name: &str) {
    let rows: Vec<&'static KindInfo> = super::served()
        .into_iter()
        .filter(|k| format!("{}.{}", k.plural, k.group) == name)
        .collect();
    super::unregister(name);
    let mut caches = core.caches.write().unwrap_or_else(|e| e.into_inner());
    for row in rows {
        if let Some(cache) = caches.remove(row.storage) {
            cache.stop();
        }
    }
}

fn condition(kind: &str, reason: &str, message: &str, old: &Value) -> Value {
    let previous = old["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind && c["status"] == "True");
    let since = previous
        .and_then(|c| c["lastTransitionTime"].as_str().map(String::from))
        .unwrap_or_else(object::now);
    json!({"type": kind, "status": "True", "lastTransitionTime": since,
        "reason": reason, "message": message})
}

/// The status the server owns: accepted names, conditions, stored versions.
fn desired_status(crd: &Value) -> Value {
    let names = &crd["spec"]["names"];
    let mut accepted = json!({
        "plural": names["plural"], "kind": names["kind"],
        "singular": names["singular"], "listKind": names["listKind"],
    });
    for key in ["shortNames", "categories"] {
        if names[key].as_array().is_some_and(|l| !l.is_empty()) {
            accepted[key] = names[key].clone();
        }
    }
    let mut stored: Vec<Value> = crd["status"]["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let storage = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["storage"] == true)
        .map(|v| v["name"].clone());
    if let Some(v) = storage.filter(|v| !stored.contains(v)) {
        stored.push(v);
    }
    let mut status = crd["status"].as_object().cloned().unwrap_or_default();
    status.insert("acceptedNames".into(), accepted);
    status.insert("storedVersions".into(), json!(stored));
    status.insert(
        "conditions".into(),
        json!([
            condition("NamesAccepted", "NoConflicts", "no conflicts found", crd),
            condition(
                "Established",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                crd
            ),
        ]),
    );
    Value::Object(status)
}

/// Writes the server-owned status of the CRD `name` if it differs.
async fn write_status(core: &Core, name: &str) -> Result<(), StoreError> {
    let Some(kind) = crd_kind() else {
        return Ok(());
    };
    let key = kind.key(None, name);
    for _ in 0..8 {
        let Some(kv) = core.store.get(&key, None).await? else {
            return Ok(());
        };
        let Ok(mut crd) = object::decode(&kv) else {
            return Ok(());
        };
        if meta_str(&crd, "deletionTimestamp").is_some() {
            return Ok(());
        }
        let status = desired_status(&crd);
        if crd["status"] == status {
            return Ok(());
        }
        crd["status"] = status;
        object::meta_mut(&mut crd).remove("resourceVersion");
        match core
            .store
            .update(&key, object::encode(&crd), kv.mod_revision, None)
            .await
        {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes every object of a definition being deleted, then lets it go.
async fn cleanup(core: &Core, crd: &Value, name: &str) {
    let group = crd["spec"]["group"].as_str().unwrap_or("");
    let plural = crd["spec"]["names"]["plural"].as_str().unwrap_or("");
    if group.is_empty() || plural.is_empty() {
        return;
    }
    let prefix = format!("/registry/{group}/{plural}/");
    loop {
        let page = match core.store.list(&prefix, ListOptions::default()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(crd = %name, error = %e, "cannot list custom objects");
                return;
            }
        };
        if page.kvs.is_empty() {
            break;
        }
        for kv in &page.kvs {
            match core.store.delete(&kv.key, None).await {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(key = %kv.key, error = %e, "cannot delete a custom object");
                    return;
                }
            }
        }
    }
    let Some(kind) = crd_kind() else { return };
    let key = kind.key(None, name);
    for _ in 0..8 {
        let Ok(Some(kv)) = core.store.get(&key, None).await else {
            return;
        };
        let Ok(mut current) = object::decode(&kv) else {
            return;
        };
        let left: Vec<String> = object::finalizers(&current)
            .into_iter()
            .filter(|f| f != CLEANUP_FINALIZER)
            .collect();
        let result = if left.is_empty() {
            core.store
                .delete(&key, Some(kv.mod_revision))
                .await
                .map(|_| ())
        } else {
            object::meta_mut(&mut current).insert("finalizers".into(), json!(left));
            object::meta_mut(&mut current).remove("resourceVersion");
            core.store
                .update(&key, object::encode(&current), kv.mod_revision, None)
                .await
                .map(|_| ())
        };
        match result {
            Ok(()) => return,
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => {
                tracing::warn!(crd = %name, error = %e, "cannot finish deleting the CRD");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_accepts_names_and_records_the_storage_version() {
        let crd = json!({"spec": {"names": {"plural": "widgets", "kind": "Widget",
                "singular": "widget", "listKind": "WidgetList", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "storage": false}, {"name": "v2", "storage": true}]},
            "status": {"storedVersions": ["v1"]}});
        let status = desired_status(&crd);
        assert_eq!(status["storedVersions"], json!(["v1", "v2"]));
        assert_eq!(status["acceptedNames"]["shortNames"], json!(["wd"]));
        assert_eq!(status["conditions"][1]["type"], "Established");
        let again = desired_status(&json!({"spec": crd["spec"], "status": status}));
        assert_eq!(again, status);
    }
}
