//! The pods of one simulated node: every pod bound to it goes straight to
//! Running (with made-up IPs), a pod owned by a Job goes on to Succeeded
//! after `--job-run-seconds` (or Failed, when its first container's command
//! ends in `false` or `exit N` with N > 0), and a pod being deleted is
//! finalized at once (there is nothing to stop).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::{Value, json};

use super::{SimNode, now_seconds};
use crate::cli::sim_nodes::SimNodesArgs;

/// Watches the pods bound to `node` and plays their lifecycle.
pub async fn run(client: Client, args: Arc<SimNodesArgs>, node: SimNode) {
    let all: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", node.name));
    let next_ip = Arc::new(AtomicU32::new(0));
    let stream = watcher(all, config).default_backoff().applied_objects();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        let pod = match event {
            Ok(pod) => pod,
            Err(e) => {
                tracing::debug!(node = %node.name, error = %e, "pod watch failed; retrying");
                continue;
            }
        };
        let (Some(namespace), Some(name)) =
            (pod.metadata.namespace.clone(), pod.metadata.name.clone())
        else {
            continue;
        };
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        if pod.metadata.deletion_timestamp.is_some() {
            match pods
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => tracing::warn!(pod = %name, error = %e, "finalizing the pod failed"),
            }
            continue;
        }
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        if phase != "Pending" {
            continue;
        }
        let n = next_ip.fetch_add(1, Ordering::Relaxed) % 253 + 2;
        let pod_ip = format!("10.244.{}.{n}", node.index);
        let status = running_status(&pod, &pod_ip, &node.host_ip());
        if let Err(e) = pods
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
        {
            tracing::warn!(pod = %name, error = %e, "marking the pod Running failed");
            continue;
        }
        if owned_by_job(&pod) {
            let seconds = args.job_run_seconds;
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(seconds)).await;
                let status = finished_status(&pod, exit_code(&pod));
                if let Err(e) = pods
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
                {
                    tracing::warn!(pod = %name, error = %e, "marking the pod finished failed");
                }
            });
        }
    }
}

fn owned_by_job(pod: &Pod) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "Job" && o.controller == Some(true))
}

fn container_names(pod: &Pod) -> Vec<(String, String)> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect()
}

fn conditions(now: &str, ready: bool) -> Value {
    let status = |b: bool| if b { "True" } else { "False" };
    let c = |t: &str, s: &str| json!({"type": t, "status": s, "lastTransitionTime": now});
    json!([
        c("PodReadyToStartContainers", "True"),
        c("Initialized", "True"),
        c("Ready", status(ready)),
        c("ContainersReady", status(ready)),
        c("PodScheduled", "True"),
    ])
}

fn running_status(pod: &Pod, pod_ip: &str, host_ip: &str) -> Value {
    let now = now_seconds();
    let containers: Vec<Value> = container_names(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({"name": name, "image": image, "imageID": format!("sim://{image}"),
                   "containerID": format!("sim://{name}"), "ready": true, "started": true,
                   "restartCount": 0, "state": {"running": {"startedAt": now}}})
        })
        .collect();
    json!({"status": {
        "phase": "Running",
        "conditions": conditions(&now, true),
        "containerStatuses": containers,
        "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "startTime": now,
    }})
}

/// The exit code a simulated run ends with: the first container's command
/// and args, read as a shell line, end in `false` (1) or `exit N` (N).
fn exit_code(pod: &Pod) -> i32 {
    let Some(c) = pod.spec.as_ref().and_then(|s| s.containers.first()) else {
        return 0;
    };
    let line = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        [.., "false"] => 1,
        [.., "exit", n] => n.parse().unwrap_or(0),
        _ => 0,
    }
}

fn finished_status(pod: &Pod, exit_code: i32) -> Value {
    let now = now_seconds();
    let (phase, reason) = if exit_code == 0 {
        ("Succeeded", "Completed")
    } else {
        ("Failed", "Error")
    };
    let containers: Vec<Value> = container_names(pod)
        .into_iter()
        .map(|(name, image)| {
            json!({"name": name, "image": image, "imageID": format!("sim://{image}"),
                   "containerID": format!("sim://{name}"), "ready": false, "started": false,
                   "restartCount": 0, "state": {"terminated": {"exitCode": exit_code, "reason": reason,
                   "startedAt": now, "finishedAt": now}}})
        })
        .collect();
    json!({"status": {
        "phase": phase,
        "conditions": conditions(&now, false),
        "containerStatuses": containers,
    }})
}
