//! The Job controller, as Kubernetes' `pkg/controller/job`: runs a Job's
//! pods to `completions` (NonIndexed, or Indexed with one success per
//! index) at most `parallelism` at a time, with exponential back-off after
//! failures, the back-off limits (global and per index), the active
//! deadline, the pod failure and success policies, suspend and resume.
//!
//! Finished pods are counted through the `batch.kubernetes.io/job-tracking`
//! finalizer every pod is created with: a finished pod is first written
//! into `status.uncountedTerminatedPods` (or, for Indexed Jobs, its index
//! into `completedIndexes`), then its finalizer is removed, then it moves
//! from the uncounted list to the `succeeded`/`failed` counters. Each step
//! is written before the next, so a controller that stops anywhere neither
//! loses a pod nor counts one twice. The terminal condition (Complete or
//! Failed) comes after the interim SuccessCriteriaMet / FailureTarget, once
//! no pod is uncounted or terminating.

pub(crate) mod indexes;
pub(crate) mod policy;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::indexes::{completion_index, Intervals, COMPLETION_INDEX};
use self::policy::{match_failure_policy, match_success_policy, BackoffRecord, BackoffStore};
use crate::controller::{self, Action, Context, Reconciler};
use crate::expectations::Expectations;
use crate::podutil::{self, api_code, Selector};
use crate::watchqueue::{key_of, Change, Informers, Key};

/// The finalizer that keeps a Job's pod until the Job has counted it.
pub(crate) const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The event source.
pub(crate) const COMPONENT: &str = "job-controller";
/// The most pods one sync creates or deletes.
pub(crate) const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
/// The most finished pods one sync takes into `uncountedTerminatedPods`.
pub(crate) const MAX_UNCOUNTED_PODS: usize = 500;
/// Pod changes are gathered this long into one sync (Kubernetes'
/// syncJobBatchPeriod), so that a burst of finishing pods costs one status
/// write.
pub(crate) const SYNC_BATCH_PERIOD: Duration = Duration::from_secs(1);

/// Whether the Job has finished: Complete or Failed is true.
pub(crate) fn is_finished(job: &Job) -> bool {
    finished_condition(job).is_some()
}

/// The Job's true Complete or Failed condition type.
pub(crate) fn finished_condition(job: &Job) -> Option<(&str, &JobCondition)> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| (c.type_.as_str(), c))
}

fn has_finalizer(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn is_indexed(spec: &JobSpec) -> bool {
    spec.completion_mode.as_deref() == Some("Indexed")
}

fn per_index_limit(spec: &JobSpec) -> Option<i32> {
    if is_indexed(spec) {
        spec.backoff_limit_per_index
    } else {
        None
    }
}

/// Only pods that reached phase Failed are replaced (and count as
/// failed): podReplacementPolicy Failed, or any pod failure policy.
fn only_replace_failed(spec: &JobSpec) -> bool {
    spec.pod_replacement_policy.as_deref() == Some("Failed") || spec.pod_failure_policy.is_some()
}

/// Kubernetes' isPodFailed: phase Failed, or (unless only failed pods are
/// replaced) being deleted before succeeding.
fn is_pod_failed(p: &Pod, spec: &JobSpec) -> bool {
    let phase = podutil::phase(p);
    if phase == "Failed" {
        return true;
    }
    if only_replace_failed(spec) {
        return false;
    }
    p.metadata.deletion_timestamp.is_some() && phase != "Succeeded"
}

fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some() && !matches!(podutil::phase(p), "Succeeded" | "Failed")
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

fn find_condition<'a>(conds: &'a [JobCondition], type_: &str) -> Option<&'a JobCondition> {
    conds.iter().find(|c| c.type_ == type_)
}

/// Sets a condition's status (appending it unless it would be a new
/// False one); returns whether anything changed.
fn ensure_condition(
    conds: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status
            || c.reason.as_deref() != Some(reason)
            || c.message.as_deref() != Some(message)
        {
            *c = condition(type_, status, reason, message, now);
            return true;
        }
        return false;
    }
    if status != "False" {
        conds.push(condition(type_, status, reason, message, now));
        return true;
    }
    false
}

/// What one sync works out about a Job.
struct SyncCtx {
    key: Key,
    job: Job,
    spec: JobSpec,
    pods: Vec<Arc<Pod>>,
    active: Vec<Arc<Pod>>,
    ready: i32,
    terminating: i32,
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    expected_rm: HashSet<String>,
    succeeded: i32,
    failed: i32,
    prev_succeeded_indexes: Intervals,
    succeeded_indexes: Intervals,
    failed_indexes: Option<Intervals>,
    /// Per index, the failed pod kept (finalizer and all) until its
    /// replacement carries the failure count forward.
    delayed: HashMap<i64, Arc<Pod>>,
    finished: Option<JobCondition>,
    backoff: BackoffRecord,
    /// When to look at the Job again (the soonest deadline or back-off
    /// seen while syncing).
    next: Action,
}

impl SyncCtx {
    /// Asks to look at the Job again after `after` (the soonest wins).
    fn requeue(&mut self, after: Duration) {
        self.next = self.next.sooner(Action::requeue(after));
    }
    fn completions(&self) -> i64 {
        i64::from(self.spec.completions.unwrap_or(0))
    }
    fn valid_index(&self, p: &Pod) -> Option<i64> {
        completion_index(p).filter(|i| *i < self.completions())
    }
    fn status(&mut self) -> &mut k8s_openapi::api::batch::v1::JobStatus {
        self.job.status.get_or_insert_with(Default::default)
    }
}

/// Decides whether the Job has failed (or met its success criteria
/// before): a SuccessCriteriaMet or FailureTarget condition already there,
/// the pod failure policy, the backoff limit, the active deadline (a
/// requeue when still ahead).
fn decide_failure(ctx: &mut SyncCtx, now: Timestamp) {
    let spec = ctx.spec.clone();
    let policy = spec.pod_failure_policy.as_ref();
    let conds = ctx.status().conditions.clone().unwrap_or_default();
    ctx.finished = find_condition(&conds, "SuccessCriteriaMet")
        .filter(|c| c.status == "True")
        .cloned();
    if ctx.finished.is_none() {
        if let Some(ft) = find_condition(&conds, "FailureTarget").filter(|c| c.status == "True") {
            ctx.finished = Some(condition(
                "Failed",
                "True",
                ft.reason.as_deref().unwrap_or(""),
                ft.message.as_deref().unwrap_or(""),
                now,
            ));
        } else if let Some(msg) = ctx
            .pods
            .iter()
            .filter(|p| is_pod_failed(p, &spec))
            .find_map(|p| match_failure_policy(policy, p).fail_job)
        {
            ctx.finished = Some(condition(
                "FailureTarget",
                "True",
                "PodFailurePolicy",
                &msg,
                now,
            ));
        }
    }
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    if ctx.finished.is_none() {
        if ctx.failed > backoff_limit || past_backoff_limit_on_failure(&spec, &ctx.pods) {
            ctx.finished = Some(condition(
                "FailureTarget",
                "True",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                now,
            ));
        } else if let Some(left) = deadline_left(&spec, ctx.job.status.as_ref(), now) {
            if left.is_zero() {
                ctx.finished = Some(condition(
                    "FailureTarget",
                    "True",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                    now,
                ));
            } else {
                ctx.requeue(left);
            }
        }
    }
}

