//! Controller expectations, as upstream's: after creating or deleting pods a
//! controller waits until its informer has seen those changes before it
//! counts pods again, so a stale cache never makes it create or delete twice.
//! Expectations expire after a while in case an event was missed.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Pending {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Instant,
}

/// Pending creates and deletes per controller key.
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    /// Records that `key` created and deleted these object names.
    pub fn expect(&self, key: &str, creates: HashSet<String>, deletes: HashSet<String>) {
        let mut pending = self.lock();
        pending.insert(
            key.to_string(),
            Pending {
                creates,
                deletes,
                since: Instant::now(),
            },
        );
    }

    /// Whether the cache has caught up: every created name is `present` and
    /// every deleted name is not (or the wait expired).
    pub fn satisfied(&self, key: &str, present: impl Fn(&str) -> bool) -> bool {
        let mut pending = self.lock();
        let Some(p) = pending.get(key) else {
            return true;
        };
        let done = p.since.elapsed() > TTL
            || (p.creates.iter().all(|n| present(n)) && p.deletes.iter().all(|n| !present(n)));
        if done {
            pending.remove(key);
        }
        done
    }

    /// Forgets `key` (its owner is gone).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_until_creates_appear_and_deletes_vanish() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rs", |_| false));
        e.expect(
            "ns/rs",
            HashSet::from(["a".to_string()]),
            HashSet::from(["b".to_string()]),
        );
        assert!(!e.satisfied("ns/rs", |n| n == "b"));
        assert!(!e.satisfied("ns/rs", |n| n == "a" || n == "b"));
        assert!(e.satisfied("ns/rs", |n| n == "a"));
        assert!(
            e.satisfied("ns/rs", |_| false),
            "met expectations are dropped"
        );
    }
}
