//! The namespace controller, as upstream's: empties a Terminating namespace
//! and then lets it go.
//!
//! For a namespace with a deletionTimestamp that still carries the
//! `kubernetes` finalizer it finds every namespaced resource through the
//! API's discovery (so kinds added at run time count too), deletes each
//! resource's objects with DeleteCollection (pods on nodes are deleted
//! gracefully and finished by their kubelet), counts what remains, writes
//! upstream's deletion conditions to the namespace's status, and polls with
//! backoff until nothing is left. Then it removes `kubernetes` through
//! `namespaces/{name}/finalize`, and the API server removes the namespace
//! once no finalizer is left.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use kube::{Api, Client};

use super::Shared;
use crate::informer::Change;
use crate::workqueue::WorkQueue;

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";

/// The condition types upstream writes, in its order, with the reason and
/// message each has when all is well.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// The first and the longest wait before looking at a namespace again while
/// content remains.
const POLL_FIRST: Duration = Duration::from_millis(250);
const POLL_MAX: Duration = Duration::from_secs(10);

/// Why one pass over a namespace did not finish it.
#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("discovery failed: {0}")]
    Discovery(kube::Error),
    #[error("failed to delete all resource types, {0} remaining")]
    Content(usize),
}

/// What a pass found left in the namespace.
#[derive(Debug, Default, PartialEq)]
pub struct Remaining {
    /// `resource.group` → objects left.
    pub resources: BTreeMap<String, usize>,
    /// finalizer → objects carrying it.
    pub finalizers: BTreeMap<String, usize>,
}

impl Remaining {
    fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
}

/// Starts the controller on the shared Namespace informer.
pub fn start(client: Client, namespaces: Shared<Namespace>) {
    let queue = Arc::new(WorkQueue::new());
    let feed = queue.clone();
    let watched = namespaces.clone();
    tokio::spawn(async move {
        let mut changes = watched.subscribe();
        let enqueue = |ns: &Namespace| {
            if ns.metadata.deletion_timestamp.is_some() {
                feed.add(ns.metadata.name.clone().unwrap_or_default());
            }
        };
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(ns) => enqueue(&ns),
                Change::Deleted(_) => {}
                Change::Resync => watched.store().state().iter().for_each(|ns| enqueue(ns)),
            }
        }
    });
    let polls: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    tokio::spawn(async move {
        queue
            .process("namespace", |name| {
                let (client, queue, polls) = (client.clone(), queue.clone(), polls.clone());
                async move {
                    let done = sync(&client, &name).await?;
                    let mut polls = polls.lock().unwrap_or_else(|e| e.into_inner());
                    if done {
                        polls.remove(&name);
                    } else {
                        let n = polls.entry(name.clone()).or_insert(0);
                        let delay = poll_delay(*n);
                        *n = n.saturating_add(1);
                        queue.add_after(name, delay);
                    }
                    Ok::<(), NamespaceError>(())
                }
            })
            .await;
    });
}

/// The wait before the `n`th look (from 0) at a namespace with content left.
fn poll_delay(n: u32) -> Duration {
    POLL_FIRST
        .saturating_mul(1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX))
        .min(POLL_MAX)
}

