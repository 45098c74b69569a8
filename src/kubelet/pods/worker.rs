//! One pod's worker, as upstream's per-pod sync loop: every
//! [`SYNC_EVERY`] (and on every change of the pod) it sets up the volumes
//! and the sandbox, runs the init containers one by one, then starts the
//! app containers, restarts exited ones per `restartPolicy` with back-off
//! (`CrashLoopBackOff`), kills containers whose liveness or startup probe
//! failed, removes dead containers but the newest of each, and writes the
//! pod's status when it changed. A pod marked for deletion gets its
//! containers stopped (preStop, SIGTERM, SIGKILL within the grace period),
//! its sandbox removed and its API object deleted; then the worker ends.

mod images;
mod teardown;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_cri::v1::{
    Container as CriContainer, ContainerFilter, ContainerStatus as CriStatus,
    ContainerStatusRequest, CreateContainerRequest, ListContainersRequest, ListPodSandboxRequest,
    PodSandboxConfig, PodSandboxFilter, PodSandboxStatusRequest, RemoveContainerRequest,
    RunPodSandboxRequest, StartContainerRequest,
};
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Api, Patch, PatchParams};
use tokio::sync::watch;

use super::backoff::{self, Backoff};
use super::cri_config::{self, RESTART_COUNT_ANNOTATION};
use super::lifecycle::{self, Stop};
use super::probes::{Prober, Target};
use super::status::{self, EXITED, Observed, RUNNING, View};
use super::{POD_UID_LABEL, Waiting, dns_config, env, projected, termination, volumes};
use crate::dns::resolv::ResolvConf;
use crate::kubelet::KubeletSettings;
use crate::runtime::RuntimeError;
use crate::runtime::cri::{Cri, call_error};

/// How often a pod is synced without a change of its object.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How often configMap, secret and downwardAPI volumes are rewritten.
const VOLUME_REFRESH: Duration = Duration::from_secs(10);
/// The grace of a pod whose object vanished (a force delete).
const GONE_GRACE: Duration = Duration::from_secs(2);
/// The grace of containers whose sandbox died.
const SANDBOX_LOST_GRACE: Duration = Duration::from_secs(2);

/// Runs one pod until it is deleted; `pods` carries its latest object
/// (`None` once the object is gone).
pub async fn run(
    cri: Cri,
    client: kube::Client,
    settings: KubeletSettings,
    mut pods: watch::Receiver<Option<Pod>>,
) {
    let Some(pod) = pods.borrow_and_update().clone() else {
        return;
    };
    let mut worker = Worker {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        cri,
        client,
        settings,
        pod,
        waiting: BTreeMap::new(),
        backoff: Backoff::default(),
        backoff_noted: BTreeSet::new(),
        prober: Prober::default(),
        volumes: None,
        refreshers: Vec::new(),
        refreshed: Instant::now(),
    };
    let mut tick = tokio::time::interval(SYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let latest = pods.borrow_and_update().clone();
        match latest {
            None => {
                let pod = worker.pod.clone();
                if let Err(e) = worker.terminate(&pod, GONE_GRACE).await {
                    tracing::warn!(pod = %worker.name(), error = %e, "cannot stop a deleted pod");
                }
                worker.release();
                return;
            }
            Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                worker.pod = pod.clone();
                match worker.terminate(&pod, lifecycle::grace_of(&pod)).await {
                    Ok(()) => {
                        worker.release();
                        worker.delete().await;
                        return;
                    }
                    // The next round tries again.
                    Err(e) => {
                        tracing::warn!(pod = %worker.name(), error = %e, "cannot stop the pod")
                    }
                }
            }
            Some(pod) => {
                worker.pod = pod;
                worker.sync().await;
            }
        }
        tokio::select! {
            changed = pods.changed() => if changed.is_err() {
                return;
            },
            _ = tick.tick() => {}
        }
    }
}

