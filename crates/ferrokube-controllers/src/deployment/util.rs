//! Deployment arithmetic and bookkeeping, as Kubernetes'
//! `pkg/controller/deployment/util` defines it: defaults, maxSurge and
//! maxUnavailable resolution, the pod-template hash, revision and replica
//! annotations, conditions, and replica set orderings.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

pub(crate) const REVISION: &str = "deployment.kubernetes.io/revision";
pub(crate) const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub(crate) const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub(crate) const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub(crate) const HASH_LABEL: &str = "pod-template-hash";

/// Annotations of a Deployment not copied to its replica sets.
const NOT_COPIED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

pub(crate) fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub(crate) fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

pub(crate) fn set_rs_replicas(rs: &mut ReplicaSet, n: i32) {
    rs.spec.get_or_insert_with(Default::default).replicas = Some(n);
}

pub(crate) fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub(crate) fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub(crate) fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

pub(crate) fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

pub(crate) fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

pub(crate) fn paused(d: &Deployment) -> bool {
    d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false)
}

/// `revisionHistoryLimit` (default 10).
pub(crate) fn revision_history_limit(d: &Deployment) -> i32 {
    d.spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
}

/// `progressDeadlineSeconds` (default 600); `None` when disabled (MaxInt32).
pub(crate) fn progress_deadline(d: &Deployment) -> Option<i32> {
    let v = d
        .spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(600);
    (v != i32::MAX).then_some(v)
}

/// An int-or-percent scaled against `total` (percent rounded up or down).
pub(crate) fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> anyhow::Result<i32> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%') else {
                if let Ok(i) = s.parse::<i32>() {
                    return Ok(i);
                }
                anyhow::bail!("invalid value for IntOrString: invalid value {s:?}");
            };
            let p: i64 = p
                .parse()
                .map_err(|_| anyhow::anyhow!("invalid value for IntOrString: {s:?}"))?;
            let x = p * i64::from(total);
            let v = if round_up {
                (x + 99).div_euclid(100)
            } else {
                x.div_euclid(100)
            };
            Ok(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
        }
    }
}

/// maxSurge and maxUnavailable for `d` (RollingUpdate defaults 25 %/25 %);
/// both zero turns unavailable into 1, as Kubernetes' ResolveFenceposts.
pub(crate) fn fenceposts(d: &Deployment) -> anyhow::Result<(i32, i32)> {
    let desired = replicas(d);
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let quarter = IntOrString::String("25%".into());
    let surge = ru.and_then(|r| r.max_surge.as_ref()).unwrap_or(&quarter);
    let unavail = ru
        .and_then(|r| r.max_unavailable.as_ref())
        .unwrap_or(&quarter);
    let surge = scaled_value(surge, desired, true)?;
    let mut unavail = scaled_value(unavail, desired, false)?;
    if surge == 0 && unavail == 0 {
        unavail = 1;
    }
    Ok((surge, unavail))
}

pub(crate) fn max_surge(d: &Deployment) -> anyhow::Result<i32> {
    if is_recreate(d) {
        return Ok(0);
    }
    Ok(fenceposts(d)?.0)
}

pub(crate) fn max_unavailable(d: &Deployment) -> anyhow::Result<i32> {
    if is_recreate(d) || replicas(d) == 0 {
        return Ok(0);
    }
    Ok(fenceposts(d)?.1.min(replicas(d)))
}

/// The pod-template hash: FNV-1a over the template's JSON and the
/// collision count, spelt with Kubernetes' safe alphabet.
pub(crate) fn template_hash(t: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let bytes = serde_json::to_vec(t).unwrap_or_default();
    let mut h: u32 = 2166136261;
    let mut feed = |b: u8| {
        h ^= u32::from(b);
        h = h.wrapping_mul(16777619);
    };
    for b in bytes {
        feed(b);
    }
    if let Some(c) = collision_count {
        for b in (c as u32).to_le_bytes() {
            feed(b);
        }
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect()
}

/// Whether two templates are equal but for the `pod-template-hash` label.
pub(crate) fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(m) = t.metadata.as_mut() {
            if let Some(l) = m.labels.as_mut() {
                l.remove(HASH_LABEL);
                if l.is_empty() {
                    m.labels = None;
                }
            }
        }
        t
    };
    strip(a) == strip(b)
}

pub(crate) fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn annotation_i32(rs: &ReplicaSet, key: &str) -> Option<i32> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

pub(crate) fn desired_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation_i32(rs, DESIRED_REPLICAS)
}

pub(crate) fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    annotation_i32(rs, MAX_REPLICAS)
}

/// Sets desired/max replicas annotations; whether anything changed.
pub(crate) fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(Default::default);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

pub(crate) fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    desired_annotation(rs) != Some(desired) || max_replicas_annotation(rs) != Some(max)
}

