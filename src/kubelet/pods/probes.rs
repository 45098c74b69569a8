//! Liveness, readiness and startup probes, one task per running container
//! and probe as upstream's prober workers: after `initialDelaySeconds`,
//! every `periodSeconds` the handler runs with `timeoutSeconds`; the result
//! flips after `successThreshold` successes or `failureThreshold` failures
//! in a row. Readiness starts as failure, liveness as success; liveness and
//! readiness wait for the startup probe to succeed. A failed attempt
//! records an `Unhealthy` event (the same failure again only after
//! [`EVENT_REPEAT`]). The pod worker reads the results: a failed
//! liveness or startup probe gets the container killed and restarted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};

use super::handlers;
use crate::runtime::cri::Cri;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }

    fn of(self, container: &Container) -> Option<&Probe> {
        match self {
            Kind::Liveness => container.liveness_probe.as_ref(),
            Kind::Readiness => container.readiness_probe.as_ref(),
            Kind::Startup => container.startup_probe.as_ref(),
        }
    }
}

/// How often the same failure is recorded again as an event.
const EVENT_REPEAT: Duration = Duration::from_secs(600);

type Key = (String, Kind);
type Results = Arc<Mutex<BTreeMap<Key, bool>>>;

/// What one container's probes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub started: bool,
    pub ready: bool,
    /// `Some(kind)` when a liveness or startup probe failed.
    pub failed: Option<&'static str>,
}

/// The probe tasks of one pod.
#[derive(Debug, Default)]
pub struct Prober {
    tasks: BTreeMap<Key, tokio::task::JoinHandle<()>>,
    results: Results,
}

/// What a probe task needs to reach the container and report.
#[derive(Clone)]
pub struct Target {
    pub cri: Cri,
    pub client: kube::Client,
    pub pod: Pod,
    pub pod_ip: String,
}