struct Worker {
    uid: String,
    cri: Cri,
    client: kube::Client,
    settings: KubeletSettings,
    pod: Pod,
    /// Why containers are not running, by name.
    waiting: BTreeMap<String, Waiting>,
    backoff: Backoff,
    /// Dead containers whose back-off has been announced.
    backoff_noted: BTreeSet<String>,
    prober: Prober,
    /// Host paths of the pod's volumes, once set up.
    volumes: Option<BTreeMap<String, PathBuf>>,
    refreshers: Vec<tokio::task::JoinHandle<()>>,
    refreshed: Instant,
}

/// The runtime containers of one name, newest first.
type Generations = Vec<CriContainer>;

/// What to do with a container this round.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// It is where it should be.
    Keep,
    /// Start it; its restart count.
    Start(u32),
    /// Wait before restarting it.
    Wait(Waiting),
}

/// What upstream's kubelet decides for a container whose newest instance is
/// `current`: start it, restart it (after the back-off), or leave it.
fn decide(
    restart: bool,
    current: Option<&CriStatus>,
    restart_count: u32,
    backoff: &Backoff,
    key: &str,
    subject: &str,
    (wall_now_nanos, now): (i64, Instant),
) -> Step {
    let Some(current) = current else {
        return Step::Start(0);
    };
    if current.state != EXITED || !restart {
        return Step::Keep;
    }
    let ago = Duration::from_nanos(
        u64::try_from(wall_now_nanos.saturating_sub(current.finished_at)).unwrap_or(0),
    );
    let finished = now.checked_sub(ago).unwrap_or(now);
    if backoff.in_backoff_since(key, finished, now) {
        return Step::Wait(Waiting {
            reason: "CrashLoopBackOff".to_string(),
            message: format!(
                "back-off {} restarting failed {subject}",
                backoff::go_duration(backoff.get(key))
            ),
        });
    }
    Step::Start(restart_count + 1)
}

/// Whether an exited container is due a restart under `policy`.
fn wants_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Always" => true,
        "OnFailure" => exit_code != 0,
        _ => false,
    }
}

fn restart_count_of(c: &CriContainer) -> u32 {
    c.annotations
        .get(RESTART_COUNT_ANNOTATION)
        .and_then(|n| n.parse().ok())
        .or_else(|| c.metadata.as_ref().map(|m| m.attempt))
        .unwrap_or(0)
}

impl Worker {
    fn name(&self) -> String {
        format!(
            "{}/{}",
            self.pod.metadata.namespace.as_deref().unwrap_or_default(),
            self.pod.metadata.name.as_deref().unwrap_or_default()
        )
    }

    /// Upstream's `format.Pod`: `name_namespace(uid)`.
    fn pod_label(&self) -> String {
        format!(
            "{}_{}({})",
            self.pod.metadata.name.as_deref().unwrap_or_default(),
            self.pod.metadata.namespace.as_deref().unwrap_or_default(),
            self.uid
        )
    }

    async fn event(&self, container: &str, type_: &str, reason: &str, message: String) {
        crate::events::record(
            &self.client,
            "kubelet",
            lifecycle::container_ref(&self.pod, container),
            type_,
            reason,
            message,
        )
        .await;
    }

    fn env_runtime(&self, pod_ip: &str) -> env::Runtime {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        env::Runtime {
            pod_ip: pod_ip.to_string(),
            host_ip: self.settings.node_ip.to_string(),
            node_cpu_millis: cpus as i128 * 1000,
            node_memory: crate::kubelet::node_status::mem_total_kib().unwrap_or(0) as i128 * 1024,
        }
    }

