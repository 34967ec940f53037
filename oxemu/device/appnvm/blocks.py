"""Block management of the AppNVM FTL: per-block state, free lists per LUN, erase on
reuse, bad-block handling, and the open block of each write stream (SPEC 6).

A block here is one block on every plane of a LUN (a pblk chunk); it is usable only if
all its planes are good. Factory-bad blocks are skipped, a block whose erase fails is
retired at once, and a block with a failed program is sealed, emptied by GC and then
retired. Retired blocks are marked grown-bad in the media's bad block table, which
persists with the disk file.

Three streams write: user data (one open block per LUN, units striped round-robin over
the LUNs, channel first), GC relocation (one open block) and metadata (checkpoints and
the trim journal, one open block; `meta_blocks` lists its blocks oldest first).

Wear levelling (`wear_leveling`): "none" takes free blocks in list order (the order they
were freed); "dynamic" takes the free block with the lowest erase count (on the LUN asked
for, or on any LUN for the GC and metadata streams), ties in list order.
"""
import enum
import logging
from collections import deque

import numpy as np

from .layout import Stream
from .mapping import Addr
from .media import Media

log = logging.getLogger(__name__)


class BState(enum.IntEnum):
    FREE = 0        # erased, in a free list
    DIRTY = 1       # in a free list, still holding stale data: erased when taken
    OPEN = 2        # being filled by a data stream (user or GC)
    CLOSED = 3      # full or sealed data block: a GC candidate
    META = 4        # checkpoint / trim journal stream
    VICTIM = 5      # chosen by GC: its valid sectors are being moved out (or it waits
                    # for the trim journal before its erase)
    BAD = 6         # factory bad, failed erase, or retired after a failed program