/// An Indexed Job: the succeeded and (with a per-index backoff limit)
/// failed indexes, the failure they may decide (too many failed indexes,
/// every index finished with some failed) and the success policy.
fn sync_indexes(ctx: &mut SyncCtx, now: Timestamp) {
    let spec = ctx.spec.clone();
    let completions = ctx.completions();
    let prev = Intervals::parse(
        ctx.job
            .status
            .as_ref()
            .and_then(|s| s.completed_indexes.as_deref())
            .unwrap_or(""),
        completions,
    );
    let new: Vec<i64> = ctx
        .pods
        .iter()
        .filter(|p| podutil::phase(p) == "Succeeded" && has_finalizer(p))
        .filter_map(|p| ctx.valid_index(p))
        .collect();
    ctx.succeeded_indexes = prev.with(new);
    ctx.prev_succeeded_indexes = prev;
    ctx.succeeded = ctx.succeeded_indexes.total() as i32;
    if let Some(limit) = per_index_limit(&spec) {
        let prev_failed = Intervals::parse(
            ctx.job
                .status
                .as_ref()
                .and_then(|s| s.failed_indexes.as_deref())
                .unwrap_or(""),
            completions,
        );
        let newly: Vec<i64> = ctx
            .pods
            .iter()
            .filter(|p| has_finalizer(p) && is_index_failed(&spec, p, limit))
            .filter_map(|p| ctx.valid_index(p))
            .collect();
        let failed_indexes = prev_failed.with(newly);
        if ctx.finished.is_none() {
            let n = failed_indexes.total();
            if spec.max_failed_indexes.is_some_and(|m| n > i64::from(m)) {
                ctx.finished = Some(condition(
                    "FailureTarget",
                    "True",
                    "MaxFailedIndexesExceeded",
                    "Job has exceeded the specified maximal number of failed indexes",
                    now,
                ));
            } else if n > 0 && n + ctx.succeeded_indexes.total() >= completions {
                ctx.finished = Some(condition(
                    "FailureTarget",
                    "True",
                    "FailedIndexes",
                    "Job has failed indexes",
                    now,
                ));
            }
        }
        ctx.failed_indexes = Some(failed_indexes);
        ctx.delayed = delayed_per_index(ctx);
    }
    if ctx.finished.is_none() {
        if let Some(msg) = match_success_policy(
            spec.success_policy.as_ref(),
            completions,
            &ctx.succeeded_indexes,
        ) {
            ctx.finished = Some(condition(
                "SuccessCriteriaMet",
                "True",
                "SuccessPolicy",
                &msg,
                now,
            ));
        }
    }
}

/// What [`JobController::count_finished_pods`] found.
struct Counted {
    /// Pods whose finalizer is to be removed.
    to_remove: Vec<Arc<Pod>>,
    /// Newly succeeded completion indexes (Indexed Jobs).
    new_indexes: Vec<i64>,
    /// Whether the walk stopped at `MAX_UNCOUNTED_PODS`.
    reached_max: bool,
    /// Whether the status changed and must be written.
    needs_flush: bool,
}

/// An Indexed Job: adds `new_indexes` to the succeeded ones and writes
/// `succeeded`, `completedIndexes` and `failedIndexes`; returns whether
/// the written indexes changed.
fn sync_indexes_status(ctx: &mut SyncCtx, new_indexes: Vec<i64>) -> bool {
    let mut changed = false;
    ctx.succeeded_indexes = ctx.succeeded_indexes.with(new_indexes);
    let s = ctx.succeeded_indexes.to_string();
    let total = ctx.succeeded_indexes.total() as i32;
    let failed_s = ctx.failed_indexes.as_ref().map(|f| f.to_string());
    let st = ctx.status();
    if st.completed_indexes.as_deref().unwrap_or("") != s {
        changed = true;
    }
    st.succeeded = Some(total);
    st.completed_indexes = Some(s);
    if st.failed_indexes != failed_s {
        st.failed_indexes = failed_s;
        changed = true;
    }
    changed
}

/// An interim condition (FailureTarget, SuccessCriteriaMet) goes into the
/// status and the terminal one (Failed, Complete) becomes the one to
/// enact; returns whether the status changed.
fn promote_interim_condition(ctx: &mut SyncCtx, now: Timestamp) -> bool {
    let mut changed = false;
    if let Some(f) = ctx.finished.clone() {
        if f.type_ == "FailureTarget" {
            ctx.status()
                .conditions
                .get_or_insert_with(Vec::new)
                .push(f.clone());
            changed = true;
            ctx.finished = Some(condition(
                "Failed",
                "True",
                f.reason.as_deref().unwrap_or(""),
                f.message.as_deref().unwrap_or(""),
                now,
            ));
        } else if f.type_ == "SuccessCriteriaMet" {
            let conds = ctx.status().conditions.get_or_insert_with(Vec::new);
            if find_condition(conds, "SuccessCriteriaMet").is_none() {
                conds.push(f.clone());
                changed = true;
            }
            ctx.finished = Some(condition(
                "Complete",
                "True",
                f.reason.as_deref().unwrap_or(""),
                f.message.as_deref().unwrap_or(""),
                now,
            ));
        }
    }
    changed
}

/// An Indexed Job's next (at most `diff`) completion indexes to create: the
/// lowest not succeeded, active, (for onlyReplaceFailed) terminating or
/// failed; with a per-index backoff only those whose backoff is over.
/// `None` when all must wait (a requeue is set for the soonest).
fn indexes_to_create(
    ctx: &mut SyncCtx,
    diff: usize,
    per_index: bool,
    now: Timestamp,
) -> Option<Vec<i64>> {
    let mut taken = ctx
        .succeeded_indexes
        .with(ctx.active.iter().filter_map(|p| completion_index(p)));
    if only_replace_failed(&ctx.spec) {
        taken = taken.with(
            ctx.pods
                .iter()
                .filter(|p| is_terminating(p))
                .filter_map(|p| completion_index(p)),
        );
    }
    if let Some(f) = &ctx.failed_indexes {
        taken = taken.merge(f);
    }
    let pending = taken.first_missing(diff, ctx.completions());
    if !per_index {
        return Some(pending);
    }
    let mut now_ok = Vec::new();
    let mut min_left: Option<Duration> = None;
    for i in pending {
        let left = ctx.delayed.get(&i).map_or(Duration::ZERO, |p| {
            let failures =
                (indexes::failure_count(p) + indexes::ignored_failure_count(p) + 1) as u32;
            policy::finished_at(p)
                .map_or(Duration::ZERO, |t| policy::backoff_left(failures, t, now))
        });
        if left.is_zero() {
            now_ok.push(i);
        } else {
            min_left = Some(min_left.map_or(left, |m| m.min(left)));
        }
    }
    if now_ok.is_empty() {
        if let Some(l) = min_left {
            ctx.requeue(l);
        }
        return None;
    }
    Some(now_ok)
}

/// Finalizer removals asked for and not yet seen, by Job.
#[derive(Default)]
struct FinalizerExpectations(Mutex<HashMap<Key, HashSet<String>>>);

impl FinalizerExpectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, HashSet<String>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn expect(&self, key: &Key, uids: impl IntoIterator<Item = String>) {
        self.lock().entry(key.clone()).or_default().extend(uids);
    }
    fn observed(&self, uid: &str) {
        for set in self.lock().values_mut() {
            set.remove(uid);
        }
    }
    fn get(&self, key: &Key) -> HashSet<String> {
        self.lock().get(key).cloned().unwrap_or_default()
    }
    fn forget(&self, key: &Key) {
        self.lock().remove(key);
    }
}

