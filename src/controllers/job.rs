//! The Job controller, as upstream's (1.33): runs a Job's pods until
//! enough succeed (`completions`, NonIndexed or Indexed) with at most
//! `parallelism` at a time, replaces failed ones with exponential backoff
//! until `backoffLimit`, honours `activeDeadlineSeconds`, `suspend` and
//! `podFailurePolicy`, and reports progress in `/status`.
//!
//! Pods carry the `batch.kubernetes.io/job-tracking` finalizer: a finished
//! pod is first recorded in `status.uncountedTerminatedPods`, then loses
//! its finalizer, then moves into the `succeeded`/`failed` counters, so no
//! pod is counted twice or lost. A Job first gets the interim
//! `SuccessCriteriaMet` or `FailureTarget` condition and, once none of its
//! pods is still running, the terminal `Complete` or `Failed`.

mod pods;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

use self::pods::{FailureAction, INDEX_KEY, TRACKING_FINALIZER};
use super::expectations::Expectations;
use super::{Shared, controller_of, owner_reference};
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};

const COMPONENT: &str = "job-controller";
/// At most this many pods are created or deleted in one sync.
const MAX_BATCH: usize = 500;

/// Why a sync failed (the Job is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("creating a pod: {0}")]
    Create(kube::Error),
    #[error("deleting a pod: {0}")]
    Delete(kube::Error),
    #[error("removing the tracking finalizer: {0}")]
    Finalizer(kube::Error),
    #[error("updating the status: {0}")]
    Status(kube::Error),
}

/// Failures in a row since the last success, and when the last was seen.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    last: Timestamp,
}

struct Controller {
    client: Client,
    jobs: Shared<Job>,
    pods: Shared<Pod>,
    queue: WorkQueue,
    expectations: Expectations,
    backoff: Mutex<HashMap<String, Backoff>>,
    /// Pods whose finalizer this controller removed, per Job, until the
    /// informer shows it gone (so a stale cache never counts a pod twice).
    released: Mutex<HashMap<String, HashSet<String>>>,
}

/// Starts the controller on the shared informers.
pub fn start(client: Client, jobs: Shared<Job>, pods: Shared<Pod>) {
    let c = Arc::new(Controller {
        client,
        jobs,
        pods,
        queue: WorkQueue::new(),
        expectations: Expectations::default(),
        backoff: Mutex::default(),
        released: Mutex::default(),
    });
    tokio::spawn(c.clone().watch_jobs());
    tokio::spawn(c.clone().watch_pods());
    tokio::spawn(async move {
        let worker = c.clone();
        c.queue
            .process("job", |key| {
                let c = worker.clone();
                async move { c.sync(&key).await }
            })
            .await;
    });
}

fn key_of<K: kube::Resource>(o: &K) -> String {
    workqueue::key(
        o.meta().namespace.as_deref().unwrap_or_default(),
        o.meta().name.as_deref().unwrap_or_default(),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the Job has condition `type_` with status True.
pub fn has_condition(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// Whether the Job is finished (`Complete` or `Failed`), and when.
pub fn finished_at(job: &Job) -> Option<Option<Timestamp>> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

fn now_second() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// Sets condition `type_` (adding it or changing its status), as upstream.
fn set_condition(status: &mut JobStatus, type_: &str, value: bool, reason: &str, message: &str) {
    let now = Time(now_second());
    let value = if value { "True" } else { "False" };
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == value && c.reason.as_deref() == Some(reason) => {}
        Some(c) => {
            if c.status != value {
                c.last_transition_time = Some(now.clone());
            }
            c.status = value.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_probe_time = Some(now);
        }
        None => conditions.push(JobCondition {
            type_: type_.into(),
            status: value.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_probe_time: Some(now.clone()),
            last_transition_time: Some(now),
        }),
    }
}

fn condition_of<'a>(status: &'a JobStatus, type_: &str) -> Option<&'a JobCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// The pods to create and delete this sync.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    /// NonIndexed: how many pods to create; Indexed: which indexes.
    create: Vec<Option<i32>>,
    delete: Vec<String>,
}

