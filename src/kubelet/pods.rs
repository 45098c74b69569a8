//! Pods bound to this node, first cut: a watch on the pods whose
//! `spec.nodeName` is this node starts each new pod (sandbox, images,
//! containers) and tears down each pod marked for deletion; a relist of the
//! runtime's containers every [`RELIST_EVERY`] (upstream's PLEG does the
//! same) notices exits and keeps the pods' status current.
//!
//! The runtime is the record of what runs: sandboxes and containers carry
//! the pod's uid as a label, so a restarted skiff finds its pods again.

pub mod cri_config;
pub mod projected;
pub mod status;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_cri::v1::{
    ContainerFilter, CreateContainerRequest, ImageSpec, ImageStatusRequest, ListContainersRequest,
    ListPodSandboxRequest, PodSandboxFilter, PodSandboxStatusRequest, PullImageRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::watcher::{self, Event};

use super::KubeletSettings;
use crate::runtime::RuntimeError;
use crate::runtime::cri::{Cri, call_error};

/// How often the runtime's containers are relisted for state changes.
const RELIST_EVERY: Duration = Duration::from_secs(2);
/// The label holding the pod uid on sandboxes and containers.
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";

/// A container that could not be started, and why (for its waiting state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// Runs the pods of this node until the process ends.
pub async fn run(client: kube::Client, cri: Cri, settings: KubeletSettings) {
    let field = format!("spec.nodeName={}", settings.node_name);
    let pods_api: Api<Pod> = Api::all(client);
    let mut events =
        watcher::watcher(pods_api.clone(), watcher::Config::default().fields(&field)).boxed();
    let mut worker = Worker {
        cri,
        pods_api,
        settings,
        pods: BTreeMap::new(),
        waiting: BTreeMap::new(),
        refreshers: BTreeMap::new(),
    };
    let mut relist = tokio::time::interval(RELIST_EVERY);
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => worker.sync(pod).await,
                Some(Ok(Event::Delete(pod))) => worker.forget(&pod).await,
                Some(Ok(Event::Init | Event::InitDone)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "pod watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                None => return,
            },
            _ = relist.tick() => worker.relist().await,
        }
    }
}

struct Worker {
    cri: Cri,
    pods_api: Api<Pod>,
    settings: KubeletSettings,
    /// The latest version of each pod of this node, by uid.
    pods: BTreeMap<String, Pod>,
    /// Containers that could not start, by pod uid and container name.
    waiting: BTreeMap<String, BTreeMap<String, Waiting>>,
    /// The tasks renewing each pod's service-account tokens, by pod uid.
    refreshers: BTreeMap<String, Vec<tokio::task::JoinHandle<()>>>,
}

impl Worker {
    async fn sync(&mut self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let name = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()
        );
        if pod.metadata.deletion_timestamp.is_some() {
            if let Err(e) = self.teardown(&pod, &uid).await {
                // Kept, so the next relist tries again.
                tracing::warn!(pod = %name, error = %e, "cannot stop the pod");
                self.pods.insert(uid, pod);
                return;
            }
            self.pods.remove(&uid);
            self.waiting.remove(&uid);
            self.release_volumes(&uid);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(kube::api::Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            let pods: Api<Pod> = Api::namespaced(
                self.pods_api.clone().into_client(),
                pod.metadata.namespace.as_deref().unwrap_or("default"),
            );
            if let Err(e) = pods
                .delete(pod.metadata.name.as_deref().unwrap_or_default(), &params)
                .await
            {
                tracing::warn!(pod = %name, error = %e, "cannot delete the stopped pod");
            }
            return;
        }
        self.pods.insert(uid.clone(), pod.clone());
        if is_finished(&pod) {
            return;
        }
        if self.sandbox_of(&uid).await.ok().flatten().is_none()
            && let Err(e) = self.start(&pod, &uid).await
        {
            tracing::warn!(pod = %name, error = %e, "cannot start the pod");
        }
        self.report(&uid).await;
    }

