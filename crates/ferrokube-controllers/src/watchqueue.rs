//! Informers and a work queue for the controllers.
//!
//! An [`Informer`] is a kube-runtime reflector (a watched, cached copy of one
//! kind, `managedFields` stripped) whose changes are handed to every
//! registered handler; [`Informers`] hands out one per kind (and scope), so
//! one pod watch serves every controller in the process. A [`Queue`] holds
//! object keys to reconcile, client-go style: a key waiting is queued once
//! however often it is added, and a key being reconciled is not handed to a
//! second worker until the first is done (then it runs again if it was
//! added meanwhile); a key asked for later is scheduled once, the soonest
//! time winning, and adding it now drops the later time.
//! [`crate::controller::run`] drives a controller's queue.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::controller::{pass_key, Context, Reconciler, DEBOUNCE};

/// What an informer saw happen to one object.
pub enum Change<'a, K> {
    /// Added or modified (also: listed again after a watch restart).
    Applied(&'a K),
    /// Deleted (as last seen).
    Deleted(&'a K),
    /// A (re)list finished: the cache now holds exactly what is; every
    /// primary object should be looked at again.
    Relisted,
}

type Handler<K> = Box<dyn Fn(Change<'_, K>) + Send + Sync>;

/// A watched cache of one kind plus the handlers told of its changes.
pub struct Informer<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    api: Api<K>,
    config: watcher::Config,
    store: Store<K>,
    writer: Option<reflector::store::Writer<K>>,
    handlers: Vec<Handler<K>>,
    ready: tokio::sync::watch::Sender<bool>,
}

/// Tells when an informer's cache first holds a complete list. (Unlike
/// kube-runtime's `Store::wait_until_ready`, any number of tasks may wait.)
#[derive(Clone)]
pub struct Ready(tokio::sync::watch::Receiver<bool>);

impl Ready {
    /// Waits until the first list is in the cache.
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|r| *r).await;
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// An informer over every namespace.
    pub fn new(client: kube::Client) -> Self {
        Informer::with(Api::all(client), watcher::Config::default())
    }

    /// An informer over what `api` reaches, filtered by `config`.
    pub fn with(api: Api<K>, config: watcher::Config) -> Self {
        let (store, writer) = reflector::store();
        Informer {
            api,
            config,
            store,
            writer: Some(writer),
            handlers: Vec::new(),
            ready: tokio::sync::watch::channel(false).0,
        }
    }

    /// The cache (empty until the first list completes).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// When the cache first holds a complete list.
    pub fn ready(&self) -> Ready {
        Ready(self.ready.subscribe())
    }

    /// Registers a handler of the controller `ctx` (each change handed to
    /// it counts as one of its events); must be called before
    /// [`Informer::spawn`].
    pub fn on_change(&mut self, ctx: &Context, f: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        let by = ctx.metrics().clone();
        self.handlers.push(Box::new(move |c| {
            if !matches!(c, Change::Relisted) {
                by.event();
            }
            f(c)
        }));
    }

    /// Registers a handler that queues the whole-pass key of `ctx` (after
    /// a short debounce) on every change, and returns the cache; the runner
    /// waits for its first list.
    pub fn pass_on_change(&mut self, ctx: &mut Context) -> Store<K> {
        ctx.wait_for(self.ready());
        let queue = ctx.queue().clone();
        let cancel = ctx.cancel().clone();
        self.on_change(ctx, move |_| queue.add_after(pass_key(), DEBOUNCE, &cancel));
        self.store()
    }

    /// Registers the handler of a controller whose keys are the objects of
    /// this kind: each change queues its key, a relist queues them all.
    pub fn queue_keys<C: Reconciler>(&mut self, c: &Arc<C>) {
        let me = c.clone();
        self.on_change(c.context(), move |ch| match ch {
            Change::Applied(o) | Change::Deleted(o) => me.context().add(key_of(o)),
            Change::Relisted => me.enqueue_all(),
        });
    }

    /// Starts watching until `cancel`.
    pub fn spawn(mut self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let writer = self.writer.take();
        let api = self.api.clone();
        let config = self.config.clone();
        let handlers = std::mem::take(&mut self.handlers);
        let ready = self.ready.clone();
        tokio::spawn(async move {
            let Some(writer) = writer else { return };
            // Nothing here reads field ownership; it is often the bulk of
            // an object (as Kubernetes' informers strip it with a transform).
            let stream = reflector::reflector(
                writer,
                watcher(api, config)
                    .default_backoff()
                    .modify(|o: &mut K| o.meta_mut().managed_fields = None),
            );
            let mut stream = std::pin::pin!(stream);
            loop {
                let ev = tokio::select! {
                    _ = cancel.cancelled() => return,
                    ev = stream.next() => ev,
                };
                match ev {
                    None => return,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, kind = %K::kind(&()), "watch error")
                    }
                    Some(Ok(ev)) => {
                        if matches!(ev, watcher::Event::InitDone) {
                            ready.send_replace(true);
                        }
                        for h in &handlers {
                            match &ev {
                                watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                                    h(Change::Applied(o))
                                }
                                watcher::Event::Delete(o) => h(Change::Deleted(o)),
                                watcher::Event::InitDone => h(Change::Relisted),
                                watcher::Event::Init => {}
                            }
                        }
                    }
                }
            }
        })
    }
}

