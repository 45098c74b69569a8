//! ControllerRevisions, the history of a StatefulSet's or DaemonSet's pod
//! template, as upstream's `controller/history` keeps it: each revision
//! holds a strategic merge patch that puts one template back
//! (`{"spec":{"template":{..., "$patch":"replace"}}}`, what `kubectl rollout
//! undo` applies), a `revision` number, the owner's template labels and a
//! hash label, and is named `<owner>-<hash>`.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

use super::{Shared, controller_of};

/// The label holding a StatefulSet revision's hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";
/// The pod label naming the revision a pod was made from (the revision's
/// name for StatefulSets, its hash for DaemonSets).
pub const POD_REVISION_LABEL: &str = "controller-revision-hash";

/// The alphabet upstream's `rand.SafeEncodeString` maps digits into.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The patch a revision stores for `template`.
pub fn template_patch(template: &PodTemplateSpec) -> Result<Value, serde_json::Error> {
    let mut template = serde_json::to_value(template)?;
    if let Some(t) = template.as_object_mut() {
        t.insert("$patch".into(), "replace".into());
    }
    Ok(json!({"spec": {"template": template}}))
}

/// The pod template a revision's patch puts back.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision
        .data
        .as_ref()?
        .0
        .get("spec")?
        .get("template")?
        .clone();
    template.as_object_mut()?.remove("$patch");
    serde_json::from_value(template).ok()
}

/// Upstream's `HashControllerRevision`: FNV-1 (32 bit) of the data's JSON,
/// then of the collision count in decimal, in the safe alphabet.
pub fn hash(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = data.to_string().into_bytes();
    if let Some(n) = collision_count {
        bytes.extend_from_slice(n.to_string().as_bytes());
    }
    safe_encode(&fnv1(&bytes).to_string())
}

/// FNV-1, 32 bit (Go's `fnv.New32`: multiply, then xor).
fn fnv1(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, b| {
        h.wrapping_mul(0x0100_0193) ^ u32::from(*b)
    })
}

/// Upstream's `rand.SafeEncodeString`.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// `<prefix>-<hash>`, the prefix cut to 223 bytes so the name fits 253.
pub fn revision_name(prefix: &str, hash: &str) -> String {
    let mut end = prefix.len().min(223);
    while !prefix.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}-{hash}", &prefix[..end])
}

/// The revisions controlled by the owner `uid` in `namespace`, oldest
/// revision first (ties by creation, then name).
pub fn owned(
    revisions: &Shared<ControllerRevision>,
    namespace: &str,
    uid: &str,
) -> Vec<Arc<ControllerRevision>> {
    let mut owned: Vec<Arc<ControllerRevision>> = revisions
        .store()
        .state()
        .into_iter()
        .filter(|r| r.metadata.namespace.as_deref() == Some(namespace))
        .filter(|r| {
            controller_of(r.metadata.owner_references.as_ref()).is_some_and(|o| o.uid == uid)
        })
        .collect();
    owned.sort_by(|a, b| {
        (a.revision, &a.metadata.creation_timestamp, &a.metadata.name).cmp(&(
            b.revision,
            &b.metadata.creation_timestamp,
            &b.metadata.name,
        ))
    });
    owned
}

/// Whether `revision` holds exactly `data`.
pub fn holds(revision: &ControllerRevision, data: &Value) -> bool {
    revision.data.as_ref().is_some_and(|d| &d.0 == data)
}

/// The number a new revision gets: one past the highest.
pub fn next_number(revisions: &[Arc<ControllerRevision>]) -> i64 {
    revisions.iter().map(|r| r.revision).max().unwrap_or(0) + 1
}

/// What creating a revision came to.
pub enum Created {
    /// The revision exists with our data (made now or before).
    Done(Box<ControllerRevision>),
    /// Another revision with different data has the name: bump the
    /// collision count and try again.
    Collision,
}

/// Creates `revision`; an existing one of the same name counts as ours
/// when it holds the same data.
pub async fn create(
    api: &Api<ControllerRevision>,
    revision: &ControllerRevision,
) -> Result<Created, kube::Error> {
    match api.create(&PostParams::default(), revision).await {
        Ok(r) => Ok(Created::Done(Box::new(r))),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let name = revision.metadata.name.as_deref().unwrap_or_default();
            let existing = api.get(name).await?;
            let data = revision.data.as_ref().map(|d| &d.0);
            if existing.data.as_ref().map(|d| &d.0) == data {
                Ok(Created::Done(Box::new(existing)))
            } else {
                Ok(Created::Collision)
            }
        }
        Err(e) => Err(e),
    }
}

