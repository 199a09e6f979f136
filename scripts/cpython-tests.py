#!/usr/bin/env python3
"""CPython's own regression tests for its OS-facing modules at atoll's
native and userspace levels: one container per module and level on the
Debian runtimes rootfs (Debian's libpython3.11-testsuite), and the
per-module table written between the `<!-- cpython:begin -->` and
`<!-- cpython:end -->` markers of docs/compatibility.md (`make
cpython-table`).

usage: scripts/cpython-tests.py [MODULE...]

Naming modules runs only those and prints their rows without touching
the doc: the doc's table is always one whole run, of one date.

Environment (all optional):
  ATOLL            atoll binary (default: $CARGO_TARGET_DIR or target, release/atoll)
  DEBIAN_RUNTIMES  the runtimes rootfs (default: built or found through
                   `cargo run -p atoll-testkit --example debian-rootfs runtimes`)
  CPYTHON_LEVELS   levels (default "native userspace")
  CPYTHON_JOBS     containers at once (default 2)
  CPYTHON_TIMEOUT  seconds per module and level (default 900)
  CPYTHON_OUT      logs and results (default $CARGO_TARGET_DIR/cpython-tests)
  CPYTHON_DOC      the file to write (default docs/compatibility.md)

A module's cell: `pass` when regrtest says SUCCESS, else its result
(FAILURE, ENV CHANGED, timeout, ...), with unittest's counts from the
verbose run (tests run, failures + errors, skipped).
"""

import concurrent.futures
import datetime
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The OS-facing modules of issue 13: processes, signals, threads, files,
# descriptors, memory mappings, sockets, terminals, time.
MODULES = """
test_os test_posix test_mmap test_signal test_select test_selectors test_poll
test_epoll test_socket test_socketserver test_subprocess test_threading
test_thread test_threading_local test_queue test_fcntl test_pty test_resource
test_io test_fileio test_file test_time test_shutil test_tempfile test_pathlib
test_glob test_stat test_posixpath test_pwd test_grp test_concurrent_futures
test_eintr test_faulthandler test_wait3 test_wait4 test_fork1 test_mailbox
""".split()


def die(msg):
    print(f"cpython-tests: {msg}", file=sys.stderr)
    sys.exit(2)


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")


def runtimes_rootfs():
    want = os.environ.get("DEBIAN_RUNTIMES")
    if want:
        if not os.path.exists(os.path.join(want, ".complete")):
            die(f"DEBIAN_RUNTIMES={want} is not a complete rootfs (no .complete)")
        return os.path.realpath(want)
    cached = os.path.join(target_dir(), "testkit", "debian-runtimes")
    if os.path.exists(os.path.join(cached, ".complete")):
        return cached
    print("building the Debian runtimes rootfs (debootstrap, several minutes)...", file=sys.stderr)
    out = subprocess.run(
        ["cargo", "run", "--release", "-q", "-p", "atoll-testkit", "--example",
         "debian-rootfs", "runtimes"],
        cwd=REPO, check=True, stdout=subprocess.PIPE, text=True).stdout
    return out.strip().splitlines()[-1]


def make_bundle(atoll, bundle, rootfs, module):
    os.makedirs(bundle, exist_ok=True)
    cfg = os.path.join(bundle, "config.json")
    if os.path.exists(cfg):
        os.unlink(cfg)
    subprocess.run([atoll, "spec", "--bundle", bundle], check=True)
    c = json.load(open(cfg))
    p = c["process"]
    p["terminal"] = False
    # -v: unittest's own counts; --timeout: regrtest's faulthandler watchdog
    # dumps the stacks and ends a hung module before the outer timeout.
    timeout = int(os.environ.get("CPYTHON_TIMEOUT", "900"))
    p["args"] = ["/usr/bin/python3", "-m", "test", "-v", "--timeout", str(max(60, timeout - 60)),
                 module]
    p["cwd"] = "/tmp"
    p["env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/tmp", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1"]
    c["root"] = {"path": rootfs, "readonly": True}
    c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "nodev", "mode=1777"]})
    c["hostname"] = "atoll-cpython"
    # The hosts file a container gets from its engine (Docker, CRI): the
    # rootfs has none, and without it "localhost" goes to DNS, which fails
    # (at once natively, after a resolver timeout in the sandbox's stack)
    # and takes most of test_socket with it.
    hosts = os.path.join(bundle, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1\tlocalhost atoll-cpython\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    c["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": hosts,
                        "options": ["rbind", "ro"]})
    json.dump(c, open(cfg, "w"), indent=1)


def parse(log):
    """(status, run, failed, skipped) from a module's verbose log."""
    text = open(log, errors="replace").read()
    # "Tests result: X" (3.11) or "== Tests result: X ==" (later versions).
    m = re.findall(r"^(?:== )?Tests result: (.+?)(?: ==)?$", text, re.M)
    status = m[-1] if m else None
    # A module that skips itself whole (a missing feature) runs no test.
    if status == "SUCCESS" and re.search(r"^1 test skipped:$", text, re.M):
        status = "skipped"
    run = sum(int(n) for n in re.findall(r"^Ran (\d+) tests? in ", text, re.M))
    failed = skipped = 0
    for line in re.findall(r"^(?:OK|FAILED) \((.*)\)$", text, re.M):
        for k, v in re.findall(r"(\w+)=(\d+)", line):
            if k in ("failures", "errors"):
                failed += int(v)
            elif k == "skipped":
                skipped += int(v)
    # unittest counts a test twice when its client thread fails too (an
    # error in the test and one in tearDown): count failing tests once,
    # by the names of their reports, so the cells do not move with timing.
    named = set(re.findall(r"^(?:ERROR|FAIL): (\S+ \(.*\))$", text, re.M))
    if named:
        failed = min(failed, len(named))
    return status, run, failed, skipped


