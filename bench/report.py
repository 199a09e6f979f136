#!/usr/bin/env python3
"""Writes benchmark results into docs/benchmarks.md, each section's figures
also as an SVG chart (bench/charts.py, matplotlib) embedded in the section.

Each benchmark owns the text between `<!-- bench:NAME:start -->` and
`<!-- bench:NAME:end -->`; a re-run replaces only that text, so the sections
of other benchmarks survive. A missing file is created with a short intro.

usage:
  report.py meta DOC KEY=VALUE...
      replace the `meta` section (machine and date of the last run)
  report.py hyperfine DOC NAME JSON --title T --baseline CMDNAME...
                      [--cmd NAME=COMMAND]... [--note TEXT]... [--chart SVG]
      render hyperfine's --export-json output as section NAME, with a ratio
      column per --baseline (the first one orders nothing, it is just first)
  report.py merge-hyperfine OUT JSON...
      merge several hyperfine --export-json files of the same commands (runs
      in rounds) into one, as if one hyperfine run had made every sample
  report.py compare DOC NAME --title T --level LABEL=FILE[,FILE...]...
                    --metric KEY|LABEL|UNIT|lower-or-higher[|SCALE]...
                    [--ratio-to LABEL]... [--subject LABEL]...
                    [--note TEXT]... [--json OUT] [--chart SVG]
                    [--chart-kind bars|threads]
      render samples (`KEY VALUE` lines, as bench/progs/workload prints them)
      of each runtime side by side: a table of values, then a table of
      slowdowns. The first --ratio-to (default: the first --level) is
      compared with every other level; each further --ratio-to (a peer,
      e.g. runsc systrap) with the --subject levels only (atoll's). A file
      whose first line is `FAILED ...` (or a missing file) is reported as a
      failed run of that level; the metrics of its other files still show.
  report.py vm DOC NAME RESULTS [--note TEXT]...
      render bench/vm.sh's `KEY VALUE` figures (the vm level inside the test
      VM, against QEMU -M microvm booting the same kernel) as section NAME
  report.py syscall ... (compare's arguments) --floor FILE --floor-level LABEL
                    --floor-key KEY
      compare, plus the ptrace floor measured by bench/progs/ptrace-floor and
      what the --floor-level's KEY costs above it
"""

import argparse
import json
import os
import re
import statistics
import sys

