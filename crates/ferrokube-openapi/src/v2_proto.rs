//! The Swagger 2.0 document in the protobuf encoding clients ask for with
//! `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
//! (the `openapi.v2.Document` message of gnostic's OpenAPIv2.proto).
//! client-go decodes `/openapi/v2` only as protobuf, so kubectl 1.27 and 1.28
//! (and newer ones when v3 is missing) need this form. Encodes what clients
//! read: definitions with their properties, types, references, required
//! fields and vendor extensions; paths with their operations, parameters,
//! consumed types and vendor extensions.

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.varint(u64::from(field) << 3 | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.varint(u64::from(field) << 3);
            self.varint(1);
        }
    }

    fn strings(&mut self, field: u32, v: Option<&Value>) {
        for s in v.and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                self.bytes(field, s.as_bytes());
            }
        }
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `Any{yaml}`: JSON text is YAML.
fn any(v: &Value) -> Msg {
    let mut m = Msg::default();
    m.string(2, &v.to_string());
    m
}

/// Every `x-` key of `m` as `NamedAny` entries in field `field`.
fn extensions(out: &mut Msg, field: u32, m: &Map<String, Value>) {
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Msg::default();
        named.string(1, k);
        named.message(2, any(v));
        out.message(field, named);
    }
}

fn schema(v: &Value) -> Msg {
    let mut out = Msg::default();
    let Some(m) = v.as_object() else {
        return out;
    };
    out.string(1, str_of(m, "$ref"));
    out.string(2, str_of(m, "format"));
    out.string(3, str_of(m, "title"));
    out.string(4, str_of(m, "description"));
    if let Some(d) = m.get("default") {
        out.message(5, any(d));
    }
    out.strings(19, m.get("required"));
    for e in m
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(20, any(e));
    }
    match m.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Msg::default();
            item.varint(2 << 3);
            item.varint(u64::from(*b));
            out.message(21, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(s));
            out.message(21, item);
        }
        _ => {}
    }
    match m.get("type") {
        Some(Value::String(t)) => {
            let mut item = Msg::default();
            item.string(1, t);
            out.message(22, item);
        }
        Some(types @ Value::Array(_)) => {
            let mut item = Msg::default();
            item.strings(1, Some(types));
            out.message(22, item);
        }
        _ => {}
    }
    match m.get("items") {
        Some(Value::Array(items)) => {
            let mut item = Msg::default();
            items.iter().for_each(|s| item.message(1, schema(s)));
            out.message(23, item);
        }
        Some(s @ Value::Object(_)) => {
            let mut item = Msg::default();
            item.message(1, schema(s));
            out.message(23, item);
        }
        _ => {}
    }
    for s in m
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(24, schema(s));
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        let mut p = Msg::default();
        for (name, s) in props {
            p.message(1, named(name, schema(s)));
        }
        out.message(25, p);
    }
    extensions(&mut out, 31, m);
    out
}

fn named(name: &str, value: Msg) -> Msg {
    let mut m = Msg::default();
    m.string(1, name);
    m.message(2, value);
    m
}

fn parameter(v: &Value) -> Msg {
    let mut param = Msg::default();
    let m = v.as_object().cloned().unwrap_or_default();
    let location = str_of(&m, "in");
    if location == "body" {
        let mut body = Msg::default();
        body.string(1, str_of(&m, "description"));
        body.string(2, str_of(&m, "name"));
        body.string(3, location);
        body.boolean(
            4,
            m.get("required").and_then(Value::as_bool).unwrap_or(false),
        );
        if let Some(s) = m.get("schema") {
            body.message(5, schema(s));
        }
        extensions(&mut body, 6, &m);
        param.message(1, body);
    } else {
        // Query and path sub-schemas share their first fields; `type` and
        // `uniqueItems` sit at different numbers.
        let (kind, ty, unique, ext) = if location == "path" {
            (4, 5, 19, 22)
        } else {
            (3, 6, 20, 23)
        };
        let mut sub = Msg::default();
        sub.boolean(
            1,
            m.get("required").and_then(Value::as_bool).unwrap_or(false),
        );
        sub.string(2, location);
        sub.string(3, str_of(&m, "description"));
        sub.string(4, str_of(&m, "name"));
        sub.string(ty, str_of(&m, "type"));
        sub.boolean(
            unique,
            m.get("uniqueItems")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        );
        extensions(&mut sub, ext, &m);
        let mut non_body = Msg::default();
        non_body.message(kind, sub);
        param.message(2, non_body);
    }
    let mut item = Msg::default();
    item.message(1, param);
    item
}

