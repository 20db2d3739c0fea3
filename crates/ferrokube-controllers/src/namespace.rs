//! The namespace controller: empties a Terminating namespace (one with a
//! deletionTimestamp and the `kubernetes` finalizer in its spec) of every
//! namespaced resource that discovery lists, reports what is left in the
//! namespace's status conditions as Kubernetes does, and once nothing is
//! left removes its `kubernetes` finalizer through `namespaces/{name}/finalize`
//! so that the API server deletes it.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use kube::api::{DeleteParams, DynamicObject, ListParams, PostParams, PropagationPolicy};
use kube::core::ApiResource;
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::controller::{self, Action, Context, Reconciler};
use crate::util::{self, CACHE_SYNC_TIMEOUT};
use crate::watchqueue::{Informers, Key};

/// The finalizer this controller owns (in `spec.finalizers`).
pub const FINALIZER: &str = "kubernetes";

/// A full pass at least this often.
const RESYNC: Duration = Duration::from_secs(60);
/// How soon a namespace with content left is looked at again: doubling
/// from the first to the last while it stays stuck.
const RECHECK_FIRST: Duration = Duration::from_millis(250);
const RECHECK_MAX: Duration = Duration::from_secs(8);

/// When a namespace still being emptied is next due, and how many rounds
/// it has had.
struct Retry {
    rounds: u32,
    due: Instant,
}

/// The condition types, in Kubernetes' order, with the reason and message
/// each has when nothing is wrong.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// The controller's name (kube-controller-manager's `--controllers`).
pub const NAME: &str = "namespace";

/// Runs the namespace controller until `cancel`.
pub async fn run(client: Client, cancel: CancellationToken) {
    controller::run_standalone(client.clone(), 1, |informers| {
        NamespaceController::new(informers, &client, cancel)
    })
    .await;
}

/// Sets the controller up over the shared `informers` (spawn them after);
/// the future it returns runs it until `cancel`.
pub fn start(
    informers: &mut Informers,
    client: Client,
    cancel: CancellationToken,
) -> impl Future<Output = ()> + Send + 'static {
    controller::run(NamespaceController::new(informers, &client, cancel), 1)
}

/// The namespace controller: a pass over the terminating namespaces on
/// every change.
struct NamespaceController {
    ctx: Context,
    client: Client,
    namespaces: Store<Namespace>,
    /// When to look again at each namespace whose content is not gone yet.
    retries: Mutex<HashMap<String, Retry>>,
}

impl NamespaceController {
    fn new(informers: &mut Informers, client: &Client, cancel: CancellationToken) -> Arc<Self> {
        let mut ctx = Context::new(NAME, cancel).sync_within(CACHE_SYNC_TIMEOUT);
        let namespaces = informers.get::<Namespace>().pass_on_change(&mut ctx);
        Arc::new(NamespaceController {
            client: ctx.client(client),
            namespaces,
            retries: Mutex::default(),
            ctx,
        })
    }
}

impl Reconciler for NamespaceController {
    fn context(&self) -> &Context {
        &self.ctx
    }

    async fn reconcile(&self, _: &Key) -> anyhow::Result<Action> {
        let mut again: Option<Duration> = None;
        let mut soonest = |d: Duration| again = Some(again.map_or(d, |a| a.min(d)));
        let doomed: Vec<String> = self
            .namespaces
            .state()
            .iter()
            .filter(|ns| terminating(ns))
            .filter_map(|ns| ns.metadata.name.clone())
            .collect();
        lock(&self.retries).retain(|name, _| doomed.contains(name));
        for name in doomed {
            let now = Instant::now();
            if let Some(r) = lock(&self.retries).get(&name) {
                if r.due > now {
                    soonest(r.due - now);
                    continue;
                }
            }
            let finished = match finalize(&self.client, &name).await {
                Ok(done) => done,
                Err(e) => {
                    tracing::warn!(namespace = %name, error = format!("{e:#}"), "namespace deletion");
                    false
                }
            };
            let mut retries = lock(&self.retries);
            if finished {
                retries.remove(&name);
                continue;
            }
            let r = retries.entry(name).or_insert(Retry {
                rounds: 0,
                due: now,
            });
            let wait = RECHECK_FIRST
                .saturating_mul(1 << r.rounds.min(6))
                .min(RECHECK_MAX);
            r.rounds += 1;
            r.due = Instant::now() + wait;
            soonest(wait);
        }
        Ok(Action::from(again).sooner(Action::requeue(RESYNC)))
    }