/// The Job controller.
pub(crate) struct JobController {
    client: kube::Client,
    jobs: Store<Job>,
    pods: Store<Pod>,
    ctx: Context,
    /// Pods (namespace, name) whose tracking finalizer may be left over.
    orphans: Context,
    expectations: Expectations,
    finalizers: FinalizerExpectations,
    backoff: BackoffStore,
}

impl Reconciler for JobController {
    fn context(&self) -> &Context {
        &self.ctx
    }
    fn enqueue_all(&self) {
        self.ctx.add_all(&self.jobs);
    }
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        self.sync(key).await
    }
}

/// The Job controller's second queue: pods whose tracking finalizer may be
/// left over.
struct OrphanFinalizers(Arc<JobController>);

impl Reconciler for OrphanFinalizers {
    fn context(&self) -> &Context {
        &self.0.orphans
    }
    fn enqueue_all(&self) {}
    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        self.0.sync_orphan(key).await?;
        Ok(Action::await_change())
    }
}

fn is_job_ref(r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference) -> bool {
    r.kind == "Job" && r.api_version.starts_with("batch/")
}

impl JobController {
    /// Sets the controller up over the shared informers (spawn them after).
    pub(crate) fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut orphans = Context::new("job-orphans", cancel.clone());
        let mut ctx = Context::new("job", cancel);
        let jobs = ctx.watch::<Job>(informers);
        let pods = ctx.watch::<Pod>(informers);
        orphans.watch::<Job>(informers);
        orphans.watch::<Pod>(informers);
        let this = Arc::new(JobController {
            client: ctx.client(&client),
            jobs,
            pods,
            ctx,
            orphans,
            expectations: Expectations::new(),
            finalizers: FinalizerExpectations::default(),
            backoff: BackoffStore::default(),
        });
        let me = this.clone();
        informers
            .get::<Job>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(j) => me.ctx.add(key_of(j)),
                Change::Deleted(j) => {
                    me.ctx.add(key_of(j));
                    me.orphan_pods_of(j);
                }
                Change::Relisted => me.enqueue_all(),
            });
        let me = this.clone();
        informers
            .get::<Pod>()
            .on_change(&this.ctx, move |c| match c {
                Change::Applied(p) => me.pod_changed(p, false),
                Change::Deleted(p) => me.pod_changed(p, true),
                Change::Relisted => {
                    me.settle_finalizer_expectations();
                    me.enqueue_all();
                    for p in me.pods.state() {
                        if has_finalizer(&p) {
                            me.orphans.add(key_of(p.as_ref()));
                        }
                    }
                }
            });
        this
    }

    /// Runs the Job sync (`workers` at a time) and the orphan finalizer
    /// clean-up until cancelled.
    pub(crate) async fn run(self: Arc<Self>, workers: usize) {
        let orphans = Arc::new(OrphanFinalizers(self.clone()));
        futures::join!(controller::run(self, workers), controller::run(orphans, 1));
    }

    /// After a relist: the removals the cache now shows (or whose pods are
    /// gone) are no longer expected.
    fn settle_finalizer_expectations(&self) {
        let with: HashSet<String> = self
            .pods
            .state()
            .iter()
            .filter(|p| has_finalizer(p))
            .map(|p| uid(p))
            .collect();
        for set in self.finalizers.lock().values_mut() {
            set.retain(|u| with.contains(u));
        }
    }

    /// Queues `key` after the batch period, once however many pod changes
    /// arrive meanwhile.
    fn enqueue_batched(&self, key: Key) {
        self.ctx.add_after(key, SYNC_BATCH_PERIOD);
    }

    fn pod_changed(&self, p: &Pod, gone: bool) {
        let ns = p.metadata.namespace.as_deref().unwrap_or("");
        let name = p.metadata.name.as_deref().unwrap_or("");
        self.expectations.observe(ns, name, &uid(p), gone);
        if gone || !has_finalizer(p) {
            // Only once the cache agrees: during a relist the handlers see
            // the new list before the cache swaps to it, and a sync must
            // never see a pod's old finalizer without its expectation.
            let cached = self.pods.get(&ObjectRef::new(name).within(ns));
            let settled =
                cached.is_none_or(|c| c.metadata.uid != p.metadata.uid || !has_finalizer(&c));
            if settled {
                self.finalizers.observed(&uid(p));
            }
        }
        match podutil::controller_ref(&p.metadata) {
            Some(r) if is_job_ref(r) => {
                let key = (ns.to_string(), r.name.clone());
                let job = self.jobs.get(&ObjectRef::new(&r.name).within(ns));
                match job {
                    Some(j)
                        if j.metadata.uid.as_deref() == Some(r.uid.as_str())
                            && !is_finished(&j) =>
                    {
                        // A pod that finishes or goes: count it soon; others
                        // wait for the batch.
                        self.enqueue_batched(key);
                    }
                    _ => {
                        if has_finalizer(p) && !gone {
                            self.orphans.add((ns.to_string(), name.to_string()));
                        }
                    }
                }
            }
            Some(_) => {}
            None => {
                if gone {
                    return;
                }
                if has_finalizer(p) {
                    self.orphans.add((ns.to_string(), name.to_string()));
                }
                for j in self.jobs.state() {
                    if j.metadata.namespace.as_deref() == Some(ns)
                        && job_selector(&j).is_some_and(|s| s.matches(p.metadata.labels.as_ref()))
                    {
                        self.ctx.add(key_of(j.as_ref()));
                    }
                }
            }
        }
    }

    /// A Job went away: its pods' finalizers must not outlive it.
    fn orphan_pods_of(&self, job: &Job) {
        let ns = job.metadata.namespace.as_deref().unwrap_or("");
        for p in self.pods.state() {
            if p.metadata.namespace.as_deref() == Some(ns)
                && has_finalizer(&p)
                && podutil::controller_ref(&p.metadata)
                    .is_some_and(|r| Some(r.uid.as_str()) == job.metadata.uid.as_deref())
            {
                self.orphans.add(key_of(p.as_ref()));
            }
        }
    }

    /// Removes the tracking finalizer of a pod no running Job will count.
    async fn sync_orphan(&self, key: &Key) -> anyhow::Result<()> {
        let Some(p) = self.pods.get(&ObjectRef::new(&key.1).within(&key.0)) else {
            return Ok(());
        };
        if !has_finalizer(&p) {
            return Ok(());
        }
        if let Some(r) = podutil::controller_ref(&p.metadata) {
            if !is_job_ref(r) {
                return Ok(());
            }
            if let Some(j) = self.jobs.get(&ObjectRef::new(&r.name).within(&key.0)) {
                if j.metadata.uid.as_deref() == Some(r.uid.as_str()) && !is_finished(&j) {
                    return Ok(());
                }
            }
        }
        match self.remove_finalizer(&p).await {
            Ok(()) => Ok(()),
            Err(e) if api_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the tracking finalizer, guarded by the pod's resourceVersion
    /// so that no other finalizer is lost.
    async fn remove_finalizer(&self, p: &Pod) -> Result<(), kube::Error> {
        let rest: Vec<&String> = p
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != TRACKING_FINALIZER)
            .collect();
        let patch = json!({"metadata": {
            "finalizers": if rest.is_empty() { serde_json::Value::Null } else { json!(rest) },
            "resourceVersion": p.metadata.resource_version,
        }});
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            p.metadata.namespace.as_deref().unwrap_or(""),
        );
        api.patch(
            p.metadata.name.as_deref().unwrap_or(""),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(|_| ())
    }

    async fn sync(&self, key: &Key) -> anyhow::Result<Action> {
        let Some(cached) = self.jobs.get(&ObjectRef::new(&key.1).within(&key.0)) else {
            self.expectations.forget(key);
            self.finalizers.forget(key);
            self.backoff.remove(key);
            return Ok(Action::await_change());
        };
        if is_finished(&cached) {
            self.backoff.remove(key);
            return Ok(Action::await_change());
        }
        let Some(spec) = cached.spec.clone() else {
            return Ok(Action::await_change());
        };
        if !self.is_ours_to_sync(&cached, &spec) {
            return Ok(Action::await_change());
        }
        let (mut ctx, satisfied) = self.load(key, &cached, spec).await?;
        let now = Timestamp::now();
        self.count_pods(&mut ctx, now);
        decide_failure(&mut ctx, now);
        if is_indexed(&ctx.spec) {
            sync_indexes(&mut ctx, now);
        }
        let (active_n, suspend_changed, manage_err) = self.act(&mut ctx, satisfied, now).await;
        let (ready, terminating) = (ctx.ready, ctx.terminating);
        let st = ctx.status();
        let needs_update = suspend_changed
            || st.active.unwrap_or(0) != active_n
            || st.ready != Some(ready)
            || st.terminating != Some(terminating);
        st.active = Some(active_n);
        st.ready = Some(ready);
        st.terminating = Some(terminating);
        self.track(&mut ctx, needs_update)
            .await
            .map_err(|e| e.context("tracking status"))?;
        match manage_err {
            Some(e) => Err(e),
            None => Ok(ctx.next),
        }
    }

    /// Whether this controller syncs the Job: not managed by another
    /// controller, and a known completion mode (an UnknownCompletionMode
    /// event otherwise).
    fn is_ours_to_sync(&self, cached: &Job, spec: &JobSpec) -> bool {
        if spec
            .managed_by
            .as_deref()
            .is_some_and(|m| m != "kubernetes.io/job-controller")
        {
            return false;
        }
        if let Some(mode) = spec.completion_mode.as_deref() {
            if mode != "NonIndexed" && mode != "Indexed" {
                podutil::record_event(
                    &self.client,
                    COMPONENT,
                    cached,
                    "Warning",
                    "UnknownCompletionMode",
                    "Skipped Job sync because completion mode is unknown".into(),
                );
                return false;
            }
        }
        true
    }

    /// The pass's state: the Job, its claimed pods and the uncounted ones;
    /// also whether the creation/deletion expectations are satisfied.
    async fn load(
        &self,
        key: &Key,
        cached: &Job,
        spec: JobSpec,
    ) -> anyhow::Result<(SyncCtx, bool)> {
        let mut job = cached.clone();
        let status = job.status.get_or_insert_with(Default::default);
        let uncounted = status
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default);
        let uncounted_succeeded: HashSet<String> =
            uncounted.succeeded.iter().flatten().cloned().collect();
        let uncounted_failed: HashSet<String> =
            uncounted.failed.iter().flatten().cloned().collect();

        // The removals still expected, read before the pods: a removal seen
        // between the two reads then shows in the pods (no finalizer), and
        // one not yet seen is in the set. Read after, a pod could show its
        // old finalizer with its expectation already gone, and be counted
        // a second time.
        let expected_rm = self.finalizers.get(key);
        let in_ns: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(key.0.as_str()))
            .collect();
        let satisfied = self.expectations.satisfied(
            key,
            |n| in_ns.iter().any(|p| p.metadata.name.as_deref() == Some(n)),
            |u| {
                in_ns.iter().any(|p| {
                    p.metadata.uid.as_deref() == Some(u) && p.metadata.deletion_timestamp.is_none()
                })
            },
        );
        let pods = self.claim(&job, &spec, in_ns).await?;
        let active: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| podutil::is_active(p))
            .cloned()
            .collect();
        let ready = active.iter().filter(|p| podutil::is_ready(p)).count() as i32;
        let terminating = pods.iter().filter(|p| is_terminating(p)).count() as i32;
        let ctx = SyncCtx {
            key: key.clone(),
            job,
            spec,
            pods,
            active,
            ready,
            terminating,
            uncounted_succeeded,
            uncounted_failed,
            expected_rm,
            succeeded: 0,
            failed: 0,
            prev_succeeded_indexes: Intervals::default(),
            succeeded_indexes: Intervals::default(),
            failed_indexes: None,
            delayed: HashMap::new(),
            finished: None,
            backoff: BackoffRecord::default(),
            next: Action::await_change(),
        };
        Ok((ctx, satisfied))
    }

    /// The succeeded and failed counts (status, newly finished pods and
    /// uncounted ones), the start time of a running Job, and the backoff
    /// record after the newly finished pods.
    fn count_pods(&self, ctx: &mut SyncCtx, now: Timestamp) {
        let (prev_succeeded, prev_failed) = {
            let status = ctx.status();
            (status.succeeded.unwrap_or(0), status.failed.unwrap_or(0))
        };
        let (new_succeeded, new_failed) = new_finished_pods(ctx);
        let policy = ctx.spec.pod_failure_policy.as_ref();
        let counted_failures = new_failed
            .iter()
            .filter(|p| match_failure_policy(policy, p).counts)
            .count() as i32;
        ctx.succeeded =
            prev_succeeded + new_succeeded.len() as i32 + ctx.uncounted_succeeded.len() as i32;
        ctx.failed = prev_failed + counted_failures + ctx.uncounted_failed.len() as i32;
        let suspended = ctx.spec.suspend == Some(true);
        if ctx.status().start_time.is_none() && !suspended {
            ctx.status().start_time = Some(Time(now));
        }
        fn refs(v: &[Arc<Pod>]) -> Vec<&Pod> {
            v.iter().map(|p| p.as_ref()).collect()
        }
        ctx.backoff = self
            .backoff
            .get(&ctx.key)
            .after(&refs(&new_succeeded), &refs(&new_failed));
    }

    /// Acts on the decision: a finished Job loses its active pods; else
    /// pods are managed (when the expectations are satisfied), completion
    /// is checked and the Suspended condition kept. Returns the active
    /// count, whether the Suspended condition changed, and the error of
    /// managing pods.
    async fn act(
        &self,
        ctx: &mut SyncCtx,
        satisfied: bool,
        now: Timestamp,
    ) -> (i32, bool, Option<anyhow::Error>) {
        let mut active_n = ctx.active.len() as i32;
        let mut manage_err = None;
        if ctx.finished.is_some() {
            let victims = ctx.active.clone();
            let (deleted_ready, deleted, err) = self.delete_pods(ctx, &victims, false).await;
            if deleted != active_n || !satisfied {
                ctx.finished = None;
            }
            active_n -= deleted;
            ctx.terminating += deleted;
            ctx.ready -= deleted_ready;
            return (active_n, false, err);
        }
        let mut managed = false;
        if satisfied && ctx.job.metadata.deletion_timestamp.is_none() {
            match self.manage(ctx).await {
                Ok(n) => active_n = n,
                Err((n, e)) => {
                    active_n = n;
                    manage_err = Some(e);
                }
            }
            managed = true;
        }
        let complete = match ctx.spec.completions {
            None => ctx.succeeded > 0 && active_n == 0,
            Some(c) => ctx.succeeded >= c && active_n == 0,
        };
        let mut suspend_changed = false;
        if complete {
            ctx.finished = Some(condition(
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
        } else if managed {
            suspend_changed = self.sync_suspended_condition(ctx, now);
        }
        (active_n, suspend_changed, manage_err)
    }

    /// Sets the Suspended condition (True when suspended, False on resume,
    /// which also restarts the active deadline) with its event; returns
    /// whether it changed.
    fn sync_suspended_condition(&self, ctx: &mut SyncCtx, now: Timestamp) -> bool {
        let suspended = ctx.spec.suspend == Some(true);
        let conds = ctx.status().conditions.get_or_insert_with(Vec::new);
        if suspended {
            if ensure_condition(
                conds,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            ) {
                self.event(&ctx.job, "Normal", "Suspended", "Job suspended".into());
                return true;
            }
        } else if ensure_condition(
            conds,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        ) {
            self.event(&ctx.job, "Normal", "Resumed", "Job resumed".into());
            // The active deadline counts from the resumption.
            ctx.status().start_time = Some(Time(now));
            return true;
        }
        false
    }

    fn event(&self, job: &Job, type_: &str, reason: &str, message: String) {
        podutil::record_event(&self.client, COMPONENT, job, type_, reason, message);
    }

    /// The pods this Job manages: those it controls, and matching orphans
    /// it adopts (with the tracking finalizer).
    async fn claim(
        &self,
        job: &Job,
        spec: &JobSpec,
        pods: Vec<Arc<Pod>>,
    ) -> anyhow::Result<Vec<Arc<Pod>>> {
        let job_uid = job.metadata.uid.clone().unwrap_or_default();
        let selector = spec
            .selector
            .as_ref()
            .and_then(|ls| Selector::from_label_selector(Some(ls)).ok())
            .filter(|s| !s.is_empty());
        let mut claimed = Vec::new();
        let mut can_adopt = None;
        for p in pods {
            match podutil::controller_ref(&p.metadata) {
                Some(r) if r.uid == job_uid => {
                    let matches = selector
                        .as_ref()
                        .is_none_or(|sel| sel.matches(p.metadata.labels.as_ref()));
                    if matches || job.metadata.deletion_timestamp.is_some() {
                        claimed.push(p);
                    } else {
                        // No longer selected: released (its tracking
                        // finalizer then goes through the orphan path).
                        self.release(&p, &job_uid).await;
                    }
                }
                Some(_) => {}
                None => {
                    let Some(sel) = &selector else { continue };
                    if !sel.matches(p.metadata.labels.as_ref())
                        || p.metadata.deletion_timestamp.is_some()
                        || job.metadata.deletion_timestamp.is_some()
                    {
                        continue;
                    }
                    if can_adopt.is_none() {
                        let api: Api<Job> = Api::namespaced(
                            self.client.clone(),
                            job.metadata.namespace.as_deref().unwrap_or(""),
                        );
                        can_adopt = Some(
                            match api.get(job.metadata.name.as_deref().unwrap_or("")).await {
                                Ok(f) => {
                                    f.metadata.uid == job.metadata.uid
                                        && f.metadata.deletion_timestamp.is_none()
                                }
                                Err(_) => false,
                            },
                        );
                    }
                    if can_adopt != Some(true) {
                        continue;
                    }
                    let mut refs = p.metadata.owner_references.clone().unwrap_or_default();
                    refs.push(podutil::owner_ref_to(job));
                    let mut fins = p.metadata.finalizers.clone().unwrap_or_default();
                    if !fins.iter().any(|f| f == TRACKING_FINALIZER) {
                        fins.push(TRACKING_FINALIZER.into());
                    }
                    let patch = json!({"metadata": {
                        "ownerReferences": refs,
                        "finalizers": fins,
                        "resourceVersion": p.metadata.resource_version,
                    }});
                    let api: Api<Pod> = Api::namespaced(
                        self.client.clone(),
                        p.metadata.namespace.as_deref().unwrap_or(""),
                    );
                    match api
                        .patch(
                            p.metadata.name.as_deref().unwrap_or(""),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await
                    {
                        Ok(adopted) => claimed.push(Arc::new(adopted)),
                        Err(e) => tracing::debug!(error = %e, "adopting a pod"),
                    }
                }
            }
        }
        Ok(claimed)
    }

    /// Drops the Job's controller reference from a pod.
    async fn release(&self, p: &Pod, job_uid: &str) {
        let refs: Vec<_> = p
            .metadata
            .owner_references
            .iter()
            .flatten()
            .filter(|r| r.uid != job_uid)
            .cloned()
            .collect();
        let patch = json!({"metadata": {
            "ownerReferences": if refs.is_empty() { serde_json::Value::Null } else { json!(refs) },
            "resourceVersion": p.metadata.resource_version,
        }});
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            p.metadata.namespace.as_deref().unwrap_or(""),
        );
        if let Err(e) = api
            .patch(
                p.metadata.name.as_deref().unwrap_or(""),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            tracing::debug!(error = %e, "releasing a pod");
        }
    }

    /// Creates or deletes pods toward what the Job wants running now;
    /// returns the number of active pods (also on error).
    async fn manage(&self, ctx: &mut SyncCtx) -> Result<i32, (i32, anyhow::Error)> {
        let spec = ctx.spec.clone();
        let active = ctx.active.len() as i32;
        let parallelism = spec.parallelism.unwrap_or(1).max(0);
        if spec.suspend == Some(true) {
            let victims = pods_for_removal(&spec, &ctx.active, ctx.active.len());
            return self.remove_pods(ctx, &victims, active).await;
        }
        let want = match spec.completions {
            None => {
                if ctx.succeeded > 0 {
                    active
                } else {
                    parallelism
                }
            }
            Some(c) => (c - ctx.succeeded).min(parallelism).max(0),
        };
        let rm_at_least = (active - want).max(0) as usize;
        let mut victims = pods_for_removal(&spec, &ctx.active, rm_at_least);
        victims.truncate(MAX_POD_CREATE_DELETE_PER_SYNC);
        if !victims.is_empty() {
            return self.remove_pods(ctx, &victims, active).await;
        }
        let terminating = if only_replace_failed(&spec) {
            ctx.terminating
        } else {
            0
        };
        let mut diff = want - terminating - active;
        if diff <= 0 {
            return Ok(active);
        }
        let now = Timestamp::now();
        let per_index = per_index_limit(&spec).is_some();
        if !per_index {
            let left = ctx.backoff.remaining(now);
            if !left.is_zero() {
                ctx.requeue(left);
                return Ok(active);
            }
        }
        diff = diff.min(MAX_POD_CREATE_DELETE_PER_SYNC as i32);
        let indexes: Vec<Option<i64>> = if is_indexed(&spec) {
            let Some(pending) = indexes_to_create(ctx, diff as usize, per_index, now) else {
                return Ok(active);
            };
            pending.into_iter().map(Some).collect()
        } else {
            vec![None; diff as usize]
        };
        self.create_pods(ctx, &indexes, active).await
    }

    /// Deletes `victims` and updates the counters; returns the number of
    /// active pods left (also on error).
    async fn remove_pods(
        &self,
        ctx: &mut SyncCtx,
        victims: &[Arc<Pod>],
        mut active: i32,
    ) -> Result<i32, (i32, anyhow::Error)> {
        let (ready, removed, err) = self.delete_pods(ctx, victims, true).await;
        active -= removed;
        ctx.terminating += removed;
        ctx.ready -= ready;
        match err {
            Some(e) => Err((active, e)),
            None => Ok(active),
        }
    }

    /// Creates one pod per entry of `indexes` (the completion index, or
    /// `None` for a NonIndexed Job) in slow-start batches (1, 2, 4, ...),
    /// stopping at the first error; returns the number of active pods
    /// (also on error).
    async fn create_pods(
        &self,
        ctx: &SyncCtx,
        indexes: &[Option<i64>],
        mut active: i32,
    ) -> Result<i32, (i32, anyhow::Error)> {
        let templates: Vec<Pod> = indexes.iter().map(|i| self.pod_for(ctx, *i)).collect();
        self.expectations.expect_creations(&ctx.key, indexes.len());
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ctx.key.0);
        let pp = PostParams::default();
        let mut remaining = templates.as_slice();
        let mut batch = 1usize.min(remaining.len());
        let mut first_err = None;
        while batch > 0 {
            let (now_batch, rest) = remaining.split_at(batch);
            let results =
                futures::future::join_all(now_batch.iter().map(|p| api.create(&pp, p))).await;
            for r in results {
                match r {
                    Ok(created) => {
                        let name = created.metadata.name.clone().unwrap_or_default();
                        self.expectations
                            .creation_answered(&ctx.key, Some(name.clone()));
                        active += 1;
                        self.event(
                            &ctx.job,
                            "Normal",
                            "SuccessfulCreate",
                            format!("Created pod: {name}"),
                        );
                    }
                    Err(e) => {
                        self.expectations.creation_answered(&ctx.key, None);
                        self.event(
                            &ctx.job,
                            "Warning",
                            "FailedCreate",
                            format!("Error creating: {e}"),
                        );
                        first_err.get_or_insert(e);
                    }
                }
            }
            remaining = rest;
            if first_err.is_some() {
                for _ in remaining {
                    self.expectations.creation_answered(&ctx.key, None);
                }
                break;
            }
            batch = (batch * 2).min(remaining.len());
        }
        match first_err {
            Some(e) => Err((active, e.into())),
            None => Ok(active),
        }
    }

    /// A new pod for the Job (for `index` if Indexed).
    fn pod_for(&self, ctx: &SyncCtx, index: Option<i64>) -> Pod {
        let job_name = ctx.job.metadata.name.clone().unwrap_or_default();
        let t = &ctx.spec.template;
        let tm = t.metadata.clone().unwrap_or_default();
        let mut spec = t.spec.clone().unwrap_or_default();
        let mut pod = Pod::default();
        pod.metadata.labels = tm.labels;
        pod.metadata.annotations = tm.annotations;
        let mut fins = tm.finalizers.unwrap_or_default();
        if !fins.iter().any(|f| f == TRACKING_FINALIZER) {
            fins.push(TRACKING_FINALIZER.into());
        }
        pod.metadata.finalizers = Some(fins);
        pod.metadata.owner_references = Some(vec![podutil::owner_ref_to(&ctx.job)]);
        match index {
            None => pod.metadata.generate_name = Some(format!("{job_name}-")),
            Some(i) => {
                let env = EnvVar {
                    name: "JOB_COMPLETION_INDEX".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: None,
                            field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                        }),
                        ..Default::default()
                    }),
                };
                for c in spec
                    .containers
                    .iter_mut()
                    .chain(spec.init_containers.iter_mut().flatten())
                {
                    let envs = c.env.get_or_insert_with(Vec::new);
                    if !envs.iter().any(|e| e.name == env.name) {
                        envs.push(env.clone());
                    }
                }
                pod.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(COMPLETION_INDEX.into(), i.to_string());
                pod.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert(COMPLETION_INDEX.into(), i.to_string());
                spec.hostname = Some(format!("{job_name}-{i}"));
                pod.metadata.generate_name = Some(indexes::generate_name(&job_name, i));
                if per_index_limit(&ctx.spec).is_some() {
                    let (mut failures, mut ignored) = (0, 0);
                    if let Some(prev) = ctx.delayed.get(&i) {
                        failures = indexes::failure_count(prev);
                        ignored = indexes::ignored_failure_count(prev);
                        if match_failure_policy(ctx.spec.pod_failure_policy.as_ref(), prev).counts {
                            failures += 1;
                        } else {
                            ignored += 1;
                        }
                    }
                    let a = pod
                        .metadata
                        .annotations
                        .get_or_insert_with(Default::default);
                    a.insert(indexes::INDEX_FAILURE_COUNT.into(), failures.to_string());
                    if ignored > 0 {
                        a.insert(
                            indexes::INDEX_IGNORED_FAILURE_COUNT.into(),
                            ignored.to_string(),
                        );
                    }
                }
            }
        }
        pod.spec = Some(spec);
        pod
    }

    /// Deletes pods (after removing their tracking finalizer when
    /// `uncount`, as a Job that stays running does not count them);
    /// returns how many ready ones and how many in all went, and the first
    /// error.
    async fn delete_pods(
        &self,
        ctx: &SyncCtx,
        victims: &[Arc<Pod>],
        uncount: bool,
    ) -> (i32, i32, Option<anyhow::Error>) {
        if victims.is_empty() {
            return (0, 0, None);
        }
        if uncount {
            self.expectations.expect_deletions(
                &ctx.key,
                victims.iter().filter_map(|p| p.metadata.uid.clone()),
            );
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ctx.key.0);
        let results = futures::future::join_all(victims.iter().map(|p| {
            let api = api.clone();
            async move {
                if uncount && has_finalizer(p) {
                    if let Err(e) = self.remove_finalizer(p).await {
                        if api_code(&e) != Some(404) {
                            return Err(e);
                        }
                    }
                }
                let name = p.metadata.name.clone().unwrap_or_default();
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        self.event(
                            &ctx.job,
                            "Normal",
                            "SuccessfulDelete",
                            format!("Deleted pod: {name}"),
                        );
                        Ok(())
                    }
                    Err(e) if api_code(&e) == Some(404) => Ok(()),
                    Err(e) => {
                        self.event(
                            &ctx.job,
                            "Warning",
                            "FailedDelete",
                            format!("Error deleting: {e}"),
                        );
                        Err(e)
                    }
                }
            }
        }))
        .await;
        let (mut ready, mut removed, mut first_err) = (0, 0, None);
        for (r, p) in results.into_iter().zip(victims) {
            match r {
                Ok(()) => {
                    removed += 1;
                    if podutil::is_ready(p) {
                        ready += 1;
                    }
                }
                Err(e) => {
                    if uncount {
                        self.expectations.deletion_failed(&ctx.key, &uid(p));
                    }
                    first_err.get_or_insert(anyhow::Error::from(e));
                }
            }
        }
        (ready, removed, first_err)
    }

    /// Counts finished pods through `uncountedTerminatedPods`, removes
    /// their finalizers, and writes the status (with the terminal
    /// condition once nothing is left to count).
    async fn track(&self, ctx: &mut SyncCtx, mut needs_flush: bool) -> anyhow::Result<()> {
        let indexed = is_indexed(&ctx.spec);
        let mut pods = ctx.pods.clone();
        if indexed {
            pods.sort_by_key(|p| completion_index(p).unwrap_or(i64::MAX));
        }
        let mut with_finalizer: HashSet<String> = pods
            .iter()
            .filter(|p| has_finalizer(p) && !ctx.expected_rm.contains(&uid(p)))
            .map(|p| uid(p))
            .collect();
        if clean_uncounted(ctx.status(), &with_finalizer) {
            needs_flush = true;
        }
        let counted = self.count_finished_pods(ctx, &pods);
        needs_flush |= counted.needs_flush;
        if indexed && sync_indexes_status(ctx, counted.new_indexes) {
            needs_flush = true;
        }
        let now = Timestamp::now();
        if promote_interim_condition(ctx, now) {
            needs_flush = true;
        }
        // 1. Write the uncounted pods (and interim conditions) first.
        if needs_flush {
            self.write_status(ctx).await?;
            self.backoff.set(&ctx.key, ctx.backoff.clone());
            needs_flush = false;
        }
        // 2. Remove finalizers.
        let rm_err = self
            .remove_finalizers(ctx, &counted.to_remove, &mut with_finalizer)
            .await;
        // 3. Move the pods whose finalizer is gone to the counters.
        if clean_uncounted(ctx.status(), &with_finalizer) {
            needs_flush = true;
        }
        if let Some(e) = rm_err {
            if needs_flush {
                self.write_status(ctx).await?;
            }
            return Err(e);
        }
        let finished = !counted.reached_max && self.enact_finished(ctx, now);
        if finished || needs_flush {
            self.write_status(ctx).await?;
            if finished {
                self.record_finished(ctx);
            }
        }
        Ok(())
    }

    /// Walks the finished pods whose finalizer may go: adds them to
    /// `uncountedTerminatedPods` (or, for an Indexed Job, collects newly
    /// succeeded indexes), stopping at [`MAX_UNCOUNTED_PODS`].
    fn count_finished_pods(&self, ctx: &mut SyncCtx, pods: &[Arc<Pod>]) -> Counted {
        let indexed = is_indexed(&ctx.spec);
        let mut out = Counted {
            to_remove: Vec::new(),
            new_indexes: Vec::new(),
            reached_max: false,
            needs_flush: false,
        };
        let finished_as_failure = ctx
            .finished
            .as_ref()
            .is_some_and(|c| c.type_ != "SuccessCriteriaMet");
        for p in pods {
            let u = uid(p);
            if !has_finalizer(p) || ctx.expected_rm.contains(&u) {
                continue;
            }
            let failed = is_pod_failed(p, &ctx.spec);
            if !self.can_remove_finalizer(ctx, p, failed) {
                continue;
            }
            out.to_remove.push(p.clone());
            if podutil::phase(p) == "Succeeded" && !ctx.uncounted_failed.contains(&u) {
                if indexed {
                    if let Some(ix) = ctx.valid_index(p) {
                        if !ctx.prev_succeeded_indexes.has(ix) {
                            out.new_indexes.push(ix);
                            out.needs_flush = true;
                        }
                    }
                } else if !ctx.uncounted_succeeded.contains(&u) {
                    out.needs_flush = true;
                    ctx.uncounted_succeeded.insert(u.clone());
                    push_uncounted(ctx.status(), &u, true);
                }
            } else if failed || finished_as_failure {
                let in_range = !indexed || ctx.valid_index(p).is_some();
                if !ctx.uncounted_failed.contains(&u) && in_range {
                    let counts =
                        match_failure_policy(ctx.spec.pod_failure_policy.as_ref(), p).counts;
                    if counts {
                        out.needs_flush = true;
                        ctx.uncounted_failed.insert(u.clone());
                        push_uncounted(ctx.status(), &u, false);
                    }
                }
            }
            let st = ctx
                .job
                .status
                .as_ref()
                .and_then(|s| s.uncounted_terminated_pods.as_ref());
            let listed = st.map_or(0, |u| {
                u.succeeded.as_ref().map_or(0, Vec::len) + u.failed.as_ref().map_or(0, Vec::len)
            });
            if out.new_indexes.len() + listed >= MAX_UNCOUNTED_PODS {
                out.reached_max = true;
                break;
            }
        }
        out
    }

    /// Removes the finalizer of each pod in `to_remove` (a 404 counts as
    /// removed, dropping it from `with_finalizer`); returns the first
    /// other error.
    async fn remove_finalizers(
        &self,
        ctx: &SyncCtx,
        to_remove: &[Arc<Pod>],
        with_finalizer: &mut HashSet<String>,
    ) -> Option<anyhow::Error> {
        let mut rm_err = None;
        if to_remove.is_empty() {
            return rm_err;
        }
        self.finalizers
            .expect(&ctx.key, to_remove.iter().map(|p| uid(p)));
        let results =
            futures::future::join_all(to_remove.iter().map(|p| self.remove_finalizer(p))).await;
        for (r, p) in results.into_iter().zip(to_remove) {
            match r {
                Ok(()) => {
                    with_finalizer.remove(&uid(p));
                }
                Err(e) if api_code(&e) == Some(404) => {
                    with_finalizer.remove(&uid(p));
                }
                Err(e) => {
                    self.finalizers.observed(&uid(p));
                    rm_err.get_or_insert(anyhow::Error::from(e));
                }
            }
        }
        rm_err
    }

    fn can_remove_finalizer(&self, ctx: &SyncCtx, p: &Pod, failed: bool) -> bool {
        if ctx.job.metadata.deletion_timestamp.is_some()
            || ctx.finished.is_some()
            || podutil::phase(p) == "Succeeded"
        {
            return true;
        }
        if !failed {
            return false;
        }
        if per_index_limit(&ctx.spec).is_some() {
            if let Some(ix) = completion_index(p) {
                if ctx
                    .delayed
                    .get(&ix)
                    .is_some_and(|d| d.metadata.uid == p.metadata.uid)
                {
                    return false;
                }
            }
        }
        true
    }

    fn enact_finished(&self, ctx: &mut SyncCtx, now: Timestamp) -> bool {
        let Some(f) = ctx.finished.clone() else {
            return false;
        };
        if ctx.terminating > 0 {
            return false;
        }
        let st = ctx.status();
        if let Some(u) = &st.uncounted_terminated_pods {
            if u.succeeded.as_ref().is_some_and(|v| !v.is_empty())
                || u.failed.as_ref().is_some_and(|v| !v.is_empty())
            {
                return false;
            }
        }
        let conds = st.conditions.get_or_insert_with(Vec::new);
        ensure_condition(
            conds,
            &f.type_,
            &f.status,
            f.reason.as_deref().unwrap_or(""),
            f.message.as_deref().unwrap_or(""),
            now,
        );
        if f.type_ == "Complete" {
            st.completion_time =
                find_condition(conds, "Complete").and_then(|c| c.last_transition_time.clone());
        }
        true
    }

    fn record_finished(&self, ctx: &SyncCtx) {
        let Some(f) = &ctx.finished else { return };
        if f.type_ == "Complete" {
            let succeeded = ctx
                .job
                .status
                .as_ref()
                .and_then(|s| s.succeeded)
                .unwrap_or(0);
            if ctx.spec.completions.is_some_and(|c| succeeded > c) {
                self.event(
                    &ctx.job,
                    "Warning",
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached".into(),
                );
            }
            self.event(&ctx.job, "Normal", "Completed", "Job completed".into());
        } else {
            self.event(
                &ctx.job,
                "Warning",
                f.reason.as_deref().unwrap_or(""),
                f.message.clone().unwrap_or_default(),
            );
        }
    }

    /// Replaces the status (guarded by resourceVersion: a conflict means the
    /// sync saw stale data and runs again).
    async fn write_status(&self, ctx: &mut SyncCtx) -> anyhow::Result<()> {
        normalize(ctx.status());
        let api: Api<Job> = Api::namespaced(self.client.clone(), &ctx.key.0);
        let written = api
            .replace_status(&ctx.key.1, &PostParams::default(), &ctx.job)
            .await?;
        ctx.job.metadata.resource_version = written.metadata.resource_version;
        Ok(())
    }
}

