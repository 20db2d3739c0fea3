//! One shape for every controller, after kube-rs' `Controller`.
//!
//! A controller is a [`Reconciler`]: a reconcile function from an object
//! key (and the controller's own state, its context) to
//! `Result<`[`Action`]`>`, where the action says when to look at the key
//! again, plus an error policy saying when to retry a key whose reconcile
//! failed. [`run`] is the one runner: it waits for the controller's caches,
//! queues every object, then hands keys from the controller's [`Queue`] to
//! a few workers, schedules what each reconcile asks for, backs off per key
//! on errors and counts every reconcile in the controller's metrics.
//!
//! The runner's parts (queue, counters, cancellation, the caches waited
//! for) live in a [`Context`] the controller holds and hands out with
//! [`Reconciler::context`]. Controllers that make a whole pass over their
//! caches (garbage collection, pod GC, node lifecycle, ...) fit the same
//! shape with a single key, [`pass_key`], that any change queues (after a
//! short debounce) and each pass requeues after its period.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::reflector::Store;
use kube::Resource;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::metrics::{self, ControllerMetrics};
use crate::watchqueue::{Informers, Key, Queue, Ready};

/// What a reconcile asks for: when to look at its key again (besides when
/// a watched change queues it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    /// `None`: only when something changes.
    requeue_after: Option<Duration>,
}

impl Action {
    /// Look again after `after` (unless a change queues the key sooner).
    pub fn requeue(after: Duration) -> Self {
        Action {
            requeue_after: Some(after),
        }
    }

    /// Look again only when a watched change queues the key.
    pub fn await_change() -> Self {
        Action {
            requeue_after: None,
        }
    }

    /// The sooner of the two requeues (a requeue beats waiting for a change).
    pub fn sooner(self, other: Action) -> Action {
        match (self.requeue_after, other.requeue_after) {
            (Some(a), Some(b)) => Action::requeue(a.min(b)),
            (Some(d), None) | (None, Some(d)) => Action::requeue(d),
            (None, None) => Action::await_change(),
        }
    }

    /// When to look again (`None`: on a change only).
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

impl From<Option<Duration>> for Action {
    /// `Some(d)`: requeue after `d`; `None`: await a change.
    fn from(after: Option<Duration>) -> Self {
        Action {
            requeue_after: after,
        }
    }
}

/// The key of a controller that makes whole passes: every change queues
/// it, each pass requeues it after the controller's period.
pub fn pass_key() -> Key {
    (String::new(), String::new())
}

/// How long a whole-pass controller waits after a change for more to
/// arrive, so that a burst of changes costs one pass.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(30);

/// The parts the runner owns for one controller: its work queue, its
/// counters, its cancellation and the caches that must be full before the
/// first reconcile.
pub struct Context {
    name: &'static str,
    queue: Queue,
    metrics: Arc<ControllerMetrics>,
    cancel: CancellationToken,
    ready: Vec<Ready>,
    /// How long to wait for the caches before working anyway (`None`: as
    /// long as it takes).
    sync_timeout: Option<Duration>,
}

impl Context {
    /// The context of the controller `name` (its metrics and log name),
    /// running until `cancel`.
    pub fn new(name: &'static str, cancel: CancellationToken) -> Self {
        Context {
            name,
            queue: Queue::new(),
            metrics: metrics::controller(name),
            cancel,
            ready: Vec::new(),
            sync_timeout: None,
        }
    }

    /// Works after `timeout` even if a cache has not had its first list
    /// (for the cluster controllers, which look at whatever there is).
    pub fn sync_within(mut self, timeout: Duration) -> Self {
        self.sync_timeout = Some(timeout);
        self
    }

    /// The cache of the shared informer of `K` over every namespace; the
    /// runner waits for its first list.
    pub fn watch<K>(&mut self, informers: &mut Informers) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync,
        K: 'static,
    {
        let (store, ready) = informers.cache::<K>();
        self.ready.push(ready);
        store
    }

    /// Makes the runner wait for `ready` too (a scoped informer's).
    pub fn wait_for(&mut self, ready: Ready) {
        self.ready.push(ready);
    }

    /// A client whose requests count as this controller's.
    pub fn client(&self, client: &kube::Client) -> kube::Client {
        metrics::counting_client(client, self.name)
    }

    /// The controller's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The controller's work queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The controller's counters.
    pub fn metrics(&self) -> &Arc<ControllerMetrics> {
        &self.metrics
    }

    /// Cancelled when the controller is to stop.
    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Queues `key` now.
    pub fn add(&self, key: Key) {
        self.queue.add(key);
    }

