#!/usr/bin/env python3
"""Writes the Kubernetes protobuf field table ferrokube decodes requests with.

Kubernetes clients (kubectl >= 1.32 among them) send built-in objects as
protobuf. Decoding them needs each message's field numbers and types: this
script reads them from the prost-generated sources of the `k8s-pb` crate in
the local cargo registry and writes one line per field to
crates/ferrokube-apiserver/src/protobuf_fields.tsv:

    message<TAB>field<TAB>number<TAB>kind<TAB>repeated<TAB>type<TAB>inline<TAB>json<TAB>required

message and type are dotted paths like `api.core.v1.ConfigMap`; kind is one
of string, bool, int32, int64, double, bytes, message, map_string,
map_bytes, map_message.

The last three columns come from the JSON side, read from the `k8s-openapi`
crate's sources (every Kubernetes version it carries, merged):
- inline is 1 for a field that holds one of Go's inline structs
  (`json:",inline"`, such as a Volume's VolumeSource). Protobuf carries such a
  struct as a nested message, but JSON writes its fields into the parent. The
  rule: the parent's JSON has no property of the field's name, and every field
  of the nested message is a property of the parent. It is `list` for the one
  field (`items`) of a message that is a Go named slice (ExtraValue, Verbs):
  protobuf wraps the list in a message, JSON writes the list itself. The rule:
  a message of that one repeated field with no schema of its own.
- json is the field's JSON property name (for the fields of an inline
  message, the name it has in the parent), empty where no schema names it.
- required is 1 where the schema requires the property (Go writes it even
  when it is the zero value).
Run it again after moving to a newer k8s-pb or k8s-openapi.

It also writes crates/ferrokube-apiserver/src/protobuf_roundtrip_pb.rs, the
test-only conversion of JSON into k8s-pb's prost messages that the round-trip
test encodes objects with, for every kind of a stable version (v1, v2) and
the messages they hold.
"""
import glob
import os
import re
import sys

def registry_dir(crate="k8s-pb"):
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    dirs = sorted(glob.glob(os.path.join(home, f"registry/src/*/{crate}-[0-9]*")))
    if not dirs:
        sys.exit(f"{crate} is not in the cargo registry: run `cargo fetch` (it is a dependency of ferrokube-apiserver)")
    return dirs[-1]

OPENAPI_STRUCT = re.compile(r'^pub struct (?P<name>\w+) \{')
OPENAPI_KEY = re.compile(r'"(?P<json>[^"]+)" => Field::Key_(?P<rust>\w+),')
OPENAPI_FIELD = re.compile(r'^    pub (?:r#)?(?P<rust>\w+): (?P<ty>.+),$')

def openapi_schemas():
    """Lower-cased dotted definition path -> (JSON property names by flat
    name, required names), from k8s-openapi's generated types of every
    Kubernetes version it carries. Lower-cased because the two crates spell
    acronyms differently (ISCSIVolumeSource, IscsiVolumeSource)."""
    src = os.path.join(registry_dir("k8s-openapi"), "src")
    out = {}
    for path in sorted(glob.glob(os.path.join(src, "v1_*", "**", "*.rs"), recursive=True)):
        rel = os.path.relpath(os.path.dirname(path), src).split(os.sep)[1:]
        if not rel or os.path.basename(path) == "mod.rs":
            continue
        struct, keys, required = None, {}, set()
        for line in open(path, encoding="utf-8"):
            m = OPENAPI_STRUCT.match(line)
            if m and struct is None:
                struct = m.group("name")
                continue
            m = OPENAPI_FIELD.match(line.rstrip("\n"))
            if m and struct and not m.group("ty").startswith(("Option<", "std::option::Option<")):
                required.add(m.group("rust"))
            m = OPENAPI_KEY.search(line)
            if m:
                keys[m.group("rust")] = m.group("json")
        if struct is None or not keys:
            continue
        props, req = out.setdefault(".".join(rel + [struct]).lower(), ({}, set()))
        for rust, json in keys.items():
            props[flat(json)] = json
            if rust in required:
                req.add(json)
    return out