/// Gives an existing revision a new number (a rollback to it makes it the
/// newest again).
pub async fn renumber(
    api: &Api<ControllerRevision>,
    revision: &ControllerRevision,
    number: i64,
) -> Result<ControllerRevision, kube::Error> {
    let mut updated = revision.clone();
    updated.revision = number;
    let name = revision.metadata.name.as_deref().unwrap_or_default();
    api.replace(name, &PostParams::default(), &updated).await
}

/// A revision object (not yet created) owned by `owner`.
pub fn new_revision(
    owner: k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    namespace: &str,
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    annotations: Option<std::collections::BTreeMap<String, String>>,
    data: Value,
    number: i64,
) -> ControllerRevision {
    ControllerRevision {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision: number,
    }
}

/// The names of the revisions (given oldest first) to delete: the oldest
/// ones that are not `live`, beyond `limit` of them.
fn to_prune(
    revisions: &[Arc<ControllerRevision>],
    limit: i32,
    live: &HashSet<String>,
) -> Vec<String> {
    let idle: Vec<String> = revisions
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .filter(|n| !live.contains(n))
        .collect();
    let excess = idle
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(0));
    idle.into_iter().take(excess).collect()
}

/// Deletes the oldest revisions beyond `limit`, never one in `live` (the
/// current and update revisions, or ones pods still run).
pub async fn prune(
    api: &Api<ControllerRevision>,
    revisions: &[Arc<ControllerRevision>],
    limit: i32,
    live: &HashSet<String>,
) {
    for name in to_prune(revisions, limit, live) {
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => tracing::debug!(revision = %name, error = %e, "pruning a revision failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_replaces_the_template_and_gives_it_back() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]},
        }))
        .expect("template");
        let patch = template_patch(&template).expect("patch");
        assert_eq!(patch["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            patch["spec"]["template"]["spec"]["containers"][0]["image"],
            "busybox:1"
        );
        let revision = ControllerRevision {
            data: Some(RawExtension(patch)),
            ..Default::default()
        };
        assert_eq!(template_of(&revision), Some(template));
    }

    #[test]
    fn hashes_are_fnv1_in_the_safe_alphabet_and_move_with_the_collision_count() {
        let data = json!({"spec": {"template": {"$patch": "replace"}}});
        let h = hash(&data, None);
        assert!(!h.is_empty());
        assert!(h.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
        assert_eq!(h, hash(&data, None), "stable");
        assert_ne!(h, hash(&data, Some(1)));
        assert_ne!(h, hash(&json!({"spec": {}}), None));
        // The published FNV-1 test vectors.
        assert_eq!(fnv1(b""), 0x811c_9dc5);
        assert_eq!(fnv1(b"a"), 0x050c_5d7e);
        assert_eq!(fnv1(b"foobar"), 0x31f0_b262);
        assert_eq!(safe_encode("84696446"), "d8bfb88b");
    }

    #[test]
    fn pruning_keeps_the_newest_and_the_live_revisions() {
        let revisions: Vec<Arc<ControllerRevision>> = (1..=5)
            .map(|n| {
                let mut r = ControllerRevision::default();
                r.metadata.name = Some(format!("web-{n}"));
                r.revision = n;
                Arc::new(r)
            })
            .collect();
        let live = HashSet::from(["web-1".to_string(), "web-5".to_string()]);
        assert_eq!(to_prune(&revisions, 1, &live), ["web-2", "web-3"]);
        assert_eq!(to_prune(&revisions, 0, &live), ["web-2", "web-3", "web-4"]);
        assert!(to_prune(&revisions, 10, &live).is_empty());
    }

    #[test]
    fn names_are_owner_dash_hash_within_253_bytes() {
        assert_eq!(revision_name("web", "abc"), "web-abc");
        let long = "x".repeat(300);
        assert_eq!(revision_name(&long, "h").len(), 225);
    }
}
