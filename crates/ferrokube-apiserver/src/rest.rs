//! The generic REST storage: create, get, list, watch, update, patch, delete
//! and deletecollection for every resource in the registry, over the store
//! (writes, consistent reads) and the watch cache (lists and watches), with
//! Kubernetes' object semantics: server-owned metadata, optimistic
//! concurrency on resourceVersion, status written only through `/status`,
//! finalizers and graceful deletion, namespaces that must exist and not be
//! terminating.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_api::fields::FieldSelector;
use ferrokube_api::labels::Selector;
use ferrokube_api::patch::{json_patch, merge_patch, strategic_merge_patch};
use ferrokube_api::registry::{Registry, ResourceDef};
use ferrokube_api::status::{ApiError, FieldError};
use ferrokube_store::{KeyValue, RangeRequest, Revision, Store, StoreError};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::allocator::Allocator;
use crate::kind_storage::KindStorage;
use crate::objectmeta::{self, meta_str};
use crate::options::{
    parse_propagation, DeleteOptions, FieldValidation, ListOptions, Propagation, RvMatch,
    WriteOptions,
};
use crate::strategy::{ScalePaths, Strategy};
use crate::watchcache::{CacheError, CachedObject, WatchCache};

/// How long a read waits for the watch cache to reach a revision.
const CACHE_WAIT: Duration = Duration::from_secs(3);

/// Attempts of a read-modify-write before giving up on conflicts.
pub(crate) const UPDATE_ATTEMPTS: usize = 8;

/// A result whose error is the Kubernetes `Status` the client gets.
pub type ApiResult<T> = Result<T, ApiError>;

/// Maps a store error to the API's.
pub(crate) fn store_error(def: &ResourceDef, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => ApiError::not_found(def.group, def.plural, name),
        StoreError::AlreadyExists { .. } => ApiError::already_exists(def.group, def.plural, name),
        StoreError::Conflict { .. } => ApiError::stale(def.group, def.plural, name),
        StoreError::Compacted {
            requested,
            compacted,
        } => ApiError::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        StoreError::FutureRevision { requested, current } => {
            ApiError::too_large_resource_version(requested, current)
        }
        StoreError::ValueTooLarge { size, limit } => ApiError::too_large(limit).with_message(
            format!("object is {size} bytes after encoding, more than the limit of {limit}"),
        ),
        StoreError::InvalidKey(msg) | StoreError::InvalidRequest(msg) => ApiError::bad_request(msg),
        StoreError::Unavailable(msg) => ApiError::unavailable(msg),
        other => ApiError::internal(other),
    }
}

trait WithMessage {
    fn with_message(self, m: String) -> Self;
}

impl WithMessage for ApiError {
    fn with_message(mut self, m: String) -> Self {
        self.message = m;
        self
    }
}

pub(crate) fn cache_error(e: CacheError) -> ApiError {
    match e {
        CacheError::TooOld { requested, oldest } => {
            ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
        }
        CacheError::NotReady { requested, current } => {
            ApiError::too_large_resource_version(requested, current)
        }
        CacheError::Reset => ApiError::unavailable("the watch cache is being rebuilt; retry"),
        CacheError::Store(e) => ApiError::internal(e),
    }
}

/// The selectors of a list or watch.
pub(crate) struct Filter {
    pub(crate) labels: Selector,
    pub(crate) fields: FieldSelector,
}

impl Filter {
    /// The selectors of `opts` (and `name`, if any) for `def`'s resource,
    /// whose strategy is `strategy`.
    pub(crate) fn new(
        strategy: &dyn Strategy,
        def: &ResourceDef,
        opts: &ListOptions,
        name: &str,
    ) -> ApiResult<Filter> {
        let labels = Selector::parse(&opts.label_selector)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        // Parsed, checked against the kind's selectable fields, and old
        // names mapped to current ones (pods' `spec.host`).
        let mut fields = FieldSelector::parse(&opts.field_selector)
            .and_then(|f| strategy.convert_field_selector(def, &f))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if !name.is_empty() {
            fields
                .requirements
                .push(ferrokube_api::fields::FieldRequirement::Equals(
                    "metadata.name".into(),
                    name.into(),
                ));
        }
        Ok(Filter { labels, fields })
    }

    pub(crate) fn matches(&self, o: &CachedObject) -> bool {
        self.labels.matches(&o.labels) && (self.fields.is_empty() || self.fields.matches(&o.fields))
    }

    fn matches_value(&self, strategy: &dyn Strategy, def: &ResourceDef, v: &Value) -> bool {
        let labels = objectmeta::labels_of(v.get("metadata"));
        self.labels.matches(&labels)
            && (self.fields.is_empty() || self.fields.matches(&strategy.selectable_fields(def, v)))
    }

    fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }
}

/// One page (or all) of a list.
pub(crate) struct ListResult {
    pub(crate) items: Vec<Bytes>,
    pub(crate) revision: Revision,
    pub(crate) continue_token: Option<String>,
    pub(crate) remaining: Option<i64>,
}

/// The REST storage over all resources.
pub struct Rest {
    /// The kinds served now, and how each is stored; they change while the
    /// server runs.
    pub kinds: crate::served::Kinds,
    pub(crate) store: Arc<dyn Store>,
    /// The watch cache every list, get and watch of a cached resource is
    /// served from.
    pub cache: Arc<WatchCache>,
    pub(crate) allocator: Allocator,
    /// The lease Events are written with, and until when it is handed out.
    pub(crate) event_lease:
        tokio::sync::Mutex<Option<(ferrokube_store::LeaseId, std::time::Instant)>>,
    /// How long Events live, in seconds.
    pub(crate) event_ttl_seconds: i64,
    /// Escalation prevention for writes of RBAC roles and bindings (none:
    /// not checked).
    pub(crate) escalation: Option<crate::authz::escalation::Escalation>,
    /// The Pod Security admission's defaults and exemptions.
    pub(crate) pod_security: crate::podsecurity::Config,
    /// Dynamic admission: webhook configurations parsed, connections kept.
    pub(crate) webhooks: crate::webhook::Webhooks,
    /// ValidatingAdmissionPolicies and their bindings, parsed.
    pub(crate) policies: crate::policy::Policies,
}

/// How long Events live by default (Kubernetes' `--event-ttl`).
pub(crate) const EVENT_TTL_SECONDS: i64 = 3600;

impl Rest {
    /// The REST storage over `store`, its reads served by `cache`, Service
    /// addresses and ports from `allocator`, Events living
    /// `event_ttl_seconds`; RBAC escalation not checked, Pod Security with
    /// its defaults (Kubernetes' `privileged` everywhere).
    pub fn new(
        registry: Registry,
        store: Arc<dyn Store>,
        cache: Arc<WatchCache>,
        allocator: Allocator,
        event_ttl_seconds: i64,
    ) -> Rest {
        Rest {
            kinds: crate::served::Kinds::new(registry, cache.clone()),
            store,
            cache,
            allocator,
            event_lease: Default::default(),
            event_ttl_seconds,
            escalation: None,
            pod_security: Default::default(),
            webhooks: Default::default(),
            policies: Default::default(),
        }
    }

