//! The garbage collector: deletes objects whose owners are gone, and carries
//! out the `orphan` and `foregroundDeletion` finalizers that DELETE's
//! `propagationPolicy` puts on owners, as upstream's garbage collector.
//!
//! It keeps a graph of owner references (uid → owners, owner uid →
//! dependents) built from the API server's watch caches rather than from
//! informers of its own, so the objects are held once; it acts through the
//! API as `system:serviceaccount:kube-system:generic-garbage-collector`.
//!
//! - A dependent none of whose owners exist any more is deleted (with the
//!   propagation its own finalizers ask for, else in the background). An
//!   owner missing from the graph is checked with a GET before anything is
//!   deleted, so a cache that lags never costs an object. A dependent with
//!   some owners left only loses the references to the missing ones.
//! - An owner being deleted with `orphan` has the references to it removed
//!   from its dependents, then the finalizer removed.
//! - An owner being deleted with `foregroundDeletion` has its dependents
//!   deleted (in the foreground when they have dependents of their own);
//!   the finalizer goes once no dependent with `blockOwnerDeletion` is left.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use kube::Client;
use serde_json::{Value, json};

use crate::api::Caches;
use crate::api::handlers::delete::{FOREGROUND_FINALIZER, ORPHAN_FINALIZER};
use crate::api::registry::{KINDS, KindInfo};
use crate::api::watch_cache::CachedEvent;
use crate::store::EventKind;
use crate::workqueue::WorkQueue;

/// One owner reference.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    api_version: String,
    kind: String,
    name: String,
    uid: String,
    controller: Option<bool>,
    block: Option<bool>,
}

impl Owner {
    fn blocks(&self) -> bool {
        self.block == Some(true)
    }

    fn to_json(&self) -> Value {
        let mut r = json!({"apiVersion": self.api_version, "kind": self.kind,
                           "name": self.name, "uid": self.uid});
        if let Some(c) = self.controller {
            r["controller"] = json!(c);
        }
        if let Some(b) = self.block {
            r["blockOwnerDeletion"] = json!(b);
        }
        r
    }
}

/// What the collector knows of one object.
#[derive(Debug, Clone)]
struct Node {
    kind: &'static KindInfo,
    namespace: Option<String>,
    name: String,
    resource_version: String,
    owners: Vec<Owner>,
    deleting: bool,
    finalizers: Vec<String>,
}

impl Node {
    fn from(kind: &'static KindInfo, obj: &Value) -> Option<(String, Node)> {
        let meta = obj.get("metadata")?;
        let uid = meta.get("uid")?.as_str()?.to_string();
        let owners = meta["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some(Owner {
                    api_version: r["apiVersion"].as_str()?.to_string(),
                    kind: r["kind"].as_str()?.to_string(),
                    name: r["name"].as_str()?.to_string(),
                    uid: r["uid"].as_str()?.to_string(),
                    controller: r["controller"].as_bool(),
                    block: r["blockOwnerDeletion"].as_bool(),
                })
            })
            .collect();
        let node = Node {
            kind,
            namespace: meta["namespace"].as_str().map(String::from),
            name: meta["name"].as_str().unwrap_or("").to_string(),
            resource_version: meta["resourceVersion"].as_str().unwrap_or("").to_string(),
            owners,
            deleting: meta.get("deletionTimestamp").is_some_and(|t| !t.is_null()),
            finalizers: meta["finalizers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
        };
        Some((uid, node))
    }

    fn has(&self, finalizer: &str) -> bool {
        self.deleting && self.finalizers.iter().any(|f| f == finalizer)
    }

    fn path(&self) -> String {
        object_path(self.kind, self.namespace.as_deref(), &self.name)
    }
}

/// The API path of one object.
fn object_path(kind: &KindInfo, namespace: Option<&str>, name: &str) -> String {
    let base = if kind.group.is_empty() {
        format!("/api/{}", kind.version)
    } else {
        format!("/apis/{}/{}", kind.group, kind.version)
    };
    match namespace {
        Some(ns) if kind.namespaced => format!("{base}/namespaces/{ns}/{}/{name}", kind.plural),
        _ => format!("{base}/{}/{name}", kind.plural),
    }
}

