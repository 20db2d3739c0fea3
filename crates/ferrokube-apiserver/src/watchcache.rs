//! The watch cache: every object of every resource in memory, fed by one store
//! watch, serving lists and watches without re-reading the store.
//!
//! One store watch covers the whole `/registry/` tree, so the cache sees every
//! revision the apiserver writes and knows, after each event, that it is up to
//! date through that revision for *every* resource. A consistent read ("as of
//! now") therefore only has to wait until the cache has reached the store's
//! current revision: a wake-up in process, not a poll.
//!
//! Objects are kept as the JSON bytes served to clients (with
//! `metadata.resourceVersion` set to the key's `mod_revision`) plus the few
//! attributes selectors need (namespace, name, labels and the kind's
//! selectable fields), so a list is a concatenation of ready bytes.
//!
//! Each resource keeps a bounded history of recent events; a watch from a
//! resourceVersion still in that history is replayed from it and then follows
//! live events without a gap or a duplicate. Older ones get
//! [`CacheError::TooOld`] (410 Gone at the API).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_store::{EventKind, KeyValue, RangeRequest, Revision, Store, StoreError};
use futures::StreamExt;
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Extracts a kind's selectable fields (e.g. `spec.nodeName`) from an object.
pub type FieldsFn = Arc<dyn Fn(&Value) -> BTreeMap<String, String> + Send + Sync>;

/// How many recent events each resource keeps for resuming watches.
pub(crate) const DEFAULT_HISTORY: usize = 10_000;

/// Expected writes kept before those older than [`EXPECTED_TTL`] are swept
/// (writes whose outcome nobody reported, which should not happen).
const EXPECTED_SWEEP: usize = 4096;
const EXPECTED_TTL: Duration = Duration::from_secs(30);

/// Pages of the initial list of the store.
const LIST_PAGE: usize = 1000;

/// Why the watch cache cannot answer (the API server's 410 Gone, 504 or 500).
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The requested revision is older than the history kept.
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision the cache can still replay from.
        oldest: Revision,
    },
    /// The cache did not reach the revision in time.
    #[error("Too large resource version: {requested}, current resource version: {current}")]
    NotReady {
        /// The revision asked for.
        requested: Revision,
        /// The revision the cache had reached when it gave up.
        current: Revision,
    },
    /// The cache was rebuilt (the store watch failed); watchers must restart.
    #[error("the watch cache was reset; watch again")]
    Reset,
    /// The store failed while the cache listed or watched it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One object as the cache holds it.
#[derive(Debug)]
pub struct CachedObject {
    /// The store key (`/registry/<resource>/<namespace>/<name>`).
    pub key: String,
    /// The key's `mod_revision` (for a deleted object: the delete's revision).
    pub revision: Revision,
    /// The JSON served to clients, `metadata.resourceVersion` included.
    pub json: Bytes,
    /// `metadata.namespace` (empty for a cluster-scoped object).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`, for label selectors.
    pub labels: BTreeMap<String, String>,
    /// The kind's selectable fields (from its [`FieldsFn`]), for field
    /// selectors.
    pub fields: BTreeMap<String, String>,
}

/// A write the watch cache expects (see [`WatchCache::expect`]); dropped
/// without [`Expectation::written`], it withdraws the entry.
pub struct Expectation<'a> {
    cache: Arc<ResourceCache>,
    _cache_root: std::marker::PhantomData<&'a WatchCache>,
    key: String,
    stored: Bytes,
    done: bool,
}

impl Expectation<'_> {
    /// The store took the write: the entry waits for its event.
    pub fn written(mut self) {
        self.done = true;
    }
}

impl Drop for Expectation<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut expected = self.cache.expected.lock();
        if expected.get(&self.key).is_some_and(|e| e.is(&self.stored)) {
            expected.remove(&self.key);
        }
    }
}

/// The kind of change, as a Kubernetes watch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The object was created (or came into a filtered watch's view).
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted (or left a filtered watch's view).
    Deleted,
}

