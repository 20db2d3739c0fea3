//! The scheduling queue: pods waiting for a node, in three places as in
//! Kubernetes. `active` is ordered by priority, then first come first served;
//! `backoff` holds pods that failed recently until their backoff (1 s,
//! doubling per attempt, at most 10 s) has passed; `unschedulable` holds pods
//! that fit nowhere until something that could change that happens (a node
//! added or changed, a pod deleted), or five minutes pass.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::podinfo::PodInfo;

pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a pod may sit unschedulable without any event before it is retried.
pub(crate) const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Active,
    Backoff,
    Unschedulable,
    InFlight,
}

#[derive(Debug)]
struct Queued {
    info: Arc<PodInfo>,
    priority: i32,
    attempts: u32,
    place: Place,
    seq: u64,
    last_failure: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveEntry {
    priority: i32,
    seq: u64,
    key: String,
}

impl Ord for ActiveEntry {
    fn cmp(&self, o: &Self) -> Ordering {
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveEntry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

#[derive(Debug, Default)]
struct Inner {
    pods: HashMap<String, Queued>,
    active: BinaryHeap<ActiveEntry>,
    seq: u64,
    scheduling_cycle: u64,
    move_request_cycle: u64,
    closed: bool,
}

impl Inner {
    fn push_active(&mut self, key: &str) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(q) = self.pods.get_mut(key) {
            q.place = Place::Active;
            q.seq = seq;
            self.active.push(ActiveEntry {
                priority: q.priority,
                seq,
                key: key.to_string(),
            });
        }
    }
}

/// A pod handed out for one scheduling attempt.
#[derive(Debug, Clone)]
pub(crate) struct Popped {
    pub info: Arc<PodInfo>,
    pub cycle: u64,
}

/// The queue, shared between the watch handlers and the scheduling loop.
#[derive(Debug, Default)]
pub(crate) struct SchedulingQueue {
    inner: Mutex<Inner>,
    wake: Notify,
}

/// Backoff after `attempts` failures: 1 s doubling, at most 10 s.
pub(crate) fn backoff_for(attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(16);
    INITIAL_BACKOFF
        .checked_mul(1u32 << shift)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

impl SchedulingQueue {
    pub(crate) fn new() -> SchedulingQueue {
        SchedulingQueue::default()
    }

    /// A new or changed unscheduled pod. A pod being scheduled keeps its
    /// attempt and is only refreshed; an unschedulable one whose spec
    /// changed is retried (after its backoff).
    pub(crate) fn add_or_update(&self, info: Arc<PodInfo>, priority: i32) {
        let mut g = self.inner.lock();
        let key = info.key.clone();
        match g.pods.get_mut(&key) {
            None => {
                g.pods.insert(
                    key.clone(),
                    Queued {
                        info,
                        priority,
                        attempts: 0,
                        place: Place::Active,
                        seq: 0,
                        last_failure: None,
                    },
                );
                g.push_active(&key);
                drop(g);
                self.wake.notify_one();
            }
            Some(q) => {
                let spec_changed = q.info.pod.spec != info.pod.spec
                    || q.info.pod.metadata.labels != info.pod.metadata.labels;
                q.info = info;
                q.priority = priority;
                if q.place == Place::Unschedulable && spec_changed {
                    let backing_off = q
                        .last_failure
                        .is_some_and(|t| t + backoff_for(q.attempts) > Instant::now());
                    if backing_off {
                        q.place = Place::Backoff;
                    } else {
                        g.push_active(&key);
                        drop(g);
                        self.wake.notify_one();
                    }
                }
            }
        }
    }

    /// The pod is gone (deleted, bound elsewhere or no longer ours).
    pub(crate) fn delete(&self, key: &str) {
        self.inner.lock().pods.remove(key);
    }

    /// Something changed that may let unschedulable pods fit: they move to
    /// active, or to backoff while their backoff lasts.
    pub(crate) fn move_all_unschedulable(&self) {
        let mut g = self.inner.lock();
        g.move_request_cycle = g.scheduling_cycle;
        let now = Instant::now();
        let keys: Vec<String> = g
            .pods
            .iter()
            .filter(|(_, q)| q.place == Place::Unschedulable)
            .map(|(k, _)| k.clone())
            .collect();
        let mut woke = false;
        for k in keys {
            let backing_off = g.pods.get(&k).is_some_and(|q| {
                q.last_failure
                    .is_some_and(|t| t + backoff_for(q.attempts) > now)
            });
            if backing_off {
                if let Some(q) = g.pods.get_mut(&k) {
                    q.place = Place::Backoff;
                }
            } else {
                g.push_active(&k);
                woke = true;
            }
        }
        drop(g);
        if woke {
            self.wake.notify_one();
        }
    }

    /// Moves pods whose backoff is over to active, and pods unschedulable
    /// for too long to active or backoff. Called every second.
    pub(crate) fn flush(&self) {
        let mut g = self.inner.lock();
        let now = Instant::now();
        let mut ready = Vec::new();
        for (k, q) in &g.pods {
            let Some(t) = q.last_failure else { continue };
            match q.place {
                Place::Backoff if t + backoff_for(q.attempts) <= now => ready.push(k.clone()),
                Place::Unschedulable if t + MAX_UNSCHEDULABLE <= now => ready.push(k.clone()),
                _ => {}
            }
        }
        let woke = !ready.is_empty();
        for k in ready {
            g.push_active(&k);
        }
        drop(g);
        if woke {
            self.wake.notify_one();
        }
    }

    /// The next pod to schedule, waiting for one; None once closed.
    pub(crate) async fn pop(&self) -> Option<Popped> {
        loop {
            let notified = self.wake.notified();
            {
                let mut g = self.inner.lock();
                if g.closed {
                    return None;
                }
                while let Some(e) = g.active.pop() {
                    let ok = g
                        .pods
                        .get(&e.key)
                        .is_some_and(|q| q.place == Place::Active && q.seq == e.seq);
                    if !ok {
                        continue;
                    }
                    g.scheduling_cycle += 1;
                    let cycle = g.scheduling_cycle;
                    if let Some(q) = g.pods.get_mut(&e.key) {
                        q.place = Place::InFlight;
                        return Some(Popped {
                            info: q.info.clone(),
                            cycle,
                        });
                    }
                }
            }
            notified.await;
        }
    }

    /// Non-waiting pop, for tests.
    #[cfg(test)]
    pub(crate) fn try_pop(&self) -> Option<Popped> {
        let fut = self.pop();
        futures::FutureExt::now_or_never(fut).flatten()
    }

    /// The pod was bound: it leaves the queue.
    pub(crate) fn done(&self, key: &str) {
        let mut g = self.inner.lock();
        if g.pods.get(key).is_some_and(|q| q.place == Place::InFlight) {
            g.pods.remove(key);
        }
    }

    /// The attempt failed. If something changed since it started, the pod
    /// only backs off; otherwise it waits as unschedulable (or, for an error
    /// that is not about fit, backs off).
    pub(crate) fn failed(&self, key: &str, cycle: u64, unschedulable: bool) {
        let mut g = self.inner.lock();
        let moved = g.move_request_cycle >= cycle;
        if let Some(q) = g.pods.get_mut(key) {
            if q.place != Place::InFlight {
                return;
            }
            q.attempts += 1;
            q.last_failure = Some(Instant::now());
            q.place = if unschedulable && !moved {
                Place::Unschedulable
            } else {
                Place::Backoff
            };
        }
    }

    /// Pending counts: (active, backoff, unschedulable, in flight), for tests.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, usize, usize, usize) {
        let g = self.inner.lock();
        let mut c = (0, 0, 0, 0);
        for q in g.pods.values() {
            match q.place {
                Place::Active => c.0 += 1,
                Place::Backoff => c.1 += 1,
                Place::Unschedulable => c.2 += 1,
                Place::InFlight => c.3 += 1,
            }
        }
        c
    }

    /// Keys of every queued pod (to drop those a re-list no longer shows).
    pub(crate) fn keys(&self) -> Vec<String> {
        self.inner.lock().pods.keys().cloned().collect()
    }

    pub(crate) fn close(&self) {
        self.inner.lock().closed = true;
        self.wake.notify_waiters();
        self.wake.notify_one();
    }
}

#[cfg(test)]
#[allow(
    clippy::option_map_unit_fn,
    reason = "the tests set fields of their test objects through Option::map"
)]
mod tests {
    use super::*;
    use crate::testutil::pod;

