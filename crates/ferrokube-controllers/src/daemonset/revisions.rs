//! A DaemonSet's ControllerRevisions, as Kubernetes' daemon controller
//! keeps them (`constructHistory`, `snapshot`, `dedupCurHistories`,
//! `cleanupHistory`): one revision per template the DaemonSet has had,
//! whose data is the strategic merge patch that restores that template
//! (what `kubectl rollout undo daemonset` applies); the current one is
//! renumbered to the newest when an old template comes back, and old ones
//! no pod uses are dropped beyond `revisionHistoryLimit`.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use super::DaemonSetController;
use crate::history::{self, REVISION_LABEL};
use crate::podutil::{self, Selector};

/// The patch that restores `ds`'s template (Kubernetes' `getPatch`):
/// `{"spec":{"template":{…,"$patch":"replace"}}}`, spelt as Go encodes it
/// (keys sorted, the template's `creationTimestamp: null` and every
/// container's `resources: {}`), so that kubectl, which compares its own
/// encoding of the DaemonSet with a revision byte for byte, recognises the
/// current one (`rollout undo` then says it skipped).
pub(super) fn patch_of(ds: &DaemonSet) -> Value {
    let mut template = ds
        .spec
        .as_ref()
        .and_then(|s| serde_json::to_value(&s.template).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    if let Some(t) = template.as_object_mut() {
        let meta = t.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.entry("creationTimestamp").or_insert(Value::Null);
        }
        if let Some(spec) = t.get_mut("spec").and_then(Value::as_object_mut) {
            for list in ["containers", "initContainers", "ephemeralContainers"] {
                for c in spec
                    .get_mut(list)
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(c) = c.as_object_mut() {
                        c.entry("resources").or_insert_with(|| json!({}));
                    }
                }
            }
        }
    }
    template["$patch"] = json!("replace");
    json!({"spec": {"template": template}})
}

fn data(r: &ControllerRevision) -> Option<&Value> {
    r.data.as_ref().map(|d| &d.0)
}

fn hash_label(r: &ControllerRevision) -> Option<&str> {
    r.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .map(String::as_str)
}