INTRO = """# Benchmarks

atoll measured side by side with gVisor's runsc (and, for the lifecycle,
runc and youki) in one run, on the same bundles: see bench/run.sh. Each
section below is written by bench/report.py.

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


def chart_lines(doc, svg, title):
    """The Markdown that embeds SVG (a path) in DOC, relative to it."""
    rel = os.path.relpath(os.path.abspath(svg), os.path.dirname(os.path.abspath(doc)))
    return [f"![Chart: {title}]({rel})", ""]


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
    by_name = {r["command"]: r for r in results}
    bases = [b for b in args.baseline if b in by_name]
    if not bases:
        sys.exit(f"report.py: no baseline of {args.baseline!r} in {args.json}")

    lines = [f"## {args.title}", ""]
    for note in args.note:
        lines += [note, ""]
    if args.chart:
        import charts
        charts.hyperfine(args.chart, args.title, results)
        lines += chart_lines(args.doc, args.chart, args.title)
    lines += [
        "| runtime | median (ms) | mean ± stddev (ms) | min (ms) | max (ms) "
        "| user (ms) | system (ms) | runs | "
        + " | ".join(f"median / {b}" for b in bases) + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(bases),
    ]
    for r in results:
        ratios = " | ".join(f"{r['median'] / by_name[b]['median']:.2f}×" for b in bases)
        lines.append(
            f"| {r['command']} | {ms(r['median'])} "
            f"| {ms(r['mean'])} ± {ms(r['stddev'] or 0.0)} "
            f"| {ms(r['min'])} | {ms(r['max'])} "
            f"| {ms(r['user'])} | {ms(r['system'])} "
            f"| {len(r['times'])} | {ratios} |"
        )
    if commands:
        lines += ["", "Commands (`with-id` appends a fresh container id):", "", "```sh"]
        lines += [commands[r["command"]] for r in results if r["command"] in commands]
        lines.append("```")
    replace_section(args.doc, args.name, "\n".join(lines))

    for r in results:
        print(f"{r['command']:>24}: median {ms(r['median'])} ms, "
              f"mean {ms(r['mean'])} ± {ms(r['stddev'] or 0.0)} ms, "
              + ", ".join(f"/{b} {r['median'] / by_name[b]['median']:.2f}" for b in bases))


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


def read_level(paths):
    """Samples of one level from one or more files: (samples, [errors])."""
    samples, errors = {}, []
    for path in paths.split(","):
        s, err = read_samples(path)
        if err:
            errors.append(err)
            continue
        for k, v in s.items():
            samples.setdefault(k, []).extend(v)
    return samples, errors


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
        "samples": values,
    }


def cell(s):
    if s is None:
        return "n/a"
    if s["n"] == 1:
        return fmt(s["median"])
    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def parse_metric(text):
    """KEY|LABEL|UNIT|lower-or-higher[|SCALE]: SCALE multiplies the samples
    (e.g. 0.001 to show ns samples in µs). A `\\|` in LABEL is a `|` (kept
    escaped in the Markdown tables, where a bare one would end the cell)."""
    key, label, unit, better, *scale = re.split(r"(?<!\\)\|", text)
    if better not in ("lower", "higher"):
        sys.exit(f"report.py: metric {key}: direction must be lower or higher")
    return {"key": key, "label": label, "unit": unit, "better": better,
            "scale": float(scale[0]) if scale else 1.0}


def slowdown(metric, base, x):
    """How many times slower x is than base (below 1: faster)."""
    ratio = x["median"] / base["median"]
    return ratio if metric["better"] == "lower" else 1 / ratio


def build_compare(args):
    """Reads the levels' samples; returns (lines, results, data, metrics)."""
    levels = [lv.split("=", 1) for lv in args.level]
    names = [n for n, _ in levels]
    metrics = [parse_metric(m) for m in args.metric]
    data, failures = {}, {}
    for name, paths in levels:
        samples, errors = read_level(paths)
        if errors:
            failures[name] = errors
        data[name] = {}
        for m in metrics:
            vals = [v * m["scale"] for v in samples.get(m["key"], [])]
            data[name][m["key"]] = summary(vals) if vals else None
    bases = [b for b in (args.ratio_to or [names[0]]) if b in names]
    subjects = [s for s in args.subject if s in names]
    # (level, base) pairs of the slowdown table: the first base against
    # every other level, further bases (peers) against the subjects only.
    pairs = [(n, bases[0]) for n in names if n != bases[0]]
    for b in bases[1:]:
        pairs += [(s, b) for s in subjects if s != b]

    lines = [f"## {args.title}", ""]
    for note in args.note:
        lines += [note, ""]
    if args.chart:
        import charts
        charts.compare(args.chart, args.title, names, metrics, data, kind=args.chart_kind)
        lines += chart_lines(args.doc, args.chart, args.title)

    lines += ["| measure | " + " | ".join(names) + " |",
              "|---" + "|---:" * len(names) + "|"]
    results = {"levels": {}, "slowdowns": {}, "failures": failures}
    for m in metrics:
        row = f"| {m['label']} ({m['unit']}, {m['better']} is better) |"
        for name in names:
            s = data[name][m["key"]]
            row += f" {cell(s) if s or name not in failures else 'failed'} |"
            results["levels"].setdefault(name, {})[m["key"]] = s
        lines.append(row)
    lines += ["", "Cells: median (min–max) of the samples."]

    if pairs:
        lines += ["", "Slowdowns, ratio of medians: how many times slower the first "
                  "runtime is than the second (ratio of times, or inverse ratio of "
                  "throughputs; below 1 means faster)"
                  + (f"; **bold**: {', '.join(subjects)}" if subjects else "") + ".", ""]
        lines += ["| measure | " + " | ".join(f"{x} vs {b}" for x, b in pairs) + " |",
                  "|---" + "|---:" * len(pairs) + "|"]
        for m in metrics:
            row = f"| {m['label']} |"
            for x, b in pairs:
                sb, sx = data[b][m["key"]], data[x][m["key"]]
                if sb and sx and sb["median"] > 0 and sx["median"] > 0:
                    slow = slowdown(m, sb, sx)
                    text = f"{slow:.2f}×" if slow < 10 else f"{slow:.1f}×"
                    row += f" **{text}** |" if x in subjects else f" {text} |"
                    results["slowdowns"].setdefault(f"{x} vs {b}", {})[m["key"]] = slow
                    print(f"{m['key']:>18}: {x} {fmt(sx['median'])} vs {b} "
                          f"{fmt(sb['median'])} {m['unit']}: slowdown {slow:.2f}x")
                else:
                    row += " n/a |"
            lines.append(row)
    for name, errs in failures.items():
        for err in errs:
            lines += ["", f"**{name}: failed** — {err}"]
            print(f"{name}: FAILED: {err}")
    return lines, results, data, metrics


