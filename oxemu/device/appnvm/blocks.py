"""Block management of the AppNVM FTL: per-block state, free lists per LUN, erase on
reuse, and bad-block handling (SPEC 6).

A block here is one block on every plane of a LUN (a pblk chunk); it is usable only if
all its planes are good. Factory-bad blocks are skipped, a block whose erase fails is
retired at once, and a block with a failed program is sealed, emptied by GC and then
retired. Retired blocks are marked grown-bad in the media's bad block table, which
persists with the disk file.
"""
import enum
import logging
from collections import deque

import numpy as np

from ...volt import MediaOp, MediaStatus
from ...wire import BlockState

log = logging.getLogger(__name__)

_BAD_STATES = (BlockState.BAD, BlockState.GRWN_BAD)


class BState(enum.IntEnum):
    FREE = 0        # erased, in a free list
    DIRTY = 1       # in a free list, still holding stale data: erased when taken
    OPEN = 2        # being filled by a data stream (user or GC)
    CLOSED = 3      # full or sealed data block: a GC candidate
    META = 4        # checkpoint / trim journal stream
    VICTIM = 5      # chosen by GC: its valid sectors are being moved out
    BAD = 6         # factory bad, failed erase, or retired after a failed program


class Blocks:
    """State arrays indexed by global block id b = (ch * nluns + lun) * nblocks + blk."""

    def __init__(self, ftl):
        self.ftl = ftl
        self.core = ftl.core
        self.volt = ftl.volt
        self.addr = addr = ftl.addr
        nb = addr.total_blocks
        self.state = np.full(nb, BState.FREE, dtype=np.uint8)
        self.stream = np.zeros(nb, dtype=np.uint8)
        self.wp = np.zeros(nb, dtype=np.int64)          # next page to program
        self.epoch = np.zeros(nb, dtype=np.uint64)
        self.doomed = np.zeros(nb, dtype=bool)          # retire instead of reuse
        self.free = [deque() for _ in range(addr.total_luns)]
        self.nfree = 0
        self.counters = dict(erase_fails=0, retired=0)
        bbt = self.volt.store.bbt
        bad = np.isin(bbt, _BAD_STATES).any(axis=-1).reshape(nb)
        self.state[bad] = BState.BAD
        self.factory_bad = int(np.count_nonzero(bad))

    @property
    def good(self) -> int:
        return int(np.count_nonzero(self.state != BState.BAD))

    # ------------------------------------------------------------ free lists
    def add_free(self, b: int, erased: bool) -> None:
        self.state[b] = BState.FREE if erased else BState.DIRTY
        self.wp[b] = 0
        self.epoch[b] = 0
        self.free[b // self.addr.nblocks].append(b)
        self.nfree += 1

    def take(self, glun: int | None, floor: int) -> int:
        """A free, erased block (on LUN glun, or the LUN with most free); -1 if none or if
        taking one would leave `floor` or fewer free blocks."""
        while self.nfree > floor:
            if glun is None:
                dq = max(self.free, key=len)
            else:
                dq = self.free[glun]
            if not dq:
                return -1
            b = dq.popleft()
            self.nfree -= 1
            if self.state[b] == BState.DIRTY and not self.erase(b):
                continue
            self.wp[b] = 0
            self.epoch[b] = 0
            return b
        return -1

    # ------------------------------------------------------------ media
    def erase(self, b: int) -> bool:
        """Erase every plane; on failure the block is retired and False returned."""
        ch, lun, blk = self.addr.chlunblk(b)
        ok = True
        for pl in range(self.addr.nplanes):
            if self.core.erase(ch, lun, blk, pl) is not MediaStatus.OK:
                ok = False
        self.volt.charge(MediaOp.ERASE, ch, lun, 0, self.ftl.now)
        if not ok:
            self.counters["erase_fails"] += 1
            self.retire(b, "erase failed")
            return False
        self.ftl.counters["erases"] += 1        # persisted with the checkpoints
        self.state[b] = BState.FREE
        self.wp[b] = 0
        return True

    def release(self, b: int) -> None:
        """A block whose contents are no longer needed: erase it and make it free."""
        if self.doomed[b]:
            self.retire(b, "program failed earlier")
        elif self.erase(b):
            self.add_free(b, erased=True)

    def retire(self, b: int, why: str) -> None:
        ch, lun, blk = self.addr.chlunblk(b)
        log.warning("AppNVM: retiring block ch %d lun %d blk %d (%s)", ch, lun, blk, why)
        self.state[b] = BState.BAD
        self.doomed[b] = False
        bbt = self.volt.store.bbt[ch, lun, blk]
        bbt[~np.isin(bbt, _BAD_STATES)] = BlockState.GRWN_BAD
        self.counters["retired"] += 1
