//! Deciding what one pass of a pod's worker does, apart from doing it (as raft-rs
//! hands its `Ready` to the caller's I/O): [`decide`] is a pure function from the
//! pod and what the worker observed (its sandboxes, its containers' statuses, the
//! restart back-off, the clock) to the [`Action`]s to take, in order;
//! [`probe_kills`] picks the containers whose liveness or startup probe failed.
//! The worker (`worker.rs`) performs the actions through the runtime.
//!
//! A plan that creates a sandbox ends there: the containers the next plan starts
//! depend on what the runtime then holds, so the worker observes again and asks
//! again (with the new sandbox ready).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::backoff::Backoff;
use super::probes::{Kind, Standing};
use crate::cri::api;

/// Container statuses of a pod by container name, newest attempt first.
pub(crate) type ByName = BTreeMap<String, Vec<api::ContainerStatus>>;

/// How long a finished, rejected or timed-out pod waits before it is looked at
/// again (a change to the pod wakes it earlier).
pub(crate) const IDLE: Duration = Duration::from_secs(3600);

/// One of the pod's sandboxes as the runtime lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SandboxSeen {
    /// The runtime's sandbox ID.
    pub(crate) id: String,
    /// Whether it is ready (running).
    pub(crate) ready: bool,
    /// Its attempt number (how many sandboxes the pod had before it).
    pub(crate) attempt: u32,
}

impl SandboxSeen {
    /// What the worker needs of a listed sandbox.
    pub(crate) fn of(sb: &api::PodSandbox) -> Self {
        SandboxSeen {
            id: sb.id.clone(),
            ready: sb.state == api::PodSandboxState::SandboxReady as i32,
            attempt: sb.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
        }
    }
}

/// What the worker knows when it decides.
pub(crate) struct Seen<'a> {
    /// The pod's UID (in back-off messages).
    pub(crate) uid: &'a str,
    /// The pod's sandboxes, newest first.
    pub(crate) sandboxes: &'a [SandboxSeen],
    /// The pod's containers in the runtime.
    pub(crate) containers: &'a ByName,
    /// Why the node refuses the pod's sysctls, if it does.
    pub(crate) sysctl_refusal: Option<&'a str>,
    /// Time left before activeDeadlineSeconds; `None` without a deadline.
    pub(crate) deadline_left: Option<Duration>,
    /// Whether the pod's volumes are to be (re)prepared: never prepared yet, or
    /// their configMap/secret contents due for a refresh.
    pub(crate) volumes_stale: bool,
    /// The restart back-off of the pod's containers (by container name).
    pub(crate) restart_backoff: &'a Backoff,
    /// Now, in nanoseconds since the epoch (the back-off's clock).
    pub(crate) now_ns: i64,
    /// How long a running pod waits between passes.
    pub(crate) poll: Duration,
}

