"""report.md, the PNG figures and the console table of `ox compare`."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .runner import STACKS  # noqa: E402

COLORS = {"pblk": "#1f77b4", "appnvm": "#d62728"}
GIB = 1 << 30


def _stacks(results):
    return list(results["stacks"])


def _workloads(results):
    first = next(iter(results["stacks"].values()))
    return list(first)


def _better(results, wl, key, higher=True):
    """(winner, loser, ratio) of two stacks on one metric; None when not comparable."""
    st = _stacks(results)
    if len(st) != 2:
        return None
    a, b = (results["stacks"][s][wl].get(key) for s in st)
    if not a or not b:
        return None
    if (a > b) == higher:
        return st[0], st[1], (a / b if higher else b / a)
    return st[1], st[0], (b / a if higher else a / b)


def gc_moved(point: dict) -> float:
    """Sectors (or bytes / 4 KiB) moved by GC so far, whichever counter the stack keeps."""
    for k, v in point.items():
        lk = k.lower()
        if "gc" in lk and ("sector" in lk or "moved" in lk or "writ" in lk) and "bytes" not in lk:
            return float(v)
    for k, v in point.items():
        lk = k.lower()
        if "gc" in lk and "bytes" in lk:
            return float(v) / 4096
    return 0.0


def _bars(results, key, ylabel, title, path, log=False):
    wls = _workloads(results)
    st = _stacks(results)
    x = np.arange(len(wls))
    width = 0.8 / max(1, len(st))
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for i, s in enumerate(st):
        vals = [results["stacks"][s][w].get(key) or 0 for w in wls]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=STACKS.get(s, s), color=COLORS.get(s))
    ax.set_xticks(x, wls)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cdfs(results, path):
    wls = _workloads(results)
    ncols = 3
    nrows = -(-len(wls) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(13, 3.8 * nrows), squeeze=False)
    flat = axes.reshape(-1)
    for ax in flat[len(wls):]:
        ax.set_visible(False)
    for ax, w in zip(flat, wls):
        for s in _stacks(results):
            c = results["cdf"][s].get(w)
            if c:
                lat = np.maximum(np.asarray(c["lat_us"]), 0.1)
                ax.step(lat, c["q"], where="post", label=s, color=COLORS.get(s))
        ax.set_xscale("log")
        ax.set_title(w)
        ax.set_xlabel("modeled latency (us, log)")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("fraction of requests")
    flat[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _series(results, path, what):
    cap = None
    fig, ax = plt.subplots(figsize=(8, 4))
    for s in _stacks(results):
        pts = results["series"][s].get("overwrite") or []
        if not pts:
            continue
        cap = cap or results["stacks"][s]["overwrite"]["bytes"] / 2
        x = [p["host_bytes"] / cap for p in pts]
        host = np.diff([0] + [p["host_bytes"] for p in pts])
        if what == "wa":
            media = np.diff([0] + [p.get("dev.media_bytes_programmed", 0) for p in pts])
            ax.plot(x, media / np.maximum(host, 1), label=f"{s}: interval WA", color=COLORS.get(s))
            cum = [p.get("dev.media_bytes_programmed", 0) / p["host_bytes"] for p in pts]
            ax.plot(x, cum, "--", label=f"{s}: cumulative WA", color=COLORS.get(s), alpha=0.6)
            ax.set_ylabel("write amplification (media / host bytes)")
        else:
            moved = np.diff([0] + [gc_moved(p) for p in pts]) * 4096
            ax.plot(x, moved / np.maximum(host, 1), label=f"{s}: GC bytes moved per host byte",
                    color=COLORS.get(s))
            ax.set_ylabel("GC bytes moved / host byte written")
    ax.set_xlabel("host bytes written during the overwrite (x capacity)")
    ax.set_title("Sustained random overwrite: " + ("write amplification" if what == "wa" else "GC activity"))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


METRICS = [
    ("throughput_mib_s", "throughput (MiB/s, modeled)", 1),
    ("iops", "IOPS (modeled)", 0),
    ("lat_p50_us", "p50 latency (us, modeled)", 1),
    ("lat_p99_us", "p99 latency (us, modeled)", 1),
    ("write_amplification", "write amplification", 2),
    ("host_cpu_s_per_gib", "host CPU s/GiB (measured)", 2),
    ("nvme_cmds_per_gib", "NVMe commands/GiB", 0),
    ("bus_bytes_per_gib", "bus bytes/GiB", 0),
    ("wall_s", "wall time (s)", 1),
]


def table(results) -> str:
    st = _stacks(results)
    lines = []
    for key, label, d in METRICS:
        lines.append(f"\n{label}")
        lines.append("  " + "workload".ljust(12) + "".join(s.rjust(16) for s in st))
        for w in _workloads(results):
            lines.append("  " + w.ljust(12) + "".join(
                _fmt(results["stacks"][s][w].get(key), d).rjust(16) for s in st))
    return "\n".join(lines)


def _md_table(results, key, d):
    st = _stacks(results)
    out = ["| workload | " + " | ".join(st) + " |", "|---|" + "---|" * len(st)]
    for w in _workloads(results):
        out.append(f"| {w} | " + " | ".join(_fmt(results['stacks'][s][w].get(key), d) for s in st) + " |")
    return "\n".join(out)


def _why(results):
    """One line per figure: what it shows, which stack is better, and why."""
    lines = {}
    b = _better(results, "seqwrite", "throughput_mib_s")
    r = _better(results, "randread", "lat_p50_us", higher=False)
    w = _better(results, "randwrite", "throughput_mib_s")
    lines["throughput"] = (
        "Modeled throughput per workload (bytes / virtual time at QD1). "
        + (f"Sequential write: {b[0]} is {b[2]:.2f}x faster; " if b else "")
        + (f"random 4 KiB write: {w[0]} is {w[2]:.2f}x faster — " if w else "")
        + "both stripe 32 KiB dual-plane units over all LUNs; what differs is how many "
          "writes each acknowledges from a buffer before the NAND program time is paid.")
    lines["latency"] = (
        "Latency CDFs per workload (modeled). "
        + (f"Random-read median: {r[0]} is lower by {r[2]:.2f}x; " if r else "")
        + "buffered writes show a step near zero (acknowledged from the write buffer) and a tail "
          "at the program time tPROG when the buffer drains or GC runs in the write path.")
    ov = _better(results, "overwrite", "write_amplification", higher=False)
    g = results["geometry"]
    luns = g["nchannels"] * g["nluns"]
    why_wa = {
        "appnvm": (f"both are greedy with the same 20% spare, but pblk reclaims whole lines ({luns} "
                   "blocks, one per LUN, at once) while AppNVM picks single blocks, so AppNVM's "
                   "victims are emptier; pblk also writes smeta/emeta per line."),
        "pblk": ("both are greedy with the same 20% spare; pblk's line-wide victims and rate limiter "
                 "beat AppNVM's per-block policy here, which also pays for its map checkpoints."),
    }
    lines["wa"] = (
        "Write amplification during the 2x-capacity random overwrite (interval and cumulative). "
        + (f"{ov[0]} amplifies less ({ov[2]:.2f}x lower cumulative WA): {why_wa[ov[0]]}" if ov else ""))
    gcb = _better(results, "overwrite", "write_amplification", higher=False)
    lines["gc"] = ("GC bytes moved per host byte written during the overwrite: zero until free space "
                   "runs out, then a steady state; "
                   + (f"{gcb[0]} copies less per user byte, the same cause as its lower WA." if gcb else
                      "the lower curve copies less per user byte."))
    c = _better(results, "randwrite", "host_cpu_s_per_gib", higher=False)
    lines["cpu"] = ("Host CPU seconds per GiB, measured in this process minus the device's own CPU time. "
                    + (f"{c[0]} costs the host {c[2]:.2f}x less on random writes: " if c else "")
                    + "pblk does mapping, buffering and GC on the host; AppNVM leaves them to the device.")
    n = _better(results, "randwrite", "nvme_cmds_per_gib", higher=False)
    lines["bus"] = ("NVMe commands and bus (DMA) bytes per GiB of user data. "
                    + (f"{n[0]} needs {n[2]:.2f}x fewer commands on random writes: " if n else "")
                    + "pblk batches whole write units (and GC moves data across the bus twice), "
                      "AppNVM sends one command per request and moves GC data inside the device.")
    return lines


def write(results, outdir) -> None:
    _bars(results, "throughput_mib_s", "MiB/s (modeled)", "Throughput per workload", outdir / "throughput.png")
    _cdfs(results, outdir / "latency_cdf.png")
    _series(results, outdir / "wa_over_time.png", "wa")
    _series(results, outdir / "gc_activity.png", "gc")
    _bars(results, "host_cpu_s_per_gib", "host CPU s / GiB", "Host CPU per GiB (measured)",
          outdir / "cpu_per_gib.png")
    fig_cmds = outdir / "cmds_per_gib.png"
    _bars(results, "nvme_cmds_per_gib", "NVMe commands / GiB", "NVMe commands per GiB", fig_cmds, log=True)
    _bars(results, "bus_bytes_per_gib", "bus bytes / GiB", "Bus (DMA) bytes per GiB", outdir / "bus_per_gib.png",
          log=True)
    why = _why(results)
    g = results["geometry"]
    md = [f"# ox compare — {results['plan']} run", "",
          f"Geometry {g['nchannels']} ch x {g['nluns']} LUN x {g['nblocks']} blk x {g['npages']} pg x "
          f"{g['nplanes']} pl x {g['nsectors']} sec x {g['sector_nbytes']} B; both stacks export "
          f"{next(iter(results['stacks'].values()))['overwrite']['bytes'] // 2:,} bytes. Every workload ran on a "
          "fresh device with the NAND timing model on (virtual clock: reproducible, independent of this "
          "machine's speed). Requests are issued one at a time (QD1); writes carry (LBA, generation) stamps "
          "and every read is checked against them.", "",
          "Stacks: " + "; ".join(f"**{s}** = {STACKS.get(s, s)}" for s in _stacks(results)), "",
          f"Wall time of the run: {results['wall_s']:.0f} s.", ""]
    for key, label, d in METRICS:
        md += [f"## {label}", "", _md_table(results, key, d), ""]
    mism = sum(r["mismatches"] for s in results["stacks"].values() for r in s.values())
    reads = sum(r["verified_reads"] for s in results["stacks"].values() for r in s.values())
    md += ["## Data check", "", f"{reads:,} reads verified against the written stamps, {mism} mismatches.", ""]
    md += ["## Figures", ""]
    for png, key in (("throughput.png", "throughput"), ("latency_cdf.png", "latency"),
                     ("wa_over_time.png", "wa"), ("gc_activity.png", "gc"), ("cpu_per_gib.png", "cpu"),
                     ("cmds_per_gib.png", "bus"), ("bus_per_gib.png", "bus")):
        md += [f"![{png}]({png})", "", why[key], ""]
    (outdir / "report.md").write_text("\n".join(md))
