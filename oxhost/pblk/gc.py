"""Garbage collection: pick the closed line with the fewest valid sectors, move what is
still valid into the write buffer, free the line once the moved data is on media (pblk-gc.c).

GC entries go through the write buffer like user writes (kind GC), so they share its
bandwidth under the rate limiter and are read back from it until written. A sector moves
only if the L2P still points at the victim; one overwritten meanwhile is skipped. A line
whose last valid sector left it is released only after the buffer has written past the
write that invalidated it: erasing it earlier could lose both copies in a crash.
"""
import logging

import numpy as np

from oxemu.wire import NvmOpc, PMode, Status
from oxhost.lightnvm import NvmError

from .l2p import L2P, cache_code
from .lines import Line, LineGeometry, LineManager, LineState
from .metadata import Kind
from .writebuffer import WriteBuffer

log = logging.getLogger(__name__)

MAX_GC_READ = 1024          # sectors per device read (16 commands of 64, one doorbell)


class Gc:
    """struct pblk_gc: the victim being moved and the lines waiting to be freed."""

    def __init__(self, dev, lg: LineGeometry, lm: LineManager, rb: WriteBuffer, l2p: L2P, counters: dict):
        self.dev = dev
        self.lg = lg
        self.lm = lm
        self.rb = rb
        self.l2p = l2p
        self.c = counters
        self.victim: Line | None = None
        self._cand = np.empty(0, dtype=np.int64)     # victim sectors still to look at
        self._pos = 0

    # ------------------------------------------------------------ victim choice
    @staticmethod
    def choose(lines, vsc: np.ndarray) -> Line | None:
        """The closed line with the fewest valid sectors; on a tie one with a write error
        first (pblk's werr list), then the oldest."""
        best, key = None, None
        for ln in lines:
            if ln.state != LineState.CLOSED:
                continue
            k = (int(vsc[ln.id]), not bool(ln.werr.any()), ln.seq)
            if key is None or k < key:
                best, key = ln, k
        return best

    def room(self) -> int:
        """Sectors the writer can still place without a line freed by GC."""
        return self.lm.avail_secs() - self.rb.count

    def pick(self) -> Line | None:
        """Start on a victim, if one exists whose valid data fits the room left."""
        lm = self.lm
        victim = self.choose(lm.lines, lm.vsc)
        if victim is None:
            return None
        need = int(lm.vsc[victim.id])
        if need and need > self.room():
            log.debug("pblk: GC victim line %d has %d valid sectors, more than the %d writable",
                      victim.id, need, self.room())
            return None
        self._start(victim)
        return victim

    def _start(self, victim: Line) -> None:
        lm, lg = self.lm, self.lg
        victim.state = LineState.GC
        lbas = lm.lba[victim.id]
        paddrs = np.flatnonzero(lbas >= 0)
        valid = self.l2p.map[lbas[paddrs]] == victim.id * lg.sec_per_line + paddrs
        self._cand = paddrs[valid]
        self._pos = 0
        self.victim = victim
        self.c["gc_runs"] += 1
        if self._cand.size != lm.vsc[victim.id]:
            log.error("pblk: line %d valid count %d but %d valid sectors found",
                      victim.id, int(lm.vsc[victim.id]), self._cand.size)
        log.debug("pblk: GC line %d (%d valid)", victim.id, self._cand.size)

    # ------------------------------------------------------------ moving data
    def fill(self, quota: int) -> int:
        """Move up to `quota` valid sectors of the victim into the write buffer. A finished
        victim ends the call, so the cycle writes and frees it before the next one starts."""
        lm, lg, rb, l2p = self.lm, self.lg, self.rb, self.l2p
        spl = lg.sec_per_line
        moved = 0
        while moved < quota:
            if self.victim is None and self.pick() is None:
                break
            v = self.victim
            room = min(quota - moved, rb.contiguous_space(), MAX_GC_READ, self.room())
            if room <= 0:
                break
            p = self._cand[self._pos:self._pos + room]
            self._pos += p.size
            lbas = lm.lba[v.id, p]
            addrs = v.id * spl + p
            still = l2p.map[lbas] == addrs
            if not still.all():
                p, lbas = p[still], lbas[still]
            k = p.size
            if k:
                start = rb.reserve(k)
                self._read(lg.ppas(v.id, p), rb.data[start:start + k])
                rb.commit(lbas, Kind.GC)
                l2p.map[lbas] = cache_code(np.arange(start, start + k, dtype=np.int64))
                lm.vsc[v.id] -= k
                lm.inval_pos[v.id] = rb.mem
                moved += k
                self.c["gc_moved"] += k
            if self._pos >= self._cand.size:
                lm.inval_pos[v.id] = max(int(lm.inval_pos[v.id]), rb.mem)
                self.victim = None
                break
        return moved

    def _read(self, ppas: np.ndarray, out: np.ndarray) -> None:
        try:
            self.dev.ppa_io(NvmOpc.PH_READ, ppas, PMode.SNGL, out=out)
            return
        except NvmError as e:
            if e.status == Status.NVM_WARN_HIGH_ECC:
                return
            failed = np.flatnonzero(e.mask)
        for i in failed:                 # one more try each, then the sector is lost
            try:
                self.dev.ppa_io(NvmOpc.PH_READ, [int(ppas[i])], PMode.SNGL, out=out[i])
            except NvmError as e:
                if e.status != Status.NVM_WARN_HIGH_ECC:
                    out[i] = 0
                    self.c["read_failed_gc"] += 1
                    log.error("pblk: GC read of PPA 0x%x failed (status 0x%04X); sector lost",
                              int(ppas[i]), e.status)

    # ------------------------------------------------------------ freeing
    def reclaim(self) -> int:
        """Release collected lines (and closed ones left with nothing valid) whose
        invalidating writes are on media. Returns the number of lines freed."""
        lm, sync = self.lm, self.rb.sync
        freed = 0
        for ln in lm.lines:
            if ln.state not in (LineState.CLOSED, LineState.GC) or ln is self.victim:
                continue
            if lm.vsc[ln.id] <= 0 and lm.inval_pos[ln.id] <= sync:
                if lm.vsc[ln.id] < 0:
                    log.error("pblk: line %d valid count went negative (%d)", ln.id, int(lm.vsc[ln.id]))
                lm.release(ln)
                freed += 1
        if freed:
            self.c["lines_freed"] += freed
        return freed

    def waiting_on(self, pos: int) -> bool:
        """Is a line with nothing valid left waiting for buffer entries before `pos`?"""
        lm, sync = self.lm, self.rb.sync
        return any(ln.state in (LineState.CLOSED, LineState.GC) and ln is not self.victim
                   and lm.vsc[ln.id] <= 0 and sync < lm.inval_pos[ln.id] <= pos for ln in lm.lines)

    @property
    def busy(self) -> bool:
        return self.victim is not None