/// One thing for the worker to do. Containers are named by their name in the
/// pod's spec (init, regular or ephemeral container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// The pod is being deleted: stop it within its grace period and remove it
    /// from the API. Nothing follows.
    Terminate,
    /// Stop a finished pod's ready sandbox (its IP is released).
    StopSandbox {
        /// The sandbox's ID.
        id: String,
    },
    /// Refuse the pod as admission would (a Warning event, the pod Failed).
    Reject {
        /// The status reason (`SysctlForbidden`).
        reason: &'static str,
        /// Why, as Kubernetes words it.
        message: String,
    },
    /// The pod ran past its activeDeadlineSeconds: stop it and fail it.
    DeadlineExceeded,
    /// Write the pod's status as it stands, without a sandbox (its sandbox is
    /// gone and nothing will run again).
    WriteStatus,
    /// Stop and remove a sandbox that is not ready, with its containers.
    RemoveSandbox {
        /// The sandbox's ID.
        id: String,
    },
    /// Create the pod's sandbox; on success the worker observes again and
    /// decides again.
    CreateSandbox {
        /// Its attempt number (one past the highest seen).
        attempt: u32,
    },
    /// Run the following in this ready sandbox (its addresses are read).
    UseSandbox {
        /// The sandbox's ID.
        id: String,
        /// Its attempt number (its configuration depends on it).
        attempt: u32,
    },
    /// Prepare (or refresh) the pod's volumes.
    PrepareVolumes,
    /// Start an ephemeral container (once: it is never restarted).
    StartEphemeral {
        /// The ephemeral container's name.
        name: String,
        /// The ID of the running container whose process namespace it joins.
        target_id: Option<String>,
    },
    /// Pull (by policy), create and start a container that never ran.
    StartContainer {
        /// The container's name.
        name: String,
        /// Whether it is an init container.
        init: bool,
    },
    /// Start an exited container again (its back-off is over).
    RestartContainer {
        /// The container's name.
        name: String,
        /// Whether it is an init container.
        init: bool,
        /// The exited instance (kept for lastState; older ones are removed).
        exited_id: String,
        /// When it exited (ns since the epoch): the back-off counts from it.
        finished_at: i64,
        /// The new instance's attempt number.
        attempt: u32,
    },
    /// Mark a container waiting (with an event when the reason is new).
    Waiting {
        /// The container's name.
        name: String,
        /// The waiting reason (`CrashLoopBackOff`, `CreateContainerConfigError`).
        reason: String,
        /// The waiting message.
        message: String,
    },
    /// Forget a container's waiting reason: it runs, or will not run again.
    ClearWaiting {
        /// The container's name.
        name: String,
    },
    /// Observe the containers again, run and act on their probes, write the
    /// pod's status, and stop the sandbox if the pod has finished.
    SyncStatus,
    /// Look again after this long (or when the pod or a probe changes).
    Wait(Duration),
}

/// The restart policy, with Kubernetes' default.
pub(crate) fn restart_policy(spec: &PodSpec) -> &str {
    spec.restart_policy.as_deref().unwrap_or("Always")
}

pub(crate) fn attempt_of(c: &api::ContainerStatus) -> u32 {
    c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0)
}

pub(crate) fn is_exited(c: &api::ContainerStatus) -> bool {
    c.state == api::ContainerState::ContainerExited as i32
        || c.state == api::ContainerState::ContainerUnknown as i32
}

pub(crate) fn is_running(c: &api::ContainerStatus) -> bool {
    c.state == api::ContainerState::ContainerRunning as i32
}

fn latest<'a>(seen: &'a Seen<'_>, name: &str) -> Option<&'a api::ContainerStatus> {
    seen.containers.get(name).and_then(|v| v.first())
}

/// The actions of one pass over `pod`, in order; the last one is
/// [`Action::Wait`], [`Action::Terminate`] or [`Action::CreateSandbox`].
pub(crate) fn decide(pod: &Pod, seen: &Seen<'_>) -> Vec<Action> {
    if pod.metadata.deletion_timestamp.is_some() {
        return vec![Action::Terminate];
    }
    let Some(spec) = pod.spec.as_ref() else {
        return vec![Action::Wait(seen.poll)];
    };
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        // Finished pods keep no sandbox (its IP is released); nothing restarts.
        let mut actions: Vec<Action> = seen
            .sandboxes
            .iter()
            .filter(|s| s.ready)
            .map(|s| Action::StopSandbox { id: s.id.clone() })
            .collect();
        actions.push(Action::Wait(IDLE));
        return actions;
    }
    if let Some(msg) = seen.sysctl_refusal {
        if seen.sandboxes.is_empty() {
            return vec![
                Action::Reject {
                    reason: super::sysctls::FORBIDDEN_REASON,
                    message: msg.to_string(),
                },
                Action::Wait(IDLE),
            ];
        }
    }
    if seen.deadline_left == Some(Duration::ZERO) {
        return vec![Action::DeadlineExceeded, Action::Wait(IDLE)];
    }
    match seen.sandboxes.iter().find(|s| s.ready) {
        None => sandbox_actions(spec, seen),
        Some(sb) => {
            let mut actions = vec![Action::UseSandbox {
                id: sb.id.clone(),
                attempt: sb.attempt,
            }];
            if seen.volumes_stale {
                actions.push(Action::PrepareVolumes);
            }
            let wake = container_actions(pod, spec, seen, &mut actions);
            actions.push(Action::SyncStatus);
            let wake = seen.deadline_left.map_or(wake, |left| wake.min(left));
            actions.push(Action::Wait(wake));
            actions
        }
    }
}

