//! The store conformance suite: one set of tests that every [`Store`] backend
//! must pass, so the apiserver can rely on etcd v3's semantics whichever
//! backend it runs on.
//!
//! A backend's test file provides a [`Harness`] and expands
//! [`conformance_tests!`](crate::conformance_tests) with it:
//!
//! ```ignore
//! ferrokube_store::conformance_tests!(MyHarness::new().await);
//! ```
//!
//! Every wait in here is bounded ([`STEP`]); a test never hangs.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use crate::{
    EventKind, KeyValue, RangeRequest, Revision, Store, StoreError, WatchEvent, WatchStream,
    MAX_VALUE_BYTES,
};

/// The longest any single step (one read, one watch event) may take.
pub const STEP: Duration = Duration::from_secs(10);

/// Opens a backend for one test, on data of its own.
#[async_trait]
pub trait Harness: Send {
    /// Opens the store; the first call creates it empty.
    async fn open(&mut self) -> Arc<dyn Store>;
    /// Shuts `store` down cleanly and opens it again on the same data.
    async fn restart(&mut self, store: Arc<dyn Store>) -> Arc<dyn Store>;
}

/// Expands into one `#[tokio::test]` per conformance test, each making its
/// own harness with `$make` (an expression that may `.await`).
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            revisions_and_key_counters,
            get_at_past_revision,
            create_if_absent,
            update_compare_and_swap,
            delete_with_precondition,
            recreate_resets_counters,
            range_pagination_at_one_revision,
            range_at_past_revision,
            count_prefix,
            watch_replays_history_with_prev,
            watch_filters_by_prefix,
            watch_from_now,
            watch_ordering_under_concurrent_writers,
            concurrent_cas_exactly_one_wins,
            compaction,
            restart_keeps_everything,
            lease_revoke_deletes_keys,
            lease_expiry_deletes_keys,
            value_size_limit,
            bad_keys_change_nothing,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let mut harness = $make;
                $crate::conformance::$name(&mut harness).await;
            }
        )*
    };
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next_event(w: &mut WatchStream) -> WatchEvent {
    match tokio::time::timeout(STEP, w.next()).await {
        Ok(Some(Ok(ev))) => ev,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {STEP:?}"),
    }
}

async fn get_value(s: &dyn Store, key: &str) -> Option<KeyValue> {
    s.get(key, None).await.expect("get").kv
}
