"""Lines: block `i` on every LUN of the target forms line `i` (pblk-init.c, pblk-core.c).

A line's sectors are numbered the way pblk's own PPA format numbers them (pblk_set_ppaf:
sector, plane, then LUN, then page): a write unit is one page on all planes of one LUN
(8 sectors, 32 KiB in dual-plane mode) and consecutive units stripe across the LUNs, the
LUNs themselves ordered across channels first (pblk_luns_init). Units on bad blocks are
skipped; the first good unit holds smeta and the last good units hold emeta.

A line is erased when it is freed, not when it is next used: a freed line left holding its
smeta would come back at the next recovery with data the L2P has long moved past (and
after TRIM records for it were dropped). The erase goes LUN by LUN in stripe order, so
the block holding smeta goes first and a power cut in the middle leaves no line behind.
"""
import enum
import logging
from collections import deque

import numpy as np

from oxemu.wire import BlockState, NvmOpc, Status
from oxhost.lightnvm import Addr, NvmError

from .errors import PblkError, PblkReadOnly
from .metadata import MetaSizes
from .params import OVER_PROVISION_PCT, exported_sectors

log = logging.getLogger(__name__)


class LineState(enum.IntEnum):
    """PBLK_LINESTATE_*."""
    FREE = 10
    OPEN = 11
    CLOSED = 12
    GC = 13
    BAD = 14


