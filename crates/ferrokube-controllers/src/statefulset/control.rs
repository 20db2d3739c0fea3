//! What one pass of the StatefulSet controller does, decided without
//! touching the API (Kubernetes' `updateStatefulSet`): the pods the set
//! wants (ordinals `start .. start + replicas`) and the condemned ones
//! beyond; then, in that order, replace failed or succeeded pods, create
//! missing ones (their claims first), fix identities, storage and claim
//! ownership, delete condemned pods highest ordinal first, and roll pods
//! not at the update revision from the highest ordinal down to the
//! partition. With `OrderedReady` each step waits for every earlier pod to
//! be Running, Ready and available for `minReadySeconds`; with `Parallel`
//! nothing waits. The status the pass reports comes with the plan.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::{identity, retention};
use crate::podutil;

/// One write of a pass.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Make the claims of this new pod, then the pod, then set the claims'
    /// references for the retention policy.
    Create(Box<Pod>),
    /// Delete this pod (its uid only).
    Delete(Arc<Pod>),
    /// A Pending pod: make its missing claims (and set their references).
    CreateClaims(Arc<Pod>),
    /// Fix the pod's identity, storage and claims' references.
    Update(Arc<Pod>),
    /// Set the claims' references of a condemned pod for the policy.
    FixClaims(Arc<Pod>),
}

/// A pass's writes, in groups run one after the other (the actions of a
/// group may run together); the first failure ends the pass.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub groups: Vec<Vec<Action>>,
    pub status: StatefulSetStatus,
    /// When a ready pod becomes available (minReadySeconds), to look again.
    pub requeue: Option<Duration>,
}

/// What the pass works from.
pub(crate) struct Inputs<'a> {
    /// The set as stored.
    pub set: &'a StatefulSet,
    /// The set with the current revision's template.
    pub current_set: &'a StatefulSet,
    /// The set with the update revision's template.
    pub update_set: &'a StatefulSet,
    pub current_revision: &'a str,
    pub update_revision: &'a str,
    pub collision_count: i32,
    /// The set's pods (owned, members).
    pub pods: &'a [Arc<Pod>],
    /// A claim of the set's namespace by name (from the cache).
    pub claim: &'a dyn Fn(&str) -> Option<Arc<PersistentVolumeClaim>>,
    pub now: Timestamp,
}

/// A pod the set has or is about to make.
#[derive(Clone)]
enum Slot {
    Have(Arc<Pod>),
    New(Box<Pod>),
}

impl Slot {
    fn pod(&self) -> &Pod {
        match self {
            Slot::Have(p) => p,
            Slot::New(p) => p,
        }
    }
}

fn created(p: &Pod) -> bool {
    !podutil::phase(p).is_empty()
}

fn terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

fn running_and_ready(p: &Pod) -> bool {
    podutil::phase(p) == "Running" && podutil::is_ready(p)
}

fn healthy(p: &Pod) -> bool {
    running_and_ready(p) && !terminating(p)
}

