"""Requests at queue depth in virtual time: a discrete-event loop that issues the requests
of several jobs, each with up to `qd` in flight, and runs each one synchronously through
the stack at its issue time.

A heap holds each job's next request with its issue time; the earliest is popped, the
device's arrival clock is set to that time (`Machine.issue_at`), the request runs, and
the host clock (hostclock.py) says when it completed; the job's freed slot issues its
next request at that completion (or at the request's own time in a timed trace replay,
whichever is later). Resource contention between requests in flight is the timing
model's per-LUN and per-channel busy-until stamps. Ties go to the lower job index, so the
same jobs give the same times, always. Every write is stamped (LBA, generation) and
every read checked against the shadow of what was written when it ran.

A request that does not cover whole sectors is served as a drive with 4 KiB sectors and
512-byte logical blocks serves it: a read reads the sectors it touches; a write first
reads the partial sectors at its edges and, when they are in, writes every sector it
touches whole (read-modify-write: the host asked for n bytes, the device reads and
programs whole sectors); a discard drops only the whole sectors inside it.

A job may start late (`start_ns`), stall after every `thinktime_blocks` requests until
all it has in flight completed and then `thinktime_ns` more (fio's thinktime, in modeled
time), and end every job of the run when it ends (`exitall`).
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from .stamps import Shadow, StampedIO, check, stamp
from .workloads import Job


@dataclass
class JobResult:
    """What one job did, one entry per request (numpy arrays)."""
    name: str
    role: str
    qd: int
    op: np.ndarray                  # 0 read, 1 write, 2 trim, 3 flush
    nbytes: np.ndarray
    issue_ns: np.ndarray            # relative to the start of the run
    done_ns: np.ndarray
    offset: np.ndarray | None = None

    @property
    def lat_ns(self) -> np.ndarray:
        return self.done_ns - self.issue_ns


@dataclass
class RunResult:
    jobs: list
    start_ns: int
    end_ns: int                     # after the final flush
    wall_s: float
    cpu_s: float                    # this process, less the device's own CPU time
    verified_reads: int = 0
    mismatches: int = 0
    series: list = field(default_factory=list)
    rmw_writes: int = 0             # writes served by read-modify-write of partial sectors
    rmw_read_sectors: int = 0       # sectors those read first
    partial_reads: int = 0          # reads of part of a sector (whole sectors read)


_OPS = {"read": 0, "write": 1, "trim": 2, "flush": 3}


class Engine:
    """Runs jobs against one stack; `shadow` and `payload` persist between runs on the
    same device (prefill, phases)."""

    def __init__(self, bdev, machine, clock, shadow: Shadow, payload: np.ndarray, stats_fn=None,
                 progress=None):
        self.bdev = bdev
        self.m = machine
        self.clock = clock
        self.shadow = shadow
        self.payload = payload
        self.stats_fn = stats_fn
        self.progress = progress
        self.sector = bdev.sector_nbytes
        self.io = StampedIO(bdev, payload, self.sector)
        self.now = machine.virtual_ns           # the latest completion so far
        self.rmw = [0, 0, 0]                    # rmw writes, their sector reads, partial reads
        self.requests = 0                       # requests simulated (prefills and flushes too)

    # ---------------------------------------------------------------- one request
    def _do(self, op: str, off: int, n: int, t: int) -> tuple[int, int]:
        """Run one request issued at t; (completion time, mismatching sectors)."""
        sector = self.sector
        if (off % sector or n % sector) and op != "flush":
            return self._partial(op, off, n, t)
        bdev, shadow, io = self.bdev, self.shadow, self.io
        if op == "read":
            box = [None]

            def fn():
                box[0] = io.read(off, n)
            done = self.clock.call("read", t, n // sector, fn)
            return done, check(box[0], off // sector, sector, shadow)
        if op == "write":
            shadow.counter += 1
            gen = shadow.counter
            lba, k = off // sector, n // sector
            data = io.data(lba, k, gen)

            def fn():
                io.write(off, data)
                if k == 1:
                    shadow.gen[lba] = gen
                else:
                    shadow.gen[lba:lba + k] = gen
            return self.clock.call("write", t, k, fn), 0
        if op == "trim":
            def fn():
                bdev.discard(off, n)
                shadow.gen[off // sector:(off + n) // sector] = 0
            return self.clock.call("trim", t, n // sector, fn), 0
        if op == "flush":
            return self.clock.call("flush", t, 0, bdev.flush), 0
        raise ValueError(f"unknown request op {op!r}")

    def _partial(self, op: str, off: int, n: int, t: int) -> tuple[int, int]:
        """A request that does not cover whole sectors: (completion time, mismatches)."""
        bdev, sector, shadow, io = self.bdev, self.sector, self.shadow, self.io
        s0, s1 = off - off % sector, -(-(off + n) // sector) * sector
        if op == "trim":                            # a drive discards whole sectors only
            lo, hi = -(-off // sector) * sector, (off + n) // sector * sector
            return self._do("trim", lo, hi - lo, t) if hi > lo else (t, 0)
        if op == "read":
            self.rmw[2] += 1
            box = [None]

            def fn():
                box[0] = io.read(s0, s1 - s0)
            done = self.clock.call("read", t, (s1 - s0) // sector, fn)
            return done, check(box[0], s0 // sector, sector, shadow)
        if op != "write":
            raise ValueError(f"unknown request op {op!r}")
        edges = [e for e in (s0 if off % sector else None, s1 - sector if (off + n) % sector else None)
                 if e is not None]
        edges = sorted(set(edges))
        old, bad, ready = {}, 0, t
        for e in edges:                             # read the partial sectors first
            box = [None]

            def fn(e=e, box=box):
                box[0] = io.read(e, sector)
            ready = max(ready, self.clock.call("read", t, 1, fn))
            bad += check(box[0], e // sector, sector, shadow)
            old[e] = box[0].copy()
        shadow.counter += 1
        gen = shadow.counter
        lba, nsec = s0 // sector, (s1 - s0) // sector
        data = io.data(lba, nsec, gen).copy()
        for e, buf in old.items():                  # the bytes the request leaves alone stay
            a, b = max(off, e) - e, min(off + n, e + sector) - e
            merged = buf.copy()
            merged[a:b] = data[e - s0 + a:e - s0 + b]
            data[e - s0:e - s0 + sector] = merged
            data[e - s0:e - s0 + 16] = stamp(e // sector, gen)

        def fn():
            io.write(s0, data)
            shadow.gen[lba:lba + nsec] = gen
        done = self.clock.call("write", ready, nsec, fn)
        self.rmw[0] += 1
        self.rmw[1] += len(edges)
        return done, bad

    def prefill(self, region: int, chunk: int = 1 << 20) -> None:
        """Write [0, region) sequentially and flush, untimed for the figures (the clock
        moves on)."""
        t = self.now
        for off in range(0, region, chunk):
            k = min(chunk, region - off)
            t, _ = self._do("write", off, k, t)
            if self.progress is not None:
                self.progress(k)
        t, _ = self._do("flush", 0, 0, t)
        self.requests += -(-region // chunk) + 1
        self.now = max(self.now, t)

    # ---------------------------------------------------------------- the loop
    def run(self, jobs: list[Job], samples: int = 0, series_total: int = 0, flush: bool = True) -> RunResult:
        """Run the jobs to their end (then one flush); sample `stats_fn` `samples` times
        over the `series_total` bytes of the series job."""
        m = self.m
        t0 = self.now
        before_cpu = m.stats()["device_cpu_s"]
        rmw0 = list(self.rmw)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        n = len(jobs)
        start = [t0 + j.start_ns for j in jobs]
        slots = [[start[i]] * j.qd for i, j in enumerate(jobs)]
        last_issue = list(start)
        not_before = list(start)                 # thinktime: no issue before this
        issued = [0] * n
        think_blocks = [0] * n
        think_at = list(start)
        ended = [False] * n
        pending: dict[int, tuple] = {}           # job -> its next request (t_min, op, offset, nbytes)
        heap: list[tuple[int, int]] = []
        rec = [([], [], [], [], []) for _ in jobs]   # op, nbytes, issue, done, offset
        verified = mismatches = 0
        series = []
        every = max(1, series_total // samples) if samples and series_total else 0
        series_bytes = 0
        next_sample = every
        base = self.stats_fn() if every and self.stats_fn is not None else None
        tick = 0

        def finish(i: int) -> None:
            ended[i] = True
            if jobs[i].exitall:                  # fio's exitall: the others end with it
                for k in range(n):
                    ended[k] = True

        def schedule(i: int) -> None:
            j = jobs[i]
            if ended[i]:
                return
            if j.stop_with is not None and ended[j.stop_with]:
                ended[i] = True
                return
            try:
                req = next(j.requests)
            except StopIteration:
                finish(i)
                return
            t_min = req[0]
            t = max(slots[i][0], last_issue[i], not_before[i])
            if t_min is not None:
                t = max(t, start[i] + int(t_min))
            if j.runtime_ns and t >= start[i] + j.runtime_ns:
                finish(i)
                return
            pending[i] = req
            heappush(heap, (t, i))

        heappush, heappop, heapreplace = heapq.heappush, heapq.heappop, heapq.heapreplace
        do, progress = self._do, self.progress
        for i in range(n):
            schedule(i)
        while heap:
            t, i = heappop(heap)
            _, op, off, nb = pending.pop(i)
            j = jobs[i]
            if ended[i] or (j.stop_with is not None and ended[j.stop_with]):
                ended[i] = True
                continue
            done, bad = do(op, off, nb, t)
            last_issue[i] = t
            heapreplace(slots[i], done)
            if j.on_issue is not None:
                j.on_issue(t - start[i])
            if j.thinktime_ns:
                issued[i] += 1
                self._think(j, i, t, slots, issued, think_blocks, think_at, not_before)
            r = rec[i]
            r[0].append(_OPS[op])
            r[1].append(nb)
            r[2].append(t - t0)
            r[3].append(done - t0)
            r[4].append(off)
            if op == "read":
                verified += 1
                mismatches += bad
            if done > self.now:
                self.now = done
            if every and j.series and op == "write":
                series_bytes += nb
                if series_bytes >= next_sample:
                    next_sample += every
                    series.append(dict(done=min(1.0, series_bytes / series_total), host_bytes=series_bytes,
                                       virtual_ns=done - t0, **_delta(self.stats_fn(), base)))
            if progress is not None:
                tick += nb
                if tick >= 1 << 20:
                    progress(tick)
                    tick = 0
            schedule(i)
        if self.progress is not None and tick:
            self.progress(tick)
        end = self.now
        if flush:
            end, _ = self._do("flush", 0, 0, self.now)
            self.now = max(self.now, end)
        self.requests += sum(len(r[0]) for r in rec) + flush
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0 - (m.stats()["device_cpu_s"] - before_cpu)
        out = [JobResult(j.name, j.role, j.qd, np.asarray(r[0], dtype=np.int8), np.asarray(r[1], dtype=np.int64),
                         np.asarray(r[2], dtype=np.int64), np.asarray(r[3], dtype=np.int64),
                         np.asarray(r[4], dtype=np.int64))
               for j, r in zip(jobs, rec)]
        rmw = [a - b for a, b in zip(self.rmw, rmw0)]
        return RunResult(out, t0, end, wall, cpu, verified, mismatches, series, *rmw)

    @staticmethod
    def _think(j: Job, i: int, t: int, slots, issued, think_blocks, think_at, not_before) -> None:
        """fio's handle_thinktime after job i issued at t: after thinktime_blocks requests
        (issued, or completed by the time a full queue has reaped one), or thinktime_iotime
        since the last stall, wait for everything in flight, then thinktime."""
        s = slots[i]
        now = s[0] if s[0] > t else t               # a full queue reaps before fio thinks
        count = issued[i] if j.thinktime_issue else issued[i] - sum(1 for x in s if x > now)
        stall = bool(j.thinktime_iotime_ns) and now - think_at[i] >= j.thinktime_iotime_ns
        if j.thinktime_blocks and count >= think_blocks[i] + j.thinktime_blocks:
            stall = True
        if stall:
            not_before[i] = max(s) + j.thinktime_ns
            think_blocks[i] = count
            think_at[i] = not_before[i]


def _delta(now: dict, base: dict) -> dict:
    return {k: now[k] - base.get(k, 0) for k in now if isinstance(now[k], (int, float))}