    /// A pod's object is gone: make sure nothing of it keeps running.
    async fn forget(&mut self, pod: &Pod) {
        if let Some(uid) = pod.metadata.uid.clone() {
            if let Err(e) = self.teardown(pod, &uid).await {
                tracing::warn!(error = %e, "cannot remove a deleted pod's sandbox");
            }
            self.pods.remove(&uid);
            self.waiting.remove(&uid);
            self.release_volumes(&uid);
        }
    }

    async fn relist(&mut self) {
        let uids: Vec<String> = self.pods.keys().cloned().collect();
        for uid in uids {
            match self.pods.get(&uid) {
                Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                    let pod = pod.clone();
                    self.sync(pod).await;
                }
                Some(_) => self.report(&uid).await,
                None => {}
            }
        }
    }

    /// The id of the pod's ready sandbox, if any.
    async fn sandbox_of(&mut self, uid: &str) -> Result<Option<String>, RuntimeError> {
        let filter = PodSandboxFilter {
            label_selector: [(POD_UID_LABEL.to_string(), uid.to_string())].into(),
            ..Default::default()
        };
        let items = self
            .cri
            .runtime
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await
            .map_err(|e| call_error("ListPodSandbox", e))?
            .into_inner()
            .items;
        Ok(items.into_iter().find(|s| s.state == 0).map(|s| s.id))
    }

    /// Stops renewing a gone pod's tokens and removes its volume files.
    fn release_volumes(&mut self, uid: &str) {
        for task in self.refreshers.remove(uid).unwrap_or_default() {
            task.abort();
        }
        let dir = projected::pod_dir(&self.settings.data_dir, uid);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %dir.display(), error = %e, "cannot remove a pod's volumes");
        }
    }

    async fn start(&mut self, pod: &Pod, uid: &str) -> Result<(), RuntimeError> {
        let client = self.pods_api.clone().into_client();
        let volumes = match projected::prepare(&client, pod, &self.settings.data_dir).await {
            Ok(v) => v,
            Err(e) => {
                // No sandbox yet: the next sync of the pod tries again.
                for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
                    self.note(
                        uid,
                        &c.name,
                        "ContainerCreating",
                        &format!("MountVolume.SetUp failed: {e}"),
                    );
                }
                return Ok(());
            }
        };
        for task in self.refreshers.remove(uid).unwrap_or_default() {
            task.abort();
        }
        let tasks = volumes
            .tokens
            .iter()
            .map(|(file, next)| {
                tokio::spawn(projected::keep_fresh(client.clone(), file.clone(), *next))
            })
            .collect();
        self.refreshers.insert(uid.to_string(), tasks);
        let sandbox_config = cri_config::sandbox(pod, &self.settings.data_dir);
        let _ = std::fs::create_dir_all(&sandbox_config.log_directory);
        let sandbox_id = self
            .cri
            .runtime
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(sandbox_config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .map_err(|e| call_error("RunPodSandbox", e))?
            .into_inner()
            .pod_sandbox_id;
        let containers = pod
            .spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        for container in &containers {
            let image = container.image.clone().unwrap_or_default();
            if let Some(waiting) = self
                .ensure_image(&image, container.image_pull_policy.as_deref())
                .await
            {
                self.waiting
                    .entry(uid.to_string())
                    .or_default()
                    .insert(container.name.clone(), waiting);
                continue;
            }
            let config = cri_config::container(pod, container, &volumes.dirs);
            let created = self
                .cri
                .runtime
                .create_container(CreateContainerRequest {
                    pod_sandbox_id: sandbox_id.clone(),
                    config: Some(config),
                    sandbox_config: Some(sandbox_config.clone()),
                })
                .await;
            let id = match created {
                Ok(reply) => reply.into_inner().container_id,
                Err(e) => {
                    self.note(uid, &container.name, "CreateContainerError", e.message());
                    continue;
                }
            };
            if let Err(e) = self
                .cri
                .runtime
                .start_container(StartContainerRequest { container_id: id })
                .await
            {
                self.note(uid, &container.name, "RunContainerError", e.message());
            }
        }
        Ok(())
    }

    fn note(&mut self, uid: &str, container: &str, reason: &str, message: &str) {
        self.waiting.entry(uid.to_string()).or_default().insert(
            container.to_string(),
            Waiting {
                reason: reason.to_string(),
                message: message.to_string(),
            },
        );
    }

    /// Makes sure `image` is present per the pull policy; `Some` says why
    /// the container must wait.
    async fn ensure_image(&mut self, image: &str, policy: Option<&str>) -> Option<Waiting> {
        let spec = ImageSpec {
            image: image.to_string(),
            ..Default::default()
        };
        let present = self
            .cri
            .images
            .image_status(ImageStatusRequest {
                image: Some(spec.clone()),
                verbose: false,
            })
            .await
            .map(|r| r.into_inner().image.is_some())
            .unwrap_or(false);
        let always = policy == Some("Always")
            || (policy.is_none()
                && (image.ends_with(":latest")
                    || !image.rsplit('/').next().unwrap_or(image).contains(':')));
        if present && !always {
            return None;
        }
        if policy == Some("Never") {
            return Some(Waiting {
                reason: "ErrImageNeverPull".to_string(),
                message: format!(
                    "Container image \"{image}\" is not present with pull policy of Never"
                ),
            });
        }
        match self
            .cri
            .images
            .pull_image(PullImageRequest {
                image: Some(spec),
                ..Default::default()
            })
            .await
        {
            Ok(_) => None,
            Err(_) if present => None,
            Err(e) => Some(Waiting {
                reason: "ErrImagePull".to_string(),
                message: e.message().to_string(),
            }),
        }
    }

    /// Stops the pod's containers (within its grace period) and removes its
    /// sandboxes.
    async fn teardown(&mut self, pod: &Pod, uid: &str) -> Result<(), RuntimeError> {
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        let labels: std::collections::HashMap<String, String> =
            [(POD_UID_LABEL.to_string(), uid.to_string())].into();
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
        for container in containers.into_iter().filter(|c| c.state == 1) {
            self.cri
                .runtime
                .stop_container(StopContainerRequest {
                    container_id: container.id,
                    timeout: grace,
                })
                .await
                .map_err(|e| call_error("StopContainer", e))?;
        }
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

    /// Writes the pod's status from the runtime's view, when it changed.
    async fn report(&mut self, uid: &str) {
        let Some(pod) = self.pods.get(uid).cloned() else {
            return;
        };
        let observed = match self.observe(uid).await {
            Ok(observed) => observed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the pod's state from the runtime");
                return;
            }
        };
        let waiting = self.waiting.get(uid).cloned().unwrap_or_default();
        let new = status::compute(&pod, &observed, &waiting, self.settings.node_ip);
        if pod.status.as_ref() == Some(&new) {
            return;
        }
        let pods: Api<Pod> = Api::namespaced(
            self.pods_api.clone().into_client(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let patch = serde_json::json!({ "status": new });
        match pods
            .patch_status(
                pod.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(updated) => {
                self.pods.insert(uid.to_string(), updated);
            }
            Err(e) => tracing::warn!(error = %e, "cannot write the pod status"),
        }
    }

    async fn observe(&mut self, uid: &str) -> Result<status::Observed, RuntimeError> {
        let mut observed = status::Observed::default();
        if let Some(sandbox_id) = self.sandbox_of(uid).await? {
            let sandbox = self
                .cri
                .runtime
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: sandbox_id,
                    verbose: false,
                })
                .await
                .map_err(|e| call_error("PodSandboxStatus", e))?
                .into_inner();
            observed.sandbox_ready = true;
            observed.pod_ip = sandbox
                .status
                .and_then(|s| s.network)
                .map(|n| n.ip)
                .filter(|ip| !ip.is_empty());
        }
        let containers = self
            .cri
            .runtime
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    label_selector: [(POD_UID_LABEL.to_string(), uid.to_string())].into(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(|e| call_error("ListContainers", e))?
            .into_inner()
            .containers;
        for container in containers {
            let reply = self
                .cri
                .runtime
                .container_status(k8s_cri::v1::ContainerStatusRequest {
                    container_id: container.id,
                    verbose: false,
                })
                .await
                .map_err(|e| call_error("ContainerStatus", e))?
                .into_inner();
            if let Some(s) = reply.status {
                let name = s
                    .metadata
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                observed.containers.insert(name, s);
            }
        }
        Ok(observed)
    }
}

/// Whether a pod reached a terminal phase (its containers are not restarted).
fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}
