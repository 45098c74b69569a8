//! The end of a pod: its containers stopped gracefully (in parallel, each
//! with its preStop hook within the grace period), its sandboxes and
//! volumes removed, and its API object deleted.

use std::time::Duration;

use k8s_cri::v1::{
    ContainerFilter, ListContainersRequest, ListPodSandboxRequest, PodSandboxFilter,
    RemovePodSandboxRequest, StopPodSandboxRequest,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};

use super::Worker;
use crate::kubelet::pods::lifecycle::{self, Stop};
use crate::kubelet::pods::probes::Prober;
use crate::kubelet::pods::status::RUNNING;
use crate::kubelet::pods::{POD_UID_LABEL, volumes};
use crate::runtime::RuntimeError;
use crate::runtime::cri::call_error;

impl Worker {
    /// Stops every container (in parallel, each with its preStop hook and
    /// the grace period) and removes the pod's sandboxes.
    pub(super) async fn terminate(
        &mut self,
        pod: &Pod,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        let labels: std::collections::HashMap<String, String> =
            [(POD_UID_LABEL.to_string(), self.uid.clone())].into();
        let containers = self
            .cri
            .runtime
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    label_selector: labels.clone(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(|e| call_error("ListContainers", e))?
            .into_inner()
            .containers;
        let pod_ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let stops = containers
            .into_iter()
            .filter(|c| c.state == RUNNING)
            .map(|running| {
                let name = running
                    .metadata
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                let container = spec
                    .containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                    .find(|c| c.name == name)
                    .cloned();
                let mut cri = self.cri.clone();
                let client = self.client.clone();
                let pod_ip = pod_ip.clone();
                async move {
                    let stop = Stop {
                        client: &client,
                        pod,
                        pod_ip: &pod_ip,
                        grace,
                        message: format!("Stopping container {name}"),
                    };
                    lifecycle::stop(&mut cri, stop, container.as_ref(), &running.id).await;
                }
            });
        futures::future::join_all(stops).await;
        let sandboxes = self
            .cri
            .runtime
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(PodSandboxFilter {
                    label_selector: labels,
                    ..Default::default()
                }),
            })
            .await
            .map_err(|e| call_error("ListPodSandbox", e))?
            .into_inner()
            .items;
        for sandbox in sandboxes {
            self.cri
                .runtime
                .stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: sandbox.id.clone(),
                })
                .await
                .map_err(|e| call_error("StopPodSandbox", e))?;
            self.cri
                .runtime
                .remove_pod_sandbox(RemovePodSandboxRequest {
                    pod_sandbox_id: sandbox.id,
                })
                .await
                .map_err(|e| call_error("RemovePodSandbox", e))?;
        }
        Ok(())
    }

    /// Stops the pod's helpers and removes its volumes from the host.
    pub(super) fn release(&mut self) {
        for task in self.refreshers.drain(..) {
            task.abort();
        }
        self.prober = Prober::default();
        volumes::teardown(&self.settings.data_dir, &self.uid);
    }

    /// Deletes the stopped pod's object (grace 0, this uid only).
    pub(super) async fn delete(&self) {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(kube::api::Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        let pods: Api<Pod> = Api::namespaced(
            self.client.clone(),
            self.pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        if let Err(e) = pods
            .delete(
                self.pod.metadata.name.as_deref().unwrap_or_default(),
                &params,
            )
            .await
        {
            tracing::warn!(pod = %self.name(), error = %e, "cannot delete the stopped pod");
        }
    }
}
