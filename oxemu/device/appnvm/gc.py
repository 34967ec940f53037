"""Garbage collection of the AppNVM FTL: victim choice (greedy by default: fewest valid
sectors; cost-benefit, FIFO, random and d-choice on request) and relocation of the
victim's valid sectors into the GC stream (SPEC 6).

GC runs inside the write path whenever fewer than `gc_low` blocks are free, one victim
at a time, so it keeps up with any sustained write load. A victim's valid sectors are
staged and programmed as whole units in one batch; a remainder short of a unit waits in
the stage for the next victim. A victim is erased only once none of its sectors is left
in the stage, and before any data block is erased the pending trim records are
journaled, so a power cut never exposes older data than the last durable copy.

GC never takes the metadata's share of free blocks (what the next checkpoint and trim
unit need beyond the open metadata block; one block more unless the victim fits in one
block) and starts a victim only when its valid sectors fit in the room it has. If blocks
still fail it (an erase that fails when a block is taken), the stage is dropped -- the
sources are still valid where they are -- and the victims go back to being closed
blocks. GC therefore never wedges with a victim half moved and no block to finish it.
"""
import logging

import numpy as np

from ...volt import MediaOp
from .blocks import BState
from .layout import Stream
from .mapping import NO_LBA
from .params import AppNvmParams

log = logging.getLogger(__name__)