class Blocks:
    """Block states (SPEC 6), indexed by global block id b = (ch * nluns + lun) * nblocks + blk.

    media: erases and the bad block table; counters: the FTL's (`erases` is counted here).
    """

    def __init__(self, media: Media, addr: Addr, counters: dict, wear_leveling: str = "none"):
        self.media = media
        self.addr = addr
        self.ftl_counters = counters
        self.dynamic = wear_leveling == "dynamic"
        nb = addr.total_blocks
        # erase counts per block (the largest of its planes), a live view of the media's table
        self._erase_count = media.volt.store.erase_count.reshape(nb, -1)
        self.mtime = np.zeros(nb, dtype=np.uint64)      # seq of the last unit written
        self.state = np.full(nb, BState.FREE, dtype=np.uint8)
        self.stream = np.zeros(nb, dtype=np.uint8)
        self.wp = np.zeros(nb, dtype=np.int64)          # next page to program
        self.epoch = np.zeros(nb, dtype=np.uint64)
        self.doomed = np.zeros(nb, dtype=bool)          # retire instead of reuse
        self.free = [deque() for _ in range(addr.total_luns)]
        self.nfree = 0
        self.counters = dict(erase_fails=0, retired=0)
        bad = media.bad_blocks().reshape(nb)
        grown = media.grown_bad_blocks().reshape(nb)
        self.state[bad] = BState.BAD
        self.factory_bad = int(np.count_nonzero(bad & ~grown))
        self._bad_at_start = int(np.count_nonzero(bad))
        self._grown_at_start = int(np.count_nonzero(grown))
        # the streams' open blocks
        self.open_user = [-1] * addr.total_luns
        self.open_gc = -1
        self.open_meta = -1
        self.meta_blocks: list[int] = []
        self.lun_order = [ch * addr.nluns + lun for lun in range(addr.nluns) for ch in range(addr.nchannels)]
        self.rr = 0

    @property
    def good(self) -> int:
        return int(np.count_nonzero(self.state != BState.BAD))

    @property
    def grown_bad(self) -> int:
        """Blocks lost since the media was made: retired (now or in an earlier session), or
        sealed to be retired."""
        retired = int(np.count_nonzero(self.state == BState.BAD)) - self._bad_at_start
        return self._grown_at_start + retired + int(np.count_nonzero(self.doomed))

    @property
    def lasting(self) -> int:
        """Good blocks that will stay good: not yet retired, nor sealed to be retired."""
        return int(np.count_nonzero((self.state != BState.BAD) & ~self.doomed))

    def meta_need(self, units: int) -> int:
        """Free blocks the metadata stream needs for its next `units` units, beyond the
        room left in its open block."""
        npages = self.addr.npages
        have = npages - int(self.wp[self.open_meta]) if self.open_meta >= 0 else 0
        return -(-max(0, units - have) // npages)

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
            if self.dynamic:
                b = self._least_worn(glun)
                if b < 0:
                    return -1
            else:
                dq = max(self.free, key=len) if glun is None else self.free[glun]
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

    def erase_counts(self) -> np.ndarray:
        """Erase count of every block (the largest of its planes)."""
        return self._erase_count.max(axis=1)

    def _least_worn(self, glun: int | None) -> int:
        """Dynamic wear levelling: take the free block with the lowest erase count off its
        list (on LUN glun, or on any LUN); -1 when there is none."""
        lists = self.free if glun is None else [self.free[glun]]
        best, where = -1, None
        best_ec = None
        for dq in lists:
            if not dq:
                continue
            idx = np.fromiter(dq, dtype=np.int64, count=len(dq))
            ec = self._erase_count[idx].max(axis=1)
            i = int(np.argmin(ec))
            if best_ec is None or ec[i] < best_ec:
                best, where, best_ec = int(idx[i]), dq, ec[i]
        if where is None:
            return -1
        where.remove(best)
        return best

    # ------------------------------------------------------------ media
    def erase(self, b: int) -> bool:
        """Erase every plane; on failure the block is retired and False returned."""
        if not self.media.erase(*self.addr.chlunblk(b)):
            self.counters["erase_fails"] += 1
            self.retire(b, "erase failed")
            return False
        self.ftl_counters["erases"] += 1        # persisted with the checkpoints
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
        self.media.mark_grown_bad(ch, lun, blk)
        self.counters["retired"] += 1

    # ------------------------------------------------------------ streams
    def slot(self, stream: Stream, floor: int) -> int:
        """The block the stream's next unit goes to (opening one if needed); -1 if none.
        floor: free blocks the stream may not take."""
        if stream == Stream.USER:
            return self._user_slot(floor)
        if stream == Stream.GC:
            if self.open_gc < 0:
                self.open_gc = self._open(Stream.GC, None, floor)
            return self.open_gc
        if self.open_meta < 0:
            b = self._open(Stream.META, None, floor)
            if b >= 0:
                self.open_meta = b
                self.meta_blocks.append(b)
        return self.open_meta

    def fill(self, b: int, stream: Stream, seq: int) -> tuple[int, int]:
        """Claim block b's next page for a unit of sequence number seq: (page, epoch).
        A block's epoch is the seq of its first unit since the erase; a full block closes."""
        pg = int(self.wp[b])
        if pg == 0:
            self.epoch[b] = seq
        self.mtime[b] = seq
        self.wp[b] = pg + 1
        if pg + 1 == self.addr.npages:
            self.close(b, stream)
        return pg, int(self.epoch[b])

    def close(self, b: int, stream: Stream) -> None:
        if stream == Stream.META:
            if self.open_meta == b:
                self.open_meta = -1
            return
        self.state[b] = BState.CLOSED
        if stream == Stream.GC:
            if self.open_gc == b:
                self.open_gc = -1
        else:
            glun = self.addr.glun(b)
            if self.open_user[glun] == b:
                self.open_user[glun] = -1

    def seal(self, b: int, stream: Stream) -> None:
        """A program failed in block b: no more units go there; GC empties it (it may hold
        units of the very batch that failed), then it is retired."""
        self.doomed[b] = True
        self.close(b, stream)

    def make_victim(self, b: int) -> None:
        """GC is moving block b's data out (or b waits for the trim journal)."""
        self.state[b] = BState.VICTIM

    def unmake_victim(self, b: int) -> None:
        """GC left block b with data in it: a closed block again."""
        self.state[b] = BState.CLOSED

    def retire_meta_before(self, b: int) -> list[int]:
        """The metadata blocks older than b (a complete checkpoint starts in b): taken off
        the stream's list and returned, for release."""
        keep = self.meta_blocks.index(b)
        old, self.meta_blocks = self.meta_blocks[:keep], self.meta_blocks[keep:]
        return old

    def restore(self, b: int, state: BState, stream: int, wp: int, epoch: int) -> None:
        """Recovery: block b as found on media (CLOSED data or META)."""
        self.state[b] = state
        self.stream[b] = stream
        self.wp[b] = wp
        self.epoch[b] = epoch
        self.mtime[b] = epoch

    def restore_streams(self, meta_blocks: list[int], rr: int) -> None:
        """Recovery: the metadata blocks found (oldest first) and the user stripe's next LUN."""
        self.meta_blocks = list(meta_blocks)
        self.rr = rr % self.addr.total_luns

    def reopen(self, b: int, stream: Stream, wp: int, epoch: int) -> None:
        """Recovery: a partly written block whose next page is erased on every plane goes
        on taking units, as its LUN's user block or as the metadata block."""
        self.state[b] = BState.META if stream == Stream.META else BState.OPEN
        self.stream[b] = stream
        self.wp[b] = wp
        self.epoch[b] = epoch
        self.mtime[b] = epoch
        if stream == Stream.META:
            self.open_meta = b
        else:
            self.open_user[self.addr.glun(b)] = b

    def _open(self, stream: Stream, glun: int | None, floor: int) -> int:
        b = self.take(glun, floor)
        if b >= 0:
            self.state[b] = BState.META if stream == Stream.META else BState.OPEN
            self.stream[b] = stream
        return b

    def _user_slot(self, floor: int) -> int:
        """The next LUN in the stripe that has (or can open) a user block."""
        order = self.lun_order
        n = len(order)
        rr = self.rr
        for i in range(n):
            glun = order[(rr + i) % n]
            b = self.open_user[glun]
            if b < 0:
                b = self._open(Stream.USER, glun, floor)
                if b < 0:
                    continue
                self.open_user[glun] = b
            self.rr = (rr + i + 1) % n
            return b
        return -1