/// Which pods a running Job should add or remove.
fn plan(job: &Job, active: &[&Pod], succeeded: i32, completed: &BTreeSet<i32>) -> Plan {
    let Some(spec) = job.spec.as_ref() else {
        return Plan::default();
    };
    let parallelism = spec.parallelism.unwrap_or(1).max(0) as usize;
    let mut plan = Plan::default();
    if spec.completion_mode.as_deref() == Some("Indexed") {
        let completions = spec.completions.unwrap_or(0);
        let mut running: BTreeSet<i32> = BTreeSet::new();
        let mut keep = Vec::new();
        for pod in active {
            match pods::index(pod, completions) {
                // Duplicates, invalid and already-completed indexes go.
                Some(i) if !completed.contains(&i) && running.insert(i) => keep.push(*pod),
                _ => plan
                    .delete
                    .push(pod.metadata.name.clone().unwrap_or_default()),
            }
        }
        let pending: Vec<i32> = (0..completions)
            .filter(|i| !completed.contains(i) && !running.contains(i))
            .collect();
        let want = parallelism.min(running.len() + pending.len());
        if keep.len() > want {
            plan.delete.extend(
                keep.iter()
                    .rev()
                    .take(keep.len() - want)
                    .map(|p| p.metadata.name.clone().unwrap_or_default()),
            );
        } else {
            plan.create = pending
                .into_iter()
                .take(want - keep.len())
                .map(Some)
                .collect();
        }
        return plan;
    }
    let want = match spec.completions {
        None if succeeded > 0 => active.len(),
        None => parallelism,
        Some(c) => ((c - succeeded).max(0) as usize).min(parallelism),
    };
    if active.len() > want {
        let victims = super::replicaset::pods_to_delete(
            active.iter().map(|p| Arc::new((*p).clone())).collect(),
            active.len() - want,
        );
        plan.delete = victims
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
    } else {
        plan.create = vec![None; want - active.len()];
    }
    plan
}

/// A Job's pod counts, for [`verdict`].
#[derive(Debug, Default)]
struct Tally {
    succeeded: i32,
    failed: i32,
    active: usize,
    restarts: i32,
    completed_indexes: usize,
}

/// How a running Job ends, once it does.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// `FailureTarget` with this reason and message.
    Fail(&'static str, String),
    /// `SuccessCriteriaMet`.
    Succeed,
}

/// Upstream's order: a FailJob rule, then the backoff limit, then the
/// deadline, then success.
fn verdict(
    spec: &JobSpec,
    start: Option<Timestamp>,
    tally: &Tally,
    fail_job: Option<String>,
    now: Timestamp,
) -> Option<Verdict> {
    let limit = spec.backoff_limit.unwrap_or(6);
    let on_failure = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        == Some("OnFailure");
    // With OnFailure, container restarts count against the limit too.
    let restarts_over = on_failure
        && if limit == 0 {
            tally.restarts > 0
        } else {
            tally.restarts >= limit
        };
    let suspended = spec.suspend == Some(true);
    let past_deadline = !suspended
        && spec
            .active_deadline_seconds
            .zip(start)
            .is_some_and(|(s, t)| now.as_second() - t.as_second() >= s);
    if let Some(message) = fail_job {
        return Some(Verdict::Fail("PodFailurePolicy", message));
    }
    if tally.failed > limit || restarts_over {
        let message = "Job has reached the specified backoff limit".to_string();
        return Some(Verdict::Fail("BackoffLimitExceeded", message));
    }
    if past_deadline {
        let message = "Job was active longer than specified deadline".to_string();
        return Some(Verdict::Fail("DeadlineExceeded", message));
    }
    let complete = match spec.completions {
        Some(c) if spec.completion_mode.as_deref() == Some("Indexed") => {
            tally.completed_indexes as i32 >= c
        }
        Some(c) => tally.succeeded >= c,
        None => tally.succeeded > 0 && tally.active == 0,
    };
    complete.then_some(Verdict::Succeed)
}