def run_one(atoll, out, rootfs, level, module):
    d = os.path.join(out, level)
    bundle = os.path.join(d, "bundles", module)
    make_bundle(atoll, bundle, rootfs, module)
    log = os.path.join(d, "logs", module + ".log")
    state = os.path.join(out, "state")
    cid = f"cpython-{level}-{module}-{os.getpid()}"
    timeout = int(os.environ.get("CPYTHON_TIMEOUT", "900"))
    start = time.monotonic()
    with open(log, "w") as f:
        rc = subprocess.run(
            ["timeout", "-k", "10", str(timeout), atoll, "--root", state, "--isolation", level,
             "run", "--bundle", bundle, cid],
            stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT).returncode
    secs = int(time.monotonic() - start)
    subprocess.run([atoll, "--root", state, "delete", "--force", cid],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status, run, failed, skipped = parse(log)
    if rc in (124, 137):
        status = "timeout"
    elif status is None:
        status = f"crash (exit {rc})"
    row = (module, status, run, failed, skipped, secs)
    print(f"{level}\t" + "\t".join(str(x) for x in row), flush=True)
    return level, row


def cell(row):
    _, status, run, failed, skipped, _ = row
    word = "pass" if status == "SUCCESS" else status
    # A test can fail and error both (a failing tearDown): never below 0.
    counts = f"{max(0, run - failed - skipped)}/{run}"
    if skipped:
        counts += f", {skipped} skipped"
    return f"{word} ({counts})" if run else word


def table(rows, levels, modules, rootfs):
    py = subprocess.run(["chroot", rootfs, "python3", "-c",
                         "import platform; print(platform.python_version())"],
                        capture_output=True, text=True).stdout.strip() or "3.11"
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    lines = [
        f"Measured {date} by `make cpython-table` (`scripts/cpython-tests.py`): CPython {py}'s "
        f"regression tests (Debian's libpython3.11-testsuite), `python3 -m test -v MODULE`, one "
        f"container per module and level on the Debian runtimes rootfs (read-only, tmpfs /tmp), "
        f"host kernel {os.uname().release}, atoll commit `{commit}`. A cell is regrtest's "
        "result (`pass` for SUCCESS) with unittest's counts: tests passed of those run, and "
        "skipped ones (tests a module skips on any Linux, e.g. for want of a resource "
        "`-u` did not enable, count in both columns). Seconds are wall time per module, "
        "container start included.",
        "",
        "| module | " + " | ".join(levels) + " | seconds (" + " / ".join(levels) + ") |",
        "|---|" + "---|" * len(levels) + "---:|",
    ]
    passed = {lv: 0 for lv in levels}
    for m in modules:
        cells = []
        for lv in levels:
            r = rows[(lv, m)]
            passed[lv] += r[1] == "SUCCESS"
            cells.append(cell(r))
        secs = " / ".join(str(rows[(lv, m)][5]) for lv in levels)
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {secs} |")
    lines.append(f"| **modules passing** | " + " | ".join(
        f"{passed[lv]} of {len(modules)}" for lv in levels) + " | " +
        " / ".join(str(sum(rows[(lv, m)][5] for m in modules)) for lv in levels) + " |")
    return "\n".join(lines) + "\n"


def main():
    modules = sys.argv[1:] or MODULES
    for m in modules:
        if not re.fullmatch(r"test_\w+", m):
            die(f"not a test module name: {m!r}")
    if os.geteuid() != 0:
        die("containers need root")
    atoll = os.environ.get("ATOLL") or os.path.join(target_dir(), "release", "atoll")
    if not os.access(atoll, os.X_OK):
        die(f"no atoll binary at {atoll} (build it, or set ATOLL)")
    atoll = os.path.realpath(atoll)
    levels = os.environ.get("CPYTHON_LEVELS", "native userspace").split()
    for lv in levels:
        if lv not in ("native", "userspace"):
            die(f"unknown level {lv} (native, userspace)")
    doc = os.environ.get("CPYTHON_DOC", os.path.join(REPO, "docs", "compatibility.md"))
    if "<!-- cpython:begin -->\n" not in open(doc).read():
        die(f"{doc} has no <!-- cpython:begin --> marker")
    rootfs = runtimes_rootfs()
    if not os.path.isdir(os.path.join(rootfs, "usr/lib/python3.11/test")):
        die(f"{rootfs} has no CPython test suite (usr/lib/python3.11/test)")
    out = os.path.realpath(os.environ.get("CPYTHON_OUT", os.path.join(target_dir(), "cpython-tests")))
    for lv in levels:
        os.makedirs(os.path.join(out, lv, "logs"), exist_ok=True)
    os.makedirs(os.path.join(out, "state"), exist_ok=True)
    jobs = int(os.environ.get("CPYTHON_JOBS", "2"))
    rows = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futs = [pool.submit(run_one, atoll, out, rootfs, lv, m) for m in modules for lv in levels]
        for f in futs:
            lv, row = f.result()
            rows[(lv, row[0])] = row
    with open(os.path.join(out, "results.tsv"), "w") as f:
        for (lv, m), row in sorted(rows.items()):
            f.write(lv + "\t" + "\t".join(str(x) for x in row) + "\n")
    text = table(rows, levels, modules, rootfs)
    if sys.argv[1:]:
        print(text)
        print("cpython-tests: named modules only; the doc's table is written by a run of all "
              "of them", file=sys.stderr)
        return
    subprocess.run([os.path.join(REPO, "scripts", "splice-docs.sh"), "cpython", doc],
                   input=text, text=True, check=True)
    print(f"wrote the CPython table into {doc}")


if __name__ == "__main__":
    main()
