//! The PersistentVolume binder, as upstream's persistentvolume-controller
//! without provisioning: it binds Pending claims to pre-provisioned
//! Available volumes and keeps both sides' phases.
//!
//! * A claim without `spec.volumeName` gets the smallest Available volume
//!   that fits: same storage class (`""` included), the claim's access
//!   modes a subset of the volume's, capacity at least the request, the
//!   claim's selector, the same volumeMode. A volume whose `claimRef`
//!   names the claim (pre-bound by a user) is taken first.
//! * A claim with `spec.volumeName` (pre-bound by a user) binds to that
//!   volume if it is free and fits, and waits otherwise.
//! * Binding sets the volume's `claimRef` (annotation
//!   `pv.kubernetes.io/bound-by-controller` when the controller chose it),
//!   then the claim's `volumeName` with `pv.kubernetes.io/bind-completed`
//!   (and `bound-by-controller`), then phases Bound on both sides, the
//!   claim's status carrying the volume's capacity and access modes.
//! * A bound claim whose volume is gone or bound elsewhere is `Lost`.
//! * A volume whose claim is gone is `Released`, then reclaimed by its
//!   policy: `Retain` keeps it Released, `Delete` deletes the
//!   PersistentVolume object (there is no storage plugin to delete data),
//!   `Recycle` (deprecated upstream) is refused: the volume turns `Failed`.
//!
//! Claims of a StorageClass with `volumeBindingMode: WaitForFirstConsumer`
//! are left to the scheduler; nothing here provisions volumes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus,
    PersistentVolumeStatus,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::{Api, Client};

use super::Shared;
use crate::api::kinds::quantity::Quantity;
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};

/// The name events carry, as upstream's.
const COMPONENT: &str = "persistentvolume-controller";
/// On a claim: the binding is complete.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// On a claim or volume: the controller, not a user, chose the binding.
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The beta annotation that still overrides `storageClassName`.
const BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

struct Binder {
    client: Client,
    volumes: Shared<PersistentVolume>,
    claims: Shared<PersistentVolumeClaim>,
    classes: Shared<StorageClass>,
    /// The last warning recorded per claim uid, so a claim that keeps
    /// waiting for the same reason gets one event, not one per sync.
    warned: Mutex<HashMap<String, String>>,
}

/// Starts the binder on the shared volume, claim and class informers.
pub fn start(
    client: Client,
    volumes: Shared<PersistentVolume>,
    claims: Shared<PersistentVolumeClaim>,
    classes: Shared<StorageClass>,
) {
    let binder = Arc::new(Binder {
        client,
        volumes,
        claims,
        classes,
        warned: Mutex::default(),
    });
    let queue = Arc::new(WorkQueue::new());
    {
        let (b, q) = (binder.clone(), queue.clone());
        tokio::spawn(async move {
            let mut changes = b.volumes.subscribe();
            while let Some(change) = changes.next().await {
                match change {
                    Change::Applied(pv) | Change::Deleted(pv) => {
                        enqueue_volume(&q, &pv);
                        // A volume that changed may fit a waiting claim.
                        for pvc in b.claims.store().state() {
                            let waiting = pvc.spec.as_ref().is_none_or(|s| s.volume_name.is_none())
                                || claim_ref_names(&pv, &pvc);
                            if waiting {
                                enqueue_claim(&q, &pvc);
                            }
                        }
                    }
                    Change::Resync => b
                        .volumes
                        .store()
                        .state()
                        .iter()
                        .for_each(|pv| enqueue_volume(&q, pv)),
                }
            }
        });
    }
    {
        let (b, q) = (binder.clone(), queue.clone());
        tokio::spawn(async move {
            let mut changes = b.claims.subscribe();
            while let Some(change) = changes.next().await {
                match change {
                    Change::Applied(pvc) | Change::Deleted(pvc) => {
                        enqueue_claim(&q, &pvc);
                        // Volumes bound to a deleted claim are released.
                        for pv in b.volumes.store().state() {
                            if claim_ref_names(&pv, &pvc) {
                                enqueue_volume(&q, &pv);
                            }
                        }
                    }
                    Change::Resync => b
                        .claims
                        .store()
                        .state()
                        .iter()
                        .for_each(|c| enqueue_claim(&q, c)),
                }
            }
        });
    }
    tokio::spawn(async move {
        queue
            .process("persistent volume binding", |key| {
                let b = binder.clone();
                async move { b.sync(&key).await }
            })
            .await;
    });
}

