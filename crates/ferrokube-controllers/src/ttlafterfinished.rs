//! The TTL-after-finished controller, as Kubernetes'
//! `pkg/controller/ttlafterfinished`: a Job that finished (Complete or
//! Failed) and sets `ttlSecondsAfterFinished` is deleted that many seconds
//! after the finishing condition's transition, with foreground propagation
//! so its pods go first. The Job is read afresh before the deletion, which
//! is made conditional on the resourceVersion read, so a Job changed
//! meanwhile (say, its TTL raised) is looked at again instead.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio_util::sync::CancellationToken;

use crate::controller::{Action, Context, Reconciler};
use crate::job::finished_condition;
use crate::podutil::api_code;
use crate::watchqueue::{Informers, Key};

/// When a finished Job with a TTL expires (`None`: it does not).
pub(crate) fn expires_at(job: &Job) -> Option<Timestamp> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let (_, cond) = finished_condition(job)?;
    let finished = cond.last_transition_time.as_ref()?.0;
    Some(finished + jiff::SignedDuration::from_secs(i64::from(ttl)))
}

/// How long until `at`, from `now` (zero if past).
fn until(at: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// The controller.
pub(crate) struct TtlAfterFinishedController {
    client: kube::Client,
    jobs: Store<Job>,
    ctx: Context,
}

impl Reconciler for TtlAfterFinishedController {
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

impl TtlAfterFinishedController {
    pub(crate) fn new(
        client: kube::Client,
        informers: &mut Informers,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new("ttl-after-finished", cancel);
        let jobs: Store<Job> = ctx.watch(informers);
        let this = Arc::new(TtlAfterFinishedController {
            client: ctx.client(&client),
            jobs,
            ctx,
        });
        informers.get::<Job>().queue_keys(&this);
        this
    }

    async fn sync(&self, key: &Key) -> anyhow::Result<Action> {
        let Some(cached) = self.jobs.get(&ObjectRef::new(&key.1).within(&key.0)) else {
            return Ok(Action::await_change());
        };
        let Some(at) = expires_at(&cached) else {
            return Ok(Action::await_change());
        };
        let left = until(at, Timestamp::now());
        if !left.is_zero() {
            return Ok(Action::requeue(left));
        }
        // Read it again: the cache may be behind (a changed TTL).
        let api: Api<Job> = Api::namespaced(self.client.clone(), &key.0);
        let fresh = match api.get(&key.1).await {
            Ok(j) => j,
            Err(e) if api_code(&e) == Some(404) => return Ok(Action::await_change()),
            Err(e) => return Err(e.into()),
        };
        let Some(at) = expires_at(&fresh) else {
            return Ok(Action::await_change());
        };
        let left = until(at, Timestamp::now());
        if !left.is_zero() {
            return Ok(Action::requeue(left));
        }
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(Preconditions {
                uid: None,
                resource_version: fresh.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        tracing::debug!(ns = %key.0, name = %key.1, "deleting a finished job past its TTL");
        match api.delete(&key.1, &dp).await {
            Ok(_) => Ok(Action::await_change()),
            Err(e) if api_code(&e) == Some(404) => Ok(Action::await_change()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_finished_jobs_with_a_ttl_expire() {
        let j = |spec: serde_json::Value, conds: serde_json::Value| -> Job {
            serde_json::from_value(
                json!({"metadata": {"name": "j"}, "spec": spec, "status": {"conditions": conds}}),
            )
            .expect("job")
        };
        let template = json!({"template": {}, "ttlSecondsAfterFinished": 5});
        let done = json!([{"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
        let at = expires_at(&j(template.clone(), done.clone())).expect("expires");
        assert_eq!(at.to_string(), "2026-01-01T00:00:05Z");
        let failed = json!([{"type": "Failed", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
        assert!(expires_at(&j(template.clone(), failed)).is_some());
        assert!(expires_at(&j(template, json!([]))).is_none());
        assert!(expires_at(&j(json!({"template": {}}), done)).is_none());
    }
}
