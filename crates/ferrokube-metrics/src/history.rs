//! A short history of every node's and pod's usage, for the dashboard: the
//! samples of the last `keep` (15 minutes by default), at most one per
//! scrape round, bounded in count per object; an object without a sample
//! in that time is forgotten.

use std::collections::{HashMap, VecDeque};

use crate::decode::PodKey;
use crate::point::Nanos;

/// One sample: when, CPU in nanocores, working set in bytes (a pod's are
/// its containers' sums).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The usage's timestamp.
    pub timestamp: Nanos,
    /// CPU in nanocores.
    pub cpu: u64,
    /// Working set in bytes.
    pub memory: u64,
}

/// What is kept of an object.
type Samples = VecDeque<Sample>;

/// The samples of every node and pod.
#[derive(Debug)]
pub(crate) struct History {
    nodes: HashMap<String, Samples>,
    pods: HashMap<PodKey, Samples>,
    keep: Nanos,
    max_samples: usize,
}

fn push(samples: &mut Samples, s: Sample, max: usize) {
    if samples.back().is_some_and(|b| b.timestamp >= s.timestamp) {
        return;
    }
    samples.push_back(s);
    while samples.len() > max {
        samples.pop_front();
    }
}

fn expire<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Samples>, oldest: Nanos) {
    map.retain(|_, samples| {
        while samples.front().is_some_and(|s| s.timestamp < oldest) {
            samples.pop_front();
        }
        !samples.is_empty()
    });
}

impl History {
    /// Keeping `keep` of history, at most `max_samples` per object.
    pub(crate) fn new(keep: Nanos, max_samples: usize) -> History {
        History {
            nodes: HashMap::new(),
            pods: HashMap::new(),
            keep,
            max_samples: max_samples.max(1),
        }
    }

    pub(crate) fn node(&mut self, name: &str, s: Sample) {
        let max = self.max_samples;
        match self.nodes.get_mut(name) {
            Some(samples) => push(samples, s, max),
            None => {
                self.nodes.insert(name.to_string(), VecDeque::from([s]));
            }
        }
    }

    pub(crate) fn pod(&mut self, key: &PodKey, s: Sample) {
        let max = self.max_samples;
        match self.pods.get_mut(key) {
            Some(samples) => push(samples, s, max),
            None => {
                self.pods.insert(key.clone(), VecDeque::from([s]));
            }
        }
    }

    /// Drops what is older than `keep` before `now`.
    pub(crate) fn expire(&mut self, now: Nanos) {
        let oldest = now - self.keep;
        expire(&mut self.nodes, oldest);
        expire(&mut self.pods, oldest);
    }

    pub(crate) fn of_node(&self, name: &str) -> Vec<Sample> {
        self.nodes
            .get(name)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    pub(crate) fn of_pod(&self, key: &PodKey) -> Vec<Sample> {
        self.pods
            .get(key)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Samples held, in all.
    pub(crate) fn samples(&self) -> usize {
        self.nodes.values().map(VecDeque::len).sum::<usize>()
            + self.pods.values().map(VecDeque::len).sum::<usize>()
    }

    /// Objects with samples.
    pub(crate) fn objects(&self) -> usize {
        self.nodes.len() + self.pods.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn at(t: Nanos) -> Sample {
        Sample {
            timestamp: t,
            cpu: 1,
            memory: 1,
        }
    }

    #[test]
    fn samples_age_out_and_are_bounded() {
        let mut h = History::new(60 * S, 3);
        for t in [10, 20, 20, 30, 40] {
            h.node("n", at(t * S));
        }
        // The repeated timestamp once; the oldest beyond 3 gone.
        assert_eq!(h.of_node("n"), vec![at(20 * S), at(30 * S), at(40 * S)]);
        h.expire(95 * S);
        assert_eq!(h.of_node("n"), vec![at(40 * S)]);
        h.expire(101 * S);
        assert!(h.of_node("n").is_empty());
        assert_eq!(h.objects(), 0);
    }
}