fn enqueue_volume(queue: &WorkQueue, pv: &PersistentVolume) {
    queue.add(format!(
        "pv/{}",
        pv.metadata.name.as_deref().unwrap_or_default()
    ));
}

fn enqueue_claim(queue: &WorkQueue, pvc: &PersistentVolumeClaim) {
    queue.add(format!(
        "pvc/{}",
        workqueue::key(
            pvc.metadata.namespace.as_deref().unwrap_or_default(),
            pvc.metadata.name.as_deref().unwrap_or_default()
        )
    ));
}

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn set_annotation(
    meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) {
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(key.into(), "yes".into());
}

/// The claim's storage class (the beta annotation wins, as upstream).
pub fn claim_class(pvc: &PersistentVolumeClaim) -> &str {
    annotation(&pvc.metadata, BETA_CLASS)
        .or_else(|| pvc.spec.as_ref()?.storage_class_name.as_deref())
        .unwrap_or_default()
}

/// The volume's storage class (the beta annotation wins, as upstream).
pub fn volume_class(pv: &PersistentVolume) -> &str {
    annotation(&pv.metadata, BETA_CLASS)
        .or_else(|| pv.spec.as_ref()?.storage_class_name.as_deref())
        .unwrap_or_default()
}

/// Whether the volume's claimRef names this claim (by uid when it has one).
fn claim_ref_names(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.name == pvc.metadata.name
        && r.namespace == pvc.metadata.namespace
        && r.uid
            .as_deref()
            .is_none_or(|u| u.is_empty() || Some(u) == pvc.metadata.uid.as_deref())
}

