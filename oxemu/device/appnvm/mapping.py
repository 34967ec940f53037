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
    """

    def __init__(self, nlbas: int, addr: Addr):
        self.nlbas = nlbas
        self.addr = addr
        self.block_secs = addr.block_secs
        self.l2p = np.full(nlbas, UNMAPPED, dtype=np.uint32)
        self.p2l = np.full(addr.total_secs, NO_LBA, dtype=np.uint32)
        self.valid = np.zeros(addr.total_blocks, dtype=np.int64)

    # ------------------------------------------------------------ updates
    def drop(self, locs: np.ndarray) -> None:
        """Media copies that are no longer current (cache and unmapped entries ignored)."""
        locs = locs[locs < CACHE_BASE]
        if locs.size == 1:
            loc = int(locs[0])
            self.p2l[loc] = NO_LBA
            self.valid[loc // self.block_secs] -= 1
        elif locs.size:
            self.p2l[locs] = NO_LBA
            np.subtract.at(self.valid, locs // self.block_secs, 1)

    def place(self, lbas: np.ndarray, locs: np.ndarray) -> None:
        """Media sectors locs[i] now hold the newest copy of lbas[i] (lbas < 0: padding)."""
        keep = lbas >= 0
        if not keep.all():
            lbas, locs = lbas[keep], locs[keep]
        if lbas.size == 0:
            return
        self.l2p[lbas] = locs
        self.p2l[locs] = lbas
        blk = locs // self.block_secs
        if lbas.size == 1 or (blk == blk[0]).all():
            self.valid[blk[0]] += lbas.size
        else:
            np.add.at(self.valid, blk, 1)

    # ------------------------------------------------------------ rebuild
    def rebuild_reverse(self) -> None:
        """P2L and valid counts from the L2P alone (after recovery)."""
        self.p2l.fill(NO_LBA)
        lbas = np.flatnonzero(self.l2p < CACHE_BASE)
        locs = self.l2p[lbas]
        self.p2l[locs] = lbas.astype(np.uint32)
        self.valid[:] = np.bincount(locs // self.block_secs, minlength=self.valid.size)

    def mapped_count(self) -> int:
        return int(np.count_nonzero(self.l2p != UNMAPPED))
