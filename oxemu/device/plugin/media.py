"""DeviceMedia: the FTL API's Media inside the device, on VOLT directly (an FTL here sits
where AppNVM sits). Units are all the LUNs, channel-major (unit = ch * luns + lun); a
write unit is one page on every plane, sectors of plane 0 first, and each sector's OOB
bytes lie where open-channel mode keeps a host's (the same physical layout on both
sides). An FTL waits for each Media call's answer before it makes the next, on either
side, so each call is charged to the timing model from the end of the one before it (the
first from the command's arrival); within one call, operations on different LUNs and
channels overlap as the busy-until stamps allow. The mode reads `done` for the command's
completion time."""
import numpy as np

from oxftl import Media, MediaGeometry, SectorStatus

from ...volt import MediaOp, MediaStatus
from ...wire import BlockState

READ_TRIES = 4                   # an uncorrectable read is retried before it is UNREADABLE
_OK, _EMPTY, _ECC = int(MediaStatus.OK), int(MediaStatus.EMPTY), int(MediaStatus.ECC)
_BAD = (int(BlockState.BAD), int(BlockState.GRWN_BAD))
OOB_PER_SECTOR = 16              # what a host gets (sos): the same FTL sees the same OOB


class DeviceMedia(Media):
    side = "device"

    def __init__(self, core):
        self.core = core
        self.volt = volt = core.volt
        g = self.vgeo = volt.geo
        nunits = g.nchannels * g.nluns
        super().__init__(MediaGeometry(
            units=nunits, blocks=g.nblocks, pages=g.npages, sectors=g.nplanes * g.nsectors,
            sector_nbytes=g.sector_nbytes, oob_nbytes=OOB_PER_SECTOR,
            unit_channels=tuple(u // g.nluns for u in range(nunits))))
        self.done = 0
        self.read_retries = 0

    def start(self, arrival_ns: int) -> None:
        """A command arrives: its first Media call is charged from here."""
        self.done = arrival_ns

    # ------------------------------------------------------------ addressing
    def _blocks(self, blocks):
        g = self.vgeo
        unit, blk = np.divmod(blocks, g.nblocks)
        ch, lun = np.divmod(unit, g.nluns)
        return ch, lun, blk

    def _charge(self, op, ch, lun, blk, pg, nbytes_each) -> None:
        """One charge per multi-plane unit (a page on every plane, or a block), in order,
        all from the end of the previous call; `done` moves to the last one's end."""
        if not self.volt.timing.enabled:
            return
        keys = list(zip(ch.tolist(), lun.tolist(), blk.tolist(), pg.tolist()))
        start, end = self.done, self.done
        i = 0
        while i < len(keys):
            j = i
            while j + 1 < len(keys) and keys[j + 1] == keys[i]:
                j += 1
            c, lu, _, p = keys[i]
            end = max(end, self.volt.charge(op, c, lu, nbytes_each * (j - i + 1), start, p))
            i = j + 1
        self.done = end

    # ------------------------------------------------------------ bad blocks
    def bad_blocks(self) -> np.ndarray:
        return np.isin(self.volt.store.bbt, _BAD).any(axis=-1).reshape(-1)

    def mark_bad(self, blocks) -> None:
        b = self._check_blocks(blocks)
        if not b.size:
            return
        npl = self.vgeo.nplanes
        ch, lun, blk = self._blocks(np.repeat(b, npl))
        self.volt.set_block_states(ch, lun, blk, np.tile(np.arange(npl), b.size), BlockState.GRWN_BAD)

    # ------------------------------------------------------------ flash operations
    def erase(self, blocks) -> np.ndarray:
        b = self._check_blocks(blocks)
        npl = self.vgeo.nplanes
        ch, lun, blk = self._blocks(np.repeat(b, npl))
        st = self.core.erase_blocks(ch, lun, blk, np.tile(np.arange(npl), b.size))
        ok = (st.reshape(b.size, npl) == _OK).all(axis=1)
        self._charge(MediaOp.ERASE, ch[::npl], lun[::npl], blk[::npl], np.zeros(b.size, np.int64), 0)
        self.counters["erases"] += int(b.size)
        if (~ok).any():
            self.counters["erase_fails"] += int((~ok).sum())
            self.mark_bad(b[~ok])
        return ok

    def program(self, pages, data, oob=None) -> np.ndarray:
        p, data, oob = self._check_pages(pages, data, oob)
        g = self.vgeo
        npl, nsec = g.nplanes, g.nsectors
        block, pg = np.divmod(p, g.npages)
        ch, lun, blk = self._blocks(block)
        rep = lambda a: np.repeat(a, npl)                        # noqa: E731 - one row per plane page
        pls = np.tile(np.arange(npl), p.size)
        st = self.core.program_pages(rep(ch), rep(lun), rep(blk), pls, rep(pg),
                                     data.reshape(-1, g.page_nbytes), oob.reshape(-1, nsec * OOB_PER_SECTOR))
        ok = (st.reshape(p.size, npl) == _OK).all(axis=1)
        self._charge(MediaOp.PROGRAM, rep(ch), rep(lun), rep(blk), rep(pg), g.page_nbytes)
        self.counters["pages_programmed"] += int(p.size)
        self.counters["program_fails"] += int((~ok).sum())
        return ok

    def read(self, sectors, out=None, with_oob=True):
        s, out = self._check_sectors(sectors, out)
        g = self.vgeo
        secb, nsec, npl = g.sector_nbytes, g.nsectors, g.nplanes
        status = np.zeros(s.size, dtype=np.uint8)
        oob = np.zeros(s.size * OOB_PER_SECTOR, np.uint8) if with_oob else None
        self.counters["sectors_read"] += int(s.size)
        if not s.size:
            return out, oob, status
        wpage, k = np.divmod(s, npl * nsec)                  # write unit, sector within it
        pl, sec = np.divmod(k, nsec)
        block, pg = np.divmod(wpage, g.npages)
        ch, lun, blk = self._blocks(block)
        ppage = (wpage * npl + pl)                           # plane page, one read each
        uniq, first, inv = np.unique(ppage, return_index=True, return_inverse=True)
        st, rows = self.core.read_pages(ch[first], lun[first], blk[first], pl[first], pg[first])
        st = st.astype(np.int64)
        for i in np.flatnonzero(st == _ECC).tolist():        # retried one by one
            for _ in range(READ_TRIES - 1):
                self.read_retries += 1
                again, _, _ = self.core.read(int(ch[first[i]]), int(lun[first[i]]), int(blk[first[i]]),
                                             int(pl[first[i]]), int(pg[first[i]]))
                if again is not MediaStatus.ECC:
                    st[i] = int(again)
                    break
        order = np.argsort(first, kind="stable")             # charged in the order asked
        fo = first[order]
        self._charge(MediaOp.READ, ch[fo], lun[fo], blk[fo], pg[fo], g.page_nbytes)
        good = st[inv] == _OK
        rows_s = rows[inv]
        dst = out.reshape(s.size, secb)
        src = self.volt.data_rows.reshape(-1, secb)
        if good.all():
            np.take(src, rows_s * nsec + sec, axis=0, out=dst, mode="clip")
        else:
            dst[good] = np.take(src, rows_s[good] * nsec + sec[good], axis=0, mode="clip")
            dst[~good] = 0
            status[st[inv] == _EMPTY] = SectorStatus.EMPTY
            status[~good & (st[inv] != _EMPTY)] = SectorStatus.UNREADABLE
            self.counters["sectors_unreadable"] += int((status == SectorStatus.UNREADABLE).sum())
        if with_oob:
            host = self.volt.oob_rows[:, :nsec * OOB_PER_SECTOR].reshape(-1, nsec, OOB_PER_SECTOR)
            o = oob.reshape(s.size, OOB_PER_SECTOR)
            o[good] = host[rows_s[good], sec[good]]
        return out, oob, status