fn min_ready(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

fn available(p: &Pod, set: &StatefulSet, now: Timestamp) -> bool {
    running_and_ready(p) && podutil::is_available(p, min_ready(set), now)
}

fn parallel(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        == Some("Parallel")
}

fn strategy(set: &StatefulSet) -> &str {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

fn partition(set: &StatefulSet) -> Option<i32> {
    let ru = set
        .spec
        .as_ref()?
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()?;
    Some(ru.partition.unwrap_or(0))
}

fn max_unavailable(set: &StatefulSet) -> Option<&IntOrString> {
    set.spec
        .as_ref()?
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()?
        .max_unavailable
        .as_ref()
}

/// maxUnavailable scaled against `replicas`, rounded down, at least 1.
fn scaled_max_unavailable(v: &IntOrString, replicas: i32) -> i32 {
    let n = match v {
        IntOrString::Int(i) => *i,
        IntOrString::String(s) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map(|p| (p * i64::from(replicas) / 100) as i32)
            .unwrap_or(1),
    };
    n.max(1)
}

/// The pod for a missing ordinal, at the current revision when a rolling
/// update keeps it there (below the partition), else at the update one.
fn versioned_pod(inp: &Inputs, ordinal: i32) -> Pod {
    let cs = inp.current_set;
    let start = identity::start_ordinal(cs);
    let at_current = strategy(cs) == "RollingUpdate"
        && match partition(cs) {
            None => {
                let current = cs
                    .status
                    .as_ref()
                    .and_then(|s| s.current_replicas)
                    .unwrap_or(0);
                ordinal < start.saturating_add(current)
            }
            Some(p) => ordinal < start.saturating_add(p),
        };
    if at_current {
        identity::new_pod(cs, ordinal, inp.current_revision)
    } else {
        identity::new_pod(inp.update_set, ordinal, inp.update_revision)
    }
}

fn count(status: &mut StatefulSetStatus, inp: &Inputs, pods: &[&Pod]) {
    let mut replicas = 0;
    let mut ready = 0;
    let mut available_n = 0;
    let mut current = 0;
    let mut updated = 0;
    for p in pods {
        if created(p) {
            replicas += 1;
        }
        if running_and_ready(p) {
            ready += 1;
            if available(p, inp.set, inp.now) {
                available_n += 1;
            }
        }
        if created(p) && !terminating(p) {
            let r = identity::revision_of(p);
            if r == inp.current_revision {
                current += 1;
            }
            if r == inp.update_revision {
                updated += 1;
            }
        }
    }
    status.replicas = replicas;
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available_n);
    status.current_replicas = Some(current);
    status.updated_replicas = Some(updated);
}

/// Whether the claims of `p` already carry the references the policy
/// wants (claims not there yet count as matching).
pub(crate) fn claims_match(inp: &Inputs, set: &StatefulSet, p: &Pod) -> bool {
    let ord = identity::ordinal(p);
    identity::claims_for(set, ord).iter().all(|(_, c)| {
        match (inp.claim)(c.metadata.name.as_deref().unwrap_or("")) {
            Some(have) => retention::up_to_date(&have, set, p),
            None => true,
        }
    })
}

/// Whether a claim the new pod would use still belongs to an earlier pod
/// of its name (wait for the collector to delete it).
fn claim_stale(inp: &Inputs, p: &Pod) -> bool {
    let ord = identity::ordinal(p);
    identity::claims_for(inp.set, ord).iter().any(|(_, c)| {
        (inp.claim)(c.metadata.name.as_deref().unwrap_or(""))
            .is_some_and(|have| retention::claim_is_stale(&have, inp.set, p))
    })
}

/// Decides the pass.
pub(crate) fn plan(inp: &Inputs) -> Plan {
    let set = inp.set;
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        current_revision: Some(inp.current_revision.to_string()),
        update_revision: Some(inp.update_revision.to_string()),
        collision_count: Some(inp.collision_count),
        ..StatefulSetStatus::default()
    };
    let all: Vec<&Pod> = inp.pods.iter().map(|p| p.as_ref()).collect();
    count(&mut status, inp, &all);

    let (replicas, condemned) = replicas_and_condemned(inp);
    let first_unhealthy = first_unhealthy(&replicas, &condemned);

    let mut out = Plan {
        groups: Vec::new(),
        status: StatefulSetStatus::default(),
        requeue: availability_requeue(inp, &replicas),
    };
    let finish = |mut out: Plan, mut status: StatefulSetStatus, set: &StatefulSet| {
        complete_rolling_update(set, &mut status);
        out.groups.retain(|g| !g.is_empty());
        out.status = status;
        out
    };
    if set.metadata.deletion_timestamp.is_some() {
        return finish(out, status, set);
    }
    let monotonic = !parallel(set);
    let recount = |status: &mut StatefulSetStatus, replicas: &[Slot], condemned: &[Arc<Pod>]| {
        let pods: Vec<&Pod> = replicas
            .iter()
            .map(Slot::pod)
            .chain(condemned.iter().map(|p| p.as_ref()))
            .collect();
        count(status, inp, &pods);
    };

    // 1. Each wanted pod, in ordinal order.
    let (group, blocked) = wanted_pod_actions(inp, &replicas, monotonic);
    push_group(&mut out.groups, group, monotonic);
    if blocked {
        recount(&mut status, &replicas, &condemned);
        return finish(out, status, set);
    }

    // 2. Claims of condemned pods get the references the policy wants.
    push_group(
        &mut out.groups,
        condemned_claim_fixes(inp, &condemned),
        monotonic,
    );

    // 3. Condemned pods, highest ordinal first.
    let (group, blocked) = condemned_deletions(inp, &condemned, &first_unhealthy, monotonic);
    push_group(&mut out.groups, group, monotonic);
    recount(&mut status, &replicas, &condemned);
    if blocked || strategy(set) == "OnDelete" {
        return finish(out, status, set);
    }

    // 4. The rolling update, from the highest ordinal down to the partition.
    out.groups
        .push(rolling_update_deletions(inp, &replicas, &mut status));
    finish(out, status, set)
}

