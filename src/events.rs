//! Events the control plane records (core/v1 Event), as upstream's event
//! recorder would: `Scheduled` and `FailedScheduling` for the scheduler,
//! `SuccessfulCreate`/`ScalingReplicaSet` and friends for the controllers.
//! Recording an event is best effort: a failure is logged, never retried.
//!
//! As upstream's event correlator, an event identical to one recorded
//! before (same source, object, type, reason and message) is not created
//! again: the earlier Event's `count` goes up and its `lastTimestamp` moves
//! (`kubectl describe` shows "x3 over 2m"). The recorder remembers the last
//! [`REMEMBERED`] distinct events, as upstream's LRU cache does.

use std::collections::{HashMap, VecDeque};
use std::sync::{LazyLock, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use crate::scheduler::SCHEDULER_NAME;

/// How many distinct events the recorder remembers for counting repeats.
const REMEMBERED: usize = 4096;

/// Events recorded before, by what makes two events the same.
#[derive(Default)]
struct Seen {
    /// The stored Event (namespace, name) and its count.
    events: HashMap<String, (String, String, i32)>,
    /// Keys oldest first, for forgetting beyond [`REMEMBERED`].
    order: VecDeque<String>,
}

impl Seen {
    /// Counts one more occurrence of `key`: the Event to update and its
    /// new count, if it was recorded before.
    fn repeat(&mut self, key: &str) -> Option<(String, String, i32)> {
        let entry = self.events.get_mut(key)?;
        entry.2 = entry.2.saturating_add(1);
        Some(entry.clone())
    }

    fn remember(&mut self, key: String, namespace: String, name: String) {
        if self
            .events
            .insert(key.clone(), (namespace, name, 1))
            .is_none()
        {
            self.order.push_back(key);
        }
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.events.remove(&old);
            }
        }
    }

    fn forget(&mut self, key: &str) {
        self.events.remove(key);
        self.order.retain(|k| k != key);
    }
}

static SEEN: LazyLock<Mutex<Seen>> = LazyLock::new(Mutex::default);

fn seen() -> std::sync::MutexGuard<'static, Seen> {
    SEEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// What makes two events the same (upstream's `getEventKey`).
fn event_key(
    component: &str,
    object: &ObjectReference,
    type_: &str,
    reason: &str,
    message: &str,
) -> String {
    let field = |f: &Option<String>| f.clone().unwrap_or_default();
    [
        component.to_string(),
        field(&object.kind),
        field(&object.namespace),
        field(&object.name),
        field(&object.field_path),
        field(&object.uid),
        field(&object.api_version),
        type_.to_string(),
        reason.to_string(),
        message.to_string(),
    ]
    .join("\u{0}")
}

/// Records an event about `object` (a reference with kind, name, namespace, uid).
pub async fn record(
    client: &Client,
    component: &str,
    object: ObjectReference,
    type_: &str,
    reason: &str,
    message: String,
) {
    let namespace = object.namespace.clone().unwrap_or_else(|| "default".into());
    let now = Timestamp::now();
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    let key = event_key(component, &object, type_, reason, &message);
    let repeat = seen().repeat(&key);
    if let Some((ns, name, count)) = repeat {
        let events: Api<Event> = Api::namespaced(client.clone(), &ns);
        let patch = json!({"count": count, "lastTimestamp": Time(now)});
        match events
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return,
            // Gone (expired or deleted): record it afresh.
            Err(kube::Error::Api(e)) if e.code == 404 => seen().forget(&key),
            Err(e) => {
                tracing::debug!(reason, error = %e, "updating a repeated event failed");
                return;
            }
        }
    }
    let suffix = format!("{:x}", now.as_nanosecond() as u64 ^ rand::random::<u64>());
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{suffix}",
                object.name.clone().unwrap_or_default()
            )),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        involved_object: object,
        reason: Some(reason.into()),
        message: Some(message),
        type_: Some(type_.into()),
        source: Some(EventSource {
            component: Some(component.into()),
            host: None,
        }),
        reporting_component: Some(component.into()),
        reporting_instance: Some(component.into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Default::default()
    };
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    match events.create(&PostParams::default(), &event).await {
        Ok(created) => {
            let name = created.metadata.name.unwrap_or_default();
            seen().remember(key, namespace, name);
        }
        Err(e) => tracing::debug!(reason, error = %e, "recording an event failed"),
    }
}

/// A reference to an object for an event's `involvedObject`.
pub fn reference(api_version: &str, kind: &str, meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..Default::default()
    }
}

fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// `Scheduled`: `Successfully assigned ns/pod to node`.
pub async fn scheduled(client: &Client, pod: &Pod, node: &str) {
    let message = format!(
        "Successfully assigned {}/{} to {node}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    record(
        client,
        SCHEDULER_NAME,
        pod_ref(pod),
        "Normal",
        "Scheduled",
        message,
    )
    .await;
}

/// `FailedScheduling` with the fit error.
pub async fn failed_scheduling(client: &Client, pod: &Pod, message: &str) {
    record(
        client,
        SCHEDULER_NAME,
        pod_ref(pod),
        "Warning",
        "FailedScheduling",
        message.to_string(),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_and_old_events_forgotten() {
        let mut seen = Seen::default();
        assert_eq!(seen.repeat("a"), None);
        seen.remember("a".into(), "ns".into(), "e1".into());
        assert_eq!(seen.repeat("a"), Some(("ns".into(), "e1".into(), 2)));
        assert_eq!(seen.repeat("a"), Some(("ns".into(), "e1".into(), 3)));
        seen.forget("a");
        assert_eq!(seen.repeat("a"), None);
        for i in 0..=REMEMBERED {
            seen.remember(format!("k{i}"), "ns".into(), format!("e{i}"));
        }
        assert_eq!(seen.repeat("k0"), None, "the oldest is forgotten");
        assert!(seen.repeat(&format!("k{REMEMBERED}")).is_some());
        assert_eq!(seen.events.len(), REMEMBERED);
    }

    #[test]
    fn the_key_tells_objects_and_messages_apart() {
        let pod = |name: &str| ObjectReference {
            kind: Some("Pod".into()),
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        };
        let a = event_key("kubelet", &pod("a"), "Warning", "BackOff", "m");
        assert_eq!(
            a,
            event_key("kubelet", &pod("a"), "Warning", "BackOff", "m")
        );
        assert_ne!(
            a,
            event_key("kubelet", &pod("b"), "Warning", "BackOff", "m")
        );
        assert_ne!(
            a,
            event_key("kubelet", &pod("a"), "Warning", "BackOff", "n")
        );
    }
}
