//! The RollingUpdate strategy (Kubernetes' `deployment/rolling.go`): grow
//! the new ReplicaSet while the total stays within replicas + maxSurge,
//! shrink the old ones while availability stays at or above replicas -
//! maxUnavailable, unhealthy old replicas first.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::sync::{old_indices, NewIndex};
use super::util::{self, rs_replicas};
use super::DeploymentController;

impl DeploymentController {
    /// One step of a rolling update; returns when to look again.
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
    ) -> anyhow::Result<Option<Duration>> {
        let new = self.get_all_and_sync_revision(d, rss, true).await?;
        if self.reconcile_new_rs(d, rss, new).await? {
            return self.sync_rollout_status(d, rss, new).await;
        }
        if self.reconcile_old_rss(d, rss, new).await? {
            return self.sync_rollout_status(d, rss, new).await;
        }
        let status = self.calculate_status(d, rss, new)?;
        if progress_complete(d, &status) {
            self.cleanup(d, rss, new).await?;
        }
        self.sync_rollout_status(d, rss, new).await
    }

    async fn reconcile_new_rs(
        &self,
        d: &Deployment,
        rss: &mut [ReplicaSet],
        new: NewIndex,
    ) -> anyhow::Result<bool> {
        let Some(n) = new else { return Ok(false) };
        let want = util::replicas(d);
        let cur = rs_replicas(&rss[n]);
        if cur == want {
            return Ok(false);
        }
        if cur > want {
            return self.scale_rs(d, rss, n, want).await;
        }
        let count = self.new_rs_new_replicas(d, rss, n)?;
        self.scale_rs(d, rss, n, count).await
    }

    async fn reconcile_old_rss(
        &self,
        d: &Deployment,
        rss: &mut [ReplicaSet],
        new: NewIndex,
    ) -> anyhow::Result<bool> {
        let old: Vec<usize> = old_indices(rss, new)
            .into_iter()
            .filter(|i| rs_replicas(&rss[*i]) > 0)
            .collect();
        let old_pods: i32 = old.iter().map(|i| rs_replicas(&rss[*i])).sum();
        if old_pods == 0 {
            return Ok(false);
        }
        let all_pods: i32 = rss.iter().map(rs_replicas).sum();
        let min_available = util::replicas(d) - util::max_unavailable(d)?;
        let new_unavailable = new
            .map(|n| rs_replicas(&rss[n]) - util::rs_available(&rss[n]))
            .unwrap_or(0);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // First the old replicas that are not available anyway.
        let mut by_age = old.clone();
        by_age.sort_by(|a, b| util::by_creation(&rss[*a], &rss[*b]));
        let mut cleaned = 0;
        for &i in &by_age {
            if cleaned >= max_scaled_down {
                break;
            }
            let size = rs_replicas(&rss[i]);
            let avail = util::rs_available(&rss[i]);
            if size == 0 || size == avail {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(size - avail);
            self.scale_rs(d, rss, i, size - down).await?;
            cleaned += down;
        }
        // Then as many as availability allows.
        let available: i32 = rss.iter().map(util::rs_available).sum();
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for &i in &by_age {
                if scaled >= total {
                    break;
                }
                let size = rs_replicas(&rss[i]);
                if size == 0 {
                    continue;
                }
                let down = size.min(total - scaled);
                self.scale_rs(d, rss, i, size - down).await?;
                scaled += down;
            }
        }
        Ok(cleaned + scaled > 0)
    }
}

/// Kubernetes' DeploymentComplete: every replica updated and available.
pub(super) fn progress_complete(
    d: &Deployment,
    s: &k8s_openapi::api::apps::v1::DeploymentStatus,
) -> bool {
    let want = util::replicas(d);
    s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}