/// Zero counters are left out, as Kubernetes writes them; the uncounted
/// lists are always there (possibly empty).
fn normalize(st: &mut k8s_openapi::api::batch::v1::JobStatus) {
    for f in [&mut st.active, &mut st.succeeded, &mut st.failed] {
        if *f == Some(0) {
            *f = None;
        }
    }
    let u = st
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    if u.succeeded.as_ref().is_some_and(Vec::is_empty) {
        u.succeeded = None;
    }
    if u.failed.as_ref().is_some_and(Vec::is_empty) {
        u.failed = None;
    }
}

fn push_uncounted(st: &mut k8s_openapi::api::batch::v1::JobStatus, uid: &str, succeeded: bool) {
    let u: &mut UncountedTerminatedPods = st
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    let list = if succeeded {
        &mut u.succeeded
    } else {
        &mut u.failed
    };
    list.get_or_insert_with(Vec::new).push(uid.to_string());
}

/// Moves the uncounted pods whose finalizer is gone into the counters;
/// returns whether anything moved.
fn clean_uncounted(
    st: &mut k8s_openapi::api::batch::v1::JobStatus,
    with_finalizer: &HashSet<String>,
) -> bool {
    let u = st
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    let mut changed = false;
    let mut moved = (0, 0);
    if let Some(s) = u.succeeded.as_mut() {
        let before = s.len();
        s.retain(|x| with_finalizer.contains(x));
        moved.0 = (before - s.len()) as i32;
    }
    if let Some(f) = u.failed.as_mut() {
        let before = f.len();
        f.retain(|x| with_finalizer.contains(x));
        moved.1 = (before - f.len()) as i32;
    }
    if moved.0 > 0 {
        st.succeeded = Some(st.succeeded.unwrap_or(0) + moved.0);
        changed = true;
    }
    if moved.1 > 0 {
        st.failed = Some(st.failed.unwrap_or(0) + moved.1);
        changed = true;
    }
    changed
}

