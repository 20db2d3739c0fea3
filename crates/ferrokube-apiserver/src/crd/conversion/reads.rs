//! Custom resources read in the version asked for: the items of a list and
//! the objects of watch events, as the watch cache holds them (each in the
//! version it was written in), converted to the request's version and
//! selected by the request's field selector on the converted object (a
//! version's selectable fields are its own). Objects already in the
//! version, selected by name and namespace alone, are served as cached.

use bytes::Bytes;
use ferrokube_api::fields::{FieldRequirement, FieldSelector};
use ferrokube_api::registry::ResourceDef;
use serde_json::Value;

use super::{ConversionError, Converter};
use crate::rest::{Filter, Rest};
use crate::strategy::Strategy;
use crate::watchcache::{CacheEvent, CachedObject, EventType};

/// Whether the selector asks only for names and namespaces, which every
/// version and the cache's index have alike.
fn metadata_only(fields: &FieldSelector) -> bool {
    fields.requirements.iter().all(|r| {
        let (FieldRequirement::Equals(f, _) | FieldRequirement::NotEquals(f, _)) = r;
        matches!(f.as_str(), "metadata.name" | "metadata.namespace")
    })
}

/// Whether the cached `o` passes what of `filter` the cache can judge:
/// the labels, and the field selector when it names only names and
/// namespaces (the rest is judged on the converted object).
pub(crate) fn cache_selects(filter: &Filter, o: &CachedObject) -> bool {
    filter.labels.matches(&o.labels)
        && (!metadata_only(&filter.fields) || filter.fields.matches(&o.fields))
}

/// How the objects of one request are served.
pub(crate) struct Reads<'a> {
    rest: &'a Rest,
    converter: &'a Converter,
    strategy: &'a dyn Strategy,
    def: &'a ResourceDef,
    filter: &'a Filter,
}

fn unreadable(e: serde_json::Error) -> ConversionError {
    ConversionError::Invalid(format!("stored object is not readable: {e}"))
}

impl Reads<'_> {
    /// Whether `v` (in the request's version) passes the field selector.
    fn selected(&self, v: &Value) -> bool {
        self.filter.fields.is_empty()
            || metadata_only(&self.filter.fields)
            || self
                .filter
                .fields
                .matches(&self.strategy.selectable_fields(self.def, v))
    }

    fn cached_selected(&self, o: &CachedObject) -> bool {
        cache_selects(self.filter, o)
    }

    /// `items` (served JSON) in the request's version, those the field
    /// selector takes, in their order; one conversion for all.
    async fn items(&self, items: Vec<Bytes>) -> Result<Vec<Bytes>, ConversionError> {
        let version = self.def.version;
        let keep_bytes = metadata_only(&self.filter.fields);
        let mut slots: Vec<Result<Bytes, usize>> = Vec::with_capacity(items.len());
        let mut values = Vec::new();
        for b in items {
            if keep_bytes && self.converter.is_in(&b, version) {
                slots.push(Ok(b));
            } else {
                values.push(serde_json::from_slice::<Value>(&b).map_err(unreadable)?);
                slots.push(Err(values.len() - 1));
            }
        }
        if values.is_empty() {
            return Ok(slots.into_iter().filter_map(Result::ok).collect());
        }
        let values = self.converter.convert(self.rest, values, version).await?;
        let mut out = Vec::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Ok(b) => out.push(b),
                Err(i) => {
                    if let Some(v) = values.get(i).filter(|v| self.selected(v)) {
                        out.push(Bytes::from(ferrokube_api::gojson::to_vec(v)));
                    }
                }
            }
        }
        Ok(out)
    }

    /// One cached object in the request's version, and whether it is
    /// selected.
    async fn one(&self, o: &CachedObject) -> Result<(Bytes, bool), ConversionError> {
        let version = self.def.version;
        if metadata_only(&self.filter.fields) && self.converter.is_in(&o.json, version) {
            return Ok((o.json.clone(), self.cached_selected(o)));
        }
        let v: Value = serde_json::from_slice(&o.json).map_err(unreadable)?;
        let v = self.converter.convert_one(self.rest, v, version).await?;
        let selected = self.filter.labels.matches(&o.labels) && self.selected(&v);
        Ok((Bytes::from(ferrokube_api::gojson::to_vec(&v)), selected))
    }
}

/// The cached `items` of `def`'s resource (already chosen by
/// [`cache_selects`]) in
/// `def`'s version, chosen by the field selector of `filter`, in order.
pub(crate) async fn convert_items(
    rest: &Rest,
    converter: &Converter,
    strategy: &dyn Strategy,
    def: &ResourceDef,
    filter: &Filter,
    items: Vec<Bytes>,
) -> Result<Vec<Bytes>, ConversionError> {
    Reads {
        rest,
        converter,
        strategy,
        def,
        filter,
    }
    .items(items)
    .await
}

/// A watch event as a watcher of `def`'s resource under `prefix` with
/// `filter` sees it (Kubernetes' rules: entering the selection is ADDED,
/// leaving it DELETED), its object in `def`'s version; `None` if the
/// watcher does not see it.
pub(crate) async fn convert_watch_event(
    rest: &Rest,
    converter: &Converter,
    strategy: &dyn Strategy,
    def: &ResourceDef,
    filter: &Filter,
    prefix: &str,
    ev: &CacheEvent,
) -> Result<Option<(EventType, Bytes)>, ConversionError> {
    if !ev.object.key.starts_with(prefix) {
        return Ok(None);
    }
    let reads = Reads {
        rest,
        converter,
        strategy,
        def,
        filter,
    };
    let (json, now) = reads.one(&ev.object).await?;
    let before = match &ev.prev {
        None => false,
        Some(p) if metadata_only(&filter.fields) => reads.cached_selected(p),
        Some(p) => reads.one(p).await?.1,
    };
    let kind = match (ev.kind, before, now) {
        (EventType::Deleted, true, _) => EventType::Deleted,
        (EventType::Deleted, false, _) | (_, false, false) => return Ok(None),
        (_, false, true) => EventType::Added,
        (kind, true, true) => kind,
        (_, true, false) => EventType::Deleted,
    };
    Ok(Some((kind, json)))
}

/// The objects a watch starts with (`initial`) in `def`'s version, chosen
/// by `filter`.
pub(crate) async fn convert_initial(
    rest: &Rest,
    converter: &Converter,
    strategy: &dyn Strategy,
    def: &ResourceDef,
    filter: &Filter,
    initial: &[std::sync::Arc<CachedObject>],
) -> Result<Vec<Bytes>, ConversionError> {
    let items = initial
        .iter()
        .filter(|o| cache_selects(filter, o))
        .map(|o| o.json.clone())
        .collect();
    convert_items(rest, converter, strategy, def, filter, items).await
}