/// An [`Informer`] of any kind, for [`Informers`] to hold and start.
trait AnyInformer: Send {
    fn as_any(&mut self) -> &mut dyn Any;
    fn start(self: Box<Self>, cancel: CancellationToken) -> tokio::task::JoinHandle<()>;
}

impl<K> AnyInformer for Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    fn as_any(&mut self) -> &mut dyn Any {
        self
    }
    fn start(self: Box<Self>, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        (*self).spawn(cancel)
    }
}

/// One informer per kind and scope, shared by every controller that asks:
/// controllers register their handlers, then [`Informers::spawn`] starts
/// one watch each.
pub struct Informers {
    client: kube::Client,
    informers: HashMap<(TypeId, String), Box<dyn AnyInformer>>,
    order: Vec<(TypeId, String)>,
}

impl Informers {
    /// No informers yet; they will watch with `client`.
    pub fn new(client: kube::Client) -> Self {
        Informers {
            client,
            informers: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// The informer of `K` over every namespace.
    pub fn get<K>(&mut self) -> &mut Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let api = Api::all(self.client.clone());
        self.scoped("", api, watcher::Config::default())
    }

    /// The informer of `K` called `scope` (say, a namespace or a field
    /// selector): the first caller's `api` and `config` say what it watches.
    pub fn scoped<K>(
        &mut self,
        scope: &str,
        api: Api<K>,
        config: watcher::Config,
    ) -> &mut Informer<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let key = (TypeId::of::<K>(), scope.to_string());
        if !self.informers.contains_key(&key) {
            self.informers
                .insert(key.clone(), Box::new(Informer::with(api, config)));
            self.order.push(key.clone());
        }
        self.informers
            .get_mut(&key)
            .and_then(|i| i.as_any().downcast_mut::<Informer<K>>())
            .expect("an informer is stored under its own kind's TypeId")
    }

    /// The cache of `K` over every namespace, and when it is first full.
    pub fn cache<K>(&mut self) -> (Store<K>, Ready)
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let i = self.get::<K>();
        (i.store(), i.ready())
    }

    /// The client the informers watch with.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Starts every informer handed out, until `cancel`.
    pub fn spawn(mut self, cancel: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        self.order
            .iter()
            .filter_map(|k| self.informers.remove(k))
            .map(|i| i.start(cancel.clone()))
            .collect()
    }
}

/// A reconcile's key: namespace and name.
pub type Key = (String, String);

/// The key of a namespaced object.
pub fn key_of<K: Resource>(o: &K) -> Key {
    (
        o.meta().namespace.clone().unwrap_or_default(),
        o.meta().name.clone().unwrap_or_default(),
    )
}

#[derive(Default)]
struct QueueState {
    order: VecDeque<Key>,
    dirty: HashSet<Key>,
    processing: HashSet<Key>,
    /// Keys scheduled for later, and when.
    delayed: HashMap<Key, Instant>,
    /// Reconciles of a key that failed in a row.
    failures: HashMap<Key, u32>,
}

/// A de-duplicating work queue of keys.
#[derive(Clone, Default)]
pub struct Queue {
    state: Arc<Mutex<QueueState>>,
    notify: Arc<Notify>,
}

