//! Lifecycle hooks and stopping a container as upstream's kubelet does it:
//! the postStart hook runs right after the start (a failure kills the
//! container), and a stop runs the preStop hook within the grace period,
//! then StopContainer with what is left of it (at least 2 s), which sends
//! SIGTERM and, when the time is up, SIGKILL.

use std::time::{Duration, Instant};

use k8s_cri::v1::StopContainerRequest;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, ObjectReference, Pod};

use super::handlers;
use crate::runtime::cri::Cri;

/// Upstream's floor for the time a container gets after its preStop hook.
const MIN_GRACE: Duration = Duration::from_secs(2);

/// An event reference to a container of `pod`.
pub fn container_ref(pod: &Pod, container: &str) -> ObjectReference {
    let spec = pod.spec.clone().unwrap_or_default();
    let list = if spec
        .init_containers
        .iter()
        .flatten()
        .any(|c| c.name == container)
    {
        "initContainers"
    } else {
        "containers"
    };
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: Some(format!("spec.{list}{{{container}}}")),
    }
}

/// Runs a hook handler against the container.
pub async fn run_hook(
    cri: &mut Cri,
    handler: &LifecycleHandler,
    container: &Container,
    id: &str,
    pod_ip: &str,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        handlers::exec(cri, id, &command, timeout).await.map(drop)
    } else if let Some(http) = &handler.http_get {
        handlers::http_get(http, container, pod_ip, timeout)
            .await
            .map(drop)
    } else if let Some(sleep) = &handler.sleep {
        let secs = u64::try_from(sleep.seconds).unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(secs).min(timeout)).await;
        Ok(())
    } else {
        Ok(())
    }
}

/// What a stop needs.
pub struct Stop<'a> {
    pub client: &'a kube::Client,
    pub pod: &'a Pod,
    pub pod_ip: &'a str,
    pub grace: Duration,
    /// The `Killing` event's message.
    pub message: String,
}

/// Runs the preStop hook (if any) and stops the container with the rest of
/// the grace period.
pub async fn stop(cri: &mut Cri, stop: Stop<'_>, container: Option<&Container>, id: &str) {
    let name = container.map(|c| c.name.clone()).unwrap_or_default();
    crate::events::record(
        stop.client,
        "kubelet",
        container_ref(stop.pod, &name),
        "Normal",
        "Killing",
        stop.message,
    )
    .await;
    let began = Instant::now();
    let pre_stop = container.and_then(|c| c.lifecycle.as_ref()?.pre_stop.as_ref());
    if let (Some(hook), Some(c)) = (pre_stop, container) {
        let ran = tokio::time::timeout(
            stop.grace,
            run_hook(cri, hook, c, id, stop.pod_ip, stop.grace),
        )
        .await;
        let failed = match ran {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!("PreStopHook timed out after {:?}", stop.grace)),
        };
        if let Some(message) = failed {
            crate::events::record(
                stop.client,
                "kubelet",
                container_ref(stop.pod, &name),
                "Warning",
                "FailedPreStopHook",
                format!("PreStopHook failed: {message}"),
            )
            .await;
        }
    }
    let left = stop.grace.saturating_sub(began.elapsed()).max(MIN_GRACE);
    if let Err(e) = cri
        .runtime
        .stop_container(StopContainerRequest {
            container_id: id.to_string(),
            timeout: left.as_secs() as i64,
        })
        .await
    {
        tracing::warn!(container = %name, error = %e.message(), "cannot stop a container");
    }
}

/// The grace period of a pod being deleted: its deletion grace, else its
/// spec's (30 s by default).
pub fn grace_of(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    #[test]
    fn the_deletion_grace_wins_over_the_spec() {
        let mut pod = Pod {
            spec: Some(PodSpec {
                termination_grace_period_seconds: Some(7),
                init_containers: Some(vec![Container {
                    name: "setup".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            metadata: ObjectMeta::default(),
            ..Default::default()
        };
        assert_eq!(grace_of(&pod), Duration::from_secs(7));
        pod.metadata.deletion_grace_period_seconds = Some(3);
        assert_eq!(grace_of(&pod), Duration::from_secs(3));
        assert_eq!(grace_of(&Pod::default()), Duration::from_secs(30));
        assert_eq!(
            container_ref(&pod, "setup").field_path.as_deref(),
            Some("spec.initContainers{setup}")
        );
        assert_eq!(
            container_ref(&pod, "main").field_path.as_deref(),
            Some("spec.containers{main}")
        );
    }
}