/// The wanted ordinals (a pod there, or the one to create) and the
/// condemned pods (ordinal out of range), highest ordinal first.
fn replicas_and_condemned(inp: &Inputs) -> (Vec<Slot>, Vec<Arc<Pod>>) {
    let set = inp.set;
    let start = identity::start_ordinal(set);
    let n = identity::replicas(set) as usize;
    let mut slots: Vec<Option<Slot>> = vec![None; n];
    let mut condemned: Vec<Arc<Pod>> = Vec::new();
    for p in inp.pods {
        let ord = identity::ordinal(p);
        if identity::in_range(ord, set) {
            slots[(ord - start) as usize] = Some(Slot::Have(p.clone()));
        } else if ord >= 0 {
            condemned.push(p.clone());
        }
    }
    let replicas: Vec<Slot> = slots
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            s.unwrap_or_else(|| Slot::New(Box::new(versioned_pod(inp, start + i as i32))))
        })
        .collect();
    // Highest ordinal first.
    condemned.sort_by_key(|p| std::cmp::Reverse(identity::ordinal(p)));
    (replicas, condemned)
}

/// The name of the first unhealthy pod: wanted ones in ordinal order, then
/// condemned ones lowest ordinal first.
fn first_unhealthy(replicas: &[Slot], condemned: &[Arc<Pod>]) -> Option<String> {
    replicas
        .iter()
        .map(Slot::pod)
        .chain(condemned.iter().rev().map(|p| p.as_ref()))
        .find(|p| !healthy(p))
        .and_then(|p| p.metadata.name.clone())
}

/// The soonest a ready pod becomes available (minReadySeconds), to look
/// again then.
fn availability_requeue(inp: &Inputs, replicas: &[Slot]) -> Option<Duration> {
    let mut requeue: Option<Duration> = None;
    let min_ready_s = min_ready(inp.set);
    for s in replicas {
        if let Slot::Have(p) = s {
            if running_and_ready(p) {
                if let Some(d) = podutil::available_in(p, min_ready_s, inp.now) {
                    requeue = Some(requeue.map_or(d, |r| r.min(d)));
                }
            }
        }
    }
    requeue
}

/// Step 1: the action each wanted pod needs, in ordinal order; `true` when
/// an ordered (monotonic) set must stop there.
fn wanted_pod_actions(inp: &Inputs, replicas: &[Slot], monotonic: bool) -> (Vec<Action>, bool) {
    let mut group: Vec<Action> = Vec::new();
    for slot in replicas {
        match replica_step(inp, slot, monotonic) {
            Step::Act(a, stop) => {
                group.push(a);
                if stop && monotonic {
                    return (group, true);
                }
            }
            Step::Wait if monotonic => return (group, true),
            Step::Wait | Step::Next => {}
        }
    }
    (group, false)
}

/// Step 2: condemned pods whose claims lack the references the policy
/// wants.
fn condemned_claim_fixes(inp: &Inputs, condemned: &[Arc<Pod>]) -> Vec<Action> {
    condemned
        .iter()
        .filter(|p| !claims_match(inp, inp.update_set, p))
        .map(|p| Action::FixClaims(p.clone()))
        .collect()
}

