"""The PNG figures of `ox compare` (matplotlib, Agg): per-workload bars, queue-depth curves,
latency CDFs, the interference figure, WA and GC over time, wear and validity heatmaps,
and the sweep's figure; any number of stacks, each in its own colour."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator  # noqa: E402

from . import steady, theory  # noqa: E402
from .results import capacity_of, gc_moved  # noqa: E402
from .results import headline as _head  # noqa: E402
from .results import stacks as _stacks  # noqa: E402
from .stacks import describe  # noqa: E402

COLORS = {"pblk": "#1f77b4", "appnvm": "#d62728"}
PALETTE = ["#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
STYLES = ["-", "--", ":", "-."]
DPI = 100


def stack_color(results, name: str) -> str:
    """pblk blue, AppNVM red, every other stack the next colour of the palette in run order."""
    if name in COLORS:
        return COLORS[name]
    others = [s for s in (results.get("modes") or results.get("stacks", {})) if s not in COLORS]
    return PALETTE[others.index(name) % len(PALETTE)] if name in others else PALETTE[-1]


def stack_label(results, name: str) -> str:
    """A legend entry: what pblk and AppNVM are; a plug-in FTL's short name says it
    (Class@side; report.md says the rest)."""
    return describe(name) if name in ("pblk", "appnvm") else f"{name} (plug-in FTL)"


def save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _qd_axis(ax, qds) -> None:
    """A queue-depth axis: log 2 scale, a tick at each depth run, labelled as the integer."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(qds, [str(q) for q in qds])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("queue depth")


def _lun_axis(ax, geometry: dict, nrows: int) -> None:
    """The LUN axis of a per-block map: one tick per LUN (every k-th on a big device),
    labelled ch/lun."""
    per = geometry.get("nluns", 1) or 1
    step = max(1, -(-nrows // 16))
    rows = list(range(0, nrows, step))
    ax.set_yticks(rows, [f"{r // per}/{r % per}" for r in rows])
    ax.set_ylabel("LUN (channel/lun)")


def _bars(results, key, ylabel, title, path, log=False) -> bool:
    wls = [w for w in results["workloads"] if any(_head(results, s, w) for s in _stacks(results))]
    st = _stacks(results)
    if not wls:
        return False
    x = np.arange(len(wls))
    width = 0.8 / max(1, len(st))
    fig, ax = plt.subplots(figsize=(10, 4.2))
    positive = False
    for i, s in enumerate(st):
        vals = [(_head(results, s, w) or {}).get(key) or 0 for w in wls]
        positive = positive or any(v > 0 for v in vals)
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=stack_label(results, s), color=stack_color(results, s))
    ax.set_xticks(x, [f"{w}\nQD{results['workloads'][w]['qds'][0]}" for w in wls])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log and positive:                        # all zero (nothing crossed the bus): a linear axis
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save(fig, path)
    return True


def _qd_curves(results, path) -> bool:
    wls = [w for w, d in results["workloads"].items() if len(d["qds"]) > 1]
    if not wls:
        return False
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, w in enumerate(wls):
        qds = results["workloads"][w]["qds"]
        for s in _stacks(results):
            y = [(results["stacks"][s][w].get(str(q)) or {}).get("throughput_mib_s", np.nan) for q in qds]
            ax.plot(qds, y, STYLES[i % 4], marker="o", color=stack_color(results, s), label=f"{s}: {w}")
    _qd_axis(ax, sorted({q for w in wls for q in results["workloads"][w]["qds"]}))
    ax.set_ylabel("MiB/s (modeled)")
    ax.set_title("Throughput against queue depth")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)
    return True


