//! The values the [`Store`](crate::Store) trait takes and returns.

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

use crate::error::Result;

/// A store-wide revision: incremented by every write. The first write is 1.
pub type Revision = i64;

/// A lease's id (never 0).
pub type LeaseId = i64;

/// A key and its value at some revision, with etcd's per-key counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (empty in a delete event).
    pub value: Bytes,
    /// The revision that created this incarnation of the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key.
    pub mod_revision: Revision,
    /// 1 at creation, +1 on every update.
    pub version: i64,
    /// The lease the key is attached to (0: none).
    pub lease: LeaseId,
}

/// What [`Store::get`](crate::Store::get) returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetResponse {
    /// The key/value, `None` when the key does not exist.
    pub kv: Option<KeyValue>,
    /// The store's current revision when the read was served.
    pub revision: Revision,
}

/// A paginated read of every key under a prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    /// Only keys starting with this.
    pub prefix: String,
    /// Start at this key (inclusive) instead of at the prefix: the continue
    /// point of a paginated list. Must start with `prefix`.
    pub start: Option<String>,
    /// At most this many keys (0: no limit).
    pub limit: usize,
    /// Read at this revision (`None`: the current one).
    pub revision: Option<Revision>,
    /// Return only the count, no key/values.
    pub count_only: bool,
}

/// What [`Store::range`](crate::Store::range) returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    /// The key/values in key order (empty when `count_only`).
    pub kvs: Vec<KeyValue>,
    /// More keys follow the last one returned (the limit cut the list).
    pub more: bool,
    /// How many keys the range holds from `start` on, returned or not.
    pub count: i64,
    /// The revision the range was read at.
    pub revision: Revision,
}

/// What [`Store::delete`](crate::Store::delete) returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteResponse {
    /// The key/value as it was just before the delete.
    pub prev: KeyValue,
    /// The revision of the delete.
    pub revision: Revision,
}

/// Whether a watch event wrote or removed the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted (or its lease expired).
    Delete,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// Whether the key was written or removed.
    pub kind: EventKind,
    /// For a put: the key/value as written. For a delete: the key, an empty
    /// value, and `mod_revision` set to the revision of the delete
    /// (`create_revision` and `version` 0), as etcd reports it.
    pub kv: KeyValue,
    /// The key/value before this change: set for updates and deletes, `None`
    /// for creations.
    pub prev: Option<KeyValue>,
}

impl WatchEvent {
    /// The revision of the change.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A stream of watch events. It yields an `Err` and ends if the sequence can
/// no longer be guaranteed (e.g. compacted while the watcher lagged).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent>> + Send>>;
