"""OX core: hands each I/O command to its FTL on the channel's queue and media commands
(MMGR) to VOLT, tracing both when debug is on (SPEC 6, 7). An FTL passes many MMGR
commands at once; VOLT runs them as if one by one, in order."""
import enum

import numpy as np

from ..volt import MediaStatus, Volt
from .controller import PowerLost


class MmgrCmd(enum.IntEnum):
    """ox-ctrl's media manager command types (MMGR_*), as the trace prints them."""
    READ_PG = 0x1
    WRITE_PG = 0x3
    ERASE_BLK = 0x7


_PLOSS = int(MediaStatus.POWER_LOSS)


class OxCore:
    def __init__(self, volt: Volt, tracer=None):
        self.volt = volt
        self.tracer = tracer

    def submit(self, cmd, mtype: MmgrCmd, channel: int) -> None:
        if self.tracer is not None:
            self.tracer.ftl_submit(cmd, mtype, channel, 0)

    def _done(self, status: np.ndarray, mtype, ch, lun, blk, pl, pg) -> np.ndarray:
        if self.tracer is not None:
            t = self.tracer
            for i in range(status.size):
                if status[i] == _PLOSS:
                    break
                args = (mtype, int(ch[i]), int(lun[i]), int(blk[i]), int(pl[i]), int(pg[i]))
                t.mmgr_submit(*args)
                t.mmgr_callback(*args)
        if status.size and status[-1] == _PLOSS:
            raise PowerLost()
        return status

    # vector MMGR: arrays in, a MediaStatus value per command out
    def erase_blocks(self, ch, lun, blk, pl) -> np.ndarray:
        st = self.volt.erase_blocks(ch, lun, blk, pl)
        return self._done(st, MmgrCmd.ERASE_BLK, ch, lun, blk, pl, np.zeros_like(pl))

    def program_pages(self, ch, lun, blk, pl, pg, data, oob) -> np.ndarray:
        st = self.volt.program_pages(ch, lun, blk, pl, pg, data, oob)
        return self._done(st, MmgrCmd.WRITE_PG, ch, lun, blk, pl, pg)

    def read_pages(self, ch, lun, blk, pl, pg):
        st, rows = self.volt.read_pages(ch, lun, blk, pl, pg)
        return self._done(st, MmgrCmd.READ_PG, ch, lun, blk, pl, pg), rows

    # one MMGR at a time (AppNVM and tools)
    def erase(self, ch, lun, blk, pl) -> MediaStatus:
        return MediaStatus(int(self.erase_blocks([ch], [lun], [blk], [pl])[0]))

    def program(self, ch, lun, blk, pl, pg, data, oob) -> MediaStatus:
        st = self.program_pages([ch], [lun], [blk], [pl], [pg], data.reshape(1, -1),
                                None if oob is None else oob.reshape(1, -1))
        return MediaStatus(int(st[0]))

    def read(self, ch, lun, blk, pl, pg):
        """(status, data view, oob view) of one page; zeros unless OK."""
        status, data, oob = self.volt.read(ch, lun, blk, pl, pg)
        if status is MediaStatus.POWER_LOSS:
            raise PowerLost()
        if self.tracer is not None:
            self.tracer.mmgr_submit(MmgrCmd.READ_PG, ch, lun, blk, pl, pg)
            self.tracer.mmgr_callback(MmgrCmd.READ_PG, ch, lun, blk, pl, pg)
        return status, data, oob
