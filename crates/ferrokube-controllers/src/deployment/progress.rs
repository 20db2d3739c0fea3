//! Rollout progress (Kubernetes' `deployment/progress.go`): the Progressing
//! condition (NewReplicaSetAvailable, ReplicaSetUpdated,
//! ProgressDeadlineExceeded, DeploymentPaused/Resumed) and when to look
//! again before the deadline passes.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::rolling::progress_complete;
use super::sync::NewIndex;
use super::util;
use super::DeploymentController;

/// Whether the status shows progress against the previous one.
fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let z = |v: Option<i32>| v.unwrap_or(0);
    let old_old = z(old.replicas) - z(old.updated_replicas);
    let new_old = z(new.replicas) - z(new.updated_replicas);
    z(new.updated_replicas) > z(old.updated_replicas)
        || new_old < old_old
        || z(new.ready_replicas) > z(old.ready_replicas)
        || z(new.available_replicas) > z(old.available_replicas)
}

/// Whether the deadline passed since the Progressing condition last moved.
fn timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = util::progress_deadline(d) else {
        return false;
    };
    let Some(c) = util::condition(s, "Progressing") else {
        return false;
    };
    match c.reason.as_deref() {
        Some("NewReplicaSetAvailable") => return false,
        Some("ProgressDeadlineExceeded") => return true,
        _ => {}
    }
    let Some(from) = c.last_update_time.as_ref().map(|t| t.0) else {
        return false;
    };
    from + SignedDuration::from_secs(i64::from(deadline)) < now
}

impl DeploymentController {
    /// Kubernetes' syncRolloutStatus; returns when to look again.
    pub(super) async fn sync_rollout_status(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        new: NewIndex,
    ) -> anyhow::Result<Option<Duration>> {
        let mut status = self.calculate_status(d, rss, new)?;
        let now = Timestamp::now();
        if util::progress_deadline(d).is_none() {
            util::remove_condition(&mut status, "Progressing");
        }
        let cur = util::condition(&status, "Progressing").cloned();
        let complete_already = status.replicas == status.updated_replicas
            && cur.as_ref().and_then(|c| c.reason.as_deref()) == Some("NewReplicaSetAvailable");
        let new_name = new.and_then(|i| rss[i].metadata.name.clone());
        if util::progress_deadline(d).is_some() && !complete_already {
            let name = new_name.clone().unwrap_or_default();
            if progress_complete(d, &status) {
                util::set_condition(
                    &mut status,
                    util::new_condition(
                        "Progressing",
                        "True",
                        "NewReplicaSetAvailable",
                        format!("ReplicaSet {name:?} has successfully progressed."),
                    ),
                );
            } else if progressing(d, &status) {
                let msg = match &new_name {
                    Some(n) => format!("ReplicaSet {n:?} is progressing."),
                    None => "Deployment is progressing.".to_string(),
                };
                let mut c = util::new_condition("Progressing", "True", "ReplicaSetUpdated", msg);
                if let Some(cur) = &cur {
                    if cur.status == "True" {
                        c.last_transition_time = cur.last_transition_time.clone();
                    }
                    util::remove_condition(&mut status, "Progressing");
                }
                util::set_condition(&mut status, c);
            } else if timed_out(d, &status, now) {
                util::set_condition(
                    &mut status,
                    util::new_condition(
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet {name:?} has timed out progressing."),
                    ),
                );
            }
        }
        let before = d.status.clone().unwrap_or_default();
        if util::normalized(&before) == util::normalized(&status) {
            return Ok(self.requeue_stuck(d, &status, now));
        }
        d.status = Some(status);
        self.write_status(d).await?;
        Ok(None)
    }

    /// When a rollout that is not done will reach its deadline.
    fn requeue_stuck(
        &self,
        d: &Deployment,
        s: &DeploymentStatus,
        now: Timestamp,
    ) -> Option<Duration> {
        let deadline = util::progress_deadline(d)?;
        let c = util::condition(s, "Progressing")?;
        if c.reason.as_deref() == Some("NewReplicaSetAvailable") || progress_complete(d, s) {
            return None;
        }
        if timed_out(d, s, now) {
            return None;
        }
        let from = c.last_update_time.as_ref()?.0;
        let at = from + SignedDuration::from_secs(i64::from(deadline));
        let left = at.duration_since(now);
        let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
        Some(left.max(Duration::from_secs(1)))
    }

    /// Progressing=Unknown DeploymentPaused / DeploymentResumed.
    pub(super) async fn check_paused_conditions(&self, d: &mut Deployment) -> anyhow::Result<()> {
        if util::progress_deadline(d).is_none() {
            return Ok(());
        }
        let mut status = d.status.clone().unwrap_or_default();
        let cur = util::condition(&status, "Progressing");
        let reason = cur.and_then(|c| c.reason.clone());
        if reason.as_deref() == Some("ProgressDeadlineExceeded") {
            return Ok(());
        }
        let paused_now = reason.as_deref() == Some("DeploymentPaused");
        let c = if util::paused(d) && !paused_now {
            util::new_condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
            )
        } else if !util::paused(d) && paused_now {
            util::new_condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed".into(),
            )
        } else {
            return Ok(());
        };
        util::set_condition(&mut status, c);
        d.status = Some(status);
        self.write_status(d).await
    }
}
