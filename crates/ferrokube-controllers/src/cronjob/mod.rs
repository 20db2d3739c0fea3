//! The CronJob controller, as Kubernetes' `cronjob_controllerv2.go`: at
//! each schedule time (standard cron syntax and macros, in `timeZone`) it
//! creates the Job `<cronjob>-<scheduled time in minutes>` from the
//! template, honouring suspend, startingDeadlineSeconds and the concurrency
//! policy (Allow, Forbid, Replace); it keeps `status.active`,
//! `lastScheduleTime` and `lastSuccessfulTime`, removes finished Jobs
//! beyond the history limits, and looks again at the next schedule time.
//! The deterministic Job name is the lock that keeps a restarted
//! controller from running a schedule time twice.

pub(crate) mod schedule;

use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::cron::{load_zone, parse_standard, Schedule};
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio_util::sync::CancellationToken;

use self::schedule::{most_recent, next_duration, Missed};
use crate::controller::{Action, Context, Reconciler};
use crate::job::finished_condition;
use crate::podutil::{self, api_code};
use crate::watchqueue::{Change, Informers, Key};

/// The event source.
pub(crate) const COMPONENT: &str = "cronjob-controller";
/// The annotation with the time a Job was scheduled for.
pub(crate) const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// The controller.
pub(crate) struct CronJobController {
    client: kube::Client,
    cronjobs: Store<CronJob>,
    jobs: Store<Job>,
    ctx: Context,
}

impl Reconciler for CronJobController {
    fn context(&self) -> &Context {
        &self.ctx
    }
    fn enqueue_all(&self) {
        self.ctx.add_all(&self.cronjobs);
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        self.sync(key).await
    }
}

fn cronjob_ref(j: &Job) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference> {
    podutil::controller_ref(&j.metadata)
        .filter(|r| r.kind == "CronJob" && r.api_version.starts_with("batch/"))
}

fn in_active(cj: &CronJob, uid: &str) -> bool {
    cj.status
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .is_some_and(|a| a.iter().any(|r| r.uid.as_deref() == Some(uid)))
}

fn remove_active(cj: &mut CronJob, uid: &str) {
    if let Some(a) = cj.status.as_mut().and_then(|s| s.active.as_mut()) {
        a.retain(|r| r.uid.as_deref() != Some(uid));
    }
}

/// How many Jobs `status.active` lists.
fn active_count(cj: &CronJob) -> usize {
    cj.status
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .map_or(0, Vec::len)
}

/// Whether the Job for `scheduled` was already started: its name is in
/// `status.active`, or `lastScheduleTime` is that time.
fn already_started(cj: &CronJob, req: &Job, scheduled: Timestamp) -> bool {
    let req_name = req.metadata.name.as_deref().unwrap_or("");
    let already_named = cj
        .status
        .as_ref()
        .and_then(|s| s.active.as_ref())
        .is_some_and(|a| a.iter().any(|r| r.name.as_deref() == Some(req_name)));
    let last = cj
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .map(|t| t.0);
    already_named || last == Some(scheduled)
}

/// Go's RFC 3339 form: `Z` for a zero offset.
fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// The Job for one schedule time.
pub(crate) fn job_from_template(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let t = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let tm = t.metadata.unwrap_or_default();
    let mut annotations = tm.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), rfc3339_in(scheduled, tz));
    let name = cj.metadata.name.clone().unwrap_or_default();
    Job {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{}", scheduled.as_second().div_euclid(60))),
            labels: tm.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![podutil::owner_ref_to(cj)]),
            ..Default::default()
        },
        spec: t.spec,
        status: None,
    }
}

fn job_reference(j: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: j.metadata.name.clone(),
        namespace: j.metadata.namespace.clone(),
        uid: j.metadata.uid.clone(),
        resource_version: j.metadata.resource_version.clone(),
        ..Default::default()
    }
}

