#!/usr/bin/env python3
"""Checks the packaging that cannot run on this machine (no Docker daemon, no Kubernetes, no
systemd as init) as far as it can be checked here:

- deploy/k8s/*.yaml parse; the expected objects are there; every container's command names
  one of our binaries with flags that binary accepts (its --help); the ConfigMap's weir.yaml
  parses and uses only keys deploy/weir.yaml documents; volumes and config maps referenced
  exist.
- deploy/systemd/*.service pass `systemd-analyze verify` (pointed at this build's binaries)
  with no complaint, and their ExecStart flags are accepted.
- The Dockerfile builds FROM Debian bookworm images only, and its runtime stage installs the
  Debian package of every shared library the built binaries link (ldd + dpkg -S), so the image
  cannot miss one.

usage: check_packaging.py SOURCE_DIR BUILD_DIR
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

SRC, BUILD = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
BINARIES = {
    "weir-jobmanager": os.path.join(BUILD, "jobmanager", "weir-jobmanager"),
    "weir-taskmanager": os.path.join(BUILD, "taskmanager", "weir-taskmanager"),
    "weir": os.path.join(BUILD, "cli", "weir"),
}
errors = []


def err(msg):
    errors.append(msg)


_flags = {}


def accepted_flags(binary):
    if binary not in _flags:
        out = subprocess.run([BINARIES[binary], "--help"], capture_output=True, text=True).stdout
        _flags[binary] = set(re.findall(r"(--[a-z][a-z0-9-]*)", out))
    return _flags[binary]


def check_command(where, argv):
    name = os.path.basename(argv[0])
    if name not in BINARIES:
        err(f"{where}: runs {argv[0]!r}, not one of {sorted(BINARIES)}")
        return
    for a in argv[1:]:
        if a.startswith("--"):
            flag = a.split("=", 1)[0]
            if flag not in accepted_flags(name):
                err(f"{where}: {name} has no flag {flag}")


def documented_keys():
    # Every `name:` deploy/weir.yaml mentions, in settings and in commented-out examples.
    with open(os.path.join(SRC, "deploy", "weir.yaml")) as f:
        return set(re.findall(r"([a-z_]+):", f.read()))


def leaf_keys(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + str(k), str(k)
            yield from leaf_keys(v, prefix + str(k) + ".")


# ---------------------------------------------------------------- Kubernetes
docs = []
k8s_dir = os.path.join(SRC, "deploy", "k8s")
for name in sorted(os.listdir(k8s_dir)):
    if not name.endswith(".yaml"):
        continue
    with open(os.path.join(k8s_dir, name)) as f:
        try:
            docs += [(name, d) for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            err(f"deploy/k8s/{name}: {e}")
kinds = {}
for name, d in docs:
    for field in ("apiVersion", "kind", "metadata"):
        if field not in d:
            err(f"deploy/k8s/{name}: an object without {field}")
    kinds.setdefault(d.get("kind"), []).append((name, d))
for want in ("ConfigMap", "Deployment", "Service", "StatefulSet", "PersistentVolumeClaim"):
    if want not in kinds:
        err(f"deploy/k8s: no {want}")
configmaps = {d["metadata"]["name"]: d for _, d in kinds.get("ConfigMap", [])}
claims = {d["metadata"]["name"] for _, d in kinds.get("PersistentVolumeClaim", [])}
services = {d["metadata"]["name"] for _, d in kinds.get("Service", [])}
known = documented_keys()
for cm_name, cm in configmaps.items():
    text = cm.get("data", {}).get("weir.yaml")
    if text is None:
        err(f"ConfigMap {cm_name}: no weir.yaml")
        continue
    cfg = yaml.safe_load(text)
    for path, key in leaf_keys(cfg):
        if key not in known:
            err(f"ConfigMap {cm_name}: key {path} is not a key deploy/weir.yaml documents")
for kind in ("Deployment", "StatefulSet"):
    for name, d in kinds.get(kind, []):
        spec = d["spec"]
        labels = spec["template"]["metadata"]["labels"]
        for k, v in spec["selector"]["matchLabels"].items():
            if labels.get(k) != v:
                err(f"{kind} {d['metadata']['name']}: selector {k}={v} does not match the pod labels")
        if kind == "StatefulSet" and spec.get("serviceName") not in services:
            err(f"StatefulSet {d['metadata']['name']}: no Service {spec.get('serviceName')}")
        pod = spec["template"]["spec"]
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        for v in vols.values():
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                err(f"{kind} {d['metadata']['name']}: no ConfigMap {v['configMap']['name']}")
            if "persistentVolumeClaim" in v and v["persistentVolumeClaim"]["claimName"] not in claims:
                err(f"{kind} {d['metadata']['name']}: no claim {v['persistentVolumeClaim']['claimName']}")
        for c in pod["containers"]:
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    err(f"{kind} {d['metadata']['name']}: mounts unknown volume {m['name']}")
            check_command(f"deploy/k8s/{name} {kind} {d['metadata']['name']}", [str(a) for a in c["command"]])

# ---------------------------------------------------------------- systemd
sd_dir = os.path.join(SRC, "deploy", "systemd")
with tempfile.TemporaryDirectory() as tmp:
    for name in sorted(os.listdir(sd_dir)):
        if not name.endswith(".service"):
            continue
        with open(os.path.join(sd_dir, name)) as f:
            text = f.read()
        for b, path in BINARIES.items():
            text = text.replace(f"/opt/weir/bin/{b} ", path + " ")
        unit = name.replace("@.service", "@tm-1.service")
        with open(os.path.join(tmp, unit), "w") as f:
            f.write(text)
        r = subprocess.run(["systemd-analyze", "verify", os.path.join(tmp, unit)],
                           capture_output=True, text=True)
        complaints = [l for l in (r.stdout + r.stderr).splitlines() if unit in l or "weir" in l]
        if r.returncode != 0 or complaints:
            err(f"deploy/systemd/{name}: systemd-analyze verify: {' | '.join(complaints) or r.returncode}")
        m = re.search(r"^ExecStart=(.*)$", text, re.M)
        if not m:
            err(f"deploy/systemd/{name}: no ExecStart")
        else:
            check_command(f"deploy/systemd/{name}", shlex.split(m.group(1)))

# ---------------------------------------------------------------- Dockerfile
with open(os.path.join(SRC, "Dockerfile")) as f:
    dockerfile = f.read().replace("\\\n", " ")
stages = re.split(r"^FROM\s+", dockerfile, flags=re.M)[1:]
for s in stages:
    image = s.split()[0]
    if not re.fullmatch(r"debian:bookworm(-slim)?", image):
        err(f"Dockerfile: FROM {image}: Debian bookworm images only")
runtime = stages[-1] if stages else ""
installed = set()
for m in re.finditer(r"apt-get install ([^&]*)", runtime):
    installed |= {w for w in m.group(1).split() if not w.startswith("-")}
# In debian:bookworm-slim already (dpkg and apt need them).
base = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libbz2-1.0", "liblzma5", "libzstd1"}



needed = set()
libs = {}  # linked library -> a binary that links it
for path in BINARIES.values():
    for line in subprocess.run(["ldd", path], capture_output=True, text=True).stdout.splitlines():
        m = re.search(r"=> (/\S+)", line)
        if m:
            libs.setdefault(m.group(1), os.path.basename(path))
# One dpkg -S for all (it reads every package's file list per call). usrmerge: /lib is
# /usr/lib, and dpkg knows a file by the path its package ships, so ask for both spellings.
candidates = {}
for lib in libs:
    real = os.path.realpath(lib)
    for p in {lib, real, real.replace("/usr/lib/", "/lib/", 1), lib.replace("/lib/", "/usr/lib/", 1)}:
        candidates.setdefault(p, lib)
owner = {}
out = subprocess.run(["dpkg", "-S", *sorted(candidates)], capture_output=True, text=True).stdout
for line in out.splitlines():
    pkg, _, path = line.partition(": ")
    if path in candidates:
        owner[candidates[path]] = pkg.split(":")[0]
for lib, binary in sorted(libs.items()):
    if lib in owner:
        needed.add(owner[lib])
    else:
        err(f"Dockerfile: {lib} (linked by {binary}) is in no Debian package")
for p in sorted(needed - base - installed):
    err(f"Dockerfile: the runtime stage does not install {p}, which the binaries link")
cmd = re.search(r"^CMD\s+(\[.*\])", runtime, re.M)
if cmd:
    check_command("Dockerfile CMD", yaml.safe_load(cmd.group(1)))

for e in errors:
    print(e)
print(f"checked {len(docs)} Kubernetes objects, {len(needed)} linked packages; {len(errors)} problem(s)")
sys.exit(1 if errors else 0)