/// Step 3: deletions of condemned pods, highest ordinal first; `true` when
/// an ordered (monotonic) set must stop there.
fn condemned_deletions(
    inp: &Inputs,
    condemned: &[Arc<Pod>],
    first_unhealthy: &Option<String>,
    monotonic: bool,
) -> (Vec<Action>, bool) {
    let mut group = Vec::new();
    for p in condemned {
        if terminating(p) {
            if monotonic {
                return (group, true);
            }
            continue;
        }
        let first = p.metadata.name == *first_unhealthy;
        if monotonic && !first && (!running_and_ready(p) || !available(p, inp.set, inp.now)) {
            return (group, true);
        }
        group.push(Action::Delete(p.clone()));
        if monotonic {
            return (group, true);
        }
    }
    (group, false)
}

/// Step 4: the rolling update's deletions, from the highest ordinal down
/// to the partition (within maxUnavailable when set, else one at a time
/// while the higher ones are healthy); each lowers the current count.
fn rolling_update_deletions(
    inp: &Inputs,
    replicas: &[Slot],
    status: &mut StatefulSetStatus,
) -> Vec<Action> {
    let set = inp.set;
    let update_min = partition(set).unwrap_or(0).max(0) as usize;
    let mut group = Vec::new();
    if let Some(mu) = max_unavailable(set) {
        let max = scaled_max_unavailable(mu, identity::replicas(set)) as usize;
        let unavailable = replicas.iter().filter(|s| !healthy(s.pod())).count();
        if unavailable < max {
            let mut budget = max - unavailable;
            for s in replicas.iter().skip(update_min).rev() {
                if budget == 0 {
                    break;
                }
                if let Slot::Have(p) = s {
                    if identity::revision_of(p) != inp.update_revision && !terminating(p) {
                        group.push(Action::Delete(p.clone()));
                        budget -= 1;
                        dec_current(status);
                    }
                }
            }
        }
    } else {
        for s in replicas.iter().skip(update_min).rev() {
            let p = s.pod();
            if identity::revision_of(p) != inp.update_revision && !terminating(p) {
                if let Slot::Have(p) = s {
                    group.push(Action::Delete(p.clone()));
                    dec_current(status);
                }
                break;
            }
            if !healthy(p) {
                break;
            }
        }
    }
    group
}

/// A rolling update whose every wanted pod is updated and ready is done:
/// the update revision becomes the current one.
fn complete_rolling_update(set: &StatefulSet, status: &mut StatefulSetStatus) {
    let want = identity::replicas(set);
    if strategy(set) == "RollingUpdate"
        && status.updated_replicas.unwrap_or(0) == want
        && status.ready_replicas.unwrap_or(0) == want
        && status.replicas == want
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}

fn dec_current(status: &mut StatefulSetStatus) {
    status.current_replicas = Some(status.current_replicas.unwrap_or(0) - 1);
}

/// Monotonic: one action per group (each must succeed before the next);
/// Parallel: the whole group together.
fn push_group(groups: &mut Vec<Vec<Action>>, group: Vec<Action>, monotonic: bool) {
    if group.is_empty() {
        return;
    }
    if monotonic {
        groups.extend(group.into_iter().map(|a| vec![a]));
    } else {
        groups.push(group);
    }
}

enum Step {
    /// Do this; `true`: then stop (when monotonic).
    Act(Action, bool),
    /// Wait for this pod (monotonic).
    Wait,
    Next,
}

/// Kubernetes' processReplica for one wanted pod.
fn replica_step(inp: &Inputs, slot: &Slot, monotonic: bool) -> Step {
    let p = match slot {
        Slot::New(p) => {
            if claim_stale(inp, p) {
                return Step::Wait;
            }
            return Step::Act(Action::Create(p.clone()), true);
        }
        Slot::Have(p) => p.clone(),
    };
    let phase = podutil::phase(&p);
    if phase == "Failed" || phase == "Succeeded" {
        if terminating(&p) {
            return Step::Wait;
        }
        return Step::Act(Action::Delete(p), true);
    }
    if !created(&p) {
        return Step::Act(Action::Create(Box::new(p.as_ref().clone())), true);
    }
    if phase == "Pending" && !claims_exist(inp, &p) {
        return Step::Act(Action::CreateClaims(p), false);
    }
    if monotonic && (terminating(&p) || !running_and_ready(&p) || !available(&p, inp.set, inp.now))
    {
        return Step::Wait;
    }
    let claims_ok = claims_match(inp, inp.update_set, &p);
    if identity::identity_matches(inp.set, &p)
        && identity::storage_matches(inp.set, &p)
        && claims_ok
    {
        return Step::Next;
    }
    Step::Act(Action::Update(p), false)
}