def flat(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())

ATTR = re.compile(r'#\[prost\((?P<body>[^\]]*)\)\]')
FIELD = re.compile(r'pub (?:r#)?(?P<name>\w+): (?P<ty>.+),$')
STRUCT = re.compile(r'^pub struct (?P<name>\w+) \{')

def resolve(module, ty):
    """A Rust type path as written in `module` -> a dotted absolute path."""
    ty = re.sub(r'\s+', '', ty)
    inner = re.sub(r'^::core::option::Option<(.*?),?>$', r'\1', ty)
    inner = re.sub(r'^::prost::alloc::vec::Vec<(.*?),?>$', r'\1', inner)
    inner = re.sub(r'^::prost::alloc::boxed::Box<(.*?),?>$', r'\1', inner)
    m = re.match(r'^::prost::alloc::collections::BTreeMap<[^,]+, *(.*?),?>$', inner)
    if m:
        inner = m.group(1)
    parts = inner.rstrip(",").split("::")
    base = list(module)
    while parts and parts[0] == "super":
        base.pop()
        parts.pop(0)
    if len(parts) == 1:
        return ".".join(module + parts)
    return ".".join(base + parts)

def json_columns(rows):
    """Adds the inline, json and required columns to every row."""
    schemas = openapi_schemas()
    def schema_of(msg):
        return schemas.get(msg.lower())
    fields = {}
    for row in rows:
        fields.setdefault(row[0], []).append(row)
    inline = {}  # (message, field) -> the nested message

    def flattened(msg):
        """The JSON names a message's fields take, its inline ones expanded."""
        names = []
        for r in fields.get(msg, []):
            if (msg, r[1]) in inline:
                names += flattened(r[5])
            else:
                names.append(flat(r[1]))
        return names

    # Until nothing changes: an inline message may hold an inline message
    # itself (NamedRuleWithOperations > RuleWithOperations > Rule).
    changed = True
    while changed:
        changed = False
        for msg, rs in fields.items():
            if schema_of(msg) is None:
                continue
            props = schema_of(msg)[0]
            for row in rs:
                if row[3] != "message" or flat(row[1]) in props or (msg, row[1]) in inline:
                    continue
                nested = flattened(row[5])
                if nested and all(n in props for n in nested):
                    inline[(msg, row[1])] = row[5]
                    changed = True
    for msg, rs in fields.items():
        props = (schema_of(msg) or ({}, set()))[0]
        for row in rs:
            if props and row[3] == "message" and flat(row[1]) not in props and (msg, row[1]) not in inline:
                print(f"note: {msg}.{row[1]} has no JSON property and is not inline", file=sys.stderr)
    lists = {m for m, rs in fields.items()
             if len(rs) == 1 and rs[0][1] == "items" and rs[0][4] == "1" and schema_of(m) is None}
    print(f"list messages: {sorted(lists)}", file=sys.stderr)
    # The fields of a message used inline take their JSON names from a parent.
    parent_of = {}
    for (msg, _), nested in inline.items():
        parent_of.setdefault(nested, msg)
    out = []
    for row in rows:
        msg = row[0]
        owner = msg
        while schema_of(owner) is None and owner in parent_of:
            owner = parent_of[owner]
        props, required = schema_of(owner) or ({}, set())
        json = props.get(flat(row[1]), "")
        is_inline = (msg, row[1]) in inline
        is_list = msg in lists
        out.append(row + ["1" if is_inline else "list" if is_list else "0", "" if is_inline else json,
                          "1" if json and json in required and not is_inline else "0"])
    for (msg, field), nested in sorted(inline.items()):
        print(f"inline: {msg}.{field} ({nested})", file=sys.stderr)
    print(f"{len(inline)} inline fields", file=sys.stderr)
    return out

