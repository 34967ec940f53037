#!/usr/bin/env python3
"""Write small, deterministic sample block traces, one per format `ox compare` replays.

    python scripts/make_traces.py OUTDIR [--requests N] [--seed S] [--region-mib M]

writes OUTDIR/sample.blkparse.txt (blkparse text), sample_v3.iolog and sample_v2.iolog
(fio iologs) and sample_msr.csv (MSR Cambridge CSV, reads and writes only). All four hold
the same synthetic workload: a few thousand requests over a region of M MiB, 80 % of
them in a hot set of 10 % of the region, mixed reads (55 %), writes (35 %, some of them
sequential appends), discards (8 %) and flushes (2 %), 4 KiB to 256 KiB, arriving in
bursts. Nothing is downloaded; the same arguments always give the same files.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from oxhost.compare.traces import Trace, TraceOp, write_trace

KIB, MIB = 1 << 10, 1 << 20
FILES = {"sample.blkparse.txt": ("blkparse", {}), "sample_v3.iolog": ("iolog", {"version": 3}),
         "sample_v2.iolog": ("iolog", {"version": 2}), "sample_msr.csv": ("msr", {})}


def synthetic_trace(requests: int = 3000, seed: int = 1, region_bytes: int = 1 << 30) -> Trace:
    """The sample workload as a Trace (offsets and lengths in whole 4 KiB blocks)."""
    rng = np.random.default_rng(seed)
    blocks = region_bytes // (4 * KIB)
    hot_blocks = max(1, blocks // 10)
    hot_base = int(rng.integers(0, blocks - hot_blocks + 1))
    ops = rng.choice([TraceOp.READ, TraceOp.WRITE, TraceOp.TRIM, TraceOp.FLUSH], size=requests,
                     p=[0.55, 0.35, 0.08, 0.02]).astype(np.uint8)
    sizes = rng.choice([4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB], size=requests, p=[0.6, 0.15, 0.15, 0.1])
    sizes = np.where(ops == TraceOp.TRIM, rng.choice([64 * KIB, 256 * KIB, MIB], size=requests), sizes)
    hot = rng.random(requests) < 0.8
    where = np.where(hot, hot_base + rng.integers(0, hot_blocks, requests), rng.integers(0, blocks, requests))
    offsets = where.astype(np.int64) * 4 * KIB
    append = 0                                      # a log-like sequential write stream
    for i in np.flatnonzero((ops == TraceOp.WRITE) & (rng.random(requests) < 0.3)):
        offsets[i] = append
        append = (append + int(sizes[i])) % (region_bytes // 4)
    offsets = np.minimum(offsets, region_bytes - sizes)
    flush = ops == TraceOp.FLUSH
    offsets[flush], sizes[flush] = 0, 0
    gaps = rng.exponential(150_000, requests).astype(np.int64)      # ~150 us apart ...
    gaps[::500] += 5_000_000                                        # ... with 5 ms idle gaps
    t = np.cumsum(gaps) - gaps[0]
    return Trace.from_records(t, ops, offsets, sizes, "synthetic", f"make_traces seed={seed}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outdir", type=Path)
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--region-mib", type=int, default=1024)
    a = p.parse_args(argv)
    if a.requests < 1 or a.region_mib < 2:
        p.error("need at least one request and a region of at least 2 MiB")
    a.outdir.mkdir(parents=True, exist_ok=True)
    trace = synthetic_trace(a.requests, a.seed, a.region_mib * MIB)
    for name, (fmt, kw) in FILES.items():
        write_trace(trace, a.outdir / name, fmt, **kw)
        print(a.outdir / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
