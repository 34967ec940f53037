"""Runs the plan: every workload at every queue depth on a fresh device per stack, timing
model on, one configuration for the device and the FTLs; and sweeps of configuration
keys. Turns the engine's per-request records into the figures of the report.

A stack is any mode of oxhost.stack (pblk, appnvm, FILE.py:Class@host|device). Every one
is measured the same way, through what any block device answers -- stats(), ftl_params(),
block_valid_sectors(), host_buffer() (oxhost.blockdev) -- and the Machine's lab
instruments (media, bus and command counters, erase counts, the device-side FTL's own
report); never through one FTL's internals."""
from __future__ import annotations

import gc
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..config import SECTOR_NBYTES, Config
from ..stack import parse_mode
from . import stacks as stacks_
from . import sweep as sweep_
from .engine import Engine, RunResult, _delta
from .hostclock import HostClock
from .results import GIB, MEASURED, speed_line
from .sweep import sweep_points
from .stamps import Shadow
from .workloads import (MIB, WALL_REQUESTS_PER_S, Workload, builtin_jobs, estimates, fio_jobs, interference_jobs,
                        trace_jobs)

__all__ = ["MEASURED", "Plan", "probe", "run_compare", "run_one", "run_plan", "run_sweep"]

QUICK_GEOMETRY = dict(nchannels=2, nluns=2, nblocks=32, npages=32)
QUICK_JOB_REQUESTS = 5000       # --quick: the budget of requests of each fio job
# What a device-side FTL decided, from its own report (Machine.stats()["ftl"], a lab
# instrument: the host sees only a namespace)
DEVICE_PARAMS = ("ftl", "ftl_version", "gc_policy", "gc_reserve_blocks", "gc_low_blocks", "write_buffer_units",
                 "wear_leveling", "checkpoint_every_units", "total_blocks")


