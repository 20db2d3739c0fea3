//! Pod status from what the runtime reports: container statuses (state, last state,
//! restart count, ready, started, image and container IDs), the pod phase (the
//! kubelet's rules), and the conditions PodReadyToStartContainers, PodScheduled,
//! Initialized, ContainersReady and Ready.

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Pod, PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::cri::api;

/// What the worker knows about one container of the spec.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// The newest runtime container for this name.
    pub latest: Option<api::ContainerStatus>,
    /// The one before it, if kept (for lastState).
    pub previous: Option<api::ContainerStatus>,
    /// Why it is waiting (image pull, back-off, config error), overriding the runtime.
    pub waiting: Option<(String, String)>,
    /// Running and past its startup probe.
    pub started: bool,
    /// Started and its readiness probe (if any) passing.
    pub ready: bool,
}

pub(crate) fn time_from_ns(ns: i64) -> Option<Time> {
    if ns <= 0 {
        return None;
    }
    jiff::Timestamp::from_nanosecond(ns as i128).ok().map(Time)
}

fn is_running(c: &api::ContainerStatus) -> bool {
    c.state == api::ContainerState::ContainerRunning as i32
}

fn is_exited(c: &api::ContainerStatus) -> bool {
    c.state == api::ContainerState::ContainerExited as i32
        || c.state == api::ContainerState::ContainerUnknown as i32
}

fn terminated(
    spec: &Container,
    c: &api::ContainerStatus,
    runtime: &str,
) -> ContainerStateTerminated {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: c.exit_code,
        reason: Some(reason),
        message: super::termination::message(spec, c),
        started_at: time_from_ns(c.started_at),
        finished_at: time_from_ns(c.finished_at),
        container_id: Some(format!("{runtime}://{}", c.id)),
        signal: None,
    }
}

/// One container's API status.
pub(crate) fn container_status(
    spec: &Container,
    obs: &Observed,
    runtime: &str,
    pending_reason: &str,
) -> ContainerStatus {
    let waiting = |reason: &str, message: Option<String>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..Default::default()
    };
    let latest = obs.latest.as_ref();
    let last_state = |c: Option<&api::ContainerStatus>| {
        c.filter(|c| is_exited(c)).map(|c| ContainerState {
            terminated: Some(terminated(spec, c, runtime)),
            ..Default::default()
        })
    };
    let (state, last) = match (&obs.waiting, latest) {
        (Some((reason, msg)), l) => {
            let last = last_state(l).or_else(|| last_state(obs.previous.as_ref()));
            (
                waiting(reason, (!msg.is_empty()).then(|| msg.clone())),
                last,
            )
        }
        (None, Some(c)) if is_running(c) => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: time_from_ns(c.started_at),
                }),
                ..Default::default()
            },
            last_state(obs.previous.as_ref()),
        ),
        (None, Some(c)) if is_exited(c) => (
            ContainerState {
                terminated: Some(terminated(spec, c, runtime)),
                ..Default::default()
            },
            last_state(obs.previous.as_ref()),
        ),
        (None, _) => (
            waiting(pending_reason, None),
            last_state(obs.previous.as_ref()),
        ),
    };
    let running = latest.is_some_and(is_running);
    ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: latest.map(|c| c.image_ref.clone()).unwrap_or_default(),
        container_id: latest.map(|c| format!("{runtime}://{}", c.id)),
        ready: running && obs.ready,
        started: Some(running && obs.started),
        restart_count: latest
            .and_then(|c| c.metadata.as_ref())
            .map(|m| m.attempt as i32)
            .unwrap_or(0),
        state: Some(state),
        last_state: last.or(Some(ContainerState::default())),
        ..Default::default()
    }
}

/// The pod phase by the kubelet's rules.
pub(crate) fn phase(
    restart_policy: &str,
    init_failed: bool,
    init_done: bool,
    statuses: &[ContainerStatus],
) -> &'static str {
    if init_failed {
        return "Failed";
    }
    if !init_done {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        let st = s.state.clone().unwrap_or_default();
        if st.running.is_some() {
            running += 1;
        } else if let Some(t) = &st.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if st.waiting.is_some() {
            if s.last_state
                .as_ref()
                .and_then(|l| l.terminated.as_ref())
                .is_some()
            {
                stopped += 1;
            } else {
                waiting += 1;
            }
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        match restart_policy {
            "Always" => "Running",
            "OnFailure" if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ if stopped == succeeded => "Succeeded",
            _ => "Failed",
        }
    } else {
        "Pending"
    }
}