    async fn sync(&mut self) {
        let pod = self.pod.clone();
        if is_finished(&pod) {
            // Nothing runs any more: no probe has anything to check.
            self.prober = Prober::default();
            return;
        }
        if !self.ensure_volumes(&pod).await {
            self.report(None).await;
            return;
        }
        let (sandbox_id, sandbox_config, pod_ip) = match self.ensure_sandbox(&pod).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(pod = %self.name(), error = %e, "cannot start the pod sandbox");
                self.report(None).await;
                return;
            }
        };
        let pod_ip = if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
            self.settings.node_ip.to_string()
        } else {
            pod_ip
        };
        if self.refreshed.elapsed() >= VOLUME_REFRESH {
            self.refreshed = Instant::now();
            let runtime = self.env_runtime(&pod_ip);
            volumes::refresh(&self.client, &pod, &self.settings.data_dir, &runtime).await;
        }
        let groups = match self.containers().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(pod = %self.name(), error = %e, "cannot list the pod's containers");
                return;
            }
        };
        let acted = self
            .act(&pod, &groups, &sandbox_id, &sandbox_config, &pod_ip)
            .await;
        let groups = if acted {
            self.containers().await.unwrap_or(groups)
        } else {
            groups
        };
        self.collect_garbage(&groups).await;
        let observed = self.observe(&pod, &groups, &pod_ip).await;
        self.report(Some(observed)).await;
    }

    /// Sets up the pod's volumes once; false (with the containers waiting
    /// on why) when they cannot be yet.
    async fn ensure_volumes(&mut self, pod: &Pod) -> bool {
        if self.volumes.is_some() {
            return true;
        }
        let runtime = self.env_runtime("");
        let failed = |name: &str, e: &dyn std::fmt::Display| {
            format!("MountVolume.SetUp failed for volume \"{name}\" : {e}")
        };
        let mut dirs =
            match volumes::setup(&self.client, pod, &self.settings.data_dir, &runtime).await {
                Ok(d) => d,
                Err((name, e)) => {
                    let message = failed(&name, &e);
                    self.wait_all(pod, "ContainerCreating", &message);
                    self.event("", "Warning", "FailedMount", message).await;
                    return false;
                }
            };
        match projected::prepare(&self.client, pod, &self.settings.data_dir).await {
            Ok(prepared) => {
                for task in self.refreshers.drain(..) {
                    task.abort();
                }
                self.refreshers = prepared
                    .tokens
                    .iter()
                    .map(|(file, next)| {
                        tokio::spawn(projected::keep_fresh(
                            self.client.clone(),
                            file.clone(),
                            *next,
                        ))
                    })
                    .collect();
                dirs.extend(prepared.dirs);
            }
            Err(e) => {
                let message = format!("MountVolume.SetUp failed: {e}");
                self.wait_all(pod, "ContainerCreating", &message);
                return false;
            }
        }
        self.waiting.clear();
        self.volumes = Some(dirs);
        true
    }

    fn wait_all(&mut self, pod: &Pod, reason: &str, message: &str) {
        let spec = pod.spec.clone().unwrap_or_default();
        for c in spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
        {
            self.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: reason.to_string(),
                    message: message.to_string(),
                },
            );
        }
    }

    /// The ready sandbox of the pod (started if there is none), its config
    /// and the pod IP.
    async fn ensure_sandbox(
        &mut self,
        pod: &Pod,
    ) -> Result<(String, PodSandboxConfig, String), RuntimeError> {
        let config = cri_config::sandbox(pod, &self.settings.data_dir);
        let filter = PodSandboxFilter {
            label_selector: [(POD_UID_LABEL.to_string(), self.uid.clone())].into(),
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
        let id = match items.iter().find(|s| s.state == 0) {
            Some(s) => s.id.clone(),
            None => {
                if !items.is_empty() {
                    // The sandbox died: as upstream, everything of the pod
                    // is stopped and started again in a new one.
                    tracing::info!(pod = %self.name(), "the pod sandbox is gone; recreating the pod");
                    self.terminate(pod, SANDBOX_LOST_GRACE).await?;
                }
                let mut config = config.clone();
                let host = ResolvConf::read(&crate::dns::resolv::effective_path(
                    &self.settings.dns.resolv_conf,
                ));
                let (dns, warnings) = dns_config::pod_dns(pod, &self.settings.dns, &host);
                for warning in warnings {
                    crate::events::record(
                        &self.client,
                        "kubelet",
                        crate::events::reference("v1", "Pod", &pod.metadata),
                        "Warning",
                        "DNSConfigForming",
                        warning,
                    )
                    .await;
                }
                config.dns_config = Some(dns);
                if let Some(meta) = config.metadata.as_mut() {
                    meta.attempt = items
                        .iter()
                        .filter_map(|s| s.metadata.as_ref())
                        .map(|m| m.attempt + 1)
                        .max()
                        .unwrap_or(0);
                }
                let _ = std::fs::create_dir_all(&config.log_directory);
                self.cri
                    .runtime
                    .run_pod_sandbox(RunPodSandboxRequest {
                        config: Some(config),
                        runtime_handler: String::new(),
                    })
                    .await
                    .map_err(|e| call_error("RunPodSandbox", e))?
                    .into_inner()
                    .pod_sandbox_id
            }
        };
        let status = self
            .cri
            .runtime
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: false,
            })
            .await
            .map_err(|e| call_error("PodSandboxStatus", e))?
            .into_inner();
        let ip = status
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default();
        Ok((id, config, ip))
    }

    /// The pod's runtime containers by name, newest first.
    async fn containers(&mut self) -> Result<BTreeMap<String, Generations>, RuntimeError> {
        let list = self
            .cri
            .runtime
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    label_selector: [(POD_UID_LABEL.to_string(), self.uid.clone())].into(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(|e| call_error("ListContainers", e))?
            .into_inner()
            .containers;
        let mut groups: BTreeMap<String, Generations> = BTreeMap::new();
        for c in list {
            let name = c
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            groups.entry(name).or_default().push(c);
        }
        for generations in groups.values_mut() {
            generations.sort_by_key(|c| std::cmp::Reverse((restart_count_of(c), c.created_at)));
        }
        Ok(groups)
    }

    async fn status_of(&mut self, id: &str) -> Option<CriStatus> {
        self.cri
            .runtime
            .container_status(ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .ok()?
            .into_inner()
            .status
    }

    /// Runs this round's steps; true when anything was started or stopped.
    async fn act(
        &mut self,
        pod: &Pod,
        groups: &BTreeMap<String, Generations>,
        sandbox_id: &str,
        sandbox_config: &PodSandboxConfig,
        pod_ip: &str,
    ) -> bool {
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let target = Target {
            cri: self.cri.clone(),
            client: self.client.clone(),
            pod: pod.clone(),
            pod_ip: pod_ip.to_string(),
        };
        let mut running = BTreeSet::new();
        let mut acted = false;
        let mut order: Vec<(Container, bool)> = Vec::new();
        for c in spec.init_containers.iter().flatten() {
            order.push((c.clone(), true));
        }
        for c in &spec.containers {
            order.push((c.clone(), false));
        }
        for (c, is_init) in order {
            let newest = groups.get(&c.name).and_then(|g| g.first());
            let current = match newest {
                Some(n) => self.status_of(&n.id).await,
                None => None,
            };
            let sidecar = is_init && c.restart_policy.as_deref() == Some("Always");
            if let Some(s) = current.as_ref().filter(|s| s.state == RUNNING) {
                running.insert(s.id.clone());
                self.prober.ensure(&target, &c, &s.id);
                let verdict = self.prober.verdict(&c, &s.id);
                if let Some(kind) = verdict.failed {
                    let grace = probe_grace(pod, &c, kind);
                    let mut cri = self.cri.clone();
                    let stop = Stop {
                        client: &self.client,
                        pod,
                        pod_ip,
                        grace,
                        message: format!(
                            "Container {} failed {kind} probe, will be restarted",
                            c.name
                        ),
                    };
                    lifecycle::stop(&mut cri, stop, Some(&c), &s.id).await;
                    acted = true;
                }
                if is_init && !(sidecar && verdict.started) {
                    // One init container at a time; app containers after.
                    break;
                }
                continue;
            }
            let restart = if sidecar {
                true
            } else if is_init {
                policy != "Never" && current.as_ref().is_some_and(|s| s.exit_code != 0)
            } else {
                wants_restart(&policy, current.as_ref().map_or(0, |s| s.exit_code))
            };
            if is_init
                && !sidecar
                && current
                    .as_ref()
                    .is_some_and(|s| s.state == EXITED && s.exit_code == 0)
            {
                continue;
            }
            let key = format!("{}/{}", self.uid, c.name);
            let lost = match newest {
                None => ran_before(pod, &c.name),
                Some(_) => None,
            };
            let step = match lost {
                // The runtime lost a container that ran (its sandbox was
                // recreated): it starts again, counting as a restart.
                Some(count) if is_init || policy != "Never" => Step::Start(count + 1),
                Some(_) => Step::Keep,
                None => decide(
                    restart,
                    current.as_ref(),
                    newest.map_or(0, restart_count_of),
                    &self.backoff,
                    &key,
                    &format!("container={} pod={}", c.name, self.pod_label()),
                    (wall_now_nanos(), Instant::now()),
                ),
            };
            match step {
                Step::Keep => {
                    self.waiting.remove(&c.name);
                }
                Step::Wait(w) => {
                    if let Some(s) = &current
                        && self.backoff_noted.insert(s.id.clone())
                    {
                        let message = format!(
                            "Back-off restarting failed container {} in pod {}",
                            c.name,
                            self.pod_label()
                        );
                        self.event(&c.name, "Warning", "BackOff", message).await;
                    }
                    self.waiting.insert(c.name.clone(), w);
                }
                Step::Start(count) => {
                    if count > 0 {
                        self.backoff.next(&key, Instant::now());
                    }
                    acted |= self
                        .start(pod, &c, count, sandbox_id, sandbox_config, pod_ip)
                        .await;
                }
            }
            if is_init {
                break;
            }
        }
        self.prober.retain(&running);
        acted
    }

    /// Creates and starts one container; false (with the reason it waits)
    /// when it could not.
    async fn start(
        &mut self,
        pod: &Pod,
        c: &Container,
        restart_count: u32,
        sandbox_id: &str,
        sandbox_config: &PodSandboxConfig,
        pod_ip: &str,
    ) -> bool {
        let image = c.image.clone().unwrap_or_default();
        if let Some(waiting) = self.ensure_image(c, &image).await {
            self.waiting.insert(c.name.clone(), waiting);
            return false;
        }
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let built = match env::Sources::fetch(&self.client, &namespace, &[c]).await {
            Ok(sources) => env::build(pod, c, &sources, &self.env_runtime(pod_ip)),
            Err(e) => Err(e),
        };
        let env = match built {
            Ok(env) => env,
            Err(e) => {
                self.fail(c, "CreateContainerConfigError", &e.to_string())
                    .await;
                return false;
            }
        };
        let termination_file =
            termination::prepare(&self.settings.data_dir, &self.uid, &c.name, restart_count);
        let extra = cri_config::Extra {
            volumes: self.volumes.as_ref(),
            env,
            restart_count,
            termination_file,
        };
        let config = cri_config::container(pod, c, &extra);
        let created = self
            .cri
            .runtime
            .create_container(CreateContainerRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                config: Some(config),
                sandbox_config: Some(sandbox_config.clone()),
            })
            .await;
        let id = match created {
            Ok(reply) => reply.into_inner().container_id,
            Err(e) => {
                self.fail(c, "CreateContainerError", e.message()).await;
                return false;
            }
        };
        self.event(
            &c.name,
            "Normal",
            "Created",
            format!("Created container: {}", c.name),
        )
        .await;
        if let Err(e) = self
            .cri
            .runtime
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            self.fail(c, "RunContainerError", e.message()).await;
            return true;
        }
        self.waiting.remove(&c.name);
        self.event(
            &c.name,
            "Normal",
            "Started",
            format!("Started container {}", c.name),
        )
        .await;
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let grace = lifecycle::grace_of(pod);
            let mut cri = self.cri.clone();
            if let Err(e) = lifecycle::run_hook(&mut cri, hook, c, &id, pod_ip, grace).await {
                let message = format!("PostStartHook failed: {e}");
                self.event(&c.name, "Warning", "FailedPostStartHook", message)
                    .await;
                let stop = Stop {
                    client: &self.client,
                    pod,
                    pod_ip,
                    grace,
                    message: format!("FailedPostStartHook: container {}", c.name),
                };
                lifecycle::stop(&mut cri, stop, Some(c), &id).await;
            }
        }
        true
    }

    async fn fail(&mut self, c: &Container, reason: &str, message: &str) {
        let waiting = Waiting {
            reason: reason.to_string(),
            message: message.to_string(),
        };
        // The same failure every sync is one event.
        if self.waiting.insert(c.name.clone(), waiting.clone()) != Some(waiting) {
            self.event(&c.name, "Warning", "Failed", format!("Error: {message}"))
                .await;
        }
    }

    /// Whether the container already waits for `reason`.
    fn waits_for(&self, c: &Container, reason: &str) -> bool {
        self.waiting
            .get(&c.name)
            .is_some_and(|w| w.reason == reason)
    }

    /// Removes dead containers but the newest instance of each name and the
    /// newest dead one before it (for `kubectl logs --previous`).
    async fn collect_garbage(&mut self, groups: &BTreeMap<String, Generations>) {
        for generations in groups.values() {
            let dead = generations
                .iter()
                .skip(1)
                .filter(|c| c.state == EXITED || c.state == 0)
                .skip(1);
            for c in dead {
                if let Err(e) = self
                    .cri
                    .runtime
                    .remove_container(RemoveContainerRequest {
                        container_id: c.id.clone(),
                    })
                    .await
                {
                    tracing::debug!(error = %e.message(), "cannot remove a dead container");
                }
            }
        }
    }

    /// The pod's containers as the status wants them.
    async fn observe(
        &mut self,
        pod: &Pod,
        groups: &BTreeMap<String, Generations>,
        pod_ip: &str,
    ) -> Observed {
        let spec = pod.spec.clone().unwrap_or_default();
        let mut observed = Observed {
            sandbox_ready: true,
            pod_ip: (!pod_ip.is_empty()).then(|| pod_ip.to_string()),
            ..Default::default()
        };
        let all = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| (c, true))
            .chain(spec.containers.iter().map(|c| (c, false)));
        for (c, is_init) in all {
            let generations = groups.get(&c.name).cloned().unwrap_or_default();
            let mut view = View {
                waiting: self.waiting.get(&c.name).cloned(),
                ..Default::default()
            };
            if let Some(newest) = generations.first() {
                view.restart_count = restart_count_of(newest) as i32;
                view.current = self.status_of(&newest.id).await;
            }
            if let Some(before) = generations.iter().skip(1).find(|g| g.state == EXITED) {
                view.previous = self.status_of(&before.id).await;
            }
            if let Some(s) = view.current.as_ref().filter(|s| s.state == RUNNING) {
                let verdict = self.prober.verdict(c, &s.id);
                view.started = verdict.started;
                view.ready = verdict.ready;
                view.waiting = None;
            }
            view.message = view
                .current
                .as_ref()
                .and_then(|s| termination::message(c, s));
            view.previous_message = view
                .previous
                .as_ref()
                .and_then(|s| termination::message(c, s));
            if is_init {
                observed.init.insert(c.name.clone(), view);
            } else {
                observed.containers.insert(c.name.clone(), view);
            }
        }
        observed
    }

    /// Writes the pod's status when it changed.
    async fn report(&mut self, observed: Option<Observed>) {
        let observed = observed.unwrap_or_else(|| {
            let mut o = Observed::default();
            for (name, w) in &self.waiting {
                let view = View {
                    waiting: Some(w.clone()),
                    ..Default::default()
                };
                let is_init = self
                    .pod
                    .spec
                    .iter()
                    .flat_map(|s| s.init_containers.iter().flatten())
                    .any(|c| &c.name == name);
                if is_init {
                    o.init.insert(name.clone(), view);
                } else {
                    o.containers.insert(name.clone(), view);
                }
            }
            o
        });
        let new = status::compute(&self.pod, &observed, self.settings.node_ip);
        if self.pod.status.as_ref() == Some(&new) {
            return;
        }
        let pods: Api<Pod> = Api::namespaced(
            self.client.clone(),
            self.pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let patch = serde_json::json!({ "status": new });
        match pods
            .patch_status(
                self.pod.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(updated) => self.pod = updated,
            Err(e) => tracing::warn!(pod = %self.name(), error = %e, "cannot write the pod status"),
        }
    }
}