/// Finished pods not yet counted: they still have the finalizer, are not
/// in the uncounted lists nor losing the finalizer, and (Indexed) have a
/// valid index.
fn new_finished_pods(ctx: &SyncCtx) -> (Vec<Arc<Pod>>, Vec<Arc<Pod>>) {
    let valid = |p: &Pod| {
        let u = uid(p);
        has_finalizer(p)
            && !ctx.expected_rm.contains(&u)
            && (!is_indexed(&ctx.spec) || ctx.valid_index(p).is_some())
    };
    let succeeded = ctx
        .pods
        .iter()
        .filter(|p| {
            valid(p)
                && !ctx.uncounted_succeeded.contains(&uid(p))
                && podutil::phase(p) == "Succeeded"
        })
        .cloned()
        .collect();
    let failed = ctx
        .pods
        .iter()
        .filter(|p| {
            valid(p) && !ctx.uncounted_failed.contains(&uid(p)) && is_pod_failed(p, &ctx.spec)
        })
        .cloned()
        .collect();
    (succeeded, failed)
}

/// Whether a failed pod fails its index: a FailIndex rule, or a counted
/// failure beyond backoffLimitPerIndex.
fn is_index_failed(spec: &JobSpec, p: &Pod, limit: i32) -> bool {
    if !is_pod_failed(p, spec) {
        return false;
    }
    let v = match_failure_policy(spec.pod_failure_policy.as_ref(), p);
    if v.action.as_deref() == Some("FailIndex") {
        return true;
    }
    v.counts && indexes::failure_count(p) >= limit
}

