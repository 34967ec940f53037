"""FTLs broken on purpose, each in one way the FTL contract forbids: `ox ftl check` must name
the rule each one breaks. Each is the template with one piece changed."""
import numpy as np

from oxftl import SectorStatus
from oxftl.template import FREE, OOB, TRIMS, PageFtl


class FlushBeforeProgram(PageFtl):
    """Acknowledges a flush while the buffered page and trims are still in memory."""
    name = "sabotage-flush"

    def flush(self):
        self._service()


class EraseBeforeRewrite(PageFtl):
    """GC erases its victim first and rewrites the victim's valid data afterwards."""
    name = "sabotage-gc"

    def _collect(self, b, retire=False):
        if retire:
            return super()._collect(b, retire)
        g = self.g
        self.counters["gc_runs"] += 1
        lo = b * self.spb
        oob, st, data = self._read_oob(lo + np.arange(self.spb), keep_data=True)
        data = data.copy()
        lbas = np.flatnonzero((self.l2p >= lo) & (self.l2p < lo + self.spb))
        offs = self.l2p[lbas] - lo
        if (st[offs] != SectorStatus.OK).any():
            self.stuck[b] = True
            return False
        for i in np.flatnonzero((st == SectorStatus.OK) & (oob["lba"] == TRIMS)).tolist():
            self.pending_trims.extend(self._records(data[i * self.sb:(i + 1) * self.sb]))
        self.media.erase([b])                            # the sabotage: gone before it is rewritten
        for lba, i in zip(lbas.tolist(), offs.tolist()):
            self._put(lba, int(oob["seq"][i]), data[i * self.sb:(i + 1) * self.sb], src=lo + i)
        self.flush()
        self.state[b] = FREE
        del g
        return True


class ForgetsTrims(PageFtl):
    """Recovery skips the trim records: trimmed sectors come back with their old data."""
    name = "sabotage-trim"

    def _records(self, sector):
        return [] if self._recovering else super()._records(sector)

    def open(self):
        self._recovering = True
        try:
            super().open()
        finally:
            self._recovering = False


class ZerosForUnreadable(PageFtl):
    """Answers a sector the media cannot read with zeros instead of an error."""
    name = "sabotage-eio"

    def read(self, lba, count, out):
        try:
            super().read(lba, count, out)
        except Exception:                   # noqa: BLE001 - the sabotage: swallow the error
            out[:count * self.sb] = 0


__all__ = ["EraseBeforeRewrite", "FlushBeforeProgram", "ForgetsTrims", "ZerosForUnreadable", "OOB"]