fn claims_exist(inp: &Inputs, p: &Pod) -> bool {
    identity::claims_for(inp.set, identity::ordinal(p))
        .iter()
        .all(|(_, c)| (inp.claim)(c.metadata.name.as_deref().unwrap_or("")).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(replicas: i32, extra: serde_json::Value) -> StatefulSet {
        let mut v = json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 2},
            "spec": {
                "replicas": replicas,
                "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "i"}]}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
            }
        });
        if let (Some(spec), Some(e)) = (v["spec"].as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                spec.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(v).expect("set")
    }

    /// A pod of ordinal `ord` at `rev` in `phase`, ready or not.
    fn pod(ord: i32, rev: &str, phase: &str, ready: bool) -> Arc<Pod> {
        let s = set(1, json!({}));
        let mut p = identity::new_pod(&s, ord, rev);
        p.metadata.uid = Some(format!("pod-{ord}"));
        p.status = Some(
            serde_json::from_value(json!({
                "phase": phase,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                                "lastTransitionTime": "2020-01-01T00:00:00Z"}]
            }))
            .expect("status"),
        );
        Arc::new(p)
    }

    fn run(s: &StatefulSet, pods: &[Arc<Pod>], current: &str, update: &str) -> Plan {
        let none = |_: &str| None;
        plan(&Inputs {
            set: s,
            current_set: s,
            update_set: s,
            current_revision: current,
            update_revision: update,
            collision_count: 0,
            pods,
            claim: &none,
            now: Timestamp::now(),
        })
    }

    fn describe(p: &Plan) -> Vec<String> {
        p.groups
            .iter()
            .map(|g| {
                g.iter()
                    .map(|a| match a {
                        Action::Create(p) => {
                            format!("create {}", p.metadata.name.clone().unwrap_or_default())
                        }
                        Action::Delete(p) => {
                            format!("delete {}", p.metadata.name.clone().unwrap_or_default())
                        }
                        Action::CreateClaims(p) => {
                            format!("claims {}", p.metadata.name.clone().unwrap_or_default())
                        }
                        Action::Update(p) => {
                            format!("update {}", p.metadata.name.clone().unwrap_or_default())
                        }
                        Action::FixClaims(p) => {
                            format!("fix {}", p.metadata.name.clone().unwrap_or_default())
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    #[test]
    fn ordered_ready_creates_one_pod_at_a_time() {
        let s = set(3, json!({}));
        assert_eq!(describe(&run(&s, &[], "r1", "r1")), ["create web-0"]);
        // web-0 exists but is not ready: wait.
        let p0 = pod(0, "r1", "Running", false);
        let plan = run(&s, &[p0], "r1", "r1");
        assert!(plan.groups.is_empty());
        assert_eq!(plan.status.replicas, 1);
        assert_eq!(plan.status.ready_replicas, Some(0));
        // web-0 ready: web-1 next.
        let p0 = pod(0, "r1", "Running", true);
        assert_eq!(describe(&run(&s, &[p0], "r1", "r1")), ["create web-1"]);
    }

    #[test]
    fn parallel_creates_all_at_once() {
        let s = set(3, json!({"podManagementPolicy": "Parallel"}));
        assert_eq!(
            describe(&run(&s, &[], "r1", "r1")),
            ["create web-0,create web-1,create web-2"]
        );
    }

    #[test]
    fn scale_down_removes_the_highest_ordinal_first_once_all_are_healthy() {
        let s = set(1, json!({}));
        let pods = [
            pod(0, "r1", "Running", true),
            pod(1, "r1", "Running", true),
            pod(2, "r1", "Running", true),
        ];
        assert_eq!(describe(&run(&s, &pods, "r1", "r1")), ["delete web-2"]);
        // An unhealthy pod that is not the first unhealthy one blocks.
        let pods = [
            pod(0, "r1", "Running", false),
            pod(1, "r1", "Running", true),
            pod(2, "r1", "Running", false),
        ];
        assert!(run(&s, &pods, "r1", "r1").groups.is_empty());
    }

    #[test]
    fn failed_pods_are_replaced() {
        let s = set(2, json!({}));
        let pods = [pod(0, "r1", "Failed", false), pod(1, "r1", "Running", true)];
        assert_eq!(describe(&run(&s, &pods, "r1", "r1")), ["delete web-0"]);
    }

    #[test]
    fn rolling_update_goes_down_to_the_partition() {
        let s = set(
            3,
            json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}),
        );
        let pods = [
            pod(0, "r1", "Running", true),
            pod(1, "r1", "Running", true),
            pod(2, "r1", "Running", true),
        ];
        let plan = run(&s, &pods, "r1", "r2");
        assert_eq!(describe(&plan), ["delete web-2"]);
        assert_eq!(plan.status.current_replicas, Some(2));
        // web-2 updated and ready: web-1 next; web-0 stays (partition).
        let pods = [
            pod(0, "r1", "Running", true),
            pod(1, "r1", "Running", true),
            pod(2, "r2", "Running", true),
        ];
        assert_eq!(describe(&run(&s, &pods, "r1", "r2")), ["delete web-1"]);
        let pods = [
            pod(0, "r1", "Running", true),
            pod(1, "r2", "Running", true),
            pod(2, "r2", "Running", true),
        ];
        let plan = run(&s, &pods, "r1", "r2");
        assert!(plan.groups.is_empty());
        assert_eq!(plan.status.updated_replicas, Some(2));
        assert_eq!(plan.status.current_revision.as_deref(), Some("r1"));
    }

    #[test]
    fn a_finished_rolling_update_makes_the_update_revision_current() {
        let s = set(2, json!({}));
        let pods = [pod(0, "r2", "Running", true), pod(1, "r2", "Running", true)];
        let plan = run(&s, &pods, "r1", "r2");
        assert_eq!(plan.status.current_revision.as_deref(), Some("r2"));
        assert_eq!(plan.status.current_replicas, Some(2));
        assert_eq!(plan.status.observed_generation, Some(2));
    }

    #[test]
    fn on_delete_leaves_old_pods() {
        let s = set(2, json!({"updateStrategy": {"type": "OnDelete"}}));
        let pods = [pod(0, "r1", "Running", true), pod(1, "r1", "Running", true)];
        assert!(run(&s, &pods, "r1", "r2").groups.is_empty());
    }

    #[test]
    fn max_unavailable_deletes_several() {
        let s = set(
            4,
            json!({"updateStrategy": {"type": "RollingUpdate",
                   "rollingUpdate": {"partition": 0, "maxUnavailable": 2}}}),
        );
        let pods: Vec<_> = (0..4).map(|i| pod(i, "r1", "Running", true)).collect();
        assert_eq!(
            describe(&run(&s, &pods, "r1", "r2")),
            ["delete web-3,delete web-2"]
        );
    }

    #[test]
    fn ordinals_start_where_the_spec_says() {
        let s = set(2, json!({"ordinals": {"start": 3}}));
        assert_eq!(describe(&run(&s, &[], "r1", "r1")), ["create web-3"]);
        // A pod below the start is condemned.
        let pods = [
            pod(0, "r1", "Running", true),
            pod(3, "r1", "Running", true),
            pod(4, "r1", "Running", true),
        ];
        assert_eq!(describe(&run(&s, &pods, "r1", "r1")), ["delete web-0"]);
    }

    #[test]
    fn min_ready_seconds_holds_the_next_pod() {
        let s = set(2, json!({"minReadySeconds": 3600}));
        let mut p0 = (*pod(0, "r1", "Running", true)).clone();
        let now = Timestamp::now().to_string();
        if let Some(c) = p0
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
            .and_then(|c| c.first_mut())
        {
            c.last_transition_time = serde_json::from_value(json!(now)).ok();
        }
        let plan = run(&s, &[Arc::new(p0)], "r1", "r1");
        assert!(plan.groups.is_empty());
        assert_eq!(plan.status.available_replicas, Some(0));
        assert!(plan.requeue.is_some());
    }
}
