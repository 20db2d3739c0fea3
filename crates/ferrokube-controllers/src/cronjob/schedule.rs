//! When a CronJob runs: the most recent unmet schedule time, how many were
//! missed, and when to look again, as Kubernetes' `cronjob/utils.go`
//! (`mostRecentScheduleTime`, `nextScheduleTime`,
//! `nextScheduleTimeDuration`).

use std::time::Duration;

use ferrokube_api::cron::Schedule;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::CronJob;

/// Requeues land this long after the schedule time (clock skew).
pub(crate) const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);

/// How many schedule times were missed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missed {
    None,
    Few,
    /// More than 100.
    Many,
}

/// What [`most_recent`] finds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Recent {
    /// The last schedule time (or the CronJob's creation).
    pub earliest: Timestamp,
    /// The latest schedule time not after now, if any since `earliest`.
    pub most_recent: Option<Timestamp>,
    pub missed: Missed,
}

fn last_or_created(cj: &CronJob) -> Timestamp {
    cj.status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .or(cj.metadata.creation_timestamp.as_ref())
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Why [`most_recent`] cannot say when the CronJob last had to run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScheduleError {
    /// Two consecutive schedule times are less than a second apart (the
    /// message is Kubernetes').
    #[error("time difference between two schedules is less than 1 second")]
    TooFrequent,
}

/// Kubernetes' mostRecentScheduleTime.
pub(crate) fn most_recent(
    cj: &CronJob,
    now: Timestamp,
    sched: &Schedule,
    tz: &TimeZone,
    include_deadline: bool,
) -> Result<Recent, ScheduleError> {
    let mut earliest = last_or_created(cj);
    if include_deadline {
        if let Some(secs) = cj.spec.as_ref().and_then(|s| s.starting_deadline_seconds) {
            let deadline = now - SignedDuration::from_secs(secs);
            if deadline > earliest {
                earliest = deadline;
            }
        }
    }
    let none = |earliest| Recent {
        earliest,
        most_recent: None,
        missed: Missed::None,
    };
    let Some(t1) = sched.next(earliest, tz) else {
        return Ok(none(earliest));
    };
    if now < t1 {
        return Ok(none(earliest));
    }
    let Some(t2) = sched.next(t1, tz) else {
        return Ok(Recent {
            earliest,
            most_recent: Some(t1),
            missed: Missed::None,
        });
    };
    if now < t2 {
        return Ok(Recent {
            earliest,
            most_recent: Some(t1),
            missed: Missed::None,
        });
    }
    let between = t2
        .duration_since(t1)
        .round(jiff::Unit::Second)
        .unwrap_or_default()
        .as_secs();
    if between < 1 {
        return Err(ScheduleError::TooFrequent);
    }
    let elapsed = now.duration_since(t1).as_secs();
    let missed_n = elapsed / between + 1;
    let start = t1 + SignedDuration::from_secs((missed_n - 2) * between);
    let mut most = None;
    let mut t = sched.next(start, tz);
    while let Some(x) = t {
        if x > now {
            break;
        }
        most = Some(x);
        t = sched.next(x, tz);
    }
    let missed = if missed_n > 100 {
        Missed::Many
    } else if missed_n > 0 {
        Missed::Few
    } else {
        Missed::None
    };
    Ok(Recent {
        earliest,
        most_recent: most,
        missed,
    })
}

/// How long until the next schedule time (plus the skew delta).
pub(crate) fn next_duration(
    cj: &CronJob,
    now: Timestamp,
    sched: &Schedule,
    tz: &TimeZone,
) -> Duration {
    let from = match most_recent(cj, now, sched, tz, false) {
        Err(_) => now,
        Ok(Recent {
            most_recent: Some(t),
            ..
        }) => t,
        Ok(Recent {
            missed: Missed::None,
            earliest,
            ..
        }) => earliest,
        Ok(_) => now,
    };
    match sched.next(from, tz) {
        Some(next) => {
            let d = next.duration_since(now);
            Duration::try_from(d).unwrap_or(Duration::ZERO) + NEXT_SCHEDULE_DELTA
        }
        // Never again: look once an hour in case the spec changes.
        None => Duration::from_secs(3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokube_api::cron::parse_standard;
    use serde_json::json;

    fn cj(created: &str, last: Option<&str>, deadline: Option<i64>) -> CronJob {
        serde_json::from_value(json!({
            "metadata": {"name": "c", "creationTimestamp": created},
            "spec": {"schedule": "*/1 * * * *", "startingDeadlineSeconds": deadline,
                "jobTemplate": {"spec": {"template": {}}}},
            "status": {"lastScheduleTime": last},
        }))
        .expect("cronjob")
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    #[test]
    fn the_most_recent_unmet_time_and_missed_counts() {
        let s = parse_standard("*/1 * * * *").expect("schedule");
        let utc = TimeZone::UTC;
        let c = cj("2026-01-01T00:00:30Z", None, None);
        let r = most_recent(&c, ts("2026-01-01T00:00:50Z"), &s, &utc, true).expect("ok");
        assert_eq!(r.most_recent, None);
        let r = most_recent(&c, ts("2026-01-01T00:01:10Z"), &s, &utc, true).expect("ok");
        assert_eq!(r.most_recent, Some(ts("2026-01-01T00:01:00Z")));
        assert_eq!(r.missed, Missed::None);
        let r = most_recent(&c, ts("2026-01-01T00:05:10Z"), &s, &utc, true).expect("ok");
        assert_eq!(r.most_recent, Some(ts("2026-01-01T00:05:00Z")));
        assert_eq!(r.missed, Missed::Few);
        let r = most_recent(&c, ts("2026-01-01T03:00:10Z"), &s, &utc, true).expect("ok");
        assert_eq!(r.missed, Missed::Many);
        // A starting deadline bounds how far back it looks.
        let c = cj("2026-01-01T00:00:30Z", None, Some(30));
        let r = most_recent(&c, ts("2026-01-01T03:00:10Z"), &s, &utc, true).expect("ok");
        assert_eq!(r.most_recent, Some(ts("2026-01-01T03:00:00Z")));
        assert_eq!(r.missed, Missed::None);
        // Already run at the last time: nothing new.
        let c = cj("2026-01-01T00:00:30Z", Some("2026-01-01T00:05:00Z"), None);
        let r = most_recent(&c, ts("2026-01-01T00:05:40Z"), &s, &utc, true).expect("ok");
        assert_eq!(r.most_recent, None);
        let d = next_duration(&c, ts("2026-01-01T00:05:40Z"), &s, &utc);
        assert_eq!(d, Duration::from_millis(20_100));
    }
}
