//! The store's errors: typed, so the apiserver can map each to a Kubernetes
//! `Status` (AlreadyExists → 409, Conflict → 409, NotFound → 404,
//! Compacted → 410 Gone, ValueTooLarge → 413/422, ...).

use crate::types::{KeyValue, Revision};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },

    #[error("key {key:?} not found")]
    NotFound { key: String },

    /// A compare-and-swap precondition failed; `current` is the key as it is
    /// now (`None` if it is gone), so the caller can retry without a read.
    #[error("key {key:?} was modified (expected mod_revision {expected}, found {})",
        current.as_ref().map(|kv| kv.mod_revision).unwrap_or(0))]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<Box<KeyValue>>,
    },

    #[error(
        "required revision {requested} has been compacted (compacted revision is {compacted})"
    )]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },

    #[error("required revision {requested} is a future revision (current revision is {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },

    #[error("value is {size} bytes, more than the limit of {limit} bytes")]
    ValueTooLarge { size: usize, limit: usize },

    #[error("invalid key: {0}")]
    InvalidKey(String),

    #[error("invalid request: {0}")]
    InvalidRequest(String),

    #[error("lease {0} not found")]
    LeaseNotFound(i64),

    /// The data directory is damaged or from an incompatible version. The
    /// store refuses to open rather than start empty.
    #[error("data directory {path}: {reason}")]
    Corrupt { path: String, reason: String },

    /// The backend cannot be reached or has shut down; the request may be
    /// retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),

    #[error("store I/O error: {0}")]
    Io(#[from] std::io::Error),

    #[error("store internal error: {0}")]
    Internal(String),
}
