//! Automatic compaction over any [`Store`]: keeps a window of history.
//!
//! Like the Kubernetes apiserver's compactor, every `interval` it compacts to
//! the revision it observed one interval earlier, so watchers and paginated
//! lists always have at least one interval of history to resume from. Every
//! compaction is logged; a failure is logged as an error and counted, never
//! silently ignored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{Revision, Store, StoreError};

/// Counters a caller can export as metrics.
#[derive(Debug, Default)]
pub struct CompactorStats {
    /// Compactions done.
    pub compactions: AtomicU64,
    /// Compactions that failed (each also logged as an error).
    pub failures: AtomicU64,
    /// The revision the last successful compaction compacted to.
    pub last_compacted_revision: AtomicU64,
}

/// Runs compaction of a store in the background until cancelled.
pub struct Compactor {
    /// The compactor's counters, shared with whoever exports them.
    pub stats: Arc<CompactorStats>,
    handle: tokio::task::JoinHandle<()>,
}

impl Compactor {
    /// Starts compacting `store` every `interval`.
    pub fn spawn(store: Arc<dyn Store>, interval: Duration, cancel: CancellationToken) -> Self {
        let stats = Arc::new(CompactorStats::default());
        let task_stats = stats.clone();
        let handle = tokio::spawn(async move {
            let mut previous: Option<Revision> = None;
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let current = match store.current_revision().await {
                    Ok(rev) => rev,
                    Err(err) => {
                        task_stats.failures.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(backend = store.backend_name(), error = %err, "compactor: cannot read the current revision");
                        continue;
                    }
                };
                if let Some(target) = previous.filter(|&p| p > 0) {
                    match store.compact(target).await {
                        Ok(()) => {
                            task_stats.compactions.fetch_add(1, Ordering::Relaxed);
                            task_stats
                                .last_compacted_revision
                                .store(target as u64, Ordering::Relaxed);
                            tracing::info!(
                                backend = store.backend_name(),
                                revision = target,
                                "compacted"
                            );
                        }
                        // Already compacted that far (another apiserver did it): fine.
                        Err(StoreError::Compacted { .. }) => {}
                        Err(err) => {
                            task_stats.failures.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(backend = store.backend_name(), revision = target, error = %err, "compaction failed");
                        }
                    }
                }
                previous = Some(current);
            }
        });
        Compactor { stats, handle }
    }

    /// Waits for the compactor to stop (after its token is cancelled).
    pub async fn join(self) {
        let _ = self.handle.await;
    }
}