/// Copies the Deployment's annotations to the new replica set and moves its
/// revision to `new_revision` (keeping the old one in revision-history);
/// for a replica set about to be created, sets the replica annotations.
pub(crate) fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> anyhow::Result<bool> {
    let mut changed = false;
    let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if NOT_COPIED.contains(&k.as_str()) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = annotations.get(REVISION).cloned().unwrap_or_default();
    let old_n: i64 = if old.is_empty() {
        0
    } else {
        match old.parse() {
            Ok(n) => n,
            Err(_) => return Ok(changed),
        }
    };
    if old_n < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if !old.is_empty() {
            let hist = annotations
                .get(REVISION_HISTORY)
                .cloned()
                .unwrap_or_default();
            let hist = if hist.is_empty() {
                old
            } else {
                format!("{hist},{old}")
            };
            annotations.insert(REVISION_HISTORY.into(), hist);
        }
    }
    if !exists {
        let n = replicas(d);
        if set_replicas_annotations(rs, n, n + max_surge(d)?) {
            changed = true;
        }
    }
    Ok(changed)
}

/// Older first, then by name (Kubernetes' ReplicaSetsByCreationTimestamp).
pub(crate) fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if ta == tb {
        a.metadata.name.cmp(&b.metadata.name)
    } else {
        ta.cmp(&tb)
    }
}

/// Larger first; among equals, newer first (`newer`) or older first.
pub(crate) fn by_size(a: &ReplicaSet, b: &ReplicaSet, newer: bool) -> Ordering {
    let (ra, rb) = (rs_replicas(a), rs_replicas(b));
    if ra == rb {
        let o = by_creation(a, b);
        if newer {
            o.reverse()
        } else {
            o
        }
    } else {
        rb.cmp(&ra)
    }
}

/// Lower revision first, then by creation.
pub(crate) fn by_revision(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let (ra, rb) = (revision(a), revision(b));
    if ra == rb {
        by_creation(a, b)
    } else {
        ra.cmp(&rb)
    }
}

pub(crate) fn condition<'a>(
    s: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    s.conditions.iter().flatten().find(|c| c.type_ == type_)
}

pub(crate) fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let now = Time(Timestamp::now());
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// Kubernetes' SetDeploymentCondition: the same status and reason change
/// nothing; the same status keeps the transition time.
pub(crate) fn set_condition(s: &mut DeploymentStatus, mut c: DeploymentCondition) {
    if let Some(cur) = condition(s, &c.type_) {
        if cur.status == c.status && cur.reason == c.reason {
            return;
        }
        if cur.status == c.status {
            c.last_transition_time = cur.last_transition_time.clone();
        }
    }
    remove_condition(s, &c.type_.clone());
    s.conditions.get_or_insert_with(Vec::new).push(c);
}

pub(crate) fn remove_condition(s: &mut DeploymentStatus, type_: &str) {
    if let Some(cs) = s.conditions.as_mut() {
        cs.retain(|c| c.type_ != type_);
    }
}

/// The status with absent counters as zero, for comparisons.
pub(crate) fn normalized(s: &DeploymentStatus) -> DeploymentStatus {
    let z = |v: Option<i32>| Some(v.unwrap_or(0));
    DeploymentStatus {
        available_replicas: z(s.available_replicas),
        collision_count: s.collision_count,
        conditions: s.conditions.clone().filter(|c| !c.is_empty()),
        observed_generation: Some(s.observed_generation.unwrap_or(0)),
        ready_replicas: z(s.ready_replicas),
        replicas: z(s.replicas),
        terminating_replicas: s.terminating_replicas,
        unavailable_replicas: z(s.unavailable_replicas),
        updated_replicas: z(s.updated_replicas),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(replicas: i32, surge: IntOrString, unavail: IntOrString) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "d"},
            "spec": {"replicas": replicas, "selector": {},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavail}},
                     "template": {}}
        }))
        .unwrap_or_default()
    }

    #[test]
    fn surge_rounds_up_and_unavailable_down() {
        let s = |v: &str| IntOrString::String(v.into());
        assert_eq!(fenceposts(&d(10, s("25%"), s("25%"))).ok(), Some((3, 2)));
        assert_eq!(fenceposts(&d(1, s("25%"), s("25%"))).ok(), Some((1, 0)));
        assert_eq!(
            fenceposts(&d(3, IntOrString::Int(0), IntOrString::Int(0))).ok(),
            Some((0, 1))
        );
        assert_eq!(
            max_unavailable(&d(2, IntOrString::Int(0), IntOrString::Int(5))).ok(),
            Some(2)
        );
        assert!(fenceposts(&d(3, s("x"), s("1%"))).is_err());
    }

    #[test]
    fn hash_ignores_its_own_label_and_changes_with_collisions() {
        let t: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap_or_default();
        let h = template_hash(&t, None);
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_ne!(h, template_hash(&t, Some(1)));
        let mut labelled = t.clone();
        if let Some(l) = labelled.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            l.insert(HASH_LABEL.into(), h);
        }
        assert!(equal_ignore_hash(&t, &labelled));
    }
}