RUST_KEYWORDS = {"as", "break", "const", "continue", "crate", "else", "enum", "extern", "false",
                 "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
                 "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
                 "type", "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract",
                 "become", "box", "do", "final", "macro", "override", "priv", "typeof",
                 "unsized", "virtual", "yield", "try", "gen"}

# Messages Kubernetes encodes specially; the test's own code converts them.
SPECIAL = {
    "apimachinery.pkg.apis.meta.v1.Time": "special::time",
    "apimachinery.pkg.apis.meta.v1.MicroTime": "special::micro_time",
    "apimachinery.pkg.util.intstr.IntOrString": "special::int_or_string",
    "apimachinery.pkg.api.resource.Quantity": "special::quantity",
    "apimachinery.pkg.runtime.RawExtension": "special::raw_extension",
    "apimachinery.pkg.apis.meta.v1.FieldsV1": "special::fields_v1",
    "apimachinery.pkg.apis.meta.v1.Duration": "special::duration",
}

def write_converters(rows):
    """Writes the test-only JSON -> k8s-pb conversion (see the top)."""
    fields = {}
    for row in rows:
        fields.setdefault(row[0], []).append(row)
    stable = re.compile(r"\.v\d+\.[A-Z]\w*$")
    roots = sorted(m for m, rs in fields.items()
                   if m.startswith(("api.", "kube_aggregator.", "apiextensions_apiserver."))
                   and stable.search(m) and not m.endswith("List")
                   and any(r[1] == "metadata" and r[5].endswith("meta.v1.ObjectMeta") for r in rs))
    roots.append("apimachinery.pkg.apis.meta.v1.DeleteOptions")
    seen, todo = set(), list(roots)
    while todo:
        m = todo.pop()
        if m in seen or m in SPECIAL:
            continue
        seen.add(m)
        todo += [r[5] for r in fields.get(m, []) if r[5]]
    boxed = boxed_fields()
    fn = lambda m: SPECIAL.get(m) or m.replace(".", "_")
    rust = lambda m: "k8s_pb::" + m.replace(".", "::")
    lines = ["// Generated by scripts/gen-proto-fields.py from k8s-pb's sources: do not edit.",
             "// JSON -> k8s-pb prost messages, for the protobuf round-trip test.",
             ""]
    for m in sorted(seen):
        lines.append(f"pub(super) fn {fn(m)}(c: &mut Ctx, o: &mut Obj) -> {rust(m)} {{")
        lines.append(f'    const M: &str = "{m}";')
        lines.append(f"    {rust(m)} {{")
        for r in fields.get(m, []):
            name, kind, repeated, ty, inline = r[1], r[3], r[4] == "1", r[5], r[6] == "1"
            wrap = "list" if fields.get(ty, [[""] * 7])[0][6] == "list" else "object"
            field = ("r#" + name) if name in RUST_KEYWORDS else name
            if kind == "message" and inline:
                value = f"Some({fn(ty)}(c, o))"
            elif kind == "message":
                conv = f"|c, v| c.{wrap}(v, \"{ty}\", {fn(ty)})"
                if ty in SPECIAL:
                    conv = f"|c, v| {fn(ty)}(c, v)"
                value = f'c.{"messages" if repeated else "message"}(o, M, "{name}", {conv})'
                if (m, name) in boxed:
                    value += ".map(Box::new)"
            elif kind == "map_message":
                conv = f"|c, v| {fn(ty)}(c, v)" if ty in SPECIAL else f"|c, v| c.{wrap}(v, \"{ty}\", {fn(ty)})"
                value = f'c.message_map(o, M, "{name}", {conv})'
            elif kind.startswith("map_"):
                value = f'c.map(o, M, "{name}")'
            else:
                value = f'c.{"scalars" if repeated else "scalar"}(o, M, "{name}")'
            lines.append(f"        {field}: {value},")
        lines.append("    }")
        lines.append("}")
        lines.append("")
    lines.append("/// The kinds converted, by message path.")
    lines.append("pub(super) fn encode(c: &mut Ctx, msg: &str, o: &mut Obj) -> Option<Vec<u8>> {")
    lines.append("    use prost::Message;")
    lines.append("    Some(match msg {")
    for m in roots:
        lines.append(f'        "{m}" => {fn(m)}(c, o).encode_to_vec(),')
    lines.append("        _ => return None,")
    lines.append("    })")
    lines.append("}")
    dest = os.path.join(os.path.dirname(__file__), "..", "crates/ferrokube-apiserver/src/protobuf_roundtrip_pb.rs")
    with open(dest, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(seen)} messages converted in {os.path.normpath(dest)}", file=sys.stderr)