class LineGeometry:
    """The target's LUN range seen as lines, write units and device addresses.

    The exported capacity keeps `op` of the chunks back (params.exported_sectors, op = 0.2:
    pblk_set_provision's 80 %), or is `capacity_sectors` when that is given."""

    def __init__(self, geo, lun_begin: int = 0, lun_end: int | None = None, *,
                 op: float = OVER_PROVISION_PCT / 100, capacity_sectors: int = 0):
        total = geo.nchannels * geo.nluns
        if lun_end is None:
            lun_end = total - 1
        if not (0 <= lun_begin <= lun_end < total):
            raise PblkError(f"LUN range {lun_begin}-{lun_end} outside the device's LUNs 0-{total - 1}")
        self.geo = geo
        self.lun_begin, self.lun_end = lun_begin, lun_end
        per_ch: dict[int, list[int]] = {}
        for g in range(lun_begin, lun_end + 1):
            ch, lun = divmod(g, geo.nluns)
            per_ch.setdefault(ch, []).append(lun)
        order = []                                        # stripe across channels first
        for i in range(max(len(v) for v in per_ch.values())):
            for ch in sorted(per_ch):
                if i < len(per_ch[ch]):
                    order.append((ch, per_ch[ch][i]))
        self.luns: list[tuple[int, int]] = order
        self.nluns = len(order)
        self.nplanes, self.nsectors = geo.nplanes, geo.nsectors
        self.npages, self.nlines = geo.npages, geo.nblocks
        self.unit_secs = geo.nplanes * geo.nsectors        # pblk's min_write_pgs (sec_per_pl)
        self.sec_per_chunk = geo.npages * self.unit_secs
        self.units_per_line = geo.npages * self.nluns
        self.sec_per_line = self.units_per_line * self.unit_secs
        self.nchunks = self.nluns * geo.nblocks
        self.capacity_sectors = capacity_sectors or exported_sectors(self.nchunks, self.sec_per_chunk, op)
        if not 0 < self.capacity_sectors <= self.nchunks * self.sec_per_chunk:
            raise PblkError(f"capacity of {self.capacity_sectors} sectors does not fit LUNs "
                            f"{lun_begin}-{lun_end} ({self.nchunks} chunks of {self.sec_per_chunk})")
        self.meta = MetaSizes(self.nluns, self.nlines, self.unit_secs, self.sec_per_line, geo.sector_nbytes)

        f = geo.ppaf
        self.blk_off = f.blk_off
        paddr = np.arange(self.sec_per_line, dtype=np.int64)
        unit, k = np.divmod(paddr, self.unit_secs)
        pg, li = np.divmod(unit, self.nluns)
        pl, sec = np.divmod(k, self.nsectors)
        lun_ch = np.array([c for c, _ in order], dtype=np.uint64)
        lun_lun = np.array([n for _, n in order], dtype=np.uint64)
        u64 = np.uint64
        self.paddr_ppa = ((lun_ch[li] << u64(f.ch_off)) | (lun_lun[li] << u64(f.lun_off))
                          | (pl.astype(u64) << u64(f.pl_off)) | (pg.astype(u64) << u64(f.pg_off))
                          | (sec.astype(u64) << u64(f.sec_off)))
        # erase addresses: (lun index, plane) -> PPA without the block
        self.block_ppa = ((lun_ch[:, None] << u64(f.ch_off)) | (lun_lun[:, None] << u64(f.lun_off))
                          | (np.arange(self.nplanes, dtype=u64)[None, :] << u64(f.pl_off)))
        self._unit_off = np.arange(self.unit_secs, dtype=np.int64)

    # ------------------------------------------------------------ addressing
    def unit_paddrs(self, units: np.ndarray) -> np.ndarray:
        """Line sector numbers of the given write units, unit by unit."""
        return (np.asarray(units, dtype=np.int64)[:, None] * self.unit_secs + self._unit_off).ravel()

    def ppas(self, line_id: int, paddrs: np.ndarray) -> np.ndarray:
        """Device PPAs (uint64) of line sectors."""
        return self.paddr_ppa[paddrs] | np.uint64(line_id << self.blk_off)

    def addr_ppas(self, addrs: np.ndarray) -> np.ndarray:
        """Device PPAs of flat media addresses (line * sec_per_line + paddr), as the L2P holds them."""
        line, paddr = np.divmod(addrs, self.sec_per_line)
        return self.paddr_ppa[paddr] | (line.astype(np.uint64) << np.uint64(self.blk_off))

    def lun_of_unit(self, units) -> np.ndarray:
        return np.asarray(units) % self.nluns

    def lun_addr(self, li: int, blk: int = 0, pl: int = 0) -> Addr:
        ch, lun = self.luns[li]
        return Addr(ch, lun, pl=pl, blk=blk)

    def layout(self, good: np.ndarray):
        """(smeta units, data units, emeta units) of a line whose blocks are `good`, or None
        when too few remain to hold metadata and data (pblk's min_blk_line)."""
        sz = self.meta
        units = np.arange(self.units_per_line, dtype=np.int64)
        usable = units[np.asarray(good, dtype=bool)[units % self.nluns]]
        if usable.size < sz.smeta_units + sz.emeta_units + 1:
            return None
        return (usable[:sz.smeta_units], usable[sz.smeta_units:usable.size - sz.emeta_units],
                usable[usable.size - sz.emeta_units:])


class Line:
    """struct pblk_line: state, sequence, which blocks it has, where its units are. Its
    fields change only through LineManager's operations; everyone else reads them."""

    __slots__ = (
        "collected",
        "cur",
        "data_units",
        "emeta_units",
        "erased",
        "gc_tries",
        "good",
        "id",
        "nblocks",
        "prev_id",
        "seq",
        "smeta_units",
        "state",
        "werr",
    )

    def __init__(self, line_id: int, nluns: int):
        self.id = line_id
        self.state = LineState.FREE
        self.seq = 0
        self.prev_id = 0xFFFFFFFF
        self.good = np.ones(nluns, dtype=bool)       # blocks the line uses
        self.werr = np.zeros(nluns, dtype=bool)      # blocks with a failed program this round
        self.smeta_units = self.data_units = self.emeta_units = None
        self.cur = 0                                 # next data unit to map
        self.nblocks = 0
        self.erased = False                          # known erased since its last use
        self.collected = False                       # GC moved all it could; what is left is unreadable
        self.gc_tries = 0                            # GC runs that left unreadable sectors behind

    def set_layout(self, lg: LineGeometry, good: np.ndarray) -> bool:
        self.good = np.array(good, dtype=bool)
        lay = lg.layout(self.good)
        if lay is None:
            self.smeta_units = self.data_units = self.emeta_units = None
            self.nblocks = 0
            return False
        self.smeta_units, self.data_units, self.emeta_units = lay
        self.nblocks = int(np.count_nonzero(self.good))
        return True

    def units_left(self) -> int:
        """Data units not yet mapped."""
        return 0 if self.data_units is None else self.data_units.size - self.cur

    def __repr__(self) -> str:
        return f"Line({self.id}, {self.state.name}, seq={self.seq}, blocks={self.nblocks})"


