//! When a CronJob runs: the next and the most recent scheduled times of a
//! parsed schedule ([`CronSpec`]) in a time zone, as robfig/cron computes
//! them for upstream's controller. Times are whole minutes of the zone's
//! wall clock; a wall time that does not exist (a spring-forward gap) is
//! skipped, and a wall time that happens twice (a fall-back fold) runs once,
//! at its first occurrence.

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

use crate::api::kinds::cron::CronSpec;

/// How far ahead a schedule is searched (robfig/cron gives up after five
/// years too: `30 0 30 2 *` never runs).
const SEARCH_DAYS: i32 = 5 * 366;

/// More missed start times than this are reported as too many.
pub const MAX_MISSED: u64 = 100;

/// The first scheduled time strictly after `after`.
pub fn next_after(spec: &CronSpec, tz: &TimeZone, after: Timestamp) -> Option<Timestamp> {
    let (minute, hour, dom, month, dow, dom_star, dow_star) = match *spec {
        CronSpec::Every(seconds) => {
            return Timestamp::from_second(after.as_second().checked_add(seconds as i64)?).ok();
        }
        CronSpec::Fields {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
        } => (minute, hour, dom, month, dow, dom_star, dow_star),
    };
    let has = |bits: u64, v: i8| bits & (1 << v) != 0;
    let day_matches = |d: Date| {
        let dom_ok = has(dom, d.day());
        let dow_ok = has(dow, d.weekday().to_sunday_zero_offset());
        if dom_star || dow_star {
            dom_ok && dow_ok
        } else {
            dom_ok || dow_ok
        }
    };
    let start = tz.to_datetime(after).date();
    for offset in 0..SEARCH_DAYS {
        let Ok(date) = start.checked_add(offset.days()) else {
            return None;
        };
        if !has(month, date.month()) || !day_matches(date) {
            continue;
        }
        for h in (0..24).filter(|h| has(hour, *h)) {
            for m in (0..60).filter(|m| has(minute, *m)) {
                let Some(at) = resolve(tz, date.at(h, m, 0, 0)) else {
                    continue;
                };
                if at > after {
                    return Some(at);
                }
            }
        }
    }
    None
}

/// The instant of a wall time in `tz`: `None` in a gap, the first
/// occurrence in a fold.
fn resolve(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    let offset = match tz.to_ambiguous_timestamp(dt).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset,
        AmbiguousOffset::Fold { before, .. } => before,
        AmbiguousOffset::Gap { .. } => return None,
    };
    offset.to_timestamp(dt).ok()
}