/// No sandbox is ready: a new one, unless the containers ran and are not to run
/// again.
fn sandbox_actions(spec: &PodSpec, seen: &Seen<'_>) -> Vec<Action> {
    let ran_before = !seen.containers.is_empty();
    if ran_before && restart_policy(spec) == "Never" {
        // The sandbox died after the containers ran: they are not rerun.
        return vec![Action::WriteStatus, Action::Wait(seen.poll)];
    }
    let mut actions: Vec<Action> = seen
        .sandboxes
        .iter()
        .map(|s| Action::RemoveSandbox { id: s.id.clone() })
        .collect();
    let attempt = seen
        .sandboxes
        .iter()
        .map(|s| s.attempt + 1)
        .max()
        .unwrap_or(0);
    actions.push(Action::CreateSandbox { attempt });
    actions
}

/// Ephemeral containers, then init containers in order, then (once they all
/// succeeded) the containers; returns when to look again (the poll interval, or
/// sooner when a back-off ends).
fn container_actions(
    pod: &Pod,
    spec: &PodSpec,
    seen: &Seen<'_>,
    actions: &mut Vec<Action>,
) -> Duration {
    let mut wake = seen.poll;
    // Ephemeral containers, even before the init containers are done.
    for (c, target) in super::ephemeral::of(pod) {
        if seen.containers.contains_key(&c.name) {
            continue;
        }
        let target_id = match &target {
            None => None,
            Some(t) => match latest(seen, t).filter(|l| is_running(l)) {
                Some(l) => Some(l.id.clone()),
                None => {
                    actions.push(Action::Waiting {
                        name: c.name.clone(),
                        reason: "CreateContainerConfigError".into(),
                        message: format!("target container {t:?} is not running"),
                    });
                    continue;
                }
            },
        };
        actions.push(Action::StartEphemeral {
            name: c.name.clone(),
            target_id,
        });
    }
    let policy = restart_policy(spec);
    // Init containers, in order: the first that has not succeeded holds the rest.
    for ic in spec.init_containers.iter().flatten() {
        match latest(seen, &ic.name) {
            None => {
                actions.push(Action::StartContainer {
                    name: ic.name.clone(),
                    init: true,
                });
                return wake;
            }
            Some(c) if is_exited(c) && c.exit_code == 0 => continue,
            Some(c) if is_exited(c) => {
                if policy != "Never" {
                    let (action, w) = restart(pod, seen, ic, c, true);
                    actions.push(action);
                    wake = w.map_or(wake, |w| wake.min(w));
                }
                return wake;
            }
            Some(_) => return wake,
        }
    }
    for c in &spec.containers {
        match latest(seen, &c.name) {
            None => actions.push(Action::StartContainer {
                name: c.name.clone(),
                init: false,
            }),
            Some(cur) if is_exited(cur) => {
                let again = match policy {
                    "Always" => true,
                    "OnFailure" => cur.exit_code != 0,
                    _ => false,
                };
                if again {
                    let (action, w) = restart(pod, seen, c, cur, false);
                    actions.push(action);
                    wake = w.map_or(wake, |w| wake.min(w));
                } else {
                    actions.push(Action::ClearWaiting {
                        name: c.name.clone(),
                    });
                }
            }
            Some(_) => actions.push(Action::ClearWaiting {
                name: c.name.clone(),
            }),
        }
    }
    wake
}