/// Per index not succeeded, failed nor running, the latest failed pod.
fn delayed_per_index(ctx: &SyncCtx) -> HashMap<i64, Arc<Pod>> {
    let active: HashSet<i64> = ctx
        .active
        .iter()
        .filter_map(|p| completion_index(p))
        .collect();
    let mut out: HashMap<i64, Arc<Pod>> = HashMap::new();
    for p in &ctx.pods {
        if !has_finalizer(p) || ctx.expected_rm.contains(&uid(p)) || !is_pod_failed(p, &ctx.spec) {
            continue;
        }
        let Some(ix) = ctx.valid_index(p) else {
            continue;
        };
        if ctx.succeeded_indexes.has(ix)
            || ctx.failed_indexes.as_ref().is_some_and(|f| f.has(ix))
            || active.contains(&ix)
        {
            continue;
        }
        let abs = |q: &Pod| indexes::failure_count(q) + indexes::ignored_failure_count(q);
        match out.get(&ix) {
            Some(last)
                if abs(last) > abs(p) || policy::finished_at(p) < policy::finished_at(last) => {}
            _ => {
                out.insert(ix, p.clone());
            }
        }
    }
    out
}

/// Active pods to delete: for Indexed Jobs first those with no, a bad or a
/// repeated index, then by Kubernetes' deletion order.
fn pods_for_removal(spec: &JobSpec, active: &[Arc<Pod>], at_least: usize) -> Vec<Arc<Pod>> {
    let now = Timestamp::now();
    let order = |a: &Arc<Pod>, b: &Arc<Pod>| podutil::deletion_order((a, 0), (b, 0), now);
    let mut rm: Vec<Arc<Pod>> = Vec::new();
    let mut left: Vec<Arc<Pod>> = Vec::new();
    if is_indexed(spec) {
        let completions = i64::from(spec.completions.unwrap_or(0));
        let mut groups: HashMap<Option<i64>, Vec<Arc<Pod>>> = HashMap::new();
        for p in active {
            groups
                .entry(completion_index(p))
                .or_default()
                .push(p.clone());
        }
        for (ix, mut group) in groups {
            match ix {
                Some(i) if i < completions => {
                    group.sort_by(order);
                    if let Some(keep) = group.pop() {
                        left.push(keep);
                    }
                    rm.extend(group);
                }
                _ => rm.extend(group),
            }
        }
    } else {
        left = active.to_vec();
    }
    if rm.len() < at_least {
        left.sort_by(order);
        let n = at_least - rm.len();
        rm.extend(left.into_iter().take(n));
    }
    rm
}