    /// Queues `key` after `delay` (the sooner wins if it is already
    /// scheduled).
    pub fn add_after(&self, key: Key, delay: Duration) {
        self.queue.add_after(key, delay, &self.cancel);
    }

    /// A callback that queues the whole-pass key now (for watches that
    /// are not informers).
    pub(crate) fn pass_trigger(&self) -> impl Fn() + Send + Sync + 'static {
        let queue = self.queue.clone();
        move || queue.add(pass_key())
    }

    /// Queues the key of every object in `store`.
    pub fn add_all<K>(&self, store: &Store<K>)
    where
        K: Resource + Clone + 'static,
        K::DynamicType: Eq + Hash + Clone,
    {
        self.queue.add_all(store);
    }

    /// Waits until every cache is full (or the timeout passes); false if
    /// cancelled first.
    async fn synced(&self) -> bool {
        for r in &self.ready {
            let wait = async {
                match self.sync_timeout {
                    Some(t) => {
                        let _ = tokio::time::timeout(t, r.wait()).await;
                    }
                    None => r.wait().await,
                }
            };
            // The informers stop at cancellation, possibly before they
            // are ready: waiting for them must end then too.
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                _ = wait => {}
            }
        }
        true
    }
}

/// A controller: what [`run`] drives.
pub trait Reconciler: Send + Sync + 'static {
    /// The runner's parts for this controller.
    fn context(&self) -> &Context;

    /// Queues every object the controller is responsible for (at start and
    /// after a relist). By default: the whole-pass key.
    fn enqueue_all(&self) {
        self.context().add(pass_key());
    }

    /// Makes one step toward what `key`'s object asks for, and says when
    /// to look again.
    fn reconcile(&self, key: &Key) -> impl Future<Output = anyhow::Result<Action>> + Send;

    /// When to retry `key` after its reconcile failed with `error` for the
    /// `failures`th time in a row. By default: back off per key, 5 ms
    /// doubling up to 60 s.
    fn error_policy(&self, key: &Key, error: &anyhow::Error, failures: u32) -> Action {
        let delay = Duration::from_millis(5)
            .saturating_mul(1u32 << failures.min(14))
            .min(Duration::from_secs(60));
        tracing::debug!(
            controller = self.context().name(),
            ns = %key.0,
            name = %key.1,
            error = format!("{error:#}"),
            retry_in = ?delay,
            "reconcile failed"
        );
        Action::requeue(delay)
    }
}

/// Runs `c` until it is cancelled: once its caches are ready, queues every
/// object, then runs `workers` reconciles at a time (never two of the same
/// key), counting each, requeueing as each asks and backing off per key on
/// errors.
pub async fn run<C: Reconciler>(c: Arc<C>, workers: usize) {
    if !c.context().synced().await {
        return;
    }
    c.enqueue_all();
    let tasks: Vec<_> = (0..workers.max(1))
        .map(|_| tokio::spawn(work(c.clone())))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// One worker: reconciles keys until cancelled.
async fn work<C: Reconciler>(c: Arc<C>) {
    let ctx = c.context();
    while let Some(key) = ctx.queue.next(&ctx.cancel).await {
        let start = Instant::now();
        let res = c.reconcile(&key).await;
        ctx.metrics.reconciled(start.elapsed(), res.is_ok());
        ctx.queue.done(&key);
        let action = match res {
            Ok(action) => {
                ctx.queue.forget(&key);
                action
            }
            Err(e) => {
                let failures = ctx.queue.failed(&key);
                c.error_policy(&key, &e, failures)
            }
        };
        if let Some(after) = action.requeue_after() {
            ctx.add_after(key, after);
        }
    }
}

/// Runs one controller over informers of its own: `setup` registers it on
/// them and gives the controller; the informers start after and stop when
/// it returns (at `cancel`).
pub async fn run_standalone<C, S>(client: kube::Client, workers: usize, setup: S)
where
    C: Reconciler,
    S: FnOnce(&mut Informers) -> Arc<C>,
{
    let mut informers = Informers::new(client);
    let c = setup(&mut informers);
    let watching = c.context().cancel().child_token();
    let watches = informers.spawn(&watching);
    run(c, workers).await;
    watching.cancel();
    for w in watches {
        let _ = w.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sooner_requeue_wins() {
        let s = Duration::from_secs;
        assert_eq!(
            Action::requeue(s(5)).sooner(Action::requeue(s(2))),
            Action::requeue(s(2))
        );
        assert_eq!(
            Action::await_change().sooner(Action::requeue(s(3))),
            Action::requeue(s(3))
        );
        assert_eq!(
            Action::await_change().sooner(Action::await_change()),
            Action::await_change()
        );
    }
}
