"""The 2.0 geometry (admin 0xE2, major version 2) and LBA format of VOLT media: groups are
channels, parallel units LUNs, chunks blocks (on every plane), and a chunk's logical
blocks its sectors, ws_min (one page on every plane) at a time."""
import numpy as np

from ...volt import Geometry, NandTiming
from ...wire import OCSSD2_MAJOR, OCSSD2_MINOR, Geometry20, LbaFormat20, Mccap

WIT = 10                     # wear-level index delta threshold the device reports (and notifies at)


def _bits(n: int) -> int:
    return max(0, (n - 1).bit_length())


class WriteRules:
    """The write data requirements: ws_min is one page on every plane (a multi-plane
    program), ws_opt an LSB/MSB page pair of those, and the device caches the last
    mw_cunits logical blocks of an open chunk -- two ws_opt, at most an eighth of the
    chunk (small test geometries) -- refusing to read them until more are written or the
    chunk is closed."""

    def __init__(self, geo: Geometry):
        self.ws_min = geo.nplanes * geo.nsectors
        self.ws_opt = 2 * self.ws_min
        self.clba = geo.npages * self.ws_min
        self.mw_cunits = max(self.ws_min, min(2 * self.ws_opt, self.clba // 8 // self.ws_min * self.ws_min))
        self.maxocpu = geo.nblocks           # no limit of the device's own: every chunk may be open
        self.maxoc = geo.total_luns * geo.nblocks


class Lbaf:
    """The LBA format: field lengths from the geometry, offsets from bit 0 in the order
    logical block, chunk, PU, group (the Linux driver's nvme_nvm_set_addr_20)."""

    def __init__(self, geo: Geometry):
        self.geo = geo
        self.sec_len = _bits(geo.npages * geo.nplanes * geo.nsectors)
        self.chk_len = _bits(geo.nblocks)
        self.pu_len = _bits(geo.nluns)
        self.grp_len = _bits(geo.nchannels)
        self.sec_off = 0
        self.chk_off = self.sec_len
        self.pu_off = self.chk_off + self.chk_len
        self.grp_off = self.pu_off + self.pu_len
        self.bits = self.grp_off + self.grp_len
        self.clba = geo.npages * geo.nplanes * geo.nsectors
        u64 = np.uint64
        self._offs = np.array([self.grp_off, self.pu_off, self.chk_off, self.sec_off], dtype=u64)
        self._masks = np.array([(1 << n) - 1 for n in (self.grp_len, self.pu_len, self.chk_len, self.sec_len)],
                               dtype=u64)
        self._lims = np.array([geo.nchannels, geo.nluns, geo.nblocks, self.clba], dtype=np.int64)
        self._beyond = u64(~((1 << self.bits) - 1) & 0xFFFF_FFFF_FFFF_FFFF)
        self._fields = [(int(o), int(m), int(lim)) for o, m, lim in zip(self._offs, self._masks, self._lims)]

    def wire(self) -> LbaFormat20:
        return LbaFormat20(grp_len=self.grp_len, pu_len=self.pu_len, chk_len=self.chk_len, lba_len=self.sec_len)

    def slba(self, ch, lun, blk, k=0):
        """LBA(s) of group ch, PU lun, chunk blk, logical block k."""
        if isinstance(ch, np.ndarray):
            u = np.uint64
            return ((ch.astype(u) << u(self.grp_off)) | (np.asarray(lun).astype(u) << u(self.pu_off))
                    | (np.asarray(blk).astype(u) << u(self.chk_off)) | (np.asarray(k).astype(u) << u(self.sec_off)))
        return (ch << self.grp_off) | (lun << self.pu_off) | (blk << self.chk_off) | (k << self.sec_off)

    def decode(self, lbas: np.ndarray) -> np.ndarray | None:
        """(n, 4) int64 group, PU, chunk, logical block; None when an LBA has bits beyond
        the format or a field outside the geometry."""
        lbas = lbas.astype(np.uint64, copy=False)
        if np.count_nonzero(lbas & self._beyond):
            return None
        f = ((lbas[:, None] >> self._offs) & self._masks).astype(np.int64)
        if np.count_nonzero(f >= self._lims):
            return None
        return f

    def decode_one(self, lba: int) -> list | None:
        if lba >> self.bits or lba < 0:
            return None
        out = []
        for off, mask, lim in self._fields:
            v = (lba >> off) & mask
            if v >= lim:
                return None
            out.append(v)
        return out


def geometry20(geo: Geometry, nand: NandTiming, rules: WriteRules, lbaf: Lbaf) -> bytes:
    """The nvme_nvm_id20 structure the geometry command returns. Timing fields in ns: tRD
    for a read, tWR for a program of one unit, tCRS for a chunk reset (an erase)."""
    i = Geometry20()
    i.mjr, i.mnr = OCSSD2_MAJOR, OCSSD2_MINOR
    i.lbaf = lbaf.wire()
    i.mccap = int(Mccap.VECTOR_COPY)
    i.wit = WIT
    i.num_grp, i.num_pu, i.num_chk = geo.nchannels, geo.nluns, geo.nblocks
    i.clba = rules.clba
    i.ws_min, i.ws_opt, i.mw_cunits = rules.ws_min, rules.ws_opt, rules.mw_cunits
    i.maxoc, i.maxocpu = rules.maxoc, rules.maxocpu
    i.trdt, i.trdm = nand.t_read_ns, nand.t_read_max_ns
    i.twrt, i.twrm = nand.t_prog_ns, nand.t_prog_max_ns
    i.tcrst, i.tcrsm = nand.t_erase_ns, nand.t_erase_max_ns
    return bytes(i)
