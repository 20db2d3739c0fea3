//! The garbage collector: follows `metadata.ownerReferences` across every
//! resource that can be listed, watched, deleted and patched (events
//! excepted), and:
//!
//! - deletes dependents whose owners are all gone (background cascade), an
//!   owner counting as gone when it is absent or exists with another uid;
//! - for an owner deleted in the foreground (a deletionTimestamp and the
//!   `foregroundDeletion` finalizer, which the API server adds), deletes its
//!   dependents, waits for those that set `blockOwnerDeletion`, then removes
//!   the finalizer so that the owner goes;
//! - for an owner deleted with the `orphan` finalizer, removes the reference
//!   to it from every dependent, then the finalizer.
//!
//! Each pass works from the informer caches as they are (level-triggered);
//! an owner missing from the caches is looked up live before anything is
//! deleted because of it.
//!
//! The resources followed come from the server's discovery, read again every
//! 30 seconds as Kubernetes' collector resyncs its monitors, and at once when
//! a CustomResourceDefinition or an APIService changes: a resource that
//! appears gets a cache (and its kind resolves as an owner), one whose
//! discovery vanished has its cache dropped. The other caches stay.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::{ApiResource, GroupVersion, ObjectMeta, PartialObjectMeta};
use kube::discovery::{verbs, ApiCapabilities, Discovery, Scope};
use kube::runtime::{reflector::Store, watcher};
use kube::{Api, Client};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Context, Reconciler};
use crate::util::{self, delete_uid};
use crate::watchqueue::Key;

/// Finalizer the API server adds for `propagationPolicy=Foreground`.
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer the API server adds for `propagationPolicy=Orphan`.
pub const ORPHAN: &str = "orphan";

/// The controller's name (kube-controller-manager's `--controllers`).
pub const NAME: &str = "garbagecollector";

/// A full pass at least this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(30);

/// One watched resource.
struct Monitor {
    ar: ApiResource,
    namespaced: bool,
    cache: Store<PartialObjectMeta<DynamicObject>>,
    /// Stops the watch when the resource leaves discovery.
    stop: CancellationToken,
}

/// The monitors of one moment; a pass works with one set throughout.
#[derive(Default)]
struct Monitors {
    list: Vec<Arc<Monitor>>,
    /// (group, kind) → index into `list`.
    kinds: HashMap<(String, String), usize>,
}

impl Monitors {
    fn new(list: Vec<Arc<Monitor>>) -> Self {
        let kinds = list
            .iter()
            .enumerate()
            .map(|(i, m)| ((m.ar.group.clone(), m.ar.kind.clone()), i))
            .collect();
        Monitors { list, kinds }
    }
}

/// The collector's view: one cache per resource and how to reach each kind.
struct Collector {
    ctx: Context,
    /// The collector's writes (counted as its own).
    client: Client,
    /// The watches and discovery.
    watch_client: Client,
    monitors: RwLock<Arc<Monitors>>,
}

/// How often discovery is read again for resources that came or went
/// (Kubernetes' collector resyncs its monitors every 30 seconds).
const REDISCOVER: Duration = Duration::from_secs(30);
/// How often the caches of the kinds that add resources are looked at.
const SOURCES_CHECK: Duration = Duration::from_secs(1);
/// How many times discovery is read (a second apart) after such a kind
/// changed: a new resource is served a moment after its definition is.
const READS_AFTER_CHANGE: u32 = 3;
/// The resources whose objects add resources to discovery.
const DISCOVERY_SOURCES: [(&str, &str); 2] = [
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("apiregistration.k8s.io", "apiservices"),
];

/// The resources worth watching: every one that can be listed, watched,
/// deleted and patched, events excepted, in its preferred version.
fn monitored(discovery: &Discovery) -> Vec<(ApiResource, bool)> {
    let mut all = Vec::new();
    for group in discovery.groups() {
        all.extend(group.recommended_resources());
    }
    worth_watching(all)
}

/// [`monitored`] over discovery's resources and capabilities.
fn worth_watching(resources: Vec<(ApiResource, ApiCapabilities)>) -> Vec<(ApiResource, bool)> {
    let needed = [verbs::LIST, verbs::WATCH, verbs::DELETE, verbs::PATCH];
    resources
        .into_iter()
        .filter(|(ar, caps)| {
            needed.iter().all(|v| caps.supports_operation(v)) && ar.plural != "events"
        })
        .map(|(ar, caps)| (ar, caps.scope == Scope::Namespaced))
        .collect()
}

