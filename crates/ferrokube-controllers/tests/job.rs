//! The Job controller against a real API server, the test acting as the
//! kubelet (it ends pods with the exit codes it chooses).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{obj, Env, WAIT};
use ferrokube_client::testing::wait::wait_for;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

const FINALIZER: &str = "batch.kubernetes.io/job-tracking";

fn job(name: &str, spec: Value) -> Job {
    let mut s = json!({
        "selector": {"matchLabels": {"job": name}},
        "manualSelector": true,
        "template": {
            "metadata": {"labels": {"job": name}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
        }
    });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    obj(json!({"metadata": {"name": name}, "spec": s}))
}

async fn create(env: &Env, j: Job) -> Job {
    env.api::<Job>()
        .create(&PostParams::default(), &j)
        .await
        .expect("creating the job")
}

async fn get(env: &Env, name: &str) -> Job {
    env.api::<Job>().get(name).await.expect("reading the job")
}

fn has_condition(j: &Job, type_: &str) -> Option<(String, String)> {
    j.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

fn running(p: &Pod) -> bool {
    let phase = p
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    phase != "Succeeded" && phase != "Failed" && p.metadata.deletion_timestamp.is_none()
}

/// The fake kubelet ends `pod` with `code` (0: Succeeded, else Failed).
async fn finish(env: &Env, p: &Pod, code: i32) {
    let now = jiff::Timestamp::now().to_string();
    let status = json!({"status": {
        "phase": if code == 0 {"Succeeded"} else {"Failed"},
        "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "startedAt": now, "finishedAt": now,
                "reason": if code == 0 {"Completed"} else {"Error"}}}}],
    }});
    let name = p.metadata.name.clone().unwrap_or_default();
    match env
        .api::<Pod>()
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => panic!("finishing {name}: {e}"),
    }
}