def write_json(path, results):
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=2)


def cmd_compare(args):
    lines, results, _, _ = build_compare(args)
    replace_section(args.doc, args.name, "\n".join(lines))
    write_json(args.json, results)


def cmd_syscall(args):
    lines, results, data, metrics = build_compare(args)
    floor, err = read_samples(args.floor)

    def us(key):
        vals = (floor or {}).get(key)
        return summary([v / 1000 for v in vals]) if vals else None  # ns -> µs

    f_bare, f_regs = us("floor_ns"), us("floor_regs_ns")
    level = args.floor_level
    metric = next(m for m in metrics if m["key"] == args.floor_key)
    subject = data.get(level, {}).get(args.floor_key)
    lines += ["", f"The ptrace floor, on the host in the same run (explains the "
              f"{level} column):", "",
              "| measure | µs per call |", "|---|---:|"]
    lines.append(f"| one PTRACE_SYSEMU stop, nothing served | {cell(f_bare)} |")
    lines.append(f"| the same + PTRACE_GETREGS/SETREGS | {cell(f_regs)} |")
    results["floor_us"], results["floor_regs_us"] = f_bare, f_regs
    if subject and f_bare:
        # Paired by round when both have one sample per round (the harness
        # runs the floor right after each round's containers), else the
        # difference of the medians.
        s_vals, f_vals = subject["samples"], f_bare["samples"]
        if len(s_vals) == len(f_vals):
            over = statistics.median(s - f for s, f in zip(s_vals, f_vals))
            how = "median of the per-round differences"
        else:
            over = subject["median"] - f_bare["median"]
            how = "difference of the medians"
        share = over / subject["median"]
        lines.append(f"| {level} {metric['label']} above the floor ({how}) | "
                     f"{fmt(over)} ({share:.0%} of it) |")
        results["above_floor_us"] = over
        print(f"floor {cell(f_bare)} µs (+regs {cell(f_regs)} µs); {level} "
              f"{metric['label']} above it: {fmt(over)} µs ({share:.0%})")
    if err:
        lines += ["", f"**floor: failed** — {err}"]
    replace_section(args.doc, args.name, "\n".join(lines))
    write_json(args.json, results)


