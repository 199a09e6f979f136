#!/usr/bin/env python3
"""Writes benchmark results into docs/benchmarks.md.

Each benchmark owns the text between `<!-- bench:NAME:start -->` and
`<!-- bench:NAME:end -->`; a re-run replaces only that text, so the sections
of other benchmarks survive. A missing file is created with a short intro.

usage:
  report.py meta DOC KEY=VALUE...
      replace the `meta` section (machine and date of the last run)
  report.py hyperfine DOC NAME JSON --title T --baseline CMDNAME
                      [--cmd NAME=COMMAND]... [--note TEXT]...
      render hyperfine's --export-json output as section NAME
  report.py merge-hyperfine OUT JSON...
      merge several hyperfine --export-json files of the same commands (runs
      in rounds) into one, as if one hyperfine run had made every sample
  report.py compare DOC NAME --title T --level LEVEL=FILE...
                    --metric KEY|LABEL|UNIT|lower-or-higher... [--drop-first N]
                    [--note TEXT]... [--json OUT]
      render samples (`KEY VALUE` lines, as bench/progs/workload prints them)
      of each isolation level side by side; the first --level is the
      baseline of the ratios. A file whose first line is `FAILED ...` (or a
      missing file) is reported as a failed run of that level.
  report.py syscall DOC NAME --title T --native FILE --userspace FILE
                    --floor FILE [--note TEXT]... [--json OUT]
      the per-syscall section: getppid at both levels against the ptrace
      floor measured by bench/progs/ptrace-floor
"""

import argparse
import json
import os
import re
import statistics
import sys

INTRO = """# Benchmarks

atoll's two isolation levels measured side by side in one run, on the same
bundles: the userspace level (every syscall served by atoll's application
kernel through ptrace) against the native level (runc-class), and the
container lifecycle against runc (Debian's package) and youki (built from
crates.io) as well.

- **lifecycle**: whole `run` commands timed by
  [hyperfine](https://github.com/sharkdp/hyperfine) with warm-up runs.
- **syscall, python, files, pipe**: static C programs from `bench/progs/`
  run inside the container at each level and time their own loops; the
  syscall section also measures the ptrace floor on the host.
- **nginx**: requests per second from [wrk](https://github.com/wg/wrk) on
  the host, inside the container's network namespace.

Each section below says what it measures; everything between the
`bench:` markers is written by `bench/report.py`, not by hand.

Reproduce with `make bench` from the repository root (it installs what is
missing and builds the release binary first; `./bench/run.sh --quick`
lowers the run counts for a smoke run, `./bench/run.sh NAME...` runs only
some sections). The raw results of the last run (hyperfine JSON, samples,
logs of failed runs) are kept in `target/bench/`.

Numbers are only comparable within one run on one machine: the reference
machine is a 2 vCPU nested-virtualized VM shared with other work, so
absolute times are inflated and noisy compared with bare metal (a host
syscall, a context switch and a ptrace stop all cost several times what
they cost on bare metal), while the ratios within a run are the figures to
look at.

<!-- bench:meta:start -->
<!-- bench:meta:end -->
"""


def markers(name):
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def replace_section(doc, name, body):
    start, end = markers(name)
    text = open(doc).read() if os.path.exists(doc) else INTRO
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(doc)), exist_ok=True)
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc)


def ms(seconds):
    return f"{seconds * 1000:.2f}"


def cmd_meta(args):
    pairs = [kv.split("=", 1) for kv in args.pairs]
    lines = ["Last run:", ""]
    lines += [f"- {k}: {v}" for k, v in pairs]
    replace_section(args.doc, "meta", "\n".join(lines))


