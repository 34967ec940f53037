"""The PNG figures of `ox compare` (matplotlib, Agg): per-workload bars, queue-depth curves,
latency CDFs, the interference figure, WA and GC over time, wear and validity heatmaps,
and the sweep's figure; any number of stacks, each in its own colour."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

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


def _bars(results, key, ylabel, title, path, log=False) -> bool:
    wls = [w for w in results["workloads"] if any(_head(results, s, w) for s in _stacks(results))]
    st = _stacks(results)
    if not wls:
        return False
    x = np.arange(len(wls))
    width = 0.8 / max(1, len(st))
    fig, ax = plt.subplots(figsize=(10, 4.2))
    for i, s in enumerate(st):
        vals = [(_head(results, s, w) or {}).get(key) or 0 for w in wls]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=stack_label(results, s), color=stack_color(results, s))
    ax.set_xticks(x, [f"{w}\nQD{results['workloads'][w]['qds'][0]}" for w in wls])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
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
    ax.set_xscale("log", base=2)
    ax.set_xlabel("queue depth")
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
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("queue depth")
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
            ax.set_ylabel("write amplification (media / host bytes)")
        else:
            moved = np.diff([0] + [gc_moved(p) for p in pts]) * 4096
            ax.plot(x, moved / np.maximum(host, 1), label=f"{s}: GC bytes moved per host byte", color=stack_color(results, s))
            ax.set_ylabel("GC bytes moved / host byte written")
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel(f"host bytes written during {wl} (x capacity)")
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
        fig.colorbar(im, ax=ax, label="erase count" if key == "erase" else "valid sectors")
        ax.set_xlabel("block")
        ax.set_ylabel("LUN (ch x LUNs + lun)")
        extra = f", spread {w['wear_spread']:.2f}" if key == "erase" and w["wear_spread"] else ""
        ax.set_title(f"{s} after {wl}: " + ("erase counts" if key == "erase" else "valid sectors") + extra)
    save(fig, path)
    return True


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


def draw_sweep(results, outdir) -> set:
    sw = results["sweep"]
    if not sw["points"]:
        return set()
    xkey, others = _sweep_axes(sw)
    stacks = list(sw["points"][0]["stacks"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    groups: dict = {}
    for p in sw["points"]:
        groups.setdefault(tuple(p["set"][o] for o in others), []).append(p)
    for gi, (g, pts) in enumerate(groups.items()):
        label_g = ", ".join(f"{o}={v}" for o, v in zip(others, g))
        for s in stacks:
            ys = [p["stacks"][s].get("steady_write_amplification") or p["stacks"][s].get("write_amplification")
                  or np.nan for p in pts]
            if xkey is not None:
                xs = [float(p["set"][xkey]) for p in pts]
                order = np.argsort(xs)
                ax.plot(np.asarray(xs)[order], np.asarray(ys)[order], STYLES[gi % 4], marker="o",
                        color=stack_color(results, s), label=f"{s}" + (f", {label_g}" if label_g else ""))
            else:
                ax.plot(range(len(pts)), ys, STYLES[gi % 4], marker="o", color=stack_color(results, s),
                        label=f"{s}" + (f", {label_g}" if label_g else ""))
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
