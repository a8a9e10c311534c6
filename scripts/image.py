#!/usr/bin/env python3
"""Builds squizzle's container image as an OCI image layout, without a
container daemon.

    python3 scripts/image.py build --binary target/release/squizzle --out image/amd64 --tag 0.1.0
    python3 scripts/image.py merge --out image/all --tag 0.1.0 image/amd64 image/arm64
    skopeo copy --all oci:image/all:0.1.0 docker://ghcr.io/squizzle-dev/squizzle:0.1.0

`build` makes a single-platform image of one binary, for the machine it runs
on (the shared libraries the binary links are taken from this machine, found
with ldd). `merge` joins such layouts into one multi-platform image index.

The image holds one layer and nothing else than:
  /usr/local/bin/squizzle, the shared libraries it links and the dynamic loader;
  /etc/ssl/certs/ca-certificates.crt (this machine's CA bundle);
  /etc/passwd, /etc/group, /etc/nsswitch.conf;
  /home/nonroot (uid 65532) and /tmp (1777).
It runs as 65532:65532 and writes only below /tmp (XDG_CACHE_HOME=/tmp/cache),
so it works on a read-only root file system with a tmpfs on /tmp.

Reproducible: every timestamp is SOURCE_DATE_EPOCH (default 0), owners and
modes are fixed, entries are sorted, gzip carries no name or time; the same
binary and libraries give the same bytes and the same digest.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
UID = 65532
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
ELF_MACHINE = {0x3E: "x86_64", 0xB7: "aarch64"}


def fail(msg):
    print(f"image.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def say(msg):
    print(f"image.py: {msg}", file=sys.stderr)


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF" or head[5] != 1:
        fail(f"{path} is not a little-endian ELF executable")
    return ELF_MACHINE.get(int.from_bytes(head[18:20], "little"))


def linked_libraries(binary):
    """The files the dynamic loader maps for `binary` (ldd), loader included."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    text = out.stdout + out.stderr
    if "not a dynamic executable" in text or "statically linked" in text:
        return []
    if out.returncode != 0:
        fail(f"ldd {binary} failed: {text.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" (", 1)[0].strip()
            if target == "not found":
                fail(f"{binary} links a library this machine lacks: {line}")
            if target:
                libs.append(target)
        elif line.startswith("/"):
            libs.append(line.split(" (", 1)[0].strip())
    return sorted(set(libs))


class Layer:
    """A deterministic tar: entries added in any order, written sorted."""

    def __init__(self, mtime):
        self.mtime = mtime
        self.entries = {}

    def directory(self, path, mode=0o755, uid=0):
        path = path.strip("/")
        parts = path.split("/")
        for i in range(1, len(parts)):
            self.entries.setdefault("/".join(parts[:i]), ("dir", 0o755, 0, None))
        self.entries[path] = ("dir", mode, uid, None)

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        self.directory(os.path.dirname(path)) if "/" in path else None
        self.entries[path] = ("file", mode, 0, data)

    def symlink(self, path, target):
        path = path.strip("/")
        self.directory(os.path.dirname(path))
        self.entries[path] = ("link", 0o777, 0, target)

    def tar(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for path in sorted(self.entries):
                kind, mode, uid, data = self.entries[path]
                info = tarfile.TarInfo(path)
                info.mtime = self.mtime
                info.mode = mode
                info.uid = info.gid = uid
                info.uname = info.gname = ""
                if kind == "dir":
                    info.type = tarfile.DIRTYPE
                    t.addfile(info)
                elif kind == "link":
                    info.type = tarfile.SYMTYPE
                    info.linkname = data
                    t.addfile(info)
                else:
                    info.size = len(data)
                    t.addfile(info, io.BytesIO(data))
        return buf.getvalue()


class Layout:
    def __init__(self, root):
        self.root = root
        os.makedirs(os.path.join(root, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(root, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')

    def blob(self, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.root, "blobs", "sha256", digest)
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def read_blob(self, digest):
        with open(os.path.join(self.root, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
            return f.read()

    def write_index(self, manifests):
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        with open(os.path.join(self.root, "index.json"), "wb") as f:
            f.write(canonical(index))


def build(args):
    binary = args.binary
    if not os.path.isfile(binary):
        fail(f"no binary at {binary}")
    machine = elf_machine(binary)
    host = os.uname().machine
    if machine != host:
        fail(f"{binary} is a {machine or 'foreign'} binary but this machine is {host}: "
             "build each platform's image on a machine of that platform, then `merge`")
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    version = subprocess.run([binary, "version"], capture_output=True, text=True)
    if version.returncode != 0:
        fail(f"{binary} does not run here: {version.stderr.strip()}")
    version = version.stdout.split("\n", 1)[0].split(" ")[-1]

    layer = Layer(epoch)
    with open(binary, "rb") as f:
        layer.file("usr/local/bin/squizzle", f.read(), 0o755)
    for lib in linked_libraries(binary):
        real = os.path.realpath(lib)
        with open(real, "rb") as f:
            layer.file(lib, f.read(), 0o755)
        say(f"adding {lib}")
    if not os.path.isfile(args.ca_bundle):
        fail(f"no CA bundle at {args.ca_bundle} (Debian: apt-get install ca-certificates)")
    with open(args.ca_bundle, "rb") as f:
        layer.file("etc/ssl/certs/ca-certificates.crt", f.read())
    layer.file("etc/passwd", b"root:x:0:0:root:/root:/sbin/nologin\n"
               b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    layer.file("etc/group", b"root:x:0:\nnonroot:x:65532:\n")
    layer.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
    layer.directory("home/nonroot", 0o700, UID)
    layer.directory("tmp", 0o1777)
    tar = layer.tar()
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as z:
        z.write(tar)

    out = Layout(args.out)
    layer_desc = out.blob(gz.getvalue(), OCI_LAYER)
    config = {
        "architecture": ARCH[machine],
        "os": "linux",
        "created": created,
        "config": {
            "User": f"{UID}:{UID}",
            "Entrypoint": ["/usr/local/bin/squizzle"],
            "Env": [
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "HOME=/home/nonroot",
                "XDG_CACHE_HOME=/tmp/cache",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            ],
            "WorkingDir": "/home/nonroot",
            "Labels": {"org.opencontainers.image.version": version},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "scripts/image.py build"}],
    }
    config_desc = out.blob(canonical(config), OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc,
        "layers": [layer_desc],
        "annotations": {
            "org.opencontainers.image.source": "https://github.com/squizzle-dev/squizzle",
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.created": created,
        },
    }
    desc = out.blob(canonical(manifest), OCI_MANIFEST)
    desc["platform"] = {"architecture": ARCH[machine], "os": "linux"}
    desc["annotations"] = {REF_NAME: args.tag}
    out.write_index([desc])
    say(f"wrote {args.out}: {args.tag} = {desc['digest']} ({ARCH[machine]}, squizzle {version})")
    print(desc["digest"])


def merge(args):
    out = Layout(args.out)
    manifests = []
    seen = set()
    for src in args.layouts:
        with open(os.path.join(src, "index.json"), "rb") as f:
            index = json.load(f)
        for m in index.get("manifests", []):
            if m.get("mediaType") != OCI_MANIFEST or "platform" not in m:
                fail(f"{src}: expected single-platform image manifests from `build`")
            plat = (m["platform"]["os"], m["platform"]["architecture"])
            if plat in seen:
                fail(f"two images for {plat[0]}/{plat[1]}")
            seen.add(plat)
            src_layout = Layout(src)
            manifest = src_layout.read_blob(m["digest"])
            body = json.loads(manifest)
            for d in [body["config"]] + body["layers"]:
                out.blob(src_layout.read_blob(d["digest"]), d["mediaType"])
            out.blob(manifest, OCI_MANIFEST)
            manifests.append({k: m[k] for k in ("mediaType", "digest", "size", "platform")})
    manifests.sort(key=lambda m: (m["platform"]["os"], m["platform"]["architecture"]))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    desc = out.blob(canonical(index), OCI_INDEX)
    desc["annotations"] = {REF_NAME: args.tag}
    out.write_index([desc])
    say(f"wrote {args.out}: {args.tag} = {desc['digest']} ({len(manifests)} platforms)")
    print(desc["digest"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="a single-platform image of one binary")
    b.add_argument("--binary", required=True)
    b.add_argument("--out", required=True, help="the OCI layout folder to write")
    b.add_argument("--tag", required=True)
    b.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt")
    m = sub.add_parser("merge", help="one multi-platform index of several `build` layouts")
    m.add_argument("--out", required=True)
    m.add_argument("--tag", required=True)
    m.add_argument("layouts", nargs="+")
    args = p.parse_args()
    if args.cmd == "build":
        if os.path.exists(os.path.join(args.out, "index.json")):
            shutil.rmtree(args.out)
        build(args)
    else:
        merge(args)


if __name__ == "__main__":
    main()
