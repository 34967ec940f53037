"""The host's share of virtual time: when one request, run synchronously through a stack,
completes on the modeled clock -- the device's timing model gives the media's part, the
[host] cost model of oxhost.config the host CPU's part (per command submitted and
completed, per sector copied into a host write buffer, per sector GC moves through it).

The stacks themselves keep no clock: the costs are derived from counter deltas around
each call -- NVMe commands the controller executed (the Machine's lab instrument), and
for a stack with a host-side write buffer its counters (`BlockDevice.host_buffer()`:
sectors buffered, drained, moved by GC, read from the buffer). Every stack is timed by
what it does and where its FTL runs, not by its name: pblk has a host write buffer;
AppNVM and plug-in FTLs on either side have none the clock can see.

Without a host write buffer (and for every read, flush and discard): the request reaches
the device submit_ns after it is issued; it completes when the device's last command
does, plus complete_ns per command and submit_ns for every command after the first.
Sectors served from a host write buffer cost write_buffer_copy_ns each instead of a
media read. A plug-in FTL in the host (`host_ftl`) copies every sector it is given (the
FTL API: copy what you keep): its writes first cost write_buffer_copy_ns per sector, then
reach the device as above -- at once when the FTL only buffered them. Its other CPU work
is measured (host CPU per GiB), not charged to virtual time.

Writes into a host write buffer complete once their data is copied in,
write_buffer_copy_ns x k after they start; a write starts when the buffer has room for
it. The buffer holds `entries` sectors; an entry is taken from the moment it is copied in
until the program that drains it has completed on the device (plus the host's work for
that drain: the per-command costs and gc_move_ns per sector GC moved). Drains run where
the FTL runs them (pblk: every 512 entries, and when users wait for GC): they reach the
device when the data that triggered them is in the buffer, and their completion frees
their entries. So writes are fast while the device keeps up and wait for programs (and
for GC's moves, which take buffer entries too) once it does not: a sustained write load
runs at the device's program bandwidth divided by the write amplification. The buffer
admits writes in order: a write never starts before one issued earlier did. pblk's rate
limiter's split of the buffer between users and GC is not modeled in time, only its total.

With every [host] cost at 0 the clock is the one earlier versions used: a request
completes when the synchronous call returns on the device's clock (a buffered write that
drains waits for the drain).
"""
from __future__ import annotations

import heapq

class HostClock:
    """Completion times of requests on one stack: `call(op, t_ns, nsectors, fn)` runs fn
    (the request) as issued at t_ns and returns its completion time."""

    def __init__(self, host, machine, bdev, host_ftl: bool = False):
        self.h = host
        self.host_ftl = host_ftl                         # a plug-in FTL in the host: writes copy first
        self.m = machine
        self.bdev = bdev
        self.legacy = not host.enabled
        buf = bdev.host_buffer()
        self.buffered = buf is not None                  # writes land in a host write buffer
        self.entries = buf.entries if buf is not None else 0
        self._inflight: list[tuple[int, int]] = []       # (free at, entries) of drains
        self._held = 0
        self._admitted = 0                              # start of the last write let in

    # ---------------------------------------------------------------- entry point
    def call(self, op: str, t: int, nsec: int, fn) -> int:
        m = self.m
        if self.legacy:
            m.issue_at(t)
            fn()
            return m.virtual_ns
        if self.buffered:
            self._release(t)
            if op == "write":
                return self._buffered_write(t, nsec, fn)
            if op == "flush":
                return self._buffered_flush(t, fn)
            if op == "trim":
                return self._buffered_background(t, fn)
            return self._buffered_read(t, fn)
        if self.host_ftl and op == "write":
            t += self.h.write_buffer_copy_ns * nsec
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

    # ---------------------------------------------------------------- a host write buffer
    def _release(self, t: int) -> None:
        q = self._inflight
        while q and q[0][0] <= t:
            self._held -= heapq.heappop(q)[1]

    def _counts(self) -> tuple[int, int]:
        b = self.bdev.host_buffer()
        return b.drained, b.gc_moved

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

    def _buffered_write(self, t: int, nsec: int, fn) -> int:
        h, m = self.h, self.m
        start = max(t, self._admitted)                  # the ring admits writes in order
        self._release(start)
        q = self._inflight
        b = self.bdev.host_buffer()                     # one reading: waiting changes no counter
        while q and b.buffered + self._held + nsec > self.entries:
            free_at, n = heapq.heappop(q)               # wait for the oldest drain to end
            self._held -= n
            start = max(start, free_at)
        self._admitted = start
        copied = start + h.write_buffer_copy_ns * nsec
        m.issue_at(copied)
        k0 = m.io_commands
        fn()
        if m.io_commands != k0:                         # most writes only fill the buffer
            self._note_drains(k0, (b.drained, b.gc_moved))
        return copied

    def _buffered_background(self, t: int, fn) -> int:
        m = self.m
        m.issue_at(t)
        k0, before = m.io_commands, self._counts()
        fn()
        self._note_drains(k0, before)
        return t

    def _buffered_read(self, t: int, fn) -> int:
        h, m = self.h, self.m
        k0 = m.io_commands
        b0 = self.bdev.host_buffer()
        m.issue_at(t + h.submit_ns)
        fn()
        k = m.io_commands - k0
        b1 = self.bdev.host_buffer()
        cached = (b1.read - b0.read) - (b1.read_media - b0.read_media)
        copy = h.write_buffer_copy_ns * max(cached, 0)
        if k == 0:
            return t + copy
        return m.virtual_ns + h.complete_ns * k + h.submit_ns * (k - 1) + copy

    def _buffered_flush(self, t: int, fn) -> int:
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