/// A pod for the Job (with the completion index for Indexed Jobs).
fn new_pod(job: &Job, index: Option<i32>) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let mut meta = template.metadata.unwrap_or_default();
    let mut spec = template.spec.unwrap_or_default();
    meta.generate_name = Some(match index {
        Some(i) => format!("{name}-{i}-"),
        None => format!("{name}-"),
    });
    meta.owner_references = Some(vec![owner_reference(
        "batch/v1",
        "Job",
        &name,
        job.metadata.uid.as_deref().unwrap_or_default(),
    )]);
    meta.finalizers
        .get_or_insert_with(Vec::new)
        .push(TRACKING_FINALIZER.into());
    if let Some(i) = index {
        meta.annotations
            .get_or_insert_with(Default::default)
            .insert(INDEX_KEY.into(), i.to_string());
        meta.labels
            .get_or_insert_with(Default::default)
            .insert(INDEX_KEY.into(), i.to_string());
        if spec.hostname.is_none() {
            spec.hostname = Some(format!("{name}-{i}"));
        }
        let env = EnvVar {
            name: "JOB_COMPLETION_INDEX".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.annotations['{INDEX_KEY}']"),
                }),
                ..Default::default()
            }),
        };
        let containers = spec.containers.iter_mut();
        for c in containers.chain(spec.init_containers.iter_mut().flatten()) {
            let vars = c.env.get_or_insert_with(Vec::new);
            if !vars.iter().any(|v| v.name == env.name) {
                vars.push(env.clone());
            }
        }
    }
    Pod {
        metadata: meta,
        spec: Some(spec),
        status: None,
    }
}

/// What one look at the Job's pods found.
#[derive(Default)]
struct Census<'a> {
    active: Vec<&'a Pod>,
    terminating: i32,
    ready: i32,
    restarts: i32,
    /// Finished pods not counted yet, by uid.
    new_succeeded: Vec<String>,
    new_failed: Vec<String>,
    new_indexes: BTreeSet<i32>,
    /// A pod failure policy rule that fails the Job.
    fail_job: Option<String>,
    /// Pods whose finalizer can go once they are recorded.
    release: Vec<&'a Pod>,
}