impl Queue {
    /// An empty queue.
    pub fn new() -> Self {
        Queue::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `key` unless it is already waiting (a later time it was
    /// scheduled for is dropped: it runs now).
    pub fn add(&self, key: Key) {
        let mut s = self.lock();
        s.delayed.remove(&key);
        if !s.dirty.insert(key.clone()) {
            return;
        }
        if !s.processing.contains(&key) {
            s.order.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queues the key of every object in `store`.
    pub fn add_all<K>(&self, store: &Store<K>)
    where
        K: Resource + Clone + 'static,
        K::DynamicType: Eq + Hash + Clone,
    {
        for o in store.state() {
            self.add(key_of(o.as_ref()));
        }
    }

    /// Queues `key` after `delay` (unless `cancel` comes first); if it is
    /// already scheduled, the sooner time wins.
    pub fn add_after(&self, key: Key, delay: Duration, cancel: &CancellationToken) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let due = Instant::now() + delay;
        {
            let mut s = self.lock();
            if s.delayed.get(&key).is_some_and(|d| *d <= due) {
                return;
            }
            s.delayed.insert(key.clone(), due);
        }
        let q = self.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(delay) => {
                    // Only if still scheduled for this time (not run or
                    // rescheduled sooner meanwhile).
                    let mine = q.lock().delayed.get(&key) == Some(&due);
                    if mine {
                        q.add(key);
                    }
                }
            }
        });
    }

    /// The number of keys waiting.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next key to reconcile (marked in progress), or `None` at
    /// `cancel`.
    pub(crate) async fn next(&self, cancel: &CancellationToken) -> Option<Key> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(k) = s.order.pop_front() {
                    s.dirty.remove(&k);
                    s.processing.insert(k.clone());
                    let more = !s.order.is_empty();
                    drop(s);
                    if more {
                        self.notify.notify_one();
                    }
                    return Some(k);
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = notified => {}
            }
        }
    }

    /// `key`'s reconcile is over: queued again if it was added meanwhile.
    pub(crate) fn done(&self, key: &Key) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.order.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Counts a failed reconcile of `key`; returns how many in a row.
    pub(crate) fn failed(&self, key: &Key) -> u32 {
        let mut s = self.lock();
        let n = s.failures.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    /// `key`'s reconcile succeeded: its back-off starts over.
    pub(crate) fn forget(&self, key: &Key) {
        self.lock().failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: &str) -> Key {
        ("ns".into(), n.into())
    }

    #[tokio::test]
    async fn keys_are_deduplicated_and_not_run_twice_at_once() {
        let q = Queue::new();
        q.add(k("a"));
        q.add(k("a"));
        q.add(k("b"));
        assert_eq!(q.len(), 2);
        let cancel = CancellationToken::new();
        let first = q.next(&cancel).await;
        assert_eq!(first, Some(k("a")));
        // Added while being processed: waits until done.
        q.add(k("a"));
        assert_eq!(q.next(&cancel).await, Some(k("b")));
        assert!(q.is_empty());
        q.done(&k("a"));
        assert_eq!(q.next(&cancel).await, Some(k("a")));
        cancel.cancel();
        assert_eq!(q.next(&cancel).await, None);
    }

    #[tokio::test]
    async fn a_scheduled_key_runs_once_at_the_soonest_time() {
        let q = Queue::new();
        let cancel = CancellationToken::new();
        let ms = Duration::from_millis;
        q.add_after(k("a"), ms(80), &cancel);
        q.add_after(k("a"), ms(20), &cancel);
        q.add_after(k("a"), ms(150), &cancel);
        tokio::time::sleep(ms(60)).await;
        assert_eq!(q.len(), 1, "queued at the soonest time");
        assert_eq!(q.next(&cancel).await, Some(k("a")));
        q.done(&k("a"));
        tokio::time::sleep(ms(150)).await;
        assert!(q.is_empty(), "the later times were dropped");

        // Added now: the time it was scheduled for is dropped.
        q.add_after(k("b"), ms(30), &cancel);
        q.add(k("b"));
        assert_eq!(q.next(&cancel).await, Some(k("b")));
        q.done(&k("b"));
        tokio::time::sleep(ms(80)).await;
        assert!(q.is_empty());
    }
}
