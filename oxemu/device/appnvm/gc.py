"""Garbage collection of the AppNVM FTL: greedy victim choice (fewest valid sectors)
and relocation of the victim's valid sectors into the GC stream (SPEC 6).

GC runs inside the write path whenever fewer than `gc_low` blocks are free, one victim
at a time, so it keeps up with any sustained write load. A victim's valid sectors are
staged and programmed as whole units in one batch; a remainder short of a unit waits in
the stage for the next victim. A victim is erased only once none of its sectors is left
in the stage, and before any data block is erased the pending trim records are
journaled, so a power cut never exposes older data than the last durable copy.
"""
import logging

import numpy as np

from ...volt import MediaOp
from .blocks import BState
from .layout import Stream
from .mapping import CACHE_BASE, NO_LBA

log = logging.getLogger(__name__)


class GarbageCollector:
    def __init__(self, ftl):
        self.ftl = ftl
        addr = ftl.addr
        self.addr = addr
        self.unit_secs = addr.unit_secs
        cap = addr.block_secs + addr.unit_secs               # a whole victim + a remainder
        self.data = np.zeros(cap * addr.sector_nbytes, dtype=np.uint8)
        self.lba = np.full(cap, -1, dtype=np.int64)
        self.src = np.zeros(cap, dtype=np.int64)
        self.n = 0
        self.pending = []          # victims emptied except for sectors still in the stage
        self.counters = dict(victims=0, moved=0, read_errors=0)

    # ------------------------------------------------------------ policy
    def pick(self) -> int:
        """The closed block with the fewest valid sectors; -1 if none has any garbage.

        Blocks sealed after a failed program go first when there is room to move them.
        """
        ftl = self.ftl
        blocks = ftl.blocks
        cand = blocks.state == BState.CLOSED
        if not cand.any():
            return -1
        doomed = np.flatnonzero(cand & blocks.doomed)
        if doomed.size and blocks.nfree > ftl.prov.gc_floor + 1:
            return int(doomed[0])
        v = np.where(cand, ftl.map.valid, np.iinfo(np.int64).max)
        b = int(np.argmin(v))
        if v[b] >= self.addr.block_secs:
            return -1
        return b

    def make_room(self, target: int | None = None) -> None:
        """Collect victims until `target` (default gc_low) blocks are free, or no victim."""
        ftl = self.ftl
        blocks = ftl.blocks
        if target is None:
            target = ftl.prov.gc_low
        guard = self.addr.total_blocks * 2
        while blocks.nfree < target and guard > 0:
            guard -= 1
            v = self.pick()
            if v < 0 or not self.collect(v):
                break
        if blocks.nfree < target and self.n:
            self.flush()


    # ------------------------------------------------------------ relocation
    def collect(self, v: int) -> bool:
        """Stage the victim's valid sectors and program the whole units among them.

        False (victim left alone) when the GC stream has no room for them."""
        ftl = self.ftl
        addr = self.addr
        base = v * addr.block_secs
        p2l = ftl.map.p2l
        live = np.flatnonzero(p2l[base:base + addr.block_secs] != NO_LBA)
        if self.n + live.size > self.lba.size:   # the stage is backed up: no GC room left
            return False
        ftl.blocks.state[v] = BState.VICTIM
        self.counters["victims"] += 1
        if live.size:
            self._stage(v, base, live)
        self.pending.append(v)
        if self.n >= self.unit_secs:
            if len(self.pending) > 1:            # release the previous victim first
                self._program(1)
            if self.n >= self.unit_secs:
                self._program(self.n // self.unit_secs)
        elif self.n == 0:
            self._finish()
        return True

    def _stage(self, v: int, base: int, live: np.ndarray) -> None:
        ftl = self.ftl
        addr = self.addr
        ch, lun, blk = addr.chlunblk(v)
        ns, sb = addr.nsectors, addr.sector_nbytes
        pages = live // ns                       # plane pages (pg * nplanes + pl) to read
        brk = np.flatnonzero(np.diff(pages)) + 1
        starts = [0] + brk.tolist()
        ends = brk.tolist() + [live.size]
        last_pg, nread = -1, 0
        data, lba, src, p2l = self.data, self.lba, self.src, ftl.map.p2l
        for s, e in zip(starts, ends):
            pg, pl = divmod(int(pages[s]), addr.nplanes)
            if pg != last_pg:
                if nread:
                    ftl.volt.charge(MediaOp.READ, ch, lun, nread * addr.page_nbytes, ftl.now)
                last_pg, nread = pg, 0
            nread += 1
            page = ftl.read_page(ch, lun, blk, pl, pg)
            if page is None:                     # unreadable: the sectors stay where they are
                self.counters["read_errors"] += 1
                log.error("AppNVM GC: page ch %d lun %d blk %d pl %d pg %d unreadable", ch, lun, blk, pl, pg)
                continue
            offs = live[s:e]
            secs = offs % ns
            k, m = self.n, e - s
            if m == ns or np.all(np.diff(secs) == 1):        # contiguous sectors of the page
                s0 = int(secs[0])
                data[k * sb:(k + m) * sb] = page[s0 * sb:(s0 + m) * sb]
            else:
                for j, sec in enumerate(secs.tolist()):
                    data[(k + j) * sb:(k + j + 1) * sb] = page[sec * sb:(sec + 1) * sb]
            locs = base + offs
            src[k:k + m] = locs
            lba[k:k + m] = p2l[locs]
            self.n = k + m
        if nread:
            ftl.volt.charge(MediaOp.READ, ch, lun, nread * addr.page_nbytes, ftl.now)

    def flush(self) -> None:
        """Program the whole stage (the last unit padded) and release the emptied victims."""
        if self.n:
            self._program(-(-self.n // self.unit_secs))
        elif self.pending:
            self._finish()

    def _program(self, nunits: int) -> None:
        ftl = self.ftl
        m = ftl.map
        us, sb = self.unit_secs, self.addr.sector_nbytes
        take = min(self.n, nunits * us)
        lba = np.full(nunits * us, -1, dtype=np.int64)
        lba[:take] = self.lba[:take]
        src = self.src[:take].copy()
        # a sector rewritten or deallocated since it was staged is padding now
        stale = m.p2l[src].astype(np.int64) != lba[:take]
        lba[:take][stale] = -1
        if take < nunits * us:
            self.data[take * sb:nunits * us * sb] = 0
        placed = ftl.program_units(Stream.GC, self.data, lba.reshape(nunits, us))
        if len(placed) < nunits:                 # out of blocks: keep the rest staged
            log.debug("AppNVM GC: no free block for %d of %d units", nunits - len(placed), nunits)
            nunits = len(placed)
            take = min(take, nunits * us)
            lba, src = lba[:nunits * us], src[:take]
        moved = np.flatnonzero(lba >= 0)
        if moved.size:
            unit_base = np.array([self.addr.unit_loc(b, pg) for b, pg, _ in placed], dtype=np.int64)
            new = unit_base[moved // us] + moved % us
            srcs = src[moved]
            lbas = lba[moved]
            l2p = m.l2p
            cur = l2p[lbas].astype(np.int64)
            direct = cur == srcs
            wb = ftl.wbuf
            for i in np.flatnonzero(~direct).tolist():          # newest copy is buffered
                j = int(cur[i]) - CACHE_BASE
                if 0 <= j < wb.unit_secs and int(wb.prev[j]) == int(srcs[i]):
                    wb.prev[j] = new[i]
            m.drop(srcs.astype(np.uint32))
            l2p[lbas[direct]] = new[direct]
            m.p2l[new] = lbas
            np.add.at(m.valid, new // self.addr.block_secs, 1)
        ftl.counters["gc_sectors"] += int(moved.size)
        ftl.counters["pad_sectors"] += nunits * us - int(moved.size)
        ftl.units_since_ckpt += nunits
        ftl.dirty = True
        self.counters["moved"] += int(moved.size)
        rest = self.n - take
        if rest:                                              # keep the remainder in front
            self.data[:rest * sb] = self.data[take * sb:self.n * sb]
            self.lba[:rest] = self.lba[take:self.n]
            self.src[:rest] = self.src[take:self.n]
        self.n = rest
        self._finish()

    def _finish(self) -> None:
        """Release victims with nothing valid left; keep those with sectors still staged."""
        ftl = self.ftl
        blocks = ftl.blocks
        staged = set((self.src[:self.n] // self.addr.block_secs).tolist()) if self.n else ()
        pending, self.pending = self.pending, []
        for v in pending:
            if ftl.map.valid[v] == 0:
                ftl.release_data_block(v)
            elif v in staged:
                self.pending.append(v)
            else:                                # unreadable leftovers: try again later
                blocks.state[v] = BState.CLOSED
