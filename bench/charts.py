"""SVG charts of the benchmark sections, for docs/benchmarks.md (imported by
bench/report.py, run by bench/run.sh with the matplotlib of the bench's own
virtualenv: bench/requirements.txt).

Every chart shows the same figures as its section's table: medians as bars,
the samples' min–max as a whisker. Each runtime keeps its colour across the
charts. The SVGs are reproducible (no date, fixed ids) so that a re-run
with the same numbers changes nothing in git.
"""

import os

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update({
    "svg.hashsalt": "atoll-bench",
    "svg.fonttype": "none",  # text as text: small files, searchable
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
})

# Native and the other runc-class runtimes in greys and greens, atoll's
# userspace level in blues, gVisor's runsc in oranges; the fast platform
# dark, ptrace light.
COLOURS = {
    "atoll native": "#4d4d4d",
    "runc": "#7fbf7b",
    "youki": "#1b7837",
    "atoll systrap": "#2166ac",
    "atoll ptrace": "#92c5de",
    "runsc systrap": "#d6604d",
    "runsc ptrace": "#f4a582",
}


def colour(name):
    return COLOURS.get(name, "#999999")


def save(fig, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    # SVG for the docs; another extension (.png) for a quick look.
    if path.endswith(".svg"):
        fig.savefig(path, format="svg", bbox_inches="tight", metadata={"Date": None})
    else:
        fig.savefig(path, bbox_inches="tight", dpi=110)
    plt.close(fig)


def fmt(v):
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def hbars(ax, names, stats, unit, better):
    """One horizontal bar per runtime: median, min–max whisker, value label.
    A log axis when the values span more than 20×, so that every bar shows."""
    ys, meds, lo, hi, cols, shown = [], [], [], [], [], []
    for i, name in enumerate(names):
        s = stats.get(name)
        if not s:
            continue
        ys.append(len(names) - 1 - i)
        meds.append(s["median"])
        lo.append(s["median"] - s["min"])
        hi.append(s["max"] - s["median"])
        cols.append(colour(name))
        shown.append(name)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(list(reversed(names)))
    if not meds:
        ax.text(0.5, 0.5, "no result", transform=ax.transAxes, ha="center")
        return
    ax.barh(ys, meds, color=cols, xerr=[lo, hi], error_kw={"elinewidth": 0.8, "capsize": 2})
    positive = [m for m in meds if m > 0]
    log = len(positive) == len(meds) and max(positive) / min(positive) > 20
    if log:
        ax.set_xscale("log")
    right = max(m + h for m, h in zip(meds, hi))
    ax.set_xlim(right=right * (3 if log else 1.25))
    for y, m, h in zip(ys, meds, hi):
        ax.text(m + h if not log else (m + h) * 1.08, y, " " + fmt(m), va="center", fontsize=8)
    ax.set_xlabel(f"{unit}, {better} is better" + (" (log scale)" if log else ""))
    for name in names:
        if name not in shown:
            ax.text(0, len(names) - 1 - names.index(name), " failed / not run",
                    va="center", fontsize=8, color="#b2182b",
                    transform=ax.get_yaxis_transform())


def compare(path, title, names, metrics, data, kind="bars"):
    if kind == "threads":
        return threads(path, title, names, metrics, data)
    n = len(metrics)
    cols = 1 if n == 1 else 2
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 0.42 * len(names) * rows + 0.9 * rows),
                             squeeze=False)
    for i, m in enumerate(metrics):
        ax = axes[i // cols][i % cols]
        hbars(ax, names, {name: data[name][m["key"]] for name in names}, m["unit"], m["better"])
        ax.set_title(m["label"].replace("\\|", "|"), loc="left")
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(title, x=0.01, ha="left", fontsize=10, fontweight="bold")
    fig.tight_layout()
    save(fig, path)


def threads(path, title, names, metrics, data):
    """Metrics named KIND_tN (calls/s with N threads): one panel per KIND,
    grouped bars over N, one bar per runtime, log scale."""
    groups = {}
    for m in metrics:
        kind, _, n = m["key"].rpartition("_t")
        groups.setdefault(kind, []).append((int(n), m))
    fig, axes = plt.subplots(1, len(groups), figsize=(5.4 * len(groups), 3.4), squeeze=False)
    width = 0.8 / len(names)
    for ax, (kind, ms) in zip(axes[0], groups.items()):
        counts = [n for n, _ in ms]
        for j, name in enumerate(names):
            xs, meds, lo, hi = [], [], [], []
            for i, (_, m) in enumerate(ms):
                s = data[name][m["key"]]
                if s:
                    xs.append(i + (j - (len(names) - 1) / 2) * width)
                    meds.append(s["median"])
                    lo.append(s["median"] - s["min"])
                    hi.append(s["max"] - s["median"])
            ax.bar(xs, meds, width, color=colour(name), label=name, yerr=[lo, hi],
                   error_kw={"elinewidth": 0.8, "capsize": 2})
        ax.set_xticks(range(len(counts)))
        ax.set_xticklabels([f"{n} thread{'s' if n > 1 else ''}" for n in counts])
        ax.set_yscale("log")
        label = ms[0][1]["label"]
        ax.set_title(label.split(",")[0], loc="left")
        ax.set_ylabel(f"{ms[0][1]['unit']}, all threads (log scale)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle(title, x=0.01, ha="left", fontsize=10, fontweight="bold")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    save(fig, path)


def hyperfine(path, title, results):
    names = [r["command"] for r in results]
    stats = {r["command"]: {"median": r["median"] * 1000, "min": r["min"] * 1000,
                            "max": r["max"] * 1000} for r in results}
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(names) + 1.0))
    hbars(ax, names, stats, "ms per container", "lower")
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
    fig.tight_layout()
    save(fig, path)
