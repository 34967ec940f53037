"""Garbage collection: pick a closed line -- by default the one with the fewest sectors GC
can move (pblk-gc.c); cost-benefit, FIFO, random or d-choice on request -- move what is
still valid into the write buffer, free the line once the moved data is on media.

GC entries go through the write buffer like user writes (kind GC), so they share its
bandwidth under the rate limiter and are read back from it until written. A sector moves
only if the L2P still points at the victim; one overwritten meanwhile is skipped. A line
whose last valid sector left it is released only after the buffer has written past the
write that invalidated it: erasing it earlier could lose both copies in a crash.

A sector GC cannot read (after the read retries) stays where it is, mapped and failing
(never turned into zeros): the victim then keeps it and cannot be freed until the LBA is
written again or discarded. Such a line is not a normal candidate any more (victims are
chosen by what can actually move); only when no other victim can make room does GC try
it again, at most MAX_GC_TRIES times, in case the errors were transient. A victim's TRIM sectors are rewritten with only the records still needed
(trim.py) before the line goes.
"""
import logging

import numpy as np

from . import media, trim
from .l2p import EMPTY, L2P
from .lines import Line, LineGeometry, LineManager, LineState
from .metadata import ADDR_TRIM, Kind, MetaError
from .writebuffer import WriteBuffer

log = logging.getLogger(__name__)

MAX_GC_READ = 1024          # sectors per device read (16 commands of 64, one doorbell)
MAX_GC_TRIES = 3            # GC runs over a line that keep leaving unreadable sectors
IN_USE = (LineState.OPEN, LineState.CLOSED, LineState.GC)