def boxed_fields():
    """(message, field) of the fields k8s-pb boxes (recursive messages)."""
    out = set()
    src = os.path.join(registry_dir(), "src")
    for path in glob.glob(os.path.join(src, "**/mod.rs"), recursive=True):
        module = os.path.relpath(os.path.dirname(path), src).split(os.sep)
        struct = None
        for line in open(path, encoding="utf-8"):
            m = STRUCT.match(line.strip())
            if m:
                struct = m.group("name")
            m = re.match(r"\s*pub (?:r#)?(\w+):.*boxed::Box<", line)
            if m and struct:
                out.add((".".join(module + [struct]), m.group(1)))
    return out

def main():
    src = os.path.join(registry_dir(), "src")
    out = []
    for path in sorted(glob.glob(os.path.join(src, "**/mod.rs"), recursive=True)):
        rel = os.path.relpath(os.path.dirname(path), src)
        if rel == ".":
            continue
        module = rel.split(os.sep)
        struct = None
        attr = None
        pending = None
        for line in open(path, encoding="utf-8"):
            line = line.strip()
            # A field whose type spans several lines: join them.
            if pending is not None:
                pending += (" " if pending.endswith(":") else "") + line
                if not (pending.endswith(",") and pending.count("<") == pending.count(">")):
                    continue
                line, pending = pending, None
            elif attr and line.startswith("pub ") and not (
                line.endswith(",") and line.count("<") == line.count(">")
            ):
                pending = line
                continue
            m = STRUCT.match(line)
            if m:
                struct = m.group("name")
                continue
            if line == "}":
                struct = None
                continue
            m = ATTR.match(line)
            if m and struct:
                attr = m.group("body")
                continue
            m = FIELD.match(line)
            if m and struct and attr:
                body = attr
                attr = None
                if "oneof" in body:
                    continue
                number = re.search(r'tag = "(\d+)"', body).group(1)
                repeated = "1" if "repeated" in body else "0"
                kind = body.split(",")[0].strip()
                ty = ""
                if kind.startswith("btree_map"):
                    value = re.search(r'btree_map = "string, (\w+)"', body).group(1)
                    kind = {"string": "map_string", "bytes": "map_bytes", "message": "map_message"}[value]
                    if kind == "map_message":
                        ty = resolve(module, m.group("ty"))
                elif kind.startswith("bytes"):
                    kind = "bytes"
                elif kind == "message":
                    ty = resolve(module, m.group("ty"))
                elif kind not in ("string", "bool", "int32", "int64", "double"):
                    sys.exit(f"unknown field kind {kind!r} in {path}: {line}")
                out.append([".".join(module + [struct]), m.group("name"), number, kind, repeated, ty])
    out = json_columns(out)
    write_converters(out)
    dest = os.path.join(os.path.dirname(__file__), "..", "crates/ferrokube-apiserver/src/protobuf_fields.tsv")
    with open(dest, "w", encoding="utf-8") as f:
        f.write("\n".join("\t".join(row) for row in out) + "\n")
    print(f"{len(out)} fields written to {os.path.normpath(dest)}")

main()