fn condition(
    pod: &Pod,
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let prev = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let transition = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone().or(Some(now.clone())),
        _ => Some(now.clone()),
    };
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: transition,
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The pod's conditions.
pub(crate) fn conditions(
    pod: &Pod,
    sandbox_ready: bool,
    init_statuses: &[ContainerStatus],
    statuses: &[ContainerStatus],
    phase: &str,
) -> Vec<PodCondition> {
    let now = Time(jiff::Timestamp::now());
    let terminal = phase == "Succeeded" || phase == "Failed";
    let incomplete_init: Vec<&str> = init_statuses
        .iter()
        .filter(|s| {
            s.state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .is_none_or(|t| t.exit_code != 0)
        })
        .map(|s| s.name.as_str())
        .collect();
    let initialized = incomplete_init.is_empty() || phase == "Succeeded";
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let ready = unready.is_empty() && !terminal;
    let (ready_reason, ready_msg) = if ready {
        (None, None)
    } else if terminal {
        (Some("PodCompleted"), None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    vec![
        condition(
            pod,
            "PodReadyToStartContainers",
            sandbox_ready,
            None,
            None,
            &now,
        ),
        condition(
            pod,
            "Initialized",
            initialized,
            (!initialized).then_some("ContainersNotInitialized"),
            (!initialized).then(|| {
                format!(
                    "containers with incomplete status: [{}]",
                    incomplete_init.join(" ")
                )
            }),
            &now,
        ),
        condition(pod, "Ready", ready, ready_reason, ready_msg.clone(), &now),
        condition(pod, "ContainersReady", ready, ready_reason, ready_msg, &now),
        condition(pod, "PodScheduled", true, None, None, &now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cri(state: api::ContainerState, code: i32, attempt: u32) -> api::ContainerStatus {
        api::ContainerStatus {
            id: format!("id{attempt}"),
            metadata: Some(api::ContainerMetadata {
                name: "c".into(),
                attempt,
            }),
            state: state as i32,
            exit_code: code,
            started_at: 1_700_000_000_000_000_000,
            finished_at: 1_700_000_001_000_000_000,
            ..Default::default()
        }
    }

    fn spec() -> Container {
        Container {
            name: "c".into(),
            image: Some("busybox".into()),
            ..Default::default()
        }
    }

    #[test]
    fn running_container() {
        let obs = Observed {
            latest: Some(cri(api::ContainerState::ContainerRunning, 0, 0)),
            ready: true,
            ..Default::default()
        };
        let s = container_status(&spec(), &obs, "containerd", "ContainerCreating");
        assert!(s.state.as_ref().unwrap().running.is_some());
        assert!(s.ready);
        assert_eq!(s.container_id.as_deref(), Some("containerd://id0"));
        assert_eq!(phase("Always", false, true, &[s]), "Running");
    }

    #[test]
    fn crash_loop_keeps_last_state_and_counts_restarts() {
        let obs = Observed {
            latest: Some(cri(api::ContainerState::ContainerExited, 1, 3)),
            waiting: Some(("CrashLoopBackOff".into(), "back-off 40s".into())),
            ..Default::default()
        };
        let s = container_status(&spec(), &obs, "containerd", "ContainerCreating");
        assert_eq!(s.restart_count, 3);
        assert_eq!(
            s.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        let last = s.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(last.exit_code, 1);
        assert_eq!(last.reason.as_deref(), Some("Error"));
        // A crash-looping container counts as stopped: the pod stays Running.
        assert_eq!(phase("Always", false, true, &[s]), "Running");
    }

    #[test]
    fn phases_for_finished_containers() {
        let ok = container_status(
            &spec(),
            &Observed {
                latest: Some(cri(api::ContainerState::ContainerExited, 0, 0)),
                ..Default::default()
            },
            "c",
            "x",
        );
        let bad = container_status(
            &spec(),
            &Observed {
                latest: Some(cri(api::ContainerState::ContainerExited, 2, 0)),
                ..Default::default()
            },
            "c",
            "x",
        );
        assert_eq!(
            phase("Never", false, true, std::slice::from_ref(&ok)),
            "Succeeded"
        );
        assert_eq!(
            phase("Never", false, true, &[ok.clone(), bad.clone()]),
            "Failed"
        );
        assert_eq!(
            phase("OnFailure", false, true, std::slice::from_ref(&bad)),
            "Running"
        );
        assert_eq!(phase("Never", false, false, &[]), "Pending");
        assert_eq!(phase("Never", true, false, &[]), "Failed");
        let none = container_status(&spec(), &Observed::default(), "c", "ContainerCreating");
        assert_eq!(phase("Always", false, true, &[none]), "Pending");
    }

    #[test]
    fn ready_condition_names_unready_containers() {
        let pod = Pod::default();
        let s = container_status(&spec(), &Observed::default(), "c", "ContainerCreating");
        let conds = conditions(&pod, true, &[], &[s], "Pending");
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [c]")
        );
        assert_eq!(
            conds
                .iter()
                .find(|c| c.type_ == "Initialized")
                .unwrap()
                .status,
            "True"
        );
    }
}
