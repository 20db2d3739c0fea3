//! Finding or making the new ReplicaSet, revisions, scaling (proportional
//! during a rollout), history cleanup and status: the parts of Kubernetes'
//! `deployment/sync.go` every strategy shares.

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};

use super::util::{self, rs_replicas};
use super::DeploymentController;
use crate::podutil::{self, api_code};

/// The index of the new replica set (if any) in `rss`.
pub(super) type NewIndex = Option<usize>;

/// Indices of every replica set but the new one.
pub(super) fn old_indices(rss: &[ReplicaSet], new: NewIndex) -> Vec<usize> {
    (0..rss.len()).filter(|i| Some(*i) != new).collect()
}

fn template(d: &Deployment) -> PodTemplateSpec {
    d.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

/// The oldest replica set whose template is the Deployment's.
fn find_new(d: &Deployment, rss: &[ReplicaSet]) -> NewIndex {
    let t = template(d);
    let mut idx: Vec<usize> = (0..rss.len()).collect();
    idx.sort_by(|a, b| util::by_creation(&rss[*a], &rss[*b]));
    idx.into_iter().find(|i| {
        rss[*i]
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|rt| util::equal_ignore_hash(rt, &t))
    })
}

impl DeploymentController {
    /// Replaces a replica set (optimistic concurrency on its
    /// resourceVersion); `rss[i]` becomes the server's answer.
    pub(super) async fn update_rs(&self, rss: &mut [ReplicaSet], i: usize) -> anyhow::Result<()> {
        let ns = rss[i].metadata.namespace.clone().unwrap_or_default();
        let name = rss[i].metadata.name.clone().unwrap_or_default();
        let updated = self
            .rs_api(&ns)
            .replace(&name, &PostParams::default(), &rss[i])
            .await?;
        rss[i] = updated;
        Ok(())
    }