async fn wait_condition(
    env: &Env,
    name: &str,
    type_: &str,
    within: Duration,
) -> (Job, String, String) {
    let start = Instant::now();
    loop {
        let j = get(env, name).await;
        if let Some((r, m)) = has_condition(&j, type_) {
            return (j, r, m);
        }
        assert!(
            start.elapsed() < within,
            "no {type_} condition on {name}: {:?}",
            j.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn events(env: &Env, name: &str) -> Vec<(String, String)> {
    env.api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.name.as_deref() == Some(name)
                && e.involved_object.kind.as_deref() == Some("Job")
        })
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_job_runs_each_index_once_with_bounded_parallelism() {
    let env = Env::start("job-indexed").await;
    create(
        &env,
        job(
            "idx",
            json!({"completions": 5, "parallelism": 2, "completionMode": "Indexed"}),
        ),
    )
    .await;
    let mut done: BTreeMap<String, usize> = BTreeMap::new();
    let start = Instant::now();
    loop {
        let pods = env.pods("job=idx").await;
        let live: Vec<&Pod> = pods.iter().filter(|p| running(p)).collect();
        assert!(live.len() <= 2, "{} pods running at once", live.len());
        for p in &live {
            let a = p.metadata.annotations.clone().unwrap_or_default();
            let ix = a
                .get("batch.kubernetes.io/job-completion-index")
                .cloned()
                .expect("index annotation");
            let labels = p.metadata.labels.clone().unwrap_or_default();
            assert_eq!(
                labels.get("batch.kubernetes.io/job-completion-index"),
                Some(&ix)
            );
            let spec = p.spec.as_ref().expect("spec");
            assert_eq!(spec.hostname.as_deref(), Some(format!("idx-{ix}").as_str()));
            let env_var = spec.containers[0]
                .env
                .iter()
                .flatten()
                .find(|e| e.name == "JOB_COMPLETION_INDEX")
                .expect("env");
            assert_eq!(
                env_var
                    .value_from
                    .as_ref()
                    .and_then(|v| v.field_ref.as_ref())
                    .map(|f| f.field_path.as_str()),
                Some("metadata.labels['batch.kubernetes.io/job-completion-index']")
            );
            assert!(p.metadata.generate_name.as_deref() == Some(format!("idx-{ix}-").as_str()));
            *done.entry(ix).or_default() += 1;
            finish(&env, p, 0).await;
        }
        if has_condition(&get(&env, "idx").await, "Complete").is_some() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not complete: {:?}",
            get(&env, "idx").await.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        done.keys().cloned().collect::<Vec<_>>(),
        ["0", "1", "2", "3", "4"]
    );
    assert!(done.values().all(|n| *n == 1), "{done:?}");
    let j = get(&env, "idx").await;
    let st = j.status.clone().expect("status");
    assert_eq!(st.succeeded, Some(5));
    assert_eq!(st.completed_indexes.as_deref(), Some("0-4"));
    assert!(st.completion_time.is_some() && st.start_time.is_some());
    assert_eq!(
        has_condition(&j, "SuccessCriteriaMet"),
        Some((
            "CompletionsReached".into(),
            "Reached expected number of succeeded pods".into()
        ))
    );
    // Every pod was counted and let go.
    let pods = env.pods("job=idx").await;
    assert_eq!(pods.len(), 5);
    assert!(pods.iter().all(|p| !p
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)));
    let ev = wait_for("a Completed event", WAIT, || async {
        let ev = events(&env, "idx").await;
        ev.iter().any(|(r, _)| r == "Completed").then_some(ev)
    })
    .await;
    assert_eq!(
        ev.iter().filter(|(r, _)| r == "SuccessfulCreate").count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_and_stop_at_the_backoff_limit() {
    let env = Env::start("job-backoff").await;
    create(&env, job("bo", json!({"backoffLimit": 1}))).await;
    let mut failed_at = Vec::new();
    let start = Instant::now();
    loop {
        for p in env.pods("job=bo").await.iter().filter(|p| running(p)) {
            failed_at.push(Instant::now());
            finish(&env, p, 1).await;
        }
        let j = get(&env, "bo").await;
        if let Some((reason, msg)) = has_condition(&j, "Failed") {
            assert_eq!(reason, "BackoffLimitExceeded");
            assert_eq!(msg, "Job has reached the specified backoff limit");
            assert_eq!(
                has_condition(&j, "FailureTarget").map(|c| c.0).as_deref(),
                Some("BackoffLimitExceeded")
            );
            assert_eq!(j.status.as_ref().and_then(|s| s.failed), Some(2));
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "not failed: {:?}",
            j.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(failed_at.len(), 2, "backoffLimit 1 allows two pods");
    // The second pod came only after the 10 s back-off.
    assert!(
        failed_at[1] - failed_at[0] >= Duration::from_secs(9),
        "{:?}",
        failed_at[1] - failed_at[0]
    );
    let ev = wait_for("a BackoffLimitExceeded event", WAIT, || async {
        events(&env, "bo")
            .await
            .into_iter()
            .find(|(r, _)| r == "BackoffLimitExceeded")
    })
    .await;
    assert_eq!(ev.1, "Job has reached the specified backoff limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fail_job_rule_on_an_exit_code_fails_the_job_at_once() {
    let env = Env::start("job-pfp").await;
    create(
        &env,
        job("pfp", json!({"completions": 3, "parallelism": 3, "backoffLimit": 6, "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]}})),
    )
    .await;
    let pods = wait_for("3 pods", WAIT, || async {
        let p = env.live_pods("job=pfp").await;
        (p.len() == 3).then_some(p)
    })
    .await;
    finish(&env, &pods[0], 42).await;
    let (j, reason, msg) = wait_condition(&env, "pfp", "Failed", Duration::from_secs(20)).await;
    assert_eq!(reason, "PodFailurePolicy");
    let name = pods[0].metadata.name.clone().unwrap_or_default();
    assert_eq!(
        msg,
        format!("Container main for pod job-pfp/{name} failed with exit code 42 matching FailJob rule at index 0")
    );
    assert!(has_condition(&j, "FailureTarget").is_some());
    // The other pods were deleted (they count as failed: the Job ended).
    let st = j.status.clone().expect("status");
    assert_eq!(st.active, None);
    assert_eq!(st.failed, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_deletes_pods_and_resume_restarts_them() {
    let env = Env::start("job-suspend").await;
    create(
        &env,
        job(
            "sus",
            json!({"suspend": true, "parallelism": 2, "completions": 4}),
        ),
    )
    .await;
    let (j, reason, msg) = wait_condition(&env, "sus", "Suspended", Duration::from_secs(10)).await;
    assert_eq!(
        (reason.as_str(), msg.as_str()),
        ("JobSuspended", "Job suspended")
    );
    assert!(j
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .is_none());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        env.pods("job=sus").await.is_empty(),
        "a suspended job made pods"
    );
    env.api::<Job>()
        .patch(
            "sus",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"suspend": false}})),
        )
        .await
        .expect("resuming");
    wait_for("2 pods after resume", WAIT, || async {
        (env.live_pods("job=sus").await.len() == 2).then_some(())
    })
    .await;
    // The controller makes the pods before it writes the status that says so:
    // wait for the condition rather than read it once.
    let resumed = |j: &Job| {
        let st = j.status.as_ref()?;
        let c = st
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Suspended")?;
        Some((c.status.clone(), c.reason.clone(), st.start_time.is_some()))
    };
    let seen = wait_for("the Suspended condition turned False", WAIT, || async {
        let seen = resumed(&get(&env, "sus").await);
        (seen.as_ref().map(|s| s.0.as_str()) == Some("False")).then_some(seen)
    })
    .await;
    assert_eq!(
        seen,
        Some(("False".to_string(), Some("JobResumed".to_string()), true))
    );
    // Suspending again deletes the running pods, not counting them failed.
    env.api::<Job>()
        .patch(
            "sus",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"suspend": true}})),
        )
        .await
        .expect("suspending");
    wait_for("no live pods", WAIT, || async {
        env.live_pods("job=sus").await.is_empty().then_some(())
    })
    .await;
    let j = get(&env, "sus").await;
    assert_eq!(j.status.as_ref().and_then(|s| s.failed), None);
    wait_for("a Resumed event", WAIT, || async {
        events(&env, "sus")
            .await
            .iter()
            .any(|(r, _)| r == "Resumed")
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_restart_neither_loses_nor_double_counts_pods() {
    let mut env = Env::start("job-restart").await;
    create(
        &env,
        job("many", json!({"completions": 50, "parallelism": 10})),
    )
    .await;
    let mut finished = 0;
    let mut restarted = false;
    let start = Instant::now();
    loop {
        for p in env.pods("job=many").await.iter().filter(|p| running(p)) {
            finish(&env, p, 0).await;
            finished += 1;
        }
        if !restarted && finished >= 20 {
            env.stop_controllers().await;
            // Pods finish while no controller runs.
            for p in env.pods("job=many").await.iter().filter(|p| running(p)) {
                finish(&env, p, 0).await;
                finished += 1;
            }
            env.restart_controllers();
            restarted = true;
        }
        if has_condition(&get(&env, "many").await, "Complete").is_some() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not complete: {:?}",
            get(&env, "many").await.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let j = get(&env, "many").await;
    let pods = env.pods("job=many").await;
    assert_eq!(pods.len(), 50, "pods made: {}", pods.len());
    assert_eq!(finished, 50);
    assert_eq!(j.status.as_ref().and_then(|s| s.succeeded), Some(50));
    let u = j
        .status
        .as_ref()
        .and_then(|s| s.uncounted_terminated_pods.clone())
        .unwrap_or_default();
    assert!(u.succeeded.unwrap_or_default().is_empty() && u.failed.unwrap_or_default().is_empty());
    assert!(pods.iter().all(|p| !p
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_job_is_deleted_after_its_ttl_in_the_foreground() {
    let env = Env::start("job-ttl").await;
    create(&env, job("ttl", json!({"ttlSecondsAfterFinished": 2}))).await;
    let pods = wait_for("a pod", WAIT, || async {
        let p = env.live_pods("job=ttl").await;
        (p.len() == 1).then_some(p)
    })
    .await;
    finish(&env, &pods[0], 0).await;
    let (j, _, _) = wait_condition(&env, "ttl", "Complete", Duration::from_secs(10)).await;
    assert!(j.metadata.deletion_timestamp.is_none());
    let done_at = j
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Complete"))
        .and_then(|c| c.last_transition_time.clone())
        .expect("Complete's time")
        .0;
    // Only the garbage collector (not running here) ends a foreground
    // deletion: the Job stays, marked, with the foregroundDeletion finalizer.
    let j = wait_for("the job's deletion", WAIT, || async {
        let j = get(&env, "ttl").await;
        j.metadata.deletion_timestamp.is_some().then_some(j)
    })
    .await;
    let deleted_at = j
        .metadata
        .deletion_timestamp
        .clone()
        .expect("deletion time")
        .0;
    assert!(
        deleted_at >= done_at + jiff::SignedDuration::from_secs(2),
        "{done_at} {deleted_at}"
    );
    assert!(j
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == "foregroundDeletion"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_matching_orphans_and_releases_pods_that_stop_matching() {
    let env = Env::start("job-adopt").await;
    // An orphan that matches, made before the Job.
    let orphan: Pod = obj(json!({
        "metadata": {"name": "orphan", "labels": {"job": "adopt"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
    }));
    env.api::<Pod>()
        .create(&PostParams::default(), &orphan)
        .await
        .expect("orphan");
    let j = create(
        &env,
        job("adopt", json!({"parallelism": 2, "completions": 2})),
    )
    .await;
    let uid = j.metadata.uid.clone().unwrap_or_default();
    let owned = |p: &Pod| {
        p.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.uid == uid && r.controller == Some(true))
    };
    let adopted = wait_for("the orphan adopted", WAIT, || async {
        let p = env.api::<Pod>().get("orphan").await.expect("orphan");
        owned(&p).then_some(p)
    })
    .await;
    assert!(adopted
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER));
    // Relabelled: released, and its tracking finalizer removed.
    env.api::<Pod>()
        .patch(
            "orphan",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"job": "other"}}})),
        )
        .await
        .expect("relabel");
    wait_for("the pod released", WAIT, || async {
        let p = env.api::<Pod>().get("orphan").await.expect("pod");
        (!owned(&p)
            && !p
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == FINALIZER))
        .then_some(())
    })
    .await;
}