def _qd_latency(results, path) -> bool:
    wls = [w for w, d in results["workloads"].items() if len(d["qds"]) > 1][:3]
    if not wls:
        return False
    fig, axes = plt.subplots(1, len(wls), figsize=(5 * len(wls), 4.2), squeeze=False)
    for ax, w in zip(axes[0], wls):
        qds = results["workloads"][w]["qds"]
        for s in _stacks(results):
            for key, style in (("lat_p50_us", ":"), ("lat_p99_us", "--"), ("lat_p999_us", "-")):
                y = [max((results["stacks"][s][w].get(str(q)) or {}).get(key, np.nan), 0.01) for q in qds]
                ax.plot(qds, y, style, marker=".", color=stack_color(results, s),
                        label=f"{s} {key[4:].replace('_us', '').replace('p999', 'p99.9')}")
        _qd_axis(ax, qds)
        ax.set_yscale("log")
        ax.set_title(w)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("latency (us, modeled, log)")
    axes[0][0].legend(fontsize=7)
    save(fig, path)
    return True


def _cdfs(results, path) -> bool:
    wls = [w for w in results["workloads"] if w != "interference"]
    if not wls:
        return False
    ncols = min(3, len(wls))
    nrows = -(-len(wls) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.6 * nrows), squeeze=False)
    flat = axes.reshape(-1)
    for ax in flat[len(wls):]:
        ax.set_visible(False)
    for ax, w in zip(flat, wls):
        qd = str(results["workloads"][w]["qds"][0])
        for s in _stacks(results):
            c = results["cdf"][s].get(w, {}).get(qd, {}).get("all")
            if c and c["lat_us"]:
                ax.step(np.maximum(np.asarray(c["lat_us"]), 0.1), c["q"], where="post", label=s, color=stack_color(results, s))
        ax.set_xscale("log")
        ax.set_title(f"{w} (QD {qd})")
        ax.set_xlabel("modeled latency (us, log)")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("fraction of requests")
    flat[0].legend()
    save(fig, path)
    return True


def _interference(results, path) -> bool:
    if "interference" not in results["workloads"]:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for s in _stacks(results):
        c = results["cdf"][s].get("interference", {}).get("1")
        r = _head(results, s, "interference")
        if not c or not r:
            continue
        for name, style, p999 in (("idle", ":", r["idle"]["read_p999_us"]), ("gc", "-", r["read_p999_us"])):
            lat = np.maximum(np.asarray(c[name]["lat_us"]), 0.1)
            q = np.asarray(c[name]["q"])
            label = f"{s}, {'alone' if name == 'idle' else 'under GC'} (p99.9 {p999:,.0f} us)"
            axes[0].step(lat, q, style, where="post", color=stack_color(results, s), label=label)
            axes[1].step(lat, np.maximum(1 - q, 1e-5), style, where="post", color=stack_color(results, s), label=label)
    axes[0].set_ylabel("fraction of reads")
    axes[1].set_ylabel("fraction of reads slower (log)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("4 KiB read latency at QD 1 (us, modeled, log)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[0].set_title("Reads alone and beside a GC-heavy overwrite")
    axes[1].set_title("Tail (1 - CDF)")
    save(fig, path)
    return True


def _series(results, path, what: str) -> bool:
    wl = "overwrite" if any(results["series"][s].get("overwrite") for s in _stacks(results)) else None
    if wl is None:
        cands = [w for s in _stacks(results) for w in results["series"][s]]
        if not cands:
            return False
        wl = cands[0]
    fig, ax = plt.subplots(figsize=(8, 4))
    drawn = False
    for s in _stacks(results):
        pts = results["series"][s].get(wl) or []
        if not pts or (what == "gc" and gc_moved(pts[-1]) is None):
            continue                            # a stack that does not say what its GC moved
        drawn = True
        cap = capacity_of(results, s)           # each stack's own: plug-in FTLs choose theirs
        x = [p["host_bytes"] / cap for p in pts]
        host = np.diff([0] + [p["host_bytes"] for p in pts])
        if what == "wa":
            media = np.diff([0] + [p.get("dev.media_bytes_programmed", 0) for p in pts])
            ax.plot(x, media / np.maximum(host, 1), label=f"{s}: interval WA", color=stack_color(results, s))
            cum = [p.get("dev.media_bytes_programmed", 0) / p["host_bytes"] for p in pts]
            ax.plot(x, cum, "--", label=f"{s}: cumulative WA", color=stack_color(results, s), alpha=0.6)
            cf = theory_of(results).get(s, {}).get("closed_form_wa")
            if cf:
                ax.axhline(cf, ls=":", lw=1.5, color=stack_color(results, s),
                           label=f"{s}: FIFO closed form {cf:.2f} at effective OP")
            ax.set_ylabel("write amplification (media / host bytes)")
        else:
            moved = np.diff([0] + [gc_moved(p) for p in pts]) * 4096
            ax.plot(x, moved / np.maximum(host, 1), label=f"{s}: GC bytes moved per host byte", color=stack_color(results, s))
            ax.set_ylabel("GC bytes moved / host byte written")
    if not drawn:
        plt.close(fig)
        return False
    steady_ = (results.get("precondition") or {}).get("mode", "none") != "none"
    ax.set_xlabel(f"host bytes written during {wl}" + (" (every round, after the preconditioning)" if steady_
                                                       else "") + " (x capacity)")
    ax.set_title(f"{wl}: " + ("write amplification" if what == "wa" else "GC activity"))
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)
    return True


