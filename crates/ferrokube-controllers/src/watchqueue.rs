//! Informers and a work queue for the workload controllers (replica sets,
//! deployments, endpoints).
//!
//! An [`Informer`] is a kube-runtime reflector (a watched, cached copy of one
//! kind) whose changes are handed to every registered handler, so one pod
//! watch serves several controllers. A [`Queue`] holds object keys to
//! reconcile, client-go style: a key waiting is queued once however often it
//! is added, and a key being reconciled is not handed to a second worker
//! until the first is done (then it runs again if it was added meanwhile).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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
        let (store, writer) = reflector::store();
        Informer {
            api: Api::all(client),
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

    /// Registers a handler; must be called before [`Informer::spawn`].
    pub fn on_change(&mut self, f: impl Fn(Change<'_, K>) + Send + Sync + 'static) {
        self.handlers.push(Box::new(f));
    }

    /// Starts watching until `cancel`.
    pub fn spawn(mut self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let writer = self.writer.take();
        let api = self.api.clone();
        let handlers = std::mem::take(&mut self.handlers);
        let ready = self.ready.clone();
        tokio::spawn(async move {
            let Some(writer) = writer else { return };
            let stream = reflector::reflector(
                writer,
                watcher(api, watcher::Config::default()).default_backoff(),
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
    failures: HashMap<Key, u32>,
}

/// A de-duplicating work queue of keys.
#[derive(Clone, Default)]
pub struct Queue {
    state: Arc<Mutex<QueueState>>,
    notify: Arc<Notify>,
}

impl Queue {
    pub fn new() -> Self {
        Queue::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: Key) {
        let mut s = self.lock();
        if !s.dirty.insert(key.clone()) {
            return;
        }
        if !s.processing.contains(&key) {
            s.order.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay` (unless `cancel` comes first).
    pub fn add_after(&self, key: Key, delay: Duration, cancel: &CancellationToken) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let q = self.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(delay) => q.add(key),
            }
        });
    }

    /// The number of keys waiting.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn next(&self, cancel: &CancellationToken) -> Option<Key> {
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

    fn done(&self, key: &Key) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.order.push_back(key.clone());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Runs `workers` workers calling `reconcile` for each key until
    /// `cancel`. A reconcile that fails is retried with a growing delay
    /// (5 ms doubling, at most 60 s); one that succeeds resets it.
    pub async fn run<F, Fut>(&self, workers: usize, cancel: CancellationToken, reconcile: F)
    where
        F: Fn(Key) -> Fut + Send + Sync + Clone + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send,
    {
        let mut tasks = Vec::new();
        for _ in 0..workers.max(1) {
            let q = self.clone();
            let cancel = cancel.clone();
            let reconcile = reconcile.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(key) = q.next(&cancel).await {
                    let res = reconcile(key.clone()).await;
                    q.done(&key);
                    match res {
                        Ok(()) => {
                            q.lock().failures.remove(&key);
                        }
                        Err(e) => {
                            let n = {
                                let mut s = q.lock();
                                let n = s.failures.entry(key.clone()).or_insert(0);
                                *n = n.saturating_add(1);
                                *n
                            };
                            let delay = Duration::from_millis(5)
                                .saturating_mul(1u32 << n.min(14))
                                .min(Duration::from_secs(60));
                            tracing::debug!(ns = %key.0, name = %key.1, error = %e, retry_in = ?delay, "reconcile failed");
                            q.add_after(key, delay, &cancel);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
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
}