/// An exited container that is to run again: restarted, or waiting in
/// CrashLoopBackOff until its back-off ends (returned).
fn restart(
    pod: &Pod,
    seen: &Seen<'_>,
    c: &Container,
    exited: &api::ContainerStatus,
    init: bool,
) -> (Action, Option<Duration>) {
    let now = seen.now_ns;
    if let Some((until, backoff)) =
        seen.restart_backoff
            .in_backoff_since(&c.name, exited.finished_at, now)
    {
        let message = format!(
            "back-off {}s restarting failed container={} pod={}_{}({})",
            backoff.as_secs(),
            c.name,
            pod.metadata.name.as_deref().unwrap_or(""),
            pod.metadata.namespace.as_deref().unwrap_or(""),
            seen.uid
        );
        let wait = Duration::from_nanos(u64::try_from(until.saturating_sub(now)).unwrap_or(0));
        let action = Action::Waiting {
            name: c.name.clone(),
            reason: "CrashLoopBackOff".into(),
            message,
        };
        return (action, Some(wait));
    }
    let action = Action::RestartContainer {
        name: c.name.clone(),
        init,
        exited_id: exited.id.clone(),
        finished_at: exited.finished_at,
        attempt: attempt_of(exited) + 1,
    };
    (action, None)
}

/// A running container to kill because its startup or liveness probe failed
/// (the restart policy then applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProbeKill {
    /// The container's name.
    pub(crate) name: String,
    /// The running instance's ID.
    pub(crate) id: String,
    /// Which probe failed (startup or liveness).
    pub(crate) kind: Kind,
    /// The failed probe's message.
    pub(crate) message: String,
}

/// The running containers of `spec` (by their instance IDs).
pub(crate) fn running<'a>(spec: &'a PodSpec, by_name: &ByName) -> Vec<(String, &'a Container)> {
    spec.containers
        .iter()
        .filter_map(|c| {
            let latest = by_name.get(&c.name).and_then(|v| v.first())?;
            is_running(latest).then(|| (latest.id.clone(), c))
        })
        .collect()
}