    /// The registry strategy of `def`'s resource (see [`crate::served`]).
    pub(crate) fn strategy(&self, def: &ResourceDef) -> Arc<dyn Strategy> {
        self.kinds.strategy(def)
    }

    /// The selectors of a list or watch of `def` (and `name`, if any).
    pub(crate) fn filter(
        &self,
        def: &ResourceDef,
        opts: &ListOptions,
        name: &str,
    ) -> ApiResult<Filter> {
        Filter::new(self.strategy(def).as_ref(), def, opts, name)
    }
}

/// What a delete did to an object.
#[derive(Debug)]
pub(crate) struct Deleted {
    /// The object as it was removed, or (waiting on finalizers or a grace
    /// period) as it is now.
    pub(crate) object: Value,
    /// Whether it is gone (or, dry-run, would be).
    pub(crate) removed: bool,
}

impl Deleted {
    /// The body of the answer, as Kubernetes' generic registry
    /// (`finalizeDelete`) gives it: the object when the kind returns
    /// deleted objects or the delete waits, else a success `Status` with
    /// the object's name, the resource's group and plural (as `kind`) and
    /// its uid.
    pub(crate) fn answer(self, def: &ResourceDef, returns_object: bool) -> Value {
        if returns_object || !self.removed {
            return self.object;
        }
        ferrokube_api::status::success_status(
            def.group,
            def.plural,
            meta_str(&self.object, "name").unwrap_or_default(),
            meta_str(&self.object, "uid").unwrap_or_default(),
        )
    }
}

/// Server-side apply's fields and owners of `config` over `old` (`new`:
/// the two merged), through `subresource` when there is one.
fn apply_fields(
    old: &Value,
    new: Value,
    config: &Value,
    subresource: &str,
    opts: &WriteOptions,
    shapes: Option<&dyn crate::strategy::ApplyShapes>,
) -> Result<Value, Vec<crate::managed::Conflict>> {
    let (manager, force) = (&opts.manager, opts.force);
    if subresource.is_empty() {
        crate::managed::apply(old, new, config, manager, force, shapes)
    } else {
        crate::managed::apply_subresource(old, new, config, manager, force, subresource, shapes)
    }
}

/// Refuses a delete whose preconditions (uid, resourceVersion) the stored
/// object `obj` (at `kv`) does not meet, in Kubernetes' words.
fn check_delete_preconditions(
    def: &ResourceDef,
    name: &str,
    opts: &DeleteOptions,
    obj: &Value,
    kv: &KeyValue,
) -> ApiResult<()> {
    if let Some(uid) = &opts.precondition_uid {
        let have = meta_str(obj, "uid").unwrap_or_default();
        if uid != have {
            return Err(ApiError::conflict(
                def.group,
                def.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {have}"
                ),
            ));
        }
    }
    if let Some(rv) = &opts.precondition_resource_version {
        if *rv != kv.mod_revision.to_string() {
            return Err(ApiError::conflict(def.group, def.plural, name, &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                kv.mod_revision
            )));
        }
    }
    Ok(())
}

/// The finalizers a delete of `obj` waits for: its own, the propagation
/// policy's (`foregroundDeletion`, `orphan`), and those its kind's storage
/// adds (a namespace's spec finalizers, never written to metadata).
fn deletion_finalizers(storage: KindStorage, opts: &DeleteOptions, obj: &Value) -> Vec<String> {
    let mut fins = finalizers(obj);
    match opts.propagation {
        Some(Propagation::Foreground) if !fins.iter().any(|f| f == "foregroundDeletion") => {
            fins.push("foregroundDeletion".into())
        }
        Some(Propagation::Orphan) if !fins.iter().any(|f| f == "orphan") => {
            fins.push("orphan".into())
        }
        _ => {}
    }
    if let Some(f) = storage.deletion_finalizer() {
        if !fins.iter().any(|x| x == f) {
            fins.push(f.into());
        }
    }
    fins.extend(storage.spec_finalizers(obj));
    fins
}

/// Marks `obj` as being deleted: `deletionTimestamp` (kept if already set)
/// `grace` seconds from now, `deletionGracePeriodSeconds`, and the
/// finalizers `fins` (all but the storage's own), and what the kind's
/// storage marks.
fn mark_deleting(storage: KindStorage, obj: &mut Value, fins: &[String], grace: i64) {
    let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace.max(0));
    if let Some(meta) = objectmeta::metadata_mut(obj) {
        if !meta.contains_key("deletionTimestamp") {
            meta.insert(
                "deletionTimestamp".into(),
                json!(when.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            );
        }
        meta.insert("deletionGracePeriodSeconds".into(), json!(grace.max(0)));
        let user_fins: Vec<Value> = fins
            .iter()
            .filter(|f| !storage.is_spec_finalizer(f))
            .map(|f| json!(f))
            .collect();
        if user_fins.is_empty() {
            meta.remove("finalizers");
        } else {
            meta.insert("finalizers".into(), Value::Array(user_fins));
        }
    }
    storage.mark_deleting(obj);
}

fn decode(kv: &KeyValue) -> ApiResult<Value> {
    let mut v: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::internal(format!("stored object {} is not readable: {e}", kv.key))
    })?;
    objectmeta::set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

/// The stored form of `v`: without `resourceVersion` and `selfLink`, which
/// are taken out for the encoding and put back (no copy of the object).
/// Also where in the bytes the metadata object's `{` ends, for
/// [`crate::watchcache::with_resource_version`].
/// `managed`, if given, is the metadata's managedFields kept as text (see
/// [`crate::lean`]).
fn encode(v: &mut Value, managed: Option<&RawValue>) -> ApiResult<(Bytes, Option<usize>)> {
    let taken: Vec<(String, Value)> = objectmeta::metadata_mut(v)
        .map(|meta| {
            ["resourceVersion", "selfLink"]
                .iter()
                .filter_map(|k| meta.remove(*k).map(|x| (k.to_string(), x)))
                .collect()
        })
        .unwrap_or_default();
    let encoded = encode_members(v, managed);
    if let Some(meta) = objectmeta::metadata_mut(v) {
        meta.extend(taken);
    }
    encoded.map_err(ApiError::internal)
}

/// `v` as compact JSON with Go's escaping, as Kubernetes writes objects
/// (`<`, `>`, `&` as `\u003c`...; otherwise what `serde_json::to_vec`
/// gives), the top-level members written one by one to note where metadata
/// starts.
fn encode_members(
    v: &Value,
    managed: Option<&RawValue>,
) -> serde_json::Result<(Bytes, Option<usize>)> {
    let Value::Object(map) = v else {
        return Ok((Bytes::from(ferrokube_api::gojson::to_vec(v)), None));
    };
    let mut out = Vec::with_capacity(1024);
    let mut metadata_at = None;
    out.push(b'{');
    for (i, (k, member)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        ferrokube_api::gojson::to_writer(&mut out, k)?;
        out.push(b':');
        if let ("metadata", Value::Object(meta)) = (k.as_str(), member) {
            metadata_at = Some(out.len() + 1);
            if let Some(raw) = managed {
                crate::lean::write_metadata(&mut out, meta, raw)?;
                continue;
            }
        }
        ferrokube_api::gojson::to_writer(&mut out, member)?;
    }
    out.push(b'}');
    Ok((Bytes::from(out), metadata_at))
}