    fn info(name: &str) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(pod("d", name, "", ""))))
    }

    #[test]
    fn priority_then_fifo() {
        let q = SchedulingQueue::new();
        q.add_or_update(info("low1"), 0);
        q.add_or_update(info("high"), 100);
        q.add_or_update(info("low2"), 0);
        let order: Vec<String> = (0..3)
            .filter_map(|_| q.try_pop())
            .map(|p| p.info.name.clone())
            .collect();
        assert_eq!(order, vec!["high", "low1", "low2"]);
        assert!(q.try_pop().is_none());
    }

    #[test]
    fn unschedulable_pods_wait_for_an_event_then_backoff() {
        let q = SchedulingQueue::new();
        q.add_or_update(info("p"), 0);
        let p = q.try_pop().expect("pod");
        q.failed("d/p", p.cycle, true);
        assert_eq!(q.counts(), (0, 0, 1, 0));
        q.flush();
        assert!(q.try_pop().is_none(), "no event: stays unschedulable");
        q.move_all_unschedulable();
        assert_eq!(q.counts(), (0, 1, 0, 0), "still inside its 1 s backoff");
        assert!(q.try_pop().is_none());
    }

    #[test]
    fn an_event_during_the_attempt_sends_the_pod_to_backoff() {
        let q = SchedulingQueue::new();
        q.add_or_update(info("p"), 0);
        let p = q.try_pop().expect("pod");
        q.move_all_unschedulable();
        q.failed("d/p", p.cycle, true);
        assert_eq!(q.counts(), (0, 1, 0, 0));
    }

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        assert_eq!(backoff_for(1), Duration::from_secs(1));
        assert_eq!(backoff_for(2), Duration::from_secs(2));
        assert_eq!(backoff_for(4), Duration::from_secs(8));
        assert_eq!(backoff_for(5), Duration::from_secs(10));
        assert_eq!(backoff_for(40), Duration::from_secs(10));
    }

    #[test]
    fn deleted_and_bound_pods_leave() {
        let q = SchedulingQueue::new();
        q.add_or_update(info("a"), 0);
        q.add_or_update(info("b"), 0);
        q.delete("d/a");
        let p = q.try_pop().expect("b");
        assert_eq!(p.info.name, "b");
        q.done("d/b");
        assert_eq!(q.counts(), (0, 0, 0, 0));
    }
}
