"""Page-level mapping of the AppNVM FTL: L2P, its reverse (P2L) and valid counts per
block, as numpy arrays; plus the numbering of physical sectors (SPEC 6).

A physical sector is one integer `loc`:
    unit = (glun * nblocks + blk) * npages + pg      glun = ch * nluns + lun
    loc  = unit * unit_secs + pl * nsectors + sec    unit_secs = nplanes * nsectors
so a block's sectors are one contiguous range and a unit's sectors follow each other.
"""
import numpy as np

UNMAPPED = 0xFFFF_FFFF            # L2P: never written or deallocated
CACHE_BASE = 0xFFFF_FF00          # L2P: CACHE_BASE + slot = newest copy in the write buffer
NO_LBA = 0xFFFF_FFFF              # P2L: the sector holds no current data


class Addr:
    """Numbering of blocks, units and sectors for one geometry."""

    __slots__ = ("geo", "nchannels", "nluns", "nblocks", "npages", "nplanes", "nsectors",
                 "sector_nbytes", "unit_secs", "unit_nbytes", "block_secs", "total_luns",
                 "total_blocks", "total_secs", "page_nbytes")

    def __init__(self, geo):
        self.geo = geo
        self.nchannels, self.nluns, self.nblocks = geo.nchannels, geo.nluns, geo.nblocks
        self.npages, self.nplanes, self.nsectors = geo.npages, geo.nplanes, geo.nsectors
        self.sector_nbytes = geo.sector_nbytes
        self.page_nbytes = geo.page_nbytes
        self.unit_secs = geo.nplanes * geo.nsectors
        self.unit_nbytes = self.unit_secs * geo.sector_nbytes
        self.block_secs = geo.npages * self.unit_secs
        self.total_luns = geo.nchannels * geo.nluns
        self.total_blocks = self.total_luns * geo.nblocks
        self.total_secs = self.total_blocks * self.block_secs
        if self.total_secs >= CACHE_BASE:
            raise ValueError("geometry too large for 32-bit physical sector numbers")

    def chlunblk(self, b: int) -> tuple[int, int, int]:
        glun, blk = divmod(b, self.nblocks)
        ch, lun = divmod(glun, self.nluns)
        return ch, lun, blk

    def glun(self, b: int) -> int:
        return b // self.nblocks

    def unit_loc(self, b: int, pg: int) -> int:
        return (b * self.npages + pg) * self.unit_secs

    def decode(self, loc: int) -> tuple[int, int, int, int, int, int]:
        """(ch, lun, blk, pl, pg, sec) of a physical sector."""
        unit, r = divmod(loc, self.unit_secs)
        b, pg = divmod(unit, self.npages)
        pl, sec = divmod(r, self.nsectors)
        return (*self.chlunblk(b), pl, pg, sec)


