//! The HorizontalPodAutoscaler controller (Kubernetes'
//! `pkg/controller/podautoscaler`), as the service account
//! `horizontal-pod-autoscaler`.
//!
//! Every HPA syncs every `--horizontal-pod-autoscaler-sync-period`; a
//! change to an HPA queues it after the same period, as Kubernetes' fixed
//! interval rate limiter does (a sync already due sooner wins). A sync
//! reads the target's `/scale` (any kind that serves one, found through
//! discovery: [`scale`]), the target's pods from the shared pod cache and
//! their PodMetrics from `metrics.k8s.io/v1beta1` through the API
//! ([`metrics`]), works out the replicas ([`calculator`]) and normalizes
//! them ([`normalize`]), scales, and writes the status with Kubernetes'
//! conditions and Events ([`sync`], [`events`]). Pods, Object and External
//! metrics fail as Kubernetes' do where no custom or external metrics API
//! is served.

mod calculator;
pub mod clock;
mod events;
mod metrics;
mod normalize;
mod scale;
mod sync;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use ferrokube_api::labels::Selector;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler as Hpa,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use tokio_util::sync::CancellationToken;

use crate::controller::{Action, Context, Reconciler};
use crate::watchqueue::{key_of, Change, Informers, Key};

pub use sync::HpaConfig;

/// The controller's service account (Kubernetes').
pub const SERVICE_ACCOUNT: &str = "horizontal-pod-autoscaler";

/// Kubernetes' `--concurrent-horizontal-pod-autoscaler-syncs` default.
const WORKERS: usize = 5;

/// What a sync reads and writes through the API and the caches.
struct ApiIo {
    scales: scale::Scales,
    metrics: metrics::ApiMetrics,
    pods: Store<Pod>,
    recorder: events::Recorder,
    client: kube::Client,
}

impl sync::Io for ApiIo {
    async fn get_scale(
        &self,
        ns: &str,
        target: &CrossVersionObjectReference,
    ) -> Result<sync::ScaleInfo, sync::ScaleError> {
        self.scales.get(ns, target).await
    }

    async fn update_scale(&self, scale: &sync::ScaleInfo, replicas: i32) -> Result<(), String> {
        self.scales.update(scale, replicas).await
    }

    async fn pod_metrics(
        &self,
        ns: &str,
        selector: &str,
    ) -> Result<Vec<metrics::PodMetricsItem>, String> {
        use metrics::PodMetricsSource;
        self.metrics.list(ns, selector).await
    }

    fn pods(&self, ns: &str, selector: &Selector) -> Vec<Arc<Pod>> {
        self.pods
            .state()
            .into_iter()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(ns)
                    && selector.matches(p.metadata.labels.as_ref())
            })
            .collect()
    }

    fn event(&self, hpa: &Hpa, type_: &str, reason: &str, message: String) {
        self.recorder.record(hpa, type_, reason, message);
    }

    async fn update_status(&self, hpa: &Hpa) -> Result<(), String> {
        let ns = hpa.metadata.namespace.as_deref().unwrap_or_default();
        let name = hpa.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Hpa> = Api::namespaced(self.client.clone(), ns);
        api.replace_status(name, &PostParams::default(), hpa)
            .await
            .map(|_| ())
            .map_err(|e| crate::podutil::error_message(&e))
    }
}

/// The controller: the HPA cache, the autoscaler and its I/O.
pub struct HorizontalController {
    ctx: Context,
    hpas: Store<Hpa>,
    autoscaler: sync::Autoscaler,
    io: ApiIo,
}

impl HorizontalController {
    /// Registers the controller on `informers` (HPAs and the shared pod
    /// cache); it writes with `client`.
    pub fn new(
        client: kube::Client,
        informers: &mut Informers,
        config: HpaConfig,
        clock: Arc<dyn clock::Clock>,
        cancel: CancellationToken,
    ) -> Arc<Self> {
        let mut ctx = Context::new("horizontal-pod-autoscaler", cancel);
        let client = ctx.client(&client);
        let hpas = ctx.watch::<Hpa>(informers);
        let pods = ctx.watch::<Pod>(informers);
        let c = Arc::new(HorizontalController {
            hpas,
            autoscaler: sync::Autoscaler::new(config, clock),
            io: ApiIo {
                scales: scale::Scales::new(client.clone()),
                metrics: metrics::ApiMetrics::new(client.clone()),
                pods,
                recorder: events::Recorder::new(client.clone()),
                client,
            },
            ctx,
        });
        let me = c.clone();
        informers
            .get::<Hpa>()
            .on_change(&c.ctx, move |ch| match ch {
                Change::Applied(h) => me.enqueue(key_of(h)),
                Change::Deleted(h) => {
                    let (ns, name) = key_of(h);
                    me.autoscaler.forget(&ns, &name);
                }
                Change::Relisted => me.enqueue_all(),
            });
        c
    }

    /// `enqueueHPA`: the HPA syncs after the sync period (sooner if it is
    /// already due) and takes part in the selector check.
    fn enqueue(&self, key: Key) {
        self.autoscaler.seen(&key.0, &key.1);
        let period = self.autoscaler.config().sync_period;
        self.ctx.add_after(key, period);
    }
}

impl Reconciler for HorizontalController {
    fn context(&self) -> &Context {
        &self.ctx
    }

    fn enqueue_all(&self) {
        for h in self.hpas.state() {
            self.enqueue(key_of(h.as_ref()));
        }
    }

    async fn reconcile(&self, key: &Key) -> anyhow::Result<Action> {
        let period = self.autoscaler.config().sync_period;
        let Some(hpa) = self.hpas.get(&ObjectRef::new(&key.1).within(&key.0)) else {
            tracing::info!(hpa = %format!("{}/{}", key.0, key.1), "horizontal pod autoscaler has been deleted");
            self.autoscaler.forget(&key.0, &key.1);
            return Ok(Action::await_change());
        };
        if let Err(e) = self.autoscaler.reconcile(&self.io, &hpa).await {
            tracing::debug!(hpa = %format!("{}/{}", key.0, key.1), error = %e, "sync failed");
        }
        Ok(Action::requeue(period))
    }

    fn error_policy(&self, _key: &Key, _error: &anyhow::Error, _failures: u32) -> Action {
        Action::requeue(self.autoscaler.config().sync_period)
    }
}

/// Starts the controller on `informers`.
pub fn start(
    informers: &mut Informers,
    client: kube::Client,
    config: HpaConfig,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let c = HorizontalController::new(
        client,
        informers,
        config,
        Arc::new(clock::SystemClock),
        cancel,
    );
    tokio::spawn(crate::controller::run(c, WORKERS))
}