/// The served kind an owner reference names (its group, any version).
fn owner_kind(owner: &Owner) -> Option<&'static KindInfo> {
    let group = owner.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    KINDS
        .iter()
        .find(|k| k.api_version() == owner.api_version && k.kind == owner.kind)
        .or_else(|| {
            KINDS
                .iter()
                .find(|k| k.group == group && k.kind == owner.kind)
        })
}

#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Records `node`; returns the keys of the work it causes.
    fn upsert(&mut self, uid: String, node: Node) -> Vec<String> {
        let mut work = Vec::new();
        let previous = self.nodes.remove(&uid);
        if let Some(old) = &previous {
            for o in &old.owners {
                if let Some(set) = self.dependents.get_mut(&o.uid) {
                    set.remove(&uid);
                    if set.is_empty() {
                        self.dependents.remove(&o.uid);
                    }
                }
            }
        }
        for o in &node.owners {
            self.dependents
                .entry(o.uid.clone())
                .or_default()
                .insert(uid.clone());
            // An owner waiting for its dependents hears of their changes.
            if self
                .nodes
                .get(&o.uid)
                .is_some_and(|owner| owner.has(FOREGROUND_FINALIZER))
            {
                work.push(format!("foreground:{}", o.uid));
            }
        }
        let owners_changed = previous.as_ref().is_none_or(|p| p.owners != node.owners);
        if !node.owners.is_empty() && (owners_changed || node.deleting) {
            work.push(format!("dependent:{uid}"));
        }
        if node.has(ORPHAN_FINALIZER) {
            work.push(format!("orphan:{uid}"));
        }
        if node.has(FOREGROUND_FINALIZER) {
            work.push(format!("foreground:{uid}"));
        }
        self.nodes.insert(uid, node);
        work
    }

    /// Forgets a deleted object; returns the keys of the work it causes.
    fn remove(&mut self, uid: &str) -> Vec<String> {
        let mut work = Vec::new();
        if let Some(node) = self.nodes.remove(uid) {
            for o in &node.owners {
                if let Some(set) = self.dependents.get_mut(&o.uid) {
                    set.remove(uid);
                    if set.is_empty() {
                        self.dependents.remove(&o.uid);
                    }
                }
                if self
                    .nodes
                    .get(&o.uid)
                    .is_some_and(|owner| owner.has(FOREGROUND_FINALIZER))
                {
                    work.push(format!("foreground:{}", o.uid));
                }
            }
        }
        for dep in self.dependents.get(uid).into_iter().flatten() {
            work.push(format!("dependent:{dep}"));
        }
        work
    }

    fn dependents_of(&self, uid: &str) -> Vec<(String, Node)> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d).map(|n| (d.clone(), n.clone())))
            .collect()
    }
}

/// Why a step failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
enum GcError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("building a request: {0}")]
    Request(#[from] http::Error),
}

struct Collector {
    client: Client,
    graph: Mutex<Graph>,
    queue: WorkQueue,
}