class LineManager:
    """pblk_line_mgmt: the free list, the open data line and the one erased ahead of it,
    bad blocks and erases. Valid counts and LBA lists live in the L2P (l2p.py).

    The one owner of line state: every transition of a line -- opened (`begin_open`,
    `open`), closed (`close`), taken and given back by GC (`start_gc`, `collected`,
    `uncollect`), freed (`release`), blocks retired (`retire_blocks`) and the states
    recovery finds (`recovered_*`, `reopen`) -- happens here; the writer, GC and recovery
    call these operations and only read a Line's fields. `on_bad` (the target's read-only
    check) hears of every retirement once the line's new size is known."""

    def __init__(self, dev, lg: LineGeometry, counters: dict):
        self.dev = dev
        self.lg = lg
        self.c = counters
        self.on_change = None                     # called when the free space changes
        self.on_bad = None                        # called when blocks turn grown bad
        n = lg.nlines
        self.lines = [Line(i, lg.nluns) for i in range(n)]
        self.bad_blk = np.zeros((n, lg.nluns), dtype=bool)        # per the bad block tables
        self.factory_bad = np.zeros((n, lg.nluns), dtype=bool)
        self.free: deque[Line] = deque()
        self.cur: Line | None = None                              # open data line
        self.next: Line | None = None                             # erased ahead
        self.next_seq = 1
        self.last_id = 0xFFFFFFFF
        self.free_blocks = 0
        self.free_secs = 0
        self.reserve_secs = 0                                     # one line, for GC alone
        self.uuid = b"\0" * 16

    # ------------------------------------------------------------ bad blocks
    def load_bbt(self) -> None:
        """Fold every LUN's table: a block is unusable when any of its planes is not free."""
        lg = self.lg
        for li, (ch, lun) in enumerate(lg.luns):
            blks = self.dev.bbt_get(Addr(ch, lun)).blks.reshape(lg.nlines, lg.nplanes)
            self.bad_blk[:, li] = np.any(blks != BlockState.FREE, axis=1)
            self.factory_bad[:, li] = np.any(blks == BlockState.BAD, axis=1)

    def retire_blocks(self, line: Line, lis) -> bool:
        """The blocks of `line` on LUN indices `lis` turn grown bad (state 2, on the device
        and in the tables) and the line goes on without them. False when too few remain:
        the line is retired (BAD). Either way the target then re-checks its spare space
        (`on_bad`), with the line at its new size."""
        lis = [int(x) for x in np.atleast_1d(lis)]
        if lis:
            addrs = [self.lg.lun_addr(li, blk=line.id, pl=pl) for li in lis for pl in range(self.lg.nplanes)]
            try:
                self.dev.bbt_mark(addrs, BlockState.GRWN_BAD)
            except NvmError as e:
                log.warning("pblk: could not mark grown bad blocks of line %d: %s", line.id, e)
            self.bad_blk[line.id, lis] = True
            self.c["grown_bad_marked"] += len(lis)
            log.warning("pblk: line %d: block on LUN index(es) %s marked grown bad", line.id, lis)
        ok = self._lay_out(line, line.good & ~self.bad_blk[line.id])
        if not ok:
            log.warning("pblk: line %d has too few good blocks left; retired", line.id)
        if self.on_bad is not None:
            self.on_bad()
        return ok

    def _lay_out(self, line: Line, good: np.ndarray) -> bool:
        """Lay the line out on its `good` blocks; retire it (BAD) when they are too few."""
        if line.set_layout(self.lg, good):
            return True
        line.state = LineState.BAD
        return False

    def write_failed(self, line: Line, lis) -> None:
        """A program on the line's blocks at LUN indices `lis` failed: they are retired when
        the line is freed (pblk's werr), and GC takes such a line first."""
        line.werr[lis] = True

    # ------------------------------------------------------------ free list
    # free_blocks / free_secs count the free list and the line erased ahead: both are empty
    def _line_secs(self, line: Line) -> int:
        return int(line.data_units.size) * self.lg.unit_secs

    def _count(self, line: Line, sign: int) -> None:
        self.free_blocks += sign * line.nblocks
        self.free_secs += sign * self._line_secs(line)

    def _to_free_list(self, line: Line) -> None:
        line.state = LineState.FREE
        self.free.append(line)
        self._count(line, +1)

    def rl_update(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def set_reserve(self, secs: int) -> None:
        """Free sectors held for GC alone (the rate limiter's reserve)."""
        if secs != self.reserve_secs:
            self.reserve_secs = secs
            self.rl_update()

    def avail_secs(self) -> int:
        """Data sectors the writer can still fill without GC freeing a line."""
        cur = self.cur
        return self.free_secs + (cur.units_left() * self.lg.unit_secs if cur is not None else 0)

    def usable_secs(self) -> int:
        """Data sectors of every line that can still hold data."""
        return sum(self._line_secs(ln) for ln in self.lines if ln.state != LineState.BAD)

    def erase(self, line: Line) -> bool:
        """Erase the line's good blocks (one multi-plane erase per block). Blocks whose erase
        fails turn grown bad and the line goes on without them; False if too few remain."""
        lg = self.lg
        lis = np.flatnonzero(line.good)
        ppas = (lg.block_ppa[lis] | np.uint64(line.id << lg.blk_off)).ravel()
        try:
            self.dev.ppa_io(NvmOpc.PH_ERASE, ppas, self.dev.pmode)
        except NvmError as e:
            if (int(e.status) & ~int(Status.DNR)) == Status.NS_WRITE_PROTECTED:
                raise PblkReadOnly("pblk: the device refuses erases (its media is read-only)", device=True) from e
            log.warning("pblk: erase of line %d: %s", line.id, e)
            failed = e.mask.reshape(lis.size, lg.nplanes).any(axis=1)
            bad = lis[failed]
            self.c["erase_failed"] += int(bad.size)
            if not self.retire_blocks(line, bad):
                return False
        self.c["erases"] += 1
        line.erased = True
        return True

    def pop_erased(self) -> Line | None:
        """The next free line, erased and off the counts; None when there is none."""
        while self.free:
            line = self.free.popleft()
            self._count(line, -1)
            # the tables may have changed since the line was freed
            if not self._lay_out(line, line.good & ~self.bad_blk[line.id]):
                continue
            if line.erased or self.erase(line):
                return line
        return None

    def take_for_open(self) -> Line | None:
        """The line to open next: the one erased ahead, else one erased now."""
        line, self.next = self.next, None
        if line is not None:
            self._count(line, -1)
        else:
            line = self.pop_erased()
        self.rl_update()
        return line

    def prepare_next(self) -> None:
        """Erase ahead the line after the open one (pblk erases the next data line early)."""
        if self.next is None:
            line = self.pop_erased()
            if line is not None:
                self.next = line
                self._count(line, +1)
            self.rl_update()

    # ------------------------------------------------------------ the writer's line
    def begin_open(self, line: Line) -> None:
        """A line taken for writing gets the next sequence number and the previous line's
        id; its smeta is written next (a line retired by then keeps the number unused)."""
        line.seq = self.next_seq
        self.next_seq += 1
        line.prev_id = self.last_id
        line.cur = 0
        line.werr[:] = False
        line.erased = False

    def open(self, line: Line) -> None:
        """Its smeta is on media: the line is the open data line, and the one after it is
        erased ahead."""
        line.state = LineState.OPEN
        self.cur = line
        self.last_id = line.id
        self.prepare_next()

    def advance(self, line: Line, units: int) -> None:
        """`units` more data units of the line were programmed (or consumed by a failure)."""
        line.cur += units

    def close(self, line: Line) -> None:
        """Its emeta was written (or failed to be): the line is closed, GC may take it."""
        line.state = LineState.CLOSED
        if self.cur is line:
            self.cur = None

    # ------------------------------------------------------------ GC
    def start_gc(self, line: Line) -> None:
        """GC took the closed line as its victim."""
        line.state = LineState.GC

    def collected(self, line: Line) -> None:
        """GC went through the line and left only sectors it could not read: the line is
        closed again, marked so it is not a normal candidate, and counts the try."""
        line.state = LineState.CLOSED
        line.collected = True
        line.gc_tries += 1

    def uncollect(self, line: Line) -> None:
        """GC's moves out of the line were undone: it is a closed line again."""
        if line.state == LineState.GC:
            line.state = LineState.CLOSED

    def release(self, line: Line) -> None:
        """A collected line is erased and goes back to the free list; blocks that failed a
        program while it was in use are retired first. (The caller has dropped its mapping
        state.)"""
        werr = np.flatnonzero(line.werr & ~self.bad_blk[line.id])
        line.werr[:] = False
        line.seq = 0
        line.cur = 0
        line.collected = False
        line.gc_tries = 0
        line.erased = False
        if werr.size:
            if not self.retire_blocks(line, werr):
                return
        elif not self._lay_out(line, line.good & ~self.bad_blk[line.id]):
            if self.on_bad is not None:
                self.on_bad()
            return
        if not self.erase(line):
            return
        self._to_free_list(line)
        self.rl_update()

    # ------------------------------------------------------------ recovery
    def lay_out_from_tables(self, line: Line) -> bool:
        """Recovery: the line's layout from the bad block tables; False (and BAD) when too
        few of its blocks are good."""
        return self._lay_out(line, ~self.bad_blk[line.id])

    def recovered_in_use(self, line: Line, seq: int, prev_id: int, luns: np.ndarray) -> bool:
        """Recovery: the line's smeta names its sequence, the line before it and the blocks
        it was written on. False, changing nothing else, when those blocks are too few."""
        if not line.set_layout(self.lg, luns):
            return False
        line.seq, line.prev_id = seq, prev_id
        return True

    def recovered_closed(self, line: Line, cur: int, werr: np.ndarray | None = None) -> None:
        """Recovery: the line was replayed, `cur` data units written; `werr` the blocks its
        emeta lists as failed (they are retired when it is freed)."""
        if werr is not None:
            line.werr = werr & line.good
        line.cur = cur
        line.state = LineState.CLOSED

    def recovered_free(self, line: Line) -> None:
        """Recovery: a line that holds nothing of this target goes to the free list (erased
        before it is used), laid out from the tables."""
        line.seq, line.cur = 0, 0
        if self.lay_out_from_tables(line):
            self._to_free_list(line)

    def recovered(self, newest: Line | None) -> None:
        """Recovery is done: writing goes on after the newest line in use; GC's reserve is
        one line of the largest size."""
        if newest is not None:
            self.next_seq = newest.seq + 1
            self.last_id = newest.id
        self.reserve_secs = max((self._line_secs(ln) for ln in self.lines if ln.state != LineState.BAD),
                                default=0)

    def reopen(self, line: Line, cur: int) -> None:
        """Recovery: the newest line was open at the stop; writing goes on in it at data
        unit `cur`."""
        line.cur = cur
        line.state = LineState.OPEN
        self.cur = line

    # ------------------------------------------------------------ views
    def count(self, state: LineState) -> int:
        return sum(1 for ln in self.lines if ln.state == state)

    def closed(self) -> list[Line]:
        return [ln for ln in self.lines if ln.state == LineState.CLOSED]
