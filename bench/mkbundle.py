#!/usr/bin/env python3
"""Edits a bundle's config.json (as written by `atoll spec`) for a benchmark.

usage: mkbundle.py CONFIG [--rootfs PATH] [--readonly | --writable]
                   [--tmpfs DEST]... [--bind SRC:DEST[:ro]]... [--env K=V]...
                   [--docker-caps] [--no-seccomp] [--netns PATH] -- ARGS...

--rootfs sets root.path (absolute: a shared image used in place, as the
tests' BundleBuilder::shared_rootfs does). --docker-caps grants Docker's
default capability set (nginx's master needs SETUID, SETGID, CHOWN...).
--netns joins the network namespace at PATH (a CNI-style namespace made by
the harness) instead of creating a new one.
"""

import argparse
import json

DOCKER_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
]


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--rootfs")
    ro = p.add_mutually_exclusive_group()
    ro.add_argument("--readonly", dest="readonly", action="store_true", default=None)
    ro.add_argument("--writable", dest="readonly", action="store_false")
    p.add_argument("--tmpfs", action="append", default=[])
    p.add_argument("--bind", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--docker-caps", action="store_true")
    p.add_argument("--netns")
    p.add_argument("args", nargs="+")
    a = p.parse_args()

    c = json.load(open(a.config))
    proc = c["process"]
    proc["terminal"] = False
    proc["args"] = a.args
    if a.env:
        keys = {e.split("=", 1)[0] for e in a.env}
        proc["env"] = [e for e in proc.get("env", []) if e.split("=", 1)[0] not in keys] + a.env
    if a.docker_caps:
        for k in ("bounding", "effective", "permitted"):
            proc.setdefault("capabilities", {})[k] = list(DOCKER_CAPS)
    if a.rootfs:
        c["root"]["path"] = a.rootfs
    if a.readonly is not None:
        c["root"]["readonly"] = a.readonly
    mounts = c.setdefault("mounts", [])
    for dest in a.tmpfs:
        mounts.append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "mode=1777"]})
    for b in a.bind:
        src, dest, *rest = b.split(":")
        opts = ["rbind"] + (["ro"] if rest == ["ro"] else [])
        mounts.append({"destination": dest, "type": "bind", "source": src, "options": opts})
    if a.netns:
        for ns in c["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = a.netns
    c["hostname"] = "atoll-bench"
    json.dump(c, open(a.config, "w"), indent=2)


if __name__ == "__main__":
    main()
