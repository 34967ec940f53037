"""The AppNVM FTL's one door to VOLT (SPEC 6, 8): page reads retried on uncorrectable
errors, unit programs and whole-block erases as MMGR commands through the OX core, the
timing charges of the current command, the bad block table and the read-only flag.

Everything else in the FTL reaches the media through a `Media`, so what the FTL does to
the NAND is in one place and time is charged from one `now`.
"""
import logging

import numpy as np

from ...volt import MediaOp, MediaStatus
from ...wire import BlockState

log = logging.getLogger(__name__)

READ_TRIES = 4                   # read retries on an uncorrectable read
BAD_STATES = (BlockState.BAD, BlockState.GRWN_BAD)


class Media:
    """The media as the FTL sees it. `now` is the arrival time of the command being run
    (set by the FTL); every charge to the timing model starts there."""

    def __init__(self, core, counters: dict):
        self.core = core
        self.volt = core.volt
        self.geo = self.volt.geo
        self.counters = counters
        self.now = 0
        self._charge = self.volt.timing.charge
        self._planes = np.arange(self.geo.nplanes, dtype=np.int64)

    # ------------------------------------------------------------ reads
    def read_raw(self, ch, lun, blk, pl, pg):
        """One plane page, retried on uncorrectable errors: (status, data, oob)."""
        for _ in range(READ_TRIES):
            st, data, oob = self.core.read(ch, lun, blk, pl, pg)
            if st is not MediaStatus.ECC:
                return st, data, oob
            self.counters["read_retries"] += 1
        return st, data, oob

    def read_pages(self, ch, lun, blk, pl, pg) -> np.ndarray | None:
        """Rows of VOLT's data (volt.data_rows) holding these plane pages, each read once as
        read_page would (same MMGR commands, counters and order), when every one of them
        reads fine on the first try; None without reading anything otherwise (the caller
        reads page by page, with the retries)."""
        if self.core.tracer is not None or not self.volt.readable(ch, lun, blk, pl, pg):
            return None
        st, rows = self.core.read_pages(ch, lun, blk, pl, pg)
        return rows

    def read_page(self, ch, lun, blk, pl, pg):
        """Data of a programmed plane page, or None when it cannot be read."""
        st, data, _oob = self.read_raw(ch, lun, blk, pl, pg)
        return data if st is MediaStatus.OK else None

    # ------------------------------------------------------------ programs and erases
    def program(self, ch, lun, blk, pl, pg, pages: np.ndarray, oob: np.ndarray) -> np.ndarray:
        """Plane pages in list order (one MMGR command each); True where one failed."""
        st = self.core.program_pages(ch, lun, blk, pl, pg, pages, oob)
        return np.asarray(st) != MediaStatus.OK

    def erase(self, ch: int, lun: int, blk: int) -> bool:
        """Erase a block on every plane (plane by plane); False if any plane failed."""
        npl = self.geo.nplanes
        st = self.core.erase_blocks(np.full(npl, ch), np.full(npl, lun), np.full(npl, blk), self._planes)
        self.charge(MediaOp.ERASE, ch, lun, 0)
        return bool((np.asarray(st) == MediaStatus.OK).all())

    def charge(self, op: MediaOp, ch: int, lun: int, nbytes: int, at: int | None = None, pg: int = 0) -> int:
        """Modeled end of a media operation on page `pg` that starts at `at` (default: now)."""
        return self._charge(op, ch, lun, nbytes, self.now if at is None else at, pg)

    # ------------------------------------------------------------ bad blocks
    def bad_blocks(self) -> np.ndarray:
        """(ch, lun, blk) mask of blocks with a bad plane (factory or grown)."""
        return np.isin(self.volt.store.bbt, BAD_STATES).any(axis=-1)

    def grown_bad_blocks(self) -> np.ndarray:
        """(ch, lun, blk) mask of blocks with a plane that went bad in use (grown bad)."""
        return (self.volt.store.bbt == BlockState.GRWN_BAD).any(axis=-1)

    def mark_grown_bad(self, ch: int, lun: int, blk: int) -> None:
        """Record a retired block in the media's bad block table (persists); planes
        already bad keep their state."""
        pls = np.flatnonzero(~np.isin(self.volt.store.bbt[ch, lun, blk], BAD_STATES))
        if pls.size:
            n = pls.size
            self.volt.set_block_states(np.full(n, ch), np.full(n, lun), np.full(n, blk), pls,
                                       BlockState.GRWN_BAD)

    # ------------------------------------------------------------ read-only media
    @property
    def read_only(self) -> bool:
        """The media label says the device went read-only in an earlier session."""
        return bool(self.volt.read_only)

    def set_read_only(self, reason: str) -> None:
        """Persist read-only mode in the media label (it also drives SMART's warning)."""
        self.volt.set_read_only(reason)
