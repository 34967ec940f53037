"""The host's share of virtual time: when one request, run synchronously through a stack,
completes on the modeled clock -- the device's timing model gives the media's part, the
[host] cost model of oxhost.config the host CPU's part (per command submitted and
completed, per sector copied into pblk's write buffer, per sector pblk's GC moves).

The stacks themselves keep no clock: the costs are derived from counter deltas around
each call (NVMe commands the controller executed, pblk's sectors written per kind, GC
moves, reads served from the write buffer).

AppNVM (and every read, flush and discard): the request reaches the device submit_ns
after it is issued; it completes when the device's last command does, plus complete_ns
per command and submit_ns for every command after the first. Sectors pblk serves from
its write buffer cost write_buffer_copy_ns each instead of a media read.

pblk writes are buffered: a write of k sectors completes once its data is copied in,
write_buffer_copy_ns x k after it starts; it starts when the buffer has room for it. The
buffer holds `entries` sectors; an entry is taken from the moment it is copied in until
the program that drains it has completed on the device (plus the host's work for that
drain: the per-command costs and gc_move_ns per sector GC moved). Drains run where pblk
runs them (every 512 entries, and when users wait for GC): they reach the device when the
data that triggered them is in the buffer, and their completion frees their entries. So
writes are fast while the device keeps up and wait for programs (and for GC's moves,
which take buffer entries too) once it does not: a sustained write load runs at the
device's program bandwidth divided by the write amplification. The ring admits writes
in order: a write never starts before one issued earlier did. The rate limiter's split
of the buffer between users and GC is not modeled in time, only its total.

With every [host] cost at 0 the clock is the one earlier versions used: a request
completes when the synchronous call returns on the device's clock (a pblk write that
drains waits for the drain).
"""
from __future__ import annotations

import heapq

_DRAINED = ("user", "gc", "pad", "trim_sectors")


class HostClock:
    """Completion times of requests on one stack: `call(op, t_ns, nsectors, fn)` runs fn
    (the request) as issued at t_ns and returns its completion time."""

    def __init__(self, host, machine, bdev, mode: str):
        self.h = host
        self.m = machine
        self.bdev = bdev
        self.legacy = not host.enabled
        self.pblk = mode == "pblk"
        self._inflight: list[tuple[int, int]] = []       # (free at, entries) of drains
        self._held = 0
        self._admitted = 0                              # start of the last write let in
        if self.pblk:
            self._c = bdev.c
            self._rb = bdev.rb
            self.entries = bdev.rb.n

    # ---------------------------------------------------------------- entry point
    def call(self, op: str, t: int, nsec: int, fn) -> int:
        m = self.m
        if self.legacy:
            m.issue_at(t)
            fn()
            return m.virtual_ns
        if self.pblk:
            self._release(t)
            if op == "write":
                return self._pblk_write(t, nsec, fn)
            if op == "flush":
                return self._pblk_flush(t, fn)
            if op == "trim":
                return self._pblk_background(t, fn)
            return self._pblk_read(t, fn)
        return self._device(t, fn)

    # ---------------------------------------------------------------- device-bound
    def _device(self, t: int, fn) -> int:
        h, m = self.h, self.m
        k0 = m.io_commands
        m.issue_at(t + h.submit_ns)
        fn()
        k = m.io_commands - k0
        if k == 0:
            return t
        return m.virtual_ns + h.complete_ns * k + h.submit_ns * (k - 1)

    # ---------------------------------------------------------------- pblk
    def _release(self, t: int) -> None:
        q = self._inflight
        while q and q[0][0] <= t:
            self._held -= heapq.heappop(q)[1]

    def _counts(self) -> tuple[int, int]:
        c = self._c
        return sum(c[k] for k in _DRAINED), c["gc_moved"]

    def _note_drains(self, k0: int, before: tuple[int, int]) -> None:
        """Entries the call drained are held until its commands completed (plus the host's
        work for them)."""
        m, h = self.m, self.h
        k = m.io_commands - k0
        if not k:
            return
        drained0, moved0 = before
        drained, moved = self._counts()
        if drained > drained0:
            free_at = (m.virtual_ns + (h.submit_ns + h.complete_ns) * k
                       + h.gc_move_ns * (moved - moved0))
            heapq.heappush(self._inflight, (free_at, drained - drained0))
            self._held += drained - drained0

    def _pblk_write(self, t: int, nsec: int, fn) -> int:
        h, m = self.h, self.m
        start = max(t, self._admitted)                  # the ring admits writes in order
        self._release(start)
        q = self._inflight
        while q and self._rb.count + self._held + nsec > self.entries:
            free_at, n = heapq.heappop(q)               # wait for the oldest drain to end
            self._held -= n
            start = max(start, free_at)
        self._admitted = start
        copied = start + h.write_buffer_copy_ns * nsec
        m.issue_at(copied)
        k0, before = m.io_commands, self._counts()
        fn()
        self._note_drains(k0, before)
        return copied

    def _pblk_background(self, t: int, fn) -> int:
        m = self.m
        m.issue_at(t)
        k0, before = m.io_commands, self._counts()
        fn()
        self._note_drains(k0, before)
        return t

    def _pblk_read(self, t: int, fn) -> int:
        h, m, c = self.h, self.m, self._c
        k0 = m.io_commands
        r0, media0 = c["user_read_sectors"], c["media_read_sectors"]
        m.issue_at(t + h.submit_ns)
        fn()
        k = m.io_commands - k0
        cached = (c["user_read_sectors"] - r0) - (c["media_read_sectors"] - media0)
        copy = h.write_buffer_copy_ns * max(cached, 0)
        if k == 0:
            return t + copy
        return m.virtual_ns + h.complete_ns * k + h.submit_ns * (k - 1) + copy

    def _pblk_flush(self, t: int, fn) -> int:
        h, m = self.h, self.m
        k0 = m.io_commands
        m.issue_at(t + h.submit_ns)
        fn()
        k = m.io_commands - k0
        done = t if k == 0 else m.virtual_ns + h.complete_ns * k + h.submit_ns * (k - 1)
        if self._inflight:
            done = max(done, max(f for f, _ in self._inflight))
        self._inflight.clear()
        self._held = 0
        return done