impl Controller {
    async fn watch_jobs(self: Arc<Self>) {
        let mut changes = self.jobs.subscribe();
        // Jobs listed before this subscription.
        self.enqueue_all();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(job) | Change::Deleted(job) => self.queue.add(key_of(job.as_ref())),
                Change::Resync => self.enqueue_all(),
            }
        }
    }

    async fn watch_pods(self: Arc<Self>) {
        let mut changes = self.pods.subscribe();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(pod) | Change::Deleted(pod) => {
                    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
                    if let Some(owner) = controller_of(pod.metadata.owner_references.as_ref())
                        .filter(|o| o.kind == "Job")
                    {
                        self.queue.add(workqueue::key(namespace, &owner.name));
                    }
                }
                Change::Resync => self.enqueue_all(),
            }
        }
    }

    fn enqueue_all(&self) {
        for job in self.jobs.store().state() {
            self.queue.add(key_of(job.as_ref()));
        }
    }

    fn pods_api(&self, namespace: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), namespace)
    }

    async fn event(&self, job: &Job, type_: &str, reason: &str, message: String) {
        let reference = crate::events::reference("batch/v1", "Job", &job.metadata);
        crate::events::record(&self.client, COMPONENT, reference, type_, reason, message).await;
    }

    async fn sync(&self, key: &str) -> Result<(), JobError> {
        let (namespace, name) = workqueue::split(key);
        let owned_by = |pod: &Pod, uid: Option<&str>| {
            controller_of(pod.metadata.owner_references.as_ref()).is_some_and(|o| {
                o.kind == "Job" && o.name == name && uid.is_none_or(|u| u == o.uid)
            })
        };
        let all = self.pods.store().state();
        let in_namespace = all
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace));
        let Some(job) = self.jobs.get(namespace, name) else {
            // The Job is gone: let its pods go too.
            self.expectations.forget(key);
            lock(&self.backoff).remove(key);
            let orphans: Vec<&Pod> = in_namespace
                .filter(|p| owned_by(p, None) && pods::has_finalizer(p))
                .map(|p| p.as_ref())
                .collect();
            let released = self.release(key, namespace, &orphans).await;
            lock(&self.released).remove(key);
            return released.map(|_| ());
        };
        let uid = job.metadata.uid.as_deref();
        let (owned, strays): (Vec<&Pod>, Vec<&Pod>) = in_namespace
            .filter(|p| owned_by(p, None))
            .map(|p| p.as_ref())
            .partition(|p| owned_by(p, uid));
        // Pods of an earlier Job of the same name.
        let strays: Vec<&Pod> = strays
            .into_iter()
            .filter(|p| pods::has_finalizer(p))
            .collect();
        if !strays.is_empty() {
            self.release(key, namespace, &strays).await?;
        }
        if job.metadata.deletion_timestamp.is_some() || finished_at(&job).is_some() {
            let holding: Vec<&Pod> = owned
                .iter()
                .copied()
                .filter(|p| pods::has_finalizer(p))
                .collect();
            return self.release(key, namespace, &holding).await.map(|_| ());
        }
        let present = |n: &str| {
            owned
                .iter()
                .any(|p| p.metadata.name.as_deref() == Some(n) && pods::active(p))
        };
        if !self.expectations.satisfied(key, present) {
            return Ok(());
        }
        self.reconcile(key, &job, &owned).await
    }

    /// Counts the Job's pods, decides its fate, acts on its pods and
    /// writes its status.
    async fn reconcile(&self, key: &str, job: &Job, owned: &[&Pod]) -> Result<(), JobError> {
        let namespace = job.metadata.namespace.as_deref().unwrap_or_default();
        let spec = job.spec.clone().unwrap_or_default();
        let indexed = spec.completion_mode.as_deref() == Some("Indexed");
        let completions = spec.completions;
        let suspended = spec.suspend == Some(true);
        let only_failed = spec.pod_replacement_policy.as_deref() == Some("Failed");
        let mut status = job.status.clone().unwrap_or_default();
        let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let known: HashSet<String> = uncounted
            .succeeded
            .iter()
            .chain(uncounted.failed.iter())
            .flatten()
            .cloned()
            .collect();
        let mut completed = pods::parse_indexes(status.completed_indexes.as_deref().unwrap_or(""));
        let released = lock(&self.released).get(key).cloned().unwrap_or_default();
        let failure_target = condition_of(&status, "FailureTarget").is_some();
        let success_target = condition_of(&status, "SuccessCriteriaMet").is_some();
        let ending = failure_target || success_target;

        let mut census = Census::default();
        for &pod in owned {
            let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
            if pods::active(pod) {
                census.active.push(pod);
                census.ready += i32::from(pods::ready(pod));
                census.restarts += pods::restarts(pod);
                continue;
            }
            if pods::terminating(pod) {
                census.terminating += 1;
            }
            let fresh = pods::has_finalizer(pod)
                && !known.contains(&pod_uid)
                && !released.contains(&pod_uid);
            if !fresh {
                if pods::has_finalizer(pod) && !released.contains(&pod_uid) {
                    census.release.push(pod);
                }
                continue;
            }
            if pods::succeeded(pod) {
                match (indexed, completions.and_then(|c| pods::index(pod, c))) {
                    (false, _) => census.new_succeeded.push(pod_uid),
                    (true, Some(i)) if !completed.contains(&i) => {
                        census.new_indexes.insert(i);
                        completed.insert(i);
                        census.new_succeeded.push(pod_uid);
                    }
                    _ => {}
                }
                census.release.push(pod);
            } else if pods::counts_as_failed(pod, only_failed && !ending) || ending {
                let action = if pods::failed(pod) {
                    pods::failure_action(spec.pod_failure_policy.as_ref(), pod)
                } else {
                    FailureAction::Count
                };
                match action {
                    FailureAction::Ignore => {}
                    FailureAction::FailJob(message) => {
                        census.fail_job.get_or_insert(message);
                        census.new_failed.push(pod_uid);
                    }
                    // Pods deleted because the Job is suspended are no failures.
                    FailureAction::Count if suspended && !pods::failed(pod) => {}
                    FailureAction::Count => census.new_failed.push(pod_uid),
                }
                census.release.push(pod);
            }
        }
        let count = |v: &Option<Vec<String>>| v.as_ref().map_or(0, Vec::len) as i32;
        let succeeded = status.succeeded.unwrap_or(0)
            + count(&uncounted.succeeded)
            + census.new_succeeded.len() as i32;
        let failed =
            status.failed.unwrap_or(0) + count(&uncounted.failed) + census.new_failed.len() as i32;
        let now = now_second();
        self.note_backoff(key, &census, now);

        // Decide the Job's fate.
        if !ending {
            let tally = Tally {
                succeeded,
                failed,
                active: census.active.len(),
                restarts: census.restarts,
                completed_indexes: completed.len(),
            };
            let start = status.start_time.as_ref().map(|t| t.0);
            match verdict(&spec, start, &tally, census.fail_job.take(), now) {
                Some(Verdict::Fail(reason, message)) => {
                    set_condition(&mut status, "FailureTarget", true, reason, &message);
                }
                Some(Verdict::Succeed) => set_condition(
                    &mut status,
                    "SuccessCriteriaMet",
                    true,
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                None => {}
            }
        }
        let ending = condition_of(&status, "FailureTarget").is_some()
            || condition_of(&status, "SuccessCriteriaMet").is_some();

        // Act on the pods.
        let mut requeue = None;
        let plan = if ending || suspended {
            Plan {
                create: Vec::new(),
                delete: census
                    .active
                    .iter()
                    .map(|p| p.metadata.name.clone().unwrap_or_default())
                    .collect(),
            }
        } else {
            let mut plan = plan(job, &census.active, succeeded, &completed);
            let wait = self.backoff_remaining(key, now);
            if !plan.create.is_empty() && !wait.is_zero() {
                plan.create.clear();
                requeue = Some(wait);
            }
            plan
        };
        let (created, deleted) = self.apply_plan(key, job, &plan).await;
        let active = census.active.len() as i32 + created.len() as i32 - deleted.len() as i32;

        // Suspension and start time.
        let was_suspended = condition_of(&status, "Suspended").is_some();
        if suspended && !ending {
            if !was_suspended {
                set_condition(
                    &mut status,
                    "Suspended",
                    true,
                    "JobSuspended",
                    "Job suspended",
                );
                self.event(job, "Normal", "Suspended", "Job suspended".into())
                    .await;
            }
            status.start_time = None;
        } else {
            if was_suspended {
                set_condition(&mut status, "Suspended", false, "JobResumed", "Job resumed");
                self.event(job, "Normal", "Resumed", "Job resumed".into())
                    .await;
                status.start_time = None;
            }
            if status.start_time.is_none() && !ending {
                status.start_time = Some(Time(now));
            }
        }
        if let (Some(s), Some(start)) = (spec.active_deadline_seconds, &status.start_time) {
            if !ending && !suspended {
                let left = (start.0.as_second() + s - now.as_second()).max(1);
                let left = Duration::from_secs(left as u64);
                requeue = Some(requeue.map_or(left, |r: Duration| r.min(left)));
            }
        }

        // Record newly finished pods before their finalizers go.
        status.active = Some(active.max(0));
        status.ready = Some(census.ready);
        status.terminating = Some(census.terminating + deleted.len() as i32);
        uncounted
            .succeeded
            .get_or_insert_with(Vec::new)
            .extend(census.new_succeeded.iter().cloned());
        uncounted
            .failed
            .get_or_insert_with(Vec::new)
            .extend(census.new_failed.iter().cloned());
        status.uncounted_terminated_pods = Some(uncounted);
        if indexed {
            status.completed_indexes = Some(pods::format_indexes(&completed));
        }
        let job = self.write_status(job, status).await?;
        let Some(job) = job else {
            return Ok(());
        };

        // Release the recorded pods, then move them into the counters.
        let gone = self.release(key, namespace, &census.release).await?;
        let mut status = job.status.clone().unwrap_or_default();
        let mut uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let holding: HashSet<&str> = owned
            .iter()
            .filter(|p| pods::has_finalizer(p))
            .filter_map(|p| p.metadata.uid.as_deref())
            .filter(|u| !gone.contains(*u))
            .collect();
        for (list, counter) in [
            (&mut uncounted.succeeded, &mut status.succeeded),
            (&mut uncounted.failed, &mut status.failed),
        ] {
            let before = list.as_ref().map_or(0, Vec::len);
            list.get_or_insert_with(Vec::new)
                .retain(|u| holding.contains(u.as_str()));
            let moved = before - list.as_ref().map_or(0, Vec::len);
            if moved > 0 {
                *counter = Some(counter.unwrap_or(0) + moved as i32);
            }
        }
        let all_counted = uncounted.succeeded.as_ref().is_none_or(Vec::is_empty)
            && uncounted.failed.as_ref().is_none_or(Vec::is_empty);
        status.uncounted_terminated_pods = Some(uncounted);
        let finishing = all_counted && active == 0 && census.terminating == 0 && deleted.is_empty();
        let mut finished_event = None;
        if finishing {
            if let Some(target) = condition_of(&status, "FailureTarget").cloned() {
                let reason = target.reason.clone().unwrap_or_default();
                let message = target.message.clone().unwrap_or_default();
                set_condition(&mut status, "Failed", true, &reason, &message);
                finished_event = Some(("Warning", reason, message));
            } else if condition_of(&status, "SuccessCriteriaMet").is_some() {
                set_condition(
                    &mut status,
                    "Complete",
                    true,
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                );
                status.completion_time = Some(Time(now_second()));
                finished_event = Some(("Normal", "Completed".into(), "Job completed".into()));
            }
        }
        if self.write_status(&job, status).await?.is_some() {
            if let Some((type_, reason, message)) = finished_event {
                self.event(&job, type_, &reason, message).await;
                lock(&self.backoff).remove(key);
            }
        }
        if let Some(delay) = requeue {
            self.queue.add_after(key.to_string(), delay);
        }
        Ok(())
    }

    /// Remembers new failures (and forgets them after a success) for the
    /// pod-creation backoff.
    fn note_backoff(&self, key: &str, census: &Census<'_>, now: Timestamp) {
        let mut backoff = lock(&self.backoff);
        if !census.new_succeeded.is_empty() {
            backoff.remove(key);
        }
        if !census.new_failed.is_empty() {
            let entry = backoff.entry(key.to_string()).or_insert(Backoff {
                failures: 0,
                last: now,
            });
            entry.failures += census.new_failed.len() as u32;
            entry.last = now;
        }
    }

    fn backoff_remaining(&self, key: &str, now: Timestamp) -> Duration {
        let Some(b) = lock(&self.backoff).get(key).copied() else {
            return Duration::ZERO;
        };
        let elapsed = Duration::from_secs((now.as_second() - b.last.as_second()).max(0) as u64);
        pods::backoff(b.failures).saturating_sub(elapsed)
    }

    /// Creates and deletes pods; returns the names created and deleted.
    async fn apply_plan(&self, key: &str, job: &Job, plan: &Plan) -> (Vec<String>, Vec<String>) {
        let namespace = job.metadata.namespace.as_deref().unwrap_or_default();
        let api = self.pods_api(namespace);
        let params = PostParams::default();
        let new_pods: Vec<Pod> = plan
            .create
            .iter()
            .take(MAX_BATCH)
            .map(|index| new_pod(job, *index))
            .collect();
        let creates =
            futures::future::join_all(new_pods.iter().map(|p| api.create(&params, p))).await;
        let mut created = Vec::new();
        for result in creates {
            match result {
                Ok(p) => {
                    let n = p.metadata.name.unwrap_or_default();
                    self.event(
                        job,
                        "Normal",
                        "SuccessfulCreate",
                        format!("Created pod: {n}"),
                    )
                    .await;
                    created.push(n);
                }
                Err(e) => {
                    tracing::info!(job = %key, error = %e, "creating a pod failed");
                    self.event(
                        job,
                        "Warning",
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    )
                    .await;
                    self.queue.retry(key.to_string());
                }
            }
        }
        let mut deleted = Vec::new();
        for n in plan.delete.iter().take(MAX_BATCH) {
            match api.delete(n, &DeleteParams::background()).await {
                Ok(_) => {
                    self.event(
                        job,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {n}"),
                    )
                    .await;
                    deleted.push(n.clone());
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => {
                    tracing::info!(job = %key, error = %e, "deleting a pod failed");
                    self.queue.retry(key.to_string());
                }
            }
        }
        self.expectations.expect(
            key,
            created.iter().cloned().collect(),
            deleted.iter().cloned().collect(),
        );
        (created, deleted)
    }

    /// Removes the tracking finalizer from `pods`; returns the uids released
    /// (or already gone).
    async fn release(
        &self,
        key: &str,
        namespace: &str,
        pods: &[&Pod],
    ) -> Result<HashSet<String>, JobError> {
        let api = self.pods_api(namespace);
        let mut done = HashSet::new();
        let mut failure = None;
        for pod in pods {
            let (Some(name), Some(uid)) = (&pod.metadata.name, &pod.metadata.uid) else {
                continue;
            };
            let finalizers = pod.metadata.finalizers.clone().unwrap_or_default();
            if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
                continue;
            }
            let rest: Vec<&String> = finalizers
                .iter()
                .filter(|f| *f != TRACKING_FINALIZER)
                .collect();
            // The uid and resourceVersion guard against clobbering a
            // concurrent change to the list (a conflict is retried).
            let rest = (!rest.is_empty()).then_some(rest);
            let patch = json!({"metadata": {"finalizers": rest, "uid": uid,
                "resourceVersion": pod.metadata.resource_version}});
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    done.insert(uid.clone());
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    done.insert(uid.clone());
                }
                Err(e) => failure = Some(e),
            }
        }
        {
            let mut released = lock(&self.released);
            let still: HashSet<String> = self
                .pods
                .store()
                .state()
                .iter()
                .filter(|p| pods::has_finalizer(p))
                .filter_map(|p| p.metadata.uid.clone())
                .collect();
            let set = released.entry(key.to_string()).or_default();
            set.retain(|u| still.contains(u));
            set.extend(done.iter().cloned());
        }
        match failure {
            Some(e) => Err(JobError::Finalizer(e)),
            None => Ok(done),
        }
    }

    /// Writes `status` if it differs from the Job's; returns the Job as
    /// stored (`None` once it is gone).
    async fn write_status(&self, job: &Job, status: JobStatus) -> Result<Option<Job>, JobError> {
        if job.status.as_ref() == Some(&status) {
            return Ok(Some(job.clone()));
        }
        let mut updated = job.clone();
        updated.status = Some(status);
        let api: Api<Job> = Api::namespaced(
            self.client.clone(),
            job.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = job.metadata.name.as_deref().unwrap_or_default();
        match api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            Ok(j) => Ok(Some(j)),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
            Err(e) => Err(JobError::Status(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(spec: serde_json::Value) -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "j", "namespace": "ns", "uid": "u1"},
            "spec": spec,
        }))
        .expect("job")
    }

    fn pod(name: &str, index: Option<i32>) -> Pod {
        let annotations = index.map(|i| json!({INDEX_KEY: i.to_string()}));
        serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": annotations},
            "status": {"phase": "Running"},
        }))
        .expect("pod")
    }

    #[test]
    fn non_indexed_plans_up_to_parallelism() {
        let j = job(json!({"parallelism": 2, "completions": 5, "template": {}}));
        let running = pod("a", None);
        assert_eq!(plan(&j, &[&running], 0, &BTreeSet::new()).create.len(), 1);
        // Only one completion left: the running pod is enough.
        assert_eq!(plan(&j, &[&running], 4, &BTreeSet::new()), Plan::default());
        // Work queue (no completions): no new pods after a success.
        let wq = job(json!({"parallelism": 3, "template": {}}));
        assert_eq!(plan(&wq, &[], 0, &BTreeSet::new()).create.len(), 3);
        assert_eq!(plan(&wq, &[&running], 1, &BTreeSet::new()), Plan::default());
    }

    #[test]
    fn indexed_plans_missing_indexes_and_drops_duplicates() {
        let j = job(
            json!({"parallelism": 3, "completions": 4, "completionMode": "Indexed", "template": {}}),
        );
        let p0 = pod("p0", Some(0));
        let dup = pod("dup", Some(0));
        let done = BTreeSet::from([1]);
        let plan = plan(&j, &[&p0, &dup], 1, &done);
        assert_eq!(plan.create, vec![Some(2), Some(3)]);
        assert_eq!(plan.delete, vec!["dup".to_string()]);
    }

    #[test]
    fn indexed_pods_get_index_hostname_and_env() {
        let j = job(json!({"completionMode": "Indexed", "completions": 3,
            "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}));
        let p = new_pod(&j, Some(2));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("j-2-"));
        assert_eq!(
            p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(INDEX_KEY)),
            Some(&"2".to_string())
        );
        let spec = p.spec.expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("j-2"));
        let env = spec.containers[0].env.clone().unwrap_or_default();
        assert_eq!(env[0].name, "JOB_COMPLETION_INDEX");
        assert_eq!(
            p.metadata.finalizers,
            Some(vec![TRACKING_FINALIZER.to_string()])
        );
        let owner = controller_of(p.metadata.owner_references.as_ref()).expect("owner");
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Job", "u1"));
    }

    fn spec_of(value: serde_json::Value) -> JobSpec {
        job(value).spec.expect("spec")
    }

    #[test]
    fn verdicts_in_upstream_order() {
        let t = |s: i64| Timestamp::from_second(s).expect("ts");
        let tally = |succeeded, failed, active| Tally {
            succeeded,
            failed,
            active,
            ..Tally::default()
        };
        let spec = spec_of(json!({"completions": 2, "backoffLimit": 1,
            "activeDeadlineSeconds": 10, "template": {}}));
        assert_eq!(
            verdict(&spec, Some(t(0)), &tally(1, 1, 1), None, t(5)),
            None
        );
        assert_eq!(
            verdict(&spec, Some(t(0)), &tally(2, 1, 0), None, t(5)),
            Some(Verdict::Succeed)
        );
        assert!(matches!(
            verdict(&spec, Some(t(0)), &tally(2, 2, 0), None, t(5)),
            Some(Verdict::Fail("BackoffLimitExceeded", _))
        ));
        assert!(matches!(
            verdict(&spec, Some(t(0)), &tally(0, 0, 1), None, t(10)),
            Some(Verdict::Fail("DeadlineExceeded", _))
        ));
        assert!(matches!(
            verdict(&spec, Some(t(0)), &tally(0, 5, 0), Some("rule".into()), t(10)),
            Some(Verdict::Fail("PodFailurePolicy", m)) if m == "rule"
        ));
        // A suspended Job never passes its deadline.
        let paused = spec_of(json!({"suspend": true, "activeDeadlineSeconds": 1, "template": {}}));
        assert_eq!(
            verdict(&paused, Some(t(0)), &tally(0, 0, 0), None, t(50)),
            None
        );
        // Work queue: complete once one succeeded and none runs.
        let wq = spec_of(json!({"parallelism": 2, "template": {}}));
        assert_eq!(verdict(&wq, None, &tally(1, 0, 1), None, t(0)), None);
        assert_eq!(
            verdict(&wq, None, &tally(1, 0, 0), None, t(0)),
            Some(Verdict::Succeed)
        );
        // OnFailure: restarts reach the limit.
        let restarting = spec_of(json!({"backoffLimit": 2,
            "template": {"spec": {"restartPolicy": "OnFailure", "containers": []}}}));
        let mut counts = tally(0, 0, 1);
        counts.restarts = 2;
        assert!(matches!(
            verdict(&restarting, None, &counts, None, t(0)),
            Some(Verdict::Fail("BackoffLimitExceeded", _))
        ));
    }

    #[test]
    fn conditions_transition_once() {
        let mut status = JobStatus::default();
        set_condition(
            &mut status,
            "Suspended",
            true,
            "JobSuspended",
            "Job suspended",
        );
        let first = status.conditions.clone();
        set_condition(
            &mut status,
            "Suspended",
            true,
            "JobSuspended",
            "Job suspended",
        );
        assert_eq!(status.conditions, first);
        set_condition(&mut status, "Suspended", false, "JobResumed", "Job resumed");
        let c = &status.conditions.as_ref().expect("conditions")[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some("JobResumed"))
        );
        assert!(condition_of(&status, "Suspended").is_none());
    }
}