/// One pass over namespace `name`; `Ok(true)` once there is nothing more
/// to do for it, `Ok(false)` while content remains.
async fn sync(client: &Client, name: &str) -> Result<bool, NamespaceError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let Some(ns) = api.get_opt(name).await? else {
        return Ok(true);
    };
    if ns.metadata.deletion_timestamp.is_none() || !has_finalizer(&ns) {
        return Ok(true);
    }
    let mut failures: Vec<(usize, String, String)> = Vec::new();
    let resources = match discover(client).await {
        Ok(r) => r,
        Err(e) => {
            let message = format!("Discovery failed for some groups, 1 failing: {e}");
            update_conditions(&api, &ns, &[(0, "DiscoveryFailed".into(), message)]).await?;
            return Err(NamespaceError::Discovery(e));
        }
    };
    let mut remaining = Remaining::default();
    let mut errors = Vec::new();
    for (resource, caps) in &resources {
        match empty_resource(client, name, resource, caps).await {
            Ok(left) => {
                if !left.is_empty() {
                    let key = format!("{}.{}", resource.plural, resource.group);
                    remaining.resources.insert(key, left.len());
                    for finalizers in left {
                        for f in finalizers {
                            *remaining.finalizers.entry(f).or_default() += 1;
                        }
                    }
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        failures.push((
            2,
            "ContentDeletionFailed".into(),
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                errors.len(),
                errors.join(", ")
            ),
        ));
    }
    failures.extend(remaining_conditions(&remaining));
    update_conditions(&api, &ns, &failures).await?;
    if !errors.is_empty() {
        return Err(NamespaceError::Content(errors.len()));
    }
    if !remaining.is_empty() {
        tracing::debug!(namespace = name, ?remaining, "namespace content remains");
        return Ok(false);
    }
    finalize(&api, name).await?;
    tracing::info!(namespace = name, "namespace emptied and finalized");
    Ok(true)
}

fn has_finalizer(ns: &Namespace) -> bool {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
}

/// Every namespaced resource that can be deleted, at its preferred version.
async fn discover(client: &Client) -> Result<Vec<(ApiResource, ApiCapabilities)>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    Ok(discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .filter(|(_, caps)| caps.scope == Scope::Namespaced && caps.supports_operation("delete"))
        .collect())
}

/// Deletes the objects of one resource in `namespace`; returns the
/// finalizers of each object still there.
async fn empty_resource(
    client: &Client,
    namespace: &str,
    resource: &ApiResource,
    caps: &ApiCapabilities,
) -> Result<Vec<Vec<String>>, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    if caps.supports_operation("deletecollection") {
        ignore_gone(
            api.delete_collection(&DeleteParams::background(), &ListParams::default())
                .await
                .map(drop),
        )?;
    } else {
        for obj in ignore_gone(api.list(&ListParams::default()).await.map(|l| l.items))?
            .unwrap_or_default()
        {
            if obj.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let name = obj.metadata.name.unwrap_or_default();
            ignore_gone(
                api.delete(&name, &DeleteParams::background())
                    .await
                    .map(drop),
            )?;
        }
    }
    let left = ignore_gone(api.list(&ListParams::default()).await.map(|l| l.items))?;
    Ok(left
        .unwrap_or_default()
        .into_iter()
        .map(|o| o.metadata.finalizers.unwrap_or_default())
        .collect())
}

/// A resource or object that is already gone is not an error.
fn ignore_gone<T>(result: Result<T, kube::Error>) -> Result<Option<T>, kube::Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => Ok(None),
        Err(e) => Err(e),
    }
}

/// The failing conditions (index into [`CONDITIONS`], reason, message) for
/// what is left, with upstream's messages.
pub fn remaining_conditions(remaining: &Remaining) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    if !remaining.resources.is_empty() {
        let parts: Vec<String> = remaining
            .resources
            .iter()
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        out.push((
            3,
            "SomeResourcesRemain".into(),
            format!("Some resources are remaining: {}", parts.join(", ")),
        ));
    }
    if !remaining.finalizers.is_empty() {
        let parts: Vec<String> = remaining
            .finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        out.push((
            4,
            "SomeFinalizersRemain".into(),
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                parts.join(", ")
            ),
        ));
    }
    out
}