impl DaemonSetController {
    /// The DaemonSet's current revision (made or renumbered as needed) and
    /// its old ones.
    pub(super) async fn construct_history(
        &self,
        ds: &DaemonSet,
        selector: &Selector,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<(ControllerRevision, Vec<ControllerRevision>)> {
        let patch = patch_of(ds);
        let mut current = Vec::new();
        let mut old = Vec::new();
        for mut r in self.history.claim(&self.revisions, ds, selector).await? {
            // Revisions made before the hash label existed get their name.
            if hash_label(&r).is_none() {
                let name = r.metadata.name.clone().unwrap_or_default();
                r = self
                    .revision_api(ds)
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({"metadata": {"labels": {REVISION_LABEL: name}}})),
                    )
                    .await?;
            }
            if data(&r) == Some(&patch) {
                current.push(r);
            } else {
                old.push(r);
            }
        }
        let next = history::next_revision(&old);
        let cur = if current.is_empty() {
            self.snapshot(ds, patch, next).await?
        } else {
            let cur = self.dedup(ds, current, pods).await?;
            if cur.revision < next {
                self.history.update_revision(&cur, next).await?
            } else {
                cur
            }
        };
        Ok((cur, old))
    }

    fn revision_api(&self, ds: &DaemonSet) -> Api<ControllerRevision> {
        Api::namespaced(
            self.client.clone(),
            ds.metadata.namespace.as_deref().unwrap_or(""),
        )
    }

    /// Keeps the newest of several revisions equal to the current template:
    /// pods labelled with the others are relabelled, the others deleted.
    async fn dedup(
        &self,
        ds: &DaemonSet,
        mut current: Vec<ControllerRevision>,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<ControllerRevision> {
        if current.len() == 1 {
            return Ok(current.remove(0));
        }
        history::sort(&mut current);
        let Some(keep) = current.pop() else {
            anyhow::bail!("no current revision");
        };
        let hash = hash_label(&keep).unwrap_or("").to_string();
        let pod_api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            ds.metadata.namespace.as_deref().unwrap_or(""),
        );
        for p in pods {
            let label = p
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_LABEL));
            if label != Some(&hash) {
                let name = p.metadata.name.as_deref().unwrap_or("");
                let patch = json!({"metadata": {"labels": {REVISION_LABEL: hash}}});
                match pod_api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if crate::util::not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        for r in &current {
            self.history.delete(r).await?;
        }
        Ok(keep)
    }

    /// Records the current template as revision `revision`, named
    /// `<ds>-<template hash>`; a name taken by another template bumps
    /// `status.collisionCount` and fails (the retry uses the new count).
    async fn snapshot(
        &self,
        ds: &DaemonSet,
        patch: Value,
        revision: i64,
    ) -> anyhow::Result<ControllerRevision> {
        let spec = ds.spec.clone().unwrap_or_default();
        let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
        let hash = history::template_hash(&spec.template, collisions);
        let ds_name = ds.metadata.name.clone().unwrap_or_default();
        let name = history::revision_name(&ds_name, &hash);
        let mut labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(REVISION_LABEL.into(), hash);
        let r = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: ds.metadata.namespace.clone(),
                labels: Some(labels),
                annotations: ds.metadata.annotations.clone(),
                owner_references: Some(vec![podutil::owner_ref_to(ds)]),
                ..ObjectMeta::default()
            },
            data: Some(RawExtension(patch.clone())),
            revision,
        };
        let api = self.revision_api(ds);
        match api.create(&PostParams::default(), &r).await {
            Ok(r) => Ok(r),
            Err(e) if crate::util::conflict(&e) => {
                let existing = api.get(&name).await?;
                if data(&existing) == Some(&patch) {
                    return Ok(existing);
                }
                let ds_api: Api<DaemonSet> = Api::namespaced(
                    self.client.clone(),
                    ds.metadata.namespace.as_deref().unwrap_or(""),
                );
                let fresh = ds_api.get(&ds_name).await?;
                let fresh_count = fresh.status.as_ref().and_then(|s| s.collision_count);
                if fresh_count != collisions {
                    anyhow::bail!(
                        "found a stale collision count ({collisions:?}, expected {fresh_count:?}) of DaemonSet {ds_name:?} while processing; will retry until it is updated"
                    );
                }
                let bumped = fresh_count.unwrap_or(0).saturating_add(1);
                ds_api
                    .patch_status(
                        &ds_name,
                        &PatchParams::default(),
                        &Patch::Merge(&json!({
                            "metadata": {"resourceVersion": fresh.metadata.resource_version},
                            "status": {"collisionCount": bumped},
                        })),
                    )
                    .await?;
                tracing::info!(daemonset = %ds_name, collision_count = bumped, "found a hash collision; bumping collisionCount to resolve it");
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the oldest revisions no pod uses beyond
    /// `revisionHistoryLimit` (10 by default).
    pub(super) async fn cleanup_history(
        &self,
        ds: &DaemonSet,
        old: &[ControllerRevision],
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<()> {
        let limit = ds
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10);
        if old.len() <= usize::try_from(limit.max(0)).unwrap_or(0) {
            return Ok(());
        }
        let live: HashSet<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.labels.as_ref()?.get(REVISION_LABEL))
            .map(String::as_str)
            .collect();
        // As Kubernetes counts it: the excess over the limit among all old
        // revisions, taken from the oldest that no pod uses.
        let mut to_kill = old.len() - usize::try_from(limit.max(0)).unwrap_or(0);
        let mut sorted: Vec<&ControllerRevision> = old.iter().collect();
        sorted.sort_by(|a, b| history::by_revision(a, b));
        for r in sorted {
            if to_kill == 0 {
                break;
            }
            if hash_label(r).is_some_and(|h| live.contains(h)) {
                continue;
            }
            self.history.delete(r).await?;
            to_kill -= 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_replaces_the_template() {
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "b"}},
                    "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}
        }))
        .unwrap_or_default();
        let p = patch_of(&ds);
        assert_eq!(p["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            p["spec"]["template"]["spec"]["containers"][0]["image"],
            "i:1"
        );
        assert_eq!(p["spec"].as_object().map(|o| o.len()), Some(1));
    }
}