/// Reads discovery, retrying until it answers or `cancel`.
async fn discover(client: &Client, cancel: &CancellationToken) -> Option<Vec<(ApiResource, bool)>> {
    loop {
        match Discovery::new(client.clone()).run().await {
            Ok(d) => return Some(monitored(&d)),
            Err(e) => {
                tracing::warn!(error = %e, "garbage collector: discovery failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }
}

/// What identifies a monitored resource.
fn identity(ar: &ApiResource, namespaced: bool) -> (&str, &str, &str, bool) {
    (&ar.api_version, &ar.plural, &ar.kind, namespaced)
}

/// A resync: which of the `current` monitors stay (their indexes) and
/// which of the `wanted` resources need a new one.
fn resync_plan(
    current: &[(ApiResource, bool)],
    wanted: &[(ApiResource, bool)],
) -> (Vec<usize>, Vec<usize>) {
    let wanted_ids: HashSet<_> = wanted.iter().map(|(ar, n)| identity(ar, *n)).collect();
    let current_ids: HashSet<_> = current.iter().map(|(ar, n)| identity(ar, *n)).collect();
    let keep = (0..current.len())
        .filter(|&i| wanted_ids.contains(&identity(&current[i].0, current[i].1)))
        .collect();
    let start = (0..wanted.len())
        .filter(|&i| !current_ids.contains(&identity(&wanted[i].0, wanted[i].1)))
        .collect();
    (keep, start)
}

/// Runs the garbage collector until `cancel`.
pub async fn run(client: Client, cancel: CancellationToken) {
    run_with_rediscovery(client, cancel, REDISCOVER).await;
}

/// Runs the garbage collector until `cancel`, reading discovery again at
/// least every `rediscover`.
pub async fn run_with_rediscovery(client: Client, cancel: CancellationToken, rediscover: Duration) {
    let Some(resources) = discover(&client, &cancel).await else {
        return;
    };
    let ctx = Context::new(NAME, cancel.clone());
    let gc = Arc::new(Collector {
        client: ctx.client(&client),
        watch_client: client,
        monitors: RwLock::default(),
        ctx,
    });
    gc.resync(&resources).await;
    if cancel.is_cancelled() {
        return;
    }
    tokio::spawn(follow_discovery(gc.clone(), rediscover));
    controller::run(gc, 1).await;
}

/// Reads discovery every `every`, and at once (a few times) when a kind
/// that adds resources changes, resyncing the monitors each time.
async fn follow_discovery(gc: Arc<Collector>, every: Duration) {
    let cancel = gc.ctx.cancel().clone();
    let mut sources = gc.sources_fingerprint();
    let mut due = Instant::now() + every;
    let mut reads_left = 0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(SOURCES_CHECK) => {}
        }
        let now = gc.sources_fingerprint();
        if now != sources {
            sources = now;
            reads_left = READS_AFTER_CHANGE;
        }
        if reads_left == 0 && Instant::now() < due {
            continue;
        }
        reads_left = reads_left.saturating_sub(1);
        due = Instant::now() + every;
        match Discovery::new(gc.watch_client.clone()).run().await {
            Ok(d) => gc.resync(&monitored(&d)).await,
            Err(e) => tracing::warn!(error = %e, "garbage collector: discovery failed"),
        }
    }
}

impl Collector {
    /// The current monitors.
    fn monitors(&self) -> Arc<Monitors> {
        self.monitors
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A hash of the objects that add resources to discovery.
    fn sources_fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for m in &self.monitors().list {
            if !DISCOVERY_SOURCES.contains(&(m.ar.group.as_str(), m.ar.plural.as_str())) {
                continue;
            }
            for obj in m.cache.state() {
                (&obj.metadata.uid, &obj.metadata.resource_version).hash(&mut h);
            }
        }
        h.finish()
    }

    /// Starts the monitors `wanted` has and the current set lacks (waiting
    /// for their first lists), stops those it no longer has, and queues a
    /// pass over the new set.
    async fn resync(&self, wanted: &[(ApiResource, bool)]) {
        let current = self.monitors();
        let described: Vec<(ApiResource, bool)> = current
            .list
            .iter()
            .map(|m| (m.ar.clone(), m.namespaced))
            .collect();
        let (keep, start) = resync_plan(&described, wanted);
        if start.is_empty() && keep.len() == current.list.len() {
            return;
        }
        let mut list: Vec<Arc<Monitor>> = keep.iter().map(|&i| current.list[i].clone()).collect();
        for (i, m) in current.list.iter().enumerate() {
            if !keep.contains(&i) {
                tracing::info!(resource = %format!("{}/{}", m.ar.api_version, m.ar.plural), "garbage collector: resource gone from discovery");
                m.stop.cancel();
            }
        }
        let started: Vec<Arc<Monitor>> = start
            .iter()
            .map(|&i| Arc::new(self.monitor(&wanted[i].0, wanted[i].1)))
            .collect();
        let cancel = self.ctx.cancel();
        futures::future::join_all(started.iter().map(|m| util::wait_synced(&m.cache, cancel)))
            .await;
        if !current.list.is_empty() {
            for m in &started {
                tracing::info!(resource = %format!("{}/{}", m.ar.api_version, m.ar.plural), "garbage collector: new resource in discovery");
            }
        }
        list.extend(started);
        tracing::info!(resources = list.len(), "garbage collector watching");
        *self
            .monitors
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(Monitors::new(list));
        self.ctx.add(controller::pass_key());
    }

    /// A metadata cache of `ar`, until the collector stops or the monitor
    /// is dropped.
    fn monitor(&self, ar: &ApiResource, namespaced: bool) -> Monitor {
        // Metadata only: the collector reads nothing else.
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(self.watch_client.clone(), ar);
        let stop = self.ctx.cancel().child_token();
        // Only what ownership depends on wakes the collector (not, say, a
        // Lease renewal or a status update).
        let cache = util::spawn_cache_until(
            api,
            ar.clone(),
            watcher::Config::default(),
            &self.ctx,
            &stop,
            ownership_fingerprint,
        );
        Monitor {
            ar: ar.clone(),
            namespaced,
            cache,
            stop,
        }
    }
}

impl Reconciler for Collector {
    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<controller::Action> {
        let again = self.pass().await?;
        Ok(controller::Action::from(again).sooner(controller::Action::requeue(RESYNC)))
    }

    fn error_policy(&self, _: &Key, error: &anyhow::Error, _: u32) -> controller::Action {
        util::pass_failed(NAME, error)
    }
}

/// A hash of the fields the collector reads: owners, deletion, finalizers.
fn ownership_fingerprint(obj: &PartialObjectMeta<DynamicObject>) -> u64 {
    let m = &obj.metadata;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for r in m.owner_references.iter().flatten() {
        (
            &r.uid,
            &r.api_version,
            &r.kind,
            &r.name,
            r.block_owner_deletion,
        )
            .hash(&mut h);
    }
    m.deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .hash(&mut h);
    m.finalizers.hash(&mut h);
    h.finish()
}

/// What became of an owner.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum OwnerState {
    /// Exists and is not being deleted in the foreground.
    Solid,
    /// Exists and waits for its dependents (foreground deletion).
    Waiting,
    /// Absent, or present under another uid.
    Dangling,
    /// Could not be told (an API error): leave alone, look again soon.
    Unknown,
    /// A kind discovery does not list: leave alone until the next resync.
    Unresolvable,
}

/// How many writes a pass has in flight at once.
const PARALLEL: usize = 16;

/// A write a pass decided on.
enum Action {
    /// Set the item's ownerReferences to these.
    SetOwners {
        item: usize,
        owners: Vec<OwnerReference>,
    },
    /// Delete the item (after making its references non-blocking).
    Delete {
        item: usize,
        policy: PropagationPolicy,
        unblock: Option<Vec<OwnerReference>>,
    },
}

/// An object in some cache.
struct Item {
    monitor: Arc<Monitor>,
    obj: Arc<PartialObjectMeta<DynamicObject>>,
}

impl Item {
    fn uid(&self) -> &str {
        self.obj.metadata.uid.as_deref().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.obj.metadata.name.as_deref().unwrap_or("")
    }
    fn ns(&self) -> Option<&str> {
        self.obj.metadata.namespace.as_deref()
    }
    fn deleting(&self) -> bool {
        self.obj.metadata.deletion_timestamp.is_some()
    }
    fn has_finalizer(&self, f: &str) -> bool {
        self.obj
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|fs| fs.iter().any(|x| x == f))
    }
    fn owners(&self) -> &[OwnerReference] {
        self.obj.metadata.owner_references.as_deref().unwrap_or(&[])
    }
}

