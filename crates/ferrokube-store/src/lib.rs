//! The datastore behind the ferrokube apiserver.
//!
//! The apiserver's `resourceVersion`, optimistic concurrency and watch are this
//! store's revision, compare-and-swap and watch, so the [`Store`] trait carries
//! etcd v3's semantics exactly:
//!
//! - one store-wide revision, incremented by every write (create, update,
//!   delete; a lease expiry that deletes keys is a write too);
//! - every key carries `create_revision`, `mod_revision` and `version`
//!   (1 at creation, +1 per update, reset when the key is deleted and created
//!   again);
//! - reads at the current or at a past (not yet compacted) revision, ranges over
//!   a prefix at one consistent revision with a limit and a continue point;
//! - create-if-absent, and update/delete guarded by the key's `mod_revision`;
//! - watches of a prefix from a revision, in revision order, with the previous
//!   value on updates and deletes; a watch or read below the compacted revision
//!   fails with [`StoreError::Compacted`];
//! - leases: keys attached to a lease are deleted when it expires or is revoked.
//!
//! Two backends implement it: [`embedded`] (the default: a directory on local
//! disk, no other process) and [`etcd`] (a real etcd v3 cluster). The
//! [`conformance`] module holds the one test suite both must pass.

mod compactor;
#[cfg(feature = "testing")]
pub mod conformance;
pub mod embedded;
mod error;
pub mod etcd;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

pub use compactor::Compactor;
pub use error::{Result, StoreError};
pub use types::*;

use async_trait::async_trait;
use bytes::Bytes;

/// The largest value a key may hold: etcd's default request limit (1.5 MiB)
/// less 8 KiB left for the key and the request's framing, so a value accepted
/// here is accepted by a real etcd with default settings too.
pub(crate) const MAX_VALUE_BYTES: usize = 1536 * 1024 - 8 * 1024;

/// The longest key accepted.
pub(crate) const MAX_KEY_BYTES: usize = 4096;

/// A key/value store with etcd v3's revision, compare-and-swap and watch
/// semantics. Object-safe: the apiserver holds an `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The key's value at `revision` (`None`: the current revision).
    /// Returns the value, if the key existed then, and the store's current
    /// revision.
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<GetResponse>;

    /// Keys starting with `prefix`, in key order, at one consistent revision.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse>;

    /// How many keys start with `prefix` now, and the current revision.
    async fn count(&self, prefix: &str) -> Result<(i64, Revision)>;

    /// Creates `key` if it does not exist. Fails with
    /// [`StoreError::AlreadyExists`] (and writes nothing) if it does.
    /// Returns the new key/value (its `mod_revision` is the write's revision).
    async fn create(&self, key: &str, value: Bytes, lease: Option<LeaseId>) -> Result<KeyValue>;

    /// Replaces the value of `key` if its current `mod_revision` equals
    /// `expected_mod_revision`. A stale writer gets [`StoreError::Conflict`]
    /// carrying the current key/value; a missing key gets
    /// [`StoreError::NotFound`]. Nothing is written on failure.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
        lease: Option<LeaseId>,
    ) -> Result<KeyValue>;

    /// Deletes `key`, if `expected_mod_revision` is `None` or equals the key's
    /// current `mod_revision`. Returns the deleted key/value and the revision
    /// of the delete. Missing key: [`StoreError::NotFound`]; stale
    /// precondition: [`StoreError::Conflict`].
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<DeleteResponse>;

    /// Every change to keys starting with `prefix` whose revision is at least
    /// `start_revision` (0: changes after the current revision), in revision
    /// order, none skipped or repeated. Fails at once with
    /// [`StoreError::Compacted`] if `start_revision` is below the compacted
    /// revision. The stream ends (after an `Err` item) if the store can no
    /// longer guarantee the sequence; the caller re-watches from its last
    /// revision + 1.
    async fn watch(&self, prefix: &str, start_revision: Revision) -> Result<WatchStream>;

    /// The current revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// Discards the history below `revision`: afterwards reads at, and watches
    /// from, revisions lower than `revision` fail with
    /// [`StoreError::Compacted`]. Compacting to a revision at or below the
    /// already compacted one fails with [`StoreError::Compacted`]; above the
    /// current revision with [`StoreError::FutureRevision`].
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The revision the store has been compacted to (0: never).
    async fn compacted_revision(&self) -> Result<Revision>;

    /// Grants a lease that expires `ttl_seconds` from now; keys written with
    /// it are deleted when it expires or is revoked.
    async fn lease_grant(&self, ttl_seconds: i64) -> Result<LeaseId>;

    /// Revokes a lease at once, deleting its keys.
    async fn lease_revoke(&self, lease: LeaseId) -> Result<()>;

    /// A short name of the backend for logs and benchmark tables.
    fn backend_name(&self) -> &'static str;

    /// Whether a watch event of a write made through this store carries the
    /// very `Bytes` value the write was given (the same allocation), so a
    /// writer can recognise its own write's event. False unless a backend
    /// says so (etcd's events are decoded from the wire).
    fn events_share_written_values(&self) -> bool {
        false
    }
}

/// Checks a key against the store's rules: non-empty, starting with `/`, at
/// most [`MAX_KEY_BYTES`] long, without NUL or other control characters.
pub(crate) fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::InvalidKey("key is empty".into()));
    }
    if !key.starts_with('/') {
        return Err(StoreError::InvalidKey(format!(
            "key {key:?} does not start with '/'"
        )));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::InvalidKey(format!(
            "key is {} bytes long, more than the limit of {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    if key.chars().any(|c| c.is_control()) {
        return Err(StoreError::InvalidKey(format!(
            "key {key:?} contains a control character"
        )));
    }
    Ok(())
}

/// Checks a prefix used for ranges and watches: like a key, but `/` alone is
/// allowed (everything).
pub(crate) fn validate_prefix(prefix: &str) -> Result<()> {
    validate_key(prefix)
}

/// Checks a value's size against [`MAX_VALUE_BYTES`].
pub(crate) fn validate_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::ValueTooLarge {
            size: value.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}
