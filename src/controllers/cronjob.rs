//! The CronJob controller, as upstream's (v2): at each scheduled time of a
//! CronJob's `schedule` (in its `timeZone`, else the server's) it creates a
//! Job `<cronjob>-<scheduled time in minutes since the epoch>` from the
//! `jobTemplate`, honouring `concurrencyPolicy`, `startingDeadlineSeconds`
//! and `suspend`; it tracks `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime` and keeps only the newest
//! `successfulJobsHistoryLimit`/`failedJobsHistoryLimit` finished Jobs.
//!
//! The controller reads the time from a [`Clock`], so tests can drive it.

mod schedule;

use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use super::job::has_condition;
use super::{Shared, controller_of, owner_reference};
use crate::api::kinds::cron::{CronSpec, parse_schedule};
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};

const COMPONENT: &str = "cronjob-controller";
/// The annotation with the time a Job was scheduled for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Where the controller reads the time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Why a sync failed (the CronJob is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum CronJobError {
    #[error("creating a job: {0}")]
    Create(kube::Error),
    #[error("deleting a job: {0}")]
    Delete(kube::Error),
    #[error("updating the status: {0}")]
    Status(kube::Error),
}

struct Controller {
    client: Client,
    cronjobs: Shared<CronJob>,
    jobs: Shared<Job>,
    queue: WorkQueue,
    clock: Arc<dyn Clock>,
}

/// Starts the controller on the shared informers with the system clock.
pub fn start(client: Client, cronjobs: Shared<CronJob>, jobs: Shared<Job>) {
    start_with_clock(client, cronjobs, jobs, Arc::new(SystemClock));
}