def cmd_hyperfine(args):
    data = json.load(open(args.json))
    results = data["results"]
    commands = dict(c.split("=", 1) for c in args.cmd)
    base = next((r for r in results if r["command"] == args.baseline), None)
    if base is None:
        sys.exit(f"report.py: baseline {args.baseline!r} not in {args.json}")

    lines = [f"## {args.title}", ""]
    for note in args.note:
        lines += [note, ""]
    lines += [
        f"| runtime | median (ms) | mean ± stddev (ms) | min (ms) | max (ms) "
        f"| user (ms) | system (ms) | runs | median / {args.baseline} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = r["median"] / base["median"]
        lines.append(
            f"| {r['command']} | {ms(r['median'])} "
            f"| {ms(r['mean'])} ± {ms(r['stddev'] or 0.0)} "
            f"| {ms(r['min'])} | {ms(r['max'])} "
            f"| {ms(r['user'])} | {ms(r['system'])} "
            f"| {len(r['times'])} | {ratio:.2f}× |"
        )
    others = [r for r in results if r is not base]
    if others:
        lines.append("")
        for r in others:
            lines.append(
                f"Ratio of medians {r['command']}/{args.baseline}: "
                f"**{r['median'] / base['median']:.2f}**."
            )
    if commands:
        lines += ["", "Commands (`with-id` appends a fresh container id):", "", "```sh"]
        lines += [commands[r["command"]] for r in results if r["command"] in commands]
        lines.append("```")
    replace_section(args.doc, args.name, "\n".join(lines))

    for r in results:
        print(f"{r['command']:>8}: median {ms(r['median'])} ms, "
              f"mean {ms(r['mean'])} ± {ms(r['stddev'] or 0.0)} ms")
    for r in others:
        print(f"ratio {r['command']}/{args.baseline} (medians): "
              f"{r['median'] / base['median']:.2f}")


def cmd_merge_hyperfine(args):
    merged = {}
    order = []
    for path in args.inputs:
        for r in json.load(open(path))["results"]:
            m = merged.get(r["command"])
            if m is None:
                order.append(r["command"])
                merged[r["command"]] = m = {"command": r["command"], "times": [],
                                            "exit_codes": [], "user_s": 0.0, "system_s": 0.0}
            n = len(r["times"])
            m["times"] += r["times"]
            m["exit_codes"] += r.get("exit_codes") or []
            # hyperfine gives user and system time as means per run.
            m["user_s"] += r["user"] * n
            m["system_s"] += r["system"] * n
    results = []
    for name in order:
        m = merged[name]
        t = m["times"]
        results.append({
            "command": name,
            "mean": statistics.mean(t),
            "stddev": statistics.stdev(t) if len(t) > 1 else 0.0,
            "median": statistics.median(t),
            "user": m["user_s"] / len(t),
            "system": m["system_s"] / len(t),
            "min": min(t),
            "max": max(t),
            "times": t,
            "exit_codes": m["exit_codes"],
        })
    with open(args.out, "w") as f:
        json.dump({"results": results}, f, indent=2)


def read_samples(path):
    """{key: [values]} from `KEY VALUE` lines, or a failure message."""
    if not os.path.exists(path):
        return None, f"no result ({os.path.basename(path)} missing)"
    samples = {}
    with open(path) as f:
        for n, line in enumerate(f):
            line = line.strip()
            if n == 0 and line.startswith("FAILED"):
                return None, line[len("FAILED"):].strip() or "failed"
            parts = line.split()
            if len(parts) != 2:
                continue
            try:
                samples.setdefault(parts[0], []).append(float(parts[1]))
            except ValueError:
                continue
    return samples, None


def fmt(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def summary(values):
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def cell(s):
    if s is None:
        return "n/a"
    if s["n"] == 1:
        return fmt(s["median"])
    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def parse_metric(text):
    """KEY|LABEL|UNIT|lower-or-higher[|SCALE]: SCALE multiplies the samples
    (e.g. 0.001 to show ns samples in µs)."""
    key, label, unit, better, *scale = text.split("|")
    if better not in ("lower", "higher"):
        sys.exit(f"report.py: metric {key}: direction must be lower or higher")
    return key, label, unit, better, float(scale[0]) if scale else 1.0


def cmd_compare(args):
    levels = [lv.split("=", 1) for lv in args.level]
    metrics = [parse_metric(m) for m in args.metric]
    data, failures = {}, {}
    for name, path in levels:
        samples, err = read_samples(path)
        if err:
            failures[name] = err
            continue
        data[name] = {}
        for key, _, _, _, scale in metrics:
            vals = [v * scale for v in samples.get(key, [])[args.drop_first:]]
            data[name][key] = summary(vals) if vals else None
    base = levels[0][0]
    others = [n for n, _ in levels[1:]]

    lines = [f"## {args.title}", ""]
    for note in args.note:
        lines += [note, ""]
    head = "| measure | " + " | ".join(n for n, _ in levels)
    head += "".join(f" | {o} / {base} | {o} slowdown" for o in others) + " |"
    lines += [head, "|---" + "|---:" * (len(levels) + 2 * len(others)) + "|"]
    results = {"levels": {}, "ratios": {}, "failures": failures}
    for key, label, unit, better, _ in metrics:
        row = f"| {label} ({unit}, {better} is better) |"
        for name, _ in levels:
            s = data.get(name, {}).get(key)
            row += f" {cell(s) if name not in failures else 'failed'} |"
            results["levels"].setdefault(name, {})[key] = s
        for o in others:
            b = data.get(base, {}).get(key)
            x = data.get(o, {}).get(key)
            if b and x and b["median"] > 0 and x["median"] > 0:
                ratio = x["median"] / b["median"]
                slow = ratio if better == "lower" else 1 / ratio
                row += f" {ratio:.2f} | **{slow:.1f}×** |"
                results["ratios"].setdefault(o, {})[key] = {"ratio": ratio, "slowdown": slow}
                print(f"{key:>16}: {base} {fmt(b['median'])} {o} {fmt(x['median'])} {unit}"
                      f"  {o}/{base} {ratio:.2f} (slowdown {slow:.1f}x)")
            else:
                row += " n/a | n/a |"
        lines.append(row)
    lines += ["", "Cells: median (min–max) of the samples; *slowdown* is how many times "
              f"slower than {base} (ratio of times, or inverse ratio of throughputs; "
              "below 1 means faster)."]
    for name, err in failures.items():
        lines += ["", f"**{name}: failed** — {err}"]
        print(f"{name}: FAILED: {err}")
    replace_section(args.doc, args.name, "\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def cmd_syscall(args):
    us, err_us = read_samples(args.userspace)
    nat, err_nat = read_samples(args.native)
    floor, err_floor = read_samples(args.floor)

    def med(samples, key):
        vals = (samples or {}).get(key)
        return summary([v / 1000 for v in vals]) if vals else None  # ns -> µs

    g_nat, g_us = med(nat, "getppid_ns"), med(us, "getppid_ns")
    f_bare, f_regs = med(floor, "floor_ns"), med(floor, "floor_regs_ns")
    lines = [f"## {args.title}", ""]
    for note in args.note:
        lines += [note, ""]
    lines += ["| measure | µs per call | ratio |", "|---|---:|---:|"]

    def row(label, s, ratio=""):
        lines.append(f"| {label} | {cell(s)} | {ratio} |")

    row("getppid, native", g_nat, "1.00× native")
    row("getppid, userspace", g_us,
        f"**{g_us['median'] / g_nat['median']:.1f}× native**" if g_us and g_nat else "n/a")
    row("platform floor: one PTRACE_SYSEMU stop, nothing served", f_bare,
        f"{f_bare['median'] / g_nat['median']:.1f}× native" if f_bare and g_nat else "")
    row("floor + PTRACE_GETREGS/SETREGS", f_regs,
        f"{f_regs['median'] / g_nat['median']:.1f}× native" if f_regs and g_nat else "")
    result = {"getppid_native_us": g_nat, "getppid_userspace_us": g_us,
              "floor_us": f_bare, "floor_regs_us": f_regs}
    if g_us and f_bare:
        # Paired by round when both have one sample per round (the harness
        # runs the floor right after each round's userspace container), else
        # the difference of the medians.
        u_vals, f_vals = us["getppid_ns"], floor["floor_ns"]
        if len(u_vals) == len(f_vals):
            over = statistics.median((u - f) / 1000 for u, f in zip(u_vals, f_vals))
            how = "median of the per-round differences"
        else:
            over = g_us["median"] - f_bare["median"]
            how = "difference of the medians"
        share = over / g_us["median"]
        lines.append(f"| atoll's kernel above the floor (userspace − floor, {how}) | "
                     f"**{fmt(over)}** | {share:.0%} of a userspace getppid |")
        text = (f"A userspace getppid costs **{g_us['median'] / f_bare['median']:.2f}×** "
                f"the bare ptrace round trip (medians)")
        if g_nat:
            text += (f"; the platform floor alone is "
                     f"{f_bare['median'] / g_nat['median']:.0f}× a native getppid")
        lines += ["", text + "."]
        result.update(overhead_us=over, overhead_share=share)
        print(f"getppid native {cell(g_nat)} µs, userspace {cell(g_us)} µs, "
              f"floor {cell(f_bare)} µs (+regs {cell(f_regs)} µs), "
              f"kernel overhead {fmt(over)} µs ({share:.0%})")
    for name, err in (("native", err_nat), ("userspace", err_us), ("floor", err_floor)):
        if err:
            lines += ["", f"**{name}: failed** — {err}"]
            print(f"{name}: FAILED: {err}")
    replace_section(args.doc, args.name, "\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("meta")
    m.add_argument("doc")
    m.add_argument("pairs", nargs="*")
    m.set_defaults(func=cmd_meta)
    h = sub.add_parser("hyperfine")
    h.add_argument("doc")
    h.add_argument("name")
    h.add_argument("json")
    h.add_argument("--title", required=True)
    h.add_argument("--baseline", required=True)
    h.add_argument("--cmd", action="append", default=[])
    h.add_argument("--note", action="append", default=[])
    h.set_defaults(func=cmd_hyperfine)
    mh = sub.add_parser("merge-hyperfine")
    mh.add_argument("out")
    mh.add_argument("inputs", nargs="+")
    mh.set_defaults(func=cmd_merge_hyperfine)
    c = sub.add_parser("compare")
    c.add_argument("doc")
    c.add_argument("name")
    c.add_argument("--title", required=True)
    c.add_argument("--level", action="append", required=True)
    c.add_argument("--metric", action="append", required=True)
    c.add_argument("--drop-first", type=int, default=0)
    c.add_argument("--note", action="append", default=[])
    c.add_argument("--json")
    c.set_defaults(func=cmd_compare)
    sc = sub.add_parser("syscall")
    sc.add_argument("doc")
    sc.add_argument("name")
    sc.add_argument("--title", required=True)
    sc.add_argument("--native", required=True)
    sc.add_argument("--userspace", required=True)
    sc.add_argument("--floor", required=True)
    sc.add_argument("--note", action="append", default=[])
    sc.add_argument("--json")
    sc.set_defaults(func=cmd_syscall)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