fn start_time(j: &Job) -> Option<Timestamp> {
    j.status.as_ref()?.start_time.as_ref().map(|t| t.0)
}

impl CronJobController {
    pub(crate) fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new("cronjob", cancel);
        let cronjobs: Store<CronJob> = ctx.watch(informers);
        let jobs: Store<Job> = ctx.watch(informers);
        let this = Arc::new(CronJobController {
            client: ctx.client(&client),
            cronjobs,
            jobs,
            ctx,
        });
        informers.get::<CronJob>().queue_keys(&this);
        let me = this.clone();
        informers
            .get::<Job>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(j) | Change::Deleted(j) => {
                    if let Some(r) = cronjob_ref(j) {
                        me.ctx.add((
                            j.metadata.namespace.clone().unwrap_or_default(),
                            r.name.clone(),
                        ));
                    }
                }
                Change::Relisted => me.enqueue_all(),
            });
        this
    }

    fn event(&self, cj: &CronJob, type_: &str, reason: &str, message: String) {
        podutil::record_event(&self.client, COMPONENT, cj, type_, reason, message);
    }

    async fn sync(&self, key: &Key) -> anyhow::Result<Action> {
        let Some(cached) = self.cronjobs.get(&ObjectRef::new(&key.1).within(&key.0)) else {
            return Ok(Action::await_change());
        };
        let uid = cached.metadata.uid.clone().unwrap_or_default();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .state()
            .into_iter()
            .filter(|j| {
                j.metadata.namespace.as_deref() == Some(key.0.as_str())
                    && cronjob_ref(j).is_some_and(|r| r.uid == uid)
            })
            .collect();
        let mut cj = (*cached).clone();
        let (requeue, mut update) = self.sync_cronjob(&mut cj, &jobs).await?;
        if cj.metadata.deletion_timestamp.is_none() && self.cleanup_finished(&mut cj, &jobs).await {
            update = true;
        }
        if update {
            if let Some(st) = cj.status.as_mut() {
                if st.active.as_ref().is_some_and(Vec::is_empty) {
                    st.active = None;
                }
            }
            let api: Api<CronJob> = Api::namespaced(self.client.clone(), &key.0);
            match api
                .replace_status(&key.1, &PostParams::default(), &cj)
                .await
            {
                Ok(_) => {}
                Err(e) if api_code(&e) == Some(404) => return Ok(Action::await_change()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(requeue.into())
    }

    /// Kubernetes' syncCronJob: returns when to look again and whether the
    /// status changed.
    async fn sync_cronjob(
        &self,
        cj: &mut CronJob,
        jobs: &[Arc<Job>],
    ) -> anyhow::Result<(Option<Duration>, bool)> {
        let now = Timestamp::now();
        let ns = cj.metadata.namespace.clone().unwrap_or_default();
        let jobs_api: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        let mut update = self.account_for_jobs(cj, jobs).await?;
        update |= self.drop_missing_active(cj, jobs, &jobs_api).await?;
        if cj.metadata.deletion_timestamp.is_some() {
            return Ok((None, update));
        }
        let spec = cj.spec.clone().unwrap_or_default();
        let Some(tz) = self.time_zone(cj, &spec) else {
            return Ok((None, update));
        };
        if spec.suspend == Some(true) {
            return Ok((None, update));
        }
        let Some(sched) = self.schedule(cj, &spec) else {
            return Ok((None, update));
        };
        let recent = match most_recent(cj, now, &sched, &tz, true) {
            Ok(r) => r,
            Err(e) => {
                self.event(
                    cj,
                    "Warning",
                    "InvalidSchedule",
                    format!("invalid schedule: {} : {e}", spec.schedule),
                );
                return Ok((None, update));
            }
        };
        let next = |cj: &CronJob| Some(next_duration(cj, now, &sched, &tz));
        let Some(scheduled) = recent.most_recent.filter(|t| *t <= now) else {
            return Ok((next(cj), update));
        };
        if recent.missed == Missed::Many {
            self.event(
                cj,
                "Warning",
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
            );
        }
        if self.missed_starting_deadline(cj, &spec, scheduled, now) {
            return Ok((next(cj), update));
        }
        let req = job_from_template(
            cj,
            scheduled,
            &load_zone(spec.time_zone.as_deref().unwrap_or("")).unwrap_or(TimeZone::UTC),
        );
        if already_started(cj, &req, scheduled) {
            return Ok((next(cj), update));
        }
        let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
        if policy == "Forbid" && active_count(cj) > 0 {
            self.event(
                cj,
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
            );
            return Ok((next(cj), update));
        }
        if policy == "Replace" {
            update |= self.replace_active(cj, &jobs_api, &ns).await?;
        }
        let Some(created) = self.create_job(cj, &jobs_api, &req).await? else {
            return Ok((None, update));
        };
        let st = cj.status.get_or_insert_with(Default::default);
        st.active
            .get_or_insert_with(Vec::new)
            .push(job_reference(&created));
        st.last_schedule_time = Some(Time(scheduled));
        Ok((next(cj), true))
    }

    /// Brings `status.active` and `lastSuccessfulTime` in line with the
    /// CronJob's Jobs (unexpected and completed ones get an event); returns
    /// whether the status changed. May replace `cj` with a fresher copy.
    async fn account_for_jobs(&self, cj: &mut CronJob, jobs: &[Arc<Job>]) -> anyhow::Result<bool> {
        let mut update = false;
        let ns = cj.metadata.namespace.clone().unwrap_or_default();
        let cj_api: Api<CronJob> = Api::namespaced(self.client.clone(), &ns);
        for j in jobs {
            let juid = j.metadata.uid.clone().unwrap_or_default();
            let jname = j.metadata.name.clone().unwrap_or_default();
            let found = in_active(cj, &juid);
            let finished = finished_condition(j).map(|(t, _)| t.to_string());
            if !found && finished.is_none() {
                let fresh = cj_api
                    .get(cj.metadata.name.as_deref().unwrap_or(""))
                    .await?;
                if in_active(&fresh, &juid) {
                    *cj = fresh;
                    continue;
                }
                self.event(
                    cj,
                    "Warning",
                    "UnexpectedJob",
                    format!("Saw a job that the controller did not create or forgot: {jname}"),
                );
            } else if found && finished.is_some() {
                remove_active(cj, &juid);
                self.event(
                    cj,
                    "Normal",
                    "SawCompletedJob",
                    format!(
                        "Saw completed job: {jname}, status: {}",
                        finished.clone().unwrap_or_default()
                    ),
                );
                update = true;
            }
            if finished.as_deref() == Some("Complete") {
                let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
                let st = cj.status.get_or_insert_with(Default::default);
                if let Some(d) = done {
                    if st.last_successful_time.as_ref().is_none_or(|l| d.0 > l.0) {
                        st.last_successful_time = Some(d);
                        update = true;
                    }
                }
            }
        }
        Ok(update)
    }

    /// Drops from `status.active` the Jobs the server no longer has (a
    /// MissingJob event each); returns whether the status changed.
    async fn drop_missing_active(
        &self,
        cj: &mut CronJob,
        jobs: &[Arc<Job>],
        jobs_api: &Api<Job>,
    ) -> anyhow::Result<bool> {
        let mut update = false;
        let active: Vec<ObjectReference> = cj
            .status
            .as_ref()
            .and_then(|s| s.active.clone())
            .unwrap_or_default();
        for r in active {
            let ruid = r.uid.clone().unwrap_or_default();
            if jobs
                .iter()
                .any(|j| j.metadata.uid.as_deref() == Some(ruid.as_str()))
            {
                continue;
            }
            let name = r.name.clone().unwrap_or_default();
            match jobs_api.get(&name).await {
                Err(e) if api_code(&e) == Some(404) => {
                    self.event(
                        cj,
                        "Normal",
                        "MissingJob",
                        format!("Active job went missing: {name}"),
                    );
                    remove_active(cj, &ruid);
                    update = true;
                }
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
        }
        Ok(update)
    }

    /// The CronJob's time zone (the system's when unset); `None` after an
    /// UnknownTimeZone event.
    fn time_zone(&self, cj: &CronJob, spec: &CronJobSpec) -> Option<TimeZone> {
        match &spec.time_zone {
            Some(name) => match load_zone(name) {
                Ok(tz) => Some(tz),
                Err(e) => {
                    self.event(
                        cj,
                        "Warning",
                        "UnknownTimeZone",
                        format!("invalid timeZone: {name:?}: {e}"),
                    );
                    None
                }
            },
            None => Some(TimeZone::system()),
        }
    }

    /// The parsed schedule (warning on a CRON_TZ/TZ prefix); `None` after
    /// an UnparseableSchedule event.
    fn schedule(&self, cj: &CronJob, spec: &CronJobSpec) -> Option<Schedule> {
        if spec.schedule.contains("TZ") {
            self.event(
                cj,
                "Warning",
                "UnsupportedSchedule",
                format!(
                    "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                    spec.schedule
                ),
            );
        }
        match parse_standard(&spec.schedule) {
            Ok(s) => Some(s),
            Err(e) => {
                self.event(
                    cj,
                    "Warning",
                    "UnparseableSchedule",
                    format!("unparseable schedule: {:?} : {e}", spec.schedule),
                );
                None
            }
        }
    }

    /// Whether `scheduled` is past startingDeadlineSeconds (a MissSchedule
    /// event then).
    fn missed_starting_deadline(
        &self,
        cj: &CronJob,
        spec: &CronJobSpec,
        scheduled: Timestamp,
        now: Timestamp,
    ) -> bool {
        let Some(secs) = spec.starting_deadline_seconds else {
            return false;
        };
        if scheduled + jiff::SignedDuration::from_secs(secs) >= now {
            return false;
        }
        let when = scheduled
            .to_zoned(TimeZone::UTC)
            .strftime("%a, %d %b %Y %H:%M:%S +0000")
            .to_string();
        self.event(
            cj,
            "Warning",
            "MissSchedule",
            format!("Missed scheduled time to start a job: {when}"),
        );
        true
    }

    /// Concurrency policy Replace: deletes every active Job; returns
    /// whether any was deleted.
    async fn replace_active(
        &self,
        cj: &mut CronJob,
        jobs_api: &Api<Job>,
        ns: &str,
    ) -> anyhow::Result<bool> {
        let mut update = false;
        let active = cj
            .status
            .as_ref()
            .and_then(|s| s.active.clone())
            .unwrap_or_default();
        for r in active {
            let name = r.name.clone().unwrap_or_default();
            let job = match jobs_api.get(&name).await {
                Ok(j) => j,
                Err(e) => {
                    self.event(cj, "Warning", "FailedGet", format!("Get job: {e}"));
                    return Err(e.into());
                }
            };
            if !self.delete_job(cj, &job).await {
                anyhow::bail!("could not replace job {ns}/{name}");
            }
            update = true;
        }
        Ok(update)
    }

    /// Creates the scheduled Job. On a 409 the existing Job is taken when
    /// it is ours and not yet active; `None` when there is nothing to
    /// record.
    async fn create_job(
        &self,
        cj: &CronJob,
        jobs_api: &Api<Job>,
        req: &Job,
    ) -> anyhow::Result<Option<Job>> {
        let req_name = req.metadata.name.clone().unwrap_or_default();
        match jobs_api.create(&PostParams::default(), req).await {
            Ok(j) => {
                self.event(
                    cj,
                    "Normal",
                    "SuccessfulCreate",
                    format!("Created job {req_name}"),
                );
                Ok(Some(j))
            }
            Err(e) if api_code(&e) == Some(409) => {
                let j = jobs_api.get(&req_name).await?;
                let ours = cronjob_ref(&j)
                    .is_some_and(|r| Some(r.uid.as_str()) == cj.metadata.uid.as_deref());
                if !ours || in_active(cj, j.metadata.uid.as_deref().unwrap_or("")) {
                    return Ok(None);
                }
                Ok(Some(j))
            }
            Err(e) => {
                self.event(
                    cj,
                    "Warning",
                    "FailedCreate",
                    format!("Error creating job: {e}"),
                );
                Err(e.into())
            }
        }
    }

    /// Deletes (in the background) a Job of the CronJob and drops it from
    /// the active list.
    async fn delete_job(&self, cj: &mut CronJob, job: &Job) -> bool {
        let api: Api<Job> = Api::namespaced(
            self.client.clone(),
            job.metadata.namespace.as_deref().unwrap_or(""),
        );
        let name = job.metadata.name.clone().unwrap_or_default();
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => {}
            Err(e) => {
                self.event(cj, "Warning", "FailedDelete", format!("Deleted job: {e}"));
                return false;
            }
        }
        remove_active(cj, job.metadata.uid.as_deref().unwrap_or(""));
        self.event(
            cj,
            "Normal",
            "SuccessfulDelete",
            format!("Deleted job {name}"),
        );
        true
    }

    /// Removes the oldest finished Jobs beyond the history limits.
    async fn cleanup_finished(&self, cj: &mut CronJob, jobs: &[Arc<Job>]) -> bool {
        let spec = cj.spec.clone().unwrap_or_default();
        let mut succeeded: Vec<&Arc<Job>> = Vec::new();
        let mut failed: Vec<&Arc<Job>> = Vec::new();
        for j in jobs {
            match finished_condition(j).map(|(t, _)| t) {
                Some("Complete") => succeeded.push(j),
                Some("Failed") => failed.push(j),
                _ => {}
            }
        }
        let mut update = false;
        for (mut list, limit) in [
            (succeeded, spec.successful_jobs_history_limit),
            (failed, spec.failed_jobs_history_limit),
        ] {
            let Some(limit) = limit else { continue };
            let extra = list.len().saturating_sub(limit.max(0) as usize);
            if extra == 0 {
                continue;
            }
            // Oldest start first; never-started last; names break ties.
            list.sort_by(|a, b| match (start_time(a), start_time(b)) {
                (Some(x), Some(y)) if x != y => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                _ => a.metadata.name.cmp(&b.metadata.name),
            });
            for j in list.into_iter().take(extra) {
                if self.delete_job(cj, j).await {
                    update = true;
                }
            }
        }
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_are_named_by_the_minute_and_annotated() {
        let cj: CronJob = serde_json::from_value(json!({
            "metadata": {"name": "hello", "uid": "u1"},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {
                "metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}},
                "spec": {"template": {"spec": {"containers": []}}}}},
        }))
        .expect("cronjob");
        let at: Timestamp = "2026-01-01T10:00:00Z".parse().expect("time");
        let j = job_from_template(&cj, at, &TimeZone::UTC);
        assert_eq!(j.metadata.name.as_deref(), Some("hello-29454360"));
        let a = j.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            a.get(SCHEDULED_TIMESTAMP).map(String::as_str),
            Some("2026-01-01T10:00:00Z")
        );
        assert_eq!(a.get("x").map(String::as_str), Some("y"));
        assert_eq!(
            j.metadata
                .labels
                .unwrap_or_default()
                .get("a")
                .map(String::as_str),
            Some("b")
        );
        let r = &j.metadata.owner_references.unwrap_or_default()[0];
        assert_eq!(
            (r.kind.as_str(), r.uid.as_str(), r.controller),
            ("CronJob", "u1", Some(true))
        );
        let tz = load_zone("Asia/Tokyo").expect("zone");
        assert_eq!(rfc3339_in(at, &tz), "2026-01-01T19:00:00+09:00");
    }
}