/// Starts the controller with `clock` as its time source.
pub fn start_with_clock(
    client: Client,
    cronjobs: Shared<CronJob>,
    jobs: Shared<Job>,
    clock: Arc<dyn Clock>,
) {
    let c = Arc::new(Controller {
        client,
        cronjobs,
        jobs,
        queue: WorkQueue::new(),
        clock,
    });
    tokio::spawn(c.clone().watch_cronjobs());
    tokio::spawn(c.clone().watch_jobs());
    tokio::spawn(async move {
        let worker = c.clone();
        c.queue
            .process("cronjob", |key| {
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

/// Whether a Job has finished, and whether it succeeded.
fn finished(job: &Job) -> Option<bool> {
    if has_condition(job, "Complete") {
        Some(true)
    } else if has_condition(job, "Failed") {
        Some(false)
    } else {
        None
    }
}

/// The Job name for a scheduled time: minutes since the epoch.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// RFC 3339 in the CronJob's zone, as Go's `time.RFC3339` writes it.
fn rfc3339(t: Timestamp, tz: &TimeZone) -> String {
    let text = t
        .to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string();
    match text.strip_suffix("+00:00") {
        Some(base) => format!("{base}Z"),
        None => text,
    }
}

/// The finished Jobs to delete to keep `limit`: the oldest by start time
/// (Jobs that never started count as newest), as upstream.
pub fn over_history_limit(mut finished: Vec<&Job>, limit: i32) -> Vec<String> {
    let limit = limit.max(0) as usize;
    if finished.len() <= limit {
        return Vec::new();
    }
    finished.sort_by(|a, b| {
        let start = |j: &Job| {
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0)
        };
        match (start(a), start(b)) {
            (Some(x), Some(y)) if x != y => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            _ => a.metadata.name.cmp(&b.metadata.name),
        }
    });
    let excess = finished.len() - limit;
    finished
        .into_iter()
        .take(excess)
        .filter_map(|j| j.metadata.name.clone())
        .collect()
}

fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// The Job a CronJob runs at `scheduled`.
fn new_job(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let name = cj.metadata.name.clone().unwrap_or_default();
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let from = template.metadata.unwrap_or_default();
    let mut annotations = from.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), rfc3339(scheduled, tz));
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: from.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner_reference(
                "batch/v1",
                "CronJob",
                &name,
                cj.metadata.uid.as_deref().unwrap_or_default(),
            )]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// What a sync decided about starting a Job now.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// Nothing is due.
    Wait,
    /// Start the Job for this time.
    Start(Timestamp),
    /// A warning event instead of a start.
    Warn(&'static str, String),
    /// A normal event instead of a start.
    Skip(&'static str, String),
}

/// Whether a run is due at `now`, and the warning about missed runs (if
/// there were too many), for a CronJob whose active Jobs are `active`.
fn decide(
    cj: &CronJob,
    spec: &CronSpec,
    tz: &TimeZone,
    now: Timestamp,
    active: usize,
    existing: &dyn Fn(&str) -> bool,
) -> (Decision, Option<String>) {
    let Some(cs) = cj.spec.as_ref() else {
        return (Decision::Wait, None);
    };
    let status = cj.status.as_ref();
    let last = status
        .and_then(|s| s.last_schedule_time.as_ref())
        .map(|t| t.0);
    let created = cj.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let mut earliest = last.or(created).unwrap_or(now);
    if let Some(sds) = cs.starting_deadline_seconds {
        if let Ok(t) = Timestamp::from_second(now.as_second() - sds) {
            earliest = earliest.max(t);
        }
    }
    let (scheduled, missed) = schedule::most_recent(spec, tz, earliest, now);
    let too_many = (missed > schedule::MAX_MISSED).then(|| {
        format!(
            "too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
        )
    });
    let Some(t) = scheduled else {
        return (Decision::Wait, too_many);
    };
    if let Some(sds) = cs.starting_deadline_seconds {
        if t.as_second() + sds < now.as_second() {
            let message = format!("Missed scheduled time to start a job: {}", rfc3339(t, tz));
            return (Decision::Warn("MissSchedule", message), too_many);
        }
    }
    let name = job_name(cj.metadata.name.as_deref().unwrap_or_default(), t);
    if last == Some(t) || existing(&name) {
        return (Decision::Wait, too_many);
    }
    if cs.concurrency_policy.as_deref() == Some("Forbid") && active > 0 {
        let message =
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .to_string();
        return (Decision::Skip("JobAlreadyActive", message), too_many);
    }
    (Decision::Start(t), too_many)
}

impl Controller {
    async fn watch_cronjobs(self: Arc<Self>) {
        let mut changes = self.cronjobs.subscribe();
        // CronJobs listed before this subscription.
        self.enqueue_all();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(cj) => self.queue.add(key_of(cj.as_ref())),
                Change::Deleted(_) => {}
                Change::Resync => self.enqueue_all(),
            }
        }
    }

    async fn watch_jobs(self: Arc<Self>) {
        let mut changes = self.jobs.subscribe();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(job) | Change::Deleted(job) => {
                    if let Some(owner) = controller_of(job.metadata.owner_references.as_ref())
                        .filter(|o| o.kind == "CronJob")
                    {
                        let namespace = job.metadata.namespace.as_deref().unwrap_or_default();
                        self.queue.add(workqueue::key(namespace, &owner.name));
                    }
                }
                Change::Resync => self.enqueue_all(),
            }
        }
    }

    fn enqueue_all(&self) {
        for cj in self.cronjobs.store().state() {
            self.queue.add(key_of(cj.as_ref()));
        }
    }

    async fn event(&self, cj: &CronJob, type_: &str, reason: &str, message: String) {
        let reference = crate::events::reference("batch/v1", "CronJob", &cj.metadata);
        crate::events::record(&self.client, COMPONENT, reference, type_, reason, message).await;
    }

    async fn sync(&self, key: &str) -> Result<(), CronJobError> {
        let (namespace, name) = workqueue::split(key);
        let Some(cj) = self.cronjobs.get(namespace, name) else {
            return Ok(());
        };
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let owned: Vec<Arc<Job>> = self
            .jobs
            .store()
            .state()
            .into_iter()
            .filter(|j| j.metadata.namespace.as_deref() == Some(namespace))
            .filter(|j| {
                controller_of(j.metadata.owner_references.as_ref())
                    .is_some_and(|o| o.kind == "CronJob" && o.uid == uid)
            })
            .collect();
        let now = self.clock.now();
        let mut status = cj.status.clone().unwrap_or_default();
        self.track_active(&cj, &owned, &mut status).await;
        let jobs_api: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        if cj.metadata.deletion_timestamp.is_some() {
            return self.write_status(&cj, status).await;
        }
        let spec = cj.spec.clone().unwrap_or_default();
        let tz = match spec.time_zone.as_deref() {
            None => TimeZone::system(),
            Some(zone) => match TimeZone::get(zone) {
                Ok(tz) => tz,
                Err(e) => {
                    let message = format!("invalid timeZone: {zone:?}: {e}");
                    self.event(&cj, "Warning", "UnknownTimeZone", message).await;
                    return self.write_status(&cj, status).await;
                }
            },
        };
        let cron = match parse_schedule(&spec.schedule) {
            Ok(c) => c,
            Err(e) => {
                let message = format!("unparseable schedule: {:?} : {e}", spec.schedule);
                self.event(&cj, "Warning", "UnparseableSchedule", message)
                    .await;
                return self.write_status(&cj, status).await;
            }
        };
        if spec.suspend != Some(true) {
            let active = status.active.as_ref().map_or(0, Vec::len);
            let existing = |n: &str| owned.iter().any(|j| j.metadata.name.as_deref() == Some(n));
            let mut view = (*cj).clone();
            view.status = Some(status.clone());
            let (decision, too_many) = decide(&view, &cron, &tz, now, active, &existing);
            if let Some(message) = too_many {
                self.event(&cj, "Warning", "TooManyMissedTimes", message)
                    .await;
            }
            match decision {
                Decision::Wait => {}
                Decision::Warn(reason, message) => {
                    self.event(&cj, "Warning", reason, message).await;
                }
                Decision::Skip(reason, message) => {
                    self.event(&cj, "Normal", reason, message).await;
                }
                Decision::Start(t) => {
                    if spec.concurrency_policy.as_deref() == Some("Replace") {
                        self.replace_active(&cj, &jobs_api, &mut status).await?;
                    }
                    self.start_job(&cj, &jobs_api, t, &tz, &mut status).await?;
                }
            }
        }
        self.clean_history(&cj, &owned, &jobs_api).await;
        self.write_status(&cj, status).await?;
        if let Some(next) = schedule::next_after(&cron, &tz, now) {
            let wait = (next.as_second() - now.as_second()).max(0) as u64;
            self.queue.add_after(
                key.to_string(),
                Duration::from_secs(wait) + Duration::from_millis(100),
            );
        }
        Ok(())
    }

    /// Brings `status.active` up to date with the owned Jobs, noting the
    /// ones that finished.
    async fn track_active(&self, cj: &CronJob, owned: &[Arc<Job>], status: &mut CronJobStatus) {
        let listed = status.active.take().unwrap_or_default();
        let mut active = Vec::new();
        for r in &listed {
            let Some(job) = owned.iter().find(|j| j.metadata.uid == r.uid) else {
                let n = r.name.clone().unwrap_or_default();
                self.event(
                    cj,
                    "Normal",
                    "MissingJob",
                    format!("Active job went missing: {n}"),
                )
                .await;
                continue;
            };
            match finished(job) {
                None => active.push(r.clone()),
                Some(ok) => {
                    let n = job.metadata.name.clone().unwrap_or_default();
                    let state = if ok { "Complete" } else { "Failed" };
                    let message = format!("Saw completed job: {n}, condition: {state}");
                    self.event(cj, "Normal", "SawCompletedJob", message).await;
                }
            }
        }
        for job in owned {
            if finished(job).is_none() && !active.iter().any(|r| r.uid == job.metadata.uid) {
                active.push(job_ref(job));
            }
            if finished(job) == Some(true) {
                let done = job.status.as_ref().and_then(|s| s.completion_time.as_ref());
                let last = status.last_successful_time.as_ref().map(|t| t.0);
                if let Some(done) = done.filter(|d| last.is_none_or(|l| d.0 > l)) {
                    status.last_successful_time = Some(done.clone());
                }
            }
        }
        status.active = (!active.is_empty()).then_some(active);
    }

    async fn replace_active(
        &self,
        cj: &CronJob,
        api: &Api<Job>,
        status: &mut CronJobStatus,
    ) -> Result<(), CronJobError> {
        for r in status.active.take().unwrap_or_default() {
            let n = r.name.clone().unwrap_or_default();
            match api.delete(&n, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(CronJobError::Delete(e)),
            }
            self.event(cj, "Normal", "SuccessfulDelete", format!("Deleted job {n}"))
                .await;
        }
        Ok(())
    }

    async fn start_job(
        &self,
        cj: &CronJob,
        api: &Api<Job>,
        scheduled: Timestamp,
        tz: &TimeZone,
        status: &mut CronJobStatus,
    ) -> Result<(), CronJobError> {
        let job = new_job(cj, scheduled, tz);
        let name = job.metadata.name.clone().unwrap_or_default();
        match api.create(&PostParams::default(), &job).await {
            Ok(created) => {
                self.event(
                    cj,
                    "Normal",
                    "SuccessfulCreate",
                    format!("Created job {name}"),
                )
                .await;
                status
                    .active
                    .get_or_insert_with(Vec::new)
                    .push(job_ref(&created));
            }
            // Created by an earlier sync whose status write was lost.
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => {
                let message = format!("Error creating job: {e}");
                self.event(cj, "Warning", "FailedCreate", message).await;
                return Err(CronJobError::Create(e));
            }
        }
        status.last_schedule_time = Some(Time(scheduled));
        Ok(())
    }

    /// Deletes the finished Jobs beyond the history limits.
    async fn clean_history(&self, cj: &CronJob, owned: &[Arc<Job>], api: &Api<Job>) {
        let spec = cj.spec.as_ref();
        let limits = [
            (true, spec.and_then(|s| s.successful_jobs_history_limit)),
            (false, spec.and_then(|s| s.failed_jobs_history_limit)),
        ];
        for (ok, limit) in limits {
            let Some(limit) = limit else { continue };
            let done: Vec<&Job> = owned
                .iter()
                .filter(|j| finished(j) == Some(ok) && j.metadata.deletion_timestamp.is_none())
                .map(|j| j.as_ref())
                .collect();
            for n in over_history_limit(done, limit) {
                match api.delete(&n, &DeleteParams::background()).await {
                    Ok(_) => {
                        self.event(cj, "Normal", "SuccessfulDelete", format!("Deleted job {n}"))
                            .await;
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => tracing::info!(job = %n, error = %e, "deleting an old job failed"),
                }
            }
        }
    }

    async fn write_status(&self, cj: &CronJob, status: CronJobStatus) -> Result<(), CronJobError> {
        let current = cj.status.clone().unwrap_or_default();
        if current == status {
            return Ok(());
        }
        let mut updated = cj.clone();
        updated.status = Some(status);
        let api: Api<CronJob> = Api::namespaced(
            self.client.clone(),
            cj.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = cj.metadata.name.as_deref().unwrap_or_default();
        match api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(CronJobError::Status(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn cronjob(spec: serde_json::Value, last: Option<&str>) -> CronJob {
        serde_json::from_value(json!({
            "metadata": {"name": "cj", "namespace": "ns", "uid": "u",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": spec,
            "status": {"lastScheduleTime": last},
        }))
        .expect("cronjob")
    }

    fn run(cj: &CronJob, now: &str, active: usize) -> (Decision, Option<String>) {
        let cs = cj.spec.as_ref().expect("spec");
        let spec = parse_schedule(&cs.schedule).expect("schedule");
        decide(cj, &spec, &TimeZone::UTC, ts(now), active, &|_| false)
    }

    fn spec(extra: serde_json::Value) -> serde_json::Value {
        let mut s = json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {}}}});
        if let (Some(o), Some(e)) = (s.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        s
    }

    #[test]
    fn starts_the_most_recent_due_time_once() {
        let cj = cronjob(spec(json!({})), Some("2026-01-01T00:05:00Z"));
        assert_eq!(run(&cj, "2026-01-01T00:07:00Z", 0).0, Decision::Wait);
        assert_eq!(
            run(&cj, "2026-01-01T00:16:00Z", 0).0,
            Decision::Start(ts("2026-01-01T00:15:00Z"))
        );
        let done = cronjob(spec(json!({})), Some("2026-01-01T00:15:00Z"));
        assert_eq!(run(&done, "2026-01-01T00:16:00Z", 0).0, Decision::Wait);
    }

    #[test]
    fn forbid_skips_while_a_job_runs() {
        let cj = cronjob(spec(json!({"concurrencyPolicy": "Forbid"})), None);
        assert!(matches!(
            run(&cj, "2026-01-01T00:05:30Z", 1).0,
            Decision::Skip("JobAlreadyActive", _)
        ));
        assert_eq!(
            run(&cj, "2026-01-01T00:05:30Z", 0).0,
            Decision::Start(ts("2026-01-01T00:05:00Z"))
        );
    }

    #[test]
    fn starting_deadline_misses_late_starts_and_bounds_the_search() {
        let cj = cronjob(spec(json!({"startingDeadlineSeconds": 200})), None);
        // 00:05 is 240 s late, past the 200 s deadline.
        assert_eq!(
            run(&cj, "2026-01-01T00:09:00Z", 0).0,
            Decision::Wait,
            "the search starts 200 s back, after 00:05"
        );
        let cj = cronjob(spec(json!({"startingDeadlineSeconds": 10})), None);
        assert_eq!(
            run(&cj, "2026-01-01T00:05:08Z", 0).0,
            Decision::Start(ts("2026-01-01T00:05:00Z"))
        );
    }

    #[test]
    fn too_many_missed_times_warns_and_still_starts_the_latest() {
        let cj = cronjob(
            spec(json!({"schedule": "* * * * *"})),
            Some("2026-01-01T00:00:00Z"),
        );
        let (decision, warning) = run(&cj, "2026-01-02T00:00:30Z", 0);
        assert_eq!(decision, Decision::Start(ts("2026-01-02T00:00:00Z")));
        assert!(
            warning.is_some_and(|w| w.starts_with("too many missed start times: 1440.")),
            "a warning"
        );
    }

    #[test]
    fn job_names_and_history_limits() {
        assert_eq!(
            job_name("cj", ts("2026-01-01T00:05:00Z")),
            format!("cj-{}", ts("2026-01-01T00:05:00Z").as_second() / 60)
        );
        let job = |name: &str, start: Option<&str>| -> Job {
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"startTime": start}}))
            .expect("job")
        };
        let (a, b, c) = (
            job("a", Some("2026-01-01T00:02:00Z")),
            job("b", Some("2026-01-01T00:01:00Z")),
            job("c", None),
        );
        assert_eq!(over_history_limit(vec![&a, &b, &c], 1), ["b", "a"]);
        assert!(over_history_limit(vec![&a], 1).is_empty());
        assert_eq!(over_history_limit(vec![&a, &b], 0), ["b", "a"]);
    }

    #[test]
    fn scheduled_timestamp_is_rfc3339_in_the_zone() {
        let t = ts("2026-01-01T00:05:00Z");
        assert_eq!(rfc3339(t, &TimeZone::UTC), "2026-01-01T00:05:00Z");
        let tokyo = TimeZone::get("Asia/Tokyo").expect("zone");
        assert_eq!(rfc3339(t, &tokyo), "2026-01-01T09:05:00+09:00");
    }
}
