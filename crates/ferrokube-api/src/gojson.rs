//! JSON written as Go's `encoding/json` writes it, which is how the
//! Kubernetes API server writes every JSON body: `<`, `>` and `&` escaped as
//! `\u003c`, `\u003e`, `\u0026` (and U+2028, U+2029 escaped too), and the
//! members of a typed object in the order of its Go struct's fields (given
//! here as an [`Order`]), not sorted.

use std::io;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// serde_json's compact formatter with Go's HTML-safe string escaping.
#[derive(Clone, Copy, Debug, Default)]
pub struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let escape: Option<(&[u8], usize)> = match bytes[i] {
                b'<' => Some((b"\\u003c", 1)),
                b'>' => Some((b"\\u003e", 1)),
                b'&' => Some((b"\\u0026", 1)),
                // U+2028 and U+2029 are E2 80 A8 and E2 80 A9 in UTF-8.
                0xE2 if bytes.get(i + 1) == Some(&0x80) => match bytes.get(i + 2) {
                    Some(0xA8) => Some((b"\\u2028", 3)),
                    Some(0xA9) => Some((b"\\u2029", 3)),
                    _ => None,
                },
                _ => None,
            };
            match escape {
                Some((text, len)) => {
                    writer.write_all(&bytes[start..i])?;
                    writer.write_all(text)?;
                    i += len;
                    start = i;
                }
                None => i += 1,
            }
        }
        writer.write_all(&bytes[start..])
    }
}

/// `v` as compact JSON with Go's escaping (map keys in the value's order).
pub fn to_vec<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, v);
    out
}

/// Appends `v` as compact JSON with Go's escaping.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing to a Vec fails only for values that are not JSON (a map
    // with non-string keys), which callers do not have.
    let _ = to_writer(out, v);
}

/// `serde_json::to_writer` with Go's escaping.
pub fn to_writer<W: io::Write, T: Serialize + ?Sized>(writer: W, v: &T) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(writer, GoFormatter);
    v.serialize(&mut ser)
}

/// The order of a Go struct's JSON members: each name, with the order of
/// the member's own members when it is a struct (or a list of structs).
/// Members not named come after, in the map's order.
#[derive(Debug)]
pub struct Order(pub &'static [(&'static str, Option<&'static Order>)]);

/// `v` with its members in `order`, with Go's escaping.
pub fn to_vec_ordered(v: &Value, order: &'static Order) -> Vec<u8> {
    to_vec(&InOrder(v, Some(order)))
}

/// `v` with its members in `order`, indented by two spaces as Go's
/// `json.MarshalIndent(v, "", "  ")` writes it (what Kubernetes'
/// `WriteRawJSON` sends, for `/version`).
pub fn to_vec_ordered_indented(v: &Value, order: &'static Order) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"  ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // A `Value` always encodes.
    let _ = InOrder(v, Some(order)).serialize(&mut ser);
    out
}

struct InOrder<'a>(&'a Value, Option<&'static Order>);

impl Serialize for InOrder<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.0, self.1) {
            (Value::Object(m), Some(Order(keys))) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, sub) in keys.iter() {
                    if let Some(v) = m.get(*k) {
                        map.serialize_entry(k, &InOrder(v, *sub))?;
                    }
                }
                for (k, v) in m {
                    if !keys.iter().any(|(name, _)| name == k) {
                        map.serialize_entry(k, v)?;
                    }
                }
                map.end()
            }
            (Value::Array(items), Some(order)) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&InOrder(item, Some(order)))?;
                }
                seq.end()
            }
            (v, _) => v.serialize(s),
        }
    }
}

/// `metav1.ListMeta`.
pub static LIST_META: Order = Order(&[
    ("selfLink", None),
    ("resourceVersion", None),
    ("continue", None),
    ("remainingItemCount", None),
]);

/// `metav1.StatusCause`.
pub static STATUS_CAUSE: Order = Order(&[("reason", None), ("message", None), ("field", None)]);

/// `metav1.StatusDetails`.
pub static STATUS_DETAILS: Order = Order(&[
    ("name", None),
    ("group", None),
    ("kind", None),
    ("uid", None),
    ("causes", Some(&STATUS_CAUSE)),
    ("retryAfterSeconds", None),
]);

/// `metav1.Status`.
pub static STATUS: Order = Order(&[
    ("kind", None),
    ("apiVersion", None),
    ("metadata", Some(&LIST_META)),
    ("status", None),
    ("message", None),
    ("reason", None),
    ("details", Some(&STATUS_DETAILS)),
    ("code", None),
]);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_as_go_does() {
        let v = json!({"a": "x<y>&z\u{2028}\u{2029}é\n\"\\"});
        assert_eq!(
            String::from_utf8(to_vec(&v)).unwrap(),
            r#"{"a":"x\u003cy\u003e\u0026z\u2028\u2029é\n\"\\"}"#
        );
        // The escapes read back as the same text.
        let back: Value = serde_json::from_slice(&to_vec(&v)).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn indented_as_marshal_indent() {
        static V: Order = Order(&[("major", None), ("minor", None)]);
        let v = json!({"minor": "33", "major": "1"});
        assert_eq!(
            String::from_utf8(to_vec_ordered_indented(&v, &V)).unwrap(),
            "{\n  \"major\": \"1\",\n  \"minor\": \"33\"\n}"
        );
    }

    #[test]
    fn members_in_order_then_the_rest() {
        static INNER: Order = Order(&[("z", None), ("a", None)]);
        static OUTER: Order = Order(&[("kind", None), ("items", Some(&INNER))]);
        let v = json!({"b": 1, "items": [{"a": 1, "z": 2, "m": 3}], "kind": "K"});
        assert_eq!(
            String::from_utf8(to_vec_ordered(&v, &OUTER)).unwrap(),
            r#"{"kind":"K","items":[{"z":2,"a":1,"m":3}],"b":1}"#
        );
    }
}
