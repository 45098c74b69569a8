//! Leader election through a `coordination.k8s.io/v1` Lease, as upstream's
//! client-go leaderelection: a candidate takes the Lease when it is free or
//! its holder has not renewed it for `leaseDurationSeconds` (judged by when
//! this candidate *saw* the record change, so clocks need not agree), the
//! leader renews it every retry period, and a leader that cannot renew
//! within the renew deadline steps down. Defaults are upstream's: 15 s
//! lease, 10 s renew deadline, 2 s retry period; identities are
//! `<hostname>_<uuid>`.
//!
//! [`spawn`] runs a role (the scheduler, the controllers) only while this
//! process leads: each term's tasks run on a runtime of their own, shut
//! down when the Lease is lost, and the process stands for election again.
//! A server that stops resigns and releases its Leases, so a restart does
//! not wait for them to expire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::Notify;

/// One election: which Lease, who we are, and the timings.
#[derive(Debug, Clone)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a holder's claim lasts without renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it steps down.
    pub renew_deadline: Duration,
    /// The wait between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl Config {
    /// The Lease `kube-system/<name>` with upstream's default timings.
    pub fn new(name: &str, identity: &str) -> Self {
        Config {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// A candidate's identity: `<hostname>_<uuid>`, as upstream's components.
pub fn identity() -> String {
    format!("{}_{}", crate::cli::host::hostname(), uuid::Uuid::new_v4())
}

/// A candidate for one Lease.
pub struct Elector {
    api: Api<Lease>,
    config: Config,
    /// The Lease spec last seen and when it was seen to change.
    observed: Option<(LeaseSpec, Instant)>,
}

impl Elector {
    pub fn new(client: Client, config: Config) -> Self {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    /// Whether the Lease, as last observed, is ours.
    pub fn is_leader(&self) -> bool {
        self.observed
            .as_ref()
            .and_then(|(spec, _)| spec.holder_identity.as_deref())
            == Some(self.config.identity.as_str())
    }

    /// One attempt to take or renew the Lease; `Ok(true)` when this
    /// candidate holds it afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let lease_seconds = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let mut ours = LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(lease_seconds.max(1)),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(0),
            ..Default::default()
        };
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(ours.clone()),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observed = Some((ours, Instant::now()));
                    Ok(true)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        if self.observed.as_ref().map(|(spec, _)| spec) != Some(&current) {
            self.observed = Some((current.clone(), Instant::now()));
        }
        let held_by_other = current
            .holder_identity
            .as_deref()
            .is_some_and(|h| !h.is_empty())
            && !self.is_leader();
        if held_by_other && self.observed_valid() {
            return Ok(false);
        }
        if self.is_leader() {
            ours.acquire_time = current.acquire_time.clone();
            ours.lease_transitions = current.lease_transitions;
        } else {
            ours.lease_transitions = Some(current.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        lease.spec = Some(ours.clone());
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observed = Some((ours, Instant::now()));
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the observed holder's claim has not yet run out.
    fn observed_valid(&self) -> bool {
        self.observed.as_ref().is_some_and(|(spec, seen)| {
            let seconds = spec.lease_duration_seconds.unwrap_or(0).max(0) as u64;
            seen.elapsed() < Duration::from_secs(seconds)
        })
    }

    /// Gives the Lease up if this candidate holds it, as upstream's
    /// ReleaseOnCancel: no holder, a one-second duration.
    pub async fn release(&mut self) {
        if !self.is_leader() {
            return;
        }
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let now = MicroTime(Timestamp::now());
        spec.holder_identity = Some(String::new());
        spec.lease_duration_seconds = Some(1);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        if let Err(e) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            tracing::info!(lease = %self.config.name, error = %e, "releasing the lease failed");
        }
        self.observed = None;
    }

    /// Waits until this candidate holds the Lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::info!(lease = %self.config.name, error = %e, "acquiring the lease failed")
                }
            }
            tokio::time::sleep(jittered(self.config.retry_period)).await;
        }
    }

    /// Renews the Lease every retry period; returns once a renewal has not
    /// succeeded within the renew deadline (the leadership is lost).
    pub async fn keep(&mut self) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => {}
                Err(e) => {
                    tracing::info!(lease = %self.config.name, error = %e, "renewing the lease failed")
                }
            }
            if !self.is_leader() || renewed.elapsed() >= self.config.renew_deadline {
                return;
            }
        }
    }
}

/// Up to 20 % more than `period`, so candidates do not move in step.
fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + rand::random::<f64>() * 0.2)
}

/// A server's standing in one election; [`Candidacy::resign`] ends it.
pub struct Candidacy {
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Candidacy {
    /// Stops standing: a leader ends its term and releases the Lease, so
    /// another server (or this one, restarted) can take it at once instead
    /// of waiting for it to expire.
    pub async fn resign(self) {
        self.stop.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// Stands for election on `config`'s Lease until resigned; each time it
/// leads, `lead` starts the role on a fresh runtime, which is shut down
/// (ending every task the role started) when the Lease is lost.
pub fn spawn(client: Client, config: Config, lead: Arc<dyn Fn() + Send + Sync>) -> Candidacy {
    let stop = Arc::new(Notify::new());
    let resigned = stop.clone();
    let task = tokio::spawn(async move {
        let mut elector = Elector::new(client, config.clone());
        loop {
            tokio::select! {
                _ = elector.acquire() => {}
                _ = resigned.notified() => return,
            }
            tracing::info!(lease = %config.name, identity = %config.identity, "became leader");
            let term = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(format!("{}-leader", config.name))
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(lease = %config.name, error = %e, "cannot start a runtime for the leader's work");
                    tokio::time::sleep(config.retry_period).await;
                    continue;
                }
            };
            {
                let _inside = term.enter();
                lead();
            }
            let resigning = tokio::select! {
                _ = elector.keep() => false,
                _ = resigned.notified() => true,
            };
            term.shutdown_background();
            if resigning {
                elector.release().await;
                tracing::info!(lease = %config.name, "released the lease");
                return;
            }
            tracing::warn!(lease = %config.name, "leader election lost; stopping until the lease is won again");
        }
    });
    Candidacy { stop, task }
}
