"""Runs the plan: every workload at every queue depth on a fresh device per stack, timing
model on, one configuration for the device and the FTLs; and sweeps of configuration
keys. Turns the engine's per-request records into the figures of the report.

A stack is any mode of oxhost.stack (pblk, appnvm, FILE.py:Class@host|device). Every one
is measured the same way, through what any block device answers -- stats(), ftl_params(),
block_valid_sectors(), host_buffer() (oxhost.blockdev) -- and the Machine's lab
instruments (media, bus and command counters, erase counts, the device-side FTL's own
report); never through one FTL's internals."""
from __future__ import annotations

import contextlib
import functools
import gc
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..config import SECTOR_NBYTES, Config
from ..stack import parse_mode
from . import stacks as stacks_
from . import steady, tenants, theory
from . import sweep as sweep_
from .engine import Engine, RunResult, _delta
from .hostclock import HostClock
from .results import GIB, MEASURED, gc_moved, speed_line
from .stamps import Shadow
from .sweep import sweep_points
from .workloads import (MIB, WALL_REQUESTS_PER_S, Workload, builtin_jobs, estimates, fio_jobs, interference_jobs,
                        trace_jobs)

__all__ = ["MEASURED", "Plan", "probe", "run_compare", "run_one", "run_plan", "run_sweep"]

QUICK_GEOMETRY = dict(nchannels=2, nluns=2, nblocks=32, npages=32)
QUICK_JOB_REQUESTS = 5000       # --quick: the budget of requests of each fio job
ROUND_CAPACITY = 0.25           # a steady-state round of the overwrite and interference: 1/4 of the capacity
# What a device-side FTL decided, from its own report (Machine.stats()["ftl"], a lab
# instrument: the host sees only a namespace)
DEVICE_PARAMS = ("ftl", "ftl_version", "gc_policy", "gc_reserve_blocks", "gc_low_blocks", "write_buffer_units",
                 "wear_leveling", "checkpoint_every_units", "total_blocks")


@dataclass
class Plan:
    """What to run: a configuration (geometry included) and workloads; `sweep_workload`
    is the one a sweep runs at each grid point. `precondition` (compare.steady: none,
    fill or steady) and `max_rounds` apply to every workload: the full run defaults to
    steady state, the quick run to fresh devices (none)."""
    name: str
    config: Config
    workloads: list = field(default_factory=list)
    sweep_workload: Workload | None = None
    precondition: str = "none"
    max_rounds: int = steady.MAX_ROUNDS

    def __post_init__(self):
        if self.precondition not in steady.PRECONDITIONS:
            raise ValueError(f"precondition {self.precondition!r} is not one of {', '.join(steady.PRECONDITIONS)}")
        if self.max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        pre = dict(precondition=self.precondition, max_rounds=self.max_rounds)
        self.workloads = [replace(w, **pre) for w in self.workloads]
        if self.sweep_workload is not None:
            self.sweep_workload = replace(self.sweep_workload, **pre)

    @property
    def geometry(self):
        return self.config.to_geometry()

    @classmethod
    def quick(cls, config: Config | None = None, qds=None, precondition: str = "none",
              max_rounds: int = steady.MAX_ROUNDS) -> Plan:
        cfg = _with_geometry(config or Config.default(), QUICK_GEOMETRY)
        return cls("quick", cfg, *_builtin(cfg, scale=0.02, qds=qds), precondition=precondition, max_rounds=max_rounds)

    @classmethod
    def full(cls, config: Config | None = None, qds=None, precondition: str = "steady",
             max_rounds: int = steady.MAX_ROUNDS) -> Plan:
        cfg = config or Config.default()
        return cls("full", cfg, *_builtin(cfg, scale=1.0, qds=qds), precondition=precondition, max_rounds=max_rounds)

    def with_workloads(self, workloads: list) -> Plan:
        """The same configuration with other workloads (a fio job file, a trace); a sweep
        then runs the first of them."""
        return replace(self, workloads=list(workloads), sweep_workload=workloads[0])

    def with_precondition(self, precondition: str, max_rounds: int | None = None) -> Plan:
        """The same plan with another precondition (and round limit) for every workload."""
        return replace(self, precondition=precondition, max_rounds=max_rounds or self.max_rounds)


def _with_geometry(cfg: Config, geo: dict) -> Config:
    """The plan's geometry, for every geometry key the configuration does not set."""
    sets = [f"geometry.{k}={v}" for k, v in geo.items() if not cfg.is_set(f"geometry.{k}")]
    return cfg.with_overrides(sets) if sets else cfg


def capacity(cfg: Config) -> int:
    """Bytes pblk and AppNVM export (ftl.op; appnvm.capacity_bytes may differ; plug-in
    FTLs choose their own: probe() says)."""
    return cfg.exported_sectors() * SECTOR_NBYTES