def vm_figures(path):
    """bench/vm.sh's results: `KEY VALUE` lines (the value may hold spaces)."""
    out = {}
    for line in open(path):
        k, _, v = line.strip().partition(" ")
        if k:
            out[k] = v
    return out


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def cmd_vm(args):
    r = vm_figures(args.results)
    title = "## The vm level: boot, VM exits and the VMM's memory, inside the test VM"
    lines = [title, ""]
    for n in args.note:
        lines += [n, ""]
    if "first_output_s" not in r:
        lines += ["Not run: bench/vm.sh reported no figures (see its log)."]
        replace_section(args.doc, args.name, "\n".join(lines))
        return
    first, qinit = num(r.get("first_output_s")), num(r.get("qemu_init_s"))
    ratio = f"{first / qinit:.2f}x" if first and qinit else "-"
    agent = num(r.get("exits_true_agent_s"))
    vratio = f"{agent / qinit:.2f}x" if agent and qinit else "-"
    qk = r.get("qemu_kernel", "none")
    qdesc = {"vmlinux": "the same `vmlinux` (its PVH entry)",
             "bzImage": "the `bzImage` the `vmlinux` comes from"}.get(qk, "not run")
    kib = lambda k: f"{int(r[k]):,} KiB ({int(r[k]) / 1024:.1f} MiB)" if k in r else "-"
    exits = lambda k: (f"{int(r[k]):,} (port I/O {int(r[k + '_io']):,}, MMIO {int(r[k + '_mmio']):,})"
                       if k in r else "-")
    secs = lambda k: f"{float(r[k]):.2f} s" if num(r.get(k)) is not None else "-"
    lines += [
        "| measure | value | target |",
        "|---|---|---|",
        f"| `atoll --isolation vm run` of busybox `echo` to its first output (median of {r.get('rounds', '?')}: {r.get('first_output_all', '').replace(',', ', ')} s) | {secs('first_output_s')} | |",
        f"| QEMU `-M microvm` (KVM) booting {qdesc} and the same initramfs to `/init` (median: {r.get('qemu_init_all', '').replace(',', ', ')} s) | {secs('qemu_init_s')} | |",
        f"| **ratio: atoll run to first output / QEMU microvm to `/init`** | **{ratio}** | at most 0.5x |",
        f"| atoll-vmm alone, start to the agent answering on vsock (kernel, `/init`, its modules, vsock) | {secs('exits_true_agent_s')} | |",
        f"| ratio: atoll-vmm to the agent answering / QEMU microvm to `/init` | {vratio} | |",
        f"| `atoll run` to exit (boot, run, shutdown) | {secs('run_exit_s')} | |",
        f"| QEMU microvm start to exit (boot, the agent's failed self-test, reboot) | {secs('qemu_exit_s')} | |",
        f"| atoll-vmm's self-test boot, start to exit | {secs('vmm_selftest_s')} | |",
        f"| `atoll exec ID true` into the running guest | {secs('exec_s')} | |",
        f"| VM exits to the VMM, one boot (self-test: kernel to the agent listening, shutdown) | {exits('exits_boot')} | |",
        f"| VM exits, a boot mounting the rootfs over virtio-fs and running `true` | {exits('exits_true')} | |",
        f"| VM exits, a boot running 20,000 one-byte `dd` reads and 200 file opens over virtio-fs | {exits('exits_workload')} | |",
        f"| the VMM's memory beyond guest RAM: RSS less the guest pages touched | {kib('vmm_overhead_kib')} | under 5 MiB (Firecracker) |",
        f"| the same as PSS (shared libraries' pages divided among their users) | {kib('vmm_overhead_pss_kib')} | |",
        f"| guest RAM: the mapping, and its pages touched by then | {kib('guest_mapping_kib')}, {kib('guest_rss_kib')} touched | |",
        f"| the VMM's threads (main, vCPU, one per device) | {r.get('vmm_threads', '-')} | |",
        "",
        f"Load average inside the test VM: {r.get('load_before', '?').replace(',', ' ')} before, "
        f"{r.get('load_after', '?').replace(',', ' ')} after.",
    ]
    replace_section(args.doc, args.name, "\n".join(lines))


def main():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
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
    h.add_argument("--baseline", action="append", required=True)
    h.add_argument("--cmd", action="append", default=[])
    h.add_argument("--note", action="append", default=[])
    h.add_argument("--chart")
    h.set_defaults(func=cmd_hyperfine)
    mh = sub.add_parser("merge-hyperfine")
    mh.add_argument("out")
    mh.add_argument("inputs", nargs="+")
    mh.set_defaults(func=cmd_merge_hyperfine)
    v = sub.add_parser("vm")
    v.add_argument("doc")
    v.add_argument("name")
    v.add_argument("results")
    v.add_argument("--note", action="append", default=[])
    v.set_defaults(func=cmd_vm)
    for what, func in (("compare", cmd_compare), ("syscall", cmd_syscall)):
        c = sub.add_parser(what)
        c.add_argument("doc")
        c.add_argument("name")
        c.add_argument("--title", required=True)
        c.add_argument("--level", action="append", required=True)
        c.add_argument("--metric", action="append", required=True)
        c.add_argument("--ratio-to", action="append", default=[])
        c.add_argument("--subject", action="append", default=[])
        c.add_argument("--note", action="append", default=[])
        c.add_argument("--json")
        c.add_argument("--chart")
        c.add_argument("--chart-kind", choices=("bars", "threads"), default="bars")
        if what == "syscall":
            c.add_argument("--floor", required=True)
            c.add_argument("--floor-level", required=True)
            c.add_argument("--floor-key", required=True)
        c.set_defaults(func=func)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