/// The five deletion conditions: the failing ones as given, the others in
/// their "all is well" form; a condition whose status does not change
/// keeps its lastTransitionTime.
pub fn conditions(
    current: &[NamespaceCondition],
    failures: &[(usize, String, String)],
    now: Timestamp,
) -> Vec<NamespaceCondition> {
    let mut out: Vec<NamespaceCondition> = current
        .iter()
        .filter(|c| !CONDITIONS.iter().any(|(t, _, _)| *t == c.type_))
        .cloned()
        .collect();
    for (i, (type_, ok_reason, ok_message)) in CONDITIONS.iter().enumerate() {
        let failing = failures.iter().find(|(at, _, _)| *at == i);
        let (status, reason, message) = match failing {
            Some((_, reason, message)) => ("True", reason.as_str(), message.as_str()),
            None => ("False", *ok_reason, *ok_message),
        };
        let previous = current.iter().find(|c| c.type_ == *type_);
        let since = previous
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(NamespaceCondition {
            type_: type_.to_string(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(since),
        });
    }
    out
}

async fn update_conditions(
    api: &Api<Namespace>,
    ns: &Namespace,
    failures: &[(usize, String, String)],
) -> Result<(), kube::Error> {
    let current = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = Timestamp::now();
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let wanted = conditions(&current, failures, now);
    if wanted == current {
        return Ok(());
    }
    let mut updated = ns.clone();
    let status = updated.status.get_or_insert_with(NamespaceStatus::default);
    status.conditions = Some(wanted);
    let name = ns.metadata.name.clone().unwrap_or_default();
    match api
        .replace_status(&name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        // The namespace changed or went meanwhile: the next pass sees it.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes this controller's finalizer through `namespaces/{name}/finalize`.
async fn finalize(api: &Api<Namespace>, name: &str) -> Result<(), kube::Error> {
    let Some(mut ns) = api.get_opt(name).await? else {
        return Ok(());
    };
    if let Some(spec) = ns.spec.as_mut() {
        if let Some(f) = spec.finalizers.as_mut() {
            f.retain(|f| f != FINALIZER);
        }
    }
    match api
        .replace_subresource::<Namespace>("finalize", name, &PostParams::default(), &ns)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn remaining_content_reads_as_upstream() {
        let mut left = Remaining::default();
        left.resources.insert("pods.".into(), 2);
        left.resources.insert("widgets.example.com".into(), 1);
        left.finalizers.insert("example.com/hold".into(), 1);
        let failures = remaining_conditions(&left);
        assert_eq!(
            failures,
            vec![
                (
                    3,
                    "SomeResourcesRemain".to_string(),
                    "Some resources are remaining: pods. has 2 resource instances, widgets.example.com has 1 resource instances".to_string()
                ),
                (
                    4,
                    "SomeFinalizersRemain".to_string(),
                    "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances".to_string()
                ),
            ]
        );
        let first = conditions(&[], &failures, at("2026-01-01T00:00:00Z"));
        let kinds: Vec<(&str, &str)> = first
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("NamespaceDeletionDiscoveryFailure", "False"),
                ("NamespaceDeletionGroupVersionParsingFailure", "False"),
                ("NamespaceDeletionContentFailure", "False"),
                ("NamespaceContentRemaining", "True"),
                ("NamespaceFinalizersRemaining", "True"),
            ]
        );
        // Later, everything is gone: the changed conditions get a new
        // transition time, the unchanged keep theirs.
        let later = conditions(&first, &[], at("2026-01-01T00:01:00Z"));
        assert_eq!(
            later[0].last_transition_time,
            Some(Time(at("2026-01-01T00:00:00Z")))
        );
        assert_eq!(
            later[3].last_transition_time,
            Some(Time(at("2026-01-01T00:01:00Z")))
        );
        assert_eq!(later[3].reason.as_deref(), Some("ContentRemoved"));
        assert_eq!(conditions(&later, &[], at("2026-01-01T00:02:00Z")), later);
    }

    #[test]
    fn polling_backs_off_to_a_bound() {
        assert_eq!(poll_delay(0), POLL_FIRST);
        assert_eq!(poll_delay(1), POLL_FIRST * 2);
        assert_eq!(poll_delay(30), POLL_MAX);
    }
}