impl Prober {
    /// Starts the probe tasks of a running container (once per container id).
    pub fn ensure(&mut self, target: &Target, container: &Container, id: &str) {
        for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
            let Some(probe) = kind.of(container).cloned() else {
                continue;
            };
            let key = (id.to_string(), kind);
            if self.tasks.contains_key(&key) {
                continue;
            }
            let task = tokio::spawn(run(
                target.clone(),
                container.clone(),
                id.to_string(),
                kind,
                probe,
                self.results.clone(),
            ));
            self.tasks.insert(key, task);
        }
    }

    /// The verdict on a running container.
    pub fn verdict(&self, container: &Container, id: &str) -> Verdict {
        let results = self.results.lock().map(|r| r.clone()).unwrap_or_default();
        let get = |kind| results.get(&(id.to_string(), kind)).copied();
        let started = container.startup_probe.is_none() || get(Kind::Startup) == Some(true);
        let ready =
            started && (container.readiness_probe.is_none() || get(Kind::Readiness) == Some(true));
        let failed = if get(Kind::Startup) == Some(false) {
            Some("startup")
        } else if started && get(Kind::Liveness) == Some(false) {
            Some("liveness")
        } else {
            None
        };
        Verdict {
            started,
            ready,
            failed,
        }
    }

    /// Stops the tasks of containers not in `running`.
    pub fn retain(&mut self, running: &BTreeSet<String>) {
        self.tasks.retain(|(id, _), task| {
            let keep = running.contains(id);
            if !keep {
                task.abort();
            }
            keep
        });
        if let Ok(mut results) = self.results.lock() {
            results.retain(|(id, _), _| running.contains(id));
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

/// The thresholds of a probe, with upstream's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

pub fn timing(probe: &Probe) -> Timing {
    let secs = |v: Option<i32>, default: i32| {
        Duration::from_secs(u64::try_from(v.unwrap_or(default).max(0)).unwrap_or(0))
    };
    let count =
        |v: Option<i32>, default: i32| u32::try_from(v.unwrap_or(default).max(1)).unwrap_or(1);
    Timing {
        initial_delay: secs(probe.initial_delay_seconds, 0),
        period: secs(probe.period_seconds, 10).max(Duration::from_secs(1)),
        timeout: secs(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
        success_threshold: count(probe.success_threshold, 1),
        failure_threshold: count(probe.failure_threshold, 3),
    }
}

/// Consecutive outcomes against the thresholds.
#[derive(Debug, Default)]
pub struct Counter {
    successes: u32,
    failures: u32,
}

impl Counter {
    /// Adds an outcome; `Some` is the result once a threshold is reached.
    pub fn add(&mut self, ok: bool, timing: &Timing) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes += 1;
            (self.successes >= timing.success_threshold).then_some(true)
        } else {
            self.successes = 0;
            self.failures += 1;
            (self.failures >= timing.failure_threshold).then_some(false)
        }
    }
}

async fn run(
    mut target: Target,
    container: Container,
    id: String,
    kind: Kind,
    probe: Probe,
    results: Results,
) {
    let timing = timing(&probe);
    let key = (id.clone(), kind);
    tokio::time::sleep(timing.initial_delay).await;
    let mut counter = Counter::default();
    let mut last_event = None;
    let mut tick = tokio::time::interval(timing.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let started = container.startup_probe.is_none()
            || results
                .lock()
                .map(|r| r.get(&(id.clone(), Kind::Startup)) == Some(&true))
                .unwrap_or(false);
        if kind == Kind::Startup {
            if started {
                return;
            }
        } else if !started {
            continue;
        }
        let outcome = attempt(&mut target, &container, &id, &probe, timing.timeout).await;
        if let Err(output) = &outcome
            && !repeated(&mut last_event, output)
        {
            crate::events::record(
                &target.client,
                "kubelet",
                super::lifecycle::container_ref(&target.pod, &container.name),
                "Warning",
                "Unhealthy",
                format!("{} probe failed: {output}", kind.name()),
            )
            .await;
        }
        let Some(result) = counter.add(outcome.is_ok(), &timing) else {
            continue;
        };
        if let Ok(mut r) = results.lock() {
            r.insert(key.clone(), result);
        }
        // A failed liveness or startup probe ends with this container.
        if !result && kind != Kind::Readiness {
            return;
        }
    }
}

/// Whether `output` repeats the last failure recorded less than
/// [`EVENT_REPEAT`] ago (upstream's recorder folds such repeats into one
/// event's count; skiff records them once); records it otherwise.
fn repeated(last: &mut Option<(String, std::time::Instant)>, output: &str) -> bool {
    if let Some((message, at)) = last
        && message == output
        && at.elapsed() < EVENT_REPEAT
    {
        return true;
    }
    *last = Some((output.to_string(), std::time::Instant::now()));
    false
}

async fn attempt(
    target: &mut Target,
    container: &Container,
    id: &str,
    probe: &Probe,
    timeout: Duration,
) -> Result<String, String> {
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        handlers::exec(&mut target.cri, id, &command, timeout).await
    } else if let Some(http) = &probe.http_get {
        handlers::http_get(http, container, &target.pod_ip, timeout).await
    } else if let Some(tcp) = &probe.tcp_socket {
        handlers::tcp(tcp, container, &target.pod_ip, timeout).await
    } else {
        Err("the probe has no handler".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_need_consecutive_outcomes() {
        let probe = Probe {
            success_threshold: Some(2),
            failure_threshold: Some(3),
            ..Default::default()
        };
        let t = timing(&probe);
        assert_eq!(t.period, Duration::from_secs(10));
        assert_eq!(t.timeout, Duration::from_secs(1));
        let mut c = Counter::default();
        assert_eq!(c.add(true, &t), None);
        assert_eq!(c.add(true, &t), Some(true));
        assert_eq!(c.add(false, &t), None);
        assert_eq!(c.add(false, &t), None);
        assert_eq!(c.add(true, &t), None, "a success resets the failures");
        assert_eq!(c.add(false, &t), None);
        assert_eq!(c.add(false, &t), None);
        assert_eq!(c.add(false, &t), Some(false));
    }

    #[test]
    fn repeated_failures_are_recorded_once() {
        let mut last = None;
        assert!(!repeated(&mut last, "connection refused"));
        assert!(repeated(&mut last, "connection refused"));
        assert!(!repeated(
            &mut last,
            "HTTP probe failed with statuscode: 500"
        ));
    }

    #[test]
    fn startup_gates_the_other_probes() {
        let container = Container {
            startup_probe: Some(Probe::default()),
            readiness_probe: Some(Probe::default()),
            ..Default::default()
        };
        let prober = Prober::default();
        let v = prober.verdict(&container, "c1");
        assert_eq!((v.started, v.ready, v.failed), (false, false, None));
        if let Ok(mut r) = prober.results.lock() {
            r.insert(("c1".into(), Kind::Startup), true);
            r.insert(("c1".into(), Kind::Liveness), false);
        }
        let v = prober.verdict(&container, "c1");
        assert_eq!(
            (v.started, v.ready, v.failed),
            (true, false, Some("liveness"))
        );
        if let Ok(mut r) = prober.results.lock() {
            r.insert(("c1".into(), Kind::Readiness), true);
        }
        assert!(prober.verdict(&container, "c1").ready);
    }
}
