//! Stored objects decoded but for their `metadata.managedFields`, which stay
//! JSON text: for writes that leave field ownership as it is (binding a pod
//! to a node), so the largest part of a typical object, a tree of many small
//! maps, is neither built nor encoded again.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

const MANAGED: &str = "managedFields";

/// An object without its managedFields, and those as they were stored.
pub(crate) struct Lean {
    pub object: Value,
    pub managed: Option<Box<RawValue>>,
}

/// Decodes `bytes`, a stored object, keeping `metadata.managedFields` as
/// text. Anything that is not an object with an object for metadata
/// decodes in full, with nothing kept aside.
pub(crate) fn decode(bytes: &[u8]) -> serde_json::Result<Lean> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let lean = de.deserialize_any(TopLevel)?;
    de.end()?;
    Ok(lean)
}

/// Writes the metadata object `meta` as compact JSON, with `managed` as
/// its managedFields, where encoding the whole map would place the member
/// (maps keep their keys in order).
pub(crate) fn write_metadata(
    out: &mut Vec<u8>,
    meta: &Map<String, Value>,
    managed: &RawValue,
) -> serde_json::Result<()> {
    let mut pending = Some(managed);
    let mut first = true;
    out.push(b'{');
    let mut member = |out: &mut Vec<u8>, key: &str| -> serde_json::Result<()> {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        ferrokube_api::gojson::to_writer(&mut *out, key)?;
        out.push(b':');
        Ok(())
    };
    for (k, v) in meta {
        if k == MANAGED {
            continue;
        }
        if k.as_str() > MANAGED {
            if let Some(raw) = pending.take() {
                member(out, MANAGED)?;
                out.extend_from_slice(raw.get().as_bytes());
            }
        }
        member(out, k)?;
        ferrokube_api::gojson::to_writer(&mut *out, v)?;
    }
    if let Some(raw) = pending {
        member(out, MANAGED)?;
        out.extend_from_slice(raw.get().as_bytes());
    }
    out.push(b'}');
    Ok(())
}

/// The visitor methods for every JSON value but an object, each giving
/// `$wrap` of the value decoded in full.
macro_rules! whole_values {
    ($out:ty, $wrap:expr) => {
        fn visit_bool<E>(self, v: bool) -> Result<$out, E> {
            Ok($wrap(Value::Bool(v)))
        }
        fn visit_i64<E>(self, v: i64) -> Result<$out, E> {
            Ok($wrap(Value::from(v)))
        }
        fn visit_u64<E>(self, v: u64) -> Result<$out, E> {
            Ok($wrap(Value::from(v)))
        }
        fn visit_f64<E>(self, v: f64) -> Result<$out, E> {
            Ok($wrap(Value::from(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<$out, E> {
            Ok($wrap(Value::from(v)))
        }
        fn visit_unit<E>(self) -> Result<$out, E> {
            Ok($wrap(Value::Null))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<$out, A::Error> {
            let mut items = Vec::new();
            while let Some(v) = seq.next_element::<Value>()? {
                items.push(v);
            }
            Ok($wrap(Value::Array(items)))
        }
    };
}

struct TopLevel;

impl<'de> Visitor<'de> for TopLevel {
    type Value = Lean;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Lean, A::Error> {
        let mut object = Map::new();
        let mut managed = None;
        while let Some(key) = map.next_key::<String>()? {
            let value = if key == "metadata" {
                let (meta, raw) = map.next_value_seed(Metadata)?;
                managed = raw;
                meta
            } else {
                map.next_value::<Value>()?
            };
            object.insert(key, value);
        }
        Ok(Lean {
            object: Value::Object(object),
            managed,
        })
    }

    // Anything else decodes as it would in full.
    whole_values!(Lean, whole);
}

fn whole(object: Value) -> Lean {
    Lean {
        object,
        managed: None,
    }
}

/// The metadata member: a map whose managedFields are kept as text, or any
/// other value in full.
struct Metadata;

impl<'de> DeserializeSeed<'de> for Metadata {
    type Value = (Value, Option<Box<RawValue>>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Metadata {
    type Value = (Value, Option<Box<RawValue>>);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut meta = Map::new();
        let mut managed = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == MANAGED {
                managed = Some(map.next_value::<Box<RawValue>>()?);
                meta.remove(MANAGED);
            } else {
                let v = map.next_value::<Value>()?;
                meta.insert(key, v);
            }
        }
        Ok((Value::Object(meta), managed))
    }

    whole_values!((Value, Option<Box<RawValue>>), |v| (v, None));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "labels": {"a": "b"}, "uid": "u",
                "managedFields": [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:a": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}}}}}}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Pending"}})
    }

    #[test]
    fn managed_fields_stay_text_and_go_back_where_they_were() {
        let full = pod();
        let bytes = serde_json::to_vec(&full).unwrap();
        let lean = decode(&bytes).unwrap();
        assert!(lean.object["metadata"].get(MANAGED).is_none());
        assert_eq!(lean.object["metadata"]["uid"], "u");
        let raw = lean.managed.expect("kept");
        let kept: Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(kept, full["metadata"][MANAGED]);
        // Written back, the metadata is byte for byte what encoding the
        // whole map gives.
        let mut out = Vec::new();
        write_metadata(&mut out, lean.object["metadata"].as_object().unwrap(), &raw).unwrap();
        assert_eq!(out, serde_json::to_vec(&full["metadata"]).unwrap());
        // Also when managedFields sorts last or first among the members.
        for meta in [
            json!({"labels": {"x": "y"}}),
            json!({"uid": "u", "name": "n"}),
        ] {
            let mut out = Vec::new();
            write_metadata(&mut out, meta.as_object().unwrap(), &raw).unwrap();
            let mut whole = meta.clone();
            whole[MANAGED] = kept.clone();
            assert_eq!(out, serde_json::to_vec(&whole).unwrap());
        }
    }

    #[test]
    fn objects_without_managed_fields_or_odd_shapes_decode_whole() {
        for v in [
            json!({"metadata": {"name": "x"}, "spec": {}}),
            json!({"metadata": "x"}),
            json!([1, 2]),
            json!("text"),
            json!(null),
        ] {
            let lean = decode(&serde_json::to_vec(&v).unwrap()).unwrap();
            assert_eq!(lean.object, v);
            assert!(lean.managed.is_none());
        }
        assert!(decode(b"{\"metadata\": {}} trailing").is_err());
        assert!(decode(b"{\"metadata\": {\"managedFields\": [}}").is_err());
    }
}
