//! The Job's policies over finished pods: the pod failure policy (which
//! failures fail the Job, fail an index, are ignored or counted), the
//! success policy of Indexed Jobs, and the exponential back-off between
//! pod failures (10 s doubling, at most 6 min), as Kubernetes'
//! `pod_failure_policy.go`, `success_policy.go` and `backoff_utils.go`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{PodFailurePolicy, SuccessPolicy};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

use super::indexes::Intervals;
use crate::watchqueue::Key;

/// The first back-off after a failure.
pub(crate) const DEFAULT_BACKOFF: Duration = Duration::from_secs(10);
/// The longest back-off.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(360);

/// What a pod failure policy makes of a failed pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Verdict {
    /// The Job's failure message when a FailJob rule matched.
    pub fail_job: Option<String>,
    /// Whether the failure counts toward the back-off limits.
    pub counts: bool,
    /// The action of the rule that matched.
    pub action: Option<String>,
}

/// Matches a failed pod against the rules, first match wins.
pub(crate) fn match_failure_policy(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Verdict {
    let no_match = Verdict {
        counts: true,
        ..Verdict::default()
    };
    let Some(policy) = policy else {
        return no_match;
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.clone().unwrap_or_default();
    for (i, rule) in policy.rules.iter().enumerate() {
        let matched_msg = if let Some(req) = &rule.on_exit_codes {
            let matching = |list: &Option<Vec<ContainerStatus>>| {
                list.iter().flatten().find_map(|cs| {
                    let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
                    if code == 0 {
                        return None;
                    }
                    if req.container_name.as_ref().is_some_and(|n| *n != cs.name) {
                        return None;
                    }
                    let listed = req.values.contains(&code);
                    let hit = match req.operator.as_str() {
                        "In" => listed,
                        "NotIn" => !listed,
                        _ => false,
                    };
                    hit.then(|| (cs.name.clone(), code))
                })
            };
            matching(&status.container_statuses)
                .or_else(|| matching(&status.init_container_statuses))
                .map(|(c, code)| {
                    format!(
                        "Container {c} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {i}",
                        rule.action
                    )
                })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            status.conditions.iter().flatten().find_map(|c| {
                patterns
                    .iter()
                    .any(|p| p.type_ == c.type_ && p.status == c.status)
                    .then(|| {
                        format!(
                            "Pod {ns}/{name} has condition {} matching {} rule at index {i}",
                            c.type_, rule.action
                        )
                    })
            })
        } else {
            None
        };
        let Some(msg) = matched_msg else { continue };
        let action = Some(rule.action.clone());
        match rule.action.as_str() {
            "Ignore" => {
                return Verdict {
                    fail_job: None,
                    counts: false,
                    action,
                }
            }
            "FailIndex" | "Count" => {
                return Verdict {
                    fail_job: None,
                    counts: true,
                    action,
                }
            }
            "FailJob" => {
                return Verdict {
                    fail_job: Some(msg),
                    counts: true,
                    action,
                }
            }
            // An unknown action: the rule is skipped.
            _ => {}
        }
    }
    no_match
}

/// Whether the succeeded indexes meet a rule of the success policy; the
/// message says which.
pub(crate) fn match_success_policy(
    policy: Option<&SuccessPolicy>,
    completions: i64,
    succeeded: &Intervals,
) -> Option<String> {
    let policy = policy?;
    if succeeded.total() == 0 {
        return None;
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let count = rule.succeeded_count.map(i64::from);
        let met = match &rule.succeeded_indexes {
            Some(s) => {
                let required = Intervals::parse(s, completions);
                if required.total() == 0 {
                    false
                } else {
                    let have = succeeded.overlap(&required);
                    match count {
                        None => have == required.total(),
                        Some(c) => have >= c,
                    }
                }
            }
            None => count.is_some_and(|c| succeeded.total() >= c),
        };
        if met {
            return Some(format!("Matched rules at index {i}"));
        }
    }
    None
}

/// When a pod finished: its containers' last finish, else when it was
/// deleted, else when it was created.
pub(crate) fn finished_at(p: &Pod) -> Option<Timestamp> {
    let status = p.status.as_ref();
    let last = status
        .into_iter()
        .flat_map(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
        })
        .filter_map(|cs| cs.state.as_ref()?.terminated.as_ref()?.finished_at.clone())
        .map(|t| t.0)
        .max();
    last.or_else(|| p.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| p.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// A Job's failures since its last success (kept in memory, as
/// Kubernetes' back-off store is).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct BackoffRecord {
    pub failures_after_success: u32,
    pub last_failure: Option<Timestamp>,
}

impl BackoffRecord {
    /// The record after these newly finished pods.
    pub(crate) fn after(&self, new_succeeded: &[&Pod], new_failed: &[&Pod]) -> BackoffRecord {
        let mut failed: Vec<Timestamp> = new_failed.iter().filter_map(|p| finished_at(p)).collect();
        failed.sort();
        let last_success = new_succeeded.iter().filter_map(|p| finished_at(p)).max();
        match last_success {
            None if new_succeeded.is_empty() => {
                if new_failed.is_empty() {
                    return self.clone();
                }
                BackoffRecord {
                    failures_after_success: self.failures_after_success + new_failed.len() as u32,
                    last_failure: failed.last().copied().or(self.last_failure),
                }
            }
            _ => {
                let after: Vec<&Timestamp> = failed
                    .iter()
                    .filter(|t| last_success.is_none_or(|s| **t > s))
                    .collect();
                BackoffRecord {
                    failures_after_success: after.len() as u32,
                    last_failure: after.last().map(|t| **t),
                }
            }
        }
    }

    /// How long to wait before creating pods again.
    pub(crate) fn remaining(&self, now: Timestamp) -> Duration {
        if self.failures_after_success == 0 {
            return Duration::ZERO;
        }
        let Some(last) = self.last_failure else {
            return Duration::ZERO;
        };
        backoff_left(self.failures_after_success, last, now)
    }
}

/// The back-off after `failures` consecutive failures, the last at `last`,
/// still to run at `now`.
pub(crate) fn backoff_left(failures: u32, last: Timestamp, now: Timestamp) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let exp = (failures - 1).min(16);
    let backoff = DEFAULT_BACKOFF.saturating_mul(1u32 << exp).min(MAX_BACKOFF);
    let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or(Duration::ZERO);
    backoff.saturating_sub(elapsed)
}

/// The back-off records of every Job.
#[derive(Default)]
pub(crate) struct BackoffStore(Mutex<HashMap<Key, BackoffRecord>>);

impl BackoffStore {
    pub(crate) fn get(&self, key: &Key) -> BackoffRecord {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
            .unwrap_or_default()
    }
    pub(crate) fn set(&self, key: &Key, r: BackoffRecord) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone(), r);
    }
    pub(crate) fn remove(&self, key: &Key) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed_pod(code: i32, conditions: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "conditions": conditions,
                "containerStatuses": [{"name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code, "finishedAt": "2026-01-01T00:00:00Z"}}}]}
        }))
        .expect("pod")
    }

    fn policy(rules: serde_json::Value) -> PodFailurePolicy {
        serde_json::from_value(json!({ "rules": rules })).expect("policy")
    }

    #[test]
    fn exit_codes_and_conditions_pick_the_first_matching_rule() {
        let p = policy(json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [42]}},
        ]));
        let v = match_failure_policy(Some(&p), &failed_pod(42, json!([])));
        assert_eq!(v.action.as_deref(), Some("FailJob"));
        assert_eq!(
            v.fail_job.as_deref(),
            Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1")
        );
        let v = match_failure_policy(Some(&p), &failed_pod(1, json!([])));
        assert_eq!((v.action.as_deref(), v.counts), (Some("Count"), true));
        let v = match_failure_policy(
            Some(&p),
            &failed_pod(42, json!([{"type": "DisruptionTarget", "status": "True"}])),
        );
        assert_eq!((v.action.as_deref(), v.counts), (Some("Ignore"), false));
        // No policy: counted, no action.
        assert_eq!(
            match_failure_policy(None, &failed_pod(1, json!([]))),
            Verdict {
                fail_job: None,
                counts: true,
                action: None
            }
        );
    }

    #[test]
    fn success_policy_rules() {
        let sp: SuccessPolicy = serde_json::from_value(json!({"rules": [
            {"succeededIndexes": "0-2"},
            {"succeededCount": 4},
        ]}))
        .expect("policy");
        let s = Intervals::parse("0,1", 10);
        assert_eq!(match_success_policy(Some(&sp), 10, &s), None);
        let s = Intervals::parse("0-2", 10);
        assert_eq!(
            match_success_policy(Some(&sp), 10, &s).as_deref(),
            Some("Matched rules at index 0")
        );
        let s = Intervals::parse("5-8", 10);
        assert_eq!(
            match_success_policy(Some(&sp), 10, &s).as_deref(),
            Some("Matched rules at index 1")
        );
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_six_minutes() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        assert_eq!(backoff_left(1, t0, t0), Duration::from_secs(10));
        assert_eq!(backoff_left(3, t0, t0), Duration::from_secs(40));
        assert_eq!(backoff_left(20, t0, t0), Duration::from_secs(360));
        let later = t0 + jiff::SignedDuration::from_secs(15);
        assert_eq!(backoff_left(2, t0, later), Duration::from_secs(5));
        assert_eq!(backoff_left(1, t0, later), Duration::ZERO);
    }

    #[test]
    fn a_success_resets_the_backoff() {
        let f = failed_pod(1, json!([]));
        let r = BackoffRecord::default().after(&[], &[&f, &f]);
        assert_eq!(r.failures_after_success, 2);
        let mut ok = f.clone();
        ok.status
            .as_mut()
            .expect("status")
            .container_statuses
            .as_mut()
            .expect("cs")[0]
            .state
            .as_mut()
            .expect("state")
            .terminated
            .as_mut()
            .expect("t")
            .finished_at = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:01:00Z".parse().expect("time"),
        ));
        let r = r.after(&[&ok], &[]);
        assert_eq!(r, BackoffRecord::default());
    }
}
