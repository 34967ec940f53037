"""What `ox compare` runs: workload descriptions (the built-in set, fio job files, block
traces) turned into jobs -- request streams with a queue depth -- for the engine, and the
(LBA, generation) stamps that let every read be checked against a shadow of what was
written."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

STAMP = np.dtype([("lba", "<u8"), ("gen", "<u8")])
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
    kind "fio": the jobs of a fio job file (`fio_jobs`, oxhost.compare.fiojob.JobSpec), all
    at once, each at its own iodepth (`qds` holds the largest, as its key).
    kind "trace": a block trace (`trace`, oxhost.compare.traces.Trace) replayed `replay`
    ("timed": at its issue times, at most `qds[0]` requests in flight; "afap": as fast as
    possible at queue depth `qds[0]`).
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

    @property
    def series(self) -> bool:
        """Whether WA and GC counters are sampled over time."""
        return self.op == "overwrite" or self.kind in ("interference", "fio", "trace")

    def work_bytes(self, capacity: int) -> int:
        """Bytes moved at one queue depth (for progress bars; an estimate for fio jobs)."""
        if self.kind == "interference":
            return int((self.warmup + 1) * capacity) + self.nbytes + self.idle_reads * 4096
        if self.kind == "fio":
            return sum(j.total_bytes or j.region_bytes for j in self.fio_jobs)
        if self.kind == "trace":
            return int(self.trace.nbytes.sum())
        nbytes = int(self.per_capacity * capacity) if self.per_capacity else self.nbytes
        per = (nbytes - nbytes % self.bs) if self.op in ("seqwrite", "overwrite") else self.nops * self.bs
        return per * self.jobs


@dataclass
class Job:
    """One request stream for the engine: `requests` yields (earliest issue time relative
    to the start or None, op, byte offset, bytes); at most `qd` requests are in flight.
    `stop_with`: the index of a job whose end also ends this one (a reader beside a
    writer). `runtime_ns`: no request is issued after start + runtime_ns (0: no bound)."""

    name: str
    role: str
    qd: int
    requests: Iterator
    stop_with: int | None = None
    runtime_ns: int = 0
    series: bool = False


class Shadow:
    """Generation per sector of what the device should hold (0 = never written or
    discarded)."""

    def __init__(self, nsectors: int):
        self.gen = np.zeros(nsectors, dtype=np.uint64)
        self.counter = 0


def make_data(bs: int, lba: int, sector: int, gen: int, payload: np.ndarray) -> np.ndarray:
    n = bs // sector
    buf = payload[:bs].copy() if payload.size >= bs else np.resize(payload, bs)
    stamps = buf.reshape(n, sector)[:, :16].copy().view(STAMP).reshape(n)
    stamps["lba"] = np.arange(lba, lba + n, dtype=np.uint64)
    stamps["gen"] = gen
    buf.reshape(n, sector)[:, :16] = stamps.view(np.uint8).reshape(n, 16)
    return buf


def check_data(buf: np.ndarray, lba: int, sector: int, shadow: Shadow) -> int:
    """Number of sectors whose stamp disagrees with the shadow."""
    n = buf.nbytes // sector
    st = np.ascontiguousarray(buf.reshape(n, sector)[:, :16]).view(STAMP).reshape(n)
    want = shadow.gen[lba:lba + n]
    written = want > 0
    bad = written & ((st["gen"] != want) | (st["lba"] != np.arange(lba, lba + n, dtype=np.uint64)))
    never = ~written & (st["gen"] != 0)
    return int(np.count_nonzero(bad) + np.count_nonzero(never))


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
    region = (w.region or size)
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


def fio_jobs(w: Workload, seed: int) -> list[Job]:
    """The fio job file's jobs, all at once, each at its iodepth; `seed` varies them."""
    out = []
    for i, spec in enumerate(w.fio_jobs):
        rng = np.random.default_rng([spec.seed, seed, i])
        stream = ((None, op, off, n) for op, off, n in spec.requests(rng) if n > 0)
        out.append(Job(f"{spec.name}#{spec.clone}", "main", spec.iodepth, stream,
                       runtime_ns=spec.runtime_ns, series=i == 0))
    return out


def trace_jobs(w: Workload) -> list[Job]:
    """The trace as one job: timed (issue times kept, `qds[0]` in flight at most) or afap."""
    stream = ((r.t_ns, r.op, r.offset, r.nbytes) for r in w.trace.replay(w.replay))
    return [Job(w.name, "main", w.qds[0], stream, series=True)]
