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
"""

import argparse
import json
import os
import re
import sys

INTRO = """# Benchmarks

Wall-clock comparisons of atoll against runc (Debian's package), driven by
[hyperfine](https://github.com/sharkdp/hyperfine) with warm-up runs, on the
same bundle and config.json for both runtimes.

Reproduce with `make bench` from the repository root (it builds the release
binary first; `./bench/run.sh --quick` lowers the run counts for a smoke
run). The raw hyperfine JSON of the last run is kept in `target/bench/`.

Numbers are only comparable within one run on one machine: the reference
machine is a 2 vCPU nested-virtualized VM, so absolute times are inflated
and noisy compared with bare metal, while the atoll/runc ratios are the
figures to look at.

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
        lines += ["", "Commands (`with-id.sh` appends a fresh container id):", "", "```sh"]
        lines += [commands[r["command"]] for r in results if r["command"] in commands]
        lines.append("```")
    replace_section(args.doc, args.name, "\n".join(lines))

    for r in results:
        print(f"{r['command']:>8}: median {ms(r['median'])} ms, "
              f"mean {ms(r['mean'])} ± {ms(r['stddev'] or 0.0)} ms")
    for r in others:
        print(f"ratio {r['command']}/{args.baseline} (medians): "
              f"{r['median'] / base['median']:.2f}")


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
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