class Mapping:
    """L2P (uint32 per LBA), P2L (uint32 per physical sector) and valid sectors per block,
    and what each write-buffer slot stands for.

    Invariant: for every media location l2p[lba] = loc, p2l[loc] = lba, and valid[b] is
    the number of such locations in block b. The buffer rule: the durable copy an LBA had
    before its newest data went into the write buffer stays valid until that data reaches
    media (a power cut loses the buffer, never the older copy; GC moves that copy like any
    other). Per buffer slot the Mapping keeps the LBA it holds (`slot_lba`, -1 once a
    rewrite or a deallocate superseded it) and that durable predecessor (`slot_prev`), and
    its operations keep the rule, so no caller sequences drops and placements by hand:

        buffer(lbas, slots)      host data entered the buffer
        buffer_programmed(locs)  the buffer's unit reached media
        write_units(lbas, locs)  whole units went to media straight from the host
        deallocate(slba, nlb)    LBAs read zeros from now on
        relocate(lbas, srcs, news)  GC moved current copies (buffered LBAs' predecessors too)

    The Mapping is the only owner of these tables: `l2p`, `p2l`, `valid`, `slot_lba` and
    `slot_prev` are read-only views, and every change goes through the operations here.
    """

    def __init__(self, nlbas: int, addr: Addr):
        self.nlbas = nlbas
        self.addr = addr
        self.block_secs = addr.block_secs
        self._l2p = np.full(nlbas, UNMAPPED, dtype=np.uint32)
        self._p2l = np.full(addr.total_secs, NO_LBA, dtype=np.uint32)
        self._valid = np.zeros(addr.total_blocks, dtype=np.int64)
        self._slot_lba = np.full(addr.unit_secs, -1, dtype=np.int64)
        self._slot_prev = np.full(addr.unit_secs, UNMAPPED, dtype=np.uint32)
        self.l2p = _frozen(self._l2p)
        self.p2l = _frozen(self._p2l)
        self.valid = _frozen(self._valid)
        self.slot_lba = _frozen(self._slot_lba)
        self.slot_prev = _frozen(self._slot_prev)

    # ------------------------------------------------------------ the buffer rule
    def buffer(self, lbas: np.ndarray, slots: np.ndarray) -> None:
        """The newest copies of lbas[i] (distinct) are in write-buffer slots[i]. Their
        durable copies stay valid; an LBA rewritten while still buffered supersedes its
        older slot and passes that slot's durable predecessor on."""
        lbas = np.asarray(lbas, dtype=np.int64)
        old = self._l2p[lbas]
        cached = (old >= CACHE_BASE) & (old < UNMAPPED)
        prev = old.copy()
        if cached.any():
            j = old[cached] - CACHE_BASE
            prev[cached] = self._slot_prev[j]
            self._slot_lba[j] = -1
        self._slot_lba[slots] = lbas
        self._slot_prev[slots] = prev
        self._l2p[lbas] = CACHE_BASE + np.asarray(slots, dtype=np.uint32)

    def buffer_one(self, lba: int, slot: int) -> None:
        """buffer() of one LBA in plain integers: the 4 KiB write's case."""
        old = int(self._l2p[lba])
        if CACHE_BASE <= old < UNMAPPED:
            j = old - CACHE_BASE
            self._slot_lba[j] = -1
            old = int(self._slot_prev[j])
        self._slot_lba[slot] = lba
        self._slot_prev[slot] = old
        self._l2p[lba] = CACHE_BASE + slot

    def buffered_lbas(self) -> np.ndarray:
        """The LBA each buffer slot carries to media (-1: padding), as a new array."""
        return self._slot_lba.copy()

    def buffer_programmed(self, locs: np.ndarray) -> None:
        """The buffer's unit reached media, slot i at locs[i]: the durable predecessors of
        its live sectors stop counting, the sectors are the newest copies now, and the
        slots are free."""
        live = self._slot_lba >= 0
        self._drop(np.where(live, self._slot_prev, UNMAPPED).astype(np.uint32))
        self._place(self._slot_lba, np.asarray(locs, dtype=np.int64))
        self._slot_lba.fill(-1)
        self._slot_prev.fill(UNMAPPED)

    def write_units(self, lbas: np.ndarray, locs: np.ndarray) -> None:
        """Whole units went to media straight from the host, lbas[i] (-1: padding) at
        locs[i]: each LBA's durable copy stops counting (a buffered LBA's slot is
        superseded and its predecessor goes), and these are the newest copies."""
        lbas = np.asarray(lbas, dtype=np.int64)
        real = lbas[lbas >= 0]
        old = self._l2p[real]
        cached = np.flatnonzero((old >= CACHE_BASE) & (old < UNMAPPED))
        if cached.size:
            old = old.copy()
            j = old[cached] - CACHE_BASE
            self._slot_lba[j] = -1
            old[cached] = self._slot_prev[j]
        self._drop(old)
        self._place(lbas, np.asarray(locs, dtype=np.int64))

    def deallocate(self, slba: int, nlb: int) -> None:
        """LBAs [slba, slba + nlb) read zeros from now on: their media copies stop counting,
        and so do buffered sectors in the range, with their durable predecessors."""
        seg = self._l2p[slba:slba + nlb]
        cached = (seg >= CACHE_BASE) & (seg < UNMAPPED)
        prev = np.empty(0, dtype=np.uint32)
        if cached.any():
            j = seg[cached] - CACHE_BASE
            self._slot_lba[j] = -1
            prev = self._slot_prev[j]
        self._drop(np.concatenate([seg[seg < CACHE_BASE], prev]))
        seg[:] = UNMAPPED

    def relocate(self, lbas: np.ndarray, srcs: np.ndarray, news: np.ndarray) -> None:
        """GC moved the sector at srcs[i] (a current copy of lbas[i]) to news[i].

        The P2L entry and the valid count move with it; the L2P follows where it pointed at
        the source. Where it did not, the newest copy is buffered and srcs[i] was its
        durable predecessor: the slot's predecessor is news[i] now.
        """
        direct = self._l2p[lbas].astype(np.int64) == srcs
        self._drop(srcs.astype(np.uint32))
        self._l2p[lbas[direct]] = news[direct]
        self._p2l[news] = lbas
        np.add.at(self._valid, news // self.block_secs, 1)
        if not direct.all():
            cur = self._l2p[lbas[~direct]].astype(np.int64)
            j = cur - CACHE_BASE
            ok = (cur >= CACHE_BASE) & (cur < UNMAPPED)
            ok[ok] = self._slot_prev[j[ok]] == srcs[~direct][ok]
            self._slot_prev[j[ok]] = news[~direct][ok]

    def durable_l2p(self) -> np.ndarray:
        """A copy of the L2P with buffered entries replaced by their durable copies: what a
        power cut would leave (the checkpoint's L2P)."""
        out = self._l2p.copy()
        live = np.flatnonzero(self._slot_lba >= 0)
        out[self._slot_lba[live]] = self._slot_prev[live]
        return out

    # ------------------------------------------------------------ media copies
    def _drop(self, locs: np.ndarray) -> None:
        """Media copies that are no longer current (cache and unmapped entries ignored)."""
        locs = locs[locs < CACHE_BASE]
        if locs.size == 1:
            loc = int(locs[0])
            self._p2l[loc] = NO_LBA
            self._valid[loc // self.block_secs] -= 1
        elif locs.size:
            self._p2l[locs] = NO_LBA
            np.subtract.at(self._valid, locs // self.block_secs, 1)

    def _place(self, lbas: np.ndarray, locs: np.ndarray) -> None:
        """Media sectors locs[i] now hold the newest copy of lbas[i] (lbas < 0: padding)."""
        keep = lbas >= 0
        if not keep.all():
            lbas, locs = lbas[keep], locs[keep]
        if lbas.size == 0:
            return
        self._l2p[lbas] = locs
        self._p2l[locs] = lbas
        blk = locs // self.block_secs
        if lbas.size == 1 or (blk == blk[0]).all():
            self._valid[blk[0]] += lbas.size
        else:
            np.add.at(self._valid, blk, 1)

    # ------------------------------------------------------------ rebuild
    def load(self, l2p: np.ndarray) -> None:
        """Take a recovered L2P (media locations only) and derive P2L and valid counts;
        the buffer is empty."""
        self._l2p[:] = l2p
        self._p2l.fill(NO_LBA)
        lbas = np.flatnonzero(self._l2p < CACHE_BASE)
        locs = self._l2p[lbas]
        self._p2l[locs] = lbas.astype(np.uint32)
        self._valid[:] = np.bincount(locs // self.block_secs, minlength=self._valid.size)
        self._slot_lba.fill(-1)
        self._slot_prev.fill(UNMAPPED)

    def mapped_count(self) -> int:
        return int(np.count_nonzero(self._l2p != UNMAPPED))


def valid_counts(l2p: np.ndarray, addr: Addr) -> np.ndarray:
    """Valid sectors per block implied by an L2P (media locations only)."""
    locs = l2p[l2p < CACHE_BASE]
    return np.bincount(locs // addr.block_secs, minlength=addr.total_blocks)


def _frozen(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v
