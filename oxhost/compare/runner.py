"""Runs the plan: each workload on a fresh device per stack, timing model on, and turns
traces into the figures of the report."""
import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from oxemu import Geometry

from .workloads import Workload, run_workload

STACKS = {"pblk": "host FTL (pblk over open-channel)", "appnvm": "device FTL (AppNVM)"}
MIB, GIB = 1 << 20, 1 << 30


@dataclass
class Plan:
    name: str
    geometry: Geometry
    workloads: list = field(default_factory=list)

    @classmethod
    def quick(cls) -> "Plan":
        geo = Geometry(nchannels=2, nluns=2, nblocks=32, npages=32)
        return cls("quick", geo, _workloads(cap=_capacity(geo), scale=0.02))

    @classmethod
    def full(cls) -> "Plan":
        geo = Geometry()
        return cls("full", geo, _workloads(cap=_capacity(geo), scale=1.0))


def _capacity(geo: Geometry) -> int:
    """Both stacks export pblk's capacity: floor(chunks * 80 / 100) chunks."""
    chunks = geo.total_luns * geo.nblocks
    return chunks * 80 // 100 * geo.sectors_per_block * geo.sector_nbytes


def _workloads(cap: int, scale: float) -> list:
    nops = max(2000, int(40000 * scale))
    region = min(cap, max(8 * MIB, int(GIB * scale))) // MIB * MIB
    return [
        Workload("seqwrite", "Sequential write, 1 MiB", "seqwrite", bs=MIB, nbytes=region),
        Workload("randwrite", "Random write, 4 KiB", "randwrite", bs=4096, nops=nops),
        Workload("randread", "Random read, 4 KiB", "randread", bs=4096, nops=nops, region=region,
                 prefill=True),
        Workload("mixed", "Mixed 70% read / 30% write, 4 KiB", "mixed", bs=4096, nops=nops,
                 read_pct=70, region=region, prefill=True),
        Workload("overwrite", "Sustained random overwrite, 2x capacity", "overwrite",
                 bs=4096 if scale < 0.1 else 64 * 1024, nbytes=2 * cap, prefill=True),
    ]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[prefix + k] = v
    return out


def _pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) / 1000 if a.size else 0.0


def summarize(w: Workload, tr, m0: dict, m1: dict) -> dict:
    nbytes = int(tr.nbytes.sum())
    written = int(tr.nbytes[~tr.is_read].sum())
    gib = nbytes / GIB
    vs = tr.virtual_ns / 1e9
    out = dict(
        workload=w.name, title=w.title, requests=int(tr.lat_ns.size), bytes=nbytes,
        bytes_written=written, bytes_read=nbytes - written,
        virtual_s=vs, wall_s=tr.wall_s,
        throughput_mib_s=nbytes / MIB / vs if vs else float("inf"),
        iops=tr.lat_ns.size / vs if vs else float("inf"),
        lat_p50_us=_pct(tr.lat_ns, 50), lat_p99_us=_pct(tr.lat_ns, 99), lat_p999_us=_pct(tr.lat_ns, 99.9),
        read_p50_us=_pct(tr.lat_ns[tr.is_read], 50), read_p99_us=_pct(tr.lat_ns[tr.is_read], 99),
        write_p50_us=_pct(tr.lat_ns[~tr.is_read], 50), write_p99_us=_pct(tr.lat_ns[~tr.is_read], 99),
        host_cpu_s=tr.cpu_s, host_cpu_s_per_gib=tr.cpu_s / gib if gib else 0.0,
        nvme_cmds=m1["io_cmds"] - m0["io_cmds"],
        nvme_cmds_per_gib=(m1["io_cmds"] - m0["io_cmds"]) / gib if gib else 0.0,
        bus_bytes=(m1["dma_bytes_to_device"] + m1["dma_bytes_to_host"]
                   - m0["dma_bytes_to_device"] - m0["dma_bytes_to_host"]),
        media_bytes_programmed=m1["media_bytes_programmed"] - m0["media_bytes_programmed"],
        verified_reads=tr.verified_reads, mismatches=tr.mismatches,
    )
    out["bus_bytes_per_gib"] = out["bus_bytes"] / gib if gib else 0.0
    out["write_amplification"] = out["media_bytes_programmed"] / written if written else None
    return out


def run_compare(plan: Plan, outdir, stacks=("pblk", "appnvm"), progress=True, echo=print) -> dict:
    """Run every workload of the plan on every stack; write results.json, report.md, PNGs."""
    from pathlib import Path

    from ..stack import open_stack
    from . import report
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    results = dict(plan=plan.name, geometry=asdict(plan.geometry), stacks={}, series={}, cdf={})
    bar = None
    if progress:
        from tqdm import tqdm
        total = sum(_work_bytes(w) for w in plan.workloads) * len(stacks)
        bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="compare",
                   dynamic_ncols=True)
    try:
        for mode in stacks:
            res = results["stacks"][mode] = {}
            results["series"][mode] = {}
            results["cdf"][mode] = {}
            for w in plan.workloads:
                if bar is not None:
                    bar.set_description(f"{mode}: {w.name}")
                st = open_stack(mode=mode, disk=None, volatile=True, timing="model",
                                geometry=plan.geometry, luns=None)
                try:
                    bdev, m = st.blockdev, st.machine
                    if bdev.size != _capacity(plan.geometry):
                        raise RuntimeError(f"{mode} exports {bdev.size} bytes, expected {_capacity(plan.geometry)}")

                    def stats_fn():
                        return {**_flat(m.stats(), "dev."), **_flat(bdev.stats(), "host.")}
                    tr = run_workload(w, bdev, m, stats_fn,
                                      progress=bar.update if bar is not None else None)
                    res[w.name] = summarize(w, tr, tr.before, tr.after)
                    res[w.name]["final_stats"] = {**_flat(tr.after, "dev."), **_flat(bdev.stats(), "host.")}
                    results["series"][mode][w.name] = tr.series
                    lat = np.sort(tr.lat_ns)
                    idx = np.unique(np.linspace(0, lat.size - 1, min(lat.size, 400)).astype(int))
                    results["cdf"][mode][w.name] = dict(lat_us=(lat[idx] / 1000).tolist(),
                                                        q=((idx + 1) / lat.size).tolist())
                finally:
                    st.close()
    finally:
        if bar is not None:
            bar.close()
    results["wall_s"] = time.perf_counter() - t_start
    with open(outdir / "results.json", "w") as f:
        json.dump(results, f, indent=1, default=float)
    report.write(results, outdir)
    echo(report.table(results))
    echo(f"\nreport: {outdir / 'report.md'} (wall time {results['wall_s']:.0f} s)")
    return results


def _work_bytes(w: Workload) -> int:
    if w.op in ("seqwrite", "overwrite"):
        return w.nbytes - w.nbytes % w.bs
    return w.nops * w.bs
