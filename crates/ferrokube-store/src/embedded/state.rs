//! The store's contents in memory: every key's history since the compaction
//! point, the revision-ordered event log that watches replay from, and the
//! leases. Pure data: the writer applies durable records to it; readers
//! query it under a read lock.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::record::Record;
use crate::types::{
    EventKind, KeyValue, LeaseId, RangeRequest, RangeResponse, Revision, WatchEvent,
};
use crate::{Result, StoreError};

/// A lease: its TTL, when it expires, and the keys attached to it.
#[derive(Debug)]
pub(super) struct Lease {
    pub ttl: i64,
    pub expires: Instant,
    pub keys: BTreeSet<String>,
}

#[derive(Default)]
pub(super) struct State {
    /// The revision of the last write.
    pub revision: Revision,
    /// History below this revision is gone.
    pub compacted: Revision,
    /// Each key's changes, oldest first. After compaction a key keeps its
    /// last put at or below the compaction point and everything after.
    keys: BTreeMap<String, Vec<Arc<WatchEvent>>>,
    /// Every change with revision ≥ `compacted`, in revision order.
    log: VecDeque<Arc<WatchEvent>>,
    pub leases: HashMap<LeaseId, Lease>,
    /// Bytes of the values currently live (for deciding log rewrites).
    pub live_bytes: u64,
}

fn tombstone(key: &str, revision: Revision) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Bytes::new(),
        create_revision: 0,
        mod_revision: revision,
        version: 0,
        lease: 0,
    }
}

impl State {
    /// The key's current value.
    pub(super) fn latest(&self, key: &str) -> Option<&KeyValue> {
        let ev = self.keys.get(key)?.last()?;
        (ev.kind == EventKind::Put).then_some(&ev.kv)
    }

    /// The key's value at `revision` (already checked to be readable).
    fn at(history: &[Arc<WatchEvent>], revision: Revision) -> Option<&KeyValue> {
        let idx = history.partition_point(|e| e.revision() <= revision);
        let ev = history.get(idx.checked_sub(1)?)?;
        (ev.kind == EventKind::Put).then_some(&ev.kv)
    }

    /// Fails unless `revision` can be read: not compacted, not in the future.
    pub(super) fn check_readable(&self, revision: Revision) -> Result<()> {
        if revision < self.compacted {
            return Err(StoreError::Compacted {
                requested: revision,
                compacted: self.compacted,
            });
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        Ok(())
    }

    pub(super) fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        let Some(history) = self.keys.get(key) else {
            if let Some(r) = revision {
                self.check_readable(r)?;
            }
            return Ok(None);
        };
        match revision {
            None => Ok(self.latest(key).cloned()),
            Some(r) => {
                self.check_readable(r)?;
                Ok(Self::at(history, r).cloned())
            }
        }
    }

    pub(super) fn range(&self, req: &RangeRequest) -> Result<RangeResponse> {
        let revision = match req.revision {
            Some(r) if r > 0 => {
                self.check_readable(r)?;
                r
            }
            _ => self.revision,
        };
        let start = req.start.clone().unwrap_or_else(|| req.prefix.clone());
        let mut resp = RangeResponse {
            revision,
            ..Default::default()
        };
        for (key, history) in self.keys.range(start..) {
            if !key.starts_with(&req.prefix) {
                break;
            }
            let Some(kv) = Self::at(history, revision) else {
                continue;
            };
            resp.count += 1;
            if req.count_only {
                continue;
            }
            if req.limit > 0 && resp.kvs.len() >= req.limit {
                resp.more = true;
                continue;
            }
            resp.kvs.push(kv.clone());
        }
        Ok(resp)
    }

