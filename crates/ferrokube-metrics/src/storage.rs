//! The last two points of every node and container, and the usage they
//! give, with metrics-server's rules (`pkg/storage/node.go`, `pod.go`):
//!
//! - a point is kept as the last; the one it replaces becomes the previous
//!   only if the new one is later (else an earlier previous is kept, or
//!   none), so two kept points never share a timestamp;
//! - a container whose start time is not before the last point's
//!   timestamp restarted: it has no previous point until the next scrape;
//! - a container that started between 10 s and one resolution before its
//!   point gets a previous point of its own start with CPU 0, so it
//!   reports after one scrape;
//! - usage is the CPU rate between previous and last, the last memory and
//!   swap; a counter that went back or a start that moved earlier gives no
//!   usage for that node or container;
//! - a pod reports only when each of its containers has a previous point,
//!   at the earliest of its containers' timestamps and that one's window;
//! - what a scrape round did not return is forgotten.

use std::collections::HashMap;

use crate::decode::{PodKey, PodPoints};
use crate::point::{resource_usage, Nanos, Point, TimeInfo, Usage};

/// A fresh container's least age at which its start counts as a point.
const FRESH_CONTAINER_MIN_AGE: Nanos = 10_000_000_000;

/// Nodes' last two points.
#[derive(Debug, Default)]
pub(crate) struct NodeStorage {
    last: HashMap<String, Point>,
    prev: HashMap<String, Point>,
}

impl NodeStorage {
    /// Takes a round's node points.
    pub(crate) fn store(&mut self, batch: impl IntoIterator<Item = (String, Point)>) {
        let mut last = HashMap::new();
        let mut prev = HashMap::new();
        for (name, new) in batch {
            if last.contains_key(&name) {
                tracing::debug!(node = %name, "duplicate node point");
                continue;
            }
            if let Some(old) = self.last.get(&name) {
                if new.timestamp > old.timestamp {
                    prev.insert(name.clone(), *old);
                } else if let Some(p) = self.prev.get(&name) {
                    if p.timestamp < new.timestamp {
                        prev.insert(name.clone(), *p);
                    }
                }
            }
            last.insert(name, new);
        }
        self.last = last;
        self.prev = prev;
    }

    /// A node's usage, when it has two points that give one.
    pub(crate) fn usage(&self, name: &str) -> Option<(Usage, TimeInfo)> {
        let last = self.last.get(name)?;
        let prev = self.prev.get(name)?;
        match resource_usage(last, prev) {
            Ok(u) => Some(u),
            Err(why) => {
                tracing::debug!(node = %name, ?why, "skipping node usage");
                None
            }
        }
    }

    /// The names of the nodes with a last point.
    pub(crate) fn names(&self) -> impl Iterator<Item = &String> {
        self.last.keys()
    }

    /// Points held (last and previous).
    pub(crate) fn points(&self) -> usize {
        self.last.len() + self.prev.len()
    }
}

/// A pod's usage: its containers' (by name) and when.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodUsage {
    /// Each container's usage, by name.
    pub containers: Vec<(String, Usage)>,
    /// The earliest container timestamp and its window.
    pub time: TimeInfo,
}

/// Containers' last two points, by pod.
#[derive(Debug)]
pub(crate) struct PodStorage {
    last: HashMap<PodKey, PodPoints>,
    prev: HashMap<PodKey, PodPoints>,
    /// `--metric-resolution`.
    resolution: Nanos,
}

impl PodStorage {
    pub(crate) fn new(resolution: Nanos) -> PodStorage {
        PodStorage {
            last: HashMap::new(),
            prev: HashMap::new(),
            resolution,
        }
    }

    /// The previous point a container's new point keeps, if any.
    fn previous_of(&self, pod: &PodKey, container: &str, new: &Point) -> Option<Point> {
        let age = new.timestamp - new.start_time;
        if new.start_time < new.timestamp && age < self.resolution && age >= FRESH_CONTAINER_MIN_AGE
        {
            return Some(Point {
                timestamp: new.start_time,
                cpu: 0,
                ..*new
            });
        }
        let old = self.last.get(pod)?.get(container)?;
        if new.start_time >= old.timestamp {
            // Restarted since the last point.
            return None;
        }
        if new.timestamp > old.timestamp {
            return Some(*old);
        }
        let p = self.prev.get(pod)?.get(container)?;
        (p.timestamp < new.timestamp).then_some(*p)
    }

