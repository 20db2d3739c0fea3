//! The kinds served now: the registry's rows, each resource's strategy, the
//! discovery documents and the OpenAPI documents made from them, as one
//! value that changes while the server runs (a CustomResourceDefinition
//! established or deleted).
//!
//! Readers take a snapshot ([`Kinds::registry`], [`Kinds::discovery`],
//! [`Kinds::openapi`]) that stays whole for as long as they hold it; a
//! change builds the next snapshot beside the current one and swaps it in,
//! after the watch cache has started (or stopped) caching the resource, so
//! a kind is never served without its cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use ferrokube_api::registry::{intern_list, Registry, ResourceDef};
use ferrokube_api::status::ApiError;
use parking_lot::RwLock;
use serde_json::Value;

use ferrokube_openapi::CustomSchema;

use crate::discovery::{Discovery, RemoteGroupVersion};
use crate::strategy::Strategy;
use crate::watchcache::{FieldsFn, WatchCache};

/// A resource (one version of it) to serve.
#[derive(Clone, Debug)]
pub struct Kind {
    /// Its row: names, scope, verbs, subresources, storage prefix.
    pub def: ResourceDef,
    /// Its rules.
    pub strategy: Arc<dyn Strategy>,
    /// What the OpenAPI documents publish of a CustomResourceDefinition's
    /// version (its `openAPIV3Schema`, list kind, ...); `None` for built-in
    /// kinds, whose schemas come from their types.
    pub schema: Option<CustomSchema>,
}

