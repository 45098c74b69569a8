//! The TTL-after-finished controller, as upstream's: deletes a finished Job
//! (`Complete` or `Failed`) once `spec.ttlSecondsAfterFinished` seconds have
//! passed since it finished, in the foreground so its pods go first.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Preconditions};
use kube::{Api, Client};

use super::Shared;
use super::job::finished_at;
use crate::informer::Change;
use crate::workqueue::{self, WorkQueue};

/// Starts the controller on the shared Job informer.
pub fn start(client: Client, jobs: Shared<Job>) {
    let queue = Arc::new(WorkQueue::new());
    let feed = queue.clone();
    let watched = jobs.clone();
    tokio::spawn(async move {
        let mut changes = watched.subscribe();
        let enqueue_all = || {
            for job in watched.store().state() {
                feed.add(key_of(&job));
            }
        };
        // Jobs listed before this subscription.
        enqueue_all();
        while let Some(change) = changes.next().await {
            match change {
                Change::Applied(job) => feed.add(key_of(&job)),
                Change::Deleted(_) => {}
                Change::Resync => enqueue_all(),
            }
        }
    });
    tokio::spawn(async move {
        queue
            .process("ttl-after-finished", |key| {
                let (client, jobs, queue) = (client.clone(), jobs.clone(), queue.clone());
                async move { sync(&client, &jobs, &queue, &key).await }
            })
            .await;
    });
}

fn key_of(job: &Job) -> String {
    workqueue::key(
        job.metadata.namespace.as_deref().unwrap_or_default(),
        job.metadata.name.as_deref().unwrap_or_default(),
    )
}

/// Seconds left before a finished Job with a TTL expires (`None` when it
/// has no TTL or is not finished).
pub fn seconds_left(job: &Job, now: Timestamp) -> Option<i64> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = finished_at(job)?.unwrap_or(now);
    Some(finished.as_second() + i64::from(ttl) - now.as_second())
}

async fn sync(
    client: &Client,
    jobs: &Shared<Job>,
    queue: &WorkQueue,
    key: &str,
) -> Result<(), kube::Error> {
    let (namespace, name) = workqueue::split(key);
    let Some(job) = jobs.get(namespace, name) else {
        return Ok(());
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let Some(left) = seconds_left(&job, Timestamp::now()) else {
        return Ok(());
    };
    if left > 0 {
        queue.add_after(key.to_string(), Duration::from_secs(left as u64));
        return Ok(());
    }
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: job.metadata.uid.clone(),
            resource_version: job.metadata.resource_version.clone(),
        }),
        ..DeleteParams::foreground()
    };
    tracing::info!(job = %key, "deleting the finished job (ttlSecondsAfterFinished)");
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ttl_counts_from_the_finished_condition() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "j"},
            "spec": {"ttlSecondsAfterFinished": 30, "template": {}},
            "status": {"conditions": [{"type": "Complete", "status": "True",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        }))
        .expect("job");
        let at = |s: &str| s.parse::<Timestamp>().expect("ts");
        assert_eq!(seconds_left(&job, at("2026-01-01T00:00:10Z")), Some(20));
        assert_eq!(seconds_left(&job, at("2026-01-01T00:01:00Z")), Some(-30));
        let mut running = job.clone();
        running.status = None;
        assert_eq!(seconds_left(&running, at("2026-01-01T00:00:10Z")), None);
    }
}
