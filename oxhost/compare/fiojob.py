"""fio job files as `ox compare` workloads: the common subset of fio's job-file format,
parsed into plain job descriptions that generate the same kind of I/O stream fio would.

`parse_fio_job(text, device_bytes=...)` returns one `JobSpec` per job section and numjobs
clone, each with its own seed; `JobSpec.requests(rng)` yields `(op, offset, nbytes)` with
op in {"read", "write", "trim"} and byte offsets on the device, deterministically for a
given rng. The runner decides the queue depth (`iodepth`) and stops time-based jobs at
`runtime_ns` of virtual time.

The file format: INI sections; `[global]` options apply to every job section after it
(a later `[global]` adds to them for the jobs that follow); a job section starts with a
copy of them and may override any; `name=` renames the job; lines starting with `#` or
`;` are comments, as is anything after ` #` or ` ;`; an option without `=` is a boolean
set to true (`norandommap`, `time_based`).

Options that shape the I/O (supported):
  rw / readwrite     read, write, randread, randwrite, rw / readwrite, randrw, trim, randtrim
  bs / blocksize     size, or per direction "read,write,trim" with fio's comma rules
  bssplit            size/pct:size/pct..., blank percentages share the rest; per direction
                     with commas; takes precedence over bs
  blockalign / ba    alignment of random offsets (turns the random map off, like fio)
  size               bytes or N% of the device (default: the device from offset on)
  offset             bytes or N% (aligned down to the smallest block size)
  offset_increment   added once per numjobs clone (clone k starts at offset + k x increment)
  io_size / io_limit bytes to transfer (default: size); may exceed size, then it wraps
  number_ios         stop after this many requests
  loops              repeat the job's I/O this many times
  rwmixread / rwmixwrite  read share of rw / randrw (default 50)
  norandommap        random offsets may repeat; without it every block of the region is
                     touched once per pass, as fio's random map does
  random_distribution  random, zipf:THETA[:CENTER], pareto:H[:CENTER] (over blocks, as fio:
                     ranks drawn with Gray et al.'s zipf method or fio's pareto power, then
                     scattered over the region by a hash); zipf and pareto turn the map off
  runtime, time_based  runtime is virtual time (`runtime_ns`); with time_based the job
                     repeats until then, so `requests()` never ends by itself
  randseed / seed    base seed; randrepeat / allrandrepeat are accepted: runs here are
                     always reproducible (change randseed to vary them)
  iodepth, numjobs, name, kb_base (1024: k = 1024 as in fio's default; 1000: k = 1000)

Accepted and ignored (they do not change the I/O pattern here): IGNORED below, e.g.
ioengine, direct, buffered, filename, directory, group_reporting, thread, ramp_time,
startdelay, stonewall, end_fsync, random_generator, logging and CPU options.

Refused with an error naming the option and line: everything else, notably options that
change the pattern or timing in ways the runner does not model (rate*, thinktime*, fsync,
verify, read_iolog, bsrange, percentage_random, zone options, rw=...:N modifiers,
random_distribution normal/zoned).

Differences from fio, by design: an I/O that would cross the end of the region is
shortened to end there; random offsets of every direction are multiples of the job's
smallest block size (or blockalign), where fio aligns each direction to its own.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from collections.abc import Iterator

import numpy as np

__all__ = ["FioJobError", "IGNORED", "JobSpec", "SUPPORTED", "load_fio_job", "parse_fio_job"]

DDIRS = ("read", "write", "trim")
RW_MODES = {"read": ("read",), "write": ("write",), "trim": ("trim",), "randread": ("read",),
            "randwrite": ("write",), "randtrim": ("trim",), "rw": ("read", "write"),
            "readwrite": ("read", "write"), "randrw": ("read", "write")}
SUPPORTED = ("name", "rw", "readwrite", "bs", "blocksize", "bssplit", "blockalign", "ba", "size", "offset",
             "offset_increment", "io_size", "io_limit", "number_ios", "loops", "rwmixread", "rwmixwrite",
             "norandommap", "random_distribution", "runtime", "time_based", "randseed", "seed",
             "randrepeat", "allrandrepeat", "iodepth", "numjobs", "kb_base")
IGNORED = frozenset((
    "ioengine", "direct", "buffered", "filename", "filename_format", "directory", "description",
    "group_reporting", "thread", "invalidate", "end_fsync", "fsync_on_close", "exitall", "exitall_on_error",
    "stonewall", "wait_for_previous", "new_group", "wait_for", "ramp_time", "startdelay",
    "random_generator", "continue_on_error", "ioscheduler", "overwrite", "fallocate", "pre_read",
    "create_on_open", "unlink", "allow_mounted_write", "write_iolog", "stats",
    "log_avg_msec", "write_bw_log", "write_lat_log", "write_iops_log", "write_hist_log", "per_job_logs",
    "log_offset", "log_max_value", "lat_percentiles", "clat_percentiles", "slat_percentiles",
    "percentile_list", "status_interval", "unified_rw_reporting", "disable_lat", "disable_clat",
    "disable_slat", "disable_bw_measurement", "gtod_reduce", "clocksource",
    "iodepth_batch", "iodepth_batch_submit", "iodepth_batch_complete", "iodepth_batch_complete_min",
    "iodepth_batch_complete_max", "iodepth_low", "userspace_reap", "hipri", "fixedbufs", "registerfiles",
    "sqthread_poll", "cpus_allowed", "cpus_allowed_policy", "cpumask", "nice", "prio", "prioclass",
    "numa_cpu_nodes", "numa_mem_policy", "iomem", "mem", "iomem_align", "mem_align", "lockmem",
    "refill_buffers", "buffer_compress_percentage", "buffer_compress_chunk", "dedupe_percentage",
    "scramble_buffers", "zero_buffers", "buffer_pattern", "uid", "gid"))
DEFAULT_SEED = 0xB1899BED
_ZIPF_MAX_TERMS = 10_000_000        # fio caps the zeta sum the same way (ZIPF_MAX_GEN)
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

    Sizes are bytes. `block_sizes` maps each direction to ((size, weight), ...) with
    weights summing to 100. `region_offset`/`region_bytes` is where the job does I/O;
    `io_bytes` is how much one loop transfers; `runtime_ns` = 0 means no time bound.
    """

    name: str
    clone: int
    rw: str
    block_sizes: dict
    region_offset: int
    region_bytes: int
    io_bytes: int
    grain: int
    rwmixread: int = 50
    random_map: bool = True
    distribution: str = "random"
    dist_param: float = 0.0
    dist_center: float = -1.0
    number_ios: int = 0
    loops: int = 1
    iodepth: int = 1
    runtime_ns: int = 0
    time_based: bool = False
    seed: int = DEFAULT_SEED
    line: int = 0
    options: dict = field(default_factory=dict, compare=False)

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

    def describe(self) -> str:
        def sizes(d):
            return ":".join(f"{s // 1024}k/{w:g}" for s, w in self.block_sizes[d])
        parts = [f"{self.name}#{self.clone}", self.rw, " ".join(f"{d}={sizes(d)}" for d in self.directions),
                 f"region={self.region_offset}+{self.region_bytes}"]
        if len(self.directions) > 1:
            parts.append(f"rwmixread={self.rwmixread}")
        if not self.sequential:
            dist = self.distribution + (f":{self.dist_param:g}" if self.distribution != "random" else "")
            parts.append(dist + ("" if self.random_map else " norandommap"))
        parts.append(f"runtime={self.runtime_ns / 1e9:g}s" + (" time_based" if self.time_based else "")
                     if self.runtime_ns else f"io={self.total_bytes}")
        return " ".join(parts)

    # ------------------------------------------------------------ the request stream
    def requests(self, rng: np.random.Generator | None = None) -> Iterator[tuple[str, int, int]]:
        """(op, offset, nbytes) in issue order. Deterministic for a given rng (default:
        `np.random.default_rng(self.seed)`); the direction, size and offset streams are
        independent children of it, so changing bssplit leaves the offsets alone."""
        rng = np.random.default_rng(self.seed) if rng is None else rng
        g_dir, g_bs, g_off = rng.spawn(3)
        r_dir, r_bs = _Uniform(g_dir), _Uniform(g_bs)
        dirs = self.directions
        bs_tables = {d: (np.array([s for s, _ in self.block_sizes[d]], dtype=np.int64),
                         np.cumsum([w for _, w in self.block_sizes[d]]) / 100.0) for d in dirs}
        region, grain, base = self.region_bytes, self.grain, self.region_offset
        nblocks = region // grain
        offsets = _Offsets(self, nblocks, g_off)
        limit = self.total_bytes
        count = 0
        done = 0
        pos = dict.fromkeys(dirs, 0)
        mix = self.rwmixread / 100.0
        while True:
            if self.number_ios and count >= self.number_ios:
                return
            if limit is not None and done >= limit:
                return
            d = dirs[0] if len(dirs) == 1 else ("read" if r_dir.next() < mix else "write")
            sizes, cum = bs_tables[d]
            bs = int(sizes[0]) if sizes.size == 1 else int(sizes[min(np.searchsorted(cum, r_bs.next(), "right"),
                                                                      sizes.size - 1)])
            if self.sequential:
                off = pos[d]
                n = min(bs, region - off)
                pos[d] = 0 if off + n >= region else off + n
            else:
                off, n = offsets.next(bs)
            if limit is not None:
                n = min(n, limit - done)
            yield d, base + off, n
            count += 1
            done += n


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
    """Random offsets (in bytes within the region) and lengths of one job."""

    def __init__(self, job: JobSpec, nblocks: int, rng: np.random.Generator):
        self.job, self.n = job, nblocks
        self.grain, self.region = job.grain, job.region_bytes
        self.map = _BlockMap(nblocks) if job.random_map and job.distribution == "random" else None
        self.r = _Uniform(rng)
        self.skew = None
        if job.distribution != "random":
            self.skew = _Skewed(job.distribution, nblocks, job.dist_param, job.dist_center, rng)

    def next(self, bs: int) -> tuple[int, int]:
        g = self.grain
        if self.skew is not None:
            b = self.skew.next()
        else:
            b = self.r.integers(self.n)
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
    over the region the way fio's __hash_u64 spreads its zipf/pareto ranks."""
    v = v.astype(np.uint64)
    v = (v ^ (v >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    v = (v ^ (v >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return v ^ (v >> np.uint64(31))


class _Skewed:
    """Block numbers of a zipf or pareto distribution over n blocks, as fio's lib/zipf.c
    draws them: a rank, hashed, plus an offset (random, or n x center), modulo n.

    zipf: Gray et al., 'Quickly generating billion-record synthetic databases' (the zeta
    sum capped at 10^7 terms like fio); pareto: rank (n - 1) x u^(log h / log(1 - h)).
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
        else:
            self.power = math.log(param) / math.log(1.0 - param)
        self.off = int(n * center) if center >= 0 else int(rng.integers(0, 1 << 32))
        self.buf = np.empty(0, dtype=np.int64)
        self.i = 0

    def _fill(self) -> None:
        u = self.rng.random(_BATCH)
        n = self.n
        if self.kind == "zipf":
            z = u * self.zetan
            tail = np.floor(n * np.maximum(self.eta * u - self.eta + 1.0, 0.0) ** self.alpha)
            rank = np.where(z < 1.0, 1, np.where(z < self.zeta2, 2, 1 + np.minimum(tail, n - 1))) - 1
        else:
            rank = np.floor((n - 1) * u ** self.power)
        h = _scatter(rank.astype(np.int64)) % np.uint64(n)
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
_TIME_NS = {None: 10**9, "s": 10**9, "sec": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
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

    def size_or_pct(self, kb_base: int, whole: int) -> tuple[int, bool]:
        t = self.text.strip()
        if t.endswith("%"):
            try:
                pct = float(t[:-1])
            except ValueError:
                raise self.fail(f"{t!r} is not a percentage") from None
            if not 0 < pct <= 100:
                raise self.fail(f"{t!r}: a percentage must be in (0, 100]")
            return int(whole * pct / 100), True
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

    def time_ns(self) -> int:
        t = self.text.strip()
        m = _TIME.match(t)
        if not m:
            raise self.fail(f"{t!r} is not a time (e.g. 30, 10s, 500ms, 2m)")
        return int(m.group(1)) * _TIME_NS[m.group(2).lower() if m.group(2) else None]

    def per_ddir(self) -> list[str | None]:
        """fio's comma rule: read,write,trim; a value not ending in a comma carries on."""
        parts = self.text.split(",")
        if len(parts) > 3:
            raise self.fail("at most three comma-separated values (read,write,trim)")
        out = []
        for i in range(3):
            p = parts[i] if i < len(parts) else parts[-1]
            out.append(p.strip() or None)
        return out


def _split_lines(text: str, source: str) -> list[tuple[str | None, list[_Opt], int]]:
    """[(section name, options, line)] in file order."""
    sections: list[tuple[str | None, list[_Opt], int]] = []
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
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise FioJobError(f"malformed line {raw.strip()!r}", source=source, line=lineno)
        sections[-1][1].append(_Opt(name, value.strip() if eq else None, lineno))
    return sections


def load_fio_job(path, *, device_bytes: int, sector_nbytes: int = 4096) -> list[JobSpec]:
    """parse_fio_job on a file; errors name the file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return parse_fio_job(text, device_bytes=device_bytes, sector_nbytes=sector_nbytes, source=str(path))


def parse_fio_job(text: str, *, device_bytes: int, sector_nbytes: int = 4096,
                  source: str = "<job>") -> list[JobSpec]:
    """Every job of a fio job file, as JobSpecs against a device of `device_bytes` bytes
    (one per numjobs clone). Sizes must be multiples of `sector_nbytes`."""
    if device_bytes < sector_nbytes:
        raise ValueError(f"device of {device_bytes} bytes is smaller than one sector")
    glob: list[_Opt] = []
    jobs: list[JobSpec] = []
    index = 0
    for name, opts, lineno in _split_lines(text, source):
        if name.lower() == "global":
            glob = glob + opts
            continue
        jobs.extend(_build(name, glob + opts, lineno, index, device_bytes, sector_nbytes, source))
        index += 1
    if not jobs:
        raise FioJobError("no job sections (only [global])", source=source)
    return jobs


def _build(section: str, opts: list[_Opt], lineno: int, index: int, device_bytes: int, sector: int,
           source: str) -> list[JobSpec]:
    s: dict = dict(name=section, rw="read", bs=[None] * 3, bssplit=None, ba=None, size=None, offset=0,
                   offset_pct=False, inc=0, inc_pct=False, io_size=0, number_ios=0, loops=1, rwmixread=50,
                   map=True, dist=("random", 0.0, -1.0), runtime=0, time_based=False, seed=DEFAULT_SEED,
                   iodepth=1, numjobs=1, kb_base=1024)
    lines: dict[str, int] = {}
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
        elif n in ("rw", "readwrite"):
            v = c.text.strip().lower()
            if ":" in v:
                raise c.fail(f"{v!r}: the ':<nr>' offset modifier is not supported")
            if v not in RW_MODES:
                raise c.fail(f"{v!r} is not supported (supported: {', '.join(RW_MODES)})")
            s["rw"] = v
        elif n in ("bs", "blocksize"):
            s["bs"] = [None if p is None else c.size(kb, p) for p in c.per_ddir()]
        elif n == "bssplit":
            s["bssplit"] = [None if p is None else _bssplit(c, p, kb) for p in c.per_ddir()]
        elif n in ("blockalign", "ba"):
            if "," in c.text:
                raise c.fail("one alignment for all directions is supported, not per direction")
            s["ba"] = c.size(kb)
        elif n == "size":
            s["size"] = c.size_or_pct(kb, device_bytes)[0]
        elif n == "offset":
            s["offset"], s["offset_pct"] = c.size_or_pct(kb, device_bytes)
        elif n == "offset_increment":
            s["inc"], s["inc_pct"] = c.size_or_pct(kb, device_bytes)
        elif n in ("io_size", "io_limit"):
            s["io_size"] = c.size(kb)
        elif n == "number_ios":
            s["number_ios"] = c.integer()
        elif n == "loops":
            s["loops"] = c.integer(1)
        elif n == "rwmixread":
            s["rwmixread"] = c.integer(0, 100)
        elif n == "rwmixwrite":
            s["rwmixread"] = 100 - c.integer(0, 100)
        elif n == "norandommap":
            s["map"] = not c.boolean()
        elif n == "random_distribution":
            s["dist"] = _distribution(c)
        elif n == "runtime":
            s["runtime"] = c.time_ns()
        elif n == "time_based":
            s["time_based"] = c.boolean()
        elif n in ("randseed", "seed"):
            s["seed"] = c.integer(0, 2**64 - 1)
        elif n in ("randrepeat", "allrandrepeat"):
            c.boolean()
        elif n == "iodepth":
            s["iodepth"] = c.integer(1, 1 << 16)
        elif n == "numjobs":
            s["numjobs"] = c.integer(1, 1 << 12)
        else:
            raise c.fail("unsupported fio option (supported: " + ", ".join(SUPPORTED)
                         + "; ignored: ioengine, direct, filename and other options that do not "
                           "change the I/O pattern)")

    def fail(option: str, message: str) -> FioJobError:
        return FioJobError(message, source=source, line=lines.get(option, lineno), option=option)

    dirs = RW_MODES[s["rw"]]
    block_sizes = {}
    for i, d in enumerate(DDIRS):
        split = s["bssplit"][i] if s["bssplit"] is not None else None
        if split is None:
            split = ((s["bs"][i] or 4096, 100.0),)
        for size, _ in split:
            opt = "bssplit" if s["bssplit"] is not None and s["bssplit"][i] is not None else "bs"
            if size <= 0 or size % sector:
                raise fail(opt, f"{size} bytes is not a multiple of the {sector}-byte sector")
        block_sizes[d] = tuple(split)
    used = [sz for d in dirs for sz, _ in block_sizes[d]]
    grain = s["ba"] or min(used)
    if s["ba"] is not None and (s["ba"] <= 0 or s["ba"] % sector):
        raise fail("blockalign" if "blockalign" in lines else "ba",
                   f"{s['ba']} bytes is not a multiple of the {sector}-byte sector")
    dist, param, center = s["dist"]
    random_map = s["map"] and s["ba"] is None and dist == "random"
    if s["time_based"] and not s["runtime"]:
        raise fail("time_based", "needs a runtime")
    offset = s["offset"]
    if s["offset_pct"]:
        offset -= offset % grain
    elif offset % sector:
        raise fail("offset", f"{offset} is not a multiple of the {sector}-byte sector")
    inc = s["inc"] - s["inc"] % grain if s["inc_pct"] else s["inc"]
    if inc % sector:
        raise fail("offset_increment", f"{inc} is not a multiple of the {sector}-byte sector")

    out = []
    for k in range(s["numjobs"]):
        start = offset + k * inc
        if start >= device_bytes:
            raise fail("offset_increment" if k else "offset",
                       f"clone {k} would start at {start}, past the device's {device_bytes} bytes")
        region = device_bytes - start if s["size"] is None else min(s["size"], device_bytes - start)
        region -= region % grain
        if region < grain:
            raise fail("size", f"the region of {region} bytes holds no block of {grain} bytes")
        io_bytes = s["io_size"] or region
        io_bytes -= io_bytes % grain
        if io_bytes <= 0:
            raise fail("io_size", f"less than one block of {grain} bytes")
        seed = int(np.random.SeedSequence([s["seed"], index, k]).generate_state(1, np.uint64)[0])
        out.append(JobSpec(name=s["name"], clone=k, rw=s["rw"], block_sizes=block_sizes, region_offset=start,
                           region_bytes=region, io_bytes=io_bytes, grain=grain, rwmixread=s["rwmixread"],
                           random_map=random_map, distribution=dist, dist_param=param, dist_center=center,
                           number_ios=s["number_ios"], loops=s["loops"], iodepth=s["iodepth"],
                           runtime_ns=s["runtime"], time_based=s["time_based"], seed=seed, line=lineno,
                           options={o.name: o.value for o in opts}))
    return out


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


def _distribution(c: _Ctx) -> tuple[str, float, float]:
    t = c.text.strip().lower()
    if "," in t:
        raise c.fail("one distribution for all directions is supported, not per direction")
    kind, _, rest = t.partition(":")
    if kind == "random":
        if rest:
            raise c.fail("random takes no parameter")
        return "random", 0.0, -1.0
    if kind not in ("zipf", "pareto"):
        raise c.fail(f"{kind!r} is not supported (supported: random, zipf:THETA, pareto:H)")
    params = rest.split(":") if rest else []
    if not 1 <= len(params) <= 2:
        raise c.fail(f"{kind} needs a parameter ({kind}:VALUE[:CENTER])")
    try:
        value = float(params[0])
        center = float(params[1]) if len(params) == 2 else -1.0
    except ValueError:
        raise c.fail(f"{t!r}: parameters must be numbers") from None
    if kind == "zipf" and (value <= 0 or value == 1.0 or not math.isfinite(value)):
        raise c.fail("zipf theta must be positive and not 1")
    if kind == "pareto" and not 0 < value < 1:
        raise c.fail("pareto h must be in (0, 1)")
    if len(params) == 2 and not 0 <= center <= 1:
        raise c.fail("the center must be in [0, 1]")
    return kind, value, center