    /// Takes a round's pod points.
    pub(crate) fn store(&mut self, batch: impl IntoIterator<Item = (PodKey, PodPoints)>) {
        let mut last = HashMap::new();
        let mut prev = HashMap::new();
        for (pod, containers) in batch {
            if last.contains_key(&pod) {
                tracing::debug!(namespace = %pod.namespace, pod = %pod.name, "duplicate pod point");
                continue;
            }
            let mut kept = PodPoints::new();
            for (name, new) in &containers {
                if let Some(p) = self.previous_of(&pod, name, new) {
                    kept.insert(name.clone(), p);
                }
            }
            if !kept.is_empty() {
                prev.insert(pod.clone(), kept);
            }
            last.insert(pod, containers);
        }
        self.last = last;
        self.prev = prev;
    }

    /// A pod's usage, when every container of its last points has a
    /// previous one.
    pub(crate) fn usage(&self, pod: &PodKey) -> Option<PodUsage> {
        let last = self.last.get(pod)?;
        let prev = self.prev.get(pod)?;
        let mut out = PodUsage::default();
        let mut earliest: Option<TimeInfo> = None;
        for (name, l) in last {
            let p = prev.get(name)?;
            match resource_usage(l, p) {
                Ok((usage, time)) => {
                    out.containers.push((name.clone(), usage));
                    if earliest.is_none_or(|e| e.timestamp > time.timestamp) {
                        earliest = Some(time);
                    }
                }
                Err(why) => {
                    tracing::debug!(namespace = %pod.namespace, pod = %pod.name, container = %name, ?why, "skipping container usage");
                }
            }
        }
        out.time = earliest.unwrap_or_default();
        Some(out)
    }

    /// The pods with last points.
    pub(crate) fn pods(&self) -> impl Iterator<Item = &PodKey> {
        self.last.keys()
    }