def _heatmaps(results, path, key: str) -> bool:
    wear = results.get("wear", {})
    panels = [(s, next(iter(wear[s].items()))) for s in _stacks(results) if wear.get(s)]
    panels = [(s, (wl, w)) for s, (wl, w) in panels if w[key] is not None]   # a map the FTL keeps to itself
    if not panels:
        return False
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 4.2 * nrows), squeeze=False)
    for ax in axes.reshape(-1)[len(panels):]:
        ax.set_visible(False)
    for ax, (s, (wl, w)) in zip(axes.reshape(-1), panels):
        a = np.asarray(w[key], dtype=float)
        vmax = w["sectors_per_block"] if key == "valid" else None
        im = ax.imshow(a, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=vmax)
        bar = fig.colorbar(im, ax=ax, label="erase count" if key == "erase" else "valid sectors")
        bar.locator = MaxNLocator(integer=True)
        bar.update_ticks()
        step = max(1, -(-a.shape[1] // 16))
        ax.set_xticks(range(0, a.shape[1], step))
        ax.set_xlabel("block")
        _lun_axis(ax, results.get("geometry", {}), a.shape[0])
        extra = f", spread {w['wear_spread']:.2f}" if key == "erase" and w["wear_spread"] else ""
        ax.set_title(f"{s} after {wl}: " + ("erase counts" if key == "erase" else "valid sectors") + extra)
    save(fig, path)
    return True


def theory_of(results) -> dict:
    """results.json `theory`, or worked out from the run's params when it is missing."""
    return results.get("theory") or theory.of(results)


def _convergence(results, path, wl: str) -> bool:
    """The tracked variable per round of one workload on every stack, its window shaded,
    the fresh-out-of-box value dashed: the way to steady state."""
    runs = {s: (results.get("steady") or {}).get(s, {}).get(wl) for s in _stacks(results)}
    runs = {s: r for s, r in runs.items() if r and r.get("values")}
    if not runs:
        return False
    fig, ax = plt.subplots(figsize=(8, 4))
    track = next(iter(runs.values()))["track"]
    for s, r in runs.items():
        c = stack_color(results, s)
        y = [np.nan if v is None else v for v in r["values"]]
        x = np.arange(1, len(y) + 1)
        ax.plot(x, y, "-o", ms=4, color=c, label=stack_label(results, s))
        a, b = r["window"]
        ax.axvspan(a - 0.4, b + 0.4, color=c, alpha=0.10)
        if r.get("average"):
            ax.hlines([r["average"] * 0.9, r["average"] * 1.1], a - 0.4, b + 0.4, colors=c, lw=0.8, ls=":")
        state = ("steady at round %d" % b) if r["reached"] else (
            f"round limit {r['max_rounds']} hit" if r.get("limit_hit") else "one round (fill)")
        ax.annotate(state, (b, y[b - 1] if b - 1 < len(y) else y[-1]), textcoords="offset points", xytext=(4, 6),
                    fontsize=8, color=c)
        fob = (results.get("fob") or {}).get(s, {}).get(wl)
        v = steady.tracked(fob, track) if fob else None
        if v is not None:
            ax.axhline(v, ls="--", lw=1, color=c, alpha=0.6, label=f"{s}: fresh out of box")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round (after 2x capacity of 128 KiB sequential writes)")
    ax.set_ylabel(_TRACK_LABEL.get(track, track))
    ax.set_title(f"{wl}: convergence to steady state\n(shaded: the measurement window, dotted: +/-10 % of its average)",
                 fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)
    return True


_TRACK_LABEL = {"throughput_mib_s": "MiB/s (modeled)", "write_amplification": "write amplification",
                "writer.throughput_mib_s": "writer MiB/s (modeled)"}


def side_figures(r: dict | None, wl: str) -> dict:
    """A run's figures for a side-by-side view; the interference workload's throughput is
    its writer's (its reader's p99.9 is the run's own)."""
    if not r:
        return {}
    if wl == "interference" and "writer" in r:
        return dict(r, throughput_mib_s=r["writer"].get("throughput_mib_s"))
    return r


def _fob_steady(results, path) -> bool:
    """Throughput and p99.9 latency of every workload fresh out of the box and in steady
    state (or after the fill), side by side per stack."""
    fob = results.get("fob") or {}
    st = [s for s in _stacks(results) if fob.get(s)]
    wls = [w for w in results["workloads"] if any(w in fob.get(s, {}) for s in st)]
    if not st or not wls:
        return False
    mode = (results.get("precondition") or {}).get("mode", "steady")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    x = np.arange(len(wls))
    width = 0.8 / (2 * len(st))
    for ax, key, ylabel, log in ((axes[0], "throughput_mib_s", "MiB/s (modeled)", False),
                                 (axes[1], "lat_p999_us", "p99.9 latency (us, modeled)", True)):
        for i, s in enumerate(st):
            c = stack_color(results, s)
            for k, (what, get) in enumerate((("fresh", lambda w: fob[s].get(w)), (mode, lambda w: _head(results, s, w)))):
                vals = [max((side_figures(get(w), w).get(key) or 0), 1e-3) for w in wls]
                off = (2 * i + k) * width - 0.4 + width / 2
                ax.bar(x + off, vals, width, color=c, alpha=0.45 if k == 0 else 1.0, hatch="//" if k == 0 else None,
                       label=f"{s}: {what}")
        ax.set_xticks(x, wls)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[0].set_title("Throughput (interference: the writer's): fresh out of box (hatched) and " + mode, fontsize=10)
    axes[1].set_title("p99.9 latency: fresh out of box (hatched) and " + mode)
    save(fig, path)
    return True


def _noisy_neighbour(results, path) -> bool:
    """The interference workload as two tenants: the 4 KiB QD 1 reader's p99.9 alone and
    beside the write-heavy tenant, for every stack."""
    rows = [(s, _head(results, s, "interference")) for s in _stacks(results)]
    rows = [(s, r) for s, r in rows if r and "idle" in r]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows) + 3), 4.2))
    x = np.arange(len(rows))
    for k, (what, get) in enumerate((("alone", lambda r: r["idle"]["read_p999_us"]),
                                     ("beside the writer", lambda r: r["read_p999_us"]))):
        vals = [get(r) for _, r in rows]
        bars = ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, color=[stack_color(results, s) for s, _ in rows],
                      alpha=0.45 if k == 0 else 1.0, hatch="//" if k == 0 else None,
                      label=f"reader {what}")
        for b, v in zip(bars, vals):
            ax.annotate(f"{v:,.0f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [s for s, _ in rows])
    ax.set_yscale("log")
    top = max(max(r["read_p999_us"], r["idle"]["read_p999_us"]) for _, r in rows)
    ax.set_ylim(top=top * 8)                        # room for the labels and the legend
    ax.set_ylabel("4 KiB read p99.9 at QD 1 (us, modeled, log)")
    ax.set_title("Noisy neighbour: a 4 KiB QD 1 reader alone (hatched)\nand beside a 64 KiB QD 8 random writer",
                 fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)
    return True


def tenant_workloads(results) -> list:
    """Workloads whose headline run had tenants measured alone (a fairness entry)."""
    return [w for w in results["workloads"] if w != "interference"
            and any((_head(results, s, w) or {}).get("fairness") for s in _stacks(results))]


def _tenants(results, path, wl: str) -> bool:
    """Every tenant of a workload on every stack: its throughput as a share of its demand
    (alone), and its p99.9 alone and together."""
    st = [s for s in _stacks(results) if (_head(results, s, wl) or {}).get("fairness")]
    if not st:
        return False
    names = list(_head(results, st[0], wl)["jobs"])
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    x = np.arange(len(names))
    width = 0.8 / len(st)
    for i, s in enumerate(st):
        jobs = _head(results, s, wl)["jobs"]
        c = stack_color(results, s)
        off = i * width - 0.4 + width / 2
        axes[0].bar(x + off, [jobs.get(n, {}).get("normalised") or 0 for n in names], width, color=c,
                    label=f"{s} (Jain {jain_text(results, s, wl)})")
        for k, get in enumerate((lambda j: (j.get("alone") or {}).get("lat_p999_us"), lambda j: j.get("lat_p999_us"))):
            vals = [max(get(jobs.get(n, {})) or 0, 1e-3) for n in names]
            axes[1].bar(x + off + (k - 0.5) * width / 2, vals, width / 2, color=c, alpha=0.45 if k == 0 else 1.0,
                        hatch="//" if k == 0 else None, label=f"{s} {'alone' if k == 0 else 'together'}")
    axes[0].axhline(1.0, color="k", lw=0.8, ls=":")
    axes[0].set_ylabel("throughput together / alone")
    axes[0].set_title(f"{wl}: each tenant's share of its demand")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("p99.9 latency (us, modeled, log)")
    axes[1].set_title(f"{wl}: p99.9 alone (hatched) and together")
    for ax in axes:
        ax.set_xticks(x, names)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    save(fig, path)
    return True


def jain_text(results, s, wl) -> str:
    f = (_head(results, s, wl) or {}).get("fairness") or []
    return ", ".join(f"{g['jain']:.3f}" if g.get("jain") is not None else "-" for g in f) or "-"


def convergence_name(wl: str) -> str:
    return f"convergence-{wl}.png"


def tenants_name(wl: str) -> str:
    return f"tenants-{wl}.png"


def draw(results, outdir) -> set:
    """Every figure the results allow; the set of file names written."""
    outdir = Path(outdir)
    made = set()
    jobs = [
        ("throughput.png", lambda p: _bars(results, "throughput_mib_s", "MiB/s (modeled)", "Throughput per workload", p)),
        ("qd_throughput.png", lambda p: _qd_curves(results, p)),
        ("qd_latency.png", lambda p: _qd_latency(results, p)),
        ("latency_cdf.png", lambda p: _cdfs(results, p)),
        ("interference.png", lambda p: _interference(results, p)),
        ("wa_over_time.png", lambda p: _series(results, p, "wa")),
        ("gc_activity.png", lambda p: _series(results, p, "gc")),
        ("heatmap_erase.png", lambda p: _heatmaps(results, p, "erase")),
        ("heatmap_valid.png", lambda p: _heatmaps(results, p, "valid")),
        ("cpu_per_gib.png", lambda p: _bars(results, "host_cpu_s_per_gib", "host CPU s / GiB",
                                            "Host CPU per GiB (measured)", p)),
        ("cmds_per_gib.png", lambda p: _bars(results, "nvme_cmds_per_gib", "NVMe commands / GiB",
                                             "NVMe commands per GiB", p, log=True)),
        ("bus_per_gib.png", lambda p: _bars(results, "bus_bytes_per_gib", "bus bytes / GiB",
                                            "Bus (DMA) bytes per GiB", p, log=True)),
    ]
    jobs += [("fob_steady.png", lambda p: _fob_steady(results, p)),
             ("noisy_neighbour.png", lambda p: _noisy_neighbour(results, p))]
    jobs += [(convergence_name(w), lambda p, w=w: _convergence(results, p, w)) for w in results["workloads"]]
    jobs += [(tenants_name(w), lambda p, w=w: _tenants(results, p, w)) for w in tenant_workloads(results)]
    for name, fn in jobs:
        if fn(outdir / name):
            made.add(name)
    return made


# ---------------------------------------------------------------- sweeps

def _numeric(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _sweep_axes(sw):
    """(x key, the other keys): x is the first key whose values are all numbers."""
    keys = sw["keys"]
    for k in keys:
        if all(_numeric(p["set"][k]) is not None for p in sw["points"]):
            return k, [o for o in keys if o != k]
    return None, keys


def point_theory(results, point: dict, stack: str) -> dict:
    """compare.theory's figures of one stack at one grid point (its own config and params)."""
    params = (point.get("params") or {}).get(stack)
    return theory.stack_theory(params, results["geometry"], point["config"]) if params else {}


def draw_sweep(results, outdir) -> set:
    sw = results["sweep"]
    if not sw["points"]:
        return set()
    xkey, others = _sweep_axes(sw)
    stacks = list(sw["points"][0]["stacks"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    groups: dict = {}
    drawn: set = set()
    for p in sw["points"]:
        groups.setdefault(tuple(p["set"][o] for o in others), []).append(p)
    for gi, (g, pts) in enumerate(groups.items()):
        label_g = ", ".join(f"{o}={v}" for o, v in zip(others, g))
        for s in stacks:
            ys = [p["stacks"][s].get("steady_write_amplification") or p["stacks"][s].get("write_amplification")
                  or np.nan for p in pts]
            cf = [point_theory(results, p, s).get("closed_form_wa") or np.nan for p in pts]
            xs = [float(p["set"][xkey]) for p in pts] if xkey is not None else list(range(len(pts)))
            order = np.argsort(xs)
            xs_, ys_, cf_ = (np.asarray(v, dtype=float)[order] for v in (xs, ys, cf))
            ax.plot(xs_, ys_, STYLES[gi % 4], marker="o", color=stack_color(results, s),
                    label=f"{s}" + (f", {label_g}" if label_g else ""))
            key = (s, tuple(np.round(cf_, 9)))
            if key not in drawn and not np.all(np.isnan(cf_)):      # the same curve once
                drawn.add(key)
                ax.plot(xs_, cf_, ":", marker="x", color=stack_color(results, s), alpha=0.7,
                        label=f"{s}: FIFO closed form at its effective OP")
    if xkey is None:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xkey or "grid point")
    ax.set_ylabel("steady-state write amplification")
    ax.set_title(f"{sw['workload']}: steady WA against {xkey or ', '.join(sw['keys'])}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, Path(outdir) / "sweep.png")
    return {"sweep.png"}


def sweep_caption(results) -> str:
    """One line for the sweep figure: what it shows, which stack is better, why."""
    sw = results["sweep"]
    xkey, _ = _sweep_axes(sw)
    stacks = list(sw["points"][0]["stacks"])
    mean = {}
    for s in stacks:
        v = [p["stacks"][s].get("steady_write_amplification") or p["stacks"][s].get("write_amplification")
             for p in sw["points"]]
        v = [x for x in v if x]
        mean[s] = sum(v) / len(v) if v else None
    better = min((s for s in stacks if mean[s]), key=lambda s: mean[s], default=None)
    text = (f"Steady-state write amplification (second half of the {sw['workload']}) at every grid point"
            + (f", against {xkey}" if xkey else "") + ", one line per stack and setting of the other keys. ")
    plugins = [s for s in stacks if s not in ("pblk", "appnvm")]
    if xkey == "ftl.op":
        text += ("More over-provisioning leaves more invalid data in each victim, so the curves fall as op "
                 "grows (the classic greedy-GC curve)"
                 + (f"; {', '.join(plugins)} keep their own over-provisioning, so op does not move them" if plugins
                    else "") + ". ")
    if better and len(stacks) > 1:
        text += f"On average {better} amplifies least (" + ", ".join(f"{s} {mean[s]:.2f}" for s in stacks if mean[s]) + ")"
        if set(stacks) == {"pblk", "appnvm"}:
            text += (": pblk reclaims whole lines and holds 1/8 of its space free for its rate limiter, AppNVM "
                     "reclaims single blocks close to its reserve")
        text += "."
    return text
