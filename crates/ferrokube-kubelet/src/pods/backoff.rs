//! Kubernetes' restart back-off (also used for image pulls): after each failure the
//! delay doubles from `initial` up to `max`; a failure more than 2×max after the last
//! one starts again from `initial`. Times are nanoseconds since the epoch.

use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug)]
struct Entry {
    backoff: Duration,
    last_update_ns: i64,
}

#[derive(Debug)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

pub(crate) fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    fn expired(&self, e: &Entry, event_ns: i64) -> bool {
        event_ns.saturating_sub(e.last_update_ns) > 2 * self.max.as_nanos() as i64
    }

    /// If the item failed at `event_ns` and is still backing off at `now_ns`, the time
    /// (ns) the back-off ends and its length.
    pub(crate) fn in_backoff_since(
        &self,
        key: &str,
        event_ns: i64,
        now_ns: i64,
    ) -> Option<(i64, Duration)> {
        let e = self.entries.get(key)?;
        if self.expired(e, event_ns) {
            return None;
        }
        let until = event_ns.saturating_add(e.backoff.as_nanos() as i64);
        (now_ns < until).then_some((until, e.backoff))
    }

    /// If the item is backing off at `now_ns` counted from its last recorded failure,
    /// when that ends.
    pub(crate) fn in_backoff_since_update(&self, key: &str, now_ns: i64) -> Option<i64> {
        let e = self.entries.get(key)?;
        let until = e.last_update_ns.saturating_add(e.backoff.as_nanos() as i64);
        (now_ns < until).then_some(until)
    }

    /// Records a failure at `event_ns`, lengthening the next back-off.
    pub(crate) fn next(&mut self, key: &str, event_ns: i64) {
        let (initial, max) = (self.initial, self.max);
        let fresh = match self.entries.get(key) {
            None => true,
            Some(e) => self.expired(e, event_ns),
        };
        if fresh {
            self.entries.insert(
                key.into(),
                Entry {
                    backoff: initial,
                    last_update_ns: event_ns,
                },
            );
        } else if let Some(e) = self.entries.get_mut(key) {
            e.backoff = (e.backoff * 2).min(max);
            e.last_update_ns = event_ns;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn doubles_up_to_the_cap_and_resets_after_quiet() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(300));
        // First failure: no back-off yet (restart at once), then 10 s.
        assert!(b.in_backoff_since("c", 0, 0).is_none());
        b.next("c", 0);
        assert_eq!(
            b.in_backoff_since("c", S, 2 * S),
            Some((11 * S, Duration::from_secs(10)))
        );
        assert!(b.in_backoff_since("c", S, 12 * S).is_none());
        b.next("c", S);
        assert_eq!(
            b.in_backoff_since("c", 30 * S, 31 * S).map(|x| x.1),
            Some(Duration::from_secs(20))
        );
        for i in 0..10 {
            b.next("c", (40 + i) * S);
        }
        assert_eq!(
            b.in_backoff_since("c", 50 * S, 51 * S).map(|x| x.1),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            b.in_backoff_since_update("c", 49 * S + 300 * S - 1),
            Some(349 * S)
        );
        assert!(b.in_backoff_since_update("c", 349 * S).is_none());
        // Quiet for more than 2×max: back to the start.
        b.next("c", 50 * S + 601 * S);
        assert_eq!(
            b.in_backoff_since("c", 651 * S, 652 * S).map(|x| x.1),
            Some(Duration::from_secs(10))
        );
    }
}
