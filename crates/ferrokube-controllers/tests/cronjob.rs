//! The CronJob controller against a real API server. Schedule times are
//! made to fall due at once by moving `status.lastScheduleTime` back.

mod common;

use std::time::Duration;

use common::{obj, Env, WAIT};
use ferrokube_client::testing::wait::wait_for;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn cronjob(name: &str, policy: &str, schedule: &str) -> CronJob {
    obj(json!({
        "metadata": {"name": name},
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": policy,
            "successfulJobsHistoryLimit": 1,
            "jobTemplate": {
                "metadata": {"labels": {"cron": name}},
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox"}]}}}
            }
        }
    }))
}

/// Moves the last schedule time `minutes` back, so that the current
/// minute's time is due.
async fn make_due(env: &Env, name: &str, minutes: i64) {
    let now = Timestamp::now().as_second();
    set_last(
        env,
        name,
        Timestamp::from_second(now - now % 60 - minutes * 60).expect("time"),
    )
    .await;
}

/// Sets `status.lastScheduleTime`.
async fn set_last(env: &Env, name: &str, last: Timestamp) {
    env.api::<CronJob>()
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"lastScheduleTime": last.to_string()}})),
        )
        .await
        .expect("moving lastScheduleTime");
}

async fn jobs(env: &Env, name: &str) -> Vec<Job> {
    env.api::<Job>()
        .list(&ListParams::default().labels(&format!("cron={name}")))
        .await
        .expect("jobs")
        .items
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .collect()
}

async fn events(env: &Env, name: &str) -> Vec<(String, String)> {
    env.api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
        .collect()
}

async fn complete(env: &Env, job: &str) {
    let now = Timestamp::now().to_string();
    env.api::<Job>()
        .patch_status(
            job,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {
                "startTime": now, "completionTime": now, "succeeded": 1,
                "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
                    {"type": "Complete", "status": "True", "lastTransitionTime": now}]}})),
        )
        .await
        .expect("completing the job");
}

fn active(cj: &CronJob) -> Vec<String> {
    cj.status
        .as_ref()
        .and_then(|s| s.active.clone())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.name)
        .collect()
}