/// Starts the collector over the API server's caches.
pub fn start(client: Client, caches: Caches) {
    let collector = Arc::new(Collector {
        client,
        graph: Mutex::new(Graph::default()),
        queue: WorkQueue::new(),
    });
    for kind in caches.kinds() {
        // Subscribe first, then list: nothing falls between the two.
        let Some(mut live) = caches.subscribe(kind) else {
            continue;
        };
        for obj in caches.list(kind) {
            collector.observe(kind, EventKind::Created, &obj);
        }
        let c = Arc::clone(&collector);
        let view = caches.clone();
        tokio::spawn(async move {
            loop {
                match live.recv().await {
                    Ok(event) => c.observe_event(kind, &event),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        for obj in view.list(kind) {
                            c.observe(kind, EventKind::Created, &obj);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    tokio::spawn(async move {
        let worker = Arc::clone(&collector);
        collector
            .queue
            .process("garbage collector item", |key| {
                let c = Arc::clone(&worker);
                async move { c.sync(&key).await }
            })
            .await;
    });
}

impl Collector {
    fn lock(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn observe_event(&self, kind: &'static KindInfo, event: &CachedEvent) {
        self.observe(kind, event.kind, &event.object);
    }

    fn observe(&self, kind: &'static KindInfo, what: EventKind, obj: &Value) {
        let Some((uid, node)) = Node::from(kind, obj) else {
            return;
        };
        let work = match what {
            EventKind::Deleted => self.lock().remove(&uid),
            _ => self.lock().upsert(uid, node),
        };
        for key in work {
            self.queue.add(key);
        }
    }

    async fn sync(&self, key: &str) -> Result<(), GcError> {
        match key.split_once(':') {
            Some(("dependent", uid)) => self.collect_dependent(uid).await,
            Some(("orphan", uid)) => self.orphan(uid).await,
            Some(("foreground", uid)) => self.foreground(uid).await,
            _ => Ok(()),
        }
    }

    /// Whether `owner` exists with its uid, asking the API when the graph
    /// does not know it.
    async fn owner_exists(&self, owner: &Owner, namespace: Option<&str>) -> Result<bool, GcError> {
        if self.lock().nodes.contains_key(&owner.uid) {
            return Ok(true);
        }
        let Some(kind) = owner_kind(owner) else {
            // A kind this server does not serve cannot be checked: keep
            // the dependent rather than risk deleting it.
            return Ok(true);
        };
        let path = object_path(kind, namespace, &owner.name);
        let request = http::Request::get(path).body(Vec::new())?;
        match self.client.request::<Value>(request).await {
            Ok(found) => Ok(found["metadata"]["uid"] == owner.uid.as_str()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn collect_dependent(&self, uid: &str) -> Result<(), GcError> {
        let Some(node) = self.lock().nodes.get(uid).cloned() else {
            return Ok(());
        };
        if node.owners.is_empty() || (node.deleting && !node.has(FOREGROUND_FINALIZER)) {
            return Ok(());
        }
        let mut solid = Vec::new();
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        for owner in &node.owners {
            if !self.owner_exists(owner, node.namespace.as_deref()).await? {
                dangling.push(owner.uid.clone());
                continue;
            }
            let deleting_dependents = self
                .lock()
                .nodes
                .get(&owner.uid)
                .is_some_and(|o| o.has(FOREGROUND_FINALIZER));
            if deleting_dependents {
                waiting.push(owner.uid.clone());
            } else {
                solid.push(owner.uid.clone());
            }
        }
        let has_dependents = self.lock().dependents.contains_key(uid);
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            let keep: Vec<&Owner> = node
                .owners
                .iter()
                .filter(|o| !dangling.contains(&o.uid) && !waiting.contains(&o.uid))
                .collect();
            return self.set_owner_references(&node, &keep).await;
        }
        let policy = if !waiting.is_empty() && has_dependents {
            "Foreground"
        } else if node.finalizers.iter().any(|f| f == ORPHAN_FINALIZER) {
            "Orphan"
        } else if node.finalizers.iter().any(|f| f == FOREGROUND_FINALIZER) {
            "Foreground"
        } else {
            "Background"
        };
        if node.deleting {
            return Ok(());
        }
        tracing::debug!(object = %node.path(), policy, "deleting an object whose owners are gone");
        self.delete(&node, uid, policy).await
    }

    async fn orphan(&self, uid: &str) -> Result<(), GcError> {
        let (owner, dependents) = {
            let g = self.lock();
            let Some(owner) = g.nodes.get(uid).cloned() else {
                return Ok(());
            };
            (owner, g.dependents_of(uid))
        };
        if !owner.has(ORPHAN_FINALIZER) {
            return Ok(());
        }
        for (_, dep) in dependents {
            let keep: Vec<&Owner> = dep.owners.iter().filter(|o| o.uid != uid).collect();
            self.set_owner_references(&dep, &keep).await?;
        }
        self.remove_finalizer(&owner, ORPHAN_FINALIZER).await
    }

    async fn foreground(&self, uid: &str) -> Result<(), GcError> {
        let (owner, dependents) = {
            let g = self.lock();
            let Some(owner) = g.nodes.get(uid).cloned() else {
                return Ok(());
            };
            (owner, g.dependents_of(uid))
        };
        if !owner.has(FOREGROUND_FINALIZER) {
            return Ok(());
        }
        let mut blocking = false;
        for (dep_uid, dep) in &dependents {
            if dep.owners.iter().any(|o| o.uid == uid && o.blocks()) {
                blocking = true;
            }
            if !dep.deleting {
                self.queue.add(format!("dependent:{dep_uid}"));
            }
        }
        if blocking {
            // Called again as the dependents change and go.
            return Ok(());
        }
        self.remove_finalizer(&owner, FOREGROUND_FINALIZER).await
    }

    async fn delete(&self, node: &Node, uid: &str, policy: &str) -> Result<(), GcError> {
        let body = json!({
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": policy,
            "preconditions": {"uid": uid},
        });
        let request = http::Request::delete(node.path())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())?;
        match self.client.request::<Value>(request).await {
            Ok(_) => Ok(()),
            // Gone already, or replaced by a namesake: nothing to do.
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes the dependent's owner references, guarded by its
    /// resourceVersion (a 409 is retried on a fresher copy).
    async fn set_owner_references(&self, node: &Node, keep: &[&Owner]) -> Result<(), GcError> {
        let refs: Vec<Value> = keep.iter().map(|o| o.to_json()).collect();
        let patch = json!({"metadata": {
            "ownerReferences": if refs.is_empty() { Value::Null } else { json!(refs) },
            "resourceVersion": node.resource_version,
        }});
        self.merge_patch(node, &patch).await
    }

    async fn remove_finalizer(&self, node: &Node, finalizer: &str) -> Result<(), GcError> {
        let rest: Vec<&String> = node.finalizers.iter().filter(|f| *f != finalizer).collect();
        let patch = json!({"metadata": {
            "finalizers": if rest.is_empty() { Value::Null } else { json!(rest) },
            "resourceVersion": node.resource_version,
        }});
        self.merge_patch(node, &patch).await
    }

    async fn merge_patch(&self, node: &Node, patch: &Value) -> Result<(), GcError> {
        let request = http::Request::patch(node.path())
            .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
            .body(serde_json::to_vec(patch).unwrap_or_default())?;
        match self.client.request::<Value>(request).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods() -> &'static KindInfo {
        crate::api::registry::lookup("", "v1", "pods").expect("pods")
    }

    fn rs() -> &'static KindInfo {
        crate::api::registry::lookup("apps", "v1", "replicasets").expect("replicasets")
    }

    fn obj(uid: &str, owners: &[&str], finalizers: &[&str], deleting: bool) -> Value {
        let refs: Vec<Value> = owners
            .iter()
            .map(|o| json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": o, "uid": o, "blockOwnerDeletion": true}))
            .collect();
        let mut v = json!({"metadata": {"name": uid, "namespace": "default", "uid": uid,
            "resourceVersion": "1", "ownerReferences": refs, "finalizers": finalizers}});
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        v
    }

    fn upsert(g: &mut Graph, kind: &'static KindInfo, v: &Value) -> Vec<String> {
        let (uid, node) = Node::from(kind, v).expect("node");
        g.upsert(uid, node)
    }

    #[test]
    fn the_graph_queues_what_changes_call_for() {
        let mut g = Graph::default();
        assert!(upsert(&mut g, rs(), &obj("rs1", &[], &[], false)).is_empty());
        assert_eq!(
            upsert(&mut g, pods(), &obj("p1", &["rs1"], &[], false)),
            ["dependent:p1"]
        );
        // Unchanged owners: nothing to do.
        assert!(upsert(&mut g, pods(), &obj("p1", &["rs1"], &[], false)).is_empty());
        // The owner is deleted with foreground propagation.
        assert_eq!(
            upsert(
                &mut g,
                rs(),
                &obj("rs1", &[], &["foregroundDeletion"], true)
            ),
            ["foreground:rs1"]
        );
        // A dependent of a foreground owner going away wakes the owner.
        assert_eq!(g.remove("p1"), ["foreground:rs1"]);
        // Deleting an owner queues its dependents.
        upsert(&mut g, pods(), &obj("p2", &["rs2"], &[], false));
        assert_eq!(g.remove("rs2"), ["dependent:p2"]);
    }

    #[test]
    fn owner_references_resolve_to_served_kinds() {
        let owner = Owner {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            uid: "u".into(),
            controller: Some(true),
            block: Some(true),
        };
        assert_eq!(owner_kind(&owner).map(|k| k.plural), Some("deployments"));
        assert_eq!(
            object_path(rs(), Some("default"), "web-1"),
            "/apis/apps/v1/namespaces/default/replicasets/web-1"
        );
    }
}
