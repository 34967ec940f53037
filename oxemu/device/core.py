"""OX core: hands each I/O command to its FTL on the channel's queue and each media
command (MMGR) to VOLT, tracing both when debug is on (SPEC 6, 7)."""
import enum

from ..volt import MediaStatus, Volt
from .controller import PowerLost


class MmgrCmd(enum.IntEnum):
    """ox-ctrl's media manager command types (MMGR_*), as the trace prints them."""
    READ_PG = 0x1
    WRITE_PG = 0x3
    ERASE_BLK = 0x7


class OxCore:
    def __init__(self, volt: Volt, tracer=None):
        self.volt = volt
        self.tracer = tracer
        self.ftl_queues = volt.geo.nchannels       # one FTL queue per channel

    def submit(self, cmd, mtype: MmgrCmd, channel: int) -> None:
        if self.tracer is not None:
            self.tracer.ftl_submit(cmd, mtype, channel, 0)

    def _done(self, status: MediaStatus, mtype, ch, lun, blk, pl, pg):
        if status is MediaStatus.POWER_LOSS:
            raise PowerLost()
        if self.tracer is not None:
            self.tracer.mmgr_callback(mtype, ch, lun, blk, pl, pg)
        return status

    def erase(self, ch, lun, blk, pl) -> MediaStatus:
        if self.tracer is not None:
            self.tracer.mmgr_submit(MmgrCmd.ERASE_BLK, ch, lun, blk, pl, 0)
        return self._done(self.volt.erase(ch, lun, blk, pl), MmgrCmd.ERASE_BLK, ch, lun, blk, pl, 0)

    def program(self, ch, lun, blk, pl, pg, data, oob) -> MediaStatus:
        if self.tracer is not None:
            self.tracer.mmgr_submit(MmgrCmd.WRITE_PG, ch, lun, blk, pl, pg)
        return self._done(self.volt.program(ch, lun, blk, pl, pg, data, oob),
                          MmgrCmd.WRITE_PG, ch, lun, blk, pl, pg)

    def read(self, ch, lun, blk, pl, pg):
        if self.tracer is not None:
            self.tracer.mmgr_submit(MmgrCmd.READ_PG, ch, lun, blk, pl, pg)
        status, data, oob = self.volt.read(ch, lun, blk, pl, pg)
        return self._done(status, MmgrCmd.READ_PG, ch, lun, blk, pl, pg), data, oob
