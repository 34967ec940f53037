"""HostMedia: the FTL API's Media in the host, over lightnvm vector commands on the bus
(an FTL here sits where pblk sits). Units are the LUNs of the target's range, in global
LUN order; a write unit is one page on every plane (a dual-plane command), sectors of
plane 0 first -- pblk's layout."""
import numpy as np

from oxemu.wire import BlockState, NvmOpc, PMode, Status
from oxftl import Media, MediaGeometry, ReadOnly, SectorStatus

from ..lightnvm import Addr, NvmError
from ..pblk import media as read_policy

_EMPTY = int(Status.NVM_EMPTY_PAGE)
_PROTECTED = int(Status.NS_WRITE_PROTECTED)
_BAD = (int(BlockState.BAD), int(BlockState.GRWN_BAD))


class HostMedia(Media):
    side = "host"

    def __init__(self, dev, lun_begin: int, lun_end: int):
        geo = dev.geo
        self.dev = dev
        self.luns = [(g // geo.nluns, g % geo.nluns) for g in range(lun_begin, lun_end + 1)]
        super().__init__(MediaGeometry(
            units=len(self.luns), blocks=geo.nblocks, pages=geo.npages,
            sectors=geo.nplanes * geo.nsectors, sector_nbytes=geo.sector_nbytes,
            oob_nbytes=geo.meta_nbytes, unit_channels=tuple(ch for ch, _ in self.luns)))
        self.pmode = dev.pmode if geo.nplanes > 1 else PMode.SNGL
        f = geo.ppaf
        u64 = np.uint64
        ch = np.array([c for c, _ in self.luns], dtype=u64)
        lun = np.array([n for _, n in self.luns], dtype=u64)
        self._unit_ppa = (ch << u64(f.ch_off)) | (lun << u64(f.lun_off))
        k = np.arange(self.geometry.sectors)
        pl, sec = np.divmod(k, geo.nsectors)
        self._sec_ppa = (pl.astype(u64) << u64(f.pl_off)) | (sec.astype(u64) << u64(f.sec_off))
        self._plane_ppa = np.arange(geo.nplanes, dtype=u64) << u64(f.pl_off)
        self._blk_off, self._pg_off = u64(f.blk_off), u64(f.pg_off)
        self._read_counters = dict(read_retries=0)

    # ------------------------------------------------------------ addressing
    def _block_ppas(self, blocks: np.ndarray) -> np.ndarray:
        """Every plane of each block (erase and bad-block addresses)."""
        unit, blk = np.divmod(blocks, self.geometry.blocks)
        base = self._unit_ppa[unit] | (blk.astype(np.uint64) << self._blk_off)
        return (base[:, None] | self._plane_ppa[None, :]).reshape(-1)

    def _sector_ppas(self, sectors: np.ndarray) -> np.ndarray:
        g = self.geometry
        page, k = np.divmod(sectors, g.sectors)
        block, pg = np.divmod(page, g.pages)
        unit, blk = np.divmod(block, g.blocks)
        return (self._unit_ppa[unit] | (blk.astype(np.uint64) << self._blk_off)
                | (pg.astype(np.uint64) << self._pg_off) | self._sec_ppa[k])

    # ------------------------------------------------------------ bad blocks
    def bad_blocks(self) -> np.ndarray:
        g = self.geometry
        out = np.zeros(g.total_blocks, dtype=bool)
        for u, (ch, lun) in enumerate(self.luns):
            t = self.dev.bbt_get(Addr(ch, lun))
            states = t.blks.reshape(g.blocks, -1)
            out[u * g.blocks:(u + 1) * g.blocks] = np.isin(states, _BAD).any(axis=1)
        return out

    def mark_bad(self, blocks) -> None:
        b = self._check_blocks(blocks)
        if b.size:
            self.dev.bbt_mark(self._block_ppas(b), BlockState.GRWN_BAD)

    # ------------------------------------------------------------ flash operations
    def erase(self, blocks) -> np.ndarray:
        b = self._check_blocks(blocks)
        ok = np.ones(b.size, dtype=bool)
        for i, blk in enumerate(b.tolist()):
            try:
                self.dev.ppa_io(NvmOpc.PH_ERASE, self._block_ppas(np.array([blk])), self.pmode)
            except NvmError as e:
                if (e.statuses == _PROTECTED).any():
                    raise ReadOnly("the device refuses erases: its media is write-protected") from None
                ok[i] = False
        self.counters["erases"] += int(b.size)
        failed = b[~ok]
        if failed.size:
            self.counters["erase_fails"] += int(failed.size)
            self.mark_bad(failed)
        return ok

    def program(self, pages, data, oob=None) -> np.ndarray:
        p, data, oob = self._check_pages(pages, data, oob)
        g = self.geometry
        secs = (p[:, None] * g.sectors + np.arange(g.sectors)).reshape(-1)
        ok = np.ones(p.size, dtype=bool)
        if p.size:
            try:
                self.dev.ppa_io(NvmOpc.PH_WRITE, self._sector_ppas(secs), self.pmode, data=data, meta=oob)
            except NvmError as e:
                if (e.statuses == _PROTECTED).any():
                    raise ReadOnly("the device refuses writes: its media is write-protected") from None
                ok = ~(e.statuses.reshape(p.size, g.sectors) != 0).any(axis=1)
        self.counters["pages_programmed"] += int(p.size)
        self.counters["program_fails"] += int((~ok).sum())
        return ok

    def read(self, sectors, out=None, with_oob=True):
        s, out = self._check_sectors(sectors, out)
        g = self.geometry
        status = np.zeros(s.size, dtype=np.uint8)
        oob = None
        if s.size:
            oob, st = read_policy.read(self.dev, self._sector_ppas(s), out, self._read_counters,
                                       with_meta=with_oob)
            if st is not None:
                bad = st != 0
                status[bad] = SectorStatus.UNREADABLE
                status[st == _EMPTY] = SectorStatus.EMPTY
                out.reshape(s.size, g.sector_nbytes)[bad] = 0
                if oob is not None:
                    oob.reshape(s.size, g.oob_nbytes)[bad] = 0
                self.counters["sectors_unreadable"] += int((status == SectorStatus.UNREADABLE).sum())
        elif with_oob:
            oob = np.empty(0, dtype=np.uint8)
        self.counters["sectors_read"] += int(s.size)
        return out, oob, status

    def buf_alloc(self, nbytes: int) -> np.ndarray:
        return self.dev.buf_alloc(nbytes)
