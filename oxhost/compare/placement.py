"""The placement figure: one FTL in the host and the same FTL in the device, side by side --
what no other tool gives. When a run has FILE.py:Class@host and FILE.py:Class@device,
the report gets a section per such pair: a table and a figure of throughput, p99.9
latency, host CPU per GiB, bus bytes per GiB and NVMe commands per GiB, host against
device, with write amplification as the check that the FTL did the same work on both
sides."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import figures
from .results import headline, workloads
from .stacks import placement_pairs

# key in a run's summary, title, digits, scale, better when higher, log axis in the figure
METRICS = [
    ("throughput_mib_s", "MiB/s", 1, 1, True, True),
    ("lat_p999_us", "p99.9 us", 1, 1, False, True),
    ("host_cpu_s_per_gib", "host CPU s/GiB", 2, 1, False, False),
    ("bus_bytes_per_gib", "bus GiB/GiB", 2, 1 << 30, False, False),
    ("nvme_cmds_per_gib", "NVMe cmds/GiB", 0, 1, False, True),
]
CHECK = ("write_amplification", "WA (check)", 2, 1, False, False)   # the same FTL code: the same media writes

ISOLATES = (
    "What this isolates: placement alone. Both stacks run the same FTL class -- the same "
    "Python code, loaded from the same file -- on the same geometry, NAND timing model and "
    "fresh media, with the same requests issued at the same queue depths in virtual time; only "
    "the side of the bus differs. In the host, every media operation the FTL issues (page "
    "reads, programs, erases, its GC's copies) is an open-channel vector command: it pays the "
    "host's per-command costs, its data crosses the bus (a GC copy twice), and the FTL, whose "
    "media calls return when the operation is done, waits for each round trip, so the "
    "operations of one request run one after another. In the device, the host sends one NVMe "
    "command per request (split at 1 MiB) and user data crosses the bus once; the FTL waits "
    "for each media call there too, so each is charged from the end of the one before it, as "
    "in the host; GC copies stay inside, and the FTL's CPU time is the device's, taken out of "
    "host CPU. Write amplification, the check column, is the same "
    "on both sides: the FTL did the same work, and the differences are what placement adds "
    "or removes.")


def pairs(results) -> list[dict]:
    """The placement pairs of a run ({ftl, host, device} names) that both have results."""
    have = results.get("stacks", {})
    return [p for p in placement_pairs(results.get("modes") or {}) if p["host"] in have and p["device"] in have]


def file_name(pair: dict) -> str:
    return f"placement-{pair['ftl']}.png"


def _val(results, name, wl, key, scale=1):
    r = headline(results, name, wl) or {}
    v = r.get(key)
    return v / scale if v is not None else None


def _ratio(h, d) -> float | None:
    return d / h if h and d is not None else None


def _fmt(v, digits) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def table(results, pair: dict) -> list[str]:
    """Markdown: one row per workload at its headline queue depth; per metric
    `host -> device (device/host)`."""
    cols = METRICS + [CHECK]
    out = ["| workload | QD | " + " | ".join(c[1] for c in cols) + " |", "|---|---|" + "---|" * len(cols)]
    for w in workloads(results):
        qd = results["workloads"][w]["qds"][0]
        cells = []
        for key, _, d, scale, *_ in cols:
            h, v = _val(results, pair["host"], w, key, scale), _val(results, pair["device"], w, key, scale)
            r = _ratio(h, v)
            cells.append("-" if h is None and v is None else
                         f"{_fmt(h, d)} -> {_fmt(v, d)}" + (f" ({r:.2f}x)" if r is not None else ""))
        out.append(f"| {w} | {qd} | " + " | ".join(cells) + " |")
    return out


def summary(results, pair: dict) -> str:
    """One sentence per pair: the device's figures over the host's, as geometric means
    over the workloads (each metric where both sides have it)."""
    parts = []
    for key, lab, _, _, higher, _ in METRICS:
        rs = [_ratio(_val(results, pair["host"], w, key), _val(results, pair["device"], w, key))
              for w in workloads(results)]
        rs = [r for r in rs if r]
        if not rs:
            continue
        g = float(np.exp(np.mean(np.log(rs))))
        better = "device" if (g > 1) == higher else "host"
        parts.append(f"{lab} device/host {g:.2f}x ({better} better)" if abs(g - 1) >= 0.01 else f"{lab} equal")
    was = [(_val(results, pair["host"], w, CHECK[0]), _val(results, pair["device"], w, CHECK[0]))
           for w in workloads(results)]
    was = [(h, d) for h, d in was if h and d]
    check = (f"; write amplification {'equal' if all(abs(h - d) <= 0.01 * h for h, d in was) else 'differs'} "
             f"on {len(was)} workload(s) that wrote" if was else "")
    return (f"{pair['ftl']} in the device against the same FTL in the host, geometric mean over the workloads: "
            + ", ".join(parts) + check + ".")


def draw(results, pair: dict, path: Path) -> bool:
    """Six panels, one per metric and the WA check: per workload, the host bar beside the
    device bar."""
    wls = [w for w in workloads(results)
           if headline(results, pair["host"], w) and headline(results, pair["device"], w)]
    if not wls:
        return False
    plt = figures.plt
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    x = np.arange(len(wls))
    for ax, (key, lab, _, scale, _, log) in zip(axes.reshape(-1), METRICS + [CHECK]):
        for i, side in enumerate(("host", "device")):
            name = pair[side]
            vals = [_val(results, name, w, key, scale) or 0 for w in wls]
            ax.bar(x + (i - 0.5) * 0.4, vals, 0.4, label=name, color=figures.stack_color(results, name))
        ax.set_xticks(x, [f"{w}\nQD{results['workloads'][w]['qds'][0]}" for w in wls], fontsize=8)
        ax.set_title(lab)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=9)
    fig.suptitle(f"{pair['ftl']}: the same FTL in the host and in the device (headline queue depths)")
    figures.save(fig, path)
    return True


def section(results, outdir) -> list[str]:
    """The report's placement section (and its figures, drawn into `outdir`); [] when
    the run has no FTL on both sides."""
    out = []
    for pair in pairs(results):
        png = file_name(pair)
        out += [f"## Placement: {pair['ftl']} in the host and in the device", "",
                f"**{pair['host']}** against **{pair['device']}**, each workload at its headline queue depth; "
                "each cell: host -> device (device / host).", "",
                *table(results, pair), ""]
        if draw(results, pair, Path(outdir) / png):
            out += [f"![{png}]({png})", "", summary(results, pair), "", ISOLATES, ""]
    return out


def console(results) -> list[str]:
    """The console's placement lines: per pair and workload, device over host per metric."""
    out = []
    for pair in pairs(results):
        out += ["", f"placement: {pair['device']} / {pair['host']} (device over host, headline QD)",
                "  " + "workload@QD".ljust(18) + "".join(lab.rjust(16) for _, lab, *_ in METRICS + [CHECK])]
        for w in workloads(results):
            qd = results["workloads"][w]["qds"][0]
            cells = []
            for key, *_ in METRICS + [CHECK]:
                r = _ratio(_val(results, pair["host"], w, key), _val(results, pair["device"], w, key))
                cells.append((f"{r:.2f}x" if r is not None else "-").rjust(16))
            out.append("  " + f"{w}@{qd}".ljust(18) + "".join(cells))
        out.append("  " + summary(results, pair))
    return out
