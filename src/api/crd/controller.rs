//! Upstream's establishing, naming and finalizing controllers in one loop
//! over the CRD watch cache: a definition's kinds are served (with a watch
//! cache each) as soon as it is stored and at every start, its status gets
//! `acceptedNames`, `storedVersions` and the `NamesAccepted` and
//! `Established` conditions, and a deleted definition (held by the
//! `customresourcecleanup` finalizer) has its objects deleted before it goes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::{CLEANUP_FINALIZER, rows_of};
use crate::api::handlers::delete::{DeleteOptions, delete_one};
use crate::api::handlers::{Core, Ctx};
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
                    // Names it held may be free for others of its group.
                    for crd in others_in_group(&core, &event.object) {
                        sync(&core, &crd).await;
                    }
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
        if super::is_registered(&name) {
            // Still served (creates are refused) until its objects are gone.
            super::register(crd);
        }
        let cleaning = object::finalizers(crd)
            .iter()
            .any(|f| f == CLEANUP_FINALIZER);
        if cleaning && cleaning_now().insert(name.clone()) {
            let core = Arc::clone(core);
            let crd = crd.clone();
            tokio::spawn(async move {
                cleanup(&core, &crd, &name).await;
                cleaning_now().remove(&name);
            });
        }
        return;
    }
    let conflict = name_conflict(crd, &others_in_group(core, crd));
    if conflict.is_none() {
        for row in rows_of(crd) {
            if let Err(e) = ensure_cache(core, row).await {
                tracing::warn!(crd = %name, error = %e, "cannot start the watch cache");
                return;
            }
        }
        super::register(crd);
    }
    if let Err(e) = write_status(core, &name, conflict.as_ref()).await {
        tracing::warn!(crd = %name, error = %e, "cannot update the CRD status");
    }
}

/// The other CRDs of `crd`'s group, as the CRD cache has them.
fn others_in_group(core: &Core, crd: &Value) -> Vec<Arc<Value>> {
    let Some(kind) = crd_kind() else {
        return Vec::new();
    };
    let Ok(cache) = core.cache(kind) else {
        return Vec::new();
    };
    cache
        .list(&kind.prefix(None))
        .0
        .into_iter()
        .filter(|c| {
            c["spec"]["group"] == crd["spec"]["group"] && object::name(c) != object::name(crd)
        })
        .collect()
}

/// Upstream's naming check: a requested name is fine when this CRD already
/// has it accepted or no other CRD of the group has accepted it. The first
/// conflict is (reason, message), e.g. `KindConflict`, `"Widget" is already
/// in use`.
fn name_conflict(crd: &Value, others: &[Arc<Value>]) -> Option<(&'static str, String)> {
    let mut resources = Vec::new();
    let mut kinds = Vec::new();
    for other in others {
        let names = &other["status"]["acceptedNames"];
        for key in ["plural", "singular"] {
            resources.extend(names[key].as_str().map(String::from));
        }
        resources.extend(super::strings(&names["shortNames"]));
        for key in ["kind", "listKind"] {
            kinds.extend(names[key].as_str().map(String::from));
        }
    }
    let requested = &crd["spec"]["names"];
    let accepted = &crd["status"]["acceptedNames"];
    let fresh = |key: &str, used: &[String]| {
        let want = requested[key].as_str().unwrap_or("");
        let taken = !want.is_empty()
            && accepted[key].as_str() != Some(want)
            && used.iter().any(|u| u == want);
        taken.then(|| format!("{want:?} is already in use"))
    };
    let owned = super::strings(&accepted["shortNames"]);
    let short = super::strings(&requested["shortNames"])
        .into_iter()
        .filter(|s| !owned.contains(s) && resources.contains(s))
        .map(|s| format!("{s:?} is already in use"))
        .collect::<Vec<_>>();
    fresh("plural", &resources)
        .map(|m| ("PluralConflict", m))
        .or_else(|| fresh("singular", &resources).map(|m| ("SingularConflict", m)))
        .or_else(|| (!short.is_empty()).then(|| ("ShortNamesConflict", short.join(", "))))
        .or_else(|| fresh("kind", &kinds).map(|m| ("KindConflict", m)))
        .or_else(|| fresh("listKind", &kinds).map(|m| ("ListKindConflict", m)))
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

fn condition(kind: &str, status: &str, reason: &str, message: &str, old: &Value) -> Value {
    let previous = old["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind && c["status"] == status);
    let since = previous
        .and_then(|c| c["lastTransitionTime"].as_str().map(String::from))
        .unwrap_or_else(object::now);
    json!({"type": kind, "status": status, "lastTransitionTime": since,
        "reason": reason, "message": message})
}

fn established(crd: &Value) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True")
}

/// The status the server owns: accepted names, conditions, stored versions;
/// with a name conflict the names stay as they were and a CRD never
/// established is not.
fn desired_status(crd: &Value, conflict: Option<&(&'static str, String)>) -> Value {
    if let Some((reason, message)) = conflict {
        let mut status = crd["status"].as_object().cloned().unwrap_or_default();
        let mut conditions = vec![condition("NamesAccepted", "False", reason, message, crd)];
        conditions.push(if established(crd) {
            condition(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                crd,
            )
        } else {
            condition(
                "Established",
                "False",
                "NotAccepted",
                "not all names are accepted",
                crd,
            )
        });
        status.insert("conditions".into(), json!(conditions));
        return Value::Object(status);
    }
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
            condition(
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
                crd
            ),
            condition(
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
                crd
            ),
        ]),
    );
    Value::Object(status)
}

