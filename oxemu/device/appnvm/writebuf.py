"""The device's volatile write buffer: user sectors wait here until a whole write unit
(one page on every plane of a LUN, 8 sectors by default) can be programmed (SPEC 6).

Sectors in the buffer are acknowledged but not durable: a drive without power-loss
protection (identify VWC=1). FLUSH, FUA, shutdown and reset program it, padded.
"""
from collections import deque

import numpy as np

from .mapping import CACHE_BASE, UNMAPPED


class WriteBuffer:
    """One unit being filled, slot by slot; the L2P points at a slot as CACHE_BASE + slot.

    prev[slot] is the durable media copy the LBA had before (UNMAPPED if none): it stays
    valid, so GC keeps it, until the buffered sector itself reaches media.
    """

    __slots__ = ("unit_secs", "sector_nbytes", "data", "lba", "prev", "n")

    def __init__(self, unit_secs: int, sector_nbytes: int):
        self.unit_secs = unit_secs
        self.sector_nbytes = sector_nbytes
        self.data = np.zeros(unit_secs * sector_nbytes, dtype=np.uint8)
        self.lba = np.full(unit_secs, -1, dtype=np.int64)
        self.prev = np.full(unit_secs, UNMAPPED, dtype=np.uint32)
        self.n = 0

    @property
    def full(self) -> bool:
        return self.n == self.unit_secs

    def put(self, l2p: np.ndarray, slba: int, data: np.ndarray) -> np.ndarray:
        """Buffer len(data) // sector_nbytes sectors from slba (they fit in the unit);
        returns their slots. The L2P is only read here: the caller points the map at
        the slots (Mapping.cache)."""
        sb = self.sector_nbytes
        k = data.size // sb
        s = self.n
        self.data[s * sb:(s + k) * sb] = data
        for i in range(k):
            lba = slba + i
            old = int(l2p[lba])
            if CACHE_BASE <= old < UNMAPPED:        # rewritten while still buffered
                j = old - CACHE_BASE
                self.lba[j] = -1
                old = int(self.prev[j])
            self.lba[s + i] = lba
            self.prev[s + i] = old
        self.n = s + k
        return np.arange(s, s + k, dtype=np.uint32)

    def take_prev(self, l2p: np.ndarray, lbas: np.ndarray) -> np.ndarray:
        """Durable copies of lbas (about to be overwritten), killing their buffered slots."""
        old = l2p[lbas]
        cached = np.flatnonzero((old >= CACHE_BASE) & (old < UNMAPPED))
        if cached.size:
            old = old.copy()
            for i in cached.tolist():
                j = int(old[i]) - CACHE_BASE
                self.lba[j] = -1
                old[i] = self.prev[j]
        return old

    def moved(self, slot: int, src: int, new: int) -> None:
        """GC moved the durable copy of a buffered sector from src to new."""
        if int(self.prev[slot]) == src:
            self.prev[slot] = new

    def kill(self, slot: int) -> int:
        """Drop a buffered sector (deallocated); returns its durable predecessor."""
        self.lba[slot] = -1
        return int(self.prev[slot])

    def reset(self) -> None:
        self.lba.fill(-1)
        self.prev.fill(UNMAPPED)
        self.n = 0

    def durable(self, l2p: np.ndarray) -> np.ndarray:
        """A copy of the L2P with buffered entries replaced by their durable copies."""
        out = l2p.copy()
        for j in range(self.n):
            lba = int(self.lba[j])
            if lba >= 0:
                out[lba] = self.prev[j]
        return out


class BufferClock:
    """Timing of the buffer: a unit's data is accepted once a buffer slot is free, i.e.
    once the program of the unit `depth` units earlier has ended (timing model)."""

    __slots__ = ("depth", "_ends")

    def __init__(self, depth: int):
        self.depth = depth
        self._ends = deque()

    def admit(self, now: int) -> int:
        if len(self._ends) >= self.depth:
            return max(now, self._ends.popleft())
        return now

    def programmed(self, end: int) -> None:
        self._ends.append(end)

    def drained(self, now: int) -> int:
        """When every unit in flight has reached media (a FLUSH completes)."""
        return max(now, max(self._ends, default=now))
