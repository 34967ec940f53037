"""VOLT: the NAND media manager. Knows pages, planes and blocks; nothing of NVMe.

One call is one MMGR command on one plane's page or block. NAND rules: a block is
erased before it is programmed, its pages are programmed in order and once, reads of a
never-programmed page report EMPTY and return zeros, bad blocks fail.
"""
import enum
import logging

import numpy as np

from .faults import Faults
from .geometry import Geometry
from .store import Store
from .timing import MediaOp, TimingModel

log = logging.getLogger(__name__)


class MediaStatus(enum.IntEnum):
    OK = 0
    EMPTY = 1          # page never programmed since the last erase
    PROGRAM_FAIL = 2   # out of order, not erased, bad block or injected failure
    ERASE_FAIL = 3     # bad block or injected failure (the block turns grown-bad)
    ECC = 4            # uncorrectable read error (injected)
    POWER_LOSS = 5     # the plug was pulled: nothing happens any more


BAD_STATES = (1, 2)    # BlockState.BAD, BlockState.GRWN_BAD


class Volt:
    """The media: store + rules + timing + faults; counts every operation."""

    def __init__(self, geo: Geometry, store: Store, timing: TimingModel, faults: Faults | None = None):
        self.geo = geo
        self.store = store
        self.timing = timing
        self.faults = faults or Faults()
        self.counters = dict(reads=0, programs=0, erases=0, empty_reads=0,
                             program_fails=0, erase_fails=0, read_errors=0)
        self._ops = 0
        self.powered = True
        self._zero_page = np.zeros(geo.page_nbytes, dtype=np.uint8)
        self._zero_oob = np.zeros(geo.oob_nbytes, dtype=np.uint8)

    def _tick(self) -> bool:
        """Count an operation; False once the power cut point is passed."""
        if not self.powered:
            return False
        self._ops += 1
        cut = self.faults.power_cut_after
        if cut is not None and self._ops > cut:
            self.powered = False
            log.warning("VOLT: power cut after %d media operations", cut)
            return False
        return True

    def is_bad(self, ch, lun, blk, pl) -> bool:
        return int(self.store.bbt[ch, lun, blk, pl]) in BAD_STATES

    def erase(self, ch: int, lun: int, blk: int, pl: int) -> MediaStatus:
        if not self._tick():
            return MediaStatus.POWER_LOSS
        st = self.store
        if self.is_bad(ch, lun, blk, pl):
            self.counters["erase_fails"] += 1
            return MediaStatus.ERASE_FAIL
        f = self.faults
        if (ch, lun, blk) in f.erase_fail or f.roll(f.erase_fail_rate):
            st.bbt[ch, lun, blk, pl] = 2       # grown bad
            self.counters["erase_fails"] += 1
            return MediaStatus.ERASE_FAIL
        st.next_page[ch, lun, blk, pl] = 0
        st.erase_count[ch, lun, blk, pl] += 1
        self.counters["erases"] += 1
        return MediaStatus.OK

    def program(self, ch: int, lun: int, blk: int, pl: int, pg: int,
                data: np.ndarray, oob: np.ndarray | None) -> MediaStatus:
        """Program one page: data is page_nbytes, oob up to oob_nbytes (rest zero)."""
        if not self._tick():
            return MediaStatus.POWER_LOSS
        st = self.store
        nxt = int(st.next_page[ch, lun, blk, pl])
        f = self.faults
        if pg != nxt or self.is_bad(ch, lun, blk, pl):
            self.counters["program_fails"] += 1
            return MediaStatus.PROGRAM_FAIL
        st.next_page[ch, lun, blk, pl] = nxt + 1       # the page is consumed either way
        if (ch, lun, blk, pg) in f.program_fail or f.roll(f.program_fail_rate):
            self.counters["program_fails"] += 1
            return MediaStatus.PROGRAM_FAIL
        st.data[ch, lun, blk, pg, pl] = data
        page_oob = st.oob[ch, lun, blk, pg, pl]
        if oob is None:
            page_oob[:] = 0
        else:
            page_oob[:oob.size] = oob
            page_oob[oob.size:] = 0
        self.counters["programs"] += 1
        return MediaStatus.OK

    def read(self, ch: int, lun: int, blk: int, pl: int, pg: int):
        """(status, data view, oob view) of one page; zeros when EMPTY or failed."""
        if not self._tick():
            return MediaStatus.POWER_LOSS, self._zero_page, self._zero_oob
        st = self.store
        if pg >= int(st.next_page[ch, lun, blk, pl]):
            self.counters["empty_reads"] += 1
            return MediaStatus.EMPTY, self._zero_page, self._zero_oob
        if self.faults.roll(self.faults.read_error_rate):
            self.counters["read_errors"] += 1
            return MediaStatus.ECC, self._zero_page, self._zero_oob
        self.counters["reads"] += 1
        return MediaStatus.OK, st.data[ch, lun, blk, pg, pl], st.oob[ch, lun, blk, pg, pl]

    def charge(self, op: MediaOp, ch: int, lun: int, nbytes: int, arrival_ns: int) -> int:
        return self.timing.charge(op, ch, lun, nbytes, arrival_ns)

    def flush(self) -> None:
        self.store.flush()

    def close(self) -> None:
        self.store.close()
