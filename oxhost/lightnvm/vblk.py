"""Virtual blocks (liblightnvm nvm_vblk): a set of blocks used as one striped unit.

Bytes are laid out page-stripe by page-stripe: page 0 of every block (all planes, all
sectors), then page 1, ... so a sequential write keeps every LUN of the set busy.
"""
import numpy as np

from oxemu.wire import NvmOpc

from .addr import Addr
from .errors import LightnvmError


class VBlk:
    def __init__(self, dev, blks):
        if not blks:
            raise LightnvmError("a virtual block needs at least one block")
        geo = dev.geo
        self.dev = dev
        self.blks = [Addr(a.ch, a.lun, blk=a.blk) for a in blks]
        self.spage_nsectors = geo.nplanes * geo.nsectors      # one page on every plane
        self.stripe_nsectors = len(self.blks) * self.spage_nsectors
        self.nbytes = len(self.blks) * geo.block_nbytes
        self.pos_write = 0
        self.pos_read = 0
        f = geo.ppaf
        self._base = np.array([(a.ch << f.ch_off) | (a.lun << f.lun_off) | (a.blk << f.blk_off)
                               for a in self.blks], dtype=np.int64)

    @classmethod
    def alloc(cls, dev, addrs) -> "VBlk":
        return cls(dev, list(addrs))

    @classmethod
    def alloc_line(cls, dev, ch_bgn, ch_end, lun_bgn, lun_end, blk) -> "VBlk":
        """Block `blk` on every LUN of the inclusive ch/lun ranges, LUN-major across channels
        so consecutive stripe units land on different channels."""
        geo = dev.geo
        if not (0 <= ch_bgn <= ch_end < geo.nchannels and 0 <= lun_bgn <= lun_end < geo.nluns
                and 0 <= blk < geo.nblocks):
            raise LightnvmError(f"line ch {ch_bgn}-{ch_end} lun {lun_bgn}-{lun_end} blk {blk} "
                                f"is outside the geometry")
        return cls(dev, [Addr(ch, lun, blk=blk) for lun in range(lun_bgn, lun_end + 1)
                         for ch in range(ch_bgn, ch_end + 1)])

    def __repr__(self) -> str:
        return f"VBlk(nblks={len(self.blks)}, nbytes={self.nbytes}, pos_write={self.pos_write})"

    # ---------------------------------------------------------------- addressing
    def ppas(self, sector0: int, nsectors: int) -> np.ndarray:
        """Device PPAs of the vblk's sectors [sector0, sector0 + nsectors)."""
        geo = self.dev.geo
        f = geo.ppaf
        i = np.arange(sector0, sector0 + nsectors, dtype=np.int64)
        pg, r = np.divmod(i, self.stripe_nsectors)
        b, r = np.divmod(r, self.spage_nsectors)
        pl, sec = np.divmod(r, geo.nsectors)
        ppa = self._base[b] | (pg << f.pg_off) | (pl << f.pl_off) | (sec << f.sec_off)
        return ppa.astype(np.uint64)

    def _span(self, nbytes: int, offset: int, unit: int, what: str) -> tuple[int, int]:
        secb = self.dev.geo.sector_nbytes
        if nbytes < 0 or offset < 0 or offset + nbytes > self.nbytes:
            raise LightnvmError(f"{what} of {nbytes} bytes at {offset} is outside the vblk of {self.nbytes}")
        if offset % (unit * secb) or nbytes % (unit * secb):
            raise LightnvmError(f"{what} must be aligned to {unit * secb} bytes")
        return offset // secb, nbytes // secb

    # ---------------------------------------------------------------- operations
    def erase(self) -> None:
        dev = self.dev
        geo = dev.geo
        f = geo.ppaf
        ppas = np.array([int(base) | (pl << f.pl_off) for base in self._base for pl in range(geo.nplanes)], dtype=np.uint64)
        dev.ppa_io(NvmOpc.PH_ERASE, ppas, dev.pmode)
        self.pos_write = 0
        self.pos_read = 0

    def pwrite(self, buf, offset: int) -> None:
        """Write whole page-stripes of one block; pages go down in order or the NAND refuses."""
        buf = np.asarray(buf).reshape(-1).view(np.uint8)
        s0, n = self._span(buf.nbytes, offset, self.spage_nsectors, "write")
        if n:
            self.dev.ppa_io(NvmOpc.PH_WRITE, self.ppas(s0, n), self.dev.pmode, data=buf)

    def write(self, buf) -> None:
        buf = np.asarray(buf).reshape(-1).view(np.uint8)
        self.pwrite(buf, self.pos_write)
        self.pos_write += buf.nbytes

    def pread(self, nbytes: int, offset: int, out=None) -> np.ndarray:
        s0, n = self._span(nbytes, offset, 1, "read")
        if n == 0:
            return np.empty(0, dtype=np.uint8)
        data, _ = self.dev.ppa_io(NvmOpc.PH_READ, self.ppas(s0, n), self.dev.pmode, out=out)
        return data

    def read(self, nbytes: int, out=None) -> np.ndarray:
        data = self.pread(nbytes, self.pos_read, out=out)
        self.pos_read += nbytes
        return data

    def pad(self) -> None:
        """Fill the rest of the vblk with zeros so every page is programmed (nvm_vblk_pad)."""
        left = self.nbytes - self.pos_write
        if left <= 0:
            return
        chunk = self.dev.geo.sector_nbytes * self.spage_nsectors * 64
        zeros = np.zeros(min(left, chunk), dtype=np.uint8)
        while left:
            k = min(left, zeros.nbytes)
            self.write(zeros[:k])
            left -= k