    pub(super) fn count(&self, prefix: &str) -> i64 {
        self.keys
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, h)| h.last().is_some_and(|e| e.kind == EventKind::Put))
            .count() as i64
    }

    /// The events with revision ≥ `from` under `prefix`, in order.
    pub(super) fn events_since(&self, prefix: &str, from: Revision) -> Vec<Arc<WatchEvent>> {
        let skip = self.log.partition_point(|e| e.revision() < from);
        self.log
            .iter()
            .skip(skip)
            .filter(|e| e.kv.key.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Applies one durable record. Returns the watch event it makes, if any.
    pub(super) fn apply(
        &mut self,
        rec: Record,
        now: Instant,
    ) -> Result<Option<Arc<WatchEvent>>, String> {
        match rec {
            Record::Put(kv) => {
                if kv.mod_revision <= self.revision {
                    return Err(format!(
                        "put of {:?} at revision {} after revision {}",
                        kv.key, kv.mod_revision, self.revision
                    ));
                }
                let prev = self.latest(&kv.key).cloned();
                if let Some(p) = &prev {
                    self.live_bytes = self.live_bytes.saturating_sub(p.value.len() as u64);
                    if p.lease != 0 && p.lease != kv.lease {
                        if let Some(l) = self.leases.get_mut(&p.lease) {
                            l.keys.remove(&kv.key);
                        }
                    }
                }
                if kv.lease != 0 {
                    let lease = self.leases.entry(kv.lease).or_insert_with(|| Lease {
                        ttl: 0,
                        expires: now,
                        keys: BTreeSet::new(),
                    });
                    lease.keys.insert(kv.key.clone());
                }
                self.live_bytes += kv.value.len() as u64;
                self.revision = kv.mod_revision;
                let ev = Arc::new(WatchEvent {
                    kind: EventKind::Put,
                    kv,
                    prev,
                });
                self.push(ev.clone());
                Ok(Some(ev))
            }
            Record::Delete { key, revision } => {
                if revision <= self.revision {
                    return Err(format!(
                        "delete of {key:?} at revision {revision} after revision {}",
                        self.revision
                    ));
                }
                let Some(prev) = self.latest(&key).cloned() else {
                    return Err(format!(
                        "delete of missing key {key:?} at revision {revision}"
                    ));
                };
                self.live_bytes = self.live_bytes.saturating_sub(prev.value.len() as u64);
                if prev.lease != 0 {
                    if let Some(l) = self.leases.get_mut(&prev.lease) {
                        l.keys.remove(&key);
                    }
                }
                self.revision = revision;
                let ev = Arc::new(WatchEvent {
                    kind: EventKind::Delete,
                    kv: tombstone(&key, revision),
                    prev: Some(prev),
                });
                self.push(ev.clone());
                Ok(Some(ev))
            }
            Record::Compact { revision } => {
                self.compact(revision);
                Ok(None)
            }
            Record::LeaseGrant { id, ttl } => {
                let lease = self.leases.entry(id).or_insert_with(|| Lease {
                    ttl,
                    expires: now,
                    keys: BTreeSet::new(),
                });
                lease.ttl = ttl;
                lease.expires = now + std::time::Duration::from_secs(ttl.max(0) as u64);
                Ok(None)
            }
            Record::LeaseRevoke { id } => {
                self.leases.remove(&id);
                Ok(None)
            }
        }
    }

    fn push(&mut self, ev: Arc<WatchEvent>) {
        self.keys
            .entry(ev.kv.key.clone())
            .or_default()
            .push(ev.clone());
        self.log.push_back(ev);
    }

    /// Drops the history below `revision`, keeping each key's value at it.
    fn compact(&mut self, revision: Revision) {
        if revision <= self.compacted {
            return;
        }
        self.compacted = revision;
        while self.log.front().is_some_and(|e| e.revision() < revision) {
            self.log.pop_front();
        }
        self.keys.retain(|_, history| {
            // Index of the last event at or below the compaction point.
            let keep_from = history.partition_point(|e| e.revision() <= revision);
            if keep_from == 0 {
                return true;
            }
            let last_old = &history[keep_from - 1];
            let drop = match last_old.kind {
                // Keep the value the key had at the compaction point.
                EventKind::Put => keep_from - 1,
                // A delete exactly at the compaction point stays (watches
                // from there replay it), with the put it deleted.
                EventKind::Delete if last_old.revision() == revision => keep_from.saturating_sub(2),
                // Deleted before the compaction point: nothing to keep.
                EventKind::Delete => keep_from,
            };
            history.drain(..drop);
            !history.is_empty()
        });
    }

    /// The records that rebuild this state exactly (leases first, then every
    /// retained change in revision order, then the compaction point).
    pub(super) fn snapshot_records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = self
            .leases
            .iter()
            .map(|(id, l)| Record::LeaseGrant {
                id: *id,
                ttl: l.ttl,
            })
            .collect();
        let mut events: Vec<&Arc<WatchEvent>> = self.keys.values().flat_map(|h| h.iter()).collect();
        events.sort_by_key(|e| e.revision());
        for e in events {
            out.push(match e.kind {
                EventKind::Put => Record::Put(e.kv.clone()),
                EventKind::Delete => Record::Delete {
                    key: e.kv.key.clone(),
                    revision: e.revision(),
                },
            });
        }
        if self.compacted > 0 {
            out.push(Record::Compact {
                revision: self.compacted,
            });
        }
        out
    }
}
