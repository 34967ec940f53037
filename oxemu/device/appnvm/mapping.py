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
    """L2P (uint32 per LBA), P2L (uint32 per physical sector) and valid sectors per block.

    Invariant: for every media location l2p[lba] = loc, p2l[loc] = lba, and valid[b] is
    the number of such locations in block b. The durable copy an LBA had before its
    newest data went into the write buffer stays valid until that data reaches media.

    The Mapping is the only owner of the three tables: `l2p`, `p2l` and `valid` are
    read-only views, and every change goes through one of the named operations below.
    """

    def __init__(self, nlbas: int, addr: Addr):
        self.nlbas = nlbas
        self.addr = addr
        self.block_secs = addr.block_secs
        self._l2p = np.full(nlbas, UNMAPPED, dtype=np.uint32)
        self._p2l = np.full(addr.total_secs, NO_LBA, dtype=np.uint32)
        self._valid = np.zeros(addr.total_blocks, dtype=np.int64)
        self.l2p = _frozen(self._l2p)
        self.p2l = _frozen(self._p2l)
        self.valid = _frozen(self._valid)

    # ------------------------------------------------------------ updates
    def drop(self, locs: np.ndarray) -> None:
        """Media copies that are no longer current (cache and unmapped entries ignored)."""
        locs = locs[locs < CACHE_BASE]
        if locs.size == 1:
            loc = int(locs[0])
            self._p2l[loc] = NO_LBA
            self._valid[loc // self.block_secs] -= 1
        elif locs.size:
            self._p2l[locs] = NO_LBA
            np.subtract.at(self._valid, locs // self.block_secs, 1)

    def place(self, lbas: np.ndarray, locs: np.ndarray) -> None:
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

    def cache(self, lbas: np.ndarray, slots: np.ndarray) -> None:
        """The newest copy of lbas[i] is in write-buffer slot slots[i]; the durable copy
        stays valid in P2L until the buffered one reaches media."""
        self._l2p[lbas] = CACHE_BASE + slots

    def deallocate(self, slba: int, nlb: int, durable: np.ndarray) -> None:
        """LBAs [slba, slba + nlb) read zeros from now on. `durable`: the media copies of
        buffered sectors in the range (the write buffer's predecessors), dropped too."""
        seg = self._l2p[slba:slba + nlb]
        self.drop(np.concatenate([seg[seg < CACHE_BASE], durable.astype(np.uint32)]))
        seg[:] = UNMAPPED

    def relocate(self, lbas: np.ndarray, srcs: np.ndarray, news: np.ndarray) -> np.ndarray:
        """GC moved the sector at srcs[i] (a current copy of lbas[i]) to news[i].

        The P2L entry and the valid count move with it; the L2P follows where it pointed
        at the source. Returns that mask: where it did not, the newest copy is buffered
        and srcs[i] was its durable predecessor (the write buffer must learn the move).
        """
        direct = self._l2p[lbas].astype(np.int64) == srcs
        self.drop(srcs.astype(np.uint32))
        self._l2p[lbas[direct]] = news[direct]
        self._p2l[news] = lbas
        np.add.at(self._valid, news // self.block_secs, 1)
        return direct

    # ------------------------------------------------------------ rebuild
    def load(self, l2p: np.ndarray) -> None:
        """Take a recovered L2P (media locations only) and derive P2L and valid counts."""
        self._l2p[:] = l2p
        self._p2l.fill(NO_LBA)
        lbas = np.flatnonzero(self._l2p < CACHE_BASE)
        locs = self._l2p[lbas]
        self._p2l[locs] = lbas.astype(np.uint32)
        self._valid[:] = np.bincount(locs // self.block_secs, minlength=self._valid.size)

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