impl EventType {
    /// The name on the wire: `ADDED`, `MODIFIED` or `DELETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change to one object.
#[derive(Debug)]
pub struct CacheEvent {
    /// What happened to the object.
    pub kind: EventType,
    /// The store revision of the change.
    pub revision: Revision,
    /// The object after the change; for a delete, its last state with the
    /// delete's revision.
    pub object: Arc<CachedObject>,
    /// The object before the change (updates and deletes).
    pub prev: Option<Arc<CachedObject>>,
}

impl CacheEvent {
    /// The event as a watcher filtered by `matches` should see it, following
    /// Kubernetes: an object entering the selection is ADDED, one leaving it is
    /// DELETED, one outside it before and after is not seen at all.
    pub fn filtered(
        &self,
        matches: impl Fn(&CachedObject) -> bool,
    ) -> Option<(EventType, &Arc<CachedObject>)> {
        let now = matches(&self.object);
        let before = self.prev.as_deref().map(&matches).unwrap_or(false);
        match (self.kind, before, now) {
            (EventType::Deleted, true, _) => Some((EventType::Deleted, &self.object)),
            (EventType::Deleted, false, _) => None,
            (_, false, true) => Some((EventType::Added, &self.object)),
            (_, true, true) => Some((self.kind, &self.object)),
            (_, true, false) => Some((EventType::Deleted, &self.object)),
            (_, false, false) => None,
        }
    }
}

/// Why a stored value cannot be cached (logged; the object is skipped).
#[derive(Debug, thiserror::Error)]
enum DecodeError {
    /// The value is not JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The object has no `metadata` object.
    #[error("object has no metadata")]
    NoMetadata,
    /// A delete event came without the deleted value.
    #[error("delete without the previous value")]
    NoPrevious,
}

/// Decodes a stored value into a cached object.
fn decode(
    key: &str,
    value: &[u8],
    revision: Revision,
    fields: &FieldsFn,
) -> Result<CachedObject, DecodeError> {
    let mut obj: Value = serde_json::from_slice(value)?;
    obj.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or(DecodeError::NoMetadata)?
        .insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    cached(key, &obj, revision, fields)
}

/// The cached form of `obj`, whose `metadata.resourceVersion` is `revision`.
fn cached(
    key: &str,
    obj: &Value,
    revision: Revision,
    fields: &FieldsFn,
) -> Result<CachedObject, DecodeError> {
    // Written as the API server writes what it stores (Go's escaping).
    let json = Bytes::from(ferrokube_api::gojson::to_vec(obj));
    indexed(key, obj, revision, json, fields).ok_or(DecodeError::NoMetadata)
}

/// `obj` with what the cache indexes it by, served as `json`; `None` if it
/// has no metadata object.
fn indexed(
    key: &str,
    obj: &Value,
    revision: Revision,
    json: Bytes,
    fields: &FieldsFn,
) -> Option<CachedObject> {
    let meta = obj.get("metadata").filter(|m| m.is_object())?;
    let text = |k: &str| {
        meta.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Some(CachedObject {
        key: key.to_string(),
        revision,
        json,
        namespace: text("namespace"),
        name: text("name"),
        labels: crate::objectmeta::labels_of(Some(meta)),
        fields: fields(obj),
    })
}

/// A write this API server is about to make, as the watch cache will want
/// it: the exact bytes handed to the store, where in them the metadata
/// object opens, and what the cache indexes by. The store's event whose
/// value is this very allocation (a `Bytes` the entry keeps alive, so its
/// address cannot be reused) becomes a cached object by inserting the
/// event's resourceVersion into those bytes, with no parse.
struct Expected {
    /// Indexed, with the stored bytes (no resourceVersion) as its JSON.
    object: CachedObject,
    metadata_at: usize,
    since: std::time::Instant,
}

impl Expected {
    fn is(&self, value: &Bytes) -> bool {
        let stored = &self.object.json;
        stored.as_ptr() == value.as_ptr() && stored.len() == value.len()
    }

    fn into_cached(self, revision: Revision) -> CachedObject {
        let json = with_resource_version(&self.object.json, self.metadata_at, revision);
        CachedObject {
            revision,
            json,
            ..self.object
        }
    }
}

/// `stored` (an object encoded without resourceVersion) with
/// `"resourceVersion":"<revision>"` as the first member of its metadata,
/// whose `{` ends at `metadata_at`.
pub(crate) fn with_resource_version(
    stored: &[u8],
    metadata_at: usize,
    revision: Revision,
) -> Bytes {
    let (head, tail) = stored.split_at(metadata_at.min(stored.len()));
    let mut out = Vec::with_capacity(stored.len() + 40);
    out.extend_from_slice(head);
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(revision.to_string().as_bytes());
    out.push(b'"');
    if tail.first() != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(tail);
    Bytes::from(out)
}

struct Inner {
    objects: BTreeMap<String, Arc<CachedObject>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// Watches from this revision or later can be served from `history`.
    floor: Revision,
    tx: broadcast::Sender<Arc<CacheEvent>>,
}

/// The cache of one resource (one key prefix, e.g. `/registry/pods/`).
pub struct ResourceCache {
    prefix: String,
    fields: FieldsFn,
    history_limit: usize,
    inner: RwLock<Inner>,
    /// Writes this API server is making, by key: the store's event carrying
    /// the same bytes takes the entry instead of decoding them (see
    /// [`WatchCache::expect`]).
    expected: Mutex<HashMap<String, Expected>>,
    /// Moves on every change of the contents (see [`ResourceCache::generation`]).
    generation: std::sync::atomic::AtomicU64,
}

impl ResourceCache {
    fn new(prefix: String, fields: FieldsFn, history_limit: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        ResourceCache {
            prefix,
            fields,
            history_limit: history_limit.max(1),
            inner: RwLock::new(Inner {
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                floor: 0,
                tx,
            }),
            expected: Mutex::new(HashMap::new()),
            generation: Default::default(),
        }
    }

    /// A number that changes whenever the contents do: what is derived
    /// from them (the RBAC authorizer's index) is rebuilt when it moved.
    /// It moves after the change is visible to readers.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn changed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The key prefix this cache holds.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The objects whose keys start with `key_prefix` (which must lie within
    /// this resource's prefix), in key order.
    pub fn list(&self, key_prefix: &str) -> Vec<Arc<CachedObject>> {
        let inner = self.inner.read();
        inner
            .objects
            .range(key_prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// One object by key.
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.inner.read().objects.get(key).cloned()
    }

    /// How many objects the cache holds.
    pub fn len(&self) -> usize {
        self.inner.read().objects.len()
    }

    /// Whether the cache holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A watch of every change after `revision`.
    pub fn watch_from(self: &Arc<Self>, revision: Revision) -> Result<CacheWatcher, CacheError> {
        let inner = self.inner.read();
        if revision < inner.floor {
            return Err(CacheError::TooOld {
                requested: revision,
                oldest: inner.floor,
            });
        }
        let backlog = inner
            .history
            .iter()
            .filter(|e| e.revision > revision)
            .cloned()
            .collect();
        Ok(CacheWatcher {
            cache: self.clone(),
            rx: inner.tx.subscribe(),
            backlog,
            last: revision,
        })
    }

    /// The objects under `key_prefix` now, and a watch of every change after
    /// them: what a Kubernetes watch without a resourceVersion sends.
    pub fn snapshot_and_watch(
        self: &Arc<Self>,
        key_prefix: &str,
        revision: Revision,
    ) -> (Vec<Arc<CachedObject>>, CacheWatcher) {
        let inner = self.inner.read();
        let objects = inner
            .objects
            .range(key_prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(key_prefix))
            .map(|(_, o)| o.clone())
            .collect();
        let watcher = CacheWatcher {
            cache: self.clone(),
            rx: inner.tx.subscribe(),
            backlog: VecDeque::new(),
            last: revision,
        };
        (objects, watcher)
    }

    /// The cached form of the write this API server expected to store
    /// `value` under `key`, if it is that write. An entry for another value
    /// (a write still on its way, or one that lost a race) stays.
    fn take_expected(
        &self,
        key: &str,
        value: &Bytes,
        revision: Revision,
    ) -> Option<Arc<CachedObject>> {
        let mut expected = self.expected.lock();
        if !expected.get(key)?.is(value) {
            return None;
        }
        let entry = expected.remove(key)?;
        drop(expected);
        Some(Arc::new(entry.into_cached(revision)))
    }

    fn apply(&self, ev: &ferrokube_store::WatchEvent) {
        let revision = ev.revision();
        let key = &ev.kv.key;
        let decoded = match ev.kind {
            EventKind::Put => match self.take_expected(key, &ev.kv.value, revision) {
                Some(object) => Ok(object),
                None => decode(key, &ev.kv.value, revision, &self.fields).map(Arc::new),
            },
            EventKind::Delete => match &ev.prev {
                Some(prev) => decode(key, &prev.value, revision, &self.fields).map(Arc::new),
                None => Err(DecodeError::NoPrevious),
            },
        };
        let object = match decoded {
            Ok(o) => o,
            Err(err) => {
                tracing::error!(key = %key, revision, error = %err, "watch cache: cannot decode a stored object; skipped");
                // Still drop a deleted key so the cache does not keep a ghost.
                if ev.kind == EventKind::Delete {
                    let mut inner = self.inner.write();
                    inner.objects.remove(key);
                    self.changed();
                }
                return;
            }
        };
        let mut inner = self.inner.write();
        let prev = match ev.kind {
            EventKind::Put => inner.objects.insert(key.clone(), object.clone()),
            EventKind::Delete => inner.objects.remove(key),
        };
        let kind = match (ev.kind, &prev) {
            (EventKind::Delete, _) => EventType::Deleted,
            (EventKind::Put, None) => EventType::Added,
            (EventKind::Put, Some(_)) => EventType::Modified,
        };
        let event = Arc::new(CacheEvent {
            kind,
            revision,
            object,
            prev,
        });
        inner.history.push_back(event.clone());
        while inner.history.len() > self.history_limit {
            if let Some(old) = inner.history.pop_front() {
                inner.floor = old.revision;
            }
        }
        self.changed();
        // No receiver is not an error: nobody is watching.
        let _ = inner.tx.send(event);
    }

    /// Replaces the contents after a re-list; current watchers end.
    fn reset(&self, objects: Vec<CachedObject>, revision: Revision) {
        let mut inner = self.inner.write();
        inner.objects = objects
            .into_iter()
            .map(|o| (o.key.clone(), Arc::new(o)))
            .collect();
        inner.history.clear();
        inner.floor = revision;
        let (tx, _) = broadcast::channel(4096);
        // Dropping the old sender closes every current watcher's receiver.
        inner.tx = tx;
        self.changed();
    }
}

/// A watch of one resource cache. Events come in revision order, each once.
pub struct CacheWatcher {
    cache: Arc<ResourceCache>,
    rx: broadcast::Receiver<Arc<CacheEvent>>,
    backlog: VecDeque<Arc<CacheEvent>>,
    last: Revision,
}

impl CacheWatcher {
    /// The next event; `Err` ends the watch ([`CacheError::Reset`] or
    /// [`CacheError::TooOld`] if the watcher fell behind the history kept).
    pub async fn next(&mut self) -> Result<Arc<CacheEvent>, CacheError> {
        loop {
            if let Some(ev) = self.backlog.pop_front() {
                if ev.revision > self.last {
                    self.last = ev.revision;
                    return Ok(ev);
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(ev) => {
                    if ev.revision > self.last {
                        self.last = ev.revision;
                        return Ok(ev);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up()?,
                Err(broadcast::error::RecvError::Closed) => return Err(CacheError::Reset),
            }
        }
    }

    /// The revision of the last event delivered (or the start revision).
    pub fn last_revision(&self) -> Revision {
        self.last
    }

    /// After falling behind the live channel: continue from the history.
    fn catch_up(&mut self) -> Result<(), CacheError> {
        let inner = self.cache.inner.read();
        if self.last < inner.floor {
            return Err(CacheError::TooOld {
                requested: self.last,
                oldest: inner.floor,
            });
        }
        self.backlog = inner
            .history
            .iter()
            .filter(|e| e.revision > self.last)
            .cloned()
            .collect();
        self.rx = inner.tx.subscribe();
        Ok(())
    }
}

/// A change to the set of resources cached, carried out by the task that
/// feeds the caches, between two store events.
enum Command {
    /// Start caching `prefix`: its objects as of the feeder's revision, then
    /// every later event.
    Add {
        prefix: String,
        fields: FieldsFn,
        done: tokio::sync::oneshot::Sender<Result<(), CacheError>>,
    },
    /// Stop caching `prefix`; its watchers end.
    Remove {
        prefix: String,
        done: tokio::sync::oneshot::Sender<()>,
    },
}

/// All resource caches, fed by one watch of the store.
pub struct WatchCache {
    store: Arc<dyn Store>,
    root: String,
    /// Resource caches by prefix. Changed only by the feeder task, between
    /// events, so a resource added while serving misses no event.
    resources: RwLock<BTreeMap<String, Arc<ResourceCache>>>,
    history_limit: usize,
    revision: tokio::sync::watch::Sender<Revision>,
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
}

impl WatchCache {
    /// Builds the caches for the given `(prefix, fields)` resources, all under
    /// `root` (e.g. `/registry/`), loads them from the store and keeps them
    /// current until `cancel` fires.
    pub async fn start(
        store: Arc<dyn Store>,
        root: &str,
        resources: Vec<(String, FieldsFn)>,
        history_limit: usize,
        cancel: CancellationToken,
    ) -> Result<Arc<Self>, CacheError> {
        let resources = resources
            .into_iter()
            .map(|(prefix, fields)| {
                let cache = Arc::new(ResourceCache::new(prefix.clone(), fields, history_limit));
                (prefix, cache)
            })
            .collect();
        let (revision, _) = tokio::sync::watch::channel(0);
        let (commands, command_rx) = tokio::sync::mpsc::unbounded_channel();
        let cache = Arc::new(WatchCache {
            store,
            root: root.to_string(),
            resources: RwLock::new(resources),
            history_limit,
            revision,
            commands,
        });
        let start = cache.relist().await?;
        let feeder = cache.clone();
        tokio::spawn(async move { feeder.run(start, command_rx, cancel).await });
        Ok(cache)
    }

    /// The cache of the resource stored under `prefix`.
    pub fn resource(&self, prefix: &str) -> Option<Arc<ResourceCache>> {
        self.resources.read().get(prefix).cloned()
    }

    /// Starts caching the resource stored under `prefix` (a kind added
    /// while serving): once this returns, the cache holds its objects and
    /// follows every later change. Adding a prefix already cached does
    /// nothing.
    pub async fn add_resource(&self, prefix: &str, fields: FieldsFn) -> Result<(), CacheError> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let command = Command::Add {
            prefix: prefix.to_string(),
            fields,
            done,
        };
        if self.commands.send(command).is_err() {
            return Err(CacheError::Reset);
        }
        answer.await.unwrap_or(Err(CacheError::Reset))
    }

    /// Stops caching the resource stored under `prefix`; its watchers end
    /// as on a reset.
    pub async fn remove_resource(&self, prefix: &str) {
        let (done, answer) = tokio::sync::oneshot::channel();
        let command = Command::Remove {
            prefix: prefix.to_string(),
            done,
        };
        if self.commands.send(command).is_ok() {
            let _ = answer.await;
        }
    }

    /// The revision the cache is current through.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Waits until the cache is current through `revision`.
    pub async fn wait_for(&self, revision: Revision, timeout: Duration) -> Result<(), CacheError> {
        let mut rx = self.revision.subscribe();
        let reached = tokio::time::timeout(timeout, async {
            rx.wait_for(|&r| r >= revision).await.is_ok()
        })
        .await;
        match reached {
            Ok(true) => Ok(()),
            _ => Err(CacheError::NotReady {
                requested: revision,
                current: self.revision(),
            }),
        }
    }

    /// Waits until the cache holds everything the store holds now, and
    /// returns that revision: the basis of a consistent read.
    pub async fn sync(&self, timeout: Duration) -> Result<Revision, CacheError> {
        let current = self.store.current_revision().await?;
        self.wait_for(current, timeout).await?;
        Ok(current)
    }

    /// Tells the cache that this API server is about to store `stored` (the
    /// encoding of `obj` without resourceVersion, its metadata object
    /// opening just before `metadata_at`) under `key`: the store's event for
    /// it is then applied without decoding. The returned guard withdraws
    /// the entry unless [`Expectation::written`] says the write succeeded.
    /// Nothing is expected of a store whose events carry other bytes than
    /// those written ([`Store::events_share_written_values`]).
    pub fn expect(
        &self,
        key: &str,
        stored: &Bytes,
        metadata_at: usize,
        obj: &Value,
    ) -> Option<Expectation<'_>> {
        // A store whose events carry other bytes (etcd) would never match.
        if !self.store.events_share_written_values() {
            return None;
        }
        let cache = self.route(key)?;
        let entry = Expected {
            object: indexed(key, obj, 0, stored.clone(), &cache.fields)?,
            metadata_at,
            since: std::time::Instant::now(),
        };
        {
            let mut expected = cache.expected.lock();
            if expected.len() >= EXPECTED_SWEEP {
                expected.retain(|_, e| e.since.elapsed() < EXPECTED_TTL);
            }
            expected.insert(key.to_string(), entry);
        }
        Some(Expectation {
            cache,
            _cache_root: std::marker::PhantomData,
            key: key.to_string(),
            stored: stored.clone(),
            done: false,
        })
    }

    /// The resource cache a key belongs to: the longest registered prefix.
    fn route(&self, key: &str) -> Option<Arc<ResourceCache>> {
        self.resources
            .read()
            .range(..=key.to_string())
            .rev()
            .find(|(prefix, _)| key.starts_with(prefix.as_str()))
            .map(|(_, c)| c.clone())
    }

    /// Reads every key under `prefix` at revision `at` (now if `None`) in
    /// pages, handing each to `each`; returns the revision read at.
    async fn list_under(
        &self,
        prefix: &str,
        mut at: Option<Revision>,
        mut each: impl FnMut(&KeyValue),
    ) -> Result<Revision, CacheError> {
        let mut start = None;
        loop {
            let page = self
                .store
                .range(RangeRequest {
                    prefix: prefix.to_string(),
                    start: start.take(),
                    limit: LIST_PAGE,
                    revision: at,
                    count_only: false,
                })
                .await?;
            at = Some(page.revision);
            page.kvs.iter().for_each(&mut each);
            match (page.more, page.kvs.last()) {
                (true, Some(last)) => start = Some(format!("{}\0", last.key)),
                _ => break,
            }
        }
        Ok(at.unwrap_or(0))
    }

    /// Loads everything under the root at one revision into the caches.
    async fn relist(&self) -> Result<Revision, CacheError> {
        let mut per_resource: BTreeMap<String, Vec<CachedObject>> = BTreeMap::new();
        let revision = self
            .list_under(&self.root, None, |kv| self.load_one(kv, &mut per_resource))
            .await?;
        for (prefix, cache) in self.resources.read().iter() {
            cache.reset(per_resource.remove(prefix).unwrap_or_default(), revision);
        }
        self.revision.send_replace(revision);
        Ok(revision)
    }

    fn load_one(&self, kv: &KeyValue, into: &mut BTreeMap<String, Vec<CachedObject>>) {
        let Some(cache) = self.route(&kv.key) else {
            return;
        };
        match decode(&kv.key, &kv.value, kv.mod_revision, &cache.fields) {
            Ok(o) => into.entry(cache.prefix.clone()).or_default().push(o),
            Err(err) => {
                tracing::error!(key = %kv.key, error = %err, "watch cache: cannot decode a stored object; skipped")
            }
        }
    }

    /// Carries out a change to the set of resources cached, the feeder
    /// being current through `revision`.
    async fn command(&self, command: Command, revision: Revision) {
        match command {
            Command::Add {
                prefix,
                fields,
                done,
            } => {
                let _ = done.send(self.add_now(prefix, fields, revision).await);
            }
            Command::Remove { prefix, done } => {
                let removed = self.resources.write().remove(&prefix);
                if let Some(cache) = removed {
                    // Its watchers end, as on a re-list.
                    cache.reset(Vec::new(), revision);
                }
                let _ = done.send(());
            }
        }
    }

    /// Starts caching `prefix` with its objects as of `revision`.
    async fn add_now(
        &self,
        prefix: String,
        fields: FieldsFn,
        revision: Revision,
    ) -> Result<(), CacheError> {
        if self.resources.read().contains_key(&prefix) {
            return Ok(());
        }
        let cache = Arc::new(ResourceCache::new(
            prefix.clone(),
            fields,
            self.history_limit,
        ));
        let mut objects = Vec::new();
        let at = (revision > 0).then_some(revision);
        self.list_under(&prefix, at, |kv| {
            match decode(&kv.key, &kv.value, kv.mod_revision, &cache.fields) {
                Ok(o) => objects.push(o),
                Err(err) => {
                    tracing::error!(key = %kv.key, error = %err, "watch cache: cannot decode a stored object; skipped")
                }
            }
        })
        .await?;
        cache.reset(objects, revision);
        self.resources.write().insert(prefix, cache);
        Ok(())
    }

    /// Follows the store from `revision` on; re-lists if the watch breaks;
    /// carries out `commands` between events.
    async fn run(
        &self,
        mut revision: Revision,
        mut commands: tokio::sync::mpsc::UnboundedReceiver<Command>,
        cancel: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut stream = match self.store.watch(&self.root, revision + 1).await {
                Ok(s) => s,
                Err(StoreError::Compacted { .. }) => {
                    revision = self.relist_until_ok(&cancel).await;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "watch cache: cannot watch the store; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            loop {
                let item = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return,
                    Some(command) = commands.recv() => {
                        self.command(command, revision).await;
                        continue;
                    }
                    item = stream.next() => item,
                };
                match item {
                    Some(Ok(ev)) => {
                        if let Some(cache) = self.route(&ev.kv.key) {
                            cache.apply(&ev);
                        }
                        revision = ev.revision();
                        self.revision.send_replace(revision);
                    }
                    Some(Err(StoreError::Compacted { .. })) => {
                        tracing::warn!("watch cache: fell behind compaction; re-listing");
                        revision = self.relist_until_ok(&cancel).await;
                        break;
                    }
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, revision, "watch cache: store watch failed; resuming");
                        break;
                    }
                    None => break,
                }
            }
        }
    }

    async fn relist_until_ok(&self, cancel: &CancellationToken) -> Revision {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.relist().await {
                Ok(rev) => return rev,
                Err(err) => {
                    tracing::error!(error = %err, "watch cache: re-list failed; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => return self.revision(),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// For background tasks that make a pass over a resource whenever it
/// changes: waits for the next change `watch` sees (500 ms when there is no
/// watch), then 20 ms more so that a burst of changes makes one pass, or
/// for `resync`. `false` once `cancel` fires.
pub(crate) async fn next_pass(
    watch: Option<&mut CacheWatcher>,
    resync: Duration,
    cancel: &CancellationToken,
) -> bool {
    let changed = async {
        match watch {
            Some(w) => {
                let _ = w.next().await;
            }
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    tokio::select! {
        () = cancel.cancelled() => false,
        () = changed => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            true
        }
        () = tokio::time::sleep(resync) => true,
    }
}
