"""What `ox compare` runs: workload descriptions (the built-in set, fio job files, block
traces) turned into jobs -- request streams with a queue depth -- for the engine (stamps.py
checks every read against what was written)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np

from .steady import MAX_ROUNDS

MIB = 1 << 20
OPS = ("read", "write", "trim", "flush")


@dataclass
class Workload:
    """One workload of a plan; each queue depth in `qds` runs on a fresh device.

    kind "builtin": one stream of `op` ("seqwrite", "randwrite", "randread", "mixed",
    "overwrite") of `bs`-byte requests, `jobs` clones of it (each clone its own seed) at
    each queue depth; `nbytes` (sequential / overwrite; `per_capacity` x the device's
    capacity when that is set, so a sweep of ftl.op keeps it in proportion) or `nops`
    (random) per clone;
    `region` bytes of the LBA space (0: all); `prefill` writes the region first (not
    measured); the overwrite samples WA and GC counters `samples` times.
    kind "interference": the volume is filled, then a writer (random `bs` overwrite at
    queue depth `writer_qd`) runs alone for `warmup` x capacity so GC is busy, then for
    `nbytes` more beside a reader (4 KiB random reads at QD 1); a reader alone first
    (`idle_reads`) gives the same reads without GC.
    kind "fio": the jobs of a fio job file (`fio_jobs`, oxhost.compare.fiojob.JobSpec), one
    stonewall group after the other, the jobs of a group at once, each at its own iodepth
    (`qds` holds the largest, as its key); `max_requests` caps each job (the --quick
    budget; 0: no cap); `notes` says what the job file's parse ignored or scaled.
    kind "trace": a block trace (`trace`, oxhost.compare.traces.Trace) replayed `replay`
    ("timed": at its issue times, at most `qds[0]` requests in flight; "afap": as fast as
    possible at queue depth `qds[0]`).

    Every kind: `precondition` (compare.steady) -- "none": fresh out of the box, as above;
    "fill": twice the capacity in 128 KiB sequential writes first (prefill then skipped),
    then one round; "steady": the same, then rounds until SNIA PTS's steady-state window
    holds on `track` (a dotted key of the round's summary) or `max_rounds` is reached. A
    round runs the workload once at each queue depth, a per_capacity workload
    `round_capacity` x the capacity per round instead.
    """

    name: str
    title: str
    op: str = ""
    bs: int = 4096
    nbytes: int = 0
    nops: int = 0
    read_pct: int = 0
    region: int = 0
    prefill: bool = False
    samples: int = 40
    qds: tuple = (1,)
    jobs: int = 1
    kind: str = "builtin"
    writer_qd: int = 8
    warmup: float = 0.0
    idle_reads: int = 0
    fio_jobs: list = field(default_factory=list)
    trace: object = None
    replay: str = "timed"
    per_capacity: float = 0.0   # when set, nbytes is this many times the device's capacity
    max_requests: int = 0
    notes: list = field(default_factory=list)
    precondition: str = "none"
    max_rounds: int = MAX_ROUNDS
    track: str = "throughput_mib_s"
    round_capacity: float = 0.0

    @property
    def series(self) -> bool:
        """Whether WA and GC counters are sampled over time."""
        return self.op == "overwrite" or self.kind in ("interference", "fio", "trace")

    def work_bytes(self, capacity: int) -> int:
        """Bytes moved at one queue depth (for progress bars) by a built-in workload."""
        if self.kind == "interference":
            return int((self.warmup + 1) * capacity) + self.nbytes + self.idle_reads * 4096
        if self.kind in ("fio", "trace"):
            raise ValueError(f"{self.kind} workloads count requests: see estimates()")
        nbytes = int(self.per_capacity * capacity) if self.per_capacity else self.nbytes
        per = (nbytes - nbytes % self.bs) if self.op in ("seqwrite", "overwrite") else self.nops * self.bs
        return per * self.jobs


@dataclass
class Job:
    """One request stream for the engine: `requests` yields (earliest issue time relative
    to the job's start or None, op, byte offset, bytes); at most `qd` requests are in
    flight. `stop_with`: the index of a job whose end also ends this one (a reader beside
    a writer). The job starts `start_ns` after the run; `runtime_ns`: no request is
    issued after its start + runtime_ns (0: no bound). `thinktime_*`: fio's thinktime
    (engine.Engine._think); `exitall`: its end ends every job of the run. `on_issue` is
    called with the time since the job's start of each request it issues."""

    name: str
    role: str
    qd: int
    requests: Iterator
    stop_with: int | None = None
    runtime_ns: int = 0
    series: bool = False
    start_ns: int = 0
    thinktime_ns: int = 0
    thinktime_blocks: int = 1
    thinktime_issue: bool = False
    thinktime_iotime_ns: int = 0
    exitall: bool = False
    on_issue: Callable[[int], None] | None = None


# ---------------------------------------------------------------- request streams

def _builtin_stream(w: Workload, rng: np.random.Generator, region: int) -> Iterator:
    """The legacy single-stream generator: the same draws, in the same order, as the QD 1
    runner of earlier versions, so QD 1 runs reproduce their figures."""
    slots = region // w.bs
    if w.op == "seqwrite":
        offsets = np.arange(0, w.nbytes // w.bs, dtype=np.int64) % slots * w.bs
        reads = np.zeros(offsets.size, dtype=bool)
    elif w.op in ("randwrite", "overwrite"):
        n = w.nops or w.nbytes // w.bs
        offsets = rng.integers(0, slots, n, dtype=np.int64) * w.bs
        reads = np.zeros(n, dtype=bool)
    elif w.op == "randread":
        offsets = rng.integers(0, slots, w.nops, dtype=np.int64) * w.bs
        reads = np.ones(w.nops, dtype=bool)
    elif w.op == "mixed":
        offsets = rng.integers(0, slots, w.nops, dtype=np.int64) * w.bs
        reads = rng.integers(0, 100, w.nops) < w.read_pct
    else:
        raise ValueError(f"unknown workload op {w.op}")
    bs = w.bs
    for off, rd in zip(offsets.tolist(), reads.tolist()):
        yield None, ("read" if rd else "write"), off, bs


def _random(op: str, bs: int, region: int, rng: np.random.Generator, nbytes: int | None) -> Iterator:
    """Random `bs` requests over [0, region), `nbytes` in all (None: endless)."""
    slots = region // bs
    done = 0
    while nbytes is None or done < nbytes:
        for off in (rng.integers(0, slots, 4096, dtype=np.int64) * bs).tolist():
            if nbytes is not None and done >= nbytes:
                return
            yield None, op, off, bs
            done += bs


def builtin_jobs(w: Workload, qd: int, size: int, seed: int) -> tuple[list[Job], np.ndarray]:
    """Jobs of a built-in workload at queue depth `qd`, and the write payload."""
    region = min(w.region or size, size)          # a plug-in FTL may export less than the plan's region
    region -= region % w.bs
    if w.jobs == 1:
        rng = np.random.default_rng(seed)
        payload = rng.integers(0, 256, w.bs, dtype=np.uint8)
        return [Job(w.name, "main", qd, _builtin_stream(w, rng, region), series=w.series)], payload
    rngs = np.random.default_rng(seed).spawn(w.jobs + 1)
    payload = rngs[-1].integers(0, 256, w.bs, dtype=np.uint8)
    return [Job(f"{w.name}#{k}", "main", qd, _builtin_stream(w, rngs[k], region), series=w.series and k == 0)
            for k in range(w.jobs)], payload


def interference_jobs(w: Workload, size: int, seed: int, phase: str) -> list[Job]:
    """The jobs of one phase of the interference workload: "idle" (the reader alone),
    "warmup" (the writer alone) or "measure" (writer and reader)."""
    g = np.random.default_rng([seed, 7]).spawn(3)
    reader_region = size - size % 4096
    writer_region = size - size % w.bs
    if phase == "idle":
        return [Job("reader", "reader", 1, _random("read", 4096, reader_region, g[0], w.idle_reads * 4096))]
    if phase == "warmup":
        warm = int(w.warmup * size) // w.bs * w.bs
        return [Job("writer", "writer", w.writer_qd, _random("write", w.bs, writer_region, g[1], warm))]
    return [Job("writer", "writer", w.writer_qd, _random("write", w.bs, writer_region, g[2], w.nbytes),
                series=True),
            Job("reader", "reader", 1, _random("read", 4096, reader_region, g[0], None), stop_with=0)]


# ---------------------------------------------------------------- fio jobs: estimates and streams

# Requests per wall-clock second the engine runs through a stack, on average over pblk and
# AppNVM, measured on an otherwise idle 2-core machine (CPython 3.11): JESD219 on the full
# geometry ran 16,400 a second on pblk, 7,400 on AppNVM. What a run's time is estimated from
# before it starts; a busy machine takes longer.
WALL_REQUESTS_PER_S = 10_000


def modeled_iops(cfg, spec, sharing: int = 1) -> float:
    """A rough rate of a fio job in requests per second of virtual time, to estimate how
    many requests a runtime-bound job issues: its queue depth over a request's latency,
    or its share (1 / `sharing`) of what the device can do, whichever is lower. The
    device: reads take tR plus the transfer on one LUN of all, writes program a page unit
    per LUN in tPROG (halved for random writes, for GC), both capped by the channels."""
    geo, nand, host = cfg.to_geometry(), cfg.nand, cfg.host
    luns = geo.nchannels * geo.nluns
    bs = max(float(geo.sector_nbytes), spec.mean_request_bytes)
    chan = nand.channel_mb_s * 1e6
    xfer = bs / chan
    cmd = (host.submit_ns + host.complete_ns) / 1e9
    bus = geo.nchannels * chan / bs
    read_dev = min(luns / (nand.t_read_ns / 1e9 + xfer), bus)
    page = geo.nplanes * geo.nsectors * geo.sector_nbytes
    write_dev = min(luns * page / (nand.t_prog_ns / 1e9), geo.nchannels * chan) / bs
    if not spec.sequential:
        write_dev /= 2
    dirs = spec.directions
    r = spec.rwmixread / 100 if len(dirs) > 1 else (1.0 if dirs[0] == "read" else 0.0)
    if dirs == ("trim",):
        return spec.iodepth / cmd
    dev = 1.0 / (r / read_dev + (1 - r) / write_dev) if 0 < r < 1 else (read_dev if r else write_dev)
    lat = r * (nand.t_read_ns / 1e9 + xfer + cmd) + (1 - r) * (xfer + cmd)
    return min(spec.iodepth / lat, dev / max(1, sharing))


@dataclass
class Estimate:
    """Requests a fio job is expected to issue: measured (after any cap) and in its ramp;
    `cut`: the cap is below what the job would do."""
    label: str
    requests: int
    ramp: int = 0
    cut: bool = False
    uncapped: int = 0


def estimates(w: Workload, cfg) -> list[Estimate]:
    """Every job's estimate, the cap applied (one per fio job; a trace: its length)."""
    if w.kind == "trace":
        return [Estimate(w.name, len(w.trace), uncapped=len(w.trace))]
    if w.kind != "fio":
        raise ValueError("estimates are for fio and trace workloads")
    sharing: dict[int, int] = {}
    for spec in w.fio_jobs:
        sharing[spec.phase] = sharing.get(spec.phase, 0) + 1
    out = []
    for spec in w.fio_jobs:
        iops = modeled_iops(cfg, spec, sharing[spec.phase])
        n = spec.estimate_requests(iops)
        ramp = int(iops * spec.ramp_ns / 1e9)
        cap = w.max_requests
        capped = spec.estimate_requests(iops, cap) if cap else n
        out.append(Estimate(spec.label, capped, min(ramp, cap) if cap else ramp, capped < n, n))
    return out


class FioStream:
    """One fio job's request stream for the engine, capped at `cap` requests (`cut` is
    set when the cap ended a job that had more to do), and its share of a progress bar:
    `estimate` units, moved by the requests it issued or, for a runtime-bound job, by the
    share of its runtime gone, whichever is further; `finish()` moves the rest."""

    def __init__(self, spec, rng: np.random.Generator, cap: int = 0, estimate: int = 0,
                 runtime_ns: int = 0, progress: Callable[[int], None] | None = None):
        self.spec, self.cap, self.cut = spec, cap, False
        self.issued = self.shown = 0
        self.estimate, self.runtime_ns, self.progress = estimate, runtime_ns, progress
        self._stream = self._requests(spec.requests(rng))

    def _requests(self, stream) -> Iterator:
        count = 0
        for req in stream:
            if req[1] != "flush":
                if req[3] <= 0:
                    continue
                if self.cap and count >= self.cap:
                    self.cut = True
                    return
                count += 1
            yield req

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._stream)

    def on_issue(self, t_rel: int) -> None:
        self.issued += 1
        if self.progress is None or not self.estimate:
            return
        frac = self.issued / self.estimate
        if self.runtime_ns:
            frac = max(frac, t_rel / self.runtime_ns)
        shown = min(self.estimate, int(frac * self.estimate))
        if shown > self.shown:
            self.progress(shown - self.shown)
            self.shown = shown

    def finish(self) -> None:
        if self.progress is not None and self.estimate > self.shown:
            self.progress(self.estimate - self.shown)
        self.shown = self.estimate


def fio_jobs(w: Workload, seed: int, specs: list, ests: dict | None = None, ramp: bool = False,
             progress: Callable[[int], None] | None = None) -> tuple[list[Job], list[FioStream]]:
    """The jobs of one stonewall group (`specs`, from w.fio_jobs), each at its iodepth;
    `seed` varies them. ramp: the group's ramp_time run instead (each job time-based for
    its ramp, unmeasured). `ests` (label -> Estimate) sizes each job's share of the
    progress bar; w.max_requests caps each job."""
    jobs, streams = [], []
    for spec in specs:
        i = w.fio_jobs.index(spec)
        est = (ests or {}).get(spec.label)
        if ramp:
            run = replace(spec, time_based=True, runtime_ns=spec.ramp_ns, number_ios=0, end_fsync=False)
            rng = np.random.default_rng([spec.seed, seed, i, 1])
            n = est.ramp if est else 0
        else:
            run = spec
            rng = np.random.default_rng([spec.seed, seed, i])
            n = est.requests if est else 0
        st = FioStream(run, rng, w.max_requests, n, run.runtime_ns, progress)
        streams.append(st)
        jobs.append(Job(spec.label, "main", spec.iodepth, st, runtime_ns=run.runtime_ns, series=True,
                        start_ns=spec.start_ns, thinktime_ns=spec.thinktime_ns,
                        thinktime_blocks=spec.thinktime_blocks, thinktime_issue=spec.thinktime_issue,
                        thinktime_iotime_ns=spec.thinktime_iotime_ns, exitall=spec.exitall,
                        on_issue=st.on_issue))
    return jobs, streams


def trace_jobs(w: Workload, progress: Callable[[int], None] | None = None) -> list[Job]:
    """The trace as one job: timed (issue times kept, `qds[0]` in flight at most) or afap;
    `progress` is moved by one per request issued."""
    stream = ((r.t_ns, r.op, r.offset, r.nbytes) for r in w.trace.replay(w.replay))
    tick = None if progress is None else (lambda _t: progress(1))
    return [Job(w.name, "main", w.qds[0], stream, series=True, on_issue=tick)]
