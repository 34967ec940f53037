"""Workloads run against a BlockDevice, one request at a time (QD1), with the virtual
clock read around every request. Data carries (lba, generation) stamps so reads check
what they get against a shadow of what was written."""
import time
from dataclasses import dataclass, field

import numpy as np

STAMP = np.dtype([("lba", "<u8"), ("gen", "<u8")])


@dataclass
class Workload:
    name: str
    title: str
    op: str                     # "seqwrite", "randwrite", "randread", "mixed", "overwrite"
    bs: int                     # request size in bytes
    nbytes: int = 0             # bytes to transfer (sequential / overwrite)
    nops: int = 0               # requests (random)
    read_pct: int = 0           # mixed: share of reads
    region: int = 0             # bytes of the LBA space used (0 = all)
    prefill: bool = False       # fill the region sequentially first (not measured)
    samples: int = 40           # time-series points (overwrite)


@dataclass
class Trace:
    """What one workload did, as numpy arrays (one entry per request)."""
    lat_ns: np.ndarray
    is_read: np.ndarray
    nbytes: np.ndarray
    virtual_ns: int
    wall_s: float
    cpu_s: float
    verified_reads: int = 0
    mismatches: int = 0
    series: list = field(default_factory=list)
    before: dict = field(default_factory=dict)      # machine.stats() after any prefill
    after: dict = field(default_factory=dict)


class Shadow:
    """Generation per sector of what the device should hold (0 = never written)."""

    def __init__(self, nsectors: int):
        self.gen = np.zeros(nsectors, dtype=np.uint64)
        self.counter = 0


def make_data(bs: int, lba: int, sector: int, gen: int, payload: np.ndarray) -> np.ndarray:
    n = bs // sector
    buf = payload[:bs].copy()
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


def run_workload(w: Workload, bdev, machine, stats_fn, progress=None, seed: int = 1) -> Trace:
    """Run one workload; stats_fn() -> dict is sampled for the overwrite time series."""
    sector = bdev.sector_nbytes
    region = w.region or bdev.size
    region -= region % w.bs
    rng = np.random.default_rng(seed)
    payload = rng.integers(0, 256, w.bs, dtype=np.uint8)
    shadow = Shadow(bdev.size // sector)        # every workload starts on a fresh device

    def write(off):
        shadow.counter += 1
        lba = off // sector
        bdev.write(off, make_data(w.bs, lba, sector, shadow.counter, payload))
        shadow.gen[lba:lba + w.bs // sector] = shadow.counter

    if w.prefill:
        for off in range(0, region, 1 << 20):
            shadow.counter += 1
            k = min(1 << 20, region - off)
            bdev.write(off, make_data(k, off // sector, sector, shadow.counter,
                                      np.resize(payload, k)))
            shadow.gen[off // sector:(off + k) // sector] = shadow.counter
        bdev.flush()

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

    n = offsets.size
    lat = np.zeros(n, dtype=np.int64)
    series = []
    every = max(1, n // w.samples) if w.op == "overwrite" else 0
    verified = mismatches = 0
    before = machine.stats()
    t_wall, t_cpu, v0 = time.perf_counter(), time.process_time(), machine.virtual_ns
    base = stats_fn() if every else None
    for i in range(n):
        off = int(offsets[i])
        t0 = machine.virtual_ns
        if reads[i]:
            data = bdev.read(off, w.bs)
            verified += 1
            mismatches += check_data(data, off // sector, sector, shadow)
        else:
            write(off)
        lat[i] = machine.virtual_ns - t0
        if every and (i + 1) % every == 0:
            series.append(dict(done=(i + 1) / n, host_bytes=(i + 1) * w.bs,
                               virtual_ns=machine.virtual_ns - v0, **_delta(stats_fn(), base)))
        if progress is not None and i % 256 == 255:
            progress(256 * w.bs)
    bdev.flush()
    if progress is not None:
        progress((n % 256) * w.bs)
    wall = time.perf_counter() - t_wall
    after = machine.stats()
    cpu = time.process_time() - t_cpu - (after["device_cpu_s"] - before["device_cpu_s"])
    return Trace(lat_ns=lat, is_read=reads, nbytes=np.full(n, w.bs, dtype=np.int64),
                 virtual_ns=machine.virtual_ns - v0, wall_s=wall, cpu_s=cpu,
                 verified_reads=verified, mismatches=mismatches, series=series,
                 before=before, after=after)


def _delta(now: dict, base: dict) -> dict:
    return {k: now[k] - base.get(k, 0) for k in now if isinstance(now[k], (int, float))}
