//! Events the control plane records (core/v1 Event), as upstream's event
//! recorder would: `Scheduled` and `FailedScheduling` for the scheduler,
//! `SuccessfulCreate`/`ScalingReplicaSet` and friends for the controllers.
//! Recording an event is best effort: a failure is logged, never retried.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::scheduler::SCHEDULER_NAME;

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
    if let Err(e) = events.create(&PostParams::default(), &event).await {
        tracing::debug!(reason, error = %e, "recording an event failed");
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