    fn error_policy(&self, _: &Key, error: &anyhow::Error, _: u32) -> Action {
        util::pass_failed(NAME, error)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether `ns` is being deleted and still carries our finalizer.
fn terminating(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
        && ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

/// What is left in a namespace after a round of deletes.
#[derive(Default)]
struct Remaining {
    /// "resource.group" → count.
    by_resource: BTreeMap<String, usize>,
    /// finalizer → count of objects carrying it.
    by_finalizer: BTreeMap<String, usize>,
    /// Failures to delete, one message per resource.
    errors: Vec<String>,
    discovery_error: Option<String>,
}

/// One round for namespace `name`: deletes its content, records the
/// conditions, and finalizes it when empty. Returns whether it is done.
async fn finalize(client: &Client, name: &str) -> anyhow::Result<bool> {
    let mut left = Remaining::default();
    let resources = match namespaced_resources(client).await {
        Ok(r) => r,
        Err(e) => {
            left.discovery_error = Some(e.to_string());
            Vec::new()
        }
    };
    for (ar, collection) in &resources {
        delete_all(client, name, ar, *collection, &mut left).await;
    }
    for (ar, _) in &resources {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), name, ar);
        match api.list(&ListParams::default()).await {
            Ok(list) if !list.items.is_empty() => {
                left.by_resource
                    .insert(format!("{}.{}", ar.plural, ar.group), list.items.len());
                for obj in &list.items {
                    for f in obj.metadata.finalizers.iter().flatten() {
                        *left.by_finalizer.entry(f.clone()).or_default() += 1;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => left.errors.push(format!("{}.{}: {e}", ar.plural, ar.group)),
        }
    }
    let api: Api<Namespace> = Api::all(client.clone());
    let Some(mut ns) = api.get_opt(name).await? else {
        return Ok(true);
    };
    if !terminating(&ns) {
        return Ok(true);
    }
    if set_conditions(&mut ns, &left) {
        match api.replace_status(name, &PostParams::default(), &ns).await {
            Ok(n) => ns = n,
            Err(e) if util::conflict(&e) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    let done =
        left.discovery_error.is_none() && left.errors.is_empty() && left.by_resource.is_empty();
    if !done {
        return Ok(false);
    }
    if let Some(spec) = ns.spec.as_mut() {
        if let Some(f) = spec.finalizers.as_mut() {
            f.retain(|x| x != FINALIZER);
        }
    }
    match api
        .replace_subresource("finalize", name, &PostParams::default(), &ns)
        .await
    {
        Ok(_) => {
            tracing::info!(namespace = name, "namespace emptied and finalized");
            Ok(true)
        }
        Err(e) if util::not_found(&e) => Ok(true),
        Err(e) if util::conflict(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Every namespaced resource (preferred version) that can be listed and
/// deleted.
async fn namespaced_resources(client: &Client) -> anyhow::Result<Vec<(ApiResource, bool)>> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = Vec::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            if caps.scope == Scope::Namespaced
                && caps.supports_operation(verbs::LIST)
                && caps.supports_operation(verbs::DELETE)
            {
                let collection = caps.supports_operation(verbs::DELETE_COLLECTION);
                out.push((ar, collection));
            }
        }
    }
    Ok(out)
}

/// Deletes every object of `ar` in namespace `ns` (background cascade):
/// one `deletecollection` where the resource offers it, else one by one.
async fn delete_all(
    client: &Client,
    ns: &str,
    ar: &ApiResource,
    collection: bool,
    left: &mut Remaining,
) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    if collection {
        match api.delete_collection(&dp, &ListParams::default()).await {
            Ok(_) => {}
            Err(e) if util::not_found(&e) => {}
            Err(e) => left.errors.push(format!("{}.{}: {e}", ar.plural, ar.group)),
        }
        return;
    }
    let items = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            left.errors.push(format!("{}.{}: {e}", ar.plural, ar.group));
            return;
        }
    };
    for obj in items {
        if obj.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(name) = obj.metadata.name.as_deref() else {
            continue;
        };
        match api.delete(name, &dp).await {
            Ok(_) => {}
            Err(e) if util::not_found(&e) => {}
            Err(e) => {
                left.errors.push(format!("{}.{}: {e}", ar.plural, ar.group));
                return;
            }
        }
    }
}

/// Brings the namespace's deletion conditions to what `left` says. Returns
/// whether anything changed.
fn set_conditions(ns: &mut Namespace, left: &Remaining) -> bool {
    let mut wanted: Vec<(&str, String, String)> = Vec::new();
    for (ty, ok_reason, ok_message) in CONDITIONS {
        let bad = match ty {
            "NamespaceDeletionDiscoveryFailure" => left
                .discovery_error
                .as_ref()
                .map(|e| ("DiscoveryFailed".to_string(), e.clone())),
            "NamespaceDeletionContentFailure" if !left.errors.is_empty() => {
                let mut msgs = left.errors.clone();
                msgs.sort();
                Some((
                    "ContentDeletionFailed".to_string(),
                    format!(
                        "Failed to delete all resource types, {} remaining: {}",
                        msgs.len(),
                        msgs.join(", ")
                    ),
                ))
            }
            "NamespaceContentRemaining" if !left.by_resource.is_empty() => {
                let parts: Vec<String> = left
                    .by_resource
                    .iter()
                    .map(|(r, n)| format!("{r} has {n} resource instances"))
                    .collect();
                Some((
                    "SomeResourcesRemain".to_string(),
                    format!("Some resources are remaining: {}", parts.join(", ")),
                ))
            }
            "NamespaceFinalizersRemaining" if !left.by_finalizer.is_empty() => {
                let parts: Vec<String> = left
                    .by_finalizer
                    .iter()
                    .map(|(f, n)| format!("{f} in {n} resource instances"))
                    .collect();
                Some((
                    "SomeFinalizersRemain".to_string(),
                    format!(
                        "Some content in the namespace has finalizers remaining: {}",
                        parts.join(", ")
                    ),
                ))
            }
            _ => None,
        };
        match bad {
            Some((reason, message)) => wanted.push((ty, reason, message)),
            None => wanted.push((ty, ok_reason.to_string(), ok_message.to_string())),
        }
    }
    let status = ns.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let mut changed = false;
    for (ty, reason, message) in wanted {
        let truth = if CONDITIONS.iter().any(|(t, r, _)| *t == ty && *r == reason) {
            "False"
        } else {
            "True"
        };
        match conditions.iter_mut().find(|c| c.type_ == ty) {
            None => {
                conditions.push(NamespaceCondition {
                    type_: ty.to_string(),
                    status: truth.to_string(),
                    reason: Some(reason),
                    message: Some(message),
                    last_transition_time: Some(util::now()),
                });
                changed = true;
            }
            Some(c) => {
                if c.status != truth
                    || c.reason.as_deref() != Some(&reason)
                    || c.message.as_deref() != Some(&message)
                {
                    if c.status != truth {
                        c.last_transition_time = Some(util::now());
                    }
                    c.status = truth.to_string();
                    c.reason = Some(reason);
                    c.message = Some(message);
                    changed = true;
                }
            }
        }
    }
    changed
}