/// The latest scheduled time in `(earliest, now]` and about how many such
/// times there were (an estimate above [`MAX_MISSED`], as upstream's).
pub fn most_recent(
    spec: &CronSpec,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, u64) {
    let Some(first) = next_after(spec, tz, earliest).filter(|t| *t <= now) else {
        return (None, 0);
    };
    let mut latest = first;
    let mut count = 1;
    while count <= MAX_MISSED {
        match next_after(spec, tz, latest) {
            Some(t) if t <= now => {
                latest = t;
                count += 1;
            }
            _ => return (Some(latest), count),
        }
    }
    // Too many to walk: estimate the count from the first interval, as
    // upstream does, and look for the latest time in ever larger windows
    // before `now`.
    let interval = next_after(spec, tz, first)
        .map(|t| t.as_second() - first.as_second())
        .unwrap_or(1)
        .max(1);
    let missed = ((now.as_second() - first.as_second()) / interval + 1) as u64;
    for window in [3_600i64, 86_400, 32 * 86_400, 366 * 86_400] {
        let from = Timestamp::from_second(now.as_second() - window)
            .unwrap_or(earliest)
            .max(earliest);
        let mut found = None;
        let mut t = from;
        while let Some(n) = next_after(spec, tz, t).filter(|n| *n <= now) {
            found = Some(n);
            t = n;
        }
        if found.is_some() {
            return (found, missed);
        }
    }
    (Some(latest), missed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::kinds::cron::parse_schedule;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn next(spec: &str, tz: &str, after: &str) -> Option<Timestamp> {
        let spec = parse_schedule(spec).expect("schedule");
        let tz = TimeZone::get(tz).expect("zone");
        next_after(&spec, &tz, ts(after))
    }

    #[test]
    fn steps_ranges_lists_and_names() {
        assert_eq!(
            next("*/15 * * * *", "UTC", "2026-01-01T10:07:30Z"),
            Some(ts("2026-01-01T10:15:00Z"))
        );
        assert_eq!(
            next("5/20 * * * *", "UTC", "2026-01-01T10:45:00Z"),
            Some(ts("2026-01-01T11:05:00Z"))
        );
        assert_eq!(
            next("0 9-17/4 * * *", "UTC", "2026-01-01T13:00:00Z"),
            Some(ts("2026-01-01T17:00:00Z"))
        );
        // 2026-01-01 is a Thursday: the next MON-FRI 08:30 is Friday.
        assert_eq!(
            next("30 8 * * MON-FRI", "UTC", "2026-01-01T09:00:00Z"),
            Some(ts("2026-01-02T08:30:00Z"))
        );
        assert_eq!(
            next("0 0 1 jan,JUL *", "UTC", "2026-02-01T00:00:00Z"),
            Some(ts("2026-07-01T00:00:00Z"))
        );
        // Exactly on a scheduled minute: strictly after.
        assert_eq!(
            next("* * * * *", "UTC", "2026-01-01T10:00:00Z"),
            Some(ts("2026-01-01T10:01:00Z"))
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_unless_one_is_a_wildcard() {
        // Both restricted: the 13th OR a Friday (2026-02-06 is a Friday).
        assert_eq!(
            next("0 0 13 * fri", "UTC", "2026-02-01T00:00:00Z"),
            Some(ts("2026-02-06T00:00:00Z"))
        );
        // Day of week a wildcard: the 13th only.
        assert_eq!(
            next("0 0 13 * *", "UTC", "2026-02-01T00:00:00Z"),
            Some(ts("2026-02-13T00:00:00Z"))
        );
        // A stepped wildcard is no wildcard (robfig): 1st, 3rd... OR a Sunday.
        assert_eq!(
            next("0 0 */2 * sun", "UTC", "2026-02-01T12:00:00Z"),
            Some(ts("2026-02-03T00:00:00Z"))
        );
    }

    #[test]
    fn descriptors_and_every() {
        assert_eq!(
            next("@hourly", "UTC", "2026-03-03T10:59:59Z"),
            Some(ts("2026-03-03T11:00:00Z"))
        );
        assert_eq!(
            next("@weekly", "UTC", "2026-03-03T10:00:00Z"),
            Some(ts("2026-03-08T00:00:00Z"))
        );
        assert_eq!(
            next("@yearly", "UTC", "2026-03-03T10:00:00Z"),
            Some(ts("2027-01-01T00:00:00Z"))
        );
        assert_eq!(
            next("@every 1h30m", "UTC", "2026-03-03T10:00:00Z"),
            Some(ts("2026-03-03T11:30:00Z"))
        );
        assert_eq!(next("0 0 30 2 *", "UTC", "2026-01-01T00:00:00Z"), None);
    }

    #[test]
    fn time_zones_and_dst_edges() {
        // 09:00 in Tokyo is 00:00 UTC.
        assert_eq!(
            next("0 9 * * *", "Asia/Tokyo", "2026-05-01T01:00:00Z"),
            Some(ts("2026-05-02T00:00:00Z"))
        );
        // New York springs forward on 2026-03-08 at 02:00: 02:30 does not
        // exist that day and is skipped.
        assert_eq!(
            next("30 2 * * *", "America/New_York", "2026-03-08T05:00:00Z"),
            Some(ts("2026-03-09T06:30:00Z"))
        );
        // 03:30 that day is EDT (UTC-4).
        assert_eq!(
            next("30 3 * * *", "America/New_York", "2026-03-08T05:00:00Z"),
            Some(ts("2026-03-08T07:30:00Z"))
        );
        // Falls back on 2026-11-01: 01:30 happens twice and runs once, in EDT.
        let first = next("30 1 * * *", "America/New_York", "2026-11-01T04:00:00Z");
        assert_eq!(first, Some(ts("2026-11-01T05:30:00Z")));
        assert_eq!(
            next("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z"),
            Some(ts("2026-11-02T06:30:00Z"))
        );
    }

    #[test]
    fn most_recent_counts_missed_times() {
        let spec = parse_schedule("*/10 * * * *").expect("schedule");
        let tz = TimeZone::UTC;
        let (t, n) = most_recent(
            &spec,
            &tz,
            ts("2026-01-01T10:00:00Z"),
            ts("2026-01-01T10:35:00Z"),
        );
        assert_eq!((t, n), (Some(ts("2026-01-01T10:30:00Z")), 3));
        let (t, n) = most_recent(
            &spec,
            &tz,
            ts("2026-01-01T10:00:00Z"),
            ts("2026-01-01T10:05:00Z"),
        );
        assert_eq!((t, n), (None, 0));
        // Two days of every minute: far too many, still the latest minute.
        let spec = parse_schedule("* * * * *").expect("schedule");
        let (t, n) = most_recent(
            &spec,
            &tz,
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-03T00:00:30Z"),
        );
        assert_eq!(t, Some(ts("2026-01-03T00:00:00Z")));
        assert_eq!(n, 2 * 24 * 60);
    }
}