/// An object the store took: the bytes stored, at which revision.
pub(crate) struct Stored {
    revision: Revision,
    bytes: Bytes,
    metadata_at: Option<usize>,
}

impl Stored {
    /// The object's JSON as served, resourceVersion included.
    fn json(&self) -> Option<Bytes> {
        self.metadata_at
            .map(|at| crate::watchcache::with_resource_version(&self.bytes, at, self.revision))
    }
}

/// Whether two objects hold the same content: everything but
/// `resourceVersion`, `selfLink` and `managedFields` is equal. Compared in
/// place, without copies.
fn same_content(a: &Value, b: &Value) -> bool {
    const IGNORED: [&str; 3] = ["resourceVersion", "selfLink", "managedFields"];
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    // Maps iterate in key order, so equal maps yield equal sequences.
    let outside = |(k, _): &(&String, &Value)| k.as_str() != "metadata";
    let kept = |(k, _): &(&String, &Value)| !IGNORED.contains(&k.as_str());
    if !a.iter().filter(outside).eq(b.iter().filter(outside)) {
        return false;
    }
    match (
        a.get("metadata").and_then(Value::as_object),
        b.get("metadata").and_then(Value::as_object),
    ) {
        (Some(x), Some(y)) => x.iter().filter(kept).eq(y.iter().filter(kept)),
        _ => a.get("metadata") == b.get("metadata"),
    }
}

/// The member of `v` at the JSON pointer `ptr`, made (with the objects
/// on the way) if absent.
fn pointer_slot<'a>(v: &'a mut Value, ptr: &str) -> &'a mut Value {
    ptr.split('/')
        .skip(1)
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .fold(v, |at, token| &mut at[token.as_str()])
}

fn finalizers(v: &Value) -> Vec<String> {
    v.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The 409 of a server-side apply that would change other managers' fields.
fn apply_conflict(
    def: &ResourceDef,
    name: &str,
    conflicts: &[crate::managed::Conflict],
) -> ApiError {
    // Kubernetes' apply conflict names no object, only the causes.
    let _ = (def, name);
    ApiError {
        code: 409,
        reason: "Conflict",
        message: crate::managed::conflict_message(conflicts),
        details: Some(json!({ "causes": crate::managed::conflict_causes(conflicts) })),
    }
}

/// A patch that cannot be applied: 400 if it is malformed, 422 if it does
/// not fit the object, as Kubernetes answers.
pub(crate) fn patch_error(
    def: &ResourceDef,
    name: &str,
    e: ferrokube_api::patch::PatchError,
) -> ApiError {
    if e.code() == 400 {
        ApiError::bad_request(e.message().to_string())
    } else {
        ApiError::invalid(
            def.group,
            def.kind,
            name,
            &[FieldError::invalid("", Value::Null, e.message())],
        )
    }
}

/// Checks an object against its kind's schema (the strategy's
/// `check_fields`): field types, unknown fields (refused under
/// `fieldValidation=Strict`, dropped otherwise).
fn check_fields(
    strategy: &dyn Strategy,
    def: &ResourceDef,
    obj: Value,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let checked = strategy.check_fields(def, obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            def.kind, def.version, def.kind
        ))
    })?;
    if !checked.unknown.is_empty() {
        let list = checked
            .unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect::<Vec<_>>()
            .join(", ");
        if opts.field_validation == FieldValidation::Strict {
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {list}"
            )));
        }
        if opts.field_validation == FieldValidation::Warn {
            opts.warnings.lock().extend(
                checked
                    .unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\"")),
            );
        }
    }
    Ok(tidy_metadata(checked.value))
}

/// `value` without empty maps and lists in its metadata.
fn tidy_metadata(mut value: Value) -> Value {
    // Empty maps and lists in metadata are omitted, as Go's encoding omits
    // them (`annotations: {}` left by a patch that removed the last one).
    if let Some(meta) = objectmeta::metadata_mut(&mut value) {
        for field in [
            "labels",
            "annotations",
            "finalizers",
            "ownerReferences",
            "managedFields",
        ] {
            let empty = match meta.get(field) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                meta.remove(field);
            }
        }
    }
    value
}

/// An object read from a request body.
pub(crate) struct BodyObject {
    pub(crate) value: Value,
    /// Decoded through its kind's type, which knew every field: the typed
    /// check has nothing left to find.
    pub(crate) typed: bool,
}

/// `obj`, a request's object, with the resource's kind, apiVersion and
/// namespace, or what is wrong with it.
fn fill_from_request(def: &ResourceDef, ns: &str, mut obj: Value) -> ApiResult<Value> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    let api_version = def.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != api_version => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )))
        }
        _ => obj["apiVersion"] = json!(api_version),
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some(k) if k != def.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                def.kind
            )))
        }
        _ => obj["kind"] = json!(def.kind),
    }
    let meta = objectmeta::metadata_mut(&mut obj)
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
    if def.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => {
                meta.insert("namespace".into(), json!(ns));
            }
        }
    } else {
        meta.remove("namespace");
    }
    Ok(obj)
}

impl Rest {
    /// Stores `obj` under `key` with `write` (the store's create or update,
    /// given the encoded bytes), telling the watch cache beforehand what is
    /// coming so it applies the store's event without decoding. When the
    /// store took it, `obj` gets its resourceVersion and loses the
    /// `selfLink` storage does not keep. `Err` only if `obj` cannot be
    /// encoded; the store's answer is the inner result.
    ///
    /// A custom resource is stored in its storage version: `obj` (in the
    /// request's version) is converted for the write, and what was stored
    /// converted back, as Kubernetes decodes what it wrote.
    async fn put<F, Fut>(
        &self,
        def: &ResourceDef,
        key: &str,
        obj: &mut Value,
        write: F,
    ) -> ApiResult<Result<Stored, StoreError>>
    where
        F: FnOnce(Bytes) -> Fut,
        Fut: std::future::Future<Output = Result<KeyValue, StoreError>>,
    {
        let strategy = self.strategy(def);
        let converter = strategy
            .converter()
            .filter(|c| c.needs(obj, c.storage_version()));
        let Some(converter) = converter else {
            return self.put_keeping(key, obj, None, write).await;
        };
        let storage = converter.storage_version().to_string();
        let mut stored = converter.convert_one(self, obj.clone(), &storage).await?;
        let result = self.put_keeping(key, &mut stored, None, write).await?;
        Ok(match result {
            Ok(mut s) => {
                let version = obj
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .and_then(|a| a.rsplit_once('/'))
                    .map_or(def.version, |(_, v)| v)
                    .to_string();
                *obj = converter.convert_one(self, stored, &version).await?;
                // The stored bytes are not the object served.
                s.metadata_at = None;
                Ok(s)
            }
            Err(e) => Err(e),
        })
    }