/// For restartPolicy OnFailure: whether the running pods' restarts reach
/// the back-off limit.
fn past_backoff_limit_on_failure(spec: &JobSpec, pods: &[Arc<Pod>]) -> bool {
    let policy = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return false;
    }
    let restarts: i32 = pods
        .iter()
        .filter(|p| matches!(podutil::phase(p), "Running" | "Pending"))
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum();
    let limit = spec.backoff_limit.unwrap_or(6);
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// With activeDeadlineSeconds, how long the Job may still run (zero: past
/// it); `None` without a deadline or while suspended.
fn deadline_left(
    spec: &JobSpec,
    status: Option<&k8s_openapi::api::batch::v1::JobStatus>,
    now: Timestamp,
) -> Option<Duration> {
    let secs = spec.active_deadline_seconds?;
    if spec.suspend == Some(true) {
        return None;
    }
    let start = status?.start_time.as_ref()?.0;
    let end = start + jiff::SignedDuration::from_secs(secs);
    let left = end.duration_since(now);
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// The Job's pod selector (`None` if missing or unusable).
pub(crate) fn job_selector(job: &Job) -> Option<Selector> {
    job.spec
        .as_ref()?
        .selector
        .as_ref()
        .and_then(|ls| Selector::from_label_selector(Some(ls)).ok())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