def _builtin(cfg: Config, scale: float, qds=None) -> tuple[list, Workload]:
    cap = capacity(cfg)
    nops = max(2000, int(40000 * scale))
    region = min(cap, max(8 * MIB, int(GIB * scale))) // MIB * MIB
    small = scale < 0.1
    rd_qds = tuple(qds) if qds else ((1, 4, 32) if small else (1, 2, 4, 8, 16, 32, 64))
    wr_qds = tuple(qds) if qds else ((1, 4, 32) if small else (1, 4, 16, 64))
    mx_qds = tuple(qds) if qds else (1, 32)
    over_bs = 4096 if small else 64 * 1024
    overwrite = Workload("overwrite", "Sustained random overwrite, 2x capacity", "overwrite", bs=over_bs,
                         nbytes=2 * cap, per_capacity=2.0, prefill=True, track="write_amplification",
                         round_capacity=ROUND_CAPACITY)
    wls = [
        Workload("seqwrite", "Sequential write, 1 MiB", "seqwrite", bs=MIB, nbytes=region),
        Workload("randwrite", "Random write, 4 KiB", "randwrite", bs=4096, nops=nops, qds=wr_qds),
        Workload("randread", "Random read, 4 KiB", "randread", bs=4096, nops=nops, region=region,
                 prefill=True, qds=rd_qds),
        Workload("mixed", "Mixed 70% read / 30% write, 4 KiB", "mixed", bs=4096, nops=nops,
                 read_pct=70, region=region, prefill=True, qds=mx_qds),
        overwrite,
        Workload("interference", "4 KiB reads at QD 1 beside a random 64 KiB overwrite at QD 8 (GC busy)",
                 kind="interference", bs=64 * 1024,
                 nbytes=int(cap * (0.5 if small else 1.0)) // (64 * 1024) * 64 * 1024,
                 warmup=0.5, writer_qd=8, idle_reads=max(500, nops // 8), qds=(1,),
                 track="writer.throughput_mib_s", round_capacity=ROUND_CAPACITY),
    ]
    return wls, overwrite


# ---------------------------------------------------------------- figures of one run

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


def _lat(prefix: str, lat: np.ndarray) -> dict:
    return {f"{prefix}p50_us": _pct(lat, 50), f"{prefix}p99_us": _pct(lat, 99),
            f"{prefix}p999_us": _pct(lat, 99.9), f"{prefix}max_us": float(lat.max()) / 1000 if lat.size else 0.0}


def steady_wa(series: list, tail: float = 0.5) -> float | None:
    """Write amplification over the last `tail` of a time series (media / host bytes): the
    second capacity's worth of a 2x-capacity overwrite, after GC has reached its pace."""
    if len(series) < 4:
        return None
    k = max(1, int(len(series) * tail))
    a, b = series[-k - 1], series[-1]
    host = b["host_bytes"] - a["host_bytes"]
    media = b.get("dev.media_bytes_programmed", 0) - a.get("dev.media_bytes_programmed", 0)
    return media / host if host else None


def summarize(res: RunResult, m0: dict, m1: dict, roles=None) -> dict:
    """The figures of one run from its measured jobs (all, or those of `roles`)."""
    jobs = [j for j in res.jobs if roles is None or j.role in roles]
    op = np.concatenate([j.op for j in jobs]) if jobs else np.zeros(0, np.int8)
    nb = np.concatenate([j.nbytes for j in jobs]) if jobs else np.zeros(0, np.int64)
    lat = np.concatenate([j.lat_ns for j in jobs]) if jobs else np.zeros(0, np.int64)
    io = op <= 1
    rd, wr = op == 0, op == 1
    allw = np.concatenate([j.nbytes[j.op == 1] for j in res.jobs]) if res.jobs else np.zeros(0)
    written = int(allw.sum())
    nbytes = int(nb[io].sum())
    moved = sum(int(j.nbytes[j.op <= 1].sum()) for j in res.jobs)    # every job's: per-GiB costs
    gib = moved / GIB
    vs = (res.end_ns - res.start_ns) / 1e9
    d = {k: m1.get(k, 0) - m0.get(k, 0) for k in ("io_cmds", "dma_bytes_to_device", "dma_bytes_to_host",
                                                   "media_bytes_programmed", "media_bytes_read")}
    out = dict(
        requests=int(io.sum()), bytes=nbytes, bytes_written=int(nb[wr].sum()), bytes_read=int(nb[rd].sum()),
        virtual_s=vs, wall_s=res.wall_s,
        throughput_mib_s=nbytes / MIB / vs if vs else 0.0, iops=int(io.sum()) / vs if vs else 0.0,
        **_lat("lat_", lat[io]), **_lat("read_", lat[rd]), **_lat("write_", lat[wr]),
        host_cpu_s=res.cpu_s, host_cpu_s_per_gib=res.cpu_s / gib if gib else 0.0,
        nvme_cmds=d["io_cmds"], nvme_cmds_per_gib=d["io_cmds"] / gib if gib else 0.0,
        bus_bytes=d["dma_bytes_to_device"] + d["dma_bytes_to_host"],
        media_bytes_programmed=d["media_bytes_programmed"], media_bytes_read=d["media_bytes_read"],
        verified_reads=res.verified_reads, mismatches=res.mismatches,
        reads=int(rd.sum()), writes=int(wr.sum()), trims=int((op == 2).sum()), flushes=int((op == 3).sum()),
        rmw_writes=res.rmw_writes, rmw_read_bytes=res.rmw_read_sectors * SECTOR_NBYTES,
        partial_reads=res.partial_reads)
    out["bus_bytes_per_gib"] = out["bus_bytes"] / gib if gib else 0.0
    out["write_amplification"] = out["media_bytes_programmed"] / written if written else None
    out["steady_write_amplification"] = steady_wa(res.series)
    out["jobs"] = tenants.per_job(res, d["media_bytes_programmed"])
    return out


def _cdf(lat_ns: np.ndarray) -> dict:
    lat = np.sort(lat_ns)
    if not lat.size:
        return dict(lat_us=[], q=[])
    idx = np.unique(np.concatenate([np.linspace(0, lat.size - 1, min(lat.size, 400)).astype(int),
                                    np.arange(max(0, lat.size - 40), lat.size)]))     # keep the tail
    return dict(lat_us=(lat[idx] / 1000).tolist(), q=((idx + 1) / lat.size).tolist())


def wear(stack) -> dict:
    """Erase counts and valid sectors per (global LUN, block) at the end of a run; `valid`
    is None when neither the block device nor the device-side FTL can say."""
    m, bdev, geo = stack.machine, stack.blockdev, stack.geometry
    ec = m.erase_counts()
    valid = bdev.block_valid_sectors()
    if valid is None:                           # the FTL is in the device: its own count
        valid = m.block_valid_sectors()
    good = ec[ec >= 0]
    mean = float(good.mean()) if good.size else 0.0
    return dict(erase=ec.tolist(), valid=valid.tolist() if valid is not None else None,
                erase_max=int(good.max()) if good.size else 0,
                erase_mean=mean, wear_spread=float(good.max()) / mean if mean else None,
                sectors_per_block=geo.sectors_per_block)


def stack_params(stack) -> dict:
    """What the stack's FTL made of the configuration: its block device's ftl_params(),
    and for a device-side FTL what it reports of itself."""
    out = dict(stack.blockdev.ftl_params())
    if parse_mode(stack.mode).kind in ("appnvm", "ftl@device"):
        dev = stack.machine.stats().get("ftl") or {}
        out.update({k: dev[k] for k in DEVICE_PARAMS if k in dev})
        out.setdefault("total_blocks", stack.geometry.total_luns * stack.geometry.nblocks)
    return out


def _open(cfg: Config, mode: str):
    from ..stack import open_stack
    gc.collect()            # the last device's reference cycles still hold its media: free it first
    return open_stack(mode=mode, disk=None, volatile=True, timing="model", config=cfg)


def probe(cfg: Config, modes) -> dict:
    """Open every stack once on fresh media, before anything runs: what each exports and
    its parameters ({mode: params}). A stack that cannot be built (an interface not built
    yet, an FTL whose open() fails, a configuration it refuses) raises here, with its
    own error, before any work is spent."""
    out = {}
    for mode in modes:
        st = _open(cfg, mode)
        try:
            out[mode] = stack_params(st)
        finally:
            st.close()
    return out


# ---------------------------------------------------------------- one workload on one stack

def _sized(w: Workload, size: int) -> Workload:
    """A per-capacity workload sized to the device it runs on."""
    return replace(w, nbytes=int(w.per_capacity * size) // w.bs * w.bs) if w.per_capacity else w


def _device(cfg: Config, mode: str, w: Workload, qd: int, seed: int, progress):
    """A fresh device of `mode` and an engine on it: (stack, engine, stats_fn)."""
    st = _open(cfg, mode)
    try:
        bdev, m = st.blockdev, st.machine
        size = bdev.size
        clock = HostClock(cfg.host, m, bdev, host_ftl=parse_mode(mode).kind == "ftl@host")

        def stats_fn():
            return {k: v for k, v in {**_flat(m.stats(), "dev."), **_flat(bdev.stats(), "host.")}.items()
                    if not k.endswith(("seconds", "cpu_s"))}                  # modeled counters only

        if w.kind == "builtin":
            _, payload = builtin_jobs(_sized(w, size), qd, size, seed)
        else:
            payload = np.random.default_rng([seed, 3]).integers(0, 256, MIB, dtype=np.uint8)
        eng = Engine(bdev, m, clock, Shadow(size // bdev.sector_nbytes), payload, stats_fn,
                     None if counts_requests(w) else progress)      # fio and traces move their bars per request
        return st, eng, stats_fn
    except BaseException:
        st.close()
        raise


def _interference(res: RunResult, m0: dict, m1: dict) -> dict:
    """The interference workload's figures: the reader's, with the writer's WA and its own
    figures under "writer"."""
    s = summarize(res, m0, m1, roles=("reader",))
    wr = summarize(res, m0, m1, roles=("writer",))
    s.update({k: wr[k] for k in ("write_amplification", "steady_write_amplification", "media_bytes_programmed")})
    wr.pop("jobs")
    s["writer"] = wr
    return s


def _round(eng: Engine, w: Workload, qd: int, cfg: Config, seed: int, stats_fn, progress,
           samples: int) -> tuple[RunResult, dict, dict]:
    """One measured run of the workload at `qd` on the device as it is (no prefill):
    (its RunResult, its summary, the modeled counters it moved)."""
    m, size = eng.m, eng.bdev.size
    base = stats_fn()
    if w.kind == "fio":
        s, res = _run_fio(eng, replace(w, samples=samples), cfg, seed, stats_fn, progress)
    elif w.kind == "interference":
        m0 = m.stats()
        res = eng.run(interference_jobs(w, size, seed, "measure"), samples=samples, series_total=w.nbytes)
        s = _interference(res, m0, m.stats())
    else:
        jobs = trace_jobs(w, progress) if w.kind == "trace" else builtin_jobs(w, qd, size, seed)[0]
        total = w.nbytes if w.op == "overwrite" else int(w.trace.nbytes.sum()) if w.kind == "trace" \
            else w.work_bytes(size)
        m0 = m.stats()
        res = eng.run(jobs, samples=samples if w.series else 0, series_total=total)
        s = summarize(res, m0, m.stats())
    moved = _delta(stats_fn(), base)
    _gc_figures(s, res, gc_moved(moved))
    return res, s, moved


def _gc_figures(s: dict, res: RunResult, gc: float | None) -> None:
    """Sectors GC moved in a run (None: the stack does not say) and the write
    amplification they alone make: (host sectors written + moved) / host sectors written,
    what the closed form of compare.theory predicts."""
    written = _written(res)
    s["gc_sectors_moved"] = gc
    s["gc_write_amplification"] = 1 + gc * SECTOR_NBYTES / written if gc is not None and written else None


def _tenant_groups(w: Workload) -> list[list]:
    """The groups of tenants that run at once: a fio file's stonewall groups of two jobs or
    more; the interference workload's writer and reader."""
    if w.kind == "interference":
        return [["writer", "reader"]]
    if w.kind != "fio":
        return []
    groups: dict[int, list] = {}
    for spec in w.fio_jobs:
        groups.setdefault(spec.phase, []).append(spec)
    return [g for g in groups.values() if len(g) > 1]


def _alone(eng: Engine, w: Workload, seed: int) -> dict:
    """Every tenant of a fio group run by itself on the device as it is, right after the
    group (or the steady-state window): {name: JobResult}. The interference workload's
    tenants are measured where it runs them."""
    out = {}
    for group in _tenant_groups(w) if w.kind == "fio" else ():
        for spec in group:
            jobs, _ = fio_jobs(w, seed, [spec])
            out[spec.label] = eng.run(jobs).jobs[0]
    return out


def _with_tenants(s: dict, res: RunResult, w: Workload, alone: dict) -> None:
    """Each tenant's figures alone, its GC-induced stalls and the fairness of its group."""
    groups = [[sp.label for sp in g] if w.kind == "fio" else g for g in _tenant_groups(w)]
    if not groups:
        return
    tenants.with_alone(s["jobs"], res, alone)
    s["fairness"] = tenants.fairness(s["jobs"], groups)


def run_one(cfg: Config, mode: str, w: Workload, qd: int, seed: int, progress=None) -> dict:
    """One workload at one queue depth on a fresh device of `mode`; its summary, series,
    latency CDFs, wear maps and the stack's parameters. A preconditioned workload
    (w.precondition fill or steady) runs its rounds at this queue depth alone and adds
    what they came to under "steady"."""
    if w.precondition != "none":
        out = _run_rounds(cfg, mode, replace(w, qds=(qd,)), seed, progress)
        one = out["qds"][str(qd)]
        one["steady"] = out["steady"]
        return one
    st, eng, stats_fn = _device(cfg, mode, w, qd, seed, progress)
    try:
        m = eng.m
        size = eng.bdev.size
        w = _sized(w, size)
        out = dict(params=stack_params(st))
        if w.kind == "interference":
            eng.prefill(size - size % MIB)
            m0 = m.stats()
            idle = eng.run(interference_jobs(w, size, seed, "idle"))
            m1 = m.stats()
            warm = eng.run(interference_jobs(w, size, seed, "warmup"))
            res, s, _ = _round(eng, w, qd, cfg, seed, stats_fn, progress, w.samples)
            s["idle"] = summarize(idle, m0, m1)
            s["idle"].pop("jobs")
            reader = next(j for j in res.jobs if j.role == "reader")
            out["cdf"] = dict(gc=_cdf(reader.lat_ns), idle=_cdf(idle.jobs[0].lat_ns))
            alone = {"reader": idle.jobs[0], "writer": warm.jobs[0]}
        else:
            if w.prefill:
                region = min(w.region or size, size)
                eng.prefill(region - region % w.bs)
            res, s, _ = _round(eng, w, qd, cfg, seed, stats_fn, progress, w.samples)
            lat = np.concatenate([j.lat_ns[j.op <= 1] for j in res.jobs])
            out["cdf"] = dict(all=_cdf(lat))
            alone = None
        s["final_stats"] = stats_fn()               # the run's, before any tenant runs alone
        out["summary"] = s
        out["series"] = res.series
        if w.series or w.kind in ("fio", "trace"):
            out["wear"] = wear(st)
        _with_tenants(s, res, w, alone if alone is not None else _alone(eng, w, seed))
        s["simulated_requests"] = eng.requests      # all the engine ran here: the pace's count
        return out
    finally:
        st.close()


def run_workload(cfg: Config, mode: str, w: Workload, seed: int, progress=None) -> dict:
    """Every queue depth of a workload on one stack: {"qds": {qd: run_one's dict}, "steady":
    what the rounds came to (None without precondition), "fob": the fresh-out-of-box run at
    the headline queue depth beside a preconditioned one (else None)}."""
    if w.precondition == "none":
        return dict(qds={str(qd): run_one(cfg, mode, w, qd, seed, progress) for qd in w.qds}, steady=None, fob=None)
    out = _run_rounds(cfg, mode, w, seed, progress)
    out["fob"] = run_one(cfg, mode, replace(w, precondition="none"), w.qds[0], seed, progress)
    return out


_COUNTERS = ("io_cmds", "dma_bytes_to_device", "dma_bytes_to_host", "media_bytes_programmed", "media_bytes_read")


def _round_seed(seed: int, r: int) -> int:
    """Round r's seed: its own random stream, the same for the same seed."""
    return int(np.random.SeedSequence([seed, r]).generate_state(1)[0])


def _written(res: RunResult) -> int:
    return sum(int(j.nbytes[j.op == 1].sum()) for j in res.jobs)


def _chain_series(parts) -> list:
    """Series of runs laid end to end, from [(series, duration ns, bytes written, counters
    moved)]: times, host bytes and counters carried on from run to run."""
    series, acc = [], {}
    elapsed = written = 0
    for pts, dur, wrote, moved in parts:
        for pt in pts:
            series.append({k: (v + acc.get(k, 0) if isinstance(v, (int, float)) and k != "done" else v)
                           for k, v in pt.items()} | dict(host_bytes=pt["host_bytes"] + written,
                                                          virtual_ns=pt["virtual_ns"] + elapsed))
        for k, v in moved.items():
            acc[k] = acc.get(k, 0) + v
        elapsed += dur
        written += wrote
    for pt in series:
        pt["done"] = min(1.0, pt["host_bytes"] / written) if written else 1.0
    return series


def _link(run) -> tuple:
    """What _chain_series keeps of a run (RunResult, summary, counters moved)."""
    res, _, moved = run
    return res.series, res.end_ns - res.start_ns, _written(res), moved


def _chain(runs) -> tuple[list, list]:
    """Runs laid end to end: (their jobs with times shifted, their series), from
    [(RunResult, summary, counters moved)]."""
    jobs, elapsed = [], 0
    for res, _, _ in runs:
        for j in res.jobs:
            jobs.append(replace(j, issue_ns=j.issue_ns + elapsed, done_ns=j.done_ns + elapsed))
        elapsed += res.end_ns - res.start_ns
    return jobs, _chain_series([_link(r) for r in runs])


def _pool(runs, w: Workload) -> tuple[RunResult, dict]:
    """The window's runs of one queue depth as one run: (RunResult, summary) -- latency
    over every request, throughput over their virtual time laid end to end, counters
    summed, tenants' figures over the whole window."""
    jobs, series = _chain(runs)
    res = RunResult(jobs, 0, sum(r.end_ns - r.start_ns for r, _, _ in runs), sum(r.wall_s for r, _, _ in runs),
                    sum(r.cpu_s for r, _, _ in runs), sum(r.verified_reads for r, _, _ in runs),
                    sum(r.mismatches for r, _, _ in runs), series, sum(r.rmw_writes for r, _, _ in runs),
                    sum(r.rmw_read_sectors for r, _, _ in runs), sum(r.partial_reads for r, _, _ in runs))
    zero = dict.fromkeys(_COUNTERS, 0)
    moved = dict(zero)
    for _, s, _ in runs:
        moved["io_cmds"] += s["nvme_cmds"]
        moved["dma_bytes_to_device"] += s["bus_bytes"]
        moved["media_bytes_programmed"] += s["media_bytes_programmed"]
        moved["media_bytes_read"] += s["media_bytes_read"]
    if w.kind == "interference":
        s = _interference(res, zero, moved)
        s["writer"]["steady_write_amplification"] = s["writer"]["write_amplification"]
    else:
        s = summarize(res, zero, moved)
    s["steady_write_amplification"] = s["write_amplification"]      # the window's own
    gcs = [r[1]["gc_sectors_moved"] for r in runs]
    _gc_figures(s, res, None if None in gcs else sum(gcs))
    last = runs[-1][1]
    if w.kind == "fio":
        s.update(phases=last["phases"], cut=last["cut"], ramp_cut=last["ramp_cut"], zones=_zone_shares(w, jobs),
                 estimate=last["estimate"])
    return res, s


def _brief(s: dict) -> dict:
    return {k: s.get(k) for k in ("throughput_mib_s", "iops", "lat_p50_us", "lat_p99_us", "lat_p999_us",
                                  "write_amplification")}


def _run_rounds(cfg: Config, mode: str, w: Workload, seed: int, progress=None) -> dict:
    """A preconditioned workload on one fresh device (compare.steady): twice the capacity in
    128 KiB sequential writes, then rounds -- the workload once at each queue depth --
    until the steady-state window holds on the headline queue depth's `w.track` (steady)
    or after one round (fill), or at the round limit. Each queue depth's figures are
    taken over the window; every tenant of a group is then measured alone."""
    st, eng, stats_fn = _device(cfg, mode, w, w.qds[0], seed, progress)
    try:
        m = eng.m
        size = eng.bdev.size
        m0, t0 = m.stats(), eng.now
        for _ in range(steady.WIPC_PASSES):
            eng.prefill(size - size % SECTOR_NBYTES, chunk=steady.WIPC_BS)
        m1 = m.stats()
        wipc = dict(bytes=steady.WIPC_PASSES * (size - size % SECTOR_NBYTES), virtual_s=(eng.now - t0) / 1e9,
                    media_bytes_programmed=m1.get("media_bytes_programmed", 0) - m0.get("media_bytes_programmed", 0))
        rw = _sized(w, size)
        if w.round_capacity:
            rw = replace(rw, nbytes=int(w.round_capacity * size) // w.bs * w.bs)
        limit = 1 if w.precondition == "fill" else w.max_rounds
        samples = max(4, w.samples // steady.WINDOW)
        rounds, values, briefs, links = [], [], [], []     # rounds: the last WINDOW, whole
        for r in range(1, limit + 1):
            rs = _round_seed(seed, r)
            rounds.append({qd: _round(eng, rw, qd, cfg, rs, stats_fn, progress, samples) for qd in w.qds})
            rounds = rounds[-steady.WINDOW:]
            head = rounds[-1][w.qds[0]]
            values.append(steady.tracked(head[1], w.track))
            briefs.append(_brief(head[1]))
            links.append(_link(head))
            if w.precondition == "steady" and len(values) >= steady.WINDOW:
                chk = steady.check(values[-steady.WINDOW:])
                if chk is not None and chk.holds:
                    break
        if w.precondition == "steady":
            info = steady.verdict(values, limit)
        else:
            info = dict(reached=False, round=1, window=[1, 1], limit_hit=False, max_rounds=1)
        info.update(precondition=w.precondition, track=w.track, qd=w.qds[0], values=values, rounds=len(values),
                    wipc=wipc, per_round=briefs)
        first, last = info["window"]
        window = rounds[len(rounds) - (last - first + 1):]         # the window closes at the last round
        qds, pooled = {}, {}
        for qd in w.qds:
            res, s = pooled[qd] = _pool([r[qd] for r in window], w)
            lat = np.concatenate([j.lat_ns[j.op <= 1] for j in res.jobs
                                  if w.kind != "interference" or j.role == "reader"])
            qds[str(qd)] = dict(params=stack_params(st), summary=s, series=[],
                                cdf=dict(gc=_cdf(lat)) if w.kind == "interference" else dict(all=_cdf(lat)))
        head = qds[str(w.qds[0])]
        res, s = pooled[w.qds[0]]
        if w.series or w.kind in ("fio", "trace"):          # every round, to show the way there
            head["series"] = _chain_series(links)
            head["wear"] = wear(st)
        s["final_stats"] = stats_fn()                       # the rounds', before any tenant runs alone
        rs = _round_seed(seed, 0)
        if w.kind == "interference":
            m2 = m.stats()
            idle = eng.run(interference_jobs(rw, size, rs, "idle"))
            s["idle"] = summarize(idle, m2, m.stats())
            s["idle"].pop("jobs")
            head["cdf"]["idle"] = _cdf(idle.jobs[0].lat_ns)
            writer = interference_jobs(rw, size, rs, "measure")[0]
            alone = {"reader": idle.jobs[0], "writer": eng.run([writer]).jobs[0]}
        else:
            alone = _alone(eng, rw, rs)
        _with_tenants(s, res, w, alone)
        s["simulated_requests"] = eng.requests              # all the engine ran here: the pace's count
        return dict(qds=qds, steady=info, fob=None)
    finally:
        st.close()


_PHASE_KEYS = ("requests", "bytes_written", "bytes_read", "virtual_s", "throughput_mib_s", "iops", "lat_p50_us",
               "lat_p99_us", "lat_p999_us", "read_p999_us", "write_amplification", "media_bytes_programmed",
               "media_bytes_read", "nvme_cmds", "bus_bytes", "rmw_writes", "rmw_read_bytes", "partial_reads",
               "verified_reads", "mismatches")


def _run_fio(eng: Engine, w: Workload, cfg: Config, seed: int, stats_fn, progress) -> tuple[dict, RunResult]:
    """A fio job file on one stack: its stonewall groups one after the other (each after
    its ramp_time run, unmeasured), with one flush at the end. The summary covers the
    measured runs laid end to end; `phases` has each group's own figures, `cut` the jobs
    the request cap ended, `zones` the measured share of each zone of a zoned job."""
    m = eng.m
    ests = {e.label: e for e in estimates(w, cfg)}
    groups: dict[int, list] = {}
    for spec in w.fio_jobs:
        groups.setdefault(spec.phase, []).append(spec)
    phases = [groups[k] for k in sorted(groups)]
    keys = ("io_cmds", "dma_bytes_to_device", "dma_bytes_to_host", "media_bytes_programmed", "media_bytes_read")
    moved = dict.fromkeys(keys, 0)
    acc: dict = {}                                    # measured counter deltas so far (series)
    jobs, series, phase_out, cut, ramp_cut = [], [], [], [], []
    elapsed = written = 0
    wall = cpu = 0.0
    verified = mismatches = 0
    rmw = [0, 0, 0]
    for p, specs in enumerate(phases):
        ramped = [sp for sp in specs if sp.ramp_ns]
        if ramped:
            rjobs, rstreams = fio_jobs(w, seed, ramped, ests, ramp=True, progress=progress)
            eng.run(rjobs, flush=False)
            for st in rstreams:
                st.finish()
                ramp_cut += [st.spec.label] if st.cut else []
        fjobs, streams = fio_jobs(w, seed, specs, ests, progress=progress)
        est_w = sum(ests[sp.label].requests * sp.mean_request_bytes
                    * ((1 - sp.rwmixread / 100) if len(sp.directions) > 1 else sp.directions[0] == "write")
                    for sp in specs)
        m0, base = m.stats(), stats_fn()
        res = eng.run(fjobs, samples=w.samples, series_total=max(1, int(est_w)), flush=p == len(phases) - 1)
        m1 = m.stats()
        for st in streams:
            st.finish()
            cut += [st.spec.label] if st.cut else []
        ph = summarize(res, m0, m1)
        phase_out.append(dict(jobs=[sp.label for sp in specs], **{k: ph[k] for k in _PHASE_KEYS}))
        for pt in res.series:
            series.append({k: (v + acc.get(k, 0) if isinstance(v, (int, float)) and k not in ("done",) else v)
                           for k, v in pt.items()} | dict(host_bytes=pt["host_bytes"] + written,
                                                          virtual_ns=pt["virtual_ns"] + elapsed))
        for k, v in _delta(stats_fn(), base).items():
            acc[k] = acc.get(k, 0) + v
        for k in keys:
            moved[k] += m1.get(k, 0) - m0.get(k, 0)
        for j in res.jobs:
            jobs.append(replace(j, issue_ns=j.issue_ns + elapsed, done_ns=j.done_ns + elapsed))
        elapsed += res.end_ns - res.start_ns
        written += sum(int(j.nbytes[j.op == 1].sum()) for j in res.jobs)
        wall, cpu = wall + res.wall_s, cpu + res.cpu_s
        verified, mismatches = verified + res.verified_reads, mismatches + res.mismatches
        rmw = [rmw[0] + res.rmw_writes, rmw[1] + res.rmw_read_sectors, rmw[2] + res.partial_reads]
    for pt in series:
        pt["done"] = min(1.0, pt["host_bytes"] / written) if written else 1.0
    res = RunResult(jobs, 0, elapsed, wall, cpu, verified, mismatches, series, *rmw)
    s = summarize(res, dict.fromkeys(keys, 0), moved)
    s.update(phases=phase_out, cut=cut, ramp_cut=ramp_cut, zones=_zone_shares(w, jobs),
             estimate={lab: e.requests for lab, e in ests.items()})
    return s, res


def _zone_shares(w: Workload, jobs: list) -> dict:
    """For each zoned job: per direction, [access % asked, requests measured] per zone."""
    out = {}
    by_label = {j.name: j for j in jobs}
    for spec in w.fio_jobs:
        j = by_label.get(spec.label)
        if j is None or not spec.zones:
            continue
        per = {}
        for d, code in (("read", 0), ("write", 1), ("trim", 2)):
            zb = spec.zone_blocks(d)
            mine = j.op == code
            if not zb or not mine.any():
                continue
            blk = (j.offset[mine] - spec.region_offset) // spec.grain
            per[d] = [[a, int(np.count_nonzero((blk >= lo) & (blk < hi)))] for a, lo, hi in zb]
        out[spec.label] = per
    return out


# ---------------------------------------------------------------- the whole plan

def _bar(total: int, progress: bool, desc: str, unit: str = "B"):
    if not progress:
        return None
    from tqdm import tqdm
    if unit == "B":
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, dynamic_ncols=True)
    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, dynamic_ncols=True)


def _prefill_bytes(w: Workload, cap: int) -> int:
    """What a fresh run writes before its workload (the interference workload's work_bytes
    counts its own)."""
    return (w.region or cap) if w.prefill and w.kind != "interference" else 0


def counts_requests(w: Workload) -> bool:
    """fio and trace workloads count their progress in requests, built-ins in bytes."""
    return w.kind in ("fio", "trace")


def work(w: Workload, cfg: Config, fresh: bool = True) -> int:
    """A workload's share of a progress bar at one queue depth on one stack: estimated
    requests (ramps included) for fio and traces, bytes (prefill included) for built-ins.
    A preconditioned workload: its preconditioning, the fewest rounds that can close the
    window (a round limit below it: the limit; a round runs on the device as it is, with
    no prefill), what runs after the window (the interference workload's reader and
    writer alone) and, when `fresh` (run_workload's; a sweep's run_one has none), the
    fresh-out-of-box run beside them (at one queue depth) -- more rounds move the bar past
    its end."""
    cap = capacity(cfg)
    if counts_requests(w):
        one = per_round = sum(e.requests + e.ramp for e in estimates(w, cfg))
        pre = after = 0
    else:
        one = w.work_bytes(cap) + _prefill_bytes(w, cap)
        per_round = int(w.round_capacity * cap) // w.bs * w.bs if w.round_capacity else w.work_bytes(cap)
        pre = steady.WIPC_PASSES * cap
        after = w.idle_reads * 4096 + per_round if w.kind == "interference" else 0
    if w.precondition == "none":
        return one
    rounds = round_counts(w.precondition, w.max_rounds)[0]
    return int(per_round * rounds + (pre + after + (one if fresh else 0)) / len(w.qds))


def round_counts(precondition: str, max_rounds: int) -> tuple[int, int]:
    """The fewest and the most rounds a workload runs after preconditioning (none: 0, 0):
    steady state needs a whole window, and stops at the round limit."""
    if precondition == "none":
        return 0, 0
    if precondition == "fill":
        return 1, 1
    return min(steady.WINDOW, max_rounds), max_rounds


def _requests_range(w: Workload, ests: list, cap: int, fresh: bool) -> tuple[int, int]:
    """Requests a request-counting workload makes on one stack, fewest and most, from its
    jobs' estimates: a pass at every queue depth and each tenant of a group once more
    alone, each run ending in a flush; with preconditioning, 128 KiB writes over twice
    the capacity (and their flushes), the rounds and, when `fresh`, the fresh-out-of-box
    run beside them (tenants alone again)."""
    grouped = {sp.label for g in _tenant_groups(w) for sp in g}
    one = sum(e.requests + e.ramp for e in ests) + 1
    alone = sum(e.requests + 1 for e in ests if e.label in grouped)
    lo, hi = round_counts(w.precondition, w.max_rounds)
    per_round = one * len(w.qds)
    if not hi:
        return per_round + alone, per_round + alone
    wipc = steady.WIPC_PASSES * (-(-cap // steady.WIPC_BS) + 1)
    fob = one + alone if fresh else 0
    return wipc + per_round * lo + alone + fob, wipc + per_round * hi + alone + fob


def estimate_lines(plan: Plan, nstacks: int, workers: int = 1, fresh: bool = True) -> list[str]:
    """What the run is expected to do and take, before it starts: each fio job's
    estimated requests (and which the cap cuts), what the run makes of them (queue
    depths, tenants alone, preconditioning and its rounds: a range, as steady state takes
    from a window to the round limit) and the wall time that takes at the engine's pace
    on `workers` processes (a sweep's runs share them; `nstacks` counts every run; a
    sweep's runs have no fresh-out-of-box run: `fresh` False); a line of warning when that
    can be over an hour."""
    out, lo, hi, groups = [], 0, 0, False
    cap = capacity(plan.config)
    for w in plan.workloads:
        if not counts_requests(w):
            continue
        groups = groups or bool(_tenant_groups(w))
        ests = estimates(w, plan.config)
        n = sum(e.requests + e.ramp for e in ests)
        a, b = _requests_range(w, ests, cap, fresh)
        lo, hi = lo + a, hi + b
        jobs = ", ".join(f"{e.label} {e.requests:,}" + (f" (+{e.ramp:,} ramp)" if e.ramp else "")
                         + (f" of ~{e.uncapped:,}" if e.cut else "") for e in ests[:8])
        out.append(f"{w.name}: ~{n:,} requests per stack ({jobs}{', ...' if len(ests) > 8 else ''})")
        cut = [e.label for e in ests if e.cut]
        if cut:
            out.append(f"{w.name}: capped at {w.max_requests:,} requests per job: "
                       + ", ".join(cut[:8]) + (" ..." if len(cut) > 8 else "") + " cut short")
    if not out:
        return out
    par = max(1, min(workers, nstacks))
    secs_lo, secs_hi = (n * nstacks / WALL_REQUESTS_PER_S / par for n in (lo, hi))
    on = f" on {par} worker processes" if par > 1 else ""
    pace = f"at ~{WALL_REQUESTS_PER_S:,} requests/s each"
    parts = []
    if plan.precondition != "none":
        rlo, rhi = round_counts(plan.precondition, plan.max_rounds)
        parts.append(f"precondition {plan.precondition}: twice the capacity in {steady.WIPC_BS // 1024} KiB writes, "
                     + (f"{rlo} round" if rhi == 1 else f"{rlo} to {rhi} rounds"))
    if groups:
        parts.append("each tenant of a group once more alone")
    if plan.precondition != "none" and fresh:
        parts.append("the fresh-out-of-box run")
    span = f"~{lo * nstacks:,}" if lo == hi else f"~{lo * nstacks:,} to ~{hi * nstacks:,}"
    took = _duration(secs_lo) if lo == hi else f"{_duration(secs_lo)} to {_duration(secs_hi)}"
    what = f" ({'; '.join(parts)})" if parts else ""
    out.append(f"estimate: {span} requests on {nstacks} stack(s){what}, about {took}{on} {pace}")
    if secs_lo > 3600:
        out.append(f"note: this run is estimated to take about {_duration(secs_lo)}; --quick caps each job at "
                   f"{QUICK_JOB_REQUESTS:,} requests, --max-requests N at N")
    elif secs_hi > 3600:
        out.append(f"note: this run may take up to {_duration(secs_hi)} if steady state takes every round; "
                   f"--max-rounds, --precondition fill or none, and --max-requests N shorten it")
    return out


def _duration(secs: float) -> str:
    if secs < 90:
        return f"{secs:.0f} s"
    if secs < 5400:
        return f"{secs / 60:.0f} min"
    if secs < 3 * 86400:
        return f"{secs / 3600:.1f} h"
    return f"{secs / 86400:.1f} days"


def precondition_info(plan: Plan) -> dict:
    """results.json `precondition`: how every figure of the run was preconditioned."""
    return dict(mode=plan.precondition, max_rounds=plan.max_rounds, window=steady.WINDOW,
                excursion=steady.EXCURSION, slope_excursion=steady.SLOPE_EXCURSION,
                wipc_passes=steady.WIPC_PASSES, wipc_bs=steady.WIPC_BS,
                plan_default=plan.precondition == ("none" if plan.name == "quick" else "steady"))


def run_plan(plan: Plan, stacks=stacks_.DEFAULT, seed: int = 1, bar=None) -> dict:
    """Every workload of the plan at every queue depth on every stack (mode strings; no
    files). Results are keyed by the stacks' short names (stacks.names)."""
    cfg = plan.config
    named = stacks_.names(stacks)
    results = dict(plan=plan.name, seed=seed, config=cfg.to_dict(), geometry=asdict(plan.geometry),
                   capacity_bytes=capacity(cfg), modes={n: m for m, n in named.items()},
                   precondition=precondition_info(plan), stacks={}, series={}, cdf={}, wear={}, params={},
                   steady={}, fob={},
                   workloads={w.name: dict(title=w.title, kind=w.kind, qds=list(w.qds), notes=list(w.notes),
                                           max_requests=w.max_requests, track=w.track) for w in plan.workloads})
    with _older_objects_frozen():
        for mode, name in named.items():
            res = results["stacks"][name] = {}
            results["series"][name], results["cdf"][name], results["wear"][name] = {}, {}, {}
            for w in plan.workloads:
                if bar is not None:
                    bar.set_description(f"{name}: {w.name}")
                out = run_workload(cfg, mode, w, seed, progress=bar.update if bar is not None else None)
                res[w.name] = {}
                for qd, one in out["qds"].items():
                    res[w.name][qd] = one["summary"]
                    results["cdf"][name].setdefault(w.name, {})[qd] = one["cdf"]
                    results["params"].setdefault(name, one["params"])
                    if one["series"]:
                        results["series"][name][w.name] = one["series"]
                    if "wear" in one:
                        results["wear"][name][w.name] = one["wear"]
                if out["steady"] is not None:
                    results["steady"].setdefault(name, {})[w.name] = out["steady"]
                if out["fob"] is not None:
                    fob = dict(out["fob"]["summary"])
                    fob.pop("final_stats", None)
                    results["fob"].setdefault(name, {})[w.name] = fob
    return results


@contextlib.contextmanager
def _older_objects_frozen():
    """Leave what exists before the runs (modules, the plan) out of the collections that
    free each device before the next opens (_open): a full collection scans them all,
    ~5-10 ms a device. Unfrozen after, so the collector sees them again."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def plan_work(plan: Plan, nstacks: int) -> tuple[int, str]:
    """The progress bar's total and unit: requests when any workload counts requests."""
    unit = "req" if any(counts_requests(w) for w in plan.workloads) else "B"
    return nstacks * sum(work(w, plan.config) * len(w.qds) for w in plan.workloads), unit


def run_compare(plan: Plan, outdir, stacks=stacks_.DEFAULT, progress=True, echo=print, seed: int = 1,
                sweeps=(), workers: int = 1, cluster: str | None = None, cache=None) -> dict:
    """Run the plan (or, with `sweeps`, its sweep workload at every grid point) on every
    stack (mode strings); write results.json, report.md and the PNG figures to `outdir`.
    A sweep's runs go to `workers` processes (or the Dask cluster at `cluster`), and to
    and from the run cache in directory `cache` (None: no cache)."""
    from . import report            # here: the plots' matplotlib only when a report is written
    outdir = Path(outdir)
    points = sweep_points(plan.config, sweeps) if sweeps else None      # ConfigError before any work
    outdir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    counted = plan.with_workloads([plan.sweep_workload]) if points else plan      # a sweep runs its one workload
    for line in estimate_lines(counted, len(stacks) * max(1, len(points or ())), workers if points and not cluster else 1,
                               fresh=points is None):
        echo(line)
    if points is not None:
        results = run_sweep(plan, points, stacks, seed, progress, workers=workers, cluster=cluster,
                            cache=sweep_.RunCache(cache) if cache is not None else None, echo=echo)
    else:
        total, unit = plan_work(plan, len(stacks))
        bar = _bar(total, progress, "compare", unit)
        try:
            results = run_plan(plan, stacks, seed, bar)
        finally:
            if bar is not None:
                bar.close()
        results["speed"] = sweep_.speed(sweep_.simulated(results), time.perf_counter() - t_start, 1)
    results["wall_s"] = time.perf_counter() - t_start
    results["theory"] = theory.of(results) if points is None else None
    with open(outdir / "results.json", "w") as f:
        json.dump(results, f, indent=1, default=float)
    report.write(results, outdir)
    echo(report.table(results))
    echo(f"\nreport: {outdir / 'report.md'} (wall time {results['wall_s']:.0f} s; {speed_line(results)})")
    return results


# ---------------------------------------------------------------- sweeps

def run_sweep(plan: Plan, points, stacks, seed: int, progress: bool, **how) -> dict:
    """The plan's sweep workload at each grid point on each stack (mode strings), each run
    on a fresh device by run_one: sweep.run_grid runs them (`how`: workers, cluster,
    cache, echo)."""
    return sweep_.run_grid(plan, points, stacks, seed, run_one, functools.partial(work, fresh=False),
                           progress=progress, **how)