    /// [`Rest::put`] of an object whose managedFields were kept as text
    /// (`managed`, see [`crate::lean`]).
    pub(crate) async fn put_keeping<F, Fut>(
        &self,
        key: &str,
        obj: &mut Value,
        managed: Option<&RawValue>,
        write: F,
    ) -> ApiResult<Result<Stored, StoreError>>
    where
        F: FnOnce(Bytes) -> Fut,
        Fut: std::future::Future<Output = Result<KeyValue, StoreError>>,
    {
        let (bytes, metadata_at) = encode(obj, managed)?;
        let expectation = metadata_at.and_then(|at| self.cache.expect(key, &bytes, at, obj));
        let result = write(bytes.clone()).await;
        Ok(result.map(|kv| {
            if let Some(e) = expectation {
                e.written();
            }
            if let Some(meta) = objectmeta::metadata_mut(obj) {
                meta.remove("selfLink");
            }
            objectmeta::set_resource_version(obj, kv.mod_revision);
            Stored {
                revision: kv.mod_revision,
                bytes,
                metadata_at,
            }
        }))
    }

    /// The lease to write an object with: Events expire after
    /// `event_ttl_seconds`; one lease serves the Events of a minute, as
    /// Kubernetes does it, so there are few leases.
    async fn lease_for(&self, def: &ResourceDef) -> ApiResult<Option<ferrokube_store::LeaseId>> {
        if !KindStorage::of(def).leased() {
            return Ok(None);
        }
        let mut current = self.event_lease.lock().await;
        if let Some((id, until)) = *current {
            if std::time::Instant::now() < until {
                return Ok(Some(id));
            }
        }
        let id = self
            .store
            .lease_grant(self.event_ttl_seconds.max(1))
            .await
            .map_err(|e| store_error(def, "", e))?;
        // Handed out for at most a minute (and never past its own end), so
        // an Event lives between the TTL and the TTL plus a minute.
        let reuse = Duration::from_secs(60.min((self.event_ttl_seconds / 2).max(0) as u64));
        *current = Some((id, std::time::Instant::now() + reuse));
        Ok(Some(id))
    }

    fn key(&self, def: &ResourceDef, ns: &str, name: &str) -> String {
        def.key(ns, name)
    }

    /// The object as stored now, with its store key/value.
    pub(crate) async fn get_kv(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> ApiResult<(Value, KeyValue)> {
        let kv = self.get_stored(def, ns, name).await?;
        let obj = self.in_version(def, decode(&kv)?).await?;
        Ok((obj, kv))
    }

    /// `obj`, as stored, in the version of `def` (a custom resource's
    /// converter; other kinds are stored as served).
    pub(crate) async fn in_version(&self, def: &ResourceDef, obj: Value) -> ApiResult<Value> {
        match self.strategy(def).converter() {
            Some(c) if c.needs(&obj, def.version) => {
                Ok(c.convert_one(self, obj, def.version).await?)
            }
            _ => Ok(obj),
        }
    }

    /// The stored key/value of an object; 404 if there is none.
    pub(crate) async fn get_stored(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> ApiResult<KeyValue> {
        let key = self.key(def, ns, name);
        let resp = self
            .store
            .get(&key, None)
            .await
            .map_err(|e| store_error(def, name, e))?;
        resp.kv
            .ok_or_else(|| ApiError::not_found(def.group, def.plural, name))
    }

    /// The object `name` of `def` in namespace `ns` (empty for a cluster-scoped
    /// kind), read from the store; 404 when there is none.
    pub async fn get(&self, def: &ResourceDef, ns: &str, name: &str) -> ApiResult<Value> {
        Ok(self.get_kv(def, ns, name).await?.0)
    }

    /// Checks that a namespaced write may go to `ns`.
    async fn check_namespace(&self, def: &ResourceDef, ns: &str) -> ApiResult<()> {
        if !def.namespaced {
            return Ok(());
        }
        let Some(nsdef) = self.kinds.get("", "v1", "namespaces") else {
            return Ok(());
        };
        let key = nsdef.key("", ns);
        // As Kubernetes' NamespaceLifecycle admission, from the cache; a
        // namespace the cache has not seen yet (just made) from the store.
        // Deletion sets phase Terminating in the same write as
        // deletionTimestamp, so the phase alone tells.
        let cached = self
            .cache
            .resource(nsdef.storage_prefix)
            .and_then(|c| c.get(&key));
        let terminating = match cached {
            Some(o) => o.fields.get("status.phase").map(String::as_str) == Some("Terminating"),
            None => {
                let resp = self
                    .store
                    .get(&key, None)
                    .await
                    .map_err(|e| store_error(&nsdef, ns, e))?;
                let Some(kv) = resp.kv else {
                    return Err(ApiError::not_found("", "namespaces", ns));
                };
                let v = decode(&kv)?;
                v.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
                    || v.pointer("/metadata/deletionTimestamp").is_some()
            }
        };
        if terminating {
            return Err(ApiError::forbidden(format!(
                "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                ferrokube_api::status::group_resource(def.group, def.plural),
                "",
            )));
        }
        Ok(())
    }

    /// Reads a request body into an object of the resource's kind, filling in
    /// kind, apiVersion and namespace, or says clearly what is wrong.
    pub(crate) fn object_from_body(
        &self,
        def: &ResourceDef,
        ns: &str,
        body: &[u8],
    ) -> ApiResult<Value> {
        let obj = serde_json::from_slice::<Value>(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        })?;
        fill_from_request(def, ns, obj)
    }

    /// [`Rest::object_from_body`] for a create: a body whose every field
    /// its kind's type knows is decoded straight into the type, so
    /// [`Rest::create_encoded`] has no typed check left to make.
    pub(crate) fn new_object_from_body(
        &self,
        def: &ResourceDef,
        ns: &str,
        body: &[u8],
    ) -> ApiResult<BodyObject> {
        Ok(match self.strategy(def).decode_typed(def, body) {
            Some(obj) => BodyObject {
                value: fill_from_request(def, ns, obj)?,
                typed: true,
            },
            None => BodyObject {
                value: self.object_from_body(def, ns, body)?,
                typed: false,
            },
        })
    }

    /// POST.
    pub async fn create(
        &self,
        def: &ResourceDef,
        ns: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let obj = BodyObject {
            value: obj,
            typed: false,
        };
        Ok(self.create_encoded(def, ns, obj, opts).await?.0)
    }

    /// POST, also giving the created object's JSON when it was stored (a
    /// dry run gives none), made from the stored bytes rather than encoded
    /// again.
    pub(crate) async fn create_encoded(
        &self,
        def: &ResourceDef,
        ns: &str,
        obj: BodyObject,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, Option<Bytes>)> {
        let BodyObject {
            value: mut obj,
            typed,
        } = obj;
        let name = match meta_str(&obj, "name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match meta_str(&obj, "generateName").filter(|n| !n.is_empty()) {
                Some(base) => objectmeta::generate_name(base),
                None => {
                    return Err(ApiError::invalid(
                        def.group,
                        def.kind,
                        "",
                        &[FieldError::required(
                            "metadata.name",
                            "name or generateName is required",
                        )],
                    ))
                }
            },
        };
        if let Some(meta) = objectmeta::metadata_mut(&mut obj) {
            meta.insert("name".into(), json!(name));
            if def.namespaced {
                meta.insert("namespace".into(), json!(ns));
            }
        }
        // Kubernetes' order: defaults as the body is decoded, mutating
        // admission, then the strategy's preparation (initial status,
        // generation, a Job's selector), whatever the body's encoding.
        let mut obj = self.prepare_new(def, ns, &name, obj, typed, opts).await?;
        self.check_namespace(def, ns).await?;
        let hook_req = crate::webhook::Request::write(def, "", ns, &name, None, opts);
        crate::policy::validate(self, &hook_req, Some(&obj)).await?;
        crate::webhook::validate(self, &hook_req, Some(&obj)).await?;
        // ResourceQuota, the last admission: charged before the write.
        crate::quota::admit(self, def, ns, &name, None, &obj, opts.dry_run).await?;
        if opts.dry_run {
            return Ok((obj, None));
        }
        let storage = KindStorage::of(def);
        let reserved = self
            .reserve_for_create(storage, def, ns, &name, &mut obj)
            .await?;
        let lease = self.lease_for(def).await?;
        let key = self.key(def, ns, &name);
        let result = self
            .put(def, &key, &mut obj, |bytes| {
                self.store.create(&key, bytes, lease)
            })
            .await
            .and_then(|r| r.map_err(|e| store_error(def, &name, e)));
        match result {
            Ok(stored) => {
                let json = stored.json();
                Ok((obj, json))
            }
            Err(e) => {
                self.release(reserved).await;
                Err(e)
            }
        }
    }