fn operation(v: &Value) -> Msg {
    let mut out = Msg::default();
    let Some(m) = v.as_object() else {
        return out;
    };
    out.strings(1, m.get("tags"));
    out.string(3, str_of(m, "description"));
    out.string(5, str_of(m, "operationId"));
    out.strings(6, m.get("produces"));
    out.strings(7, m.get("consumes"));
    for p in m
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.message(8, parameter(p));
    }
    if let Some(responses) = m.get("responses").and_then(Value::as_object) {
        let mut rs = Msg::default();
        for (code, r) in responses {
            let mut response = Msg::default();
            response.string(
                1,
                r.get("description").and_then(Value::as_str).unwrap_or(""),
            );
            if let Some(s) = r.get("schema") {
                let mut item = Msg::default();
                item.message(1, schema(s));
                response.message(2, item);
            }
            let mut value = Msg::default();
            value.message(1, response);
            rs.message(1, named(code, value));
        }
        out.message(9, rs);
    }
    out.strings(10, m.get("schemes"));
    extensions(&mut out, 13, m);
    out
}

/// Encodes a Swagger 2.0 JSON document as an `openapi.v2.Document`.
pub(crate) fn encode(doc: &Value) -> Vec<u8> {
    let mut out = Msg::default();
    out.string(
        1,
        doc.get("swagger").and_then(Value::as_str).unwrap_or("2.0"),
    );
    if let Some(info) = doc.get("info").and_then(Value::as_object) {
        let mut i = Msg::default();
        i.string(1, str_of(info, "title"));
        i.string(2, str_of(info, "version"));
        out.message(2, i);
    }
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        let mut ps = Msg::default();
        for (path, item) in paths {
            let mut pi = Msg::default();
            for (method, field) in [
                ("get", 2),
                ("put", 3),
                ("post", 4),
                ("delete", 5),
                ("options", 6),
                ("head", 7),
                ("patch", 8),
            ] {
                if let Some(op) = item.get(method) {
                    pi.message(field, operation(op));
                }
            }
            for p in item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                pi.message(9, parameter(p));
            }
            ps.message(2, named(path, pi));
        }
        out.message(8, ps);
    }
    if let Some(defs) = doc.get("definitions").and_then(Value::as_object) {
        let mut d = Msg::default();
        for (name, s) in defs {
            d.message(1, named(name, schema(s)));
        }
        out.message(9, d);
    }
    out.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn encodes_fields_with_protobuf_wire_format() {
        let mut m = super::Msg::default();
        m.varint(300);
        assert_eq!(m.0, [0xac, 0x02]);
        let doc = json!({"swagger": "2.0", "definitions": {"A": {"type": "object", "x-k": 1}}});
        let bytes = super::encode(&doc);
        // swagger = 1 (string "2.0")
        assert_eq!(&bytes[..5], &[0x0a, 3, b'2', b'.', b'0']);
        // definitions = 9, holding NamedSchema{name "A", value Schema{type = 22 {"object"}, vendor_extension = 31}}
        assert_eq!(bytes[5], 9 << 3 | 2);
        let schema: Vec<u8> = [
            vec![0xb2, 0x01, 8, 0x0a, 6],
            b"object".to_vec(),
            vec![0xfa, 0x01, 10, 0x0a, 3],
            b"x-k".to_vec(),
            vec![0x12, 3, 0x12, 1, b'1'],
        ]
        .concat();
        let named: Vec<u8> = [vec![0x0a, 1, b'A', 0x12, schema.len() as u8], schema].concat();
        let defs: Vec<u8> = [vec![0x0a, named.len() as u8], named].concat();
        assert_eq!(
            &bytes[6..],
            [vec![defs.len() as u8], defs].concat().as_slice()
        );
    }
}