/// Writes the server-owned status of the CRD `name` if it differs.
async fn write_status(
    core: &Core,
    name: &str,
    conflict: Option<&(&'static str, String)>,
) -> Result<(), StoreError> {
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
        let status = desired_status(&crd, conflict);
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

/// Sets upstream's `Terminating` condition on a CRD whose objects are
/// being deleted.
async fn mark_terminating(core: &Core, name: &str) -> Result<(), StoreError> {
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
        let terminating = condition(
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            &crd,
        );
        let mut conditions: Vec<Value> = crd["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["type"] != "Terminating")
            .collect();
        conditions.push(terminating);
        if crd["status"]["conditions"] == json!(conditions) {
            return Ok(());
        }
        object::set_path(&mut crd, &["status", "conditions"], json!(conditions));
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

/// The CRDs whose objects are being deleted now (one task each).
fn cleaning_now() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    static CLEANING: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    CLEANING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Deletes every object of a definition being deleted (as a client would:
/// their own finalizers are honoured, and waited for with backoff), then
/// removes the cleanup finalizer so the CRD goes.
async fn cleanup(core: &Arc<Core>, crd: &Value, name: &str) {
    let rows = rows_of(crd);
    let Some(row) = rows.first().copied() else {
        return;
    };
    let prefix = row.prefix(None);
    if let Err(e) = mark_terminating(core, name).await {
        tracing::warn!(crd = %name, error = %e, "cannot update the CRD status");
    }
    let mut pause = Duration::from_millis(100);
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
            let Ok(obj) = object::decode(kv) else {
                continue;
            };
            let namespace = meta_str(&obj, "namespace");
            let ctx = Ctx::internal(row, namespace, object::name(&obj));
            if let Err(e) = delete_one(core, &ctx, &DeleteOptions::default()).await {
                if e.code != 404 {
                    tracing::debug!(crd = %name, error = %e, "deleting a custom object");
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
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
        let status = desired_status(&crd, None);
        assert_eq!(status["storedVersions"], json!(["v1", "v2"]));
        assert_eq!(status["acceptedNames"]["shortNames"], json!(["wd"]));
        assert_eq!(status["conditions"][1]["type"], "Established");
        let again = desired_status(&json!({"spec": crd["spec"], "status": status}), None);
        assert_eq!(again, status);
    }

    #[test]
    fn names_taken_by_another_crd_of_the_group_conflict() {
        let other = Arc::new(json!({"status": {"acceptedNames": {"plural": "widgets",
            "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]}}}));
        let crd = json!({"spec": {"names": {"plural": "gizmos", "singular": "gizmo",
            "kind": "Widget", "listKind": "GizmoList", "shortNames": ["gz"]}}, "status": {}});
        let conflict = name_conflict(&crd, std::slice::from_ref(&other));
        assert_eq!(
            conflict,
            Some(("KindConflict", "\"Widget\" is already in use".to_string()))
        );
        let status = desired_status(&crd, conflict.as_ref());
        assert_eq!(status["conditions"][0]["status"], "False");
        assert_eq!(status["conditions"][1]["reason"], "NotAccepted");
        let mut fine = crd.clone();
        fine["spec"]["names"]["kind"] = json!("Gizmo");
        assert_eq!(name_conflict(&fine, &[other]), None);
    }
}