    /// A new object named `name` as it will be stored: defaulted, admitted
    /// (but for quota), prepared by its strategy, checked against its
    /// schema (unless `typed`: decoded as its type), its fields' owners
    /// recorded, and validated; the strategy's warnings added to `opts`.
    async fn prepare_new(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        mut obj: Value,
        typed: bool,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let strategy = self.strategy(def);
        // Kubernetes' order: defaults as the body is decoded, mutating
        // admission, then the strategy's preparation (initial status,
        // generation, a Job's selector), whatever the body's encoding.
        objectmeta::fill_on_create(&mut obj);
        strategy.default(def, &mut obj);
        crate::admission::admit_create(self, def, ns, &mut obj, opts).await?;
        crate::kinds::admit_create(self, def, ns, &mut obj).await?;
        let hook_req = crate::webhook::Request::write(def, "", ns, name, None, opts);
        crate::webhook::mutate(self, &hook_req, Some(&mut obj)).await?;
        if let Some(escalation) = &self.escalation {
            escalation.check(def, ns, "", None, &obj, opts.user.as_ref())?;
        }
        strategy.prepare_for_create(def, &mut obj, opts.user.as_ref());
        // What this server added above is of the type's own fields, so an
        // object decoded as its type needs no second pass.
        let mut obj = if typed {
            tidy_metadata(obj)
        } else {
            check_fields(strategy.as_ref(), def, obj, opts)?
        };
        let shapes = strategy.apply_shapes(def);
        match &opts.apply_config {
            Some(config) => {
                obj = crate::managed::apply(
                    &json!({}),
                    obj,
                    config,
                    &opts.manager,
                    true,
                    shapes.as_deref(),
                )
                .map_err(|c| apply_conflict(def, name, &c))?
            }
            None => crate::managed::record_update(None, &mut obj, &opts.manager, shapes.as_deref()),
        }
        let errors = strategy.validate_create(def, &obj);
        if !errors.is_empty() {
            return Err(ApiError::invalid(def.group, def.kind, name, &errors));
        }
        let warnings = strategy.warnings_on_create(def, &obj);
        if !warnings.is_empty() {
            opts.warnings.lock().extend(warnings);
        }
        Ok(obj)
    }

