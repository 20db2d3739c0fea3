#!/usr/bin/env python3
"""Writes the Kubernetes protobuf field table ferrokube decodes requests with.

Kubernetes clients (kubectl >= 1.32 among them) send built-in objects as
protobuf. Decoding them needs each message's field numbers and types: this
script reads them from the prost-generated sources of the `k8s-pb` crate in
the local cargo registry and writes one line per field to
crates/ferrokube-apiserver/src/protobuf_fields.tsv:

    message<TAB>field<TAB>number<TAB>kind<TAB>repeated<TAB>type

message and type are dotted paths like `api.core.v1.ConfigMap`; kind is one
of string, bool, int32, int64, double, bytes, message, map_string,
map_bytes, map_message. Run it again after moving to a newer k8s-pb.
"""
import glob
import os
import re
import sys

def registry_dir():
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    dirs = sorted(glob.glob(os.path.join(home, "registry/src/*/k8s-pb-*")))
    if not dirs:
        sys.exit("k8s-pb is not in the cargo registry: run `cargo fetch` with it as a dependency first")
    return dirs[-1]

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
                out.append("\t".join([".".join(module + [struct]), m.group("name"), number, kind, repeated, ty]))
    dest = os.path.join(os.path.dirname(__file__), "..", "crates/ferrokube-apiserver/src/protobuf_fields.tsv")
    with open(dest, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"{len(out)} fields written to {os.path.normpath(dest)}")

main()