    /// Container points held (last and previous).
    pub(crate) fn points(&self) -> usize {
        self.last.values().map(|c| c.len()).sum::<usize>()
            + self.prev.values().map(|c| c.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;
    const RESOLUTION: Nanos = 15 * S;

    fn point(start: Nanos, ts: Nanos, cpu_seconds: f64, memory: u64) -> Point {
        Point {
            start_time: start,
            timestamp: ts,
            cpu: (cpu_seconds * 1e9) as u64,
            memory,
            swap: 0,
        }
    }

    fn pod(name: &str) -> PodKey {
        PodKey {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    fn containers(list: &[(&str, Point)]) -> PodPoints {
        list.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    #[test]
    fn a_node_reports_after_its_second_point() {
        let mut s = NodeStorage::default();
        s.store([("n".to_string(), point(0, 100 * S, 10.0, 500))]);
        assert_eq!(s.usage("n"), None);
        s.store([("n".to_string(), point(0, 115 * S, 13.0, 600))]);
        let (u, t) = s.usage("n").unwrap();
        assert_eq!(u.cpu, 200_000_000);
        assert_eq!(u.memory, 600);
        assert_eq!(
            t,
            TimeInfo {
                timestamp: 115 * S,
                window: 15 * S
            }
        );
    }

    #[test]
    fn a_node_point_not_newer_keeps_an_older_previous() {
        let mut s = NodeStorage::default();
        s.store([("n".to_string(), point(0, 100 * S, 10.0, 1))]);
        s.store([("n".to_string(), point(0, 115 * S, 13.0, 1))]);
        // The same point again (the kubelet had nothing newer).
        s.store([("n".to_string(), point(0, 115 * S, 13.0, 1))]);
        assert_eq!(s.usage("n").unwrap().1.window, 15 * S);
        // An older point than the previous: no previous.
        s.store([("n".to_string(), point(0, 90 * S, 13.0, 1))]);
        assert_eq!(s.usage("n"), None);
    }

    #[test]
    fn a_node_missing_from_a_round_is_forgotten() {
        let mut s = NodeStorage::default();
        s.store([("n".to_string(), point(0, 100 * S, 10.0, 1))]);
        s.store([("n".to_string(), point(0, 115 * S, 13.0, 1))]);
        s.store(std::iter::empty());
        assert_eq!(s.usage("n"), None);
        s.store([("n".to_string(), point(0, 130 * S, 14.0, 1))]);
        assert_eq!(s.usage("n"), None, "one point again: not yet");
    }

    #[test]
    fn a_counter_going_back_gives_no_node_usage() {
        let mut s = NodeStorage::default();
        s.store([("n".to_string(), point(0, 100 * S, 10.0, 1))]);
        s.store([("n".to_string(), point(0, 115 * S, 9.0, 1))]);
        assert_eq!(s.usage("n"), None);
        s.store([("n".to_string(), point(0, 130 * S, 10.5, 1))]);
        assert_eq!(s.usage("n").unwrap().0.cpu, 100_000_000);
    }

    #[test]
    fn a_container_reports_after_two_points() {
        let mut s = PodStorage::new(RESOLUTION);
        let start = 10 * S;
        s.store([(
            pod("p"),
            containers(&[("c", point(start, 100 * S, 1.0, 100))]),
        )]);
        assert_eq!(s.usage(&pod("p")), None);
        s.store([(
            pod("p"),
            containers(&[("c", point(start, 115 * S, 4.0, 200))]),
        )]);
        let u = s.usage(&pod("p")).unwrap();
        assert_eq!(
            u.containers,
            vec![(
                "c".to_string(),
                Usage {
                    cpu: 200_000_000,
                    memory: 200,
                    swap: 0
                }
            )]
        );
        assert_eq!(
            u.time,
            TimeInfo {
                timestamp: 115 * S,
                window: 15 * S
            }
        );
    }

    #[test]
    fn a_fresh_container_reports_after_one_point_when_started_10s_to_a_resolution_ago() {
        let mut s = PodStorage::new(RESOLUTION);
        // Started 12 s before its point: its start counts as a point with CPU 0.
        s.store([(
            pod("p"),
            containers(&[("c", point(100 * S, 112 * S, 3.0, 100))]),
        )]);
        let u = s.usage(&pod("p")).unwrap();
        assert_eq!(u.containers[0].1.cpu, 250_000_000);
        assert_eq!(
            u.time,
            TimeInfo {
                timestamp: 112 * S,
                window: 12 * S
            }
        );
        // Started 5 s before: too close to its start to count.
        s.store([(
            pod("q"),
            containers(&[("c", point(100 * S, 105 * S, 1.0, 100))]),
        )]);
        assert_eq!(s.usage(&pod("q")), None);
        // With a resolution of 5 s no container is fresh enough.
        let mut s = PodStorage::new(5 * S);
        s.store([(
            pod("p"),
            containers(&[("c", point(100 * S, 112 * S, 3.0, 100))]),
        )]);
        assert_eq!(s.usage(&pod("p")), None);
    }

    #[test]
    fn a_restarted_container_starts_over() {
        let mut s = PodStorage::new(5 * S);
        s.store([(
            pod("p"),
            containers(&[("c", point(10 * S, 100 * S, 50.0, 1))]),
        )]);
        s.store([(
            pod("p"),
            containers(&[("c", point(10 * S, 105 * S, 51.0, 1))]),
        )]);
        assert!(s.usage(&pod("p")).is_some());
        // Restarted at 106 s: its counter began again.
        s.store([(
            pod("p"),
            containers(&[("c", point(106 * S, 110 * S, 0.5, 1))]),
        )]);
        assert_eq!(s.usage(&pod("p")), None);
        s.store([(
            pod("p"),
            containers(&[("c", point(106 * S, 115 * S, 1.0, 1))]),
        )]);
        assert_eq!(s.usage(&pod("p")).unwrap().containers[0].1.cpu, 100_000_000);
    }

    #[test]
    fn a_pod_reports_only_when_all_its_containers_can() {
        let mut s = PodStorage::new(5 * S);
        s.store([(pod("p"), containers(&[("a", point(1, 100 * S, 1.0, 1))]))]);
        s.store([(
            pod("p"),
            containers(&[
                ("a", point(1, 105 * S, 2.0, 1)),
                ("b", point(1, 104 * S, 1.0, 1)),
            ]),
        )]);
        assert_eq!(s.usage(&pod("p")), None, "b has one point");
        s.store([(
            pod("p"),
            containers(&[
                ("a", point(1, 110 * S, 3.0, 1)),
                ("b", point(1, 108 * S, 2.0, 1)),
            ]),
        )]);
        let u = s.usage(&pod("p")).unwrap();
        assert_eq!(u.containers.len(), 2);
        // The earliest container's timestamp and window.
        assert_eq!(
            u.time,
            TimeInfo {
                timestamp: 108 * S,
                window: 4 * S
            }
        );
    }

    #[test]
    fn a_container_counter_going_back_is_left_out_of_its_pod() {
        let mut s = PodStorage::new(5 * S);
        let two = |ts, a, b| containers(&[("a", point(1, ts, a, 1)), ("b", point(1, ts, b, 1))]);
        s.store([(pod("p"), two(100 * S, 5.0, 5.0))]);
        s.store([(pod("p"), two(105 * S, 6.0, 4.0))]);
        let u = s.usage(&pod("p")).unwrap();
        assert_eq!(u.containers.len(), 1);
        assert_eq!(u.containers[0].0, "a");
    }
}
