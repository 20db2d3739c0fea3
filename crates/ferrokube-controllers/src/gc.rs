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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DynamicObject, Patch, PatchParams, PropagationPolicy};
use kube::core::{ApiResource, GroupVersion, ObjectMeta, PartialObjectMeta};
use kube::discovery::{verbs, Discovery, Scope};
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
}

/// The collector's view: one cache per resource and how to reach each kind.
struct Collector {
    ctx: Context,
    client: Client,
    monitors: Vec<Monitor>,
    /// (group, kind) → index into `monitors`.
    kinds: HashMap<(String, String), usize>,
}

/// How often discovery is read again for resources that came or went.
const REDISCOVER: Duration = Duration::from_secs(60);

/// The resources worth watching: every one that can be listed, watched,
/// deleted and patched, events excepted, in its preferred version.
fn monitored(discovery: &Discovery) -> Vec<(ApiResource, bool)> {
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            let needed = [verbs::LIST, verbs::WATCH, verbs::DELETE, verbs::PATCH];
            if needed.iter().all(|v| caps.supports_operation(v)) && ar.plural != "events" {
                out.push((ar, caps.scope == Scope::Namespaced));
            }
        }
    }
    out
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

fn names(resources: &[(ApiResource, bool)]) -> Vec<String> {
    let mut v: Vec<String> = resources
        .iter()
        .map(|(ar, _)| format!("{}/{}", ar.api_version, ar.plural))
        .collect();
    v.sort();
    v
}

/// Runs the garbage collector until `cancel`. When discovery's resources
/// change, it starts again over the new set.
pub async fn run(client: Client, cancel: CancellationToken) {
    let Some(mut resources) = discover(&client, &cancel).await else {
        return;
    };
    loop {
        let round = cancel.child_token();
        let watch_discovery = {
            let (client, round, known) = (client.clone(), round.clone(), names(&resources));
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = round.cancelled() => return None,
                        _ = tokio::time::sleep(REDISCOVER) => {}
                    }
                    if let Ok(d) = Discovery::new(client.clone()).run().await {
                        let now = monitored(&d);
                        if names(&now) != known {
                            tracing::info!("garbage collector: resources changed; restarting");
                            round.cancel();
                            return Some(now);
                        }
                    }
                }
            })
        };
        collect(client.clone(), &resources, round.clone()).await;
        round.cancel();
        if cancel.is_cancelled() {
            return;
        }
        match watch_discovery.await {
            Ok(Some(now)) => resources = now,
            _ => match discover(&client, &cancel).await {
                Some(now) => resources = now,
                None => return,
            },
        }
    }
}

/// Watches `resources` and collects until `cancel`.
async fn collect(client: Client, resources: &[(ApiResource, bool)], cancel: CancellationToken) {
    let ctx = Context::new(NAME, cancel.clone());
    let mut monitors = Vec::new();
    let mut kinds = HashMap::new();
    for (ar, namespaced) in resources {
        // Metadata only: the collector reads nothing else.
        let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client.clone(), ar);
        // Only what ownership depends on wakes the collector (not, say, a
        // Lease renewal or a status update).
        let cache = util::spawn_cache_with(
            api,
            ar.clone(),
            watcher::Config::default(),
            &ctx,
            ownership_fingerprint,
        );
        kinds.insert((ar.group.clone(), ar.kind.clone()), monitors.len());
        monitors.push(Monitor {
            namespaced: *namespaced,
            ar: ar.clone(),
            cache,
        });
    }
    tracing::info!(resources = monitors.len(), "garbage collector watching");
    let synced = futures::future::join_all(
        monitors
            .iter()
            .map(|m| util::wait_synced(&m.cache, &cancel)),
    );
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = synced => {}
    }
    let gc = Arc::new(Collector {
        client: ctx.client(&client),
        monitors,
        kinds,
        ctx,
    });
    controller::run(gc, 1).await;
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
    use std::hash::{Hash, Hasher};
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
    monitor: usize,
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
    fn api(&self, monitor: usize, ns: Option<&str>) -> Api<DynamicObject> {
        let m = &self.monitors[monitor];
        match (m.namespaced, ns) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &m.ar),
            _ => Api::all_with(self.client.clone(), &m.ar),
        }
    }

    /// One pass over every cache. Asks to run again soon while work is
    /// outstanding (a conflict, or an owner waiting for dependents).
    async fn pass(&self) -> anyhow::Result<Option<Duration>> {
        let mut items = Vec::new();
        for (i, m) in self.monitors.iter().enumerate() {
            for obj in m.cache.state() {
                items.push(Item { monitor: i, obj });
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
                        let s = self.owner_state(it, r, &items, &by_uid).await;
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
                let api = self.api(it.monitor, it.ns());
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
                let api = self.api(it.monitor, it.ns());
                if let Some(owners) = unblock {
                    if let Err(e) = self
                        .patch_meta(&api, it, json!({"ownerReferences": owners}))
                        .await
                    {
                        return !util::not_found(&e);
                    }
                }
                tracing::debug!(
                    kind = %self.monitors[it.monitor].ar.kind,
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
        let Some(&m) = self.kinds.get(&(group, r.kind.clone())) else {
            return OwnerState::Unresolvable;
        };
        let ns = if self.monitors[m].namespaced {
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
        let api = self.api(it.monitor, it.ns());
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
