//! Unit tests of the Job sync's pure parts.

use super::*;

fn pod(v: serde_json::Value) -> Arc<Pod> {
    Arc::new(serde_json::from_value(v).expect("pod"))
}

fn spec(v: serde_json::Value) -> JobSpec {
    serde_json::from_value(v).expect("spec")
}

#[test]
fn deleted_pods_count_as_failed_unless_only_failed_pods_are_replaced() {
    let p = pod(
        json!({"metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"phase": "Running"}}),
    );
    let plain = spec(json!({"template": {}}));
    assert!(is_pod_failed(&p, &plain));
    let failed_only = spec(json!({"template": {}, "podReplacementPolicy": "Failed"}));
    assert!(!is_pod_failed(&p, &failed_only));
    assert!(is_terminating(&p));
}

#[test]
fn uncounted_pods_move_to_counters_once_their_finalizer_is_gone() {
    let mut st: k8s_openapi::api::batch::v1::JobStatus = serde_json::from_value(json!({
        "succeeded": 2,
        "uncountedTerminatedPods": {"succeeded": ["a", "b"], "failed": ["c"]}
    }))
    .expect("status");
    let with: HashSet<String> = ["b".to_string()].into();
    assert!(clean_uncounted(&mut st, &with));
    assert_eq!(st.succeeded, Some(3));
    assert_eq!(st.failed, Some(1));
    let u = st.uncounted_terminated_pods.as_ref().expect("uncounted");
    assert_eq!(u.succeeded.as_deref(), Some(&["b".to_string()][..]));
    assert_eq!(u.failed.as_deref(), Some(&[][..]));
    // Nothing more to move: no change.
    assert!(!clean_uncounted(&mut st, &with));
}

#[test]
fn indexed_removal_drops_duplicates_and_bad_indexes_first() {
    let s = spec(json!({"template": {}, "completionMode": "Indexed", "completions": 3}));
    let ix = |name: &str, i: &str, ready: bool| {
        pod(json!({"metadata": {"name": name, "uid": name,
            "annotations": {COMPLETION_INDEX: i}},
            "spec": {"nodeName": "n", "containers": []},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}))
    };
    let active = vec![
        ix("a", "0", true),
        ix("b", "0", false),
        ix("c", "7", true),
        ix("d", "1", true),
    ];
    let mut rm: Vec<String> = pods_for_removal(&s, &active, 0)
        .iter()
        .map(|p| p.metadata.name.clone().unwrap_or_default())
        .collect();
    rm.sort();
    assert_eq!(rm, ["b", "c"]);
}

#[test]
fn conditions_are_set_once_and_false_ones_not_added() {
    let now = Timestamp::now();
    let mut c = Vec::new();
    assert!(!ensure_condition(
        &mut c,
        "Suspended",
        "False",
        "JobResumed",
        "Job resumed",
        now
    ));
    assert!(c.is_empty());
    assert!(ensure_condition(
        &mut c,
        "Suspended",
        "True",
        "JobSuspended",
        "Job suspended",
        now
    ));
    assert!(!ensure_condition(
        &mut c,
        "Suspended",
        "True",
        "JobSuspended",
        "Job suspended",
        now
    ));
    assert!(ensure_condition(
        &mut c,
        "Suspended",
        "False",
        "JobResumed",
        "Job resumed",
        now
    ));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].reason.as_deref(), Some("JobResumed"));
}

#[test]
fn the_deadline_counts_from_the_start_and_not_while_suspended() {
    let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
    let st: k8s_openapi::api::batch::v1::JobStatus =
        serde_json::from_value(json!({"startTime": "2026-01-01T00:00:00Z"})).expect("status");
    let s = spec(json!({"template": {}, "activeDeadlineSeconds": 30}));
    let at = |secs| start + jiff::SignedDuration::from_secs(secs);
    assert_eq!(
        deadline_left(&s, Some(&st), at(10)),
        Some(Duration::from_secs(20))
    );
    assert_eq!(deadline_left(&s, Some(&st), at(40)), Some(Duration::ZERO));
    let suspended = spec(json!({"template": {}, "activeDeadlineSeconds": 30, "suspend": true}));
    assert_eq!(deadline_left(&suspended, Some(&st), at(40)), None);
}

#[test]
fn on_failure_restarts_reach_the_backoff_limit() {
    let s = spec(
        json!({"backoffLimit": 2, "template": {"spec": {"restartPolicy": "OnFailure", "containers": []}}}),
    );
    let p = |n: i32| {
        pod(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Running", "containerStatuses": [
            {"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": n}]}}),
        )
    };
    assert!(!past_backoff_limit_on_failure(&s, &[p(1)]));
    assert!(past_backoff_limit_on_failure(&s, &[p(1), p(1)]));
}
