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
"""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from .workloads import Job, Shadow, check_data, make_data


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
        self.now = machine.virtual_ns           # the latest completion so far

    # ---------------------------------------------------------------- one request
    def _do(self, op: str, off: int, n: int, t: int) -> tuple[int, int]:
        """Run one request issued at t; (completion time, mismatching sectors)."""
        bdev, sector, shadow = self.bdev, self.sector, self.shadow
        bad = [0]
        if op == "read":
            def fn():
                data = bdev.read(off, n)
                bad[0] = check_data(data, off // sector, sector, shadow)
        elif op == "write":
            shadow.counter += 1
            gen = shadow.counter
            lba = off // sector
            data = make_data(n, lba, sector, gen, self.payload)

            def fn():
                bdev.write(off, data)
                shadow.gen[lba:lba + n // sector] = gen
        elif op == "trim":
            def fn():
                bdev.discard(off, n)
                shadow.gen[off // sector:(off + n) // sector] = 0
        elif op == "flush":
            fn = bdev.flush
        else:
            raise ValueError(f"unknown request op {op!r}")
        done = self.clock.call(op, t, n // sector, fn)
        return done, bad[0]

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
        self.now = max(self.now, t)

    # ---------------------------------------------------------------- the loop
    def run(self, jobs: list[Job], samples: int = 0, series_total: int = 0, flush: bool = True) -> RunResult:
        """Run the jobs to their end (then one flush); sample `stats_fn` `samples` times
        over the `series_total` bytes of the series job."""
        m = self.m
        t0 = self.now
        before_cpu = m.stats()["device_cpu_s"]
        wall0, cpu0 = time.perf_counter(), time.process_time()
        n = len(jobs)
        slots = [[t0] * j.qd for j in jobs]
        for s in slots:
            heapq.heapify(s)
        last_issue = [t0] * n
        ended = [False] * n
        pending: dict[int, tuple] = {}           # job -> its next request
        heap: list[tuple[int, int]] = []
        rec = [([], [], [], []) for _ in jobs]   # op, nbytes, issue, done
        verified = mismatches = 0
        series = []
        every = max(1, series_total // samples) if samples and series_total else 0
        series_bytes = 0
        next_sample = every
        base = self.stats_fn() if every and self.stats_fn is not None else None
        tick = 0

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
                ended[i] = True
                return
            t_min, op, off, nb = req
            t = max(slots[i][0], last_issue[i])
            if t_min is not None:
                t = max(t, t0 + int(t_min))
            if j.runtime_ns and t >= t0 + j.runtime_ns:
                ended[i] = True
                return
            pending[i] = (op, off, nb)
            heapq.heappush(heap, (t, i))

        for i in range(n):
            schedule(i)
        while heap:
            t, i = heapq.heappop(heap)
            op, off, nb = pending.pop(i)
            j = jobs[i]
            if j.stop_with is not None and ended[j.stop_with]:
                ended[i] = True
                continue
            done, bad = self._do(op, off, nb, t)
            last_issue[i] = t
            heapq.heapreplace(slots[i], done)
            r = rec[i]
            r[0].append(_OPS[op])
            r[1].append(nb)
            r[2].append(t - t0)
            r[3].append(done - t0)
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
            if self.progress is not None:
                tick += nb
                if tick >= 1 << 20:
                    self.progress(tick)
                    tick = 0
            schedule(i)
        if self.progress is not None and tick:
            self.progress(tick)
        end = self.now
        if flush:
            end, _ = self._do("flush", 0, 0, self.now)
            self.now = max(self.now, end)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0 - (m.stats()["device_cpu_s"] - before_cpu)
        out = [JobResult(j.name, j.role, j.qd, np.asarray(r[0], dtype=np.int8), np.asarray(r[1], dtype=np.int64),
                         np.asarray(r[2], dtype=np.int64), np.asarray(r[3], dtype=np.int64))
               for j, r in zip(jobs, rec)]
        return RunResult(out, t0, end, wall, cpu, verified, mismatches, series)


def _delta(now: dict, base: dict) -> dict:
    return {k: now[k] - base.get(k, 0) for k in now if isinstance(now[k], (int, float))}
