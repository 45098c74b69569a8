//! Restart and image-pull back-off, as upstream's `flowcontrol.Backoff`
//! used by the kubelet: the first retry is immediate, then each retry waits
//! twice as long as the one before, from 10 s up to 5 min; an entry left
//! alone for twice the maximum (10 min, e.g. a container that kept running)
//! starts over.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The first delay.
pub const INITIAL: Duration = Duration::from_secs(10);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    last_update: Instant,
}

/// Back-off delays by key (pod uid and container name, or image).
#[derive(Debug, Default)]
pub struct Backoff {
    entries: BTreeMap<String, Entry>,
}

impl Backoff {
    /// The current delay of `key` (zero when it has none).
    pub fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map_or(Duration::ZERO, |e| e.delay)
    }

    /// Whether `key` is still backing off from an event at `since`.
    pub fn in_backoff_since(&self, key: &str, since: Instant, now: Instant) -> bool {
        let Some(entry) = self.entries.get(key) else {
            return false;
        };
        if expired(now, entry.last_update) {
            return false;
        }
        now.saturating_duration_since(since) < entry.delay
    }

    /// Whether `key` is still backing off from its last retry (image
    /// pulls count from the failed pull itself).
    pub fn in_backoff_since_update(&self, key: &str, now: Instant) -> bool {
        self.entries
            .get(key)
            .is_some_and(|e| self.in_backoff_since(key, e.last_update, now))
    }

    /// Records a retry of `key` at `now`: the next delay doubles (or
    /// starts at [`INITIAL`]).
    pub fn next(&mut self, key: &str, now: Instant) {
        let delay = match self.entries.get(key) {
            Some(e) if !expired(now, e.last_update) => (e.delay * 2).min(MAX),
            _ => INITIAL,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay,
                last_update: now,
            },
        );
    }
}

fn expired(now: Instant, last_update: Instant) -> bool {
    now.saturating_duration_since(last_update) > MAX * 2
}

/// A duration as Go prints it (`10s`, `1m20s`, `5m0s`), for messages that
/// must read as upstream's.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{secs}s");
    }
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else {
        format!("{m}m{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_ten_seconds_to_five_minutes() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        assert!(
            !b.in_backoff_since("k", t0, t0),
            "the first retry is immediate"
        );
        let mut seen = Vec::new();
        for i in 0..7 {
            b.next("k", t0 + Duration::from_secs(i));
            seen.push(go_duration(b.get("k")));
        }
        assert_eq!(
            seen,
            ["10s", "20s", "40s", "1m20s", "2m40s", "5m0s", "5m0s"]
        );
        let exit = t0 + Duration::from_secs(10);
        assert!(b.in_backoff_since("k", exit, exit + Duration::from_secs(299)));
        assert!(!b.in_backoff_since("k", exit, exit + Duration::from_secs(300)));
    }

    #[test]
    fn ten_quiet_minutes_start_over() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        b.next("k", t0);
        b.next("k", t0);
        assert_eq!(b.get("k"), Duration::from_secs(20));
        let later = t0 + Duration::from_secs(601);
        assert!(!b.in_backoff_since("k", later, later));
        b.next("k", later);
        assert_eq!(b.get("k"), INITIAL);
        assert_eq!(b.get("other"), Duration::ZERO);
    }
}