    /// Writes `new` over `old` (the key/value read), with the rules of an
    /// update to the main resource or its status. Returns the stored object.
    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        old: &Value,
        old_kv: &KeyValue,
        new: Value,
        subresource: &str,
        opts: &WriteOptions,
    ) -> Result<Value, (ApiError, bool)> {
        let dry_run = opts.dry_run;
        let strategy = self.strategy(def);
        let mut new = new;
        strategy.default(def, &mut new);
        let mut new = check_fields(strategy.as_ref(), def, new, opts).map_err(|e| (e, false))?;
        if let Some(escalation) = &self.escalation {
            escalation
                .check(def, ns, name, Some(old), &new, opts.user.as_ref())
                .map_err(|e| (e, false))?;
        }
        // What the write may not change comes from `old`; the generation
        // moves only with the spec, for kinds that keep one.
        strategy.prepare_for_update(def, old, &mut new, subresource);
        crate::admission::admit_update(self, def, ns, old, &mut new, subresource, opts)
            .await
            .map_err(|e| (e, false))?;
        let hook_req = crate::webhook::Request::write(def, subresource, ns, name, Some(old), opts);
        crate::webhook::mutate(self, &hook_req, Some(&mut new))
            .await
            .map_err(|e| (e, false))?;
        // What the kind's storage reserves and gives up (a Service's
        // addresses and ports with its type: crate::services).
        let realloc = if subresource.is_empty() {
            let storage = KindStorage::of(def);
            self.reserve_for_update(storage, def, ns, name, old, &mut new, dry_run)
                .await
                .map_err(|e| (e, false))?
        } else {
            crate::services::Reallocation::default()
        };
        let result = self
            .finish_update(
                strategy.as_ref(),
                def,
                ns,
                name,
                old,
                old_kv,
                new,
                subresource,
                opts,
            )
            .await;
        match &result {
            Ok(_) => self.release(realloc.released).await,
            Err(_) => self.release(realloc.reserved).await,
        }
        result
    }

    /// The rest of [`Rest::write_update`]: metadata, validation, field
    /// ownership and the store write.
    #[allow(clippy::too_many_arguments)]
    async fn finish_update(
        &self,
        strategy: &dyn Strategy,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        old: &Value,
        old_kv: &KeyValue,
        mut new: Value,
        subresource: &str,
        opts: &WriteOptions,
    ) -> Result<Value, (ApiError, bool)> {
        let dry_run = opts.dry_run;
        let conflict = |e: StoreError| match e {
            StoreError::Conflict { .. } => (ApiError::stale(def.group, def.plural, name), true),
            other => (store_error(def, name, other), false),
        };
        objectmeta::carry_on_update(old, &mut new);
        let errors = strategy.validate_update(def, old, &new, subresource);
        if !errors.is_empty() {
            return Err((ApiError::invalid(def.group, def.kind, name, &errors), false));
        }
        let hook_req = crate::webhook::Request::write(def, subresource, ns, name, Some(old), opts);
        crate::policy::validate(self, &hook_req, Some(&new))
            .await
            .map_err(|e| (e, false))?;
        crate::webhook::validate(self, &hook_req, Some(&new))
            .await
            .map_err(|e| (e, false))?;
        let warnings = strategy.warnings_on_update(def, old, &new);
        if !warnings.is_empty() {
            opts.warnings.lock().extend(warnings);
        }
        let unchanged = same_content(old, &new);
        let shapes = strategy.apply_shapes(def);
        match &opts.apply_config {
            Some(config) => {
                new = apply_fields(old, new, config, subresource, opts, shapes.as_deref())
                    .map_err(|c| (apply_conflict(def, name, &c), false))?;
                if same_content(old, &new) && crate::managed::same_owners(old, &new) {
                    return Ok(old.clone());
                }
            }
            None if unchanged => {
                // Nothing changed: no write, the same resourceVersion.
                return Ok(old.clone());
            }
            // A write through a subresource has its own entries.
            None if !subresource.is_empty() || !opts.via.is_empty() => {
                crate::managed::record_subresource_update(
                    old,
                    &mut new,
                    &opts.manager,
                    if subresource.is_empty() {
                        opts.via
                    } else {
                        subresource
                    },
                    shapes.as_deref(),
                )
            }
            None => {
                crate::managed::record_update(Some(old), &mut new, &opts.manager, shapes.as_deref())
            }
        }
        if subresource.is_empty() {
            crate::limitranger::admit_update(self, def, ns, name, old, &new)
                .map_err(|e| (e, false))?;
            crate::quota::admit(self, def, ns, name, Some(old), &new, dry_run)
                .await
                .map_err(|e| (e, false))?;
        }
        if dry_run {
            objectmeta::set_resource_version(&mut new, old_kv.mod_revision);
            return Ok(new);
        }
        let key = self.key(def, ns, name);
        // An object being deleted whose last finalizer goes is deleted (a
        // namespace also waits for the finalizers in its spec).
        if new.pointer("/metadata/deletionTimestamp").is_some()
            && finalizers(&new).is_empty()
            && !KindStorage::of(def).holds_deletion(&new)
        {
            self.store
                .delete(&key, Some(old_kv.mod_revision))
                .await
                .map_err(conflict)?;
            return Ok(new);
        }
        let lease = self.lease_for(def).await.map_err(|e| (e, false))?;
        self.put(def, &key, &mut new, |bytes| {
            self.store.update(&key, bytes, old_kv.mod_revision, lease)
        })
        .await
        .map_err(|e| (e, false))?
        .map_err(conflict)?;
        Ok(new)
    }

    /// PUT.
    pub async fn update(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        obj: Value,
        subresource: &str,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        match meta_str(&obj, "name") {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )))
            }
            _ => {}
        }
        let precondition = meta_str(&obj, "resourceVersion")
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        for _ in 0..UPDATE_ATTEMPTS {
            let (old, kv) = self.get_kv(def, ns, name).await?;
            if let Some(rv) = &precondition {
                if *rv != kv.mod_revision.to_string() {
                    return Err(ApiError::stale(def.group, def.plural, name));
                }
            }
            let mut new = obj.clone();
            if let Some(meta) = objectmeta::metadata_mut(&mut new) {
                meta.insert("name".into(), json!(name));
            }
            match self
                .write_update(def, ns, name, &old, &kv, new, subresource, opts)
                .await
            {
                Ok(v) => return Ok(v),
                Err((e, true)) if precondition.is_none() => {
                    tracing::debug!(error = %e, "unconditional update raced; retrying");
                }
                Err((e, _)) => return Err(e),
            }
        }
        Err(ApiError::stale(def.group, def.plural, name))
    }

    /// PATCH, in the patch type `content_type` names.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        content_type: &str,
        body: &[u8],
        subresource: &str,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let strategy = self.strategy(def);
        let accepted = strategy.patch_types();
        if !accepted.contains(&media) {
            return Err(ApiError::unsupported_media_type(media, accepted));
        }
        let patch: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        })?;
        let apply = media == "application/apply-patch+yaml";
        let mut apply_opts = opts.clone();
        if apply {
            if opts.field_manager.is_none() {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    &[FieldError::required(
                        "fieldManager",
                        "is required for apply patch",
                    )],
                ));
            }
            let mut config = self.object_from_body(def, ns, body)?;
            if let Some(meta) = objectmeta::metadata_mut(&mut config) {
                meta.insert("name".into(), json!(name));
            }
            apply_opts.apply_config = Some(Arc::new(config));
        }
        let opts = &apply_opts;
        let shapes = strategy.apply_shapes(def);
        for _ in 0..UPDATE_ATTEMPTS {
            let current = match self.get_kv(def, ns, name).await {
                Ok(c) => c,
                Err(e) if apply && e.code == 404 && subresource.is_empty() => {
                    // Server-side apply of a new object creates it.
                    let mut obj = self.object_from_body(def, ns, body)?;
                    if let Some(meta) = objectmeta::metadata_mut(&mut obj) {
                        meta.insert("name".into(), json!(name));
                    }
                    return self.create(def, ns, obj, &apply_opts).await;
                }
                Err(e) => return Err(e),
            };
            let (old, kv) = current;
            let patched = match media {
                "application/json-patch+json" => json_patch(&old, &patch),
                "application/merge-patch+json" => Ok(merge_patch(&old, &patch)),
                "application/apply-patch+yaml" => match shapes.as_deref() {
                    // A custom resource merges by its schema's list and
                    // map types.
                    Some(s) => Ok(crate::managed::merge_applied(&old, &patch, s)),
                    None => strategic_merge_patch(&old, &patch),
                },
                "application/strategic-merge-patch+json" => strategic_merge_patch(&old, &patch),
                other => {
                    return Err(ApiError::unsupported_media_type(
                        other,
                        &[
                            "application/json-patch+json",
                            "application/merge-patch+json",
                            "application/strategic-merge-patch+json",
                            "application/apply-patch+yaml",
                        ],
                    ))
                }
            }
            .map_err(|e| patch_error(def, name, e))?;
            if !patched.is_object() {
                return Err(ApiError::bad_request(
                    "the patched object is not a JSON object",
                ));
            }
            if let Some(rv) = meta_str(&patched, "resourceVersion") {
                if meta_str(&patch, "resourceVersion").is_some()
                    && rv != kv.mod_revision.to_string()
                {
                    return Err(ApiError::stale(def.group, def.plural, name));
                }
            }
            if meta_str(&patched, "name").is_some_and(|n| n != name) {
                return Err(ApiError::bad_request(
                    "the patch may not change the object's name",
                ));
            }
            match self
                .write_update(def, ns, name, &old, &kv, patched, subresource, opts)
                .await
            {
                Ok(v) => return Ok(v),
                Err((_, true)) => continue,
                Err((e, false)) => return Err(e),
            }
        }
        Err(ApiError::stale(def.group, def.plural, name))
    }

    /// DELETE of one object. Returns the object as it was deleted (or, if
    /// deletion waits for finalizers or a kubelet, as it is now).
    pub async fn delete(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Value> {
        self.delete_outcome(def, ns, name, opts)
            .await
            .map(|d| d.object)
    }

    /// DELETE of one object, and whether it is gone (or, dry-run, would
    /// be) rather than waiting for finalizers or a grace period.
    pub(crate) async fn delete_outcome(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Deleted> {
        let (strategy, storage) = (self.strategy(def), KindStorage::of(def));
        let waiting = |object| {
            Ok(Deleted {
                object,
                removed: false,
            })
        };
        let removed = |object| {
            Ok(Deleted {
                object,
                removed: true,
            })
        };
        for _ in 0..UPDATE_ATTEMPTS {
            let (mut obj, kv) = self.get_kv(def, ns, name).await?;
            check_delete_preconditions(def, name, opts, &obj, &kv)?;
            crate::webhook::admit_delete(self, def, ns, name, &obj, opts).await?;
            let fins = deletion_finalizers(storage, opts, &obj);
            // A graceful deletion (a bound pod's) waits its grace period.
            let grace = strategy.deletion_grace_period(def, &obj, opts.grace_period_seconds);
            let wait = !fins.is_empty() || grace.is_some_and(|g| g > 0);
            if wait {
                if obj.pointer("/metadata/deletionTimestamp").is_some()
                    && grace.is_none()
                    && !storage.marks_again()
                {
                    // Already being deleted: nothing more to do.
                    return waiting(obj);
                }
                mark_deleting(storage, &mut obj, &fins, grace.unwrap_or(0));
                if opts.dry_run {
                    return waiting(obj);
                }
                match self
                    .put(def, &kv.key, &mut obj, |bytes| {
                        self.store.update(&kv.key, bytes, kv.mod_revision, None)
                    })
                    .await?
                {
                    Ok(_) => return waiting(obj),
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(store_error(def, name, e)),
                }
            }
            if opts.dry_run {
                return removed(obj);
            }
            match self.store.delete(&kv.key, Some(kv.mod_revision)).await {
                Ok(_) => {
                    self.release_deleted(storage, &obj).await;
                    return removed(obj);
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(def, name, e)),
            }
        }
        Err(ApiError::stale(def.group, def.plural, name))
    }

    /// Reads a `DeleteOptions` body (if any) over the query's options.
    pub(crate) fn delete_options(mut opts: DeleteOptions, body: &[u8]) -> ApiResult<DeleteOptions> {
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(opts);
        }
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the DeleteOptions body could not be decoded: {e}"))
        })?;
        if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
            opts.grace_period_seconds = Some(g);
        }
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            opts.propagation = Some(parse_propagation(p)?);
        }
        if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            opts.propagation = Some(Propagation::Orphan);
        }
        if let Some(arr) = v.get("dryRun").and_then(Value::as_array) {
            if arr.iter().any(|x| x != "All") {
                return Err(ApiError::bad_request(
                    "dryRun: Unsupported value: supported values: \"All\"",
                ));
            }
            opts.dry_run = opts.dry_run || !arr.is_empty();
        }
        if let Some(p) = v.get("preconditions") {
            opts.precondition_uid = p.get("uid").and_then(Value::as_str).map(str::to_string);
            opts.precondition_resource_version = p
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        Ok(opts)
    }

    /// LIST.
    pub(crate) async fn list(
        &self,
        def: &ResourceDef,
        ns: &str,
        opts: &ListOptions,
        filter: &Filter,
    ) -> ApiResult<ListResult> {
        let prefix = def.list_prefix(ns);
        if opts.limit > 0
            || opts.continue_token.is_some()
            || opts.resource_version_match == RvMatch::Exact
        {
            return self.list_from_store(def, &prefix, opts, filter).await;
        }
        let cache = self
            .cache
            .resource(def.storage_prefix)
            .ok_or_else(|| ApiError::internal(format!("no watch cache for {}", def.plural)))?;
        let revision = match opts.resource_version.as_deref() {
            None => self.cache.sync(CACHE_WAIT).await.map_err(cache_error)?,
            Some("0") => self.cache.revision(),
            Some(rv) => {
                let want = crate::options::parse_resource_version(rv)?;
                self.cache
                    .wait_for(want, CACHE_WAIT)
                    .await
                    .map_err(cache_error)?;
                self.cache.revision()
            }
        };
        let strategy = self.strategy(def);
        let items = match strategy.converter() {
            None => cache
                .list(&prefix)
                .into_iter()
                .filter(|o| filter.matches(o))
                .map(|o| o.json.clone())
                .collect(),
            Some(converter) => {
                // Each object as stored, in the list's version: one
                // conversion for all.
                let picked = cache
                    .list(&prefix)
                    .into_iter()
                    .filter(|o| crate::crd::conversion::cache_selects(filter, o))
                    .map(|o| o.json.clone())
                    .collect();
                crate::crd::conversion::convert_items(
                    self,
                    converter,
                    strategy.as_ref(),
                    def,
                    filter,
                    picked,
                )
                .await?
            }
        };
        Ok(ListResult {
            items,
            revision,
            continue_token: None,
            remaining: None,
        })
    }

    /// Paginated or exact-revision lists, read from the store at one
    /// revision.
    async fn list_from_store(
        &self,
        def: &ResourceDef,
        prefix: &str,
        opts: &ListOptions,
        filter: &Filter,
    ) -> ApiResult<ListResult> {
        let strategy = self.strategy(def);
        let (mut start, mut revision) = match &opts.continue_token {
            Some(tok) => {
                let (key, rev) = crate::continue_token::decode(def.storage_prefix, tok)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                if !key.starts_with(prefix) {
                    return Err(ApiError::bad_request(
                        "continue key is not valid: it does not belong to this list",
                    ));
                }
                (Some(key), Some(rev))
            }
            None => (None, None),
        };
        if revision.is_none() && opts.resource_version_match == RvMatch::Exact {
            if let Some(rv) = &opts.resource_version {
                revision = Some(crate::options::parse_resource_version(rv)?);
            }
        }
        let limit = opts.limit;
        let mut items = Vec::new();
        let mut next_key: Option<String> = None;
        let mut remaining = None;
        // Keep reading pages until `limit` objects match (or the end).
        for _ in 0..10_000 {
            let page = self
                .store
                .range(RangeRequest {
                    prefix: prefix.to_string(),
                    start: start.clone(),
                    limit: if limit == 0 { 0 } else { limit - items.len() },
                    revision,
                    count_only: false,
                })
                .await
                .map_err(|e| match e {
                    StoreError::Compacted { .. } if opts.continue_token.is_some() => ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ),
                    other => store_error(def, "", other),
                })?;
            revision = Some(page.revision);
            let returned = page.kvs.len() as i64;
            let mut values = page.kvs.iter().map(decode).collect::<ApiResult<Vec<_>>>()?;
            if let Some(converter) = strategy.converter() {
                values = converter.convert(self, values, def.version).await?;
            }
            for v in &values {
                if filter.matches_value(strategy.as_ref(), def, v) {
                    items.push(Bytes::from(ferrokube_api::gojson::to_vec(v)));
                }
            }
            if page.more {
                if let Some(last) = page.kvs.last() {
                    let after = format!("{}\0", last.key);
                    if limit > 0 && items.len() >= limit {
                        next_key = Some(after);
                        if filter.is_empty() {
                            remaining = Some(page.count - returned);
                        }
                        break;
                    }
                    start = Some(after);
                    continue;
                }
            }
            break;
        }
        let revision = revision.unwrap_or(0);
        Ok(ListResult {
            items,
            revision,
            continue_token: next_key
                .map(|k| crate::continue_token::encode(def.storage_prefix, &k, revision)),
            remaining,
        })
    }

    /// DELETE of a collection: every object the selectors match. Returns
    /// them as they were listed (Kubernetes' answer, whatever each delete
    /// answered).
    pub(crate) async fn delete_collection(
        &self,
        def: &ResourceDef,
        ns: &str,
        list_opts: &ListOptions,
        filter: &Filter,
        opts: &DeleteOptions,
    ) -> ApiResult<Vec<Value>> {
        let listed = self.list(def, ns, list_opts, filter).await?;
        let mut deleted = Vec::new();
        for item in listed.items {
            let v: Value = serde_json::from_slice(&item).map_err(ApiError::internal)?;
            let name = meta_str(&v, "name").unwrap_or_default().to_string();
            let item_ns = meta_str(&v, "namespace").unwrap_or_default().to_string();
            match self.delete(def, &item_ns, &name, opts).await {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
            deleted.push(v);
        }
        Ok(deleted)
    }

    /// Where `/scale` finds the replicas of `def`'s objects (its strategy
    /// says); 404 for a kind without.
    pub(crate) fn scale_paths(&self, def: &ResourceDef) -> ApiResult<ScalePaths> {
        self.strategy(def)
            .scale_paths(def)
            .ok_or_else(ApiError::no_such_path)
    }

    /// The `autoscaling/v1` Scale of an object with replicas where `paths`
    /// say; its selector is a string, a LabelSelector or a map of labels.
    pub(crate) fn scale_of(paths: &ScalePaths, obj: &Value) -> Value {
        let at = paths.label_selector.as_deref().and_then(|p| obj.pointer(p));
        let selector = match at {
            Some(Value::String(s)) => s.clone(),
            Some(sel)
                if sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some() =>
            {
                Selector::from_value(sel)
                    .ok()
                    .flatten()
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            }
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        };
        let meta = obj.get("metadata").cloned().unwrap_or(json!({}));
        let replicas = |ptr: &str| obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0);
        json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
                "creationTimestamp": meta.get("creationTimestamp"),
            },
            "spec": {"replicas": replicas(&paths.spec_replicas)},
            "status": {
                "replicas": replicas(&paths.status_replicas),
                "selector": selector,
            },
        })
    }

    /// Writes the replicas of a Scale (PUT or PATCH of `/scale`).
    pub(crate) async fn update_scale(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        scale: &Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let replicas = match scale.pointer("/spec/replicas") {
            Some(Value::Number(n)) if n.as_i64().is_some_and(|r| r >= 0) => n.as_i64().unwrap_or(0),
            Some(Value::Null) | None => 0,
            Some(other) => {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    &[FieldError::invalid(
                        "spec.replicas",
                        other.clone(),
                        "must be greater than or equal to 0",
                    )],
                ))
            }
        };
        let paths = self.scale_paths(def)?;
        // The object's own rules, the entry of a `scale` write.
        let opts = &WriteOptions {
            via: "scale",
            ..opts.clone()
        };
        let precondition = meta_str(scale, "resourceVersion")
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        for _ in 0..UPDATE_ATTEMPTS {
            let (old, kv) = self.get_kv(def, ns, name).await?;
            if let Some(rv) = &precondition {
                if *rv != kv.mod_revision.to_string() {
                    return Err(ApiError::stale(def.group, def.plural, name));
                }
            }
            let mut new = old.clone();
            *pointer_slot(&mut new, &paths.spec_replicas) = json!(replicas);
            match self
                .write_update(def, ns, name, &old, &kv, new, "", opts)
                .await
            {
                Ok(v) => return Ok(Self::scale_of(&paths, &v)),
                Err((_, true)) if precondition.is_none() => continue,
                Err((e, _)) => return Err(e),
            }
        }
        Err(ApiError::stale(def.group, def.plural, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_content_ignores_only_versions_links_and_managed_fields() {
        let a = json!({"metadata": {"name": "x", "resourceVersion": "1", "managedFields": [1]}, "spec": {"a": 1}});
        let b = json!({"metadata": {"name": "x", "resourceVersion": "2", "selfLink": "/x"}, "spec": {"a": 1}});
        assert!(same_content(&a, &b));
        let c = json!({"metadata": {"name": "x", "labels": {"l": "v"}}, "spec": {"a": 1}});
        assert!(!same_content(&a, &c));
        let d = json!({"metadata": {"name": "x"}, "spec": {"a": 2}});
        assert!(!same_content(&a, &d));
        let e = json!({"metadata": {"name": "x"}, "spec": {"a": 1}, "status": {}});
        assert!(!same_content(&a, &e));
        assert!(!same_content(
            &json!({"spec": {}}),
            &json!({"metadata": {}, "spec": {}})
        ));
    }

    #[test]
    fn encode_leaves_out_version_and_link_and_keeps_the_object() {
        let mut v = json!({"metadata": {"name": "x", "resourceVersion": "7", "selfLink": "/x"}, "data": {"k": "v"}});
        let before = v.clone();
        let (bytes, metadata_at) = encode(&mut v, None).unwrap();
        let stored_form = json!({"metadata": {"name": "x"}, "data": {"k": "v"}});
        assert_eq!(bytes, serde_json::to_vec(&stored_form).unwrap());
        assert_eq!(v, before);
        // The watch cache's form: the stored bytes with the revision put in.
        let at = metadata_at.expect("metadata located");
        let cached: Value =
            serde_json::from_slice(&crate::watchcache::with_resource_version(&bytes, at, 12))
                .unwrap();
        assert_eq!(
            cached,
            json!({"metadata": {"name": "x", "resourceVersion": "12"}, "data": {"k": "v"}})
        );
        // Strings are escaped as Go escapes them, as Kubernetes stores and
        // serves them.
        let mut html = json!({"metadata": {"name": "x", "annotations": {"a": "<b>&"}}});
        let (bytes, _) = encode(&mut html, None).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"metadata":{"annotations":{"a":"\u003cb\u003e\u0026"},"name":"x"}}"#
        );
        // Empty metadata, and objects whose metadata is not an object.
        let (bytes, at) = encode(&mut json!({"kind": "X", "metadata": {}}), None).unwrap();
        let cached: Value = serde_json::from_slice(&crate::watchcache::with_resource_version(
            &bytes,
            at.unwrap(),
            3,
        ))
        .unwrap();
        assert_eq!(
            cached,
            json!({"kind": "X", "metadata": {"resourceVersion": "3"}})
        );
        assert_eq!(encode(&mut json!({"metadata": "x"}), None).unwrap().1, None);
        assert_eq!(encode(&mut json!([1, 2]), None).unwrap().1, None);
    }
}