/// The running containers whose startup or liveness probe has failed, given each
/// probe's standing (`standing(container ID, kind)`).
pub(crate) fn probe_kills(
    spec: &PodSpec,
    by_name: &ByName,
    standing: impl Fn(&str, Kind) -> Option<Standing>,
) -> Vec<ProbeKill> {
    running(spec, by_name)
        .into_iter()
        .filter_map(|(id, c)| {
            let (kind, s) = [Kind::Startup, Kind::Liveness].into_iter().find_map(|k| {
                standing(&id, k)
                    .filter(|s| s.ok == Some(false))
                    .map(|s| (k, s))
            })?;
            Some(ProbeKill {
                name: c.name.clone(),
                id,
                kind,
                message: s.message,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const POLL: Duration = Duration::from_secs(10);
    const NOW: i64 = 1_000_000_000_000;
    const SEC: i64 = 1_000_000_000;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn containers(names: &[&str]) -> serde_json::Value {
        names
            .iter()
            .map(|n| serde_json::json!({"name": n, "image": "busybox"}))
            .collect()
    }

    fn two(policy: &str) -> Pod {
        pod(serde_json::json!({"restartPolicy": policy, "containers": containers(&["a", "b"])}))
    }

    fn with_init(policy: &str) -> Pod {
        pod(serde_json::json!({
            "restartPolicy": policy,
            "initContainers": containers(&["i1", "i2"]),
            "containers": containers(&["a"]),
        }))
    }

    enum St {
        Running,
        Created,
        Exited(i32),
    }

    fn status(id: &str, attempt: u32, st: St) -> api::ContainerStatus {
        let (state, exit_code) = match st {
            St::Running => (api::ContainerState::ContainerRunning, 0),
            St::Created => (api::ContainerState::ContainerCreated, 0),
            St::Exited(code) => (api::ContainerState::ContainerExited, code),
        };
        api::ContainerStatus {
            id: id.into(),
            metadata: Some(api::ContainerMetadata {
                name: String::new(),
                attempt,
            }),
            state: state as i32,
            exit_code,
            finished_at: NOW - 5 * SEC,
            ..Default::default()
        }
    }

    fn by_name(list: Vec<(&str, St)>) -> ByName {
        list.into_iter()
            .map(|(n, st)| (n.to_string(), vec![status(&format!("{n}-id"), 0, st)]))
            .collect()
    }

    fn ready() -> Vec<SandboxSeen> {
        vec![SandboxSeen {
            id: "sb1".into(),
            ready: true,
            attempt: 0,
        }]
    }

    /// The actions for `pod` with these sandboxes and containers, a fresh back-off
    /// and volumes already prepared.
    fn plan(pod: &Pod, sandboxes: &[SandboxSeen], containers: &ByName) -> Vec<Action> {
        plan_with(pod, sandboxes, containers, &backoff(), None)
    }

    fn plan_with(
        pod: &Pod,
        sandboxes: &[SandboxSeen],
        containers: &ByName,
        restart_backoff: &Backoff,
        deadline_left: Option<Duration>,
    ) -> Vec<Action> {
        decide(
            pod,
            &Seen {
                uid: "u1",
                sandboxes,
                containers,
                sysctl_refusal: None,
                deadline_left,
                volumes_stale: false,
                restart_backoff,
                now_ns: NOW,
                poll: POLL,
            },
        )
    }

    fn backoff() -> Backoff {
        Backoff::new(Duration::from_secs(10), Duration::from_secs(300))
    }

    fn start(name: &str, init: bool) -> Action {
        Action::StartContainer {
            name: name.into(),
            init,
        }
    }

    fn restart_of(name: &str, init: bool) -> Action {
        Action::RestartContainer {
            name: name.into(),
            init,
            exited_id: format!("{name}-id"),
            finished_at: NOW - 5 * SEC,
            attempt: 1,
        }
    }

    fn clear(name: &str) -> Action {
        Action::ClearWaiting { name: name.into() }
    }

    fn in_sandbox(mut middle: Vec<Action>, wait: Duration) -> Vec<Action> {
        let mut v = vec![Action::UseSandbox {
            id: "sb1".into(),
            attempt: 0,
        }];
        v.append(&mut middle);
        v.push(Action::SyncStatus);
        v.push(Action::Wait(wait));
        v
    }

    #[test]
    fn containers_by_restart_policy() {
        use St::*;
        // (policy, a's state, b's state, what is done to a and b)
        let cases: Vec<(&str, St, St, Vec<Action>)> = vec![
            ("Always", Running, Running, vec![clear("a"), clear("b")]),
            (
                "Always",
                Exited(0),
                Exited(1),
                vec![restart_of("a", false), restart_of("b", false)],
            ),
            (
                "OnFailure",
                Exited(0),
                Exited(1),
                vec![clear("a"), restart_of("b", false)],
            ),
            ("Never", Exited(0), Exited(1), vec![clear("a"), clear("b")]),
            ("Never", Running, Created, vec![clear("a"), clear("b")]),
        ];
        for (policy, a, b, want) in cases {
            let have = plan(&two(policy), &ready(), &by_name(vec![("a", a), ("b", b)]));
            assert_eq!(have, in_sandbox(want, POLL), "{policy}");
        }
        // None ran yet: both start, whatever the policy.
        for policy in ["Always", "OnFailure", "Never"] {
            let have = plan(&two(policy), &ready(), &ByName::new());
            assert_eq!(
                have,
                in_sandbox(vec![start("a", false), start("b", false)], POLL)
            );
        }
    }

    /// (restart policy, init containers seen, what is done)
    type InitCase = (&'static str, Vec<(&'static str, St)>, Vec<Action>);

    #[test]
    fn init_containers_run_in_order() {
        use St::*;
        let cases: Vec<InitCase> = vec![
            ("Always", vec![], vec![start("i1", true)]),
            ("Always", vec![("i1", Running)], vec![]),
            ("Always", vec![("i1", Exited(0))], vec![start("i2", true)]),
            (
                "Always",
                vec![("i1", Exited(0)), ("i2", Exited(0))],
                vec![start("a", false)],
            ),
            // A failed init container runs again (policy Always or OnFailure)...
            (
                "Always",
                vec![("i1", Exited(1))],
                vec![restart_of("i1", true)],
            ),
            (
                "OnFailure",
                vec![("i1", Exited(0)), ("i2", Exited(3))],
                vec![restart_of("i2", true)],
            ),
            // ... and with Never, nothing more runs (the pod fails).
            ("Never", vec![("i1", Exited(1))], vec![]),
        ];
        for (policy, seen, want) in cases {
            let have = plan(&with_init(policy), &ready(), &by_name(seen));
            assert_eq!(have, in_sandbox(want.clone(), POLL), "{policy} {want:?}");
        }
    }

    #[test]
    fn crash_loop_back_off_waits_until_it_ends() {
        let mut b = backoff();
        // The container failed before (back-off now 10 s), and exited 5 s ago.
        b.next("a", NOW - 5 * SEC);
        let seen = by_name(vec![("a", St::Exited(1)), ("b", St::Running)]);
        let have = plan_with(&two("Always"), &ready(), &seen, &b, None);
        let want = in_sandbox(
            vec![
                Action::Waiting {
                    name: "a".into(),
                    reason: "CrashLoopBackOff".into(),
                    message: "back-off 10s restarting failed container=a pod=p_ns(u1)".into(),
                },
                clear("b"),
            ],
            Duration::from_secs(5),
        );
        assert_eq!(have, want);
        // The deadline comes first when it is sooner.
        let have = plan_with(
            &two("Always"),
            &ready(),
            &seen,
            &b,
            Some(Duration::from_secs(2)),
        );
        assert_eq!(have.last(), Some(&Action::Wait(Duration::from_secs(2))));
        // Past the back-off, it restarts.
        let mut seen = seen;
        seen.get_mut("a").unwrap()[0].finished_at = NOW - 20 * SEC;
        let have = plan_with(&two("Always"), &ready(), &seen, &b, None);
        assert_eq!(
            have[1],
            Action::RestartContainer {
                name: "a".into(),
                init: false,
                exited_id: "a-id".into(),
                finished_at: NOW - 20 * SEC,
                attempt: 1,
            }
        );
    }

    #[test]
    fn sandboxes() {
        let dead = |id: &str, attempt| SandboxSeen {
            id: id.into(),
            ready: false,
            attempt,
        };
        // None yet: the first.
        assert_eq!(
            plan(&two("Always"), &[], &ByName::new()),
            vec![Action::CreateSandbox { attempt: 0 }]
        );
        // Dead ones are removed, the new one counts past them.
        assert_eq!(
            plan(
                &two("Always"),
                &[dead("s2", 1), dead("s1", 0)],
                &ByName::new()
            ),
            vec![
                Action::RemoveSandbox { id: "s2".into() },
                Action::RemoveSandbox { id: "s1".into() },
                Action::CreateSandbox { attempt: 2 },
            ]
        );
        // With Never, containers that ran are not run again in a new sandbox.
        let ran = by_name(vec![("a", St::Exited(0))]);
        assert_eq!(
            plan(&two("Never"), &[dead("s1", 0)], &ran),
            vec![Action::WriteStatus, Action::Wait(POLL)]
        );
        assert_eq!(
            plan(&two("OnFailure"), &[dead("s1", 0)], &ran),
            vec![
                Action::RemoveSandbox { id: "s1".into() },
                Action::CreateSandbox { attempt: 1 },
            ]
        );
    }

    #[test]
    fn deletion_finish_rejection_and_deadline() {
        let mut deleted = two("Always");
        deleted.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        assert_eq!(
            plan(&deleted, &ready(), &ByName::new()),
            vec![Action::Terminate]
        );

        let mut done = two("Never");
        done.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        let mut sandboxes = ready();
        sandboxes.push(SandboxSeen {
            id: "old".into(),
            ready: false,
            attempt: 0,
        });
        assert_eq!(
            plan(&done, &sandboxes, &ByName::new()),
            vec![Action::StopSandbox { id: "sb1".into() }, Action::Wait(IDLE)]
        );

        let refused = |sandboxes: &[SandboxSeen]| {
            decide(
                &two("Always"),
                &Seen {
                    uid: "u1",
                    sandboxes,
                    containers: &ByName::new(),
                    sysctl_refusal: Some("forbidden sysctl: x"),
                    deadline_left: None,
                    volumes_stale: true,
                    restart_backoff: &backoff(),
                    now_ns: NOW,
                    poll: POLL,
                },
            )
        };
        assert_eq!(
            refused(&[]),
            vec![
                Action::Reject {
                    reason: "SysctlForbidden",
                    message: "forbidden sysctl: x".into()
                },
                Action::Wait(IDLE)
            ]
        );
        // A pod that already has a sandbox is not rejected after the fact.
        assert_eq!(refused(&ready())[1], Action::PrepareVolumes);

        let late = plan_with(
            &two("Always"),
            &ready(),
            &ByName::new(),
            &backoff(),
            Some(Duration::ZERO),
        );
        assert_eq!(late, vec![Action::DeadlineExceeded, Action::Wait(IDLE)]);
    }

    #[test]
    fn ephemeral_containers_start_once_beside_their_target() {
        let mut p = with_init("Always");
        p.spec.as_mut().unwrap().ephemeral_containers = Some(
            serde_json::from_value(serde_json::json!([
                {"name": "dbg", "image": "busybox", "targetContainerName": "a"},
                {"name": "free", "image": "busybox"},
            ]))
            .unwrap(),
        );
        let have = plan(&p, &ready(), &by_name(vec![("i1", St::Running)]));
        let want = in_sandbox(
            vec![
                Action::Waiting {
                    name: "dbg".into(),
                    reason: "CreateContainerConfigError".into(),
                    message: "target container \"a\" is not running".into(),
                },
                Action::StartEphemeral {
                    name: "free".into(),
                    target_id: None,
                },
            ],
            POLL,
        );
        assert_eq!(have, want);
        let seen = by_name(vec![
            ("i1", St::Exited(0)),
            ("i2", St::Exited(0)),
            ("a", St::Running),
            ("free", St::Exited(0)),
        ]);
        let have = plan(&p, &ready(), &seen);
        let want = in_sandbox(
            vec![
                Action::StartEphemeral {
                    name: "dbg".into(),
                    target_id: Some("a-id".into()),
                },
                clear("a"),
            ],
            POLL,
        );
        assert_eq!(have, want);
    }

    #[test]
    fn failed_startup_or_liveness_probes_kill() {
        let p = two("Always");
        let seen = by_name(vec![("a", St::Running), ("b", St::Running)]);
        let results: HashMap<(&str, Kind), Option<bool>> = HashMap::from([
            (("a-id", Kind::Readiness), Some(false)),
            (("b-id", Kind::Startup), Some(true)),
            (("b-id", Kind::Liveness), Some(false)),
        ]);
        let standing = |id: &str, kind| {
            results.get(&(id, kind)).map(|ok| Standing {
                ok: *ok,
                message: format!("{kind:?} said no"),
            })
        };
        let kills = probe_kills(p.spec.as_ref().unwrap(), &seen, standing);
        assert_eq!(
            kills,
            vec![ProbeKill {
                name: "b".into(),
                id: "b-id".into(),
                kind: Kind::Liveness,
                message: "Liveness said no".into(),
            }]
        );
        // Only running containers are probed.
        let exited = by_name(vec![("a", St::Exited(1)), ("b", St::Exited(1))]);
        assert!(probe_kills(p.spec.as_ref().unwrap(), &exited, standing).is_empty());
    }
}