#[expect(
    clippy::too_many_lines,
    reason = "one end-to-end scenario, read top to bottom"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_schedule_creates_its_job_and_status_follows_it() {
    let env = Env::start("cron-allow").await;
    env.api::<CronJob>()
        .create(
            &PostParams::default(),
            &cronjob("tick", "Allow", "0 0 1 1 *"),
        )
        .await
        .expect("creating");
    // Due: this year's January 1st.
    let now = Timestamp::now();
    set_last(&env, "tick", now - SignedDuration::from_hours(400 * 24)).await;
    let new_year = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .first_of_year()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("new year")
        .timestamp();
    let j = wait_for("the scheduled job", WAIT, || async {
        jobs(&env, "tick").await.into_iter().next()
    })
    .await;
    let name = j.metadata.name.clone().unwrap_or_default();
    let minutes: i64 = name
        .strip_prefix("tick-")
        .and_then(|m| m.parse().ok())
        .expect("tick-<minutes>");
    let at = Timestamp::from_second(minutes * 60).expect("time");
    assert_eq!(at, new_year);
    let a = j.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        a.get("batch.kubernetes.io/cronjob-scheduled-timestamp")
            .map(String::as_str),
        Some(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string().as_str())
    );
    let r = &j.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!((r.kind.as_str(), r.controller), ("CronJob", Some(true)));
    let cj = wait_for("active in status", WAIT, || async {
        let cj = env.api::<CronJob>().get("tick").await.expect("cronjob");
        (active(&cj) == [name.clone()]).then_some(cj)
    })
    .await;
    assert_eq!(
        cj.status
            .as_ref()
            .and_then(|s| s.last_schedule_time.clone())
            .map(|t| t.0),
        Some(at)
    );
    assert!(events(&env, "tick")
        .await
        .iter()
        .any(|(r, m)| r == "SuccessfulCreate" && *m == format!("Created job {name}")));

    complete(&env, &name).await;
    let cj = wait_for("the finished job out of active", WAIT, || async {
        let cj = env.api::<CronJob>().get("tick").await.expect("cronjob");
        (active(&cj).is_empty()
            && cj
                .status
                .as_ref()
                .and_then(|s| s.last_successful_time.as_ref())
                .is_some())
        .then_some(cj)
    })
    .await;
    assert!(cj
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .is_some());
    let ev = wait_for("SawCompletedJob", WAIT, || async {
        events(&env, "tick")
            .await
            .into_iter()
            .find(|(r, _)| r == "SawCompletedJob")
    })
    .await;
    assert_eq!(ev.1, format!("Saw completed job: {name}, status: Complete"));

    // Another due time: a second job; the history keeps one succeeded job.
    env.api::<CronJob>()
        .patch(
            "tick",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"schedule": "*/1 * * * *"}})),
        )
        .await
        .expect("changing the schedule");
    make_due(&env, "tick", 3).await;
    wait_for("a second job", WAIT, || async {
        jobs(&env, "tick")
            .await
            .iter()
            .any(|j| j.metadata.name.as_deref() != Some(name.as_str()))
            .then_some(())
    })
    .await;
    let second: Vec<String> = jobs(&env, "tick")
        .await
        .into_iter()
        .filter_map(|j| j.metadata.name)
        .collect();
    for n in &second {
        if *n != name {
            complete(&env, n).await;
        }
    }
    wait_for("the oldest succeeded job removed", WAIT, || async {
        (jobs(&env, "tick").await.len() == 1).then_some(())
    })
    .await;
    let left = jobs(&env, "tick").await;
    assert_ne!(left[0].metadata.name.as_deref(), Some(name.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbid_skips_while_one_runs_and_replace_replaces_it() {
    let env = Env::start("cron-policy").await;
    env.api::<CronJob>()
        .create(
            &PostParams::default(),
            &cronjob("one", "Forbid", "0 0 1 1 *"),
        )
        .await
        .expect("creating");
    set_last(
        &env,
        "one",
        Timestamp::now() - SignedDuration::from_hours(400 * 24),
    )
    .await;
    let first = wait_for("the first job", WAIT, || async {
        jobs(&env, "one").await.into_iter().next()
    })
    .await;
    wait_for("active", WAIT, || async {
        (!active(&env.api::<CronJob>().get("one").await.expect("cj")).is_empty()).then_some(())
    })
    .await;
    // Due again while the first still runs: skipped.
    env.api::<CronJob>()
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"schedule": "*/1 * * * *"}})),
        )
        .await
        .expect("changing the schedule");
    make_due(&env, "one", 3).await;
    wait_for("JobAlreadyActive", WAIT, || async {
        events(&env, "one")
            .await
            .into_iter()
            .find(|(r, _)| r == "JobAlreadyActive")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(jobs(&env, "one").await.len(), 1);

    // Replace: the running job goes, a new one comes.
    env.api::<CronJob>()
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"concurrencyPolicy": "Replace"}})),
        )
        .await
        .expect("switching to Replace");
    make_due(&env, "one", 3).await;
    let first_name = first.metadata.name.clone().unwrap_or_default();
    wait_for("the first job replaced", WAIT, || async {
        let cj = env.api::<CronJob>().get("one").await.expect("cj");
        let a = active(&cj);
        (a.len() == 1 && a[0] != first_name).then_some(())
    })
    .await;
    let ev = events(&env, "one").await;
    assert!(
        ev.iter()
            .any(|(r, m)| r == "SuccessfulDelete" && *m == format!("Deleted job {first_name}")),
        "{ev:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_cronjob_creates_nothing() {
    let env = Env::start("cron-suspend").await;
    let mut cj = cronjob("zzz", "Allow", "*/1 * * * *");
    if let Some(s) = cj.spec.as_mut() {
        s.suspend = Some(true);
    }
    env.api::<CronJob>()
        .create(&PostParams::default(), &cj)
        .await
        .expect("creating");
    make_due(&env, "zzz", 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(jobs(&env, "zzz").await.is_empty());
    env.api::<CronJob>()
        .patch(
            "zzz",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"suspend": false}})),
        )
        .await
        .expect("resuming");
    wait_for("a job after resume", WAIT, || async {
        jobs(&env, "zzz").await.into_iter().next()
    })
    .await;
}