fn waits_for_dependents(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
        && meta
            .finalizers
            .as_ref()
            .is_some_and(|fs| fs.iter().any(|x| x == FOREGROUND))
}

/// How a dependent left without a living owner is deleted, and the owner
/// references to write first so that it stops blocking its owners (a
/// foreground chain whose next link waits too, so a cycle cannot hold
/// everything forever); `waiting`: one of its owners waits for it.
fn delete_policy(
    it: &Item,
    items: &[Item],
    dependents: &HashMap<&str, Vec<usize>>,
    waiting: bool,
) -> (PropagationPolicy, Option<Vec<OwnerReference>>) {
    let own_dependents: &[usize] = dependents.get(it.uid()).map(Vec::as_slice).unwrap_or(&[]);
    if waiting && !own_dependents.is_empty() {
        // A foreground chain: this one waits for its own dependents.
        // If one of those waits for its dependents too, this one's
        // references stop blocking its owners first, so that a
        // cycle cannot hold everything forever.
        let unblock = own_dependents
            .iter()
            .any(|&d| waits_for_dependents(&items[d].obj.metadata))
            .then(|| {
                it.owners()
                    .iter()
                    .map(|r| OwnerReference {
                        block_owner_deletion: None,
                        ..r.clone()
                    })
                    .collect()
            });
        (PropagationPolicy::Foreground, unblock)
    } else if it.has_finalizer(ORPHAN) {
        (PropagationPolicy::Orphan, None)
    } else if it.has_finalizer(FOREGROUND) {
        (PropagationPolicy::Foreground, None)
    } else {
        (PropagationPolicy::Background, None)
    }
}