    /// Kubernetes' getAllReplicaSetsAndSyncRevision: finds (or, with
    /// `create`, makes) the new replica set and brings its revision and the
    /// Deployment's up to date.
    pub(super) async fn get_all_and_sync_revision(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> anyhow::Result<NewIndex> {
        let existing = find_new(d, rss);
        let max_old = old_indices(rss, existing)
            .into_iter()
            .map(|i| util::revision(&rss[i]))
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;

        if let Some(i) = existing {
            self.sync_existing_new_rs(d, rss, i, new_revision).await?;
            return Ok(Some(i));
        }
        if !create {
            return Ok(None);
        }

        let (new_rs, count) = self.build_new_rs(d, rss, new_revision)?;
        let (created, already_exists) = self.create_new_rs(d, &new_rs).await?;
        self.record_new_rs(d, &created, count, already_exists, new_revision)
            .await?;
        rss.push(created);
        Ok(Some(rss.len() - 1))
    }

    /// The new replica set exists: brings its revision annotations and
    /// minReadySeconds up to date, then the Deployment's revision and its
    /// Progressing condition.
    async fn sync_existing_new_rs(
        &self,
        d: &mut Deployment,
        rss: &mut [ReplicaSet],
        i: usize,
        new_revision: i64,
    ) -> anyhow::Result<()> {
        let mut copy = rss[i].clone();
        let annotations_changed = util::set_new_rs_annotations(d, &mut copy, new_revision, true)?;
        let mrs = util::min_ready_seconds(d);
        let mrs_changed = copy
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
            != mrs;
        if annotations_changed || mrs_changed {
            copy.spec
                .get_or_insert_with(Default::default)
                .min_ready_seconds = Some(mrs);
            rss[i] = copy;
            self.update_rs(rss, i).await?;
        }
        let rev = util::revision(&rss[i]);
        self.write_revision(d, rev).await?;
        let mut status = d.status.clone().unwrap_or_default();
        if util::progress_deadline(d).is_some() && util::condition(&status, "Progressing").is_none()
        {
            let name = rss[i].metadata.name.clone().unwrap_or_default();
            util::set_condition(
                &mut status,
                util::new_condition(
                    "Progressing",
                    "True",
                    "FoundNewReplicaSet",
                    format!("Found new replica set {name:?}"),
                ),
            );
            d.status = Some(status);
            self.write_status(d).await?;
        }
        Ok(())
    }

    /// The new replica set to create (not yet sent): the Deployment's
    /// template with the hash label, its replica count and revision
    /// annotations; also returns that replica count.
    fn build_new_rs(
        &self,
        d: &Deployment,
        rss: &mut Vec<ReplicaSet>,
        new_revision: i64,
    ) -> anyhow::Result<(ReplicaSet, i32)> {
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let mut t = template(d);
        let hash = util::template_hash(&t, collision);
        t.metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(util::HASH_LABEL.into(), hash.clone());
        let mut selector = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(util::HASH_LABEL.into(), hash.clone());
        let dname = d.metadata.name.clone().unwrap_or_default();
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{dname}-{hash}")),
                namespace: Some(ns),
                owner_references: Some(vec![podutil::owner_ref_to(d)]),
                labels: t.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(util::min_ready_seconds(d)),
                selector,
                template: Some(t),
            }),
            status: None,
        };
        rss.push(new_rs.clone());
        let last = rss.len() - 1;
        let count = self.new_rs_new_replicas(d, rss, last)?;
        rss.pop();
        util::set_rs_replicas(&mut new_rs, count);
        util::set_new_rs_annotations(d, &mut new_rs, new_revision, false)?;
        Ok((new_rs, count))
    }

    /// Creates the new replica set. A 409 with our own replica set of the
    /// same template is taken as created before (returns `true` as second
    /// value); any other 409 is a hash collision (counted in the status).
    /// A failed create sets the Progressing condition and an event.
    async fn create_new_rs(
        &self,
        d: &mut Deployment,
        new_rs: &ReplicaSet,
    ) -> anyhow::Result<(ReplicaSet, bool)> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let api = self.rs_api(&ns);
        match api.create(&PostParams::default(), new_rs).await {
            Ok(rs) => Ok((rs, false)),
            Err(e) if api_code(&e) == Some(409) => {
                // Created before (a cache behind), or a hash collision.
                let name = new_rs.metadata.name.clone().unwrap_or_default();
                let found = api.get(&name).await?;
                let ours = podutil::controller_ref(&found.metadata)
                    .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                let same = found
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|ft| util::equal_ignore_hash(ft, &template(d)));
                if ours && same {
                    Ok((found, true))
                } else {
                    let mut status = d.status.clone().unwrap_or_default();
                    status.collision_count =
                        Some(status.collision_count.unwrap_or(0).saturating_add(1));
                    d.status = Some(status);
                    self.write_status(d).await?;
                    anyhow::bail!("hash collision for the new replica set {name}");
                }
            }
            Err(e) => {
                let mut status = d.status.clone().unwrap_or_default();
                if util::progress_deadline(d).is_some() {
                    util::set_condition(
                        &mut status,
                        util::new_condition(
                            "Progressing",
                            "False",
                            "ReplicaSetCreateError",
                            format!(
                                "Failed to create new replica set {:?}: {e}",
                                new_rs.metadata.name.as_deref().unwrap_or("")
                            ),
                        ),
                    );
                    d.status = Some(status);
                    let _ = self.write_status(d).await;
                }
                self.event(
                    d,
                    "Warning",
                    "FailedCreate",
                    format!(
                        "Failed to create new replica set {:?}: {e}",
                        new_rs.metadata.name.as_deref().unwrap_or("")
                    ),
                );
                Err(e.into())
            }
        }
    }

    /// After the create: the scale-up event, the Deployment's new revision
    /// and (for a replica set we really created) its Progressing condition.
    async fn record_new_rs(
        &self,
        d: &mut Deployment,
        created: &ReplicaSet,
        count: i32,
        already_exists: bool,
        new_revision: i64,
    ) -> anyhow::Result<()> {
        let cname = created.metadata.name.clone().unwrap_or_default();
        if !already_exists && count > 0 {
            self.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                format!("Scaled up replica set {cname} from 0 to {count}"),
            );
        }
        self.write_revision(d, new_revision).await?;
        if !already_exists && util::progress_deadline(d).is_some() {
            let mut status = d.status.clone().unwrap_or_default();
            util::set_condition(
                &mut status,
                util::new_condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    format!("Created new replica set {cname:?}"),
                ),
            );
            d.status = Some(status);
            self.write_status(d).await?;
        }
        Ok(())
    }

    /// How many replicas the new replica set may have now.
    pub(super) fn new_rs_new_replicas(
        &self,
        d: &Deployment,
        rss: &[ReplicaSet],
        new: usize,
    ) -> anyhow::Result<i32> {
        let want = util::replicas(d);
        let cur_new = rs_replicas(&rss[new]);
        if util::is_recreate(d) {
            return Ok(want);
        }
        let surge = util::max_surge(d)?;
        let current: i32 = rss.iter().map(rs_replicas).sum();
        let max_total = want + surge;
        if current >= max_total {
            return Ok(cur_new);
        }
        let up = (max_total - current).min(want - cur_new);
        Ok(cur_new + up.max(0))
    }

    /// Scales `rss[i]` to `n`, refreshing its replica annotations; records
    /// a ScalingReplicaSet event when the size changed. Whether it did.
    pub(super) async fn scale_rs(
        &self,
        d: &Deployment,
        rss: &mut [ReplicaSet],
        i: usize,
        n: i32,
    ) -> anyhow::Result<bool> {
        let old = rs_replicas(&rss[i]);
        let size_changes = old != n;
        let desired = util::replicas(d);
        let max = desired + util::max_surge(d)?;
        let annotations_change = util::replicas_annotations_need_update(&rss[i], desired, max);
        if !size_changes && !annotations_change {
            return Ok(false);
        }
        let mut copy = rss[i].clone();
        util::set_rs_replicas(&mut copy, n);
        util::set_replicas_annotations(&mut copy, desired, max);
        rss[i] = copy;
        self.update_rs(rss, i).await?;
        if size_changes {
            let dir = if n > old { "up" } else { "down" };
            let name = rss[i].metadata.name.clone().unwrap_or_default();
            self.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                format!("Scaled {dir} replica set {name} from {old} to {n}"),
            );
        }
        Ok(size_changes)
    }

    /// Whether the Deployment's size differs from what its active replica
    /// sets were last sized for.
    pub(super) async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
    ) -> anyhow::Result<bool> {
        self.get_all_and_sync_revision(d, rss, false).await?;
        let want = util::replicas(d);
        Ok(rss
            .iter()
            .filter(|rs| rs_replicas(rs) > 0)
            .filter_map(util::desired_annotation)
            .any(|desired| desired != want))
    }

    /// Scaling and cleanup without a rollout (paused, or a size change).
    pub(super) async fn sync(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
    ) -> anyhow::Result<()> {
        let new = self.get_all_and_sync_revision(d, rss, false).await?;
        self.scale(d, rss, new).await?;
        if util::paused(d) {
            self.cleanup(d, rss, new).await?;
        }
        self.sync_deployment_status(d, rss, new).await
    }

    pub(super) async fn sync_status_only(
        &self,
        d: &mut Deployment,
        rss: &mut Vec<ReplicaSet>,
    ) -> anyhow::Result<()> {
        let new = self.get_all_and_sync_revision(d, rss, false).await?;
        self.sync_deployment_status(d, rss, new).await
    }

    /// Kubernetes' scale: one active replica set takes the whole size; a
    /// saturated new one leaves the old ones at zero; otherwise a change of
    /// size is shared among the active ones in proportion.
    async fn scale(
        &self,
        d: &Deployment,
        rss: &mut [ReplicaSet],
        new: NewIndex,
    ) -> anyhow::Result<()> {
        let want = util::replicas(d);
        let active: Vec<usize> = (0..rss.len())
            .filter(|i| rs_replicas(&rss[*i]) > 0)
            .collect();
        let active_or_latest = match active.len() {
            0 => new.or_else(|| {
                let mut old = old_indices(rss, new);
                old.sort_by(|a, b| util::by_creation(&rss[*b], &rss[*a]));
                old.first().copied()
            }),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = active_or_latest {
            if rs_replicas(&rss[i]) != want {
                self.scale_rs(d, rss, i, want).await?;
            }
            return Ok(());
        }
        if let Some(n) = new {
            let rs = &rss[n];
            let saturated = util::desired_annotation(rs) == Some(want)
                && rs_replicas(rs) == want
                && util::rs_available(rs) == want;
            if saturated {
                for i in old_indices(rss, new) {
                    if rs_replicas(&rss[i]) > 0 {
                        self.scale_rs(d, rss, i, 0).await?;
                    }
                }
                return Ok(());
            }
        }
        if util::is_recreate(d) {
            return Ok(());
        }
        let mut active = active;
        let total: i32 = active.iter().map(|i| rs_replicas(&rss[*i])).sum();
        let allowed = if want > 0 {
            want + util::max_surge(d)?
        } else {
            0
        };
        let to_add = allowed - total;
        if to_add > 0 {
            active.sort_by(|a, b| util::by_size(&rss[*a], &rss[*b], true));
        } else if to_add < 0 {
            active.sort_by(|a, b| util::by_size(&rss[*a], &rss[*b], false));
        }
        let mut added = 0;
        let mut sizes: HashMap<usize, i32> = HashMap::new();
        for &i in &active {
            let rs = &rss[i];
            if to_add != 0 {
                let p = proportion(rs, d, to_add, added)?;
                sizes.insert(i, rs_replicas(rs) + p);
                added += p;
            } else {
                sizes.insert(i, rs_replicas(rs));
            }
        }
        if to_add != 0 {
            if let Some(&first) = active.first() {
                let leftover = to_add - added;
                let v = sizes.get(&first).copied().unwrap_or(0) + leftover;
                sizes.insert(first, v.max(0));
            }
        }
        for &i in &active {
            let n = sizes.get(&i).copied().unwrap_or(0);
            self.scale_rs(d, rss, i, n).await?;
        }
        Ok(())
    }

    /// Deletes the oldest zero-sized replica sets beyond revisionHistoryLimit.
    pub(super) async fn cleanup(
        &self,
        d: &Deployment,
        rss: &mut [ReplicaSet],
        new: NewIndex,
    ) -> anyhow::Result<()> {
        let limit = util::revision_history_limit(d).max(0) as usize;
        let mut old: Vec<usize> = old_indices(rss, new)
            .into_iter()
            .filter(|i| rss[*i].metadata.deletion_timestamp.is_none())
            .collect();
        if old.len() <= limit {
            return Ok(());
        }
        let diff = old.len() - limit;
        old.sort_by(|a, b| util::by_revision(&rss[*a], &rss[*b]));
        let mut deleted = Vec::new();
        for &i in old.iter().take(diff) {
            let rs = &rss[i];
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if util::rs_status_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            let name = rs.metadata.name.clone().unwrap_or_default();
            let ns = rs.metadata.namespace.clone().unwrap_or_default();
            match self
                .rs_api(&ns)
                .delete(&name, &DeleteParams::background())
                .await
            {
                Ok(_) => deleted.push(i),
                Err(e) if api_code(&e) == Some(404) => deleted.push(i),
                Err(e) => return Err(e.into()),
            }
        }
        // Keep indices valid for the caller: mark, don't remove.
        for i in deleted {
            rss[i].metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
            );
        }
        Ok(())
    }

    /// Kubernetes' calculateStatus.
    pub(super) fn calculate_status(
        &self,
        d: &Deployment,
        rss: &[ReplicaSet],
        new: NewIndex,
    ) -> anyhow::Result<DeploymentStatus> {
        let available: i32 = rss.iter().map(util::rs_available).sum();
        let total: i32 = rss.iter().map(rs_replicas).sum();
        let mut status = d.status.clone().unwrap_or_default();
        status.observed_generation = d.metadata.generation;
        status.replicas = Some(rss.iter().map(util::rs_status_replicas).sum());
        status.updated_replicas = Some(new.map(|i| util::rs_status_replicas(&rss[i])).unwrap_or(0));
        status.ready_replicas = Some(rss.iter().map(util::rs_ready).sum());
        status.available_replicas = Some(available);
        status.unavailable_replicas = Some((total - available).max(0));
        let cond = if available >= util::replicas(d) - util::max_unavailable(d)? {
            util::new_condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            )
        } else {
            util::new_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            )
        };
        util::set_condition(&mut status, cond);
        Ok(status)
    }

    pub(super) async fn sync_deployment_status(
        &self,
        d: &mut Deployment,
        rss: &[ReplicaSet],
        new: NewIndex,
    ) -> anyhow::Result<()> {
        let status = self.calculate_status(d, rss, new)?;
        let cur = d.status.clone().unwrap_or_default();
        if util::normalized(&cur) == util::normalized(&status) {
            return Ok(());
        }
        d.status = Some(status);
        self.write_status(d).await
    }
}

/// How much of a size change `rs` takes, from its share of the size the
/// Deployment had when it was last sized (the max-replicas annotation).
fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> anyhow::Result<i32> {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return Ok(0);
    }
    let fraction = fraction(rs, d)?;
    let allowed = to_add - added;
    Ok(if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    })
}

fn fraction(rs: &ReplicaSet, d: &Deployment) -> anyhow::Result<i32> {
    let want = util::replicas(d);
    if want == 0 {
        return Ok(-rs_replicas(rs));
    }
    let size = want + util::max_surge(d)?;
    let annotated = util::max_replicas_annotation(rs)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated == 0 {
        return Ok(0);
    }
    let new_size = f64::from(rs_replicas(rs)) * f64::from(size) / f64::from(annotated);
    Ok(new_size.round() as i32 - rs_replicas(rs))
}
