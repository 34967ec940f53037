"""fio job files as `ox compare` workloads: fio's job-file format parsed into plain job
descriptions that generate the I/O stream fio would, in modeled (virtual) time.

`parse_fio_job(text, device_bytes=...)` returns a `FioJobFile`: one `JobSpec` per job
section and numjobs clone (each with its own seed), the options it accepted but ignored,
and a note when the file's extents were scaled to fit the device. `JobSpec.requests(rng)`
yields `(t_ns, op, offset, nbytes)` with op in {"read", "write", "trim", "flush"}, byte
offsets on the device and t_ns the earliest issue time relative to the job's start (None:
as soon as a slot is free; set by rate/rate_iops), deterministically for a given rng. The
engine decides the queue depth (`iodepth`), the thinktime stalls and stops jobs at their
runtime in virtual time; stonewall groups run one after the other.

The file format: INI sections; `[global]` options apply to every job section after it
(a later `[global]` adds to them for the jobs that follow); a job section starts with a
copy of them and may override any; `name=` renames the job; lines starting with `#` or
`;` are comments, as is anything after ` #` or ` ;`; an option without `=` is a boolean
set to true (`norandommap`, `time_based`). docs/fio-jobs.md lists every option with what
it does here; fio's HOWTO is the reference for their meaning.

Requests are multiples of 512 bytes (the logical block of a 512e drive); the engine
serves a request that does not cover whole 4 KiB sectors as a drive does, by reading the
partial sectors and writing them back whole.

Differences from fio, by design: an I/O that would cross the end of the region is
shortened to end there; random offsets of every direction are multiples of the job's
smallest block size (or blockalign); a ramp_time runs the
whole stonewall group for the longest ramp before its measured run; the skewed
distributions (zipf, pareto, normal) scatter their ranks with another 64-bit hash than
fio's, so the hot blocks are others but the popularity curve is fio's.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FioJobError", "FioJobFile", "IGNORED", "JobSpec", "LBA_NBYTES", "SUPPORTED", "load_fio_job",
           "parse_fio_job"]

LBA_NBYTES = 512                # requests are multiples of this (a 512e drive's logical block)
DDIRS = ("read", "write", "trim")
RW_MODES = {"read": ("read",), "write": ("write",), "trim": ("trim",), "randread": ("read",),
            "randwrite": ("write",), "randtrim": ("trim",), "rw": ("read", "write"),
            "readwrite": ("read", "write"), "randrw": ("read", "write")}
# fio's other names for options (options.c .alias), resolved before anything else
ALIASES = {"readwrite": "rw", "blocksize": "bs", "ba": "blockalign", "blocksize_range": "bsrange",
           "io_limit": "io_size", "timeout": "runtime", "wait_for_previous": "stonewall", "seed": "randseed",
           "fileoffset": "offset", "nr_files": "nrfiles", "fdatasync": "fsync", "ratemin": "rate_min",
           "ratecycle": "rate_cycle", "allrandrepeat": "randrepeat"}
SUPPORTED = ("name", "rw", "bs", "bsrange", "bssplit", "blockalign", "size", "filesize", "offset",
             "offset_align", "offset_increment", "io_size", "number_ios", "loops", "rwmixread", "rwmixwrite",
             "norandommap", "random_distribution", "random_sequence_stride", "percentage_random", "runtime",
             "time_based", "ramp_time", "startdelay", "stonewall", "exitall", "rate", "rate_iops",
             "rate_process", "thinktime", "thinktime_spin", "thinktime_blocks", "thinktime_blocks_type",
             "thinktime_iotime", "fsync", "end_fsync", "randseed", "randrepeat", "iodepth", "numjobs",
             "nrfiles", "kb_base")
IGNORED = frozenset((
    "ioengine", "direct", "buffered", "filename", "filename_format", "directory", "description",
    "group_reporting", "new_group", "thread", "invalidate", "fsync_on_close", "end_syncfs", "sync",
    "exitall_on_error", "exit_what", "random_generator", "softrandommap", "continue_on_error", "ignore_error",
    "error_dump", "ioscheduler", "overwrite", "fallocate", "pre_read", "create_on_open", "create_serialize",
    "create_fsync", "allow_file_create", "unlink", "unlink_each_loop", "allow_mounted_write", "lockfile",
    "openfiles", "file_service_type", "fadvise_hint", "write_hint", "write_iolog", "stats",
    "verify", "do_verify", "verify_offset", "verify_interval", "verify_pattern", "verify_pattern_interval",
    "verify_fatal", "verify_dump", "verify_async", "verify_async_cpus", "verify_backlog",
    "verify_backlog_batch", "verify_state_save", "verify_state_load", "verifysort", "verify_sort",
    "verifysort_nr", "experimental_verify", "verify_header_seed", "verify_write_sequence",
    "rate_min", "rate_iops_min", "rate_cycle",
    "log_avg_msec", "log_hist_msec", "log_hist_coarseness", "write_bw_log", "write_lat_log",
    "write_iops_log", "write_hist_log", "per_job_logs", "log_offset", "log_prio", "log_max_value",
    "log_compression", "log_store_compressed", "log_unix_epoch", "log_alternate_epoch", "bwavgtime",
    "iopsavgtime", "lat_percentiles", "clat_percentiles", "slat_percentiles", "percentile_list",
    "significant_figures", "unit_base", "status_interval", "unified_rw_reporting", "disable_lat",
    "disable_clat", "disable_slat", "disable_bw_measurement", "disable_bw", "gtod_reduce", "gtod_cpu",
    "clocksource", "disk_util", "iodepth_batch", "iodepth_batch_submit", "iodepth_batch_complete",
    "iodepth_batch_complete_min", "iodepth_batch_complete_max", "iodepth_low", "io_submit_mode",
    "userspace_reap", "hipri", "fixedbufs", "registerfiles", "sqthread_poll", "sqthread_poll_cpu",
    "cpus_allowed", "cpus_allowed_policy", "cpumask", "nice", "prio", "prioclass", "cmdprio_percentage",
    "numa_cpu_nodes", "numa_mem_policy", "iomem", "mem", "iomem_align", "mem_align", "hugepage-size",
    "lockmem", "refill_buffers", "buffer_compress_percentage", "buffer_compress_chunk", "dedupe_percentage",
    "scramble_buffers", "zero_buffers", "buffer_pattern", "uid", "gid", "exec_prerun", "exec_postrun"))
DEFAULT_SEED = 0xB1899BED
_ZIPF_MAX_TERMS = 10_000_000        # fio caps the zeta sum the same way (ZIPF_MAX_GEN)
_GAUSS_ITERS = 12                   # lib/gauss.c
_BATCH = 4096


class FioJobError(ValueError):
    """A fio job file uses an option or value this parser does not take; one line naming
    the file, line number and option."""

    def __init__(self, message: str, *, source: str = "<job>", line: int | None = None,
                 option: str | None = None):
        self.source, self.line, self.option = source, line, option
        self.message = " ".join(message.split())
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {option}: {self.message}" if option else f"{where}: {self.message}")


@dataclass(frozen=True)
class JobSpec:
    """One fio job (one clone of it when numjobs > 1), resolved against a device.

    Sizes are bytes, times ns of virtual time. `block_sizes` maps each direction to
    ((size, weight), ...) with weights summing to 100. `region_offset`/`region_bytes` is
    where the job does I/O; `io_bytes` is how much one loop transfers; `runtime_ns` = 0
    means no time bound. `phase` is the job's stonewall group (groups run in order).
    `zones` maps a direction to ((access %, lo, hi), ...): percent of the region for
    "zoned", bytes into it for "zoned_abs". `rate_bps` caps each direction (0: none).
    """

    name: str
    clone: int
    rw: str
    block_sizes: dict
    region_offset: int
    region_bytes: int
    io_bytes: int
    grain: int
    index: int = 0
    phase: int = 0
    rwmixread: int = 50
    random_map: bool = True
    distribution: str = "random"
    dist_param: float = 0.0
    dist_center: float = -1.0
    zones: dict = field(default_factory=dict)
    sequence: tuple = ()
    sequence_stride: bool = False
    percentage_random: tuple = (100, 100, 100)
    number_ios: int = 0
    loops: int = 1
    iodepth: int = 1
    runtime_ns: int = 0
    time_based: bool = False
    ramp_ns: int = 0
    start_ns: int = 0
    rate_bps: tuple = (0, 0, 0)
    rate_poisson: bool = False
    thinktime_ns: int = 0
    thinktime_blocks: int = 1
    thinktime_issue: bool = False
    thinktime_iotime_ns: int = 0
    fsync_every: int = 0
    end_fsync: bool = False
    exitall: bool = False
    seed: int = DEFAULT_SEED
    line: int = 0
    options: dict = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name}#{self.clone}"

    @property
    def sequential(self) -> bool:
        return not self.rw.startswith("rand")

    @property
    def directions(self) -> tuple[str, ...]:
        return RW_MODES[self.rw]

    @property
    def total_bytes(self) -> int | None:
        """Bytes the job transfers before it ends on its own; None for time-based jobs."""
        return None if self.time_based else self.io_bytes * self.loops

    @property
    def mean_request_bytes(self) -> float:
        """The mean request size over the job's directions and block-size weights."""
        share = {"read": self.rwmixread / 100, "write": 1 - self.rwmixread / 100}
        dirs = self.directions
        out = 0.0
        for d in dirs:
            w = share[d] if len(dirs) > 1 else 1.0
            out += w * sum(s * p for s, p in self.block_sizes[d]) / 100
        return out

    def estimate_requests(self, iops: float | None = None, cap: int = 0) -> int:
        """Requests the job issues: from its bytes (size, io_size, loops) and number_ios,
        and from its runtime at `iops` (a modeled rate; needed only for runtime-bound
        jobs). A rate cap (rate, rate_iops) or thinktime bounds the rate too; `cap` (the
        run's request budget) bounds the reads and writes, and fsync=N's flushes come on
        top of those it leaves."""
        n = math.inf
        if self.total_bytes is not None:
            n = math.ceil(self.total_bytes / max(1.0, self.mean_request_bytes))
        if self.number_ios:
            n = min(n, self.number_ios)
        if self.runtime_ns and iops:
            rate = iops
            caps = [bps / self.mean_request_bytes for bps in self.rate_bps if bps]
            if caps:
                rate = min(rate, sum(caps) if len(self.directions) > 1 else caps[0])
            if self.thinktime_ns:
                rate = min(rate, self.thinktime_blocks / (self.thinktime_ns / 1e9))
            n = min(n, rate * self.runtime_ns / 1e9)
        if cap:
            n = min(n, cap)
        if self.fsync_every and "write" in self.directions and n != math.inf:
            n += n * (1 - self.rwmixread / 100 if len(self.directions) > 1 else 1) / self.fsync_every
        return int(n) if n != math.inf else 0

    def zone_blocks(self, d: str) -> tuple[tuple[int, int, int], ...]:
        """The zones of direction d as (access %, first block, end block) in grains of the
        region, as fio's zoned and zoned_abs generators place them."""
        nblocks = self.region_bytes // self.grain
        out = []
        for access, lo, hi in self.zones.get(d, ()):
            if self.distribution == "zoned":
                b0 = lo * nblocks // 100
                out.append((access, b0, b0 + nblocks * (hi - lo) // 100))
            else:
                out.append((access, lo // self.grain, hi // self.grain))
        return tuple(out)

    def describe(self) -> str:
        def sizes(d):
            return ":".join(f"{_fmt_size(s)}/{w:.3g}" for s, w in self.block_sizes[d])
        parts = [self.label, self.rw, " ".join(f"{d}={sizes(d)}" for d in self.directions),
                 f"region={self.region_offset}+{self.region_bytes}"]
        if len(self.directions) > 1:
            parts.append(f"rwmixread={self.rwmixread}")
        if not self.sequential:
            dist = self.distribution
            if dist in ("zipf", "pareto", "normal"):
                dist += f":{self.dist_param:g}"
            elif dist.startswith("zoned"):
                z = self.zones.get(self.directions[0], ())
                dist += ":" + ":".join(f"{a}/{_fmt_size(hi - lo) if dist == 'zoned_abs' else hi - lo}"
                                       for a, lo, hi in z)
            parts.append(dist + ("" if self.random_map else " norandommap"))
        parts.append(f"QD{self.iodepth}")
        if self.runtime_ns:
            parts.append(f"runtime={self.runtime_ns / 1e9:g}s" + (" time_based" if self.time_based else ""))
        if not self.time_based:
            parts.append(f"io={self.total_bytes}")
        if self.number_ios:
            parts.append(f"number_ios={self.number_ios}")
        if any(self.rate_bps):
            parts.append("rate=" + ",".join(str(r) for r in self.rate_bps) + (" poisson" if self.rate_poisson else ""))
        if self.thinktime_ns:
            parts.append(f"thinktime={self.thinktime_ns / 1000:g}us/{self.thinktime_blocks}")
        return " ".join(parts)

    # ------------------------------------------------------------ the request stream
    def requests(self, rng: np.random.Generator | None = None) -> Iterator[tuple[int | None, str, int, int]]:
        """(t_ns, op, offset, nbytes) in issue order. Deterministic for a given rng
        (default: `np.random.default_rng(self.seed)`); the direction, size, offset and
        rate streams are independent children of it, so changing bssplit leaves the
        offsets alone. Flushes (fsync, end_fsync) are ("flush", 0, 0)."""
        rng = np.random.default_rng(self.seed) if rng is None else rng
        g_dir, g_bs, g_off, g_misc = rng.spawn(4)
        r_dir, r_bs, r_misc = _Uniform(g_dir), _Uniform(g_bs), _Uniform(g_misc)
        dirs = self.directions
        bs_tables = {d: (np.array([s for s, _ in self.block_sizes[d]], dtype=np.int64),
                         np.cumsum([w for _, w in self.block_sizes[d]]) / 100.0) for d in dirs}
        region, base = self.region_bytes, self.region_offset
        offsets = None if self.sequential else _Offsets(self, g_off)
        perc = {d: self.percentage_random[DDIRS.index(d)] for d in dirs}
        bps = {d: self.rate_bps[DDIRS.index(d)] for d in dirs}
        min_bs = {d: int(bs_tables[d][0].min()) for d in dirs}
        rate_t = dict.fromkeys(dirs, 0.0)
        limit = self.total_bytes
        count = done = writes = 0
        pos = dict.fromkeys(dirs, 0)                # where a sequential I/O of each direction goes next
        issues = dict.fromkeys(dirs, 0)
        cur, until = dirs[0], 0
        while True:
            if self.number_ios and count >= self.number_ios:
                break
            if limit is not None and done >= limit:
                break
            if len(dirs) > 1 and issues[cur] >= until:     # fio's get_rw_ddir: a new direction is drawn
                d = "read" if int(r_dir.next() * 100) + 1 <= self.rwmixread else "write"
                if d != cur:                               # and kept until its count catches up (set_rwmix_bytes)
                    until = issues[cur] * (self.rwmixread if d == "read" else 100 - self.rwmixread) // 100
                    cur = d
            d = cur
            issues[d] += 1
            sizes, cum = bs_tables[d]
            bs = int(sizes[0]) if sizes.size == 1 else int(sizes[min(np.searchsorted(cum, r_bs.next(), "right"),
                                                                      sizes.size - 1)])
            if offsets is None or (perc[d] < 100 and r_misc.next() * 100 >= perc[d]):
                off = pos[d]
                n = min(bs, region - off)
            else:
                got = offsets.next(bs, d)
                if got is None:                      # a sequence distribution ran off the region
                    break
                off, n = got
            if limit is not None:
                n = min(n, limit - done)
            t = None
            if bps[d]:
                t = int(rate_t[d])
                if self.rate_poisson:               # fio: exponential gaps of mean 1/iops
                    rate_t[d] += -math.log(1.0 - r_misc.next()) * 1e9 * min_bs[d] / bps[d]
                else:                               # linear: the bytes issued so far at the rate
                    rate_t[d] += n * 1e9 / bps[d]
            yield t, d, base + off, n
            pos[d] = 0 if off + n >= region else off + n
            count += 1
            done += n
            if d == "write" and self.fsync_every:
                writes += 1
                if writes % self.fsync_every == 0:
                    yield None, "flush", 0, 0
        if self.end_fsync and "write" in dirs:
            yield None, "flush", 0, 0


def _fmt_size(n: int) -> str:
    for unit, div in (("m", 1 << 20), ("k", 1024)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


class _Uniform:
    """Floats in [0, 1) drawn from a generator in batches."""

    __slots__ = ("buf", "i", "rng")

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.buf = rng.random(_BATCH)
        self.i = 0

    def next(self) -> float:
        if self.i == _BATCH:
            self.buf = self.rng.random(_BATCH)
            self.i = 0
        v = self.buf[self.i]
        self.i += 1
        return float(v)

    def integers(self, n: int) -> int:
        return min(int(self.next() * n), n - 1)


class _Offsets:
    """Random offsets (in bytes within the region) and lengths of one job: uniform with
    or without fio's random map, zoned, a fixed sequence, or a skewed distribution."""

    def __init__(self, job: JobSpec, rng: np.random.Generator):
        self.job = job
        self.grain, self.region = job.grain, job.region_bytes
        self.n = job.region_bytes // job.grain
        self.map = _BlockMap(self.n) if job.random_map and job.distribution == "random" else None
        g_u, g_zone, g_skew = rng.spawn(3)
        self.r = _Uniform(g_u)
        self.skew = None
        self.zones = {}
        self.issued = dict.fromkeys(DDIRS, 0)
        if job.distribution in ("zipf", "pareto", "normal"):
            self.skew = _Skewed(job.distribution, self.n, job.dist_param, job.dist_center, g_skew)
        elif job.distribution in ("zoned", "zoned_abs"):
            self.rz = _Uniform(g_zone)
            for d in job.directions:
                zb = job.zone_blocks(d)
                if zb:                                   # v in 1..100 picks the zone, as fio's index table
                    pick = np.repeat(np.arange(len(zb)), [a for a, _, _ in zb])
                    self.zones[d] = (pick, [(lo, hi) for _, lo, hi in zb])

    def _block(self, d: str) -> int | None:
        job = self.job
        if self.skew is not None:
            return self.skew.next()
        if job.distribution == "sequence":
            k = self.issued[d]
            self.issued[d] += 1
            seq = job.sequence
            b = seq[k % len(seq)] + (k // len(seq) * len(seq) if job.sequence_stride else 0)
            return b if b < self.n else None
        z = self.zones.get(d)
        if z is not None:
            lo, hi = z[1][z[0][self.rz.integers(100)]]
            return lo + self.r.integers(hi - lo) if hi > lo else lo
        return self.r.integers(self.n)

    def next(self, bs: int, d: str) -> tuple[int, int] | None:
        g = self.grain
        b = self._block(d)
        if b is None:
            return None
        want = -(-bs // g)
        if self.map is None:
            nblk = min(want, self.n - b)
        else:
            b = self.map.next_free(b)
            if b < 0:                              # the pass is over: every block touched
                self.map = _BlockMap(self.n)
                b = self.map.next_free(self.r.integers(self.n))
            nblk = self.map.take(b, want)
        off = b * g
        return off, min(bs, nblk * g, self.region - off)


class _BlockMap:
    """fio's random map: which blocks this pass has touched. next_free(b) is the first
    untouched block at or after b, wrapping (union-find with path halving)."""

    __slots__ = ("left", "n", "parent")

    def __init__(self, n: int):
        self.n = n
        self.parent = list(range(n + 1))         # parent[b] == b: untouched; n: sentinel
        self.left = n

    def _find(self, b: int) -> int:
        p = self.parent
        while p[b] != b:
            p[b] = p[p[b]]
            b = p[b]
        return b

    def next_free(self, b: int) -> int:
        if self.left == 0:
            return -1
        f = self._find(b)
        return f if f < self.n else self._find(0)

    def take(self, b: int, want: int) -> int:
        """Mark up to `want` untouched blocks from b on; return how many."""
        p = self.parent
        k = 0
        while k < want and b + k < self.n and p[b + k] == b + k:
            p[b + k] = b + k + 1
            k += 1
        self.left -= k
        return k


def _scatter(v: np.ndarray) -> np.ndarray:
    """A 64-bit mixing hash (splitmix64's finalizer) on uint64 ranks: spreads the hot ranks
    over the region the way fio's __hash_u64 spreads its zipf/pareto/normal ranks."""
    v = v.astype(np.uint64)
    v = (v ^ (v >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    v = (v ^ (v >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return v ^ (v >> np.uint64(31))


class _Skewed:
    """Block numbers of a zipf, pareto or normal distribution over n blocks, as fio's
    lib/zipf.c and lib/gauss.c draw them: a rank, hashed, plus an offset, modulo n.

    zipf: Gray et al., 'Quickly generating billion-record synthetic databases' (the zeta
    sum capped at 10^7 terms like fio); pareto: rank (n - 1) x u^(log h / log(1 - h));
    normal: the mean of 12 uniform draws over 0..n plus a uniform deviation of width
    n x dev / 100 (halved while it would pass n). The offset is random for zipf and pareto
    and 0 for normal, or n x center (normal: n x (center - 0.5)) when a center is given.
    """

    def __init__(self, kind: str, n: int, param: float, center: float, rng: np.random.Generator):
        self.kind, self.n, self.rng = kind, n, rng
        if kind == "zipf":
            theta = param
            terms = min(n, _ZIPF_MAX_TERMS)
            zetan = 0.0
            for lo in range(0, terms, 1 << 20):
                i = np.arange(lo + 1, min(terms, lo + (1 << 20)) + 1, dtype=np.float64)
                zetan += float(np.sum(i ** -theta))
            self.zetan, self.theta = zetan, theta
            self.zeta2 = 1.0 + 0.5 ** theta
            self.alpha = 1.0 / (1.0 - theta)
            self.eta = (1.0 - (2.0 / n) ** (1.0 - theta)) / (1.0 - self.zeta2 / zetan) if n > 2 else 0.0
        elif kind == "pareto":
            self.power = math.log(param) / math.log(1.0 - param)
        else:
            self.stddev = min(math.ceil(n * param / 100.0), n // 2) if param else 0
        if kind == "normal":
            self.off = int(n * (center - 0.5)) if center >= 0 else 0
        else:
            self.off = int(n * center) if center >= 0 else int(rng.integers(0, 1 << 32))
        self.buf = np.empty(0, dtype=np.int64)
        self.i = 0

    def _fill(self) -> None:
        n = self.n
        if self.kind == "normal":
            s = (self.rng.integers(0, n + 1, (_BATCH, _GAUSS_ITERS)).sum(axis=1) + _GAUSS_ITERS - 1) // _GAUSS_ITERS
            if self.stddev:
                dev = self.rng.integers(0, self.stddev, _BATCH) - self.stddev // 2
                for _ in range(64):                  # fio: while (dev + sum >= nranges) dev /= 2
                    over = dev + s >= n
                    if not over.any():
                        break
                    dev = np.where(over, np.fix(dev / 2).astype(np.int64), dev)
                s = s + dev
            rank = s.astype(np.int64).view(np.uint64)    # a negative sum wraps, as fio's unsigned one
        else:
            u = self.rng.random(_BATCH)
            if self.kind == "zipf":
                z = u * self.zetan
                tail = np.floor(n * np.maximum(self.eta * u - self.eta + 1.0, 0.0) ** self.alpha)
                rank = np.where(z < 1.0, 1, np.where(z < self.zeta2, 2, 1 + np.minimum(tail, n - 1))) - 1
            else:
                rank = np.floor((n - 1) * u ** self.power)
            rank = rank.astype(np.int64)
        h = _scatter(rank) % np.uint64(n)
        self.buf = ((h + np.uint64(self.off % n)) % np.uint64(n)).astype(np.int64)
        self.i = 0

    def next(self) -> int:
        if self.i == self.buf.size:
            self._fill()
        v = self.buf[self.i]
        self.i += 1
        return int(v)


# ---------------------------------------------------------------- parsing

_SIZE = re.compile(r"^(0x[0-9a-f]+|\d+)\s*([kmgtp]?)(i?)(b?)$", re.IGNORECASE)
_TIME = re.compile(r"^(\d+)\s*(d|h|m|s|sec|ms|msec|us|usec)?$", re.IGNORECASE)
_TIME_NS = {"s": 10**9, "sec": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
            "ms": 10**6, "msec": 10**6, "us": 10**3, "usec": 10**3}


@dataclass
class _Opt:
    name: str
    value: str | None
    line: int


class _Ctx:
    """Raises errors for one option of one file."""

    def __init__(self, source: str, opt: _Opt):
        self.source, self.opt = source, opt

    def fail(self, message: str) -> FioJobError:
        return FioJobError(message, source=self.source, line=self.opt.line, option=self.opt.name)

    @property
    def text(self) -> str:
        if self.opt.value is None or self.opt.value == "":
            raise self.fail("needs a value")
        return self.opt.value

    def size(self, kb_base: int, text: str | None = None) -> int:
        t = (self.text if text is None else text).strip()
        m = _SIZE.match(t)
        if not m:
            raise self.fail(f"{t!r} is not a size")
        num = int(m.group(1), 0)
        prefix, iec = m.group(2).lower(), bool(m.group(3))
        if not prefix and iec:
            raise self.fail(f"{t!r} is not a size")
        power = "kmgtp".find(prefix) + 1 if prefix else 0
        # kb_base=1024 (fio's default): k is 1024 and ki is 1000; kb_base=1000: the reverse
        binary = (kb_base == 1024) != iec
        return num * (1024 if binary else 1000) ** power

    def irange(self, kb_base: int, text: str | None = None) -> tuple[int, int]:
        """'lo-hi' or 'lo:hi' (swapped when lo > hi, as fio does), or one size for both."""
        t = (self.text if text is None else text).strip()
        lo_t, sep, hi_t = t.replace(":", "-").partition("-")
        lo = self.size(kb_base, lo_t)
        hi = self.size(kb_base, hi_t) if sep else lo
        return (lo, hi) if lo <= hi else (hi, lo)

    def size_or_pct(self, kb_base: int) -> tuple[float, bool]:
        """(bytes, False) or (fraction of the device, True)."""
        t = self.text.strip()
        if t.endswith("%"):
            try:
                pct = float(t[:-1])
            except ValueError:
                raise self.fail(f"{t!r} is not a percentage") from None
            if not 0 < pct <= 100:
                raise self.fail(f"{t!r}: a percentage must be in (0, 100]")
            return pct / 100, True
        return self.size(kb_base), False

    def integer(self, lo: int = 0, hi: int | None = None) -> int:
        t = self.text.strip()
        try:
            v = int(t, 0)
        except ValueError:
            raise self.fail(f"{t!r} is not an integer") from None
        if v < lo or (hi is not None and v > hi):
            raise self.fail(f"{v} is outside {lo}..{hi if hi is not None else 'inf'}")
        return v

    def boolean(self) -> bool:
        if self.opt.value is None:
            return True
        t = self.opt.value.strip().lower()
        if t in ("1", "true", "yes", "on"):
            return True
        if t in ("0", "false", "no", "off"):
            return False
        raise self.fail(f"{self.opt.value!r} is not a boolean (0 or 1)")

    def time_ns(self, unit: str = "s", text: str | None = None) -> int:
        """A time; a bare number is in `unit` (seconds for runtime, microseconds for
        thinktime, as fio reads each)."""
        t = (self.text if text is None else text).strip()
        m = _TIME.match(t)
        if not m:
            raise self.fail(f"{t!r} is not a time (e.g. 30, 10s, 500ms, 2m)")
        return int(m.group(1)) * _TIME_NS[(m.group(2) or unit).lower()]

    def per_ddir(self, text: str | None = None) -> list[str | None]:
        """fio's comma rule: read,write,trim; a value not ending in a comma carries on."""
        parts = (self.text if text is None else text).split(",")
        if len(parts) > 3:
            raise self.fail("at most three comma-separated values (read,write,trim)")
        return [(parts[i] if i < len(parts) else parts[-1]).strip() or None for i in range(3)]


def _split_lines(text: str, source: str) -> list[tuple[str, list[_Opt], int]]:
    """[(section name, options, line)] in file order."""
    sections: list[tuple[str, list[_Opt], int]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = re.split(r"\s[#;]", raw, maxsplit=1)[0].strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise FioJobError(f"malformed section header {raw.strip()!r}", source=source, line=lineno)
            sections.append((line[1:-1].strip(), [], lineno))
            continue
        if not sections:
            raise FioJobError(f"option outside any [section]: {raw.strip()!r}", source=source, line=lineno)
        name, eq, value = line.partition("=")
        name = name.strip().lower()
        if not re.fullmatch(r"[a-z_][a-z0-9_-]*", name):
            raise FioJobError(f"malformed line {raw.strip()!r}", source=source, line=lineno)
        sections[-1][1].append(_Opt(ALIASES.get(name, name), value.strip() if eq else None, lineno))
    return sections


@dataclass(frozen=True)
class FioJobFile:
    """What a job file asks for: its jobs (one per numjobs clone), the options it set that
    do not shape the I/O here (`ignored`, sorted), and `scaled`: a note when its offsets
    and sizes were scaled to fit the device ("" when not)."""
    jobs: list
    ignored: tuple = ()
    scaled: str = ""
    source: str = "<job>"

    @property
    def phases(self) -> list[list[JobSpec]]:
        """The jobs by stonewall group, in order."""
        out: dict[int, list] = {}
        for j in self.jobs:
            out.setdefault(j.phase, []).append(j)
        return [out[k] for k in sorted(out)]

    def notes(self) -> list[str]:
        """One line each for what was scaled and what was ignored."""
        out = [f"scaled: {self.scaled}"] if self.scaled else []
        if self.ignored:
            out.append("ignored (they do not shape the I/O here): " + ", ".join(self.ignored))
        return out


def load_fio_job(path, *, device_bytes: int) -> FioJobFile:
    """parse_fio_job on a file; errors name the file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return parse_fio_job(text, device_bytes=device_bytes, source=str(path))


def parse_fio_job(text: str, *, device_bytes: int, source: str = "<job>") -> FioJobFile:
    """Every job of a fio job file, as JobSpecs against a device of `device_bytes` bytes
    (one per numjobs clone). When the file's jobs reach past the end of the device, every
    offset and size given in bytes (and io_size) is scaled down just enough for them to
    end inside it, so the layout keeps its proportions -- a job for a 10 GiB file means a
    large span of the drive; percentages of the device stay as they are."""
    if device_bytes < 4096:
        raise ValueError(f"device of {device_bytes} bytes is smaller than one sector")
    glob: list[_Opt] = []
    raws = []
    phase = 0
    for name, opts, lineno in _split_lines(text, source):
        if name.lower() == "global":
            glob = glob + opts
            continue
        raw = _parse_section(name, glob + opts, lineno, len(raws), source)
        if raw["stonewall"] and raws:
            phase += 1
        raw["phase"] = phase
        raws.append(raw)
    if not raws:
        raise FioJobError("no job sections (only [global])", source=source)
    reach = max(sum(_reach(r, device_bytes)) for r in raws)
    scale = min((_fit(r, device_bytes) for r in raws), default=1.0)
    jobs = [j for r in raws for j in _resolve(r, device_bytes, scale, source)]
    ignored = sorted({o for r in raws for o in r["options"] if o in IGNORED})
    note = ""
    if scale < 1.0:
        note = (f"the jobs reach {int(reach):,} bytes into a device of {device_bytes:,}: every offset and size "
                f"in bytes (and io_size) x {scale:.4g}")
    return FioJobFile(jobs, tuple(ignored), note, source)


def _parse_section(section: str, opts: list[_Opt], lineno: int, index: int, source: str) -> dict:
    """The options of one job section, parsed (not yet resolved against a device)."""
    s: dict = dict(name=section, index=index, line=lineno, rw="read", bs=[None] * 3, bsrange=None, bssplit=None,
                   ba=None, size=None, filesize=None, offset=(0, False), offset_align=0, inc=(0, False),
                   io_size=0, number_ios=0, loops=1, rwmixread=50, map=True, dist=("random", 0.0, -1.0),
                   zones=None, sequence=(), stride=False, perc_rand=[100] * 3, runtime=0, time_based=False,
                   ramp=0, startdelay=(0, 0), stonewall=False, exitall=False, rate=[0] * 3, rate_iops=[0] * 3,
                   poisson=False, think=0, think_blocks=1, think_issue=False, think_iotime=0, fsync=0,
                   end_fsync=False, seed=DEFAULT_SEED, iodepth=1, numjobs=1, kb_base=1024, lines={},
                   options={o.name: o.value for o in opts})
    lines: dict[str, int] = s["lines"]
    # kb_base changes how every size parses, so it applies first
    for o in opts:
        if o.name == "kb_base":
            c = _Ctx(source, o)
            s["kb_base"] = c.integer()
            if s["kb_base"] not in (1000, 1024):
                raise c.fail("must be 1000 or 1024")
    kb = s["kb_base"]
    for o in opts:
        c = _Ctx(source, o)
        n = o.name
        lines[n] = o.line
        if n in IGNORED or n == "kb_base":
            continue
        if n == "name":
            s["name"] = c.text.strip()
        elif n == "rw":
            v = c.text.strip().lower()
            if ":" in v:
                raise c.fail(f"{v!r}: the ':<nr>' offset modifier is not modeled")
            if v not in RW_MODES:
                raise c.fail(f"{v!r} is not modeled (modeled: {', '.join(RW_MODES)})")
            s["rw"] = v
        elif n == "bs":
            s["bs"] = [None if p is None else c.size(kb, p) for p in c.per_ddir()]
        elif n == "bsrange":
            s["bsrange"] = [None if p is None else c.irange(kb, p) for p in c.per_ddir()]
        elif n == "bssplit":
            s["bssplit"] = [None if p is None else _bssplit(c, p, kb) for p in c.per_ddir()]
        elif n == "blockalign":
            vals = {c.size(kb, p) for p in c.per_ddir() if p is not None}
            if len(vals) > 1:
                raise c.fail("one alignment for all directions is modeled, not one per direction")
            s["ba"] = vals.pop() if vals else None
        elif n == "size":
            s["size"] = c.size_or_pct(kb)
        elif n == "filesize":
            s["filesize"] = c.irange(kb)
        elif n == "offset":
            s["offset"] = c.size_or_pct(kb)
        elif n == "offset_align":
            s["offset_align"] = c.size(kb)
        elif n == "offset_increment":
            s["inc"] = c.size_or_pct(kb)
        elif n == "io_size":
            s["io_size"] = c.size(kb)
        elif n == "number_ios":
            s["number_ios"] = c.integer()
        elif n == "loops":
            s["loops"] = c.integer(1)
        elif n == "rwmixread":
            s["rwmixread"] = c.integer(0, 100)
        elif n == "rwmixwrite":                       # fio: the later of the two wins
            s["rwmixread"] = 100 - c.integer(0, 100)
        elif n == "norandommap":
            s["map"] = not c.boolean()
        elif n == "random_distribution":
            s["dist"], s["zones"], s["sequence"] = _distribution(c, kb)
        elif n == "random_sequence_stride":
            s["stride"] = c.boolean()
        elif n == "percentage_random":
            s["perc_rand"] = [100 if p is None else _pct(c, p) for p in c.per_ddir()]
        elif n == "runtime":
            s["runtime"] = c.time_ns()
        elif n == "time_based":
            s["time_based"] = c.boolean()
        elif n == "ramp_time":
            s["ramp"] = c.time_ns()
        elif n == "startdelay":
            lo_t, sep, hi_t = c.text.strip().replace(":", "-").partition("-")
            lo = c.time_ns("s", lo_t)
            hi = c.time_ns("s", hi_t) if sep else lo
            s["startdelay"] = (min(lo, hi), max(lo, hi))
        elif n == "stonewall":
            s["stonewall"] = c.boolean()
        elif n == "exitall":
            s["exitall"] = c.boolean()
        elif n in ("rate", "rate_iops"):
            s[n] = [0 if p is None else c.size(kb, p) if n == "rate" else _int(c, p) for p in c.per_ddir()]
        elif n == "rate_process":
            v = c.text.strip().lower()
            if v not in ("linear", "poisson"):
                raise c.fail(f"{v!r} is not linear or poisson")
            s["poisson"] = v == "poisson"
        elif n == "thinktime":
            s["think"] = c.time_ns("us")
        elif n == "thinktime_spin":
            c.time_ns("us")                           # spent inside thinktime: the stall is thinktime
        elif n == "thinktime_blocks":
            s["think_blocks"] = c.integer(1)
        elif n == "thinktime_blocks_type":
            v = c.text.strip().lower()
            if v not in ("complete", "issue"):
                raise c.fail(f"{v!r} is not complete or issue")
            s["think_issue"] = v == "issue"
        elif n == "thinktime_iotime":
            s["think_iotime"] = c.time_ns()
        elif n == "fsync":
            s["fsync"] = c.integer()
        elif n == "end_fsync":
            s["end_fsync"] = c.boolean()
        elif n == "nrfiles":
            if c.integer(1) != 1:
                raise c.fail("one file per job is modeled (nrfiles=1)")
        elif n == "randseed":
            s["seed"] = c.integer(0, 2**64 - 1)
        elif n == "randrepeat":
            c.boolean()                                # runs here always repeat: randseed varies them
        elif n == "iodepth":
            s["iodepth"] = c.integer(1, 1 << 16)
        elif n == "numjobs":
            s["numjobs"] = c.integer(1, 1 << 12)
        else:
            raise c.fail("not modeled: this fio option would change the I/O pattern, or is not a fio "
                         "option (docs/fio-jobs.md lists the options ox compare takes)")
    if s["time_based"] and not s["runtime"]:
        raise FioJobError("needs a runtime", source=source, line=lines["time_based"], option="time_based")
    if s["think_iotime"] and "thinktime_blocks" not in lines:
        s["think_blocks"] = 0                          # fio: iotime alone, without the per-block default
    return s


def _reach(s: dict, device: int) -> tuple[float, float]:
    """How far into the device the last clone's region ends, before any scaling: (the part
    given as percentages of the device, the part given in bytes)."""
    pct = absolute = 0.0
    for v, times in ((s["offset"], 1), (s["inc"], s["numjobs"] - 1),
                     (s["size"] if not s["filesize"] else None, 1)):
        if v is not None:
            pct, absolute = (pct + v[0] * times * device, absolute) if v[1] else (pct, absolute + v[0] * times)
    if s["filesize"]:
        absolute += s["filesize"][1]
    return pct, max(absolute, LBA_NBYTES if not pct else 0)


def _fit(s: dict, device: int) -> float:
    """The factor on the byte extents that makes the job end inside the device (1: it
    does already; percentages alone past the end are capped there, not scaled)."""
    pct, absolute = _reach(s, device)
    if pct + absolute <= device or pct >= device or not absolute:
        return 1.0
    return (device - pct) / absolute


def _resolve(s: dict, device: int, scale: float, source: str) -> list[JobSpec]:
    """The job's clones as JobSpecs on a device of `device` bytes, extents x `scale`."""
    lines = s["lines"]

    def fail(option: str, message: str) -> FioJobError:
        return FioJobError(message, source=source, line=lines.get(option, s["line"]), option=option)

    def val(v):                                       # percentages of the device are not scaled
        return v[0] * device if v[1] else v[0] * scale

    dirs = RW_MODES[s["rw"]]
    block_sizes = {}
    for i, d in enumerate(DDIRS):
        opt = "bs"
        if s["bssplit"] is not None and s["bssplit"][i] is not None:
            split, opt = s["bssplit"][i], "bssplit"
        elif s["bsrange"] is not None and s["bsrange"][i] is not None:
            split, opt = _bsrange(*s["bsrange"][i]), "bsrange"
        else:
            split = ((s["bs"][i] or 4096, 100.0),)
        if d in dirs:
            for size, _ in split:
                if size <= 0 or size % LBA_NBYTES:
                    raise fail(opt, f"{size} bytes is not a multiple of {LBA_NBYTES} bytes (the logical block)")
        block_sizes[d] = tuple(split)
    min_bs = min(sz for d in dirs for sz, _ in block_sizes[d])
    ba = s["ba"] if s["rw"].startswith("rand") else None      # fio aligns only random I/O to it
    if ba is not None and (ba <= 0 or ba % LBA_NBYTES):
        raise fail("blockalign", f"{ba} bytes is not a multiple of {LBA_NBYTES} bytes (the logical block)")
    grain = ba or min_bs
    kind, param, center = s["dist"]
    # fio: a blockalign other than the block size, or a non-uniform distribution, turns the map off
    random_map = s["map"] and grain == min_bs and kind == "random"

    def align(x: float, to: int) -> int:
        return int(x) - int(x) % to

    offset = align(val(s["offset"]), s["offset_align"] or grain) if s["offset"][1] or scale != 1.0 \
        else int(s["offset"][0])
    inc = align(val(s["inc"]), s["offset_align"] or grain) if s["inc"][1] or scale != 1.0 else int(s["inc"][0])
    if offset % LBA_NBYTES:
        raise fail("offset", f"{offset} is not a multiple of {LBA_NBYTES} bytes (the logical block)")
    if inc % LBA_NBYTES:
        raise fail("offset_increment", f"{inc} is not a multiple of {LBA_NBYTES} bytes (the logical block)")
    rate = [r if r else iops * min(sz for sz, _ in block_sizes[d]) for r, iops, d in
            zip(s["rate"], s["rate_iops"], DDIRS)]       # fio: rate_iops x the smallest block size
    seq_rng = np.random.default_rng([s["seed"], s["index"], 1 << 20])
    out = []
    for k in range(s["numjobs"]):
        start = offset + k * inc
        if start >= device:
            raise fail("offset_increment" if k else "offset",
                       f"clone {k} would start at {start}, past the device's {device} bytes")
        if s["filesize"]:
            lo, hi = s["filesize"]
            want = (lo + int(seq_rng.integers(0, hi - lo + 1))) * scale
            opt = "filesize"
        elif s["size"]:
            want, opt = val(s["size"]), "size"
        else:
            want, opt = device - start, "size"
        region = min(int(want), device - start)
        region -= region % grain
        if region < grain:
            raise fail(opt, f"the region of {region} bytes holds no block of {grain} bytes")
        if s["io_size"]:
            io_bytes = int(s["io_size"] * scale)
        elif s["filesize"] and s["size"]:              # fio: with filesize, size is the io_size
            io_bytes = int(val(s["size"]))
        else:
            io_bytes = region
        io_bytes -= io_bytes % LBA_NBYTES
        if io_bytes <= 0:
            raise fail("io_size", f"less than one block of {LBA_NBYTES} bytes")
        zones = {}
        if s["zones"] is not None:
            for i, d in enumerate(DDIRS):
                z = s["zones"][i]
                if not z:
                    continue
                if kind == "zoned_abs":
                    total = z[-1][2]
                    f = min(1.0, scale, region / total)
                    z = tuple((a, int(lo * f) - int(lo * f) % grain, int(hi * f) - int(hi * f) % grain)
                              for a, lo, hi in z)
                zones[d] = z
        if kind == "sequence" and max(s["sequence"]) >= region // grain:
            raise fail("random_distribution", f"block {max(s['sequence'])} is past the region's "
                                              f"{region // grain} blocks of {grain} bytes")
        lo_d, hi_d = s["startdelay"]
        delay = lo_d + int(seq_rng.integers(0, hi_d - lo_d + 1)) if hi_d > lo_d else lo_d
        seed = int(np.random.SeedSequence([s["seed"], s["index"], k]).generate_state(1, np.uint64)[0])
        out.append(JobSpec(
            name=s["name"], clone=k, rw=s["rw"], block_sizes=block_sizes, region_offset=start, region_bytes=region,
            io_bytes=io_bytes, grain=grain, index=s["index"], phase=s["phase"], rwmixread=s["rwmixread"],
            random_map=random_map, distribution=kind, dist_param=param, dist_center=center, zones=zones,
            sequence=tuple(s["sequence"]), sequence_stride=s["stride"], percentage_random=tuple(s["perc_rand"]),
            number_ios=s["number_ios"], loops=s["loops"], iodepth=s["iodepth"], runtime_ns=s["runtime"],
            time_based=s["time_based"], ramp_ns=s["ramp"], start_ns=delay, rate_bps=tuple(rate),
            rate_poisson=s["poisson"], thinktime_ns=s["think"], thinktime_blocks=s["think_blocks"],
            thinktime_issue=s["think_issue"], thinktime_iotime_ns=s["think_iotime"], fsync_every=s["fsync"],
            end_fsync=s["end_fsync"], exitall=s["exitall"], seed=seed, line=s["line"], options=s["options"]))
    return out


def _int(c: _Ctx, text: str) -> int:
    try:
        v = int(text.strip(), 0)
    except ValueError:
        raise c.fail(f"{text.strip()!r} is not an integer") from None
    if v < 0:
        raise c.fail(f"{v} is negative")
    return v


def _pct(c: _Ctx, text: str) -> int:
    v = _int(c, text)
    if v > 100:
        raise c.fail(f"{v} is more than 100")
    return v


def _bsrange(lo: int, hi: int) -> tuple[tuple[int, float], ...]:
    """fio's bsrange draw as weights: minbs + maxbs x u, rounded down to a multiple of
    minbs and capped at maxbs (get_next_buflen), so k x minbs has the share of u that
    lands on it."""
    if lo == hi:
        return ((lo, 100.0),)
    out: dict[int, float] = {}
    k = 1
    while True:
        u0 = (k - 1) * lo / hi                      # minbs + maxbs*u in [k*lo, (k+1)*lo)
        if u0 >= 1.0:
            break
        u1 = min(1.0, k * lo / hi)
        size = min(k * lo, hi)
        out[size] = out.get(size, 0.0) + 100.0 * (u1 - u0)
        k += 1
    return tuple((s, w) for s, w in out.items() if w > 0)


def _bssplit(c: _Ctx, text: str, kb: int) -> tuple[tuple[int, float], ...]:
    entries, blanks, total = [], 0, 0.0
    for item in text.split(":"):
        item = item.strip()
        if not item:
            raise c.fail(f"empty entry in {text!r}")
        size_t, slash, pct_t = item.partition("/")
        size = c.size(kb, size_t)
        if not slash or not pct_t.strip():
            entries.append([size, None])
            blanks += 1
            continue
        try:
            pct = float(pct_t)
        except ValueError:
            raise c.fail(f"{pct_t!r} is not a percentage") from None
        if pct < 0:
            raise c.fail(f"negative percentage in {text!r}")
        entries.append([size, pct])
        total += pct
    if total > 100 + 1e-9:
        raise c.fail(f"percentages in {text!r} add up to {total:g}, more than 100")
    if blanks:
        for e in entries:
            if e[1] is None:
                e[1] = (100.0 - total) / blanks
    elif abs(total - 100) > 1e-9:
        raise c.fail(f"percentages in {text!r} add up to {total:g}, not 100")
    return tuple((size, pct) for size, pct in entries if pct > 0)


def _zones(c: _Ctx, text: str, kb: int, absolute: bool) -> tuple[tuple[int, int, int], ...]:
    """One direction's 'access/size:...' of zoned (size in percent) or zoned_abs (bytes):
    ((access %, start, end), ...), blank access or size percentages sharing the rest
    evenly, as fio's zone_split_ddir."""
    items = []
    for item in text.split(":"):
        a_t, slash, z_t = item.strip().partition("/")
        if not slash:
            raise c.fail(f"{item.strip()!r} is not ACCESS/{'SIZE' if absolute else 'PERCENT'}")
        a = None if not a_t.strip() else _pct(c, a_t)
        if absolute:
            z = c.size(kb, z_t)
        else:
            z = None if not z_t.strip() else _pct(c, z_t)
        items.append([a, z])
    if len(items) > 256:
        raise c.fail("at most 256 zones")
    acc = sum(a for a, _ in items if a is not None)
    miss = sum(a is None for a, _ in items)
    if acc > 100:
        raise c.fail(f"access percentages add up to {acc}, more than 100")
    for it in items:
        if it[0] is None:
            it[0] = (100 - acc) // miss
    if sum(a for a, _ in items) != 100:
        raise c.fail(f"access percentages add up to {sum(a for a, _ in items)}, not 100")
    if not absolute:
        sz = sum(z for _, z in items if z is not None)
        zmiss = sum(z is None for _, z in items)
        if sz > 100:
            raise c.fail(f"zone sizes add up to {sz}%, more than 100")
        for it in items:
            if it[1] is None:
                it[1] = (100 - sz) // zmiss
    out, pos = [], 0
    for a, z in items:
        out.append((a, pos, pos + z))
        pos += z
    return tuple(out)


def _distribution(c: _Ctx, kb: int) -> tuple[tuple[str, float, float], list | None, tuple]:
    """random_distribution: ((kind, parameter, center), zones per direction, sequence)."""
    t = c.text.strip().lower()
    for kind in ("zoned_abs", "zoned"):
        if t.startswith(kind + ":") or t.startswith(kind + "="):
            zones = [None if p is None else _zones(c, p, kb, kind == "zoned_abs")
                     for p in c.per_ddir(t[len(kind) + 1:])]
            return (kind, 0.0, -1.0), zones, ()
    if t.startswith("sequence:"):
        try:
            seq = tuple(int(x) for x in t[len("sequence:"):].split(","))
        except ValueError:
            raise c.fail(f"{t!r}: the sequence is block numbers separated by commas") from None
        if not 1 <= len(seq) <= 64 or min(seq) < 0:
            raise c.fail("a sequence has 1 to 64 block numbers, none negative")
        return ("sequence", 0.0, -1.0), None, seq
    if "," in t:
        raise c.fail("one distribution for all directions is modeled, not one per direction (except zoned)")
    kind, _, rest = t.partition(":")
    kind = {"gauss": "normal"}.get(kind, kind)
    if kind == "random":
        if rest:
            raise c.fail("random takes no parameter")
        return ("random", 0.0, -1.0), None, ()
    if kind not in ("zipf", "pareto", "normal"):
        raise c.fail(f"{kind!r} is not a distribution (random, zipf, pareto, normal, zoned, zoned_abs, "
                     "sequence)")
    params = rest.split(":") if rest else []
    if len(params) > 2 or (kind != "normal" and not params):
        raise c.fail(f"{kind} takes {kind}:VALUE[:CENTER]")
    try:
        value = float(params[0]) if params else 0.0
        center = float(params[1]) if len(params) == 2 else -1.0
    except ValueError:
        raise c.fail(f"{t!r}: parameters must be numbers") from None
    if kind == "zipf" and (value <= 0 or value == 1.0 or not math.isfinite(value)):
        raise c.fail("zipf theta must be positive and not 1")
    if kind == "pareto" and not 0 < value < 1:
        raise c.fail("pareto h must be in (0, 1)")
    if kind == "normal" and not 0 <= value < 100:
        raise c.fail("the normal deviation must be in [0, 100)")
    if len(params) == 2 and not 0 <= center <= 1:
        raise c.fail("the center must be in [0, 1]")
    return (kind, value, center), None, ()
