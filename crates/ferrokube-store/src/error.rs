//! The store's errors: typed, so the apiserver can map each to a Kubernetes
//! `Status` (AlreadyExists → 409, Conflict → 409, NotFound → 404,
//! Compacted → 410 Gone, ValueTooLarge → 413/422, ...).

use crate::types::{KeyValue, Revision};

/// A result whose error is the store's.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A create found the key already there.
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key the create named.
        key: String,
    },

    /// An update or delete found no such key.
    #[error("key {key:?} not found")]
    NotFound {
        /// The key the operation named.
        key: String,
    },

    /// A compare-and-swap precondition failed; `current` is the key as it is
    /// now (`None` if it is gone), so the caller can retry without a read.
    #[error("key {key:?} was modified (expected mod_revision {expected}, found {})",
        current.as_ref().map(|kv| kv.mod_revision).unwrap_or(0))]
    Conflict {
        /// The key the operation named.
        key: String,
        /// The `mod_revision` the caller expected.
        expected: Revision,
        /// The key as it is now.
        current: Option<Box<KeyValue>>,
    },

    /// A read, watch or compaction asked for a revision at or below the
    /// compacted one.
    #[error(
        "required revision {requested} has been compacted (compacted revision is {compacted})"
    )]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The store's compacted revision.
        compacted: Revision,
    },

    /// A read or compaction asked for a revision the store has not reached.
    #[error("required revision {requested} is a future revision (current revision is {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },

    /// A value over the store's size limit.
    #[error("value is {size} bytes, more than the limit of {limit} bytes")]
    ValueTooLarge {
        /// The value's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// A key or prefix that is empty, too long or not valid UTF-8 text
    /// the store accepts.
    #[error("invalid key: {0}")]
    InvalidKey(String),

    /// A request that contradicts itself (a range start outside its
    /// prefix, for one).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The lease named does not exist (never granted, expired or revoked).
    #[error("lease {0} not found")]
    LeaseNotFound(i64),

    /// The data directory is damaged or from an incompatible version. The
    /// store refuses to open rather than start empty.
    #[error("data directory {path}: {reason}")]
    Corrupt {
        /// The data directory or file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The backend cannot be reached or has shut down; the request may be
    /// retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),

    /// Reading or writing the data directory failed.
    #[error("store I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// A bug or an answer from the backend that makes no sense.
    #[error("store internal error: {0}")]
    Internal(String),
}