/// `(group, version, plural)`: one version of a resource (a custom
/// resource's versions each have their schema).
type VersionedResource = (&'static str, &'static str, &'static str);

/// Custom resources' published schemas by (group, version, plural).
type CustomSchemas = BTreeMap<(&'static str, &'static str, &'static str), CustomSchema>;

/// One whole state of what is served.
struct Served {
    registry: Arc<Registry>,
    strategies: HashMap<VersionedResource, Arc<dyn Strategy>>,
    /// Custom schemas by (group, version, plural).
    schemas: CustomSchemas,
    /// The group versions extension API servers serve behind the
    /// aggregator, for discovery.
    remote: Vec<RemoteGroupVersion>,
    /// Group versions this server serves outside the registry (the
    /// resource metrics API), for discovery.
    own: Vec<RemoteGroupVersion>,
    discovery: Arc<Discovery>,
    /// Built on first use: a document nobody asks for is never built.
    openapi: OnceLock<Arc<ferrokube_openapi::OpenApi>>,
}

impl Served {
    fn new(
        registry: Registry,
        strategies: HashMap<VersionedResource, Arc<dyn Strategy>>,
        schemas: CustomSchemas,
        remote: Vec<RemoteGroupVersion>,
        own: Vec<RemoteGroupVersion>,
    ) -> Served {
        Served {
            discovery: Arc::new(
                Discovery::build(&registry)
                    .with_own(&own)
                    .with_remote(&remote),
            ),
            own,
            registry: Arc::new(registry),
            strategies,
            schemas,
            remote,
            openapi: OnceLock::new(),
        }
    }
}

/// The kinds served, changing while the server runs. See the module
/// documentation.
pub struct Kinds {
    current: RwLock<Arc<Served>>,
    cache: Arc<WatchCache>,
    /// One change at a time.
    changing: tokio::sync::Mutex<()>,
    /// Counts changes, for those who follow them.
    changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Kinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kinds")
            .field("resources", &self.registry().all().len())
            .finish_non_exhaustive()
    }
}

impl Kinds {
    /// The kinds of `registry` (the built-in ones), cached by `cache`.
    pub fn new(registry: Registry, cache: Arc<WatchCache>) -> Kinds {
        // Each built-in resource with its kind's strategy.
        let strategies = registry
            .all()
            .iter()
            .map(|d| ((d.group, d.version, d.plural), crate::strategy::builtin(d)))
            .collect();
        Kinds {
            current: RwLock::new(Arc::new(Served::new(
                registry,
                strategies,
                BTreeMap::new(),
                Vec::new(),
                Vec::new(),
            ))),
            cache,
            changing: tokio::sync::Mutex::new(()),
            changes: tokio::sync::watch::channel(0).0,
        }
    }

    fn snapshot(&self) -> Arc<Served> {
        self.current.read().clone()
    }

    /// The rows served now.
    pub fn registry(&self) -> Arc<Registry> {
        self.snapshot().registry.clone()
    }

    /// By group, version and plural (the REST path).
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<ResourceDef> {
        self.snapshot()
            .registry
            .get(group, version, plural)
            .cloned()
    }

    /// The rules of a resource: the strategy it was added with, else its
    /// built-in one.
    pub fn strategy(&self, def: &ResourceDef) -> Arc<dyn Strategy> {
        self.snapshot()
            .strategies
            .get(&(def.group, def.version, def.plural))
            .cloned()
            .unwrap_or_else(|| crate::strategy::builtin(def))
    }

    /// The discovery documents of what is served now.
    pub(crate) fn discovery(&self) -> Arc<Discovery> {
        self.snapshot().discovery.clone()
    }

    /// The OpenAPI documents of what is served now (built on first use
    /// after a change).
    pub(crate) fn openapi(&self) -> Arc<ferrokube_openapi::OpenApi> {
        let served = self.snapshot();
        served
            .openapi
            .get_or_init(|| Arc::new(build_openapi(&served.registry, &served.schemas)))
            .clone()
    }

    /// Follows changes: the value moves on every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Serves `kinds` (the versions of one resource, preferred first),
    /// replacing what was served under the same group, version and plural:
    /// the watch cache caches their storage first, up to the store's current
    /// revision. Refused when a storage prefix would nest with another
    /// resource's (the cache routes keys by prefix).
    pub async fn add(&self, kinds: Vec<Kind>) -> Result<(), ApiError> {
        let _one = self.changing.lock().await;
        let served = self.snapshot();
        for k in &kinds {
            check_prefix(&served.registry, &k.def)?;
        }
        for k in &kinds {
            let fields = fields_of(&k.def, k.strategy.clone());
            self.cache
                .add_resource(k.def.storage_prefix, fields)
                .await
                .map_err(|e| {
                    ApiError::internal(format!("caching {}.{}: {e}", k.def.plural, k.def.group))
                })?;
        }
        // A cache starts from the feeder's revision, which may trail the
        // store's: catch up, so that the kind is served with everything
        // stored before it was (a write just made included).
        if !kinds.is_empty() {
            if let Err(e) = self.cache.sync(std::time::Duration::from_secs(10)).await {
                // Reads wait for the cache on their own: serve anyway.
                tracing::warn!(error = %e, "new kinds: the watch cache did not catch up with the store");
            }
        }
        let mut strategies = served.strategies.clone();
        let mut schemas = served.schemas.clone();
        for k in &kinds {
            strategies.insert(
                (k.def.group, k.def.version, k.def.plural),
                k.strategy.clone(),
            );
            let key = (k.def.group, k.def.version, k.def.plural);
            match &k.schema {
                Some(s) => schemas.insert(key, s.clone()),
                None => schemas.remove(&key),
            };
        }
        let registry = served
            .registry
            .with(kinds.into_iter().map(|k| k.def).collect());
        self.swap(Served::new(
            registry,
            strategies,
            schemas,
            served.remote.clone(),
            served.own.clone(),
        ));
        Ok(())
    }

    /// Stops serving every version of `group`/`plural` (its stored objects
    /// stay) and its cache; watchers of it end.
    pub async fn remove(&self, group: &str, plural: &str) {
        let _one = self.changing.lock().await;
        let served = self.snapshot();
        let prefixes: Vec<&'static str> = served
            .registry
            .all()
            .iter()
            .filter(|r| r.group == group && r.plural == plural)
            .map(|r| r.storage_prefix)
            .collect();
        if prefixes.is_empty() {
            return;
        }
        let mut strategies = served.strategies.clone();
        strategies.retain(|(g, _, p), _| !(*g == group && *p == plural));
        let mut schemas = served.schemas.clone();
        schemas.retain(|(g, _, p), _| !(*g == group && *p == plural));
        let registry = served.registry.without(group, plural);
        // Not served first, then not cached: no request finds the kind
        // without its cache.
        self.swap(Served::new(
            registry,
            strategies,
            schemas,
            served.remote.clone(),
            served.own.clone(),
        ));
        for prefix in prefixes {
            let still_used = self
                .registry()
                .all()
                .iter()
                .any(|r| r.storage_prefix == prefix);
            if !still_used {
                self.cache.remove_resource(prefix).await;
            }
        }
    }

    /// Gives `strategy` to the built-in resource `group`/`plural` (a kind
    /// whose rules live outside the strategy table, as the aggregator's
    /// APIServices).
    ///
    /// Under the same lock as every other change: a change that read the
    /// snapshot before this one would otherwise put the old strategy back
    /// when it swaps its own in.
    pub(crate) async fn set_strategy(
        &self,
        group: &'static str,
        plural: &'static str,
        strategy: Arc<dyn Strategy>,
    ) {
        let _one = self.changing.lock().await;
        let mut current = self.current.write();
        let mut strategies = current.strategies.clone();
        for d in current.registry.all() {
            if d.group == group && d.plural == plural {
                strategies.insert((d.group, d.version, d.plural), strategy.clone());
            }
        }
        *current = Arc::new(Served::new(
            (*current.registry).clone(),
            strategies,
            current.schemas.clone(),
            current.remote.clone(),
            current.own.clone(),
        ));
    }

    /// The group versions this server serves outside the registry.
    pub(crate) fn own(&self) -> Vec<RemoteGroupVersion> {
        self.snapshot().own.clone()
    }

    /// Serves `own`'s group versions outside the registry (handlers of
    /// their own), for discovery and their local APIServices.
    pub(crate) async fn set_own(&self, own: Vec<RemoteGroupVersion>) {
        let _one = self.changing.lock().await;
        let served = self.snapshot();
        if served.own == own {
            return;
        }
        let next = Served::new(
            (*served.registry).clone(),
            served.strategies.clone(),
            served.schemas.clone(),
            served.remote.clone(),
            own,
        );
        if let Some(openapi) = served.openapi.get() {
            let _ = next.openapi.set(openapi.clone());
        }
        self.swap(next);
    }

    /// The group versions served behind the aggregator, for discovery;
    /// nothing changes when they are the same as before.
    pub(crate) async fn set_remote(&self, remote: Vec<RemoteGroupVersion>) {
        let _one = self.changing.lock().await;
        let served = self.snapshot();
        if served.remote == remote {
            return;
        }
        let next = Served::new(
            (*served.registry).clone(),
            served.strategies.clone(),
            served.schemas.clone(),
            remote,
            served.own.clone(),
        );
        // The OpenAPI documents do not list what is served elsewhere.
        if let Some(openapi) = served.openapi.get() {
            let _ = next.openapi.set(openapi.clone());
        }
        self.swap(next);
    }

    fn swap(&self, next: Served) {
        *self.current.write() = Arc::new(next);
        self.changes.send_modify(|n| *n += 1);
    }
}

/// Refuses a row whose storage prefix nests with another resource's.
fn check_prefix(registry: &Registry, def: &ResourceDef) -> Result<(), ApiError> {
    let clash = registry.all().iter().find(|r| {
        let same_resource = r.group == def.group && r.plural == def.plural;
        !same_resource
            && (r.storage_prefix.starts_with(def.storage_prefix)
                || def.storage_prefix.starts_with(r.storage_prefix))
    });
    match clash {
        Some(r) => Err(ApiError::bad_request(format!(
            "the storage of {}.{} ({}) overlaps that of {}.{} ({})",
            def.plural, def.group, def.storage_prefix, r.plural, r.group, r.storage_prefix
        ))),
        None => Ok(()),
    }
}

/// The watch cache's field index of a resource: its strategy's selectable
/// fields.
fn fields_of(def: &ResourceDef, strategy: Arc<dyn Strategy>) -> FieldsFn {
    let def = def.clone();
    Arc::new(move |v: &Value| strategy.selectable_fields(&def, v))
}

/// The OpenAPI documents of every resource, with the strategic merge
/// patch's list strategies and merge keys on list fields, and the custom
/// resources' schemas (each served version of a CRD with its definitions
/// and paths, as Kubernetes' CRD OpenAPI builder publishes them).
pub(crate) fn build_openapi(
    registry: &Registry,
    schemas: &CustomSchemas,
) -> ferrokube_openapi::OpenApi {
    use ferrokube_api::patch::schema::{Strategy, FIELDS};
    let resources: Vec<ferrokube_openapi::ResourceDesc> = registry
        .all()
        .iter()
        .map(|r| ferrokube_openapi::ResourceDesc {
            group: r.group,
            version: r.version,
            kind: r.kind,
            plural: r.plural,
            namespaced: r.namespaced,
            verbs: r.verbs,
            subresources: intern_list(&r.subresources.iter().map(|s| s.name).collect::<Vec<_>>()),
        })
        .collect();
    let meta = |schema: &str, field: &str| {
        let ty = schema.rsplit('.').next().unwrap_or(schema);
        FIELDS
            .iter()
            .find(|(t, f, _)| *t == ty && *f == field)
            .map(|(_, _, m)| {
                let strategy = match (m.strategy, m.retain_keys) {
                    (Strategy::Merge, true) => Some("merge,retainKeys"),
                    (Strategy::Merge, false) => Some("merge"),
                    (Strategy::Replace, true) => Some("retainKeys"),
                    (Strategy::Replace, false) => None,
                };
                ferrokube_openapi::ListPatch {
                    strategy,
                    merge_key: m.merge_key,
                    ..Default::default()
                }
            })
    };
    // Only versions with a row: definitions and paths go together.
    let custom: Vec<CustomSchema> = schemas
        .iter()
        .filter(|((g, v, p), _)| registry.get(g, v, p).is_some())
        .map(|(_, s)| s.clone())
        .collect();
    ferrokube_openapi::OpenApi::build_with_custom(&resources, Some(&meta), &custom)
}