class GarbageCollector:
    """GC with a victim policy (`params.gc_policy`, SPEC 6). Collaborators: the mapping (what is valid where; moves go
    through Mapping.relocate, which also follows the durable copies of buffered sectors),
    blocks (states, victims), media (reads, timing), `program_units`, the journal (the
    Checkpointer: units written, victims released once trims are durable) and counters.

    Media errors (SPEC 9): a sector GC cannot read stays where it is, mapped and failing
    for the host, and its block is not erased while it holds it; GC then leaves that
    block alone until its valid count changes, so it never spins on it.
    """

    def __init__(self, addr, prov, mapping, blocks, media, program_units, journal, counters: dict,
                 params: AppNvmParams | None = None):
        self.params = params = params or AppNvmParams()
        self.policy = params.gc_policy
        self.rng = np.random.default_rng(params.gc_seed)
        self.addr = addr
        self.prov = prov
        self.map = mapping
        self.blocks = blocks
        self.media = media
        self.program_units = program_units
        self.journal = journal
        self.ftl_counters = counters
        self.unit_secs = addr.unit_secs
        cap = addr.block_secs + addr.unit_secs               # a whole victim + a remainder
        self.data = np.zeros(cap * addr.sector_nbytes, dtype=np.uint8)
        self.lba = np.full(cap, -1, dtype=np.int64)
        self.src = np.zeros(cap, dtype=np.int64)
        self.n = 0
        self.pending = []          # victims emptied except for sectors still in the stage
        # blocks given up on for unreadable sectors, with the valid count they had then
        self.stuck = np.full(addr.total_blocks, -1, dtype=np.int64)
        self.unreadable: set[int] = set()    # pending victims where a page could not be read
        self.counters = dict(moved=0, read_errors=0, stuck_blocks=0, no_room=0, restarts=0)
        self._restart = False                # GC may take the metadata's last block (see _fits)

    # ------------------------------------------------------------ policy
    def _candidates(self) -> np.ndarray:
        """Closed blocks GC may take (blocks left with unreadable sectors only once their
        valid count moved)."""
        return (self.blocks.state == BState.CLOSED) & (self.stuck != self.map.valid)

    def greedy(self, cand: np.ndarray | None = None) -> int:
        """The candidate with the fewest valid sectors (lowest id on a tie); -1 if none has
        any garbage."""
        if cand is None:
            cand = self._candidates()
        v = np.where(cand, self.map.valid, np.iinfo(np.int64).max)
        b = int(np.argmin(v))
        if v[b] >= self.addr.block_secs:
            return -1
        return b

    def pick(self) -> int:
        """The victim the policy chooses among closed blocks with garbage; -1 if none.

        Blocks sealed after a failed program go first when there is room to move them;
        blocks left with unreadable sectors only count again once their valid count moved.
        """
        blocks = self.blocks
        cand = self._candidates()
        if not cand.any():
            return -1
        doomed = np.flatnonzero(cand & blocks.doomed)
        if doomed.size and blocks.nfree > self.prov.gc_floor + 1:
            return int(doomed[0])
        if self.policy == "greedy":
            return self.greedy(cand)
        valid = self.map.valid
        ids = np.flatnonzero(cand & (valid < self.addr.block_secs))
        if ids.size == 0:
            return -1
        if self.policy == "fifo":                 # first written longest ago: a circular log
            return int(ids[np.argmin(blocks.epoch[ids])])
        if self.policy == "random":
            return int(ids[self.rng.integers(ids.size)])
        if self.policy == "d-choice":             # fewest valid of d drawn uniformly
            drawn = ids[self.rng.integers(ids.size, size=self.params.gc_d)]
            return int(drawn[np.argmin(valid[drawn])])
        # cost-benefit (LFS): (1 - u) * age / (1 + u), age in units since last written
        u = valid[ids] / self.addr.block_secs
        now = float(blocks.mtime.max()) + 1.0
        age = now - blocks.mtime[ids].astype(np.float64)
        return int(ids[np.argmax((1.0 - u) * age / (1.0 + u))])

    def make_room(self, target: int | None = None) -> None:
        """Collect victims until `target` (default gc_low) blocks are free, or no victim.
        A policy's victim that does not fit gives way to the greedy one."""
        blocks = self.blocks
        if target is None:
            target = self.prov.gc_low
        guard = self.addr.total_blocks * 2
        while blocks.nfree < target and guard > 0:
            guard -= 1
            v = self.pick()
            if v < 0:
                break
            if not self.collect(v):
                g = self.greedy() if self.policy != "greedy" else -1
                if g < 0 or g == v or not self.collect(g):
                    break
        if blocks.nfree < target and self.n:
            self.flush()

    # ------------------------------------------------------------ relocation
    def collect(self, v: int) -> bool:
        """Stage the victim's valid sectors and program the whole units among them.

        False (victim left alone) when the GC stream has no room for them."""
        addr = self.addr
        base = v * addr.block_secs
        live = np.flatnonzero(self.map.p2l[base:base + addr.block_secs] != NO_LBA)
        if self.n + live.size > self.lba.size:   # the stage is backed up: no GC room left
            return False
        if live.size and not self._fits(live.size):
            self.counters["no_room"] += 1        # could not finish it: leave it alone
            return False
        self.blocks.make_victim(v)
        self.stuck[v] = -1
        self.ftl_counters["gc_runs"] += 1
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

    def _fits(self, live: int) -> bool:
        """Whether the stage plus `live` sectors, padded, can be programmed: in the room GC
        has, plus the blocks of the victims in flight, which the first unit releases.

        GC keeps one free block beyond the metadata's need (the write buffer's last unit
        and metadata take it when all else is full), except for a victim that fits in one
        block: its release gives the block back."""
        us = self.unit_secs
        need = -(-(self.n + live) // us)
        meta = self.floor()
        for floor in (meta + 1, meta):
            room = self.room(floor)
            if self.pending and room >= 1 and self.n + live >= us:
                room += len(self.pending) * self.addr.npages
            if need <= room and (floor > meta or need <= self.addr.npages):
                return True
        return self._may_restart(need, meta)

    def _may_restart(self, need: int, meta: int) -> bool:
        """GC with nothing of its own -- no open block, nothing staged or in flight, as after
        a power cut that tore the unit it was programming and left its victims in place --
        may be down to the metadata's free blocks with garbage everywhere. It may then take
        the metadata's last block for a victim that fits in one: once the stage is programmed
        the victim is released (no trims are pending, so its erase waits for nothing) and
        gives a block back, and GC goes on in the block it took. Without this the device
        turned read-only with blocks full of garbage after such a cut."""
        bl = self.blocks
        if (meta < 1 or bl.nfree < 1 or bl.open_gc >= 0 or self.pending or self.n
                or self.journal.pending_trims or need > self.addr.npages):
            return False
        self._restart = True
        self.counters["restarts"] += 1
        return True

    def floor(self) -> int:
        """Free blocks GC never takes: what the next checkpoint and trim unit need beyond
        the room left in the open metadata block (one fewer while GC restarts, _may_restart,
        until it has a block of its own)."""
        need = self.blocks.meta_need(self.prov.ckpt_units + 1)
        if self._restart and self.blocks.open_gc < 0:
            return need - 1
        return need

    def room(self, floor: int | None = None) -> int:
        """Units GC can program leaving `floor` (default: the metadata's need) blocks free."""
        bl, addr = self.blocks, self.addr
        units = max(0, bl.nfree - (self.floor() if floor is None else floor)) * addr.npages
        if bl.open_gc >= 0:
            units += addr.npages - int(bl.wp[bl.open_gc])
        return units

    def _stage(self, v: int, base: int, live: np.ndarray) -> None:
        addr = self.addr
        media = self.media
        ch, lun, blk = addr.chlunblk(v)
        ns, sb = addr.nsectors, addr.sector_nbytes
        pages = live // ns                       # plane pages (pg * nplanes + pl) to read
        if self._stage_at_once(ch, lun, blk, base, live, pages):
            return
        brk = np.flatnonzero(np.diff(pages)) + 1
        starts = [0] + brk.tolist()
        ends = brk.tolist() + [live.size]
        last_pg, nread = -1, 0
        data, lba, src, p2l = self.data, self.lba, self.src, self.map.p2l
        for s, e in zip(starts, ends):
            pg, pl = divmod(int(pages[s]), addr.nplanes)
            if pg != last_pg:
                if nread:
                    media.charge(MediaOp.READ, ch, lun, nread * addr.page_nbytes, pg=last_pg)
                last_pg, nread = pg, 0
            nread += 1
            page = media.read_page(ch, lun, blk, pl, pg)
            if page is None:                     # unreadable: the sectors stay where they are
                self.counters["read_errors"] += 1
                self.unreadable.add(v)
                log.error("AppNVM GC: page ch %d lun %d blk %d pl %d pg %d unreadable; its %d sector(s) "
                          "stay mapped there", ch, lun, blk, pl, pg, e - s)
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
            media.charge(MediaOp.READ, ch, lun, nread * addr.page_nbytes, pg=last_pg)

    def _stage_at_once(self, ch: int, lun: int, blk: int, base: int, live: np.ndarray, pages: np.ndarray) -> bool:
        """_stage's reads, copies and charges at once, when every page reads fine on the first
        try (Media.read_pages: the same MMGR commands and counters); False, having read
        nothing, otherwise."""
        addr, media = self.addr, self.media
        ns, sb = addr.nsectors, addr.sector_nbytes
        first = np.flatnonzero(np.r_[True, pages[1:] != pages[:-1]])      # each plane page once
        pg, pl = np.divmod(pages[first], addr.nplanes)
        n = pg.size
        rows = media.read_pages(np.full(n, ch), np.full(n, lun), np.full(n, blk), pl, pg)
        if rows is None:
            return False
        k, m = self.n, live.size
        secs = np.repeat(rows, np.diff(np.r_[first, m])) * ns + live % ns
        np.take(media.volt.data_rows.reshape(-1, sb), secs, axis=0, out=self.data[k * sb:(k + m) * sb].reshape(m, sb),
                mode="clip")                      # clip: no buffered copy (the rows are valid)
        locs = base + live
        self.src[k:k + m] = locs
        self.lba[k:k + m] = self.map.p2l[locs]
        self.n = k + m
        pgs, nread = np.unique(pg, return_counts=True)          # a page's planes sensed together
        for p, c in zip(pgs.tolist(), nread.tolist()):
            media.charge(MediaOp.READ, ch, lun, c * addr.page_nbytes, pg=p)
        return True

    def flush(self) -> None:
        """Program the whole stage (the last unit padded) and release the emptied victims."""
        if self.n:
            self._program(-(-self.n // self.unit_secs))
        elif self.pending:
            self._finish()

    def _program(self, nunits: int) -> None:
        m = self.map
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
        placed = self.program_units(Stream.GC, self.data, lba.reshape(nunits, us))
        self._restart = False                    # GC has a block of its own now (or none at all)
        short = len(placed) < nunits
        if short:                                # out of blocks: drop the rest (still valid in place)
            log.warning("AppNVM GC: no free block for %d of %d units; the victims stay as they are",
                        nunits - len(placed), nunits)
            self.counters["no_room"] += 1
            nunits = len(placed)
            take = min(take, nunits * us)
            lba, src = lba[:nunits * us], src[:take]
        moved = np.flatnonzero(lba >= 0)
        if moved.size:
            unit_base = np.array([self.addr.unit_loc(b, pg) for b, pg, _ in placed], dtype=np.int64)
            new = unit_base[moved // us] + moved % us
            srcs = src[moved]
            m.relocate(lba[moved], srcs, new)
        self.ftl_counters["gc_sectors"] += int(moved.size)
        self.ftl_counters["pad_sectors"] += nunits * us - int(moved.size)
        self.journal.note_units(nunits)
        self.counters["moved"] += int(moved.size)
        rest = 0 if short else self.n - take
        if rest:                                              # keep the remainder in front
            self.data[:rest * sb] = self.data[take * sb:self.n * sb]
            self.lba[:rest] = self.lba[take:self.n]
            self.src[:rest] = self.src[take:self.n]
        self.n = rest
        self._finish()

    def _finish(self) -> None:
        """Release victims with nothing valid left; keep those with sectors still staged."""
        blocks = self.blocks
        valid = self.map.valid
        staged = set((self.src[:self.n] // self.addr.block_secs).tolist()) if self.n else ()
        pending, self.pending = self.pending, []
        for v in pending:
            if valid[v] == 0:
                self.unreadable.discard(v)
                self.journal.release_data_block(v)
            elif v in staged:
                self.pending.append(v)
            elif v in self.unreadable:           # unreadable leftovers: not erased, not retried
                self.unreadable.discard(v)       # until the host rewrites or trims them
                blocks.unmake_victim(v)
                self.stuck[v] = valid[v]
                self.counters["stuck_blocks"] += 1
            else:                                # its stage was dropped: a victim another time
                blocks.unmake_victim(v)
