#!/usr/bin/env bash
# Builds a busybox image for pods without docker or a registry, as an archive
# that `ferrokube image import` (or `ctr images import`) loads:
#   OUTDIR/busybox.tar  docker.io/library/busybox:latest and busybox:1.35, from
#                       Debian's busybox-static: /bin/busybox plus one link per applet
# (The node's sandbox image needs no script: the pause program is part of the
# agent's build and the agent imports its image at start.)
# Each archive holds an OCI image layout (oci-layout, index.json, blobs/) and a
# docker-save manifest.json, so both kinds of importer find the image's names.
# Usage: scripts/build-images.sh [OUTDIR]   (default: target/images)
# Needs: busybox-static, python3.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/target/images}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v python3 >/dev/null || { echo "build-images: python3 is missing" >&2; exit 1; }
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || {
  echo "build-images: /bin/busybox (Debian package busybox-static) is missing" >&2; exit 1; }
file_is_static() { ! /bin/busybox ldd "$1" >/dev/null 2>&1 && ! ldd "$1" 2>/dev/null | grep -q '=>'; }
file_is_static /bin/busybox || { echo "build-images: /bin/busybox is not static (install busybox-static)" >&2; exit 1; }

/bin/busybox --list > "$work/applets"

python3 - "$work" "$out" <<'PY'
import hashlib, io, json, os, sys, tarfile

work, out = sys.argv[1], sys.argv[2]
EPOCH = 0  # fixed mtimes: the same inputs give the same image digests


def entry(tar, name, data=None, mode=0o644, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.mode, info.type = EPOCH, 0, 0, mode, kind
    info.linkname = link
    if data is None:
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def layer(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for f in files:
            entry(tar, **f)
    return buf.getvalue()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_image(path, names, layer_bytes, config):
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha(layer_bytes), "size": len(layer_bytes)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": []}
    for name in names:
        index["manifests"].append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(manifest_bytes), "size": len(manifest_bytes),
            "platform": {"architecture": config["architecture"], "os": "linux"},
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
        })
    blob = lambda b: "blobs/sha256/" + hashlib.sha256(b).hexdigest()
    docker = [{"Config": blob(config_bytes), "Layers": [blob(layer_bytes)],
               "RepoTags": [n.removeprefix("docker.io/library/").removeprefix("docker.io/")
                            for n in names]}]
    tmp = path + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entry(tar, "blobs", mode=0o755, kind=tarfile.DIRTYPE)
        entry(tar, "blobs/sha256", mode=0o755, kind=tarfile.DIRTYPE)
        for b in (layer_bytes, config_bytes, manifest_bytes):
            entry(tar, blob(b), b)
        entry(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        entry(tar, "index.json", json.dumps(index, sort_keys=True).encode())
        entry(tar, "manifest.json", json.dumps(docker, sort_keys=True).encode())
    os.replace(tmp, path)
    print(f"build-images: {path}: {', '.join(names)} ({sha(manifest_bytes)[:19]})")


def config_for(layer_bytes, cfg):
    return {"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
            "config": cfg, "rootfs": {"type": "layers", "diff_ids": [sha(layer_bytes)]},
            "history": [{"created": "1970-01-01T00:00:00Z",
                         "created_by": "ferrokube scripts/build-images.sh"}]}


# busybox
with open("/bin/busybox", "rb") as f:
    busybox = f.read()
files = [dict(name=d, mode=0o755, kind=tarfile.DIRTYPE)
         for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home", "var",
                   "var/www", "proc", "sys", "dev")]
files.append(dict(name="tmp", mode=0o1777, kind=tarfile.DIRTYPE))
files.append(dict(name="bin/busybox", data=busybox, mode=0o755))
with open(os.path.join(work, "applets")) as f:
    applets = sorted({a.strip() for a in f if a.strip() and a.strip() != "busybox"})
for a in applets:
    files.append(dict(name="bin/" + a, kind=tarfile.SYMTYPE, link="busybox", mode=0o777))
files.append(dict(name="etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"
                  b"nobody:x:65534:65534:nobody:/home:/bin/false\n"))
files.append(dict(name="etc/group", data=b"root:x:0:\nnogroup:x:65534:\n"))
busybox_layer = layer(files)
write_image(os.path.join(out, "busybox.tar"),
            ["docker.io/library/busybox:latest", "docker.io/library/busybox:1.35"],
            busybox_layer,
            config_for(busybox_layer, {"Cmd": ["sh"], "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}))
PY