fn phase_of_volume(pv: &PersistentVolume) -> &str {
    pv.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn storage(
    list: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
) -> Option<Quantity> {
    Quantity::parse(&list?.get("storage")?.0).ok()
}

/// Why `pv` cannot serve `pvc`, in upstream's words (`None`: it fits).
/// Capacity, class, volume mode and access modes are checked; the selector
/// and the volume's phase only when the controller picks a volume.
pub fn mismatch(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> Option<&'static str> {
    let (Some(cs), Some(vs)) = (pvc.spec.as_ref(), pv.spec.as_ref()) else {
        return Some("requested PV is too small");
    };
    let wanted = storage(cs.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let has = storage(vs.capacity.as_ref());
    match (wanted, has) {
        (Some(w), Some(h)) if h >= w => {}
        _ => return Some("requested PV is too small"),
    }
    if claim_class(pvc) != volume_class(pv) {
        return Some("storageClassName does not match");
    }
    let mode = |m: Option<&String>| m.map(String::as_str).unwrap_or("Filesystem").to_string();
    if mode(cs.volume_mode.as_ref()) != mode(vs.volume_mode.as_ref()) {
        return Some("incompatible volumeMode");
    }
    let offered = vs.access_modes.clone().unwrap_or_default();
    if !cs
        .access_modes
        .iter()
        .flatten()
        .all(|m| offered.contains(m))
    {
        return Some("incompatible accessMode");
    }
    None
}

fn selector_matches(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
    let Some(selector) = pvc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return true;
    };
    let (Ok(sel), labels) = (
        serde_json::to_value(selector),
        pv.metadata
            .labels
            .as_ref()
            .and_then(|l| serde_json::to_value(l).ok()),
    ) else {
        return false;
    };
    crate::api::kinds::labelselector::matches(&sel, labels.as_ref())
}

/// The volume the controller binds `pvc` to: one pre-bound to it by a
/// user if that fits, else the smallest Available, unclaimed volume that
/// fits and matches the claim's selector.
pub fn best_match(
    pvc: &PersistentVolumeClaim,
    volumes: &[Arc<PersistentVolume>],
) -> Option<Arc<PersistentVolume>> {
    let mut candidates: Vec<&Arc<PersistentVolume>> = volumes
        .iter()
        .filter(|pv| pv.metadata.deletion_timestamp.is_none() && mismatch(pvc, pv).is_none())
        .collect();
    candidates.sort_by_key(|pv| {
        (
            storage(pv.spec.as_ref().and_then(|s| s.capacity.as_ref())),
            pv.metadata.name.clone(),
        )
    });
    if let Some(pre) = candidates.iter().find(|pv| claim_ref_names(pv, pvc)) {
        return Some(Arc::clone(pre));
    }
    candidates
        .into_iter()
        .find(|pv| {
            pv.spec.as_ref().is_none_or(|s| s.claim_ref.is_none())
                && phase_of_volume(pv) == "Available"
                && selector_matches(pvc, pv)
        })
        .cloned()
}

impl Binder {
    async fn sync(&self, key: &str) -> Result<(), kube::Error> {
        match key.split_once('/') {
            Some(("pv", name)) => match self.volumes.get("", name) {
                Some(pv) => self.sync_volume(&pv).await,
                None => Ok(()),
            },
            Some(("pvc", rest)) => {
                let (ns, name) = workqueue::split(rest);
                match self.claims.get(ns, name) {
                    Some(pvc) => self.sync_claim(&pvc).await,
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn volume_api(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    fn claim_api(&self, pvc: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
        Api::namespaced(
            self.client.clone(),
            pvc.metadata.namespace.as_deref().unwrap_or_default(),
        )
    }

    async fn sync_claim(&self, pvc: &PersistentVolumeClaim) -> Result<(), kube::Error> {
        if pvc.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let volume_name = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .unwrap_or_default();
        if annotation(&pvc.metadata, BIND_COMPLETED).is_some() {
            return self.sync_bound_claim(pvc, &volume_name).await;
        }
        if volume_name.is_empty() {
            let volumes = self.volumes.store().state();
            return match best_match(pvc, &volumes) {
                Some(pv) => self.bind(pvc, &pv, true).await,
                None => self.wait_for_volume(pvc).await,
            };
        }
        // Pre-bound by a user to a named volume.
        let Some(pv) = self.volumes.get("", &volume_name) else {
            return self.set_claim_phase(pvc, "Pending", None).await;
        };
        let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        if claim_ref.is_some() && !claim_ref_names(&pv, pvc) {
            self.warn(
                pvc,
                "FailedBinding",
                format!("volume \"{volume_name}\" already bound to a different claim."),
            )
            .await;
            return self.set_claim_phase(pvc, "Pending", None).await;
        }
        if let Some(why) = mismatch(pvc, &pv) {
            self.warn(
                pvc,
                "FailedBinding",
                format!("Cannot bind to requested volume \"{volume_name}\": {why}"),
            )
            .await;
            return self.set_claim_phase(pvc, "Pending", None).await;
        }
        self.bind(pvc, &pv, false).await
    }

    async fn sync_bound_claim(
        &self,
        pvc: &PersistentVolumeClaim,
        volume_name: &str,
    ) -> Result<(), kube::Error> {
        if volume_name.is_empty() {
            self.warn(
                pvc,
                "ClaimLost",
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"
                    .into(),
            )
            .await;
            return self.set_claim_phase(pvc, "Lost", None).await;
        }
        let pv = match self.volumes.get("", volume_name) {
            Some(pv) => pv,
            None => {
                match self.volume_api().get_opt(volume_name).await? {
                    Some(pv) => Arc::new(pv),
                    None => {
                        self.warn(pvc, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!".into())
                        .await;
                        return self.set_claim_phase(pvc, "Lost", None).await;
                    }
                }
            }
        };
        let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        match claim_ref {
            None => {
                self.bind(
                    pvc,
                    &pv,
                    annotation(&pvc.metadata, BOUND_BY_CONTROLLER).is_some(),
                )
                .await
            }
            Some(_) if claim_ref_names(&pv, pvc) => self.bind(pvc, &pv, false).await,
            Some(_) => {
                self.warn(
                    pvc,
                    "ClaimMisbound",
                    "Two claims are bound to the same volume, this one is bound incorrectly".into(),
                )
                .await;
                self.set_claim_phase(pvc, "Lost", None).await
            }
        }
    }

    /// No volume fits: say why, as upstream, and stay Pending.
    async fn wait_for_volume(&self, pvc: &PersistentVolumeClaim) -> Result<(), kube::Error> {
        let class = claim_class(pvc);
        let (reason, message) = if class.is_empty() {
            (
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set"
                    .to_string(),
            )
        } else {
            match self.classes.get("", class) {
                None => (
                    "ProvisioningFailed",
                    format!("storageclass.storage.k8s.io \"{class}\" not found"),
                ),
                Some(sc) if sc.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer") => (
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding".to_string(),
                ),
                Some(sc) => (
                    "ExternalProvisioning",
                    format!(
                        "Waiting for a volume to be created either by the external provisioner '{}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
                        sc.provisioner
                    ),
                ),
            }
        };
        let type_ = if reason == "FailedBinding" || reason == "ProvisioningFailed" {
            "Warning"
        } else {
            "Normal"
        };
        self.event(pvc, type_, reason, message).await;
        self.set_claim_phase(pvc, "Pending", None).await
    }

    /// Binds both ways: the volume's claimRef and phase, then the claim's
    /// volumeName, annotations and status. Each step is skipped when done.
    async fn bind(
        &self,
        pvc: &PersistentVolumeClaim,
        pv: &PersistentVolume,
        by_controller: bool,
    ) -> Result<(), kube::Error> {
        let pv_name = pv.metadata.name.clone().unwrap_or_default();
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            name: pvc.metadata.name.clone(),
            namespace: pvc.metadata.namespace.clone(),
            uid: pvc.metadata.uid.clone(),
            resource_version: pvc.metadata.resource_version.clone(),
            ..Default::default()
        };
        let mut volume = pv.clone();
        let current = volume.spec.as_ref().and_then(|s| s.claim_ref.clone());
        let needs_ref = current
            .as_ref()
            .is_none_or(|r| r.uid.as_deref().is_none_or(str::is_empty));
        if needs_ref {
            let spec = volume.spec.get_or_insert_with(Default::default);
            spec.claim_ref = Some(reference);
            if current.is_none() {
                set_annotation(&mut volume.metadata, BOUND_BY_CONTROLLER);
            }
            volume = self
                .volume_api()
                .replace(&pv_name, &PostParams::default(), &volume)
                .await?;
        }
        if phase_of_volume(&volume) != "Bound" {
            volume
                .status
                .get_or_insert_with(PersistentVolumeStatus::default)
                .phase = Some("Bound".into());
            volume = self
                .volume_api()
                .replace_status(&pv_name, &PostParams::default(), &volume)
                .await?;
        }
        let mut claim = pvc.clone();
        let claim_name = claim.metadata.name.clone().unwrap_or_default();
        let has_volume =
            claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == Some(pv_name.as_str());
        if !has_volume || annotation(&claim.metadata, BIND_COMPLETED).is_none() {
            claim.spec.get_or_insert_with(Default::default).volume_name = Some(pv_name.clone());
            set_annotation(&mut claim.metadata, BIND_COMPLETED);
            if by_controller {
                set_annotation(&mut claim.metadata, BOUND_BY_CONTROLLER);
            }
            claim = self
                .claim_api(pvc)
                .replace(&claim_name, &PostParams::default(), &claim)
                .await?;
        }
        self.set_claim_phase(&claim, "Bound", Some(&volume)).await?;
        self.forget(pvc);
        Ok(())
    }

    /// Sets a claim's phase (with the volume's capacity and access modes
    /// when Bound) unless it already reads so.
    async fn set_claim_phase(
        &self,
        pvc: &PersistentVolumeClaim,
        phase: &str,
        pv: Option<&PersistentVolume>,
    ) -> Result<(), kube::Error> {
        let mut status = pvc.status.clone().unwrap_or_default();
        status.phase = Some(phase.into());
        match pv.and_then(|pv| pv.spec.as_ref()) {
            Some(spec) => {
                status.capacity = spec.capacity.clone();
                status.access_modes = spec.access_modes.clone();
            }
            None if phase == "Pending" => {
                status.capacity = None;
                status.access_modes = None;
            }
            None => {}
        }
        if pvc.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let mut claim = pvc.clone();
        claim.status = Some(PersistentVolumeClaimStatus { ..status });
        let name = pvc.metadata.name.clone().unwrap_or_default();
        self.claim_api(pvc)
            .replace_status(&name, &PostParams::default(), &claim)
            .await?;
        Ok(())
    }

    async fn set_volume_phase(
        &self,
        pv: &PersistentVolume,
        phase: &str,
        message: Option<&str>,
    ) -> Result<(), kube::Error> {
        let status = pv.status.clone().unwrap_or_default();
        if status.phase.as_deref() == Some(phase) && status.message.as_deref() == message {
            return Ok(());
        }
        let mut volume = pv.clone();
        let status = volume
            .status
            .get_or_insert_with(PersistentVolumeStatus::default);
        status.phase = Some(phase.into());
        status.message = message.map(String::from);
        let name = pv.metadata.name.clone().unwrap_or_default();
        self.volume_api()
            .replace_status(&name, &PostParams::default(), &volume)
            .await?;
        Ok(())
    }

    async fn sync_volume(&self, pv: &PersistentVolume) -> Result<(), kube::Error> {
        if pv.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let Some(claim_ref) = pv.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
            return self.set_volume_phase(pv, "Available", None).await;
        };
        if claim_ref.uid.as_deref().is_none_or(str::is_empty) {
            // Pre-bound by a user to a claim by name: waiting for it.
            return self.set_volume_phase(pv, "Available", None).await;
        }
        let ns = claim_ref.namespace.clone().unwrap_or_default();
        let name = claim_ref.name.clone().unwrap_or_default();
        let mut claim = self.claims.get(&ns, &name);
        if claim.is_none() {
            // The informer may lag: only a claim the API says is gone counts.
            let api: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), &ns);
            claim = api.get_opt(&name).await?.map(Arc::new);
        }
        let claim = claim.filter(|c| c.metadata.uid == claim_ref.uid);
        let Some(claim) = claim else {
            return self.reclaim(pv).await;
        };
        let bound_to = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .unwrap_or_default();
        if bound_to.is_empty() || Some(bound_to) == pv.metadata.name.as_deref() {
            // Bound, or the claim's side of the binding is still to come.
            if !bound_to.is_empty() {
                return self.set_volume_phase(pv, "Bound", None).await;
            }
            return Ok(());
        }
        if annotation(&pv.metadata, BOUND_BY_CONTROLLER).is_some() {
            // The claim went to another volume: this one is free again.
            let mut volume = pv.clone();
            if let Some(spec) = volume.spec.as_mut() {
                spec.claim_ref = None;
            }
            if let Some(a) = volume.metadata.annotations.as_mut() {
                a.remove(BOUND_BY_CONTROLLER);
            }
            let name = pv.metadata.name.clone().unwrap_or_default();
            let volume = self
                .volume_api()
                .replace(&name, &PostParams::default(), &volume)
                .await?;
            return self.set_volume_phase(&volume, "Available", None).await;
        }
        Ok(())
    }

    /// The volume's claim is gone: Released, then its reclaim policy.
    async fn reclaim(&self, pv: &PersistentVolume) -> Result<(), kube::Error> {
        let name = pv.metadata.name.clone().unwrap_or_default();
        let policy = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            .unwrap_or("Retain");
        match policy {
            "Delete" => {
                tracing::info!(volume = %name, "deleting the released volume (reclaimPolicy Delete)");
                let params = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: pv.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match self.volume_api().delete(&name, &params).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
                    Err(e) => Err(e),
                }
            }
            "Recycle" => {
                if phase_of_volume(pv) != "Failed" {
                    let reference =
                        crate::events::reference("v1", "PersistentVolume", &pv.metadata);
                    crate::events::record(
                        &self.client,
                        COMPONENT,
                        reference,
                        "Warning",
                        "VolumeFailedRecycle",
                        "the Recycle reclaim policy is deprecated and not supported; delete the volume's data and the volume yourself".into(),
                    )
                    .await;
                }
                self.set_volume_phase(
                    pv,
                    "Failed",
                    Some("Recycle reclaim policy is deprecated and not supported"),
                )
                .await
            }
            _ => self.set_volume_phase(pv, "Released", None).await,
        }
    }

    async fn event(&self, pvc: &PersistentVolumeClaim, type_: &str, reason: &str, message: String) {
        let uid = pvc.metadata.uid.clone().unwrap_or_default();
        let said = format!("{reason}: {message}");
        {
            let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
            if warned.get(&uid) == Some(&said) {
                return;
            }
            warned.insert(uid, said);
        }
        let reference = crate::events::reference("v1", "PersistentVolumeClaim", &pvc.metadata);
        crate::events::record(&self.client, COMPONENT, reference, type_, reason, message).await;
    }

    async fn warn(&self, pvc: &PersistentVolumeClaim, reason: &str, message: String) {
        self.event(pvc, "Warning", reason, message).await;
    }

    fn forget(&self, pvc: &PersistentVolumeClaim) {
        if let Some(uid) = &pvc.metadata.uid {
            self.warned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(uid);
        }
    }
}

#[cfg(test)]
mod tests;
