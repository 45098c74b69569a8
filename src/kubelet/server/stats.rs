//! `/pods` (the pods bound to this node) and `/stats/summary` (node and
//! container CPU and memory, in upstream's Summary API shape): the node's
//! figures from `/proc`, the containers' from CRI `ListContainerStats`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use k8s_cri::v1::{ContainerStats, ListContainerStatsRequest};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use super::{Failure, Shared};
use crate::kubelet::pods::POD_UID_LABEL;

pub(super) async fn pods(State(shared): State<Shared>) -> Response {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let params = ListParams::default().fields(&format!("spec.nodeName={}", shared.node_name));
    match api.list(&params).await {
        Ok(list) => {
            let items: Vec<Value> = list
                .items
                .iter()
                .filter_map(|p| serde_json::to_value(p).ok())
                .collect();
            axum::Json(json!({
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {},
                "items": items,
            }))
            .into_response()
        }
        Err(e) => Failure::runtime(format!("listing the node's pods: {e}")).into_response(),
    }
}

pub(super) async fn summary(State(shared): State<Shared>) -> Response {
    let now = jiff::Timestamp::now().to_string();
    let stats = match shared
        .cri
        .clone()
        .runtime
        .list_container_stats(ListContainerStatsRequest { filter: None })
        .await
    {
        Ok(r) => r.into_inner().stats,
        Err(e) => return Failure::runtime(e.message()).into_response(),
    };
    axum::Json(json!({
        "node": {
            "nodeName": shared.node_name,
            "startTime": boot_time(),
            "cpu": node_cpu(&now),
            "memory": node_memory(&now),
        },
        "pods": pod_stats(&stats, &now),
    }))
    .into_response()
}

/// Groups container stats by pod.
fn pod_stats(stats: &[ContainerStats], now: &str) -> Vec<Value> {
    let mut pods: BTreeMap<(String, String, String), Vec<Value>> = BTreeMap::new();
    for s in stats {
        let Some(attributes) = &s.attributes else {
            continue;
        };
        let label = |k: &str| attributes.labels.get(k).cloned().unwrap_or_default();
        let key = (
            label("io.kubernetes.pod.namespace"),
            label("io.kubernetes.pod.name"),
            label(POD_UID_LABEL),
        );
        let cpu = s.cpu.as_ref().map(|c| {
            json!({
                "time": now,
                "usageNanoCores": c.usage_nano_cores.as_ref().map(|v| v.value),
                "usageCoreNanoSeconds": c.usage_core_nano_seconds.as_ref().map(|v| v.value),
            })
        });
        let memory = s.memory.as_ref().map(|m| {
            json!({
                "time": now,
                "workingSetBytes": m.working_set_bytes.as_ref().map(|v| v.value),
                "usageBytes": m.usage_bytes.as_ref().map(|v| v.value),
                "rssBytes": m.rss_bytes.as_ref().map(|v| v.value),
            })
        });
        pods.entry(key).or_default().push(json!({
            "name": label("io.kubernetes.container.name"),
            "cpu": cpu,
            "memory": memory,
        }));
    }
    pods.into_iter()
        .map(|((namespace, name, uid), containers)| {
            let sum = |section: &str, field: &str| -> u64 {
                containers
                    .iter()
                    .filter_map(|c| c[section][field].as_u64())
                    .sum()
            };
            json!({
                "podRef": {"name": name, "namespace": namespace, "uid": uid},
                "cpu": {
                    "time": now,
                    "usageNanoCores": sum("cpu", "usageNanoCores"),
                    "usageCoreNanoSeconds": sum("cpu", "usageCoreNanoSeconds"),
                },
                "memory": {
                    "time": now,
                    "workingSetBytes": sum("memory", "workingSetBytes"),
                    "usageBytes": sum("memory", "usageBytes"),
                },
                "containers": containers,
            })
        })
        .collect()
}

/// When the machine booted (RFC 3339), from `/proc/stat`'s `btime`.
fn boot_time() -> Option<String> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    jiff::Timestamp::from_second(secs)
        .ok()
        .map(|t| t.to_string())
}

/// The node's cumulative CPU time in nanoseconds, from `/proc/stat`
/// (user, nice, system, irq, softirq and steal ticks of 1/100 s).
fn node_cpu(now: &str) -> Value {
    let busy = std::fs::read_to_string("/proc/stat").ok().and_then(|stat| {
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let tick = |i: usize| fields.get(i).copied().unwrap_or(0);
        Some(tick(0) + tick(1) + tick(2) + tick(5) + tick(6) + tick(7))
    });
    json!({
        "time": now,
        "usageCoreNanoSeconds": busy.map(|ticks| ticks.saturating_mul(10_000_000)),
    })
}

/// The node's memory from `/proc/meminfo`.
fn node_memory(now: &str) -> Value {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim_start_matches(':')
            .split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
            .map(|k| k * 1024)
    };
    let (total, free, available) = (kib("MemTotal"), kib("MemFree"), kib("MemAvailable"));
    json!({
        "time": now,
        "availableBytes": available,
        "usageBytes": total.zip(free).map(|(t, f)| t.saturating_sub(f)),
        "workingSetBytes": total.zip(available).map(|(t, a)| t.saturating_sub(a)),
    })
}