@dataclass
class Plan:
    """What to run: a configuration (geometry included) and workloads; `sweep_workload`
    is the one a sweep runs at each grid point."""
    name: str
    config: Config
    workloads: list = field(default_factory=list)
    sweep_workload: Workload | None = None

    @property
    def geometry(self):
        return self.config.to_geometry()

    @classmethod
    def quick(cls, config: Config | None = None, qds=None) -> Plan:
        cfg = _with_geometry(config or Config.default(), QUICK_GEOMETRY)
        return cls("quick", cfg, *_builtin(cfg, scale=0.02, qds=qds))

    @classmethod
    def full(cls, config: Config | None = None, qds=None) -> Plan:
        cfg = config or Config.default()
        return cls("full", cfg, *_builtin(cfg, scale=1.0, qds=qds))

    def with_workloads(self, workloads: list) -> Plan:
        """The same configuration with other workloads (a fio job file, a trace); a sweep
        then runs the first of them."""
        return replace(self, workloads=list(workloads), sweep_workload=workloads[0])


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
                         nbytes=2 * cap, per_capacity=2.0, prefill=True)
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
                 warmup=0.5, writer_qd=8, idle_reads=max(500, nops // 8), qds=(1,)),
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
    out["jobs"] = {j.name: dict(role=j.role, qd=j.qd, requests=int(j.op.size),
                                throughput_mib_s=int(j.nbytes[j.op <= 1].sum()) / MIB / vs if vs else 0.0,
                                **_lat("lat_", j.lat_ns[j.op <= 1])) for j in res.jobs}
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

def run_one(cfg: Config, mode: str, w: Workload, qd: int, seed: int, progress=None) -> dict:
    """One workload at one queue depth on a fresh device of `mode`; its summary, series,
    latency CDFs, wear maps and the stack's parameters."""
    st = _open(cfg, mode)
    try:
        bdev, m = st.blockdev, st.machine
        size = bdev.size
        if w.per_capacity:
            w = replace(w, nbytes=int(w.per_capacity * size) // w.bs * w.bs)
        clock = HostClock(cfg.host, m, bdev, host_ftl=parse_mode(mode).kind == "ftl@host")

        def stats_fn():
            return {k: v for k, v in {**_flat(m.stats(), "dev."), **_flat(bdev.stats(), "host.")}.items()
                    if not k.endswith(("seconds", "cpu_s"))}                  # modeled counters only

        out = dict(params=stack_params(st))
        if w.kind == "builtin":
            jobs, payload = builtin_jobs(w, qd, size, seed)
        else:
            payload = np.random.default_rng([seed, 3]).integers(0, 256, MIB, dtype=np.uint8)
        counted = w.kind in ("fio", "trace")            # their bars count requests, not bytes
        eng = Engine(bdev, m, clock, Shadow(size // bdev.sector_nbytes), payload, stats_fn,
                     None if counted else progress)
        if w.kind == "fio":
            s, res = _run_fio(eng, w, cfg, seed, stats_fn, progress)
            lat = np.concatenate([j.lat_ns[j.op <= 1] for j in res.jobs])
            out["cdf"] = dict(all=_cdf(lat))
        elif w.kind == "interference":
            eng.prefill(size - size % MIB)
            m0 = m.stats()
            idle = eng.run(interference_jobs(w, size, seed, "idle"))
            eng.run(interference_jobs(w, size, seed, "warmup"))
            m1 = m.stats()
            res = eng.run(interference_jobs(w, size, seed, "measure"), samples=w.samples, series_total=w.nbytes)
            m2 = m.stats()
            s = summarize(res, m1, m2, roles=("reader",))
            s.update({k: v for k, v in summarize(res, m1, m2, roles=("writer",)).items()
                      if k in ("write_amplification", "steady_write_amplification", "media_bytes_programmed")})
            s["writer"] = summarize(res, m1, m2, roles=("writer",))
            s["writer"].pop("jobs")
            s["idle"] = summarize(idle, m0, m1)
            s["idle"].pop("jobs")
            reader = next(j for j in res.jobs if j.role == "reader")
            out["cdf"] = dict(gc=_cdf(reader.lat_ns), idle=_cdf(idle.jobs[0].lat_ns))
        else:
            if w.prefill:
                region = min(w.region or size, size)
                eng.prefill(region - region % w.bs)
            if w.kind == "trace":
                jobs = trace_jobs(w, progress)
            total = w.nbytes if w.op == "overwrite" else int(w.trace.nbytes.sum()) if w.kind == "trace" \
                else w.work_bytes(size)
            m0 = m.stats()
            res = eng.run(jobs, samples=w.samples if w.series else 0, series_total=total)
            m1 = m.stats()
            s = summarize(res, m0, m1)
            lat = np.concatenate([j.lat_ns[j.op <= 1] for j in res.jobs])
            out["cdf"] = dict(all=_cdf(lat))
        s["final_stats"] = stats_fn()
        s["simulated_requests"] = eng.requests
        out["summary"] = s
        out["series"] = res.series
        if w.series or w.kind in ("fio", "trace"):
            out["wear"] = wear(st)
        return out
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
    if w.kind == "interference":
        return cap
    return (w.region or cap) if w.prefill else 0


def counts_requests(w: Workload) -> bool:
    """fio and trace workloads count their progress in requests, built-ins in bytes."""
    return w.kind in ("fio", "trace")


def work(w: Workload, cfg: Config) -> int:
    """A workload's share of a progress bar at one queue depth on one stack: estimated
    requests (ramps included) for fio and traces, bytes (prefill included) for built-ins."""
    if counts_requests(w):
        return sum(e.requests + e.ramp for e in estimates(w, cfg))
    cap = capacity(cfg)
    return w.work_bytes(cap) + _prefill_bytes(w, cap)


def estimate_lines(plan: Plan, nstacks: int) -> list[str]:
    """What the run is expected to do and take, before it starts: each fio job's
    estimated requests (and which the cap cuts), and the wall time they take at the
    engine's pace; a line of warning when that is over an hour."""
    out, total = [], 0
    for w in plan.workloads:
        if not counts_requests(w):
            continue
        ests = estimates(w, plan.config)
        n = sum(e.requests + e.ramp for e in ests)
        total += n
        jobs = ", ".join(f"{e.label} {e.requests:,}" + (f" (+{e.ramp:,} ramp)" if e.ramp else "")
                         + (f" of ~{e.uncapped:,}" if e.cut else "") for e in ests[:8])
        out.append(f"{w.name}: ~{n:,} requests per stack ({jobs}{', ...' if len(ests) > 8 else ''})")
        cut = [e.label for e in ests if e.cut]
        if cut:
            out.append(f"{w.name}: capped at {w.max_requests:,} requests per job: "
                       + ", ".join(cut[:8]) + (" ..." if len(cut) > 8 else "") + " cut short")
    if not out:
        return out
    secs = total * nstacks / WALL_REQUESTS_PER_S
    out.append(f"estimate: ~{total * nstacks:,} requests on {nstacks} stack(s), about {_duration(secs)} "
               f"at ~{WALL_REQUESTS_PER_S:,} requests/s")
    if secs > 3600:
        out.append(f"note: this run is estimated to take about {_duration(secs)}; --quick caps each job at "
                   f"{QUICK_JOB_REQUESTS:,} requests, --max-requests N at N")
    return out


def _duration(secs: float) -> str:
    if secs < 90:
        return f"{secs:.0f} s"
    if secs < 5400:
        return f"{secs / 60:.0f} min"
    if secs < 3 * 86400:
        return f"{secs / 3600:.1f} h"
    return f"{secs / 86400:.1f} days"


def run_plan(plan: Plan, stacks=stacks_.DEFAULT, seed: int = 1, bar=None) -> dict:
    """Every workload of the plan at every queue depth on every stack (mode strings; no
    files). Results are keyed by the stacks' short names (stacks.names)."""
    cfg = plan.config
    named = stacks_.names(stacks)
    results = dict(plan=plan.name, seed=seed, config=cfg.to_dict(), geometry=asdict(plan.geometry),
                   capacity_bytes=capacity(cfg), modes={n: m for m, n in named.items()},
                   stacks={}, series={}, cdf={}, wear={}, params={},
                   workloads={w.name: dict(title=w.title, kind=w.kind, qds=list(w.qds), notes=list(w.notes),
                                           max_requests=w.max_requests) for w in plan.workloads})
    for mode, name in named.items():
        res = results["stacks"][name] = {}
        results["series"][name], results["cdf"][name], results["wear"][name] = {}, {}, {}
        for w in plan.workloads:
            res[w.name] = {}
            for qd in w.qds:
                if bar is not None:
                    bar.set_description(f"{name}: {w.name} QD{qd}")
                one = run_one(cfg, mode, w, qd, seed, progress=bar.update if bar is not None else None)
                res[w.name][str(qd)] = one["summary"]
                results["cdf"][name].setdefault(w.name, {})[str(qd)] = one["cdf"]
                results["params"].setdefault(name, one["params"])
                if one["series"]:
                    results["series"][name][w.name] = one["series"]
                if "wear" in one:
                    results["wear"][name][w.name] = one["wear"]
    return results


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
    for line in estimate_lines(plan, len(stacks) * max(1, len(points or ()))):
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
    return sweep_.run_grid(plan, points, stacks, seed, run_one, work, progress=progress, **how)