/// The grace period of a probe kill: the probe's own, else the pod's.
fn probe_grace(pod: &Pod, c: &Container, kind: &str) -> Duration {
    let probe = match kind {
        "startup" => c.startup_probe.as_ref(),
        _ => c.liveness_probe.as_ref(),
    };
    let secs = probe
        .and_then(|p| p.termination_grace_period_seconds)
        .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// The restart count the pod's status gives a container that ran before.
fn ran_before(pod: &Pod, name: &str) -> Option<u32> {
    let status = pod.status.as_ref()?;
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .find(|s| s.name == name && s.container_id.is_some())
        .map(|s| u32::try_from(s.restart_count).unwrap_or(0))
}

fn wall_now_nanos() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

/// Whether a pod reached a terminal phase (its containers are not restarted).
fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exited(code: i32, finished_at: i64) -> CriStatus {
        CriStatus {
            id: "c1".into(),
            state: EXITED,
            exit_code: code,
            finished_at,
            ..Default::default()
        }
    }

    #[test]
    fn a_lost_container_keeps_its_restart_count() {
        use k8s_openapi::api::core::v1::{ContainerStatus, PodStatus};
        let status = |id: Option<&str>| Pod {
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "main".into(),
                    container_id: id.map(str::to_string),
                    restart_count: 4,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(ran_before(&status(Some("containerd://x")), "main"), Some(4));
        assert_eq!(ran_before(&status(None), "main"), None, "never ran");
        assert_eq!(ran_before(&Pod::default(), "main"), None);
    }

    #[test]
    fn restart_policies_decide_which_exits_restart() {
        assert!(wants_restart("Always", 0));
        assert!(wants_restart("OnFailure", 2));
        assert!(!wants_restart("OnFailure", 0));
        assert!(!wants_restart("Never", 1));
    }

    #[test]
    fn a_crashing_container_restarts_then_backs_off() {
        let mut b = Backoff::default();
        let now = Instant::now();
        let wall = 1_000_000_000_000_i64;
        let step = |b: &Backoff, current: Option<&CriStatus>, count, wall_now, now| {
            let subject = "container=main pod=p_ns(u)";
            decide(true, current, count, b, "u/main", subject, (wall_now, now))
        };
        assert_eq!(step(&b, None, 0, wall, now), Step::Start(0));
        let died = exited(1, wall);
        assert_eq!(
            step(&b, Some(&died), 0, wall, now),
            Step::Start(1),
            "first restart at once"
        );
        b.next("u/main", now);
        let Step::Wait(w) = step(
            &b,
            Some(&died),
            1,
            wall + 1_000_000_000,
            now + Duration::from_secs(1),
        ) else {
            panic!("expected a back-off");
        };
        assert_eq!(w.reason, "CrashLoopBackOff");
        assert_eq!(
            w.message,
            "back-off 10s restarting failed container=main pod=p_ns(u)"
        );
        let later = wall + 11_000_000_000;
        assert_eq!(
            step(&b, Some(&died), 1, later, now + Duration::from_secs(11)),
            Step::Start(2)
        );
        let never = decide(false, Some(&died), 0, &b, "u/main", "x", (wall, now));
        assert_eq!(never, Step::Keep);
    }
}