class Gc:
    """struct pblk_gc: the victim being moved and the lines waiting to be freed.

    `policy` chooses victims among closed lines: greedy (fewest movable sectors, pblk's
    own), cost-benefit ((1 - u) x age / (1 + u), u the movable fraction, age in lines
    opened since), fifo (the oldest line), random, or d-choice (fewest movable of `d`
    drawn); random and d-choice draw from a generator seeded with `seed`. Only lines with
    something to reclaim are candidates; a victim that does not fit the room left gives
    way to the greedy one."""

    def __init__(self, dev, lg: LineGeometry, lm: LineManager, rb: WriteBuffer, l2p: L2P, counters: dict,
                 *, policy: str = "greedy", d: int = 4, seed: int = 0, pad_secs: int = 0):
        self.policy = policy
        self.d = d
        self.rng = np.random.default_rng(seed)
        self.dev = dev
        self.lg = lg
        self.lm = lm
        self.rb = rb
        self.l2p = l2p
        self.c = counters
        self.victim: Line | None = None
        self._cand = np.empty(0, dtype=np.int64)     # victim sectors still to look at
        self._pos = 0
        self._trims = np.empty((0, 2), dtype=np.int64)   # records the victim still has to move
        # room a victim's data must leave: program failures and grown bad blocks may take
        # some of it while the data is on its way (one write unit per LUN), and on 2.0 the
        # padding a restart puts into the open line (`pad_secs`, recovery.pad_open_lines)
        self.margin = lg.unit_secs * lg.nluns + pad_secs

    # ------------------------------------------------------------ victim choice
    @staticmethod
    def choose(lines, movable: np.ndarray, vsc: np.ndarray | None = None, unit_secs: int = 0) -> Line | None:
        """The closed line whose collection frees the most: the most invalid sectors (its
        data sectors less its valid ones; given `vsc` and `unit_secs`), then the fewest to
        move; on a tie one with a write error first (pblk's werr list), then the oldest.
        On lines of one size that is the line with the fewest valid sectors; once grown bad
        blocks make lines differ, a small line nearly full of valid data is not worth
        moving (GC would fill the next small line with it and go round). A line with
        nothing invalid is a candidate only for its write error. Lines GC already went
        through, left holding only unreadable sectors, are not candidates."""
        best, key = None, None
        for ln in lines:
            if ln.state != LineState.CLOSED or ln.collected:
                continue
            free = 0
            if vsc is not None and unit_secs and ln.data_units is not None:
                free = ln.data_units.size * unit_secs - int(vsc[ln.id])
                if free <= 0 and not ln.werr.any():
                    continue
            k = (-free, int(movable[ln.id]))
            if key is not None and k > key[:2]:       # behind already: its write errors cannot matter
                continue
            k += (not ln.werr.any(), ln.seq)
            if key is None or k < key:
                best, key = ln, k
        return best

    def choose_policy(self, lines, movable: np.ndarray) -> Line | None:
        """The victim the policy picks among closed lines that have something to reclaim."""
        if self.policy == "greedy":
            return self.choose(lines, movable, self.l2p.vsc, self.lg.unit_secs)
        cand = [ln for ln in lines if ln.state == LineState.CLOSED and not ln.collected
                and ln.data_units is not None
                and movable[ln.id] < ln.data_units.size * self.lg.unit_secs]
        if not cand:
            return None
        if self.policy == "fifo":
            return min(cand, key=lambda ln: ln.seq)
        if self.policy == "random":
            return cand[int(self.rng.integers(len(cand)))]
        if self.policy == "d-choice":
            drawn = [cand[i] for i in self.rng.integers(len(cand), size=self.d).tolist()]
            return min(drawn, key=lambda ln: int(movable[ln.id]))
        now = self.lm.next_seq                       # cost-benefit (LFS cleaner)
        best, score = None, -1.0
        for ln in cand:
            u = int(movable[ln.id]) / (ln.data_units.size * self.lg.unit_secs)
            sc = (1.0 - u) * (now - ln.seq) / (1.0 + u)
            if sc > score:
                best, score = ln, sc
        return best

    @staticmethod
    def choose_retry(lines, vsc: np.ndarray) -> Line | None:
        """A line GC left holding unreadable sectors that may be tried again (fewest valid)."""
        best = None
        for ln in lines:
            if (ln.state == LineState.CLOSED and ln.collected and ln.gc_tries < MAX_GC_TRIES
                    and (best is None or vsc[ln.id] < vsc[best.id])):
                best = ln
        return best

    def movable(self) -> np.ndarray:
        """Valid sectors per line that GC can move (valid less those it found unreadable)."""
        mv = self.l2p.vsc.copy()
        if self.l2p.unreadable:
            for ln in self.lm.lines:
                if ln.state == LineState.CLOSED and mv[ln.id] > 0:
                    mv[ln.id] -= self.l2p.stuck(ln.id)
        return mv

    def room(self) -> int:
        """Sectors the writer can still place without a line freed by GC."""
        return self.lm.avail_secs() - self.rb.count

    def pick(self) -> Line | None:
        """Start on a victim, if one exists whose valid data fits the room left (with the
        margin when it can; a victim that fits only without it beats no progress at all)."""
        mv = self.movable()
        room = max(self.room(), 0)
        victim = self.choose_policy(self.lm.lines, mv)
        if victim is not None and mv[victim.id] > room and self.policy != "greedy":
            victim = self.choose(self.lm.lines, mv, self.l2p.vsc, self.lg.unit_secs)
        if victim is not None and mv[victim.id] > room:
            log.debug("pblk: GC victim line %d has %d valid sectors, more than the %d writable",
                      victim.id, int(mv[victim.id]), room)
            victim = None
        if victim is None or mv[victim.id] > room - self.margin:
            retry = self.choose_retry(self.lm.lines, self.l2p.vsc)
            if retry is not None and self.l2p.vsc[retry.id] <= room - self.margin:
                victim = retry
        if victim is None:
            return None
        self._start(victim)
        return victim

    def _start(self, victim: Line) -> None:
        l2p = self.l2p
        self.lm.start_gc(victim)
        paddrs = np.flatnonzero(l2p.lba[victim.id] >= 0)
        self._cand = paddrs[l2p.still_at(victim.id, paddrs)]
        self._pos = 0
        self._trims = self._trim_records(victim)
        self.victim = victim
        self.c["gc_runs"] += 1
        if self._cand.size != l2p.vsc[victim.id]:
            log.error("pblk: line %d valid count %d but %d valid sectors found",
                      victim.id, int(l2p.vsc[victim.id]), self._cand.size)
        log.debug("pblk: GC line %d (%d valid, %d trim records)", victim.id, self._cand.size,
                  self._trims.shape[0])

    def _trim_records(self, victim: Line) -> np.ndarray:
        """The records of the victim's TRIM sectors that are still needed: LBAs unmapped now
        that still have a copy in another line in use. An unreadable TRIM sector counts as
        covering every such LBA (a record for an unmapped LBA is always correct)."""
        l2p, lg = self.l2p, self.lg
        tp = l2p.trim_paddrs(victim.id)
        if tp.size == 0:
            return np.empty((0, 2), dtype=np.int64)
        others = [ln.id for ln in self.lm.lines if ln.state in IN_USE and ln is not victim]
        need = (l2p.map == EMPTY) & l2p.present(others)
        if not need.any():
            return np.empty((0, 2), dtype=np.int64)
        secb = lg.geo.sector_nbytes
        buf = np.empty(tp.size * secb, dtype=np.uint8)
        _, st = media.read(self.dev, lg.ppas(victim.id, tp), buf, self.c)
        recs = []
        whole = False
        for i in range(tp.size):
            if st is not None and st[i]:
                whole = True
                continue
            try:
                recs.append(trim.unpack(buf[i * secb:(i + 1) * secb]))
            except MetaError:
                whole = True
        if whole:
            self.c["read_failed_gc"] += 1
            log.error("pblk: GC of line %d: a TRIM sector is unreadable; every unmapped LBA with "
                      "an older copy gets a record", victim.id)
        else:
            need &= trim.covered(np.concatenate(recs), l2p.nsectors) if recs else False
        return trim.runs(need)

    # ------------------------------------------------------------ moving data
    def fill(self, quota: int) -> int:
        """Move up to `quota` valid sectors of the victim into the write buffer. A finished
        victim ends the call, so the cycle writes and frees it before the next one starts."""
        lg, rb, l2p = self.lg, self.rb, self.l2p
        moved = 0
        while moved < quota:
            if self.victim is None and self.pick() is None:
                break
            v = self.victim
            if self._trims.size and not self._put_trims(v):
                break
            room = min(quota - moved, rb.contiguous_space(), MAX_GC_READ, self.room())
            if room <= 0 and self._pos < self._cand.size:
                break
            p = self._cand[self._pos:self._pos + max(room, 0)]
            self._pos += p.size
            if p.size:
                p = p[l2p.still_at(v.id, p)]
            k = p.size
            if k:
                lbas = l2p.lba[v.id, p]
                start = rb.reserve(k)
                out = rb.data[start:start + k]
                _, st = media.read(self.dev, lg.ppas(v.id, p), out, self.c)
                if st is not None:
                    bad = st != 0
                    self._unreadable(v, p[bad], st[bad])
                    good = np.flatnonzero(~bad)
                    if good.size:
                        out[:good.size] = out[good]
                    p, lbas, k = p[good], lbas[good], good.size
                if k:
                    rb.commit(lbas, Kind.GC, src=v.id * self.lg.sec_per_line + p)
                    l2p.gc_move(v.id, p, lbas, np.arange(start, start + k, dtype=np.int64), rb.mem)
                    moved += k
                    self.c["gc_moved"] += k
            if self._pos >= self._cand.size:
                self._finish(v)
                break
        return moved

    def _put_trims(self, v: Line) -> bool:
        """Rewrite the victim's needed TRIM records into the buffer; False if it has no room.
        LBAs written since the victim was picked are left out: a record placed after their
        new data would unmap it."""
        rb, l2p = self.rb, self.l2p
        need = trim.covered(self._trims, l2p.nsectors) & (l2p.map == EMPTY)
        secs = trim.pack(trim.runs(need), rb.secb)
        if secs.shape[0] > rb.space:
            return False
        if secs.shape[0]:
            rb.put(np.full(secs.shape[0], ADDR_TRIM, dtype=np.int64), Kind.TRIM, secs)
            self.c["gc_trim_sectors"] += secs.shape[0]
        self._trims = np.empty((0, 2), dtype=np.int64)
        l2p.gc_hold(v.id, rb.mem)
        return True

    def _unreadable(self, v: Line, paddrs: np.ndarray, st: np.ndarray) -> None:
        """Sectors GC could not read: they stay mapped here and keep failing for readers."""
        self.l2p.mark_unreadable(v.id * self.lg.sec_per_line + paddrs)
        empty = int(np.count_nonzero(st == media.EMPTY))
        self.c["read_failed_gc"] += int(paddrs.size)
        self.c["read_empty"] += empty
        log.error("pblk: GC of line %d: %d sector(s) unreadable (status 0x%04X); they stay mapped "
                  "there and the line is kept", v.id, paddrs.size, int(st.max()))

    def _finish(self, v: Line) -> None:
        self.l2p.gc_hold(v.id, self.rb.mem)
        self.victim = None
        if self.l2p.vsc[v.id] > 0:
            # only sectors GC could not read are left: the line stays until they are rewritten
            self.lm.collected(v)
            log.warning("pblk: line %d keeps %d unreadable valid sector(s) (GC try %d of %d)",
                        v.id, int(self.l2p.vsc[v.id]), v.gc_tries, MAX_GC_TRIES)

    def revert_buffered(self) -> int:
        """Undo the GC moves still in the write buffer (there is no line left to write them
        to): their LBAs point back at the victims, which are not erased, and those victims
        are closed lines again. Returns the number of sectors given back."""
        rb, l2p = self.rb, self.l2p
        slots = rb.slots(rb.sync, rb.count)
        gc = slots[rb.kind[slots] == Kind.GC]
        if gc.size == 0:
            return 0
        before = int(l2p.vsc.sum())
        lines = l2p.gc_revert(rb.lba[gc], gc, rb.src[gc])
        for li in lines.tolist():
            ln = self.lm.lines[li]
            self.lm.uncollect(ln)
            if ln is self.victim:
                self.victim = None
        back = int(l2p.vsc.sum()) - before
        if back:
            log.warning("pblk: no line left to write GC's %d buffered sector(s) to; moves undone", back)
        return back

    def buffer_needed(self) -> bool:
        """Does any entry not yet on media still matter (mapped data, or TRIM records)?"""
        rb = self.rb
        slots = rb.slots(rb.sync, rb.count)
        if (rb.kind[slots] == Kind.TRIM).any():
            return True
        return bool(self.l2p.cached_at(rb.lba[slots], slots).any())

    # ------------------------------------------------------------ freeing
    def _free_candidate(self, ln: Line) -> bool:
        if ln.state == LineState.GC:
            return ln is not self.victim
        if ln.state != LineState.CLOSED:
            return False
        # a closed line holding TRIM sectors goes through GC (its records may be needed)
        return ln.collected or not (self.l2p.lba[ln.id] == ADDR_TRIM).any()

    def reclaim(self) -> int:
        """Release collected lines (and closed ones left with nothing valid) whose
        invalidating writes are on media. Returns the number of lines freed."""
        lm, l2p, sync = self.lm, self.l2p, self.rb.sync
        freed = 0
        for ln in lm.lines:
            if ln.state not in (LineState.CLOSED, LineState.GC):
                continue
            if l2p.releasable(ln.id, sync) and self._free_candidate(ln):
                if l2p.vsc[ln.id] < 0:
                    log.error("pblk: line %d valid count went negative (%d)", ln.id, int(l2p.vsc[ln.id]))
                l2p.release(ln.id)
                lm.release(ln)
                freed += 1
        if freed:
            self.c["lines_freed"] += freed
        return freed

    def waiting_on(self, pos: int) -> bool:
        """Is a line with nothing valid left waiting for buffer entries before `pos`?"""
        l2p, sync = self.l2p, self.rb.sync
        return any(ln.state in (LineState.CLOSED, LineState.GC) and ln is not self.victim
                   and l2p.vsc[ln.id] <= 0 and sync < l2p.inval_pos[ln.id] <= pos for ln in self.lm.lines)

    @property
    def busy(self) -> bool:
        return self.victim is not None
