//! The Recreate strategy (Kubernetes' `deployment/recreate.go`): scale
//! every old ReplicaSet to zero, wait until none of their pods runs, then
//! create or scale up the new one.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::rolling::progress_complete;
use super::sync::old_indices;
use super::util::{self, rs_replicas};
use super::DeploymentController;
use crate::podutil::{self, Selector};

impl DeploymentController {
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
        selector: &Selector,
    ) -> anyhow::Result<Option<Duration>> {
        let mut new = self.get_all_and_sync_revision(d, rss, false).await?;
        let mut scaled_down = false;
        for i in old_indices(rss, new) {
            if rs_replicas(&rss[i]) > 0 && self.scale_rs(d, rss, i, 0).await? {
                scaled_down = true;
            }
        }
        if scaled_down {
            return self.sync_rollout_status(d, rss, new).await;
        }
        if self.old_pods_running(d, rss, new, selector) {
            return self.sync_rollout_status(d, rss, new).await;
        }
        if new.is_none() {
            new = self.get_all_and_sync_revision(d, rss, true).await?;
        }
        if let Some(n) = new {
            let want = util::replicas(d);
            if rs_replicas(&rss[n]) != want {
                self.scale_rs(d, rss, n, want).await?;
            }
        }
        let status = self.calculate_status(d, rss, new)?;
        if progress_complete(d, &status) {
            self.cleanup(d, rss, new).await?;
        }
        self.sync_rollout_status(d, rss, new).await
    }

    /// Whether an old replica set still has replicas or a pod that is not
    /// finished (an Unknown one may still run).
    fn old_pods_running(
        &self,
        d: &Deployment,
        rss: &[ReplicaSet],
        new: super::sync::NewIndex,
        selector: &Selector,
    ) -> bool {
        let old = old_indices(rss, new);
        if old.iter().any(|i| util::rs_status_replicas(&rss[*i]) > 0) {
            return true;
        }
        let old_uids: Vec<&str> = old
            .iter()
            .filter_map(|i| rss[*i].metadata.uid.as_deref())
            .collect();
        let ns = d.metadata.namespace.as_deref();
        self.pods.state().iter().any(|p| {
            p.metadata.namespace.as_deref() == ns
                && selector.matches(p.metadata.labels.as_ref())
                && podutil::controller_ref(&p.metadata)
                    .is_some_and(|r| old_uids.contains(&r.uid.as_str()))
                && !matches!(podutil::phase(p), "Failed" | "Succeeded")
        })
    }
}