impl Collector {
    fn api(&self, m: &Monitor, ns: Option<&str>) -> Api<DynamicObject> {
        match (m.namespaced, ns) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &m.ar),
            _ => Api::all_with(self.client.clone(), &m.ar),
        }
    }

    /// One pass over every cache. Asks to run again soon while work is
    /// outstanding (a conflict, or an owner waiting for dependents).
    async fn pass(&self) -> anyhow::Result<Option<Duration>> {
        let monitors = self.monitors();
        let mut items = Vec::new();
        for m in &monitors.list {
            for obj in m.cache.state() {
                items.push(Item {
                    monitor: m.clone(),
                    obj,
                });
            }
        }
        let mut by_uid: HashMap<&str, usize> = HashMap::new();
        let mut dependents: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, it) in items.iter().enumerate() {
            by_uid.insert(it.uid(), i);
            for r in it.owners() {
                dependents.entry(r.uid.as_str()).or_default().push(i);
            }
        }
        let mut again = false;
        let mut verdicts: HashMap<String, OwnerState> = HashMap::new();

        // Dependents: delete those left without a living owner, drop
        // references to owners that are gone when others remain.
        let mut actions = Vec::new();
        for (i, it) in items.iter().enumerate() {
            if it.owners().is_empty() || it.deleting() {
                continue;
            }
            let mut solid = 0;
            let mut unknown = 0;
            let mut stale: HashSet<&str> = HashSet::new();
            let mut waiting = 0;
            for r in it.owners() {
                let state = match verdicts.get(&r.uid) {
                    Some(s) => *s,
                    None => {
                        let s = self.owner_state(&monitors, it, r, &items, &by_uid).await;
                        verdicts.insert(r.uid.clone(), s);
                        s
                    }
                };
                match state {
                    OwnerState::Solid => solid += 1,
                    OwnerState::Unknown => {
                        unknown += 1;
                        again = true;
                    }
                    OwnerState::Unresolvable => unknown += 1,
                    OwnerState::Waiting => {
                        waiting += 1;
                        stale.insert(r.uid.as_str());
                    }
                    OwnerState::Dangling => {
                        stale.insert(r.uid.as_str());
                    }
                }
            }
            if stale.is_empty() {
                continue;
            }
            if unknown > 0 {
                continue;
            }
            if solid > 0 {
                // Still owned: only the references to the gone (or
                // foreground-deleting) owners go.
                let keep: Vec<OwnerReference> = it
                    .owners()
                    .iter()
                    .filter(|r| !stale.contains(r.uid.as_str()))
                    .cloned()
                    .collect();
                actions.push(Action::SetOwners {
                    item: i,
                    owners: keep,
                });
                continue;
            }
            let (policy, unblock) = delete_policy(it, &items, &dependents, waiting > 0);
            actions.push(Action::Delete {
                item: i,
                policy,
                unblock,
            });
        }
        let retry = futures::stream::iter(actions)
            .map(|a| self.act(&items, a))
            .buffer_unordered(PARALLEL)
            .fold(false, |acc, r| async move { acc | r })
            .await;
        again |= retry;

        self.finish_owners(&items, &dependents, &mut again).await;
        Ok(again.then_some(Duration::from_millis(500)))
    }

    /// Owners being deleted with the orphan or foreground finalizer: their
    /// dependents are released (orphan), or the finalizer goes once no
    /// dependent blocks it (foreground).
    async fn finish_owners(
        &self,
        items: &[Item],
        dependents: &HashMap<&str, Vec<usize>>,
        again: &mut bool,
    ) {
        // Owners being deleted with the orphan or foreground finalizer.
        for it in items {
            if !it.deleting() {
                continue;
            }
            let deps: &[usize] = dependents.get(it.uid()).map(Vec::as_slice).unwrap_or(&[]);
            if it.has_finalizer(ORPHAN) {
                let failed = futures::stream::iter(deps.to_vec())
                    .map(|d| {
                        let keep: Vec<OwnerReference> = items[d]
                            .owners()
                            .iter()
                            .filter(|r| r.uid != it.uid())
                            .cloned()
                            .collect();
                        self.act(
                            items,
                            Action::SetOwners {
                                item: d,
                                owners: keep,
                            },
                        )
                    })
                    .buffer_unordered(PARALLEL)
                    .fold(false, |acc, r| async move { acc | r })
                    .await;
                let done = !failed;
                if done {
                    self.remove_finalizer(it, ORPHAN, again).await;
                } else {
                    *again = true;
                }
            } else if it.has_finalizer(FOREGROUND) {
                // Dependents not yet deleting were handled above (their owner
                // is Waiting); the owner goes once no dependent blocks it.
                let blocking = deps.iter().any(|&d| {
                    items[d]
                        .owners()
                        .iter()
                        .any(|r| r.uid == it.uid() && r.block_owner_deletion == Some(true))
                });
                // (A blocking dependent's going is an event: no need to
                // look again before it.)
                if !blocking {
                    self.remove_finalizer(it, FOREGROUND, again).await;
                }
            }
        }
    }

    /// Carries out one action; returns whether to look again soon.
    async fn act(&self, items: &[Item], action: Action) -> bool {
        match action {
            Action::SetOwners { item, owners } => {
                let it = &items[item];
                let api = self.api(&it.monitor, it.ns());
                match self
                    .patch_meta(&api, it, json!({"ownerReferences": owners}))
                    .await
                {
                    Ok(()) => false,
                    Err(e) if util::not_found(&e) => false,
                    Err(e) => {
                        tracing::debug!(name = it.name(), error = %e, "garbage collector: patch failed");
                        true
                    }
                }
            }
            Action::Delete {
                item,
                policy,
                unblock,
            } => {
                let it = &items[item];
                let api = self.api(&it.monitor, it.ns());
                if let Some(owners) = unblock {
                    if let Err(e) = self
                        .patch_meta(&api, it, json!({"ownerReferences": owners}))
                        .await
                    {
                        return !util::not_found(&e);
                    }
                }
                tracing::debug!(
                    kind = %it.monitor.ar.kind,
                    name = it.name(),
                    ?policy,
                    "deleting a dependent whose owners are gone"
                );
                match api
                    .delete(it.name(), &delete_uid(it.uid(), Some(policy)))
                    .await
                {
                    Ok(_) => false,
                    Err(e) if util::gone(&e) => false,
                    Err(e) => {
                        tracing::warn!(name = it.name(), error = %e, "garbage collector: delete failed");
                        true
                    }
                }
            }
        }
    }

    /// Where `r`, an owner reference of `dep`, stands: from the caches when
    /// the owner is there, else from the API server.
    async fn owner_state(
        &self,
        monitors: &Monitors,
        dep: &Item,
        r: &OwnerReference,
        items: &[Item],
        by_uid: &HashMap<&str, usize>,
    ) -> OwnerState {
        if let Some(&i) = by_uid.get(r.uid.as_str()) {
            return if waits_for_dependents(&items[i].obj.metadata) {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            };
        }
        let group = match r.api_version.parse::<GroupVersion>() {
            Ok(gv) => gv.group,
            Err(_) => return OwnerState::Unresolvable,
        };
        let Some(m) = monitors
            .kinds
            .get(&(group, r.kind.clone()))
            .map(|&i| &monitors.list[i])
        else {
            return OwnerState::Unresolvable;
        };
        let ns = if m.namespaced {
            match dep.ns() {
                Some(ns) => Some(ns),
                // A cluster-scoped object cannot be owned by a namespaced one.
                None => return OwnerState::Dangling,
            }
        } else {
            None
        };
        match self.api(m, ns).get(&r.name).await {
            Ok(owner) if owner.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                if waits_for_dependents(&owner.metadata) {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                }
            }
            Ok(_) => OwnerState::Dangling,
            Err(e) if util::not_found(&e) => OwnerState::Dangling,
            Err(e) => {
                tracing::debug!(error = %e, owner = %r.name, "garbage collector: owner lookup failed");
                OwnerState::Unknown
            }
        }
    }

    /// Merge-patches `metadata` fields of `it`, on the condition that it has
    /// not changed since the cache saw it.
    async fn patch_meta(
        &self,
        api: &Api<DynamicObject>,
        it: &Item,
        mut fields: serde_json::Value,
    ) -> Result<(), kube::Error> {
        fields["resourceVersion"] = json!(it.obj.metadata.resource_version);
        let patch = json!({"metadata": fields});
        api.patch(it.name(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
    }

    async fn remove_finalizer(&self, it: &Item, finalizer: &str, again: &mut bool) {
        let left: Vec<&String> = it
            .obj
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != finalizer)
            .collect();
        let api = self.api(&it.monitor, it.ns());
        match self.patch_meta(&api, it, json!({"finalizers": left})).await {
            Ok(()) => tracing::debug!(name = it.name(), finalizer, "removed finalizer"),
            Err(e) if util::not_found(&e) => {}
            Err(e) => {
                tracing::debug!(name = it.name(), error = %e, "removing a finalizer failed");
                *again = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::GroupVersionKind;

    fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    fn caps(verbs: &[&str], scope: Scope) -> ApiCapabilities {
        ApiCapabilities {
            scope,
            subresources: Vec::new(),
            operations: verbs.iter().map(|v| (*v).to_string()).collect(),
        }
    }

    const ALL: &[&str] = &["list", "watch", "delete", "patch", "get", "create"];

    /// A fake discovery: ConfigMaps, Events, a custom resource, and a
    /// resource that cannot be watched.
    fn discovered(with_crontabs: bool) -> Vec<(ApiResource, ApiCapabilities)> {
        let mut all = vec![
            (
                resource("", "v1", "ConfigMap", "configmaps"),
                caps(ALL, Scope::Namespaced),
            ),
            (
                resource("", "v1", "Event", "events"),
                caps(ALL, Scope::Namespaced),
            ),
            (
                resource(
                    "authorization.k8s.io",
                    "v1",
                    "SubjectAccessReview",
                    "subjectaccessreviews",
                ),
                caps(&["create"], Scope::Cluster),
            ),
        ];
        if with_crontabs {
            all.push((
                resource("stable.example.com", "v1", "CronTab", "crontabs"),
                caps(ALL, Scope::Namespaced),
            ));
        }
        all
    }

    fn plurals(resources: &[(ApiResource, bool)]) -> Vec<&str> {
        resources.iter().map(|(ar, _)| ar.plural.as_str()).collect()
    }

    #[test]
    fn watches_what_can_be_listed_watched_deleted_and_patched_but_events() {
        assert_eq!(
            plurals(&worth_watching(discovered(true))),
            ["configmaps", "crontabs"]
        );
    }

    #[test]
    fn a_resync_starts_new_resources_and_drops_vanished_ones() {
        let before = worth_watching(discovered(false));
        let after = worth_watching(discovered(true));
        // The custom resource appears: only it gets a monitor.
        let (keep, start) = resync_plan(&before, &after);
        assert_eq!(keep, [0]);
        assert_eq!(
            start
                .iter()
                .map(|&i| after[i].0.plural.as_str())
                .collect::<Vec<_>>(),
            ["crontabs"]
        );
        // It vanishes from discovery: its monitor goes, the others stay.
        let (keep, start) = resync_plan(&after, &before);
        assert_eq!(keep, [0]);
        assert!(start.is_empty());
        // Nothing changed: nothing to do.
        let (keep, start) = resync_plan(&after, &after);
        assert_eq!(keep, [0, 1]);
        assert!(start.is_empty());
    }

    #[test]
    fn a_new_preferred_version_is_a_new_monitor() {
        let v1 = vec![(
            resource("stable.example.com", "v1", "CronTab", "crontabs"),
            true,
        )];
        let v2 = vec![(
            resource("stable.example.com", "v2", "CronTab", "crontabs"),
            true,
        )];
        let (keep, start) = resync_plan(&v1, &v2);
        assert!(keep.is_empty());
        assert_eq!(start, [0]);
    }
}
